-- Tables read mostly by sequential scans: at least %(min_rows)s live rows, at least
-- %(min_scans)s sequential scans, and more sequential than index scans. Most rows read first.
SELECT schemaname AS schema, relname AS "table", seq_scan::bigint AS seq_scan,
       seq_tup_read::bigint AS seq_tup_read, coalesce(idx_scan, 0)::bigint AS idx_scan,
       n_live_tup::bigint AS live_rows
FROM pg_stat_user_tables
WHERE n_live_tup >= %(min_rows)s
  AND seq_scan >= %(min_scans)s
  AND seq_scan > coalesce(idx_scan, 0)
ORDER BY seq_tup_read DESC, schema, "table"
LIMIT %(limit)s
