-- Size of every database a client can connect to, largest first.
SELECT datname AS database, pg_database_size(oid)::bigint AS bytes
FROM pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY bytes DESC, database
