-- Stored results of the given DAGs (the health check) in [start, end): one row per run and
-- check, with the run's time (its logical date, else when it was recorded).
SELECT dag_id, run_id, check_name, status, coalesce(logical_date, recorded_at) AS at
FROM check_results
WHERE dag_id = ANY(%(dag_ids)s)
  AND coalesce(logical_date, recorded_at) >= %(start)s
  AND coalesce(logical_date, recorded_at) < %(end)s
ORDER BY at, run_id, position
