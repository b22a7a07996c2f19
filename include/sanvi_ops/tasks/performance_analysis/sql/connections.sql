-- Connection pool utilisation: client backends by state vs the connections an ordinary
-- (non-superuser) login can get (max_connections minus the reserved slots).
SELECT
    count(*) FILTER (WHERE backend_type = 'client backend') AS in_use,
    count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'active') AS active,
    count(*) FILTER (WHERE backend_type = 'client backend' AND state = 'idle') AS idle,
    count(*) FILTER (WHERE backend_type = 'client backend' AND state LIKE 'idle in transaction%%') AS idle_in_transaction,
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved,
    coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved
FROM pg_stat_activity
