"""Preflight: is this deployment complete? Run it once after installing, and after any change.

``python -m sanvi_ops preflight`` checks, from wherever it runs (a worker or the CLI container):

- every connection the configuration names: defined, parseable, reachable
  (``connection.<id>``);
- the pool heavy database work runs in (``airflow.pool``) and ``[api] base_url``
  (``airflow.base_url``);
- the PostgreSQL client and server binaries (``pg_bin.<name>``), found through
  ``database_backups.pg_bin_dir`` or ``PATH``, and their major version against the application
  database's (``pg_bin.version``);
- the application database role's rights (``role.pg_monitor``, ``role.replication``,
  ``role.maintain``);
- S3 and KMS access (``aws.s3.<bucket>``, ``aws.kms.<key>``), naming the IAM action on
  AccessDenied;
- Slack ``auth.test`` (``slack.auth``).

Each finding is a :class:`~sanvi_ops.core.results.CheckResult`: ``ok``, ``warning`` (the deployment
works without it, e.g. a component deliberately not configured) or ``error`` (something will
fail), with ``details["fix"]`` saying what to do. Nothing is skipped silently: a check that
cannot run is an ``error`` saying why. docs/preflight.md lists every finding.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, Status, worst

__all__ = ["BINARIES", "Finding", "exit_code", "render", "run_preflight"]

#: A preflight finding is a CheckResult whose ``details["fix"]`` says what to do.
Finding = CheckResult

#: PostgreSQL programs the DAGs run: backups (pg_basebackup), the restore test's scratch server
#: (initdb, pg_ctl, postgres, pg_isready), incremental chains (pg_combinebackup), verification
#: (pg_verifybackup) and the integrity check (pg_amcheck).
BINARIES: tuple[str, ...] = (
    "pg_basebackup",
    "pg_combinebackup",
    "pg_verifybackup",
    "pg_amcheck",
    "initdb",
    "pg_ctl",
    "postgres",
    "pg_isready",
)

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104 - a value compared, not bound


def _finding(name: str, status: Status, summary: str, fix: str = "", **details: Any) -> CheckResult:
    data = {k: v for k, v in details.items() if v is not None}
    if fix:
        data["fix"] = fix
    return CheckResult(check=name, status=status, summary=summary, details=data, component="preflight")


def _one_line(exc: BaseException, limit: int = 240) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------------
# Connections
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Wanted:
    conn_id: str
    kind: str  # postgres | redis | http | aws | slack | heartbeat | rds_login
    purpose: str
    required: bool  # missing: error (True) or warning "not configured" (False)
    path: str = ""  # http: what to GET
    needed: bool = True  # False: this deployment does not use it (missing is fine)


def _wanted_connections(cfg: MaintenanceConfig) -> list[_Wanted]:
    c = cfg.connections
    rds = cfg.database_backups.mode == "rds"
    meta = cfg.meta_monitoring
    return [
        _Wanted(c.app_db, "postgres", "the application database (health, VACUUM, statistics, backups)", True),
        _Wanted(c.store, "postgres", "the results store (every result, incident and Slack message)", True),
        _Wanted(
            c.scratch_db,
            "rds_login",
            "the login for restored RDS instances (restore test, DR drill)",
            rds,
            needed=rds,
        ),
        _Wanted(c.aws, "aws", "AWS (S3 backups, KMS, ECS/RDS/ElastiCache checks, audits)", True),
        _Wanted(c.redis, "redis", "the cache the health check probes", True),
        _Wanted(
            c.prometheus, "http", "Prometheus (host CPU/memory, performance, capacity)", False, "/-/ready"
        ),
        _Wanted(c.slack, "slack", "Slack (every report and incident)", False),
        _Wanted(
            cfg.tasks.system_health_check.settings.airflow_health.connection,
            "http",
            "Airflow's own health endpoint",
            False,
            cfg.tasks.system_health_check.settings.airflow_health.path,
        ),
        _Wanted(meta.watchdog.heartbeat_connection, "heartbeat", "the outside heartbeat monitor", False),
    ]


def _reach_postgres(conn_id: str, timeout_s: float) -> str:
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn

    with psycopg.connect(
        postgres_dsn(conn_id, application_name="sanvi-ops-preflight"), connect_timeout=max(1, int(timeout_s))
    ) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), current_setting('server_version')"
        ).fetchone()
    assert row is not None
    return f"connected as {row[0]} to database {row[1]} (PostgreSQL {row[2]})"


def _reach_redis(conn_id: str, timeout_s: float) -> str:
    import redis

    from sanvi_ops.airflow_kit.connections import redis_url

    client = redis.Redis.from_url(
        redis_url(conn_id), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
    finally:
        client.close()
    return f"PING answered (Redis {version})"


def _reach_http(conn_id: str, timeout_s: float, path: str = "") -> str:
    import httpx

    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.tasks.system_health_check.health.http import redact_url

    base, auth = http_base_url(conn_id)
    url = base + path
    resp = httpx.get(url, timeout=timeout_s, auth=auth, follow_redirects=False)
    if resp.status_code >= 500:
        raise RuntimeError(f"{redact_url(url)} answered HTTP {resp.status_code}")
    return f"{redact_url(url)} answered HTTP {resp.status_code}"


def _reach_aws(conn_id: str, timeout_s: float) -> str:
    from sanvi_ops.airflow_kit.connections import aws_client

    ident = aws_client(conn_id, "sts").get_caller_identity()
    return f"credentials work: {ident.get('Arn', '?')}"


def _check_connection(w: _Wanted, timeout_s: float) -> CheckResult:
    from sanvi_ops.airflow_kit.connections import ConnectionMissing, env_var_name, get_connection

    name = f"connection.{w.conn_id}"
    define = (
        f"set {env_var_name(w.conn_id)} (or add {w.conn_id!r} in Admin → Connections / your secrets backend)"
    )
    try:
        get_connection(w.conn_id)
    except ConnectionMissing:
        if not w.needed:
            return _finding(name, Status.OK, "not defined; not needed: database_backups.mode is self_managed")
        if w.required:
            return _finding(
                name, Status.ERROR, f"{w.purpose}: connection {w.conn_id!r} is not defined", define
            )
        return _finding(
            name,
            Status.WARNING,
            f"not configured: connection {w.conn_id!r} ({w.purpose}) is not defined; that part is not checked",
            define,
            not_configured=True,
        )
    except ValueError as exc:  # ConnectionUnparseable
        return _finding(name, Status.ERROR, str(exc), f"fix the value of {env_var_name(w.conn_id)}")
    return _probe(w, name, timeout_s)


def _probe(w: _Wanted, name: str, timeout_s: float) -> CheckResult:
    """A defined connection: can it be used?"""
    from sanvi_ops.airflow_kit.connections import get_connection

    if w.kind == "slack":
        from sanvi_ops.airflow_kit.connections import slack_client
        from sanvi_ops.tasks.system_health_check.health.slack import check_slack_auth

        try:
            client = slack_client(w.conn_id, max_retries=0)
        except Exception as exc:  # noqa: BLE001 - reported
            return _finding(
                name, Status.ERROR, f"connection {w.conn_id!r}: {_one_line(exc)}", "fix the connection"
            )
        auth = check_slack_auth(client, conn_id=w.conn_id, check="slack.auth")
        fix = (
            "" if auth.status is Status.OK else "put a valid bot token (xoxb-…) in the connection's password"
        )
        return _finding(name, auth.status, auth.summary, fix, **auth.details)
    if not w.needed:
        return _finding(name, Status.OK, "defined; not used: database_backups.mode is self_managed")
    if w.kind == "rds_login":  # the instance exists only during a drill: the login is all to check
        conn = get_connection(w.conn_id)
        if not conn.login:
            return _finding(name, Status.ERROR, f"connection {w.conn_id!r}: login is empty", "set its login")
        return _finding(name, Status.OK, f"{w.purpose}: login {conn.login} (reached only during a drill)")
    if w.kind == "heartbeat":
        from sanvi_ops.tasks.sanvi_ops_watchdog.airflow_tasks import heartbeat_url

        try:
            url = heartbeat_url(w.conn_id)
        except ValueError as exc:
            return _finding(name, Status.ERROR, str(exc), "put the ping URL in the connection's host")
        host = urlsplit(url).hostname or "?"
        return _finding(
            name, Status.OK, f"defined (ping to {host}; not pinged here: a ping counts as a heartbeat)"
        )
    reach: dict[str, Callable[[], str]] = {
        "postgres": lambda: _reach_postgres(w.conn_id, timeout_s),
        "redis": lambda: _reach_redis(w.conn_id, timeout_s),
        "aws": lambda: _reach_aws(w.conn_id, timeout_s),
        "http": lambda: _reach_http(w.conn_id, timeout_s, w.path),
    }
    try:
        said = reach[w.kind]()
    except ValueError as exc:  # empty host, unknown extra, IAM token: the message names the connection
        return _finding(name, Status.ERROR, _one_line(exc), "fix the connection's fields or extras")
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, timed out: reported
        from sanvi_ops.core.aws_errors import error_code, is_denied

        if is_denied(exc):
            return _finding(
                name,
                Status.ERROR,
                f"{w.purpose}: AWS refused sts:GetCallerIdentity ({error_code(exc)})",
                "check the credentials of the AWS connection",
            )
        return _finding(
            name,
            Status.ERROR,
            f"{w.purpose}: connection {w.conn_id!r} is defined but unreachable: "
            f"{type(exc).__name__}: {_one_line(exc)}",
            "check host, port, credentials and the network path from the workers",
        )
    return _finding(name, Status.OK, f"{w.purpose}: {said}")


def check_connections(cfg: MaintenanceConfig, timeout_s: float = 10) -> list[CheckResult]:
    return [_check_connection(w, timeout_s) for w in _wanted_connections(cfg)]


# ------------------------------------------------------------------------------------------
# Airflow: pool and base_url
# ------------------------------------------------------------------------------------------


def check_pool(pool_name: str) -> CheckResult:
    """The pool exists in the metadata database.

    Read with ``airflow.models.Pool`` (what ``airflow pools get`` does): the Task SDK has no pool
    API, so this runs where the CLI runs (a container with the metadata database's address).
    """
    fix = f'airflow pools set {pool_name} 1 "Heavy database work (VACUUM, backups, restores)"'
    try:
        from airflow.models.pool import Pool

        pool = Pool.get_pool(pool_name)
    except Exception as exc:  # noqa: BLE001 - no metadata database from here: say so
        return _finding(
            "airflow.pool",
            Status.ERROR,
            f"could not read pool {pool_name!r} from the metadata database: {type(exc).__name__}: "
            f"{_one_line(exc, 160)}",
            "run the preflight where the Airflow CLI works (e.g. the scheduler container)",
        )
    if pool is None:
        return _finding(
            "airflow.pool",
            Status.ERROR,
            f"pool {pool_name!r} does not exist: tasks assigned to it never start",
            fix,
        )
    slots = int(pool.slots)
    if slots < 1:
        return _finding(
            "airflow.pool", Status.ERROR, f"pool {pool_name!r} has {slots} slots: its tasks never start", fix
        )
    return _finding("airflow.pool", Status.OK, f"pool {pool_name!r} exists with {slots} slot(s)", slots=slots)


def check_base_url(base_url: str, *, local: bool = False) -> CheckResult:
    """``[api] base_url``: set, absolute, and (unless ``local``) not a loopback address."""
    fix = "set AIRFLOW__API__BASE_URL to the URL people open Airflow with (https://airflow.example.com)"
    if not base_url:
        return _finding(
            "airflow.base_url",
            Status.ERROR,
            "[api] base_url is not set: every link in Slack and the reports points at http://localhost:8080",
            fix,
        )
    try:
        parts = urlsplit(base_url)
        host = parts.hostname or ""
    except ValueError as exc:
        return _finding("airflow.base_url", Status.ERROR, f"[api] base_url is not a URL: {exc}", fix)
    if parts.scheme not in {"http", "https"} or not host:
        return _finding(
            "airflow.base_url", Status.ERROR, f"[api] base_url {base_url!r} is not an http(s) URL", fix
        )
    if not local and (host in _LOCAL_HOSTS or host.startswith("127.")):
        return _finding(
            "airflow.base_url",
            Status.ERROR,
            f"[api] base_url is {base_url!r}: links in Slack point at the reader's own machine",
            fix,
        )
    return _finding("airflow.base_url", Status.OK, f"[api] base_url is {base_url}")


# ------------------------------------------------------------------------------------------
# PostgreSQL binaries and the application database role
# ------------------------------------------------------------------------------------------

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def _binary_major(path: str) -> int:
    out = subprocess.run(  # noqa: S603 - a resolved path, no shell
        [path, "--version"], capture_output=True, text=True, timeout=15, check=False, env={"LANG": "C"}
    )
    found = _VERSION.search(out.stdout + out.stderr)
    if not found:
        raise ValueError(f"{path} --version said {(out.stdout + out.stderr).strip()[:120]!r}")
    return int(found.group(1))


def check_binaries(pg_bin_dir: str | None, server_major: int | None) -> list[CheckResult]:
    """Every binary found (``pg_bin_dir``, else ``PATH``) and of the server's major version."""
    from sanvi_ops.core.backups import resolve_pg_bin

    where = f"database_backups.pg_bin_dir ({pg_bin_dir})" if pg_bin_dir else "PATH"
    results: list[CheckResult] = []
    majors: dict[str, int] = {}
    for name in BINARIES:
        try:
            path = resolve_pg_bin(name, pg_bin_dir)
            majors[name] = _binary_major(path)
        except (FileNotFoundError, ValueError, OSError, subprocess.SubprocessError) as exc:
            results.append(
                _finding(
                    f"pg_bin.{name}",
                    Status.ERROR,
                    f"{name} not usable from {where}: {_one_line(exc, 160)}",
                    "install the PostgreSQL server package of the database's major version "
                    "(e.g. postgresql-18) and set database_backups.pg_bin_dir to its bin directory",
                )
            )
    if majors:
        found = sorted(set(majors.values()))
        if server_major is None:
            results.append(
                _finding(
                    "pg_bin.version",
                    Status.ERROR,
                    f"binaries are PostgreSQL {'/'.join(map(str, found))}; the server's version is unknown "
                    "(the application database was not reached)",
                    "fix the application database connection first",
                )
            )
        else:
            wrong = {n: m for n, m in majors.items() if m != server_major}
            if wrong:
                listed = ", ".join(f"{n} {m}" for n, m in sorted(wrong.items()))
                results.append(
                    _finding(
                        "pg_bin.version",
                        Status.ERROR,
                        f"the server is PostgreSQL {server_major} but {listed}: backups and restores need "
                        "the server's major version",
                        f"install PostgreSQL {server_major}'s binaries and point database_backups.pg_bin_dir at them",
                        binaries=majors,
                        server_major=server_major,
                    )
                )
            else:
                results.append(
                    _finding(
                        "pg_bin.version",
                        Status.OK,
                        f"{len(majors)} binaries from {where}, all PostgreSQL {server_major} like the server",
                        binaries=majors,
                    )
                )
    return results


def check_role(conn_id: str, *, self_managed: bool) -> tuple[list[CheckResult], int | None]:
    """The application database role's rights, and the server's major version.

    ``pg_monitor``: other sessions' activity and ``pg_stat_statements`` (health, performance,
    capacity). ``REPLICATION``: ``pg_basebackup`` (self-managed backups only). ``pg_maintain`` or
    ``MAINTAIN`` on every table (PostgreSQL 17+; ownership before): VACUUM ANALYZE.
    """
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn

    try:
        conn = psycopg.connect(postgres_dsn(conn_id, application_name="sanvi-ops-preflight"), autocommit=True)
    except Exception as exc:  # noqa: BLE001 - reported
        return [
            _finding(
                "role.rights",
                Status.ERROR,
                f"the role's rights were not checked: cannot connect to {conn_id!r}: {_one_line(exc, 160)}",
                "fix the application database connection first",
            )
        ], None
    results: list[CheckResult] = []
    with conn:
        row = conn.execute(
            "SELECT current_user, r.rolsuper, r.rolreplication, current_setting('server_version_num')::int, "
            "pg_has_role(current_user, 'pg_monitor', 'USAGE') "
            "FROM pg_roles r WHERE r.rolname = current_user"
        ).fetchone()
        assert row is not None
        user, superuser, replication, version_num, monitor = row
        major = int(version_num) // 10000
        grant = f"GRANT pg_monitor TO {user}"
        if monitor or superuser:
            results.append(_finding("role.pg_monitor", Status.OK, f"role {user} has pg_monitor"))
        else:
            results.append(
                _finding(
                    "role.pg_monitor",
                    Status.ERROR,
                    f"role {user} is not a member of pg_monitor: other sessions' queries and "
                    "pg_stat_statements are hidden from the health, performance and capacity checks",
                    grant,
                )
            )
        if not self_managed:
            results.append(
                _finding("role.replication", Status.OK, "not needed: database_backups.mode is rds")
            )
        elif replication or superuser:
            results.append(_finding("role.replication", Status.OK, f"role {user} has REPLICATION"))
        else:
            results.append(
                _finding(
                    "role.replication",
                    Status.ERROR,
                    f"role {user} lacks REPLICATION: pg_basebackup (the nightly full and hourly "
                    "incremental backups) is refused",
                    f"ALTER ROLE {user} REPLICATION (and a pg_hba.conf 'replication' line for it)",
                )
            )
        results.append(_maintain(conn, user, bool(superuser), major))
    return results, major


def _maintain(conn: Any, user: str, superuser: bool, major: int) -> CheckResult:
    if superuser:
        return _finding("role.maintain", Status.OK, f"role {user} is a superuser")
    if major >= 17:
        member = conn.execute("SELECT pg_has_role(current_user, 'pg_maintain', 'USAGE')").fetchone()
        if member and member[0]:
            return _finding("role.maintain", Status.OK, f"role {user} has pg_maintain")
        lacking = conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' AND NOT has_table_privilege(c.oid, 'MAINTAIN') "
            "ORDER BY 1"
        ).fetchall()
        fix = f"GRANT pg_maintain TO {user} (or GRANT MAINTAIN ON the tables)"
    else:
        lacking = conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg_toast%' AND NOT pg_has_role(current_user, c.relowner, 'USAGE') "
            "ORDER BY 1"
        ).fetchall()
        fix = f"make {user} the tables' owner (or a member of it): before PostgreSQL 17 only owners VACUUM"
    tables = [str(t[0]) for t in lacking]
    if not tables:
        return _finding("role.maintain", Status.OK, f"role {user} may VACUUM/ANALYZE every table")
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    return _finding(
        "role.maintain",
        Status.ERROR,
        f"role {user} may not VACUUM/ANALYZE {len(tables)} table(s): {shown}",
        fix,
        tables=tables[:50],
    )


