"""Reading the results store: everything the page shows, in one short read-only transaction.

Speed: one connection, one read-only transaction, and queries that each walk an index (one
``LIMIT 1`` per DAG for its newest run, never a scan of the whole history), so the page stays well
under 300 ms with years of history (``make bench BENCH=maintenance_page``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from sanvi_ops.core.calendar import WATCHDOG_DAG_ID, describe, next_runs, non_guide_dags
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.store import MIGRATE_COMMAND, redact
from sanvi_ops.page.changes import load_changes
from sanvi_ops.page.formats import minutes, number
from sanvi_ops.page.model import (
    CADENCE_TITLES,
    CalendarRow,
    IncidentRow,
    NotificationRow,
    PageData,
    RecoveryPoint,
    SignoffRow,
    SilenceRow,
    SloRow,
)

log = logging.getLogger(__name__)

#: How many of the latest notifications the page lists, and of the undelivered ones.
NOTIFICATION_LIMIT: Final = 15
UNDELIVERED_LIMIT: Final = 10
#: Queries may not hold the page hostage: the whole read gets this long on the server.
STATEMENT_TIMEOUT_MS: Final = 5000
_RECOVERY_WINDOW: Final = dt.timedelta(days=90)
CAPACITY_DAG_ID: Final = "capacity_planning"


def all_dag_ids(cfg: MaintenanceConfig) -> list[str]:
    """Every DAG the page knows: the guide's tasks, then the backup jobs."""
    return [*cfg.tasks, *non_guide_dags(cfg)]


