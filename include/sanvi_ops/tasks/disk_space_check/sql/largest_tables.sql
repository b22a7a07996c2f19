-- The largest tables of the current database (heap + indexes + TOAST), with live rows.
SELECT n.nspname AS schema, c.relname AS "table",
       pg_total_relation_size(c.oid)::bigint AS bytes,
       pg_relation_size(c.oid)::bigint AS heap_bytes,
       pg_indexes_size(c.oid)::bigint AS index_bytes,
       c.reltuples::bigint AS rows_estimate
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%%'
ORDER BY bytes DESC, schema, "table"
LIMIT %(limit)s
