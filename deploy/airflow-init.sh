#!/usr/bin/env bash
# One-shot setup, run by the `airflow-init` service of docker-compose.yaml before anything else
# starts (and safe to run again: every step is idempotent):
#   1. migrate the Airflow metadata DB (includes the FAB auth manager's user/role tables);
#   2. create the first Admin user from SANVI_ADMIN_USERNAME / SANVI_ADMIN_PASSWORD / SANVI_ADMIN_EMAIL
#      (the password is read from the environment, never passed on a command line);
#   3. create the pool heavy database work runs in (`vacuum.pool` of the maintenance config).
# The results store's own database is created by deploy/postgres-init/ when the postgres volume is new;
# its tables are created and migrated by the DAGs.
set -euo pipefail

: "${SANVI_ADMIN_USERNAME:?set SANVI_ADMIN_USERNAME in .env}"
: "${SANVI_ADMIN_PASSWORD:?set SANVI_ADMIN_PASSWORD in .env}"
: "${SANVI_ADMIN_EMAIL:?set SANVI_ADMIN_EMAIL in .env}"
if [[ "${SANVI_ADMIN_PASSWORD}" == "change-me" ]]; then
  echo "airflow-init: SANVI_ADMIN_PASSWORD is still the placeholder from .env.example; set a real one" >&2
  exit 1
fi

echo "airflow-init: $(airflow version)"
airflow db migrate

python - <<'PY'
"""The FAB equivalent of `airflow users create` with the password taken from the environment."""
import os

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder

username = os.environ["SANVI_ADMIN_USERNAME"]
with get_application_builder() as appbuilder:
    sm = appbuilder.sm
    if sm.find_user(username):
        print(f"airflow-init: user {username!r} exists; left as it is")
    else:
        role = sm.find_role("Admin")
        if role is None:
            raise SystemExit("airflow-init: the FAB role 'Admin' is missing; did `airflow db migrate` run?")
        user = sm.add_user(
            username, "Sanvi", "Admin", os.environ["SANVI_ADMIN_EMAIL"], role, os.environ["SANVI_ADMIN_PASSWORD"]
        )
        if not user:
            raise SystemExit(f"airflow-init: could not create user {username!r}")
        print(f"airflow-init: created user {username!r} with role Admin")
PY

pool="$(python -c 'from sanvi_ops.config import load_config; print(load_config().vacuum.pool)')"
airflow pools set "${pool}" 1 "Heavy database work (VACUUM, backups, restores): one job at a time"
echo "airflow-init: done"
