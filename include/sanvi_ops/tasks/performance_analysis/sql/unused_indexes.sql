-- Indexes never scanned since statistics were reset, except unique, primary-key and exclusion
-- indexes (they enforce constraints, scanned or not). Largest first.
SELECT s.schemaname AS schema, s.relname AS "table", s.indexrelname AS index,
       pg_relation_size(s.indexrelid)::bigint AS bytes
FROM pg_stat_user_indexes s
JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0
  AND NOT i.indisunique
  AND NOT i.indisprimary
  AND NOT i.indisexclusion
ORDER BY bytes DESC, schema, "table", index