def connect(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    """The page's connection to the store (rows as dicts; a 5 s connect timeout)."""
    return psycopg.connect(dsn, connect_timeout=5, application_name="sanvi-ops-page", row_factory=dict_row)


def present_tables(conn: psycopg.Connection[dict[str, Any]]) -> set[str]:
    """Which of the store's tables the page reads exist yet (migrations add them one by one)."""
    wanted = [
        "change_records",
        "check_results",
        "heartbeats",
        "incidents",
        "notifications",
        "recovery_tests",
        "silences",
        "signoffs",
    ]
    row = conn.execute(
        "SELECT array_agg(t) AS present FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL",
        [wanted],
    ).fetchone()
    return set((row or {}).get("present") or [])


def _next_run(cfg: MaintenanceConfig, dag_id: str, cron: str | None, now: dt.datetime) -> dt.datetime | None:
    """The next scheduled run after ``now`` (the scheduler's own timetable)."""
    try:
        if cron is None:
            runs = next_runs(cfg.tasks[dag_id], cfg.timezone, now, 1)
            return runs[0] if runs else None
        import pendulum
        from airflow.timetables.base import TimeRestriction

        # Public (Airflow's Timetables interface); airflow.sdk's CronTriggerTimetable lacks next_dagrun_info_v2.
        from airflow.timetables.trigger import CronTriggerTimetable

        info = CronTriggerTimetable(cron, timezone=cfg.timezone).next_dagrun_info_v2(
            last_dagrun_info=None,
            restriction=TimeRestriction(earliest=pendulum.instance(now), latest=None, catchup=True),
        )
        return None if info is None else dt.datetime.fromtimestamp(info.run_after.timestamp(), tz=dt.UTC)
    except Exception as exc:  # a bad schedule must not take the whole page down
        log.warning("next run of %s: %s", dag_id, exc)
        return None


def _calendar_skeleton(
    cfg: MaintenanceConfig, now: dt.datetime, readable: Collection[str]
) -> dict[str, list[CalendarRow]]:
    tables: dict[str, list[CalendarRow]] = {key: [] for key in CADENCE_TITLES}
    for dag_id, task in cfg.tasks.items():
        if dag_id not in readable:
            continue
        tables[task.cadence].append(
            CalendarRow(
                dag_id=dag_id,
                title=task.title,
                team=cfg.teams[task.team].name if task.team in cfg.teams else task.team,
                schedule=describe(task, cfg.timezone),
                next_run=_next_run(cfg, dag_id, None, now),
            )
        )
    for dag_id, job in non_guide_dags(cfg).items():
        if dag_id not in readable:
            continue
        tables["backups"].append(
            CalendarRow(
                dag_id=dag_id,
                title=job.title,
                team=cfg.teams[job.team].name if job.team in cfg.teams else job.team,
                schedule=f"cron {job.cron} {cfg.timezone}" if job.cron else "on demand (triggered)",
                next_run=_next_run(cfg, dag_id, job.cron, now) if job.cron else None,
            )
        )
    return tables


def page_without_store(
    cfg: MaintenanceConfig, problem: str, *, readable_dag_ids: Collection[str] | None = None
) -> PageData:
    """The page when the store cannot even be named (connection missing): calendar and the problem."""
    now = dt.datetime.now(dt.UTC)
    known = all_dag_ids(cfg)
    readable = set(known if readable_dag_ids is None else readable_dag_ids)
    data = PageData(
        now=now,
        timezone=cfg.timezone,
        calendar=_calendar_skeleton(cfg, now, readable),
        recovery_objective_s=cfg.slos.recovery_time_minutes * 60,
        dag_ids=[d for d in known if d in readable],
        max_silence=cfg.silence_max_duration,
    )
    data.problems.append(problem)
    data.unavailable = problem
    return data


#: Newest run per DAG: one index probe per DAG on (dag_id, recorded_at DESC), then that run's rows
#: through the (dag_id, run_id, check_name) unique index. Never a scan of the history. The run's
#: status is the worst result that ran (a skipped check ranks below ok: ``results.run_status``).
_LATEST_RUNS: Final = """
SELECT d.dag_id, l.run_id, l.recorded_at, w.status, w.summary, w.checks
FROM unnest(%(dags)s::text[]) AS d(dag_id)
CROSS JOIN LATERAL (
    SELECT c.run_id, c.recorded_at FROM check_results c
    WHERE c.dag_id = d.dag_id ORDER BY c.recorded_at DESC, c.id DESC LIMIT 1
) l
CROSS JOIN LATERAL (
    SELECT (array_agg(r.status ORDER BY
                CASE r.status WHEN 'critical' THEN 4 WHEN 'error' THEN 3 WHEN 'warning' THEN 2
                              WHEN 'skipped' THEN -1 ELSE 0 END DESC, r.position))[1] AS status,
           (array_agg(r.summary ORDER BY
                CASE r.status WHEN 'critical' THEN 4 WHEN 'error' THEN 3 WHEN 'warning' THEN 2
                              WHEN 'skipped' THEN -1 ELSE 0 END DESC, r.position))[1] AS summary,
           count(*) AS checks,
           max(r.recorded_at) AS last_write
    FROM check_results r WHERE r.dag_id = d.dag_id AND r.run_id = l.run_id
) w
"""

_LATEST_CHECK: Final = """
SELECT check_name, status, summary, observed, unit, thresholds, details, recorded_at
FROM check_results WHERE dag_id = %s AND check_name = %s
ORDER BY recorded_at DESC, id DESC LIMIT 1
"""


def load_page(
    dsn: str,
    cfg: MaintenanceConfig,
    *,
    now: dt.datetime | None = None,
    readable_dag_ids: Collection[str] | None = None,
    store_name: str = "results store",
) -> PageData:
    """Everything the page shows, read in one short read-only transaction.

    :param readable_dag_ids: the DAGs the user may read (from the auth manager); rows of other DAGs
        are left out. ``None`` = all of them.
    :param store_name: how problems name the store (the plugin passes the connection id).

    A store that cannot be reached or has no schema yet is not an error for the page: the
    calendar is still shown, and :attr:`PageData.problems` says what is wrong (never a password).
    """
    now = now or dt.datetime.now(dt.UTC)
    known = all_dag_ids(cfg)
    readable = set(known if readable_dag_ids is None else readable_dag_ids)
    dags = [d for d in known if d in readable]
    data = PageData(
        now=now,
        timezone=cfg.timezone,
        calendar=_calendar_skeleton(cfg, now, readable),
        recovery_objective_s=cfg.slos.recovery_time_minutes * 60,
        dag_ids=dags,
        max_silence=cfg.silence_max_duration,
    )
    try:
        with connect(dsn) as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SELECT set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)])
            tables = present_tables(conn)
            if "check_results" not in tables:
                data.problems.append(
                    f"{store_name} has no schema yet: run `{MIGRATE_COMMAND}` (deploy/airflow-init.sh and make run do at start)"
                )
                return data
            _load_calendar(conn, data, dags, heartbeats="heartbeats" in tables)
            if "incidents" in tables:
                # An incident of a source the page does not know as a DAG (Alertmanager's alerts:
                # DAG id ``alertmanager``) is shown to whoever may read every DAG, the same rule
                # as acknowledging it (page.actions._incident_allowed needs edit on every DAG).
                _load_incidents(conn, data, readable, other_sources=readable >= set(known))
                _load_responses(conn, cfg, data, readable)
            data.silences_available = "silences" in tables
            if data.silences_available:
                data.silences = _active_silences(conn, readable)
            if "signoffs" in tables:
                _load_signoffs(conn, data, readable)
            if "change_records" in tables:
                data.changes = load_changes(conn, readable, now)
            _load_slos(conn, cfg, data, readable, tables)
            if "recovery_tests" in tables:
                _load_recovery(conn, data, readable)
            if "notifications" in tables:
                _load_notifications(conn, data, readable)
    except psycopg.Error as exc:
        reason = redact(" ".join(str(exc).split()), dsn)
        data.problems.append(f"{store_name} could not be read: {reason}")
        data.unavailable = data.problems[-1]
    return data


