-- Every table of the current database that VACUUM ANALYZE can work on, with what decides
-- whether (and how urgently) it needs it. Read by
-- sanvi_ops.tasks.database_maintenance.vacuum.read_stats.
--
-- Thresholds follow autovacuum's own formula (relation_needs_vacanalyze), with the per-table
-- reloptions taking precedence over the server settings:
--   vacuum:  autovacuum_vacuum_threshold + autovacuum_vacuum_scale_factor * reltuples,
--            capped by autovacuum_vacuum_max_threshold (PostgreSQL 18+; -1 = no cap)
--   analyze: autovacuum_analyze_threshold + autovacuum_analyze_scale_factor * reltuples
-- reltuples is -1 for a table never vacuumed or analyzed: counted as 0 (as autovacuum does).
-- Wraparound: the older of the table's and its TOAST table's relfrozenxid, against
-- autovacuum_freeze_max_age (the per-table reloption can only lower it).
--
-- No function here opens the table (pg_total_relation_size would, and would wait behind an
-- ACCESS EXCLUSIVE lock): the size is relpages * block_size from pg_class. The counters come
-- from the pg_stat_get_* functions per table rather than the pg_stat_all_tables view, which
-- computes every counter (and index scans) of every table, catalogs included: a third faster on
-- a database of 200 tables, and this query's cost is paid on every run.
-- Partitioned parents (relkind 'p') are left out, their partitions are listed themselves;
-- temporary tables belong to other sessions and cannot be vacuumed from here.
WITH settings AS (
    SELECT
        current_setting('autovacuum_vacuum_threshold')::float8 AS vac_base,
        current_setting('autovacuum_vacuum_scale_factor')::float8 AS vac_scale,
        coalesce(current_setting('autovacuum_vacuum_max_threshold', true), '-1')::float8 AS vac_max,
        current_setting('autovacuum_analyze_threshold')::float8 AS an_base,
        current_setting('autovacuum_analyze_scale_factor')::float8 AS an_scale,
        current_setting('autovacuum_freeze_max_age')::float8 AS freeze_max_age,
        current_setting('block_size')::bigint AS block_size
),
tables AS (
    SELECT
        c.oid,
        n.nspname AS schema_name,
        c.relname AS table_name,
        greatest(c.reltuples, 0)::float8 AS reltuples,
        c.relpages::bigint AS relpages,
        greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
        o.*
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
    CROSS JOIN LATERAL (
        SELECT
            max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold')::float8 AS opt_vac_base,
            max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor')::float8 AS opt_vac_scale,
            max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_max_threshold')::float8 AS opt_vac_max,
            max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_threshold')::float8 AS opt_an_base,
            max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_scale_factor')::float8 AS opt_an_scale,
            max(option_value) FILTER (WHERE option_name = 'autovacuum_freeze_max_age')::float8 AS opt_freeze_max_age
        FROM pg_options_to_table(c.reloptions)
    ) o
    WHERE c.relkind IN ('r', 'm')
      AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
)
SELECT
    tb.oid::bigint AS oid,
    tb.schema_name,
    tb.table_name,
    pg_stat_get_live_tuples(tb.oid) AS n_live_tup,
    pg_stat_get_dead_tuples(tb.oid) AS n_dead_tup,
    pg_stat_get_mod_since_analyze(tb.oid) AS n_mod_since_analyze,
    CASE
        WHEN coalesce(tb.opt_vac_max, s.vac_max) >= 0 THEN
            least(coalesce(tb.opt_vac_base, s.vac_base)
                  + coalesce(tb.opt_vac_scale, s.vac_scale) * tb.reltuples,
                  coalesce(tb.opt_vac_max, s.vac_max))
        ELSE coalesce(tb.opt_vac_base, s.vac_base) + coalesce(tb.opt_vac_scale, s.vac_scale) * tb.reltuples
    END AS vacuum_threshold,
    coalesce(tb.opt_an_base, s.an_base) + coalesce(tb.opt_an_scale, s.an_scale) * tb.reltuples
        AS analyze_threshold,
    tb.xid_age,
    least(coalesce(tb.opt_freeze_max_age, s.freeze_max_age), s.freeze_max_age) AS freeze_max_age,
    greatest(pg_stat_get_last_vacuum_time(tb.oid), pg_stat_get_last_autovacuum_time(tb.oid)) AS last_vacuum,
    greatest(pg_stat_get_last_analyze_time(tb.oid), pg_stat_get_last_autoanalyze_time(tb.oid)) AS last_analyze,
    tb.relpages * s.block_size AS size_bytes
FROM tables tb
CROSS JOIN settings s
ORDER BY tb.schema_name, tb.table_name