# ------------------------------------------------------------------------------------------
# AWS: S3 and KMS
# ------------------------------------------------------------------------------------------


def _check_bucket(s3: Any, bucket: str, what: str, role: str) -> CheckResult:
    from sanvi_ops.core.aws_errors import denied_result, error_code, is_denied

    name = f"aws.s3.{bucket}"
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 - every AWS failure is a finding
        code = error_code(exc)
        if is_denied(exc) or code in {"403", "Forbidden"}:  # HEAD answers carry no error body
            denied = denied_result(name, exc, client=s3, method="head_bucket", role=role)
            action = denied.details["missing_action"]
            return _finding(
                name,
                Status.ERROR,
                f"{what} bucket {bucket}: {denied.summary}",
                f"grant {action} on arn:aws:s3:::{bucket} to {role}",
                missing_action=action,
            )
        if code in {"404", "NoSuchBucket", "NotFound"}:
            return _finding(
                name,
                Status.ERROR,
                f"{what} bucket {bucket} does not exist",
                "create it (versioned, KMS-encrypted) or fix the bucket name in the config",
            )
        return _finding(
            name,
            Status.ERROR,
            f"{what} bucket {bucket}: {type(exc).__name__}: {_one_line(exc, 160)}",
            "check the AWS connection and region",
        )
    return _finding(name, Status.OK, f"{what} bucket {bucket} is reachable")


