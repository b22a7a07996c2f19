-- Is pg_stat_statements usable here? `installed`: CREATE EXTENSION was run in this database;
-- `preloaded`: the library is in shared_preload_libraries (needed for it to collect anything).
SELECT
    EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS installed,
    'pg_stat_statements' = ANY (
        string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')
    ) AS preloaded,
    current_database() AS database
