-- Every result of the quarter that was not ok (warning, error, critical), newest last, at most
-- %(limit)s of them (the evidence pack lists them one by one).
SELECT dag_id, run_id, check_name, status, summary, severity, component,
       logical_date, recorded_at
FROM check_results
WHERE coalesce(logical_date, recorded_at) >= %(start)s
  AND coalesce(logical_date, recorded_at) < %(end)s
  AND status IN ('warning', 'error', 'critical')
ORDER BY coalesce(logical_date, recorded_at), dag_id, run_id, position
LIMIT %(limit)s
