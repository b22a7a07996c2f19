#!/usr/bin/env bash
# One-shot setup, run by the `airflow-init` service of docker-compose.yaml before anything else
# starts (and safe to run again: every step is idempotent):
#   1. migrate the Airflow metadata DB (includes the FAB auth manager's user/role tables);
#   2. create the first Admin user from SANVI_ADMIN_USERNAME / SANVI_ADMIN_PASSWORD / SANVI_ADMIN_EMAIL
#      with the public CLI (`airflow users create`); the password goes to its prompt on stdin, never
#      on a command line;
#   3. import the pools of deploy/pools.json (`sanvi_db_heavy`: VACUUM, backups, restore test and
#      DR drill, one at a time); the Helm values run the same import in a job;
#   4. migrate the results store (connection sanvi_ops_store) and copy the config's `silences:` into
#      it: `python -m sanvi_ops migrate`. The DAGs never migrate the store: a task that finds it
#      behind fails naming the missing migrations, so this step runs at every deploy (Helm: the same
#      command in the migration job).
# The results store's own database is created by deploy/postgres-init/ when the postgres volume is new.
set -euo pipefail

: "${SANVI_ADMIN_USERNAME:?set SANVI_ADMIN_USERNAME in .env}"
: "${SANVI_ADMIN_PASSWORD:?set SANVI_ADMIN_PASSWORD in .env}"
: "${SANVI_ADMIN_EMAIL:?set SANVI_ADMIN_EMAIL in .env}"
if [[ "${SANVI_ADMIN_PASSWORD}" == "change-me" ]]; then
  echo "airflow-init: SANVI_ADMIN_PASSWORD is still the placeholder from .env.example; set a real one" >&2
  exit 1
fi
POOLS_FILE="${SANVI_POOLS_FILE:-/opt/airflow/deploy/pools.json}"

echo "airflow-init: $(airflow version)"
airflow db migrate

# `airflow users create` asks for the password twice (getpass). setsid leaves it without a controlling
# terminal, so getpass reads the answers from stdin: printf is a shell builtin, so the password is in
# no process's arguments. An existing user is left as it is ("already exists").
printf '%s\n%s\n' "${SANVI_ADMIN_PASSWORD}" "${SANVI_ADMIN_PASSWORD}" \
  | setsid airflow users create --role Admin --username "${SANVI_ADMIN_USERNAME}" \
      --email "${SANVI_ADMIN_EMAIL}" --firstname Sanvi --lastname Admin

airflow pools import "${POOLS_FILE}"
python -m sanvi_ops migrate
echo "airflow-init: done"
