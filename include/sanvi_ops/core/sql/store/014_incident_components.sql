-- Results store, version 14: an incident remembers the component its critical result was about.
--
-- A later run closes an incident by component and target, not only by exact check name
-- (sanvi_ops.notify.closing): `rds` (the whole component timed out) is closed by a healthy
-- `rds.sanvi-production-db`, `restore.run` by a restore whose parts are healthy. Rows written
-- before this migration take the component of the result that opened them.
ALTER TABLE incidents ADD COLUMN component text NOT NULL DEFAULT '';

UPDATE incidents i SET component = c.component
FROM check_results c
WHERE c.dag_id = i.dag_id AND c.run_id = i.opened_run_id AND c.check_name = i.check_name
  AND i.component = '' AND c.component <> '';
