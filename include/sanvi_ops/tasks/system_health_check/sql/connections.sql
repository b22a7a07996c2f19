-- Connections in use vs the connections an ordinary (non-superuser) login can get.
-- Used by sanvi_ops.health.postgres.check_postgres (System Health Check).
--
-- in_use: client backends only. Since PostgreSQL 12, WAL senders, autovacuum and background
-- workers have slots of their own outside max_connections, so counting them would overstate use.
-- superuser_reserved: slots only superusers may take.
-- reserved: slots for roles with pg_use_reserved_connections (PostgreSQL 16+; NULL before).
SELECT
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use,
    current_setting('max_connections')::int AS max_connections,
    current_setting('superuser_reserved_connections')::int AS superuser_reserved,
    coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved
