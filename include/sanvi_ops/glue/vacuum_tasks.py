"""Body of the Database Maintenance task: config + Params + the app DB connection in, results out.

The run's Params (see ``dags/weekly/database_maintenance.py``): ``mode`` (``needed`` |
``all`` | ``tables`` | ``dry_run``), ``tables`` (``schema.table`` list) and
``force_outside_window``. A run outside ``vacuum.window`` refuses with a ``skipped`` result
(a dry run changes nothing, so it may run any time); inside it, the time box is cut to the
window's end. A missing or unreachable database is an ``error`` result, never a crash.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sanvi_ops.config import MaintenanceConfig, load_config
from sanvi_ops.glue.connections import ConnectionMissing
from sanvi_ops.results import CheckResult, Status

ResultDicts = list[dict[str, Any]]


def _error(summary: str) -> ResultDicts:
    return [
        CheckResult(check="vacuum.run", status=Status.ERROR, summary=summary, component="postgres").to_dict()
    ]


def plan_and_vacuum(
    cfg: MaintenanceConfig, dsn: str, params: Mapping[str, Any], now: dt.datetime
) -> list[CheckResult]:
    """The whole run against ``dsn`` (no Airflow here: the tests call it directly)."""
    import psycopg

    from sanvi_ops import vacuum

    vc = cfg.vacuum
    mode = cast(vacuum.Mode, str(params.get("mode") or "needed"))
    tables = [str(t) for t in (params.get("tables") or []) if str(t).strip()]
    force = bool(params.get("force_outside_window", False))
    dry = mode == "dry_run"
    if not dry and not force and not vc.window.is_open(now, cfg.timezone):
        return [vacuum.refusal(vc.window, cfg.timezone, now)]
    time_box = vc.time_box.total_seconds()
    closes = None if force else vacuum.window_end(vc.window, now, cfg.timezone)
    if closes is not None:
        time_box = min(time_box, (closes - now).total_seconds())

    with psycopg.connect(dsn, autocommit=True, application_name=vacuum.APPLICATION_NAME) as conn:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false)",
            (str(int(vc.lock_timeout.total_seconds() * 1000)),),
        )
        before = vacuum.read_stats(conn)
    plan = vacuum.make_plan(before, mode, tables, wraparound_warning_pct=vc.wraparound.warning)
    report = None
    after = before
    if not dry:
        report = vacuum.vacuum_tables(
            dsn,
            plan.tables,
            parallelism=vc.parallelism,
            lock_timeout_s=vc.lock_timeout.total_seconds(),
            statement_timeout_s=vc.statement_timeout.total_seconds(),
            time_box_s=time_box,
        )
        with psycopg.connect(dsn, autocommit=True, application_name=vacuum.APPLICATION_NAME) as conn:
            after = vacuum.read_stats(conn)
    return vacuum.results(
        plan,
        report,
        after,
        wraparound_warning=vc.wraparound.warning,
        wraparound_critical=vc.wraparound.critical,
    )


def vacuum_analyze(params: Mapping[str, Any], now: dt.datetime | None = None) -> ResultDicts:
    """One Airflow task: VACUUM ANALYZE the application database as the Params say."""
    import psycopg

    from sanvi_ops.glue.connections import postgres_dsn
    from sanvi_ops.vacuum import MODES

    cfg = load_config()
    mode = str(params.get("mode") or "needed")
    if mode not in MODES:
        return _error(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "tables" and not params.get("tables"):
        return _error("mode 'tables' needs the tables Param (a list of schema.table)")
    try:
        dsn = postgres_dsn(cfg.connections.app_db)
    except (ConnectionMissing, ValueError) as exc:
        return _error(str(exc))
    try:
        results = plan_and_vacuum(cfg, dsn, params, now or dt.datetime.now(dt.UTC))
    except psycopg.Error as exc:
        # Only planning talks to the database outside a per-table guard: it could not start.
        return _error(
            f"could not read table statistics from {cfg.connections.app_db!r}: "
            f"{type(exc).__name__}: {str(exc).strip()}"
        )
    return [r.to_dict() for r in results]