def _check_key(kms: Any, key: str, role: str) -> CheckResult:
    from sanvi_ops.core.aws_errors import denied_result, error_code, is_denied

    name = f"aws.kms.{key}"
    try:
        meta = kms.describe_key(KeyId=key)["KeyMetadata"]
    except Exception as exc:  # noqa: BLE001 - every AWS failure is a finding
        if is_denied(exc):
            denied = denied_result(name, exc, client=kms, method="describe_key", role=role)
            action = denied.details["missing_action"]
            return _finding(
                name,
                Status.ERROR,
                f"backup key {key}: {denied.summary}",
                f"grant {action} (and kms:GenerateDataKey, kms:Decrypt) on the key to {role}",
                missing_action=action,
            )
        if error_code(exc) == "NotFoundException":
            return _finding(
                name,
                Status.ERROR,
                f"backup key {key} does not exist",
                "create the KMS key and its alias, or fix database_backups.kms_key_alias",
            )
        return _finding(
            name,
            Status.ERROR,
            f"backup key {key}: {type(exc).__name__}: {_one_line(exc, 160)}",
            "check the AWS connection and region",
        )
    state = str(meta.get("KeyState", "?"))
    if state != "Enabled":
        return _finding(
            name,
            Status.ERROR,
            f"backup key {key} is {state}: backups cannot be encrypted",
            "enable the key (or cancel its deletion)",
        )
    return _finding(name, Status.OK, f"backup key {key} is enabled")