def _load_calendar(
    conn: psycopg.Connection[dict[str, Any]], data: PageData, dags: list[str], *, heartbeats: bool = False
) -> None:
    latest = {row["dag_id"]: row for row in conn.execute(_LATEST_RUNS, {"dags": dags}).fetchall()}
    if heartbeats and WATCHDOG_DAG_ID in dags and WATCHDOG_DAG_ID not in latest:
        beat = _watchdog_run(conn)
        if beat is not None:
            latest[WATCHDOG_DAG_ID] = beat
    for key, rows in data.calendar.items():
        filled = []
        for row in rows:
            hit = latest.get(row.dag_id)
            if hit is None:
                filled.append(row)
                continue
            filled.append(
                CalendarRow(
                    dag_id=row.dag_id,
                    title=row.title,
                    team=row.team,
                    schedule=row.schedule,
                    next_run=row.next_run,
                    last_run=hit["recorded_at"],
                    last_run_id=hit["run_id"],
                    last_status=hit["status"],
                    last_summary=hit["summary"] or "",
                    checks=int(hit["checks"]),
                )
            )
        data.calendar[key] = filled


def _watchdog_run(conn: psycopg.Connection[dict[str, Any]]) -> dict[str, Any] | None:
    """The watchdog records no check results (it runs every 15 min): its calendar row comes from
    its newest heartbeat (table ``heartbeats``, 011) — pinged = ok; no ping connection = warning
    (a supported set-up, but nothing outside Airflow would notice a dead scheduler); a failed
    ping = error."""
    row = conn.execute(
        "SELECT run_id, at, pinged, detail FROM heartbeats WHERE source = %s ORDER BY at DESC, id DESC LIMIT 1",
        [WATCHDOG_DAG_ID],
    ).fetchone()
    if row is None:
        return None
    detail = str(row["detail"] or "")
    status = "ok" if row["pinged"] else "warning" if detail.startswith("no heartbeat ping") else "error"
    return {
        "run_id": row["run_id"],
        "recorded_at": row["at"],
        "status": status,
        "summary": detail or ("heartbeat pinged" if row["pinged"] else "heartbeat not pinged"),
        "checks": 1,
    }


def _load_incidents(
    conn: psycopg.Connection[dict[str, Any]], data: PageData, readable: set[str], other_sources: bool
) -> None:
    """Open incidents of the DAGs in ``readable``; with ``other_sources`` also those of sources that
    are not DAGs the page knows (for a user who may read every DAG)."""
    rows = conn.execute(
        "SELECT * FROM incidents WHERE resolved_at IS NULL ORDER BY severity, opened_at"
    ).fetchall()
    data.incidents = [
        IncidentRow(
            id=int(r["id"]),
            dag_id=r["dag_id"],
            check=r["check_name"],
            severity=r["severity"],
            summary=r["summary"],
            opened_at=r["opened_at"],
            last_update_at=r["last_update_at"],
            age=data.now - r["opened_at"],
            acknowledged_by=r.get("acknowledged_by"),
            acknowledged_at=r.get("acknowledged_at"),
            ack_note=r.get("ack_note") or "",
        )
        for r in rows
        if r["dag_id"] in readable or (other_sources and r["dag_id"] not in data.dag_ids)
    ]


def _load_responses(
    conn: psycopg.Connection[dict[str, Any]], cfg: MaintenanceConfig, data: PageData, readable: set[str]
) -> None:
    """Response times of the incidents acknowledged in the last 90 days, per severity."""
    from sanvi_ops.core.incidents import response_summary, response_target

    data.acks_available = bool(
        conn.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'incidents' "
            "AND column_name = 'acknowledged_at' AND table_schema = current_schema()"
        ).fetchone()
    )
    if not data.acks_available:
        return
    rows = conn.execute(
        "SELECT dag_id, severity, response_seconds, response_target_seconds FROM incidents "
        "WHERE acknowledged_at IS NOT NULL AND acknowledged_at >= %s",
        [data.now - _RECOVERY_WINDOW],
    ).fetchall()
    targets = {}
    for level in sorted(cfg.severities):
        try:
            targets[level] = response_target(cfg, level)
        except KeyError:
            continue
    data.responses = response_summary(
        (
            (r["severity"], r["response_seconds"], r["response_target_seconds"])
            for r in rows
            if r["dag_id"] in readable
        ),
        targets,
    )


def _active_silences(conn: psycopg.Connection[dict[str, Any]], readable: set[str]) -> list[SilenceRow]:
    rows = conn.execute(
        """
        SELECT id, dag_id, check_pattern, reason, created_by, source, created_at, expires_at
        FROM silences WHERE lifted_at IS NULL AND expires_at > now() ORDER BY expires_at, id
        """
    ).fetchall()
    return [SilenceRow(**r) for r in rows if r["dag_id"] is None or r["dag_id"] in readable]


def _load_signoffs(conn: psycopg.Connection[dict[str, Any]], data: PageData, readable: set[str]) -> None:
    rows = conn.execute(
        """
        SELECT id, dag_id, kind, coalesce(nullif(team_name, ''), team) AS team, subject, requested_at,
               deadline, url
        FROM signoffs WHERE outcome = 'pending' ORDER BY deadline, id LIMIT 20
        """
    ).fetchall()
    data.signoffs = [SignoffRow(**r) for r in rows if r["dag_id"] in readable]


