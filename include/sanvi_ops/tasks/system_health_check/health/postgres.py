"""PostgreSQL health: can we log in, how fast does it answer, how full is the connection table.

Two results, always both (so a run's list of checks does not change shape when the database is
down):

- ``postgres.availability``: connect and ``SELECT 1``; the observed value is the ``SELECT 1``
  round trip in ms. Unreachable → ``critical`` P1 ("service down"); credentials rejected →
  ``critical`` P2 with the server's reason (never the password); a connection refused because
  every slot is taken → ``critical`` P1.
- ``postgres.connections``: client connections in use as a percentage of the connections an
  ordinary login can get, i.e. ``max_connections - superuser_reserved_connections -
  reserved_connections`` (the last one exists from PostgreSQL 16). The application does not
  log in as a superuser, so the slots reserved for superusers are not capacity it can use; when
  usage reaches that usable maximum the application is already refused. Graded against the
  guide's DB-connection thresholds (warning > 80 %, critical > 90 %). ``skipped`` when
  PostgreSQL could not be reached (the availability result says why).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from sanvi_ops.core.queries import query_loader
from sanvi_ops.core.results import CheckResult, Status, grade

__all__ = ["check_postgres"]

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"
APPLICATION_NAME = "sanvi-ops-health-check"

_AUTH_MARKERS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects",
    'role "',  # role "x" does not exist
)
_FULL_MARKERS = ("too many clients", "remaining connection slots are reserved")


_sql = query_loader(SQL_DIR)


def _target(dsn: str) -> tuple[str, str, str, str]:
    """(host, port, dbname, user) of a DSN, for messages; never the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return ("?", "?", "?", "?")
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    return (
        host,
        str(params.get("port") or "5432"),
        str(params.get("dbname") or ""),
        str(params.get("user") or ""),
    )


def _password(dsn: str) -> str:
    try:
        return str(conninfo_to_dict(dsn).get("password") or "")
    except psycopg.ProgrammingError:
        return ""