def check_aws_access(cfg: MaintenanceConfig) -> list[CheckResult]:
    """``head_bucket`` on the backup and evidence buckets, ``describe_key`` on the backup key."""
    from sanvi_ops.airflow_kit.connections import aws_client, get_connection

    conn_id = cfg.connections.aws
    role = f"the role of AWS connection {conn_id!r}"
    try:
        get_connection(conn_id)  # not defined: boto3 would guess credentials and region; say so instead
        s3 = aws_client(conn_id, "s3")
        kms = aws_client(conn_id, "kms")
    except Exception as exc:  # noqa: BLE001 - missing, unparseable, no region: reported
        return [
            _finding(
                "aws.access",
                Status.ERROR,
                f"S3/KMS access not checked: {type(exc).__name__}: {_one_line(exc, 200)}",
                f"define the AWS connection {conn_id!r} with its region (extra region_name)",
            )
        ]
    self_managed = cfg.database_backups.mode == "self_managed"
    results = []
    if self_managed:
        results.append(_check_bucket(s3, cfg.database_backups.bucket, "database backups", role))
    results.append(
        _check_bucket(s3, cfg.tasks.compliance_audit.settings.evidence.bucket, "compliance evidence", role)
    )
    if self_managed:
        results.append(_check_key(kms, cfg.database_backups.kms_key_alias, role))
    return results


