-- Every table of the current database that VACUUM ANALYZE can work on, with what decides
-- whether (and how urgently) it needs it. Read by sanvi_ops.vacuum.read_stats.
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
-- ACCESS EXCLUSIVE lock): the size is relpages * block_size from pg_class.
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
        (SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_vacuum_threshold')::float8 AS opt_vac_base,
        (SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_vacuum_scale_factor')::float8 AS opt_vac_scale,
        (SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_vacuum_max_threshold')::float8 AS opt_vac_max,
        (SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_analyze_threshold')::float8 AS opt_an_base,
        (SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_analyze_scale_factor')::float8 AS opt_an_scale,
        (SELECT o.option_value FROM pg_options_to_table(c.reloptions) o
          WHERE o.option_name = 'autovacuum_freeze_max_age')::float8 AS opt_freeze_max_age
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
    WHERE c.relkind IN ('r', 'm')
      AND c.relpersistence <> 't'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_toast'
)
SELECT
    tb.oid::bigint AS oid,
    tb.schema_name,
    tb.table_name,
    coalesce(st.n_live_tup, 0)::bigint AS n_live_tup,
    coalesce(st.n_dead_tup, 0)::bigint AS n_dead_tup,
    coalesce(st.n_mod_since_analyze, 0)::bigint AS n_mod_since_analyze,
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
    greatest(st.last_vacuum, st.last_autovacuum) AS last_vacuum,
    greatest(st.last_analyze, st.last_autoanalyze) AS last_analyze,
    tb.relpages * s.block_size AS size_bytes
FROM tables tb
CROSS JOIN settings s
LEFT JOIN pg_stat_all_tables st ON st.relid = tb.oid
ORDER BY tb.schema_name, tb.table_name