def _load_slos(
    conn: psycopg.Connection[dict[str, Any]],
    cfg: MaintenanceConfig,
    data: PageData,
    readable: set[str],
    tables: set[str],
) -> None:
    slos = cfg.slos
    perf = "performance_analysis"

    def latest(dag_id: str, check: str) -> dict[str, Any] | None:
        if dag_id not in readable:
            return None
        return conn.execute(_LATEST_CHECK, [dag_id, check]).fetchone()

    def measured_of(row: dict[str, Any] | None, detail: str) -> float | None:
        if row is None:
            return None
        value = (row["details"] or {}).get(detail)
        if value is None:
            value = row["observed"]
        return None if value is None else float(value)

    def add(
        name: str, target: str, value: float | None, shown: str, met: bool, source: str, row: Any
    ) -> None:
        """One SLO row; ``shown``/``met`` only count when something was measured (``value``)."""
        data.slos.append(
            SloRow(
                name,
                target,
                "no measurement yet" if value is None else shown,
                "unknown" if value is None else ("met" if met else "missed"),
                source,
                None if row is None else row["recorded_at"],
            )
        )

    avail = latest(perf, "service.availability")
    a = measured_of(avail, "availability_pct")
    add(
        "Availability",
        f"{slos.availability_pct:g} %",
        a,
        f"{number(a or 0, 3)} % this month",
        a is not None and a >= slos.availability_pct,
        f"{perf} · service.availability",
        avail,
    )
    lat = latest(perf, "service.latency_p95")
    p95 = measured_of(lat, "week_ms")
    add(
        "Response time (p95)",
        f"< {slos.response_time_p95_ms:g} ms",
        p95,
        f"{p95 or 0:.0f} ms this week",
        p95 is not None and p95 < slos.response_time_p95_ms,
        f"{perf} · service.latency_p95",
        lat,
    )
    health = "system_health_check"
    probe: dict[str, Any] | None = None
    if health in readable:
        probe = conn.execute(
            """
            SELECT c.check_name, c.observed, c.recorded_at FROM (
                SELECT run_id FROM check_results WHERE dag_id = %(dag)s
                ORDER BY recorded_at DESC, id DESC LIMIT 1
            ) l JOIN check_results c ON c.dag_id = %(dag)s AND c.run_id = l.run_id
            WHERE c.metric = 'latency_ms' AND c.observed IS NOT NULL
            ORDER BY c.observed DESC LIMIT 1
            """,
            {"dag": health},
        ).fetchone()
    slowest = None if probe is None else float(probe["observed"])
    add(
        "Response time (daily probe, slowest endpoint)",
        f"< {slos.response_time_p95_ms:g} ms",
        slowest,
        "" if probe is None else f"{slowest:.0f} ms ({probe['check_name'].removeprefix('http.')})",
        slowest is not None and slowest < slos.response_time_p95_ms,
        f"{health} · http.*",
        probe,
    )
    err = latest(perf, "service.error_rate")
    e = measured_of(err, "week_pct")
    add(
        "Error rate",
        f"< {slos.error_rate_pct:g} %",
        e,
        f"{number(e or 0, 3)} % this week",
        e is not None and e < slos.error_rate_pct,
        f"{perf} · service.error_rate",
        err,
    )
    objective = slos.recovery_time_minutes * 60
    if "recovery_tests" in tables:
        test = conn.execute(
            """
            SELECT dag_id, kind, started_at, rto_seconds FROM recovery_tests
            WHERE rto_seconds IS NOT NULL AND dag_id = ANY(%s)
            ORDER BY started_at DESC LIMIT 1
            """,
            [sorted(readable)],
        ).fetchone()
    else:
        test = None
    data.slos.append(
        SloRow(
            "Recovery time (latest recovery test)",
            f"< {minutes(objective)}",
            "no recovery test yet"
            if test is None
            else f"{minutes(float(test['rto_seconds']))} ({test['kind']})",
            "unknown" if test is None else ("met" if float(test["rto_seconds"]) < objective else "missed"),
            "recovery_tests" if test is None else f"{test['dag_id']} · recovery_tests",
            None if test is None else test["started_at"],
        )
    )
    if "incidents" in tables:
        inc = conn.execute(
            """
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE resolved_at - opened_at >= make_interval(secs => %(obj)s)) AS over,
                   max(extract(epoch FROM resolved_at - opened_at)) AS longest,
                   max(resolved_at) AS last
            FROM incidents
            WHERE resolved_at >= %(since)s AND dag_id = ANY(%(dags)s)
            """,
            {"obj": objective, "since": data.now - _RECOVERY_WINDOW, "dags": sorted(readable)},
        ).fetchone()
        n = int(inc["n"]) if inc else 0
        over = int(inc["over"]) if inc else 0
        data.slos.append(
            SloRow(
                "Recovery time (incidents, last 90 days)",
                f"< {minutes(objective)}",
                "no incident resolved"
                if n == 0 or inc is None
                else f"{n - over} of {n} resolved within the objective; longest {minutes(float(inc['longest']))}",
                "unknown" if n == 0 else ("met" if over == 0 else "missed"),
                "incidents",
                None if inc is None else inc["last"],
            )
        )


