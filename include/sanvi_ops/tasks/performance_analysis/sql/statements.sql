-- Cumulative pg_stat_statements counters per statement of the current database.
-- Used by sanvi_ops.performance (Performance Analysis). The weekly change is computed against
-- the snapshot the results store kept last week (pg_statement_snapshots).
-- %(limit)s bounds each ranking; the union of the three top lists is returned. Rows of one
-- statement (per user, top-level or nested) are summed.
WITH s AS (
    SELECT queryid,
           left(regexp_replace(min(query), '\s+', ' ', 'g'), 500) AS query,
           sum(calls)::bigint AS calls,
           sum(total_exec_time) AS total_ms,
           sum(rows)::bigint AS rows
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND queryid IS NOT NULL
    GROUP BY queryid
),
ranked AS (
    SELECT s.*,
           s.total_ms / nullif(s.calls, 0) AS mean_ms,
           row_number() OVER (ORDER BY total_ms DESC) AS by_total,
           row_number() OVER (ORDER BY total_ms / nullif(calls, 0) DESC NULLS LAST) AS by_mean,
           row_number() OVER (ORDER BY calls DESC) AS by_calls
    FROM s
)
SELECT queryid, query, calls, total_ms, coalesce(mean_ms, 0) AS mean_ms, rows
FROM ranked
WHERE by_total <= %(limit)s OR by_mean <= %(limit)s OR by_calls <= %(limit)s
