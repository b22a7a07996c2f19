-- The statistics of tables whose VACUUM ANALYZE just finished: the one read per table during a
-- run (before it, table_stats.sql read every table once). Read by
-- sanvi_ops.tasks.database_maintenance.vacuum.vacuum_tables as the tables finish, a few at a time
-- when several finish together. A table that is gone has no row.
SELECT
    c.oid::bigint AS oid,
    pg_stat_get_live_tuples(c.oid) AS n_live_tup,
    pg_stat_get_dead_tuples(c.oid) AS n_dead_tup,
    pg_stat_get_mod_since_analyze(c.oid) AS n_mod_since_analyze,
    greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
    greatest(pg_stat_get_last_vacuum_time(c.oid), pg_stat_get_last_autovacuum_time(c.oid)) AS last_vacuum,
    greatest(pg_stat_get_last_analyze_time(c.oid), pg_stat_get_last_autoanalyze_time(c.oid)) AS last_analyze
FROM pg_class c
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.oid = ANY(%s::oid[])