# ------------------------------------------------------------------------------------------
# All of it
# ------------------------------------------------------------------------------------------


def run_preflight(
    cfg: MaintenanceConfig, *, base_url: str | None = None, local: bool = False, timeout_s: float = 10
) -> list[CheckResult]:
    """Every finding, in a stable order. ``base_url``: ``[api] base_url`` (read from Airflow's
    configuration when ``None``); ``local``: the dev stack, where a loopback base_url is right."""
    if base_url is None:
        from airflow.sdk import conf

        base_url = str(conf.get("api", "base_url", fallback="") or "")
    results = check_connections(cfg, timeout_s)
    results.append(check_pool(cfg.tasks.database_maintenance.settings.pool))
    results.append(check_base_url(base_url, local=local))
    self_managed = cfg.database_backups.mode == "self_managed"
    role_results, server_major = check_role(cfg.connections.app_db, self_managed=self_managed)
    if self_managed:
        results.extend(check_binaries(cfg.database_backups.pg_bin_dir, server_major))
    else:
        results.append(_finding("pg_bin.version", Status.OK, "not needed: database_backups.mode is rds"))
    results.extend(role_results)
    results.extend(check_aws_access(cfg))
    return results


def exit_code(results: list[CheckResult]) -> int:
    """1 when any finding is ``error`` or ``critical``, else 0 (warnings pass)."""
    return 1 if worst(results) in (Status.ERROR, Status.CRITICAL) else 0


_MARK = {
    Status.OK: "ok  ",
    Status.WARNING: "WARN",
    Status.ERROR: "FAIL",
    Status.CRITICAL: "FAIL",
    Status.SKIPPED: "skip",
}


def render(results: list[CheckResult]) -> str:
    """One line per finding, its fix indented under it, and a tally."""
    lines: list[str] = []
    for r in results:
        lines.append(f"[{_MARK[r.status]}] {r.check}: {r.summary}")
        fix = r.details.get("fix")
        if fix and r.status is not Status.OK:
            lines.append(f"         fix: {fix}")
    counts = {s: sum(1 for r in results if r.status is s) for s in Status}
    lines.append(
        f"preflight: {counts[Status.OK]} ok, {counts[Status.WARNING]} warning, "
        f"{counts[Status.ERROR] + counts[Status.CRITICAL]} failing"
    )
    return "\n".join(lines)
