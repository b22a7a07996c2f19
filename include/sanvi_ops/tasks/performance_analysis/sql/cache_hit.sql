-- Buffer cache hit ratio of the current database since its statistics were last reset.
SELECT blks_hit::bigint AS hit, blks_read::bigint AS read, stats_reset
FROM pg_stat_database
WHERE datname = current_database()