def _load_recovery(conn: psycopg.Connection[dict[str, Any]], data: PageData, readable: set[str]) -> None:
    rows = conn.execute(
        """
        SELECT kind, dag_id, run_id, started_at, rto_seconds, status,
               CASE WHEN jsonb_typeof(details -> 'phases') = 'array' THEN details -> 'phases' END AS phases,
               CASE WHEN jsonb_typeof(details -> 'components') = 'object' THEN details -> 'components' END
                   AS components
        FROM recovery_tests
        WHERE rto_seconds IS NOT NULL AND started_at >= %s AND dag_id = ANY(%s)
        ORDER BY started_at
        """,
        [data.now - dt.timedelta(days=366), sorted(readable)],
    ).fetchall()
    data.recovery = [
        RecoveryPoint(
            **{
                **r,
                "phases": tuple(p for p in (r["phases"] or []) if isinstance(p, dict)),
                "components": {str(k): v for k, v in (r["components"] or {}).items() if isinstance(v, dict)},
            }
        )
        for r in rows
    ]
    if CAPACITY_DAG_ID in readable:
        row = conn.execute(_LATEST_CHECK, [CAPACITY_DAG_ID, "rto_forecast"]).fetchone()
        if row is not None:
            data.rto_forecast = (str(row["status"]), str(row["summary"]), row["recorded_at"])


_NOTIFICATION_COLUMNS: Final = sql.SQL(
    "id, dag_id, kind, channel, left(text, 400) AS text, created_at, sent_at, given_up_at, attempts, last_error"
)


def _notification(row: Mapping[str, Any]) -> NotificationRow:
    state = (
        "sent" if row["sent_at"] is not None else "given up" if row["given_up_at"] is not None else "pending"
    )
    return NotificationRow(
        id=int(row["id"]),
        dag_id=row["dag_id"],
        kind=row["kind"],
        channel=row["channel"],
        text=row["text"],
        created_at=row["created_at"],
        state=state,
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
    )


def _load_notifications(conn: psycopg.Connection[dict[str, Any]], data: PageData, readable: set[str]) -> None:
    dags = sorted(readable)
    latest = conn.execute(
        sql.SQL("SELECT {} FROM notifications WHERE dag_id = ANY(%s) ORDER BY id DESC LIMIT %s").format(
            _NOTIFICATION_COLUMNS
        ),
        [dags, NOTIFICATION_LIMIT],
    ).fetchall()
    data.notifications = [_notification(r) for r in latest]
    # Both partial indexes (pending: 001, given up: 012) keep these cheap however long the history.
    undelivered = conn.execute(
        sql.SQL(
            """
            (SELECT {cols} FROM notifications
             WHERE sent_at IS NULL AND given_up_at IS NULL AND dag_id = ANY(%(dags)s) ORDER BY id DESC LIMIT %(n)s)
            UNION ALL
            (SELECT {cols} FROM notifications
             WHERE sent_at IS NULL AND given_up_at IS NOT NULL AND dag_id = ANY(%(dags)s) ORDER BY id DESC LIMIT %(n)s)
            ORDER BY id DESC LIMIT %(n)s
            """
        ).format(cols=_NOTIFICATION_COLUMNS),
        {"dags": dags, "n": UNDELIVERED_LIMIT},
    ).fetchall()
    data.undelivered = [_notification(r) for r in undelivered]
    counts = conn.execute(
        """
        SELECT (SELECT count(*) FROM notifications WHERE sent_at IS NULL AND given_up_at IS NULL
                AND dag_id = ANY(%(dags)s)) AS pending,
               (SELECT count(*) FROM notifications WHERE sent_at IS NULL AND given_up_at IS NOT NULL
                AND dag_id = ANY(%(dags)s)) AS given_up
        """,
        {"dags": dags},
    ).fetchone()
    data.pending_count = int(counts["pending"]) if counts else 0
    data.given_up_count = int(counts["given_up"]) if counts else 0
