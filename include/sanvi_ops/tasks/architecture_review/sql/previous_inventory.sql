-- The newest inventory an earlier Architecture Review stored (the details of its
-- architecture.inventory result), before the current run's logical date.
SELECT run_id, logical_date, recorded_at, details
FROM check_results
WHERE dag_id = %(dag_id)s
  AND check_name = %(check_name)s
  AND run_id <> %(run_id)s
  AND status = 'ok'
  AND coalesce(logical_date, recorded_at) < %(before)s
ORDER BY coalesce(logical_date, recorded_at) DESC, id DESC
LIMIT 1
