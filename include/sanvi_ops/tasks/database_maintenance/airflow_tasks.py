"""Body of the Database Maintenance task: config + Params + the app DB connection in, results out.

The run's Params (see ``dags/weekly/database_maintenance.py``): ``mode`` (``needed`` |
``all`` | ``tables``; ``dry_run`` is still accepted), ``tables`` (``schema.table`` list, optional
in the form: only ``mode: tables`` requires it, checked here, and other modes ignore it) and
``dry_run`` (``auto`` | ``yes`` | ``no``), judged before this task by the approval gate
(:mod:`sanvi_ops.airflow_kit.approval`) into a :class:`~sanvi_ops.core.run_policy.Verdict`: a dry run reports
the plan and changes nothing; a refused run (an approval rejected or unanswered) is a ``skipped``
result naming why; a scheduled run outside ``tasks.database_maintenance.settings.window`` refuses with a ``skipped`` result;
a manual run the gate let change things (inside a window, or approved) may vacuum outside
``tasks.database_maintenance.settings.window``. Inside the window the time box is cut to the window's end. A missing or
unreachable database is an ``error`` result, never a crash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, cast
from zoneinfo import ZoneInfo

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.run_policy import Verdict

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

    from sanvi_ops.tasks.database_maintenance import vacuum

    vc = cfg.tasks.database_maintenance.settings
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


def _skipped(summary: str, verdict: Verdict) -> ResultDicts:
    return [
        CheckResult(
            check="vacuum.run",
            status=Status.SKIPPED,
            summary=summary,
            details={"verdict": verdict.reason, "approvals": dict(verdict.answers)},
            component="postgres",
        ).to_dict()
    ]


def apply_verdict(
    cfg: MaintenanceConfig, params: Mapping[str, Any], verdict: Verdict, now: dt.datetime
) -> dict[str, Any] | ResultDicts:
    """The Params the vacuum runs with under ``verdict``, or the ``skipped`` result that ends it."""
    from sanvi_ops.tasks.database_maintenance.vacuum import window_text

    if verdict.refused:
        return _skipped(verdict.reason, verdict)
    effective = {k: v for k, v in params.items() if k != "force_outside_window"}
    if verdict.dry_run:
        return {**effective, "mode": "dry_run"}
    window = cfg.tasks.database_maintenance.settings.window
    if window.is_open(now, cfg.timezone):
        return effective  # the time box is cut to the window's end
    if verdict.outside_window_ok:
        return {**effective, "force_outside_window": True}
    local = now.astimezone(ZoneInfo(cfg.timezone))
    return _skipped(
        f"refused: the scheduled run started outside the maintenance window "
        f"({window_text(window, cfg.timezone)}); it is {local:%A %H:%M} {cfg.timezone}. Nothing was "
        "vacuumed (queued too long in the pool?). Trigger it by hand inside the window, or with "
        "dry_run: no to ask the approvers for a run outside it.",
        verdict,
    )


def vacuum_analyze(
    params: Mapping[str, Any], now: dt.datetime | None = None, verdict: Verdict | None = None
) -> ResultDicts:
    """One Airflow task: VACUUM ANALYZE the application database as the Params say.

    :param verdict: the approval gate's verdict for this run; ``None`` (direct calls) applies the
        Params as given (``mode: dry_run``, ``force_outside_window``).
    """
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.database_maintenance.vacuum import MODES

    cfg = load_config()
    now = now or dt.datetime.now(dt.UTC)
    if verdict is not None:
        applied = apply_verdict(cfg, params, verdict, now)
        if isinstance(applied, list):
            return applied
        params = applied
    mode = str(params.get("mode") or "needed")
    if mode not in MODES:
        return _error(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    if mode == "tables" and not [t for t in params.get("tables") or [] if str(t).strip()]:
        return _error("mode 'tables' needs the tables Param (a list of schema.table)")
    try:
        dsn = postgres_dsn(cfg.connections.app_db)
    except (ConnectionMissing, ValueError) as exc:
        return _error(str(exc))
    try:
        results = plan_and_vacuum(cfg, dsn, params, now)
    except psycopg.Error as exc:
        # Only planning talks to the database outside a per-table guard: it could not start.
        return _error(
            f"could not read table statistics from {cfg.connections.app_db!r}: "
            f"{type(exc).__name__}: {str(exc).strip()}"
        )
    if verdict is not None and not verdict.scheduled:
        # Say why this manual run did what it did (dry run by default, approved, in a window).
        results = [
            dataclasses.replace(r, summary=f"{r.summary} [{verdict.reason}]")
            if r.check == "vacuum.run"
            else r
            for r in results
        ]
    return [r.to_dict() for r in results]
