-- Every run of every DAG in [start, end) with its result counts by status (the evidence pack's
-- summary of the quarter).
SELECT dag_id, run_id,
       min(coalesce(logical_date, recorded_at)) AS at,
       max(recorded_at) AS recorded_at,
       count(*) FILTER (WHERE status = 'ok') AS ok,
       count(*) FILTER (WHERE status = 'skipped') AS skipped,
       count(*) FILTER (WHERE status = 'warning') AS warning,
       count(*) FILTER (WHERE status = 'error') AS error,
       count(*) FILTER (WHERE status = 'critical') AS critical
FROM check_results
WHERE coalesce(logical_date, recorded_at) >= %(start)s
  AND coalesce(logical_date, recorded_at) < %(end)s
GROUP BY dag_id, run_id
ORDER BY dag_id, at, run_id
