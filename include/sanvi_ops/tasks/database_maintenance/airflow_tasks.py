"""Body of the Database Maintenance task: config + Params + run policy + the app DB connection
in, results out.

The run's Params (see ``dags/weekly/database_maintenance.py``): ``mode`` (``needed`` | ``all`` |
``tables``) and ``tables`` (``schema.table`` list, optional in the form: only ``mode: tables``
requires it, checked here; in a dry run it picks the tables to plan, other modes ignore it).
Whether the run changes anything is not a Param here but the run's
:class:`~sanvi_ops.core.run_policy.RunPolicy`, decided by the approval gate
(:mod:`sanvi_ops.airflow_kit.approval`) from the ``dry_run`` Param, the run type, the windows and
the approvers' answers: a dry run reports the plan and changes nothing; a refused run (an
approval rejected or unanswered, or a run that may only vacuum inside its window,
``tasks.database_maintenance.settings.window``, starting outside it) is one ``skipped`` result
naming why; a run a person let change things (inside a window, or approved) may vacuum outside
that window. Inside the window the time box is cut to the window's end. A missing or
unreachable database is an ``error`` result, never a crash.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any, cast

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.core.run_policy import AS_SCHEDULED, RunPolicy


def _error(summary: str) -> ResultDicts:
    return [
        CheckResult(check="vacuum.run", status=Status.ERROR, summary=summary, component="postgres").to_dict()
    ]


def plan_and_vacuum(
    cfg: MaintenanceConfig,
    dsn: str,
    params: Mapping[str, Any],
    now: dt.datetime,
    policy: RunPolicy = AS_SCHEDULED,
) -> list[CheckResult]:
    """The whole run against ``dsn`` under ``policy`` (no Airflow here: the tests call it directly).

    One session plans (one statistics read of every table) and then, while the workers vacuum,
    reads each table's statistics once more as it finishes; the results are built from those.
    """
    from sanvi_ops.tasks.database_maintenance import vacuum

    vc = cfg.tasks.database_maintenance.settings
    window = vc.window.in_zone(cfg.timezone)
    policy = policy.at_start(now, window)
    if policy.refused:
        return [vacuum.refused(policy)]
    mode = cast(vacuum.Mode, str(params.get("mode") or "needed"))
    tables = [str(t) for t in (params.get("tables") or []) if str(t).strip()]
    if policy.dry_run and tables:
        mode = "tables"  # a dry run plans the tables asked about
    time_box = vc.time_box.total_seconds()
    closes = window.closes_at(now)
    if closes is not None:
        time_box = min(time_box, (closes - now).total_seconds())

    with vacuum.connect(dsn, vc.lock_timeout.total_seconds()) as conn:
        stats = vacuum.read_stats(conn)
        plan = vacuum.make_plan(stats, mode, tables, wraparound_warning_pct=vc.wraparound.warning)
        report = None
        if not policy.dry_run:
            report = vacuum.vacuum_tables(
                dsn,
                plan.tables,
                parallelism=vc.parallelism,
                lock_timeout_s=vc.lock_timeout.total_seconds(),
                statement_timeout_s=vc.statement_timeout.total_seconds(),
                time_box_s=time_box,
                conn=conn,
            )
    return vacuum.results(
        plan,
        report,
        stats,
        wraparound_warning=vc.wraparound.warning,
        wraparound_critical=vc.wraparound.critical,
    )


def vacuum_analyze(
    params: Mapping[str, Any], now: dt.datetime | None = None, policy: RunPolicy | None = None
) -> ResultDicts:
    """One Airflow task: VACUUM ANALYZE the application database as the Params say, under the
    run's policy.

    Checked in this order: the Params, the policy (refused → the one ``skipped`` result), the
    connection, then the work.

    :param policy: the approval gate's policy for this run (:func:`sanvi_ops.airflow_kit.approval.run_policy`);
        ``None`` (direct calls): as scheduled, vacuuming inside ``tasks.database_maintenance.settings.window`` only.
    """
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.database_maintenance import vacuum

    cfg = load_config()
    now = now or dt.datetime.now(dt.UTC)
    mode = str(params.get("mode") or "needed")
    if mode not in vacuum.MODES:
        return _error(f"unknown mode {mode!r}: use one of {', '.join(vacuum.MODES)}")
    if mode == "tables" and not [t for t in params.get("tables") or [] if str(t).strip()]:
        return _error("mode 'tables' needs the tables Param (a list of schema.table)")
    policy = (policy or AS_SCHEDULED).at_start(
        now, cfg.tasks.database_maintenance.settings.window.in_zone(cfg.timezone)
    )
    if policy.refused:
        return [vacuum.refused(policy).to_dict()]
    try:
        dsn = postgres_dsn(cfg.connections.app_db)
    except (ConnectionMissing, ValueError) as exc:
        return _error(str(exc))
    try:
        results = plan_and_vacuum(cfg, dsn, params, now, policy)
    except psycopg.Error as exc:
        # Only planning talks to the database outside a per-table guard: it could not start.
        return _error(
            f"could not read table statistics from {cfg.connections.app_db!r}: "
            f"{type(exc).__name__}: {str(exc).strip()}"
        )
    if not policy.scheduled:
        # Say why this manual run did what it did (dry run by default, approved, in a window).
        results = [
            dataclasses.replace(r, summary=f"{r.summary} [{policy.reason}]") if r.check == "vacuum.run" else r
            for r in results
        ]
    return [r.to_dict() for r in results]