def _reason(exc: BaseException, dsn: str) -> str:
    """The server's or libpq's reason, one line, with the password scrubbed just in case."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    # 'connection failed: connection to server at "h", port 5432 failed: FATAL:  the reason'
    if " failed: " in first:
        first = first.rsplit(" failed: ", 1)[1]
    first = first.replace("FATAL:", "").strip()
    first = " ".join(first.split())
    secret = _password(dsn)
    if secret:
        first = first.replace(secret, "***")
    return first or type(exc).__name__


def _connections_skipped(reason: str, warning_pct: float, critical_pct: float) -> CheckResult:
    return CheckResult(
        check="postgres.connections",
        status=Status.SKIPPED,
        summary=f"Connections not measured: {reason}",
        metric="connections_used_pct",
        unit="%",
        thresholds={"warning": warning_pct, "critical": critical_pct},
        component="postgres",
    )


def _unavailable(dsn: str, exc: BaseException, timeout_s: float) -> CheckResult:
    host, port, dbname, user = _target(dsn)
    where = f"PostgreSQL at {host}:{port}"
    reason = _reason(exc, dsn)
    lowered = reason.lower()
    details: dict[str, Any] = {
        "host": host,
        "port": port,
        "dbname": dbname,
        "user": user,
        "error": type(exc).__name__,
        "reason": reason,
        "timeout_s": timeout_s,
    }
    if any(m in lowered for m in _FULL_MARKERS):
        return CheckResult(
            check="postgres.availability",
            status=Status.CRITICAL,
            summary=f"{where} refused a new connection, every slot is taken: {reason}",
            details=details,
            severity="P1",
            component="postgres",
        )
    if any(m in lowered for m in _AUTH_MARKERS):
        return CheckResult(
            check="postgres.availability",
            status=Status.CRITICAL,
            summary=f"{where} rejected the login of user {user!r}: {reason}; check the connection's credentials",
            details=details,
            severity="P2",
            component="postgres",
        )
    if "does not exist" in lowered and "database" in lowered:
        return CheckResult(
            check="postgres.availability",
            status=Status.ERROR,
            summary=f"{where} has no database {dbname!r}; check the connection's schema/dbname",
            details=details,
            component="postgres",
        )
    return CheckResult(
        check="postgres.availability",
        status=Status.CRITICAL,
        summary=f"{where} is unreachable: {reason}",
        details=details,
        severity="P1",
        component="postgres",
    )


def _grade_connections(row: tuple[Any, ...], warning_pct: float, critical_pct: float) -> CheckResult:
    in_use, max_connections, superuser_reserved, reserved = (int(v) for v in row)
    usable = max_connections - superuser_reserved - reserved
    details = {
        "in_use": in_use,
        "max_connections": max_connections,
        "superuser_reserved_connections": superuser_reserved,
        "reserved_connections": reserved,
        "usable_max": usable,
        "how": (
            "in_use = client backends in pg_stat_activity; usable_max = max_connections - "
            "superuser_reserved_connections - reserved_connections (the slots an ordinary login can get)"
        ),
    }
    thresholds = {"warning": warning_pct, "critical": critical_pct}
    if usable <= 0:
        return CheckResult(
            check="postgres.connections",
            status=Status.CRITICAL,
            summary=(
                f"No connection slots for ordinary logins: max_connections {max_connections} minus "
                f"{superuser_reserved + reserved} reserved"
            ),
            metric="connections_used_pct",
            unit="%",
            thresholds=thresholds,
            details=details,
            severity="P1",
            component="postgres",
        )
    pct = 100.0 * in_use / usable
    status = grade(pct, warning_pct, critical_pct)
    word = {
        Status.OK: "",
        Status.WARNING: f", above {warning_pct:g} %",
        Status.CRITICAL: f", above {critical_pct:g} %",
    }
    return CheckResult(
        check="postgres.connections",
        status=status,
        summary=(
            f"{in_use} of {usable} usable connections in use ({pct:.0f} %{word[status]}; "
            f"max_connections {max_connections} minus {superuser_reserved + reserved} reserved)"
        ),
        metric="connections_used_pct",
        observed=round(pct, 2),
        unit="%",
        thresholds=thresholds,
        details=details,
        severity="P2" if status is Status.CRITICAL else None,
        component="postgres",
    )


def check_postgres(
    dsn: str,
    warning_pct: float,
    critical_pct: float,
    timeout_s: float,
    *,
    latency_warning_ms: float = 500.0,
    latency_critical_ms: float = 1000.0,
) -> list[CheckResult]:
    """Check one PostgreSQL server; returns ``postgres.availability`` and ``postgres.connections``.

    :param dsn: libpq connection string or URI (from the Airflow connection). Never logged.
    :param warning_pct: connections-in-use warning, % of the usable maximum (guide: 80).
    :param critical_pct: connections-in-use critical (guide: 90).
    :param timeout_s: connect timeout and statement timeout. libpq counts whole seconds, at
        least 2, so the connect timeout is ``max(2, ceil(timeout_s))``.
    :param latency_warning_ms: ``SELECT 1`` round trip above this → warning (guide latency 500 ms).
    :param latency_critical_ms: ... above this → critical, P3 "performance degraded" (guide 1 s).
    """
    if not 0 < warning_pct < critical_pct:
        raise ValueError(
            f"check_postgres: need 0 < warning_pct < critical_pct, got {warning_pct}, {critical_pct}"
        )
    if not timeout_s > 0:
        raise ValueError(f"check_postgres: timeout_s must be > 0, got {timeout_s}")
    connect_timeout = max(2, math.ceil(timeout_s))
    host, port, dbname, _user = _target(dsn)
    try:
        started = time.perf_counter()
        conn = psycopg.connect(
            dsn, connect_timeout=connect_timeout, autocommit=True, application_name=APPLICATION_NAME
        )
        connect_ms = (time.perf_counter() - started) * 1000.0
    except psycopg.Error as exc:
        return [
            _unavailable(dsn, exc, timeout_s),
            _connections_skipped(
                "PostgreSQL could not be reached (see postgres.availability)", warning_pct, critical_pct
            ),
        ]
    try:
        with conn:
            conn.execute(
                "SELECT set_config('statement_timeout', %s, false)", (str(math.ceil(timeout_s * 1000)),)
            )
            started = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            select_ms = (time.perf_counter() - started) * 1000.0
            server_version = conn.info.server_version
            row = conn.execute(_sql("connections.sql")).fetchone()
    except psycopg.Error as exc:
        return [
            _unavailable(dsn, exc, timeout_s),
            _connections_skipped(
                "PostgreSQL failed while being queried (see postgres.availability)", warning_pct, critical_pct
            ),
        ]
    status = grade(select_ms, latency_warning_ms, latency_critical_ms)
    where = f"PostgreSQL at {host}:{port}"
    if status is Status.OK:
        summary = f"{where} answered SELECT 1 in {select_ms:.1f} ms (connect {connect_ms:.0f} ms)"
    else:
        limit = latency_critical_ms if status is Status.CRITICAL else latency_warning_ms
        summary = f"{where} answered SELECT 1 in {select_ms:.0f} ms, above {limit:g} ms"
    availability = CheckResult(
        check="postgres.availability",
        status=status,
        summary=summary,
        metric="select1_latency_ms",
        observed=round(select_ms, 3),
        unit="ms",
        thresholds={"warning": latency_warning_ms, "critical": latency_critical_ms},
        details={
            "host": host,
            "port": port,
            "dbname": dbname,
            "connect_ms": round(connect_ms, 3),
            "server_version": server_version,
        },
        severity="P3" if status is Status.CRITICAL else None,
        component="postgres",
    )
    assert row is not None  # the query always returns one row
    return [availability, _grade_connections(tuple(row), warning_pct, critical_pct)]
