"""A real Airflow API server with this repo's plugin, for the Maintenance page's UI and auth tests.

Why ``airflow api-server`` and not ``airflow standalone``: standalone also starts the scheduler's
and triggerer's log servers (``airflow.utils.serve_logs``), which bind every interface (``[::]`` /
``0.0.0.0``), and nothing a test starts may listen beyond 127.0.0.1. The page needs only the API
server (the UI, the auth manager's login page and the plugin's FastAPI app), so that is what runs,
the way ``airflow standalone`` runs it: its own AIRFLOW_HOME, a migrated SQLite metadata DB, the
simple auth manager with two users (``admin`` = Admin, ``viewer`` = Viewer) whose passwords are
random, bound to 127.0.0.1 on a free port. ``make run`` (devstack.run) starts the same
api-server the same way.

The results store is a database on the session's PostgreSQL (fixture ``pg``) with a year of history
written by ``bench.maintenance_page.fill_history`` while the server starts (the jobs that run many
times a day get the last week only: the page reads only their latest run).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.postgres import LocalPostgres, free_port
from sanvi_ops.core.incidents import SLACK_SIGNING_CONNECTION
from tests.fixtures.connections import conn_env, pg_conn

REPO = Path(__file__).resolve().parents[2]
#: A connection the server knows that points at a closed port on 127.0.0.1: a config naming it as
#: ``connections.store`` is a results store that is down.
DOWN_STORE_CONN = "sanvi_ops_store_down"
#: The Slack app's signing secret the server verifies interactivity requests with (test_incident_ack.py).
SLACK_SIGNING_SECRET = secrets.token_hex(16)
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


@dataclass(frozen=True)
class AirflowUI:
    url: str
    passwords: dict[str, str]
    store_dsn: str
    log: Path
    pid: int
    #: The maintenance config the server reads ($SANVI_OPS_CONFIG): a copy of the shipped file that
    #: a test may break or point elsewhere (and must put back, see ``DOWN_STORE_CONN``).
    config_path: Path

    def token(self, user: str) -> str:
        """A JWT from the auth manager's own token endpoint (what the login page gets too)."""
        body = json.dumps({"username": user, "password": self.passwords[user]}).encode()
        req = urllib.request.Request(
            f"{self.url}/auth/token", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - 127.0.0.1 only
            return str(json.loads(resp.read())["access_token"])


class _Background:
    """Run ``fn`` in a thread; :meth:`result` re-raises its exception."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            fn()
        except BaseException as exc:  # handed to the test thread
            self._error = exc

    def result(self, timeout: float) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"filling the results store took more than {timeout:.0f} s")
        if self._error is not None:
            raise self._error


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"airflow api-server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - 127.0.0.1 only
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"airflow api-server not up after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="session")
def airflow_ui(pg: LocalPostgres) -> Iterator[AirflowUI]:
    from bench.maintenance_page import fill_history
    from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, load_config
    from sanvi_ops.core.store import ResultStore

    cfg = load_config(DEFAULT_CONFIG_PATH)
    home = Path(tempfile.mkdtemp(prefix="sanvi-ui-airflow-"))
    (home / "dags").mkdir()
    passwords = {"admin": secrets.token_urlsafe(12), "viewer": secrets.token_urlsafe(12)}
    (home / "passwords.json").write_text(json.dumps(passwords))
    store_db = f"ui_store_{secrets.token_hex(3)}"
    pg.create_database(store_db)
    store_dsn = pg.dsn(store_db)
    port = free_port()
    config_path = home / "maintenance.yaml"
    config_path.write_bytes(DEFAULT_CONFIG_PATH.read_bytes())
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO / "plugins"), str(REPO)]),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(24),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        f"AIRFLOW_CONN_{cfg.connections.store.upper()}": pg_conn(store_dsn),
        f"AIRFLOW_CONN_{DOWN_STORE_CONN.upper()}": pg_conn(
            "host=127.0.0.1 port=1 dbname=store user=sanvi password=down-s3cret"  # refused at once
        ),
        f"AIRFLOW_CONN_{SLACK_SIGNING_CONNECTION.upper()}": conn_env(
            "generic", password=SLACK_SIGNING_SECRET
        ),
        "SANVI_OPS_CONFIG": str(config_path),
    }
    # Bytecode is cached in the venv (as `make` does): with PYTHONDONTWRITEBYTECODE each process
    # would compile all of Airflow again, seconds each time.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # The store's schema and a year of history, written while Airflow migrates and starts.
    filler = _Background(
        lambda: (
            ResultStore(store_dsn).migrate(),
            fill_history(store_dsn, cfg, now=dt.datetime.now(dt.UTC), frequent_days=7),
        )
    )
    log = home / "api-server.log"
    with log.open("wb") as out:
        migrate = subprocess.run(  # noqa: S603
            [sys.executable, "-m", "airflow", "db", "migrate"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )
    assert migrate.returncode == 0, f"airflow db migrate failed:\n{log.read_text()[-3000:]}"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "airflow", "api-server", "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        filler.result(timeout=120)
        _wait(f"http://127.0.0.1:{port}/api/v2/monitor/health", proc, log, timeout=120)
        yield AirflowUI(f"http://127.0.0.1:{port}", passwords, store_dsn, log, proc.pid, config_path)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
