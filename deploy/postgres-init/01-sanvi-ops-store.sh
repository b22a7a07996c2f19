#!/usr/bin/env bash
# Run once by the postgres image when its data volume is new (/docker-entrypoint-initdb.d): the
# results store gets a database and a login role of its own, separate from the Airflow metadata DB.
# The password comes from SANVI_STORE_PASSWORD (.env) through psql's \getenv, so it appears in no
# command line and no file. The DAGs create and migrate the store's tables (include/sanvi_ops/core/sql/store/).
set -euo pipefail
: "${SANVI_STORE_PASSWORD:?set SANVI_STORE_PASSWORD in .env}"

psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER}" --dbname "${POSTGRES_DB}" <<'SQL'
\getenv store_password SANVI_STORE_PASSWORD
CREATE ROLE sanvi_ops LOGIN PASSWORD :'store_password';
CREATE DATABASE sanvi_ops_store OWNER sanvi_ops;
REVOKE ALL ON DATABASE sanvi_ops_store FROM PUBLIC;
SQL
