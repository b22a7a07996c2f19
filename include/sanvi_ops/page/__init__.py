"""The Maintenance page: what the results store says, at a glance, as one HTML page.

The Airflow plugin in ``plugins/sanvi_ops_plugin.py`` is thin: it authenticates the user with
Airflow's own API dependencies, asks the auth manager which DAGs that user may read, and calls
:func:`load_page` and :func:`render_page` here. Everything the page shows comes from the results
store (``include/sanvi_ops/core/sql/store/``) and the config (``include/config/maintenance.yaml``):

* the calendar as the guide's four tables (daily, weekly, monthly, quarterly) plus the backup jobs,
  each task with its schedule, next run (the same timetable the scheduler walks,
  :mod:`sanvi_ops.core.calendar`), last run and last status (the worst result of its newest stored run);
* open incidents with their age and P-level, and the active silences (table ``silences``, created by
  migration 011: until it exists the page says so and offers no form);
* SLO status: the latest Performance Analysis results for availability, p95 response time and error
  rate, the daily health probe's slowest endpoint, and recovery time (latest recovery test and the
  incidents resolved in the last 90 days) against the guide's "< 1 hour";
* every measured recovery time (``recovery_tests``, every kind) against the 1-hour objective, as an
  inline SVG chart drawn here (no script, no CDN); the newest tests' phases (download, extract, …,
  ``recovery_tests.details.phases``) as stacked bars, and capacity planning's latest RTO
  forecast (check ``rto_forecast``: the month the restore will cross the objective);
* the latest notifications, and the ones not delivered to Slack (pending or given up).

Speed: one connection, one read-only transaction, and queries that each walk an index (one
``LIMIT 1`` per DAG for its newest run, never a scan of the whole history), so the page stays well
under 300 ms with years of history (``make bench BENCH=maintenance_page``).
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from sanvi_ops.core import silences as silence_rules
from sanvi_ops.core.calendar import WATCHDOG_DAG_ID, describe, next_runs, non_guide_dags
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.silences import MAX_REASON_CHARS, MAX_SILENCE
from sanvi_ops.core.store import redact

__all__ = [
    "CADENCE_TITLES",
    "CalendarRow",
    "IncidentRow",
    "NotificationRow",
    "PageData",
    "RecoveryPoint",
    "SilenceRow",
    "SignoffRow",
    "SilencesUnavailable",
    "SloRow",
    "StoreUnavailable",
    "add_silence",
    "all_dag_ids",
    "lift_silence",
    "load_page",
    "page_without_store",
    "recovery_chart_svg",
    "render_page",
    "render_unavailable",
]

log = logging.getLogger(__name__)

#: The guide's four tables, in its order, then the jobs the config adds (database backups).
CADENCE_TITLES: Final[Mapping[str, str]] = {
    "daily": "Daily Tasks",
    "weekly": "Weekly Tasks",
    "monthly": "Monthly Tasks",
    "quarterly": "Quarterly Tasks",
    "backups": "Other scheduled jobs (backups, meta-monitoring)",
}
_STATUS_RANK: Final = {"ok": 0, "skipped": 1, "warning": 2, "error": 3, "critical": 4}
MAX_PATTERN_CHARS: Final = 200
#: How many of the latest notifications the page lists, and of the undelivered ones.
NOTIFICATION_LIMIT: Final = 15
UNDELIVERED_LIMIT: Final = 10
#: Queries may not hold the page hostage: the whole read gets this long on the server.
STATEMENT_TIMEOUT_MS: Final = 5000
_RECOVERY_WINDOW: Final = dt.timedelta(days=90)


class SilencesUnavailable(RuntimeError):
    """The store has no ``silences`` table yet (migration 011 not applied)."""


class StoreUnavailable(RuntimeError):
    """The results store cannot be reached or read; the message says why (never a password).
    The page answers HTTP 503 with it."""


# ---------------------------------------------------------------------------------------------
# What the page shows
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarRow:
    dag_id: str
    title: str
    team: str
    schedule: str
    next_run: dt.datetime | None
    last_run: dt.datetime | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    #: The summary of the run's worst result (what a person reads first).
    last_summary: str = ""
    checks: int = 0


@dataclass(frozen=True)
class IncidentRow:
    id: int
    dag_id: str
    check: str
    severity: str
    summary: str
    opened_at: dt.datetime
    last_update_at: dt.datetime
    age: dt.timedelta

    @property
    def ref(self) -> str:
        return f"#{self.id}"


@dataclass(frozen=True)
class SilenceRow:
    id: int
    dag_id: str | None
    check_pattern: str | None
    reason: str
    created_by: str
    source: str
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class SignoffRow:
    """A sign-off, findings form or approval still waiting for a person (table ``signoffs``, 009)."""

    id: int
    dag_id: str
    kind: str
    team: str
    subject: str
    requested_at: dt.datetime
    deadline: dt.datetime
    url: str


@dataclass(frozen=True)
class SloRow:
    name: str
    target: str
    measured: str
    #: ``met``, ``missed`` or ``unknown`` (nothing measured yet).
    state: str
    source: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class RecoveryPoint:
    kind: str
    dag_id: str
    run_id: str
    started_at: dt.datetime
    rto_seconds: float
    status: str
    #: The test's phases (``recovery_tests.details.phases``): name, seconds, bytes, mb_per_s, in_rto.
    phases: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class NotificationRow:
    id: int
    dag_id: str
    kind: str
    channel: str
    text: str
    created_at: dt.datetime
    #: ``sent``, ``pending`` or ``given up``.
    state: str
    attempts: int
    last_error: str | None


@dataclass
class PageData:
    now: dt.datetime
    timezone: str
    calendar: dict[str, list[CalendarRow]]
    incidents: list[IncidentRow] = field(default_factory=list)
    silences: list[SilenceRow] = field(default_factory=list)
    silences_available: bool = False
    signoffs: list[SignoffRow] = field(default_factory=list)
    slos: list[SloRow] = field(default_factory=list)
    recovery: list[RecoveryPoint] = field(default_factory=list)
    recovery_objective_s: float = 3600.0
    #: Capacity planning's newest ``rto_forecast`` result: (status, summary, recorded_at).
    rto_forecast: tuple[str, str, dt.datetime] | None = None
    notifications: list[NotificationRow] = field(default_factory=list)
    undelivered: list[NotificationRow] = field(default_factory=list)
    pending_count: int = 0
    given_up_count: int = 0
    #: Things a person should know about the page itself (store unreachable, schema missing).
    problems: list[str] = field(default_factory=list)
    #: Why the store could not be read at all (unreachable, connection missing): the page is then
    #: answered with HTTP 503 and this reason (it is also in :attr:`problems`).
    unavailable: str | None = None
    dag_ids: list[str] = field(default_factory=list)
    #: Longest a silence may last (config ``silence_max_duration``): the form's upper bound.
    max_silence: dt.timedelta = MAX_SILENCE


def all_dag_ids(cfg: MaintenanceConfig) -> list[str]:
    """Every DAG the page knows: the guide's tasks, then the backup jobs."""
    return [*cfg.tasks, *non_guide_dags(cfg)]


# ---------------------------------------------------------------------------------------------
# Reading the store
# ---------------------------------------------------------------------------------------------


def _connect(dsn: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(dsn, connect_timeout=5, application_name="sanvi-ops-page", row_factory=dict_row)


def _tables(conn: psycopg.Connection[dict[str, Any]]) -> set[str]:
    wanted = [
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
                schedule=f"cron {job.cron} {cfg.timezone}",
                next_run=_next_run(cfg, dag_id, job.cron, now),
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
        with _connect(dsn) as conn:
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SELECT set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)])
            tables = _tables(conn)
            if "check_results" not in tables:
                data.problems.append(
                    f"{store_name} has no schema yet: it is created by the first DAG run that records results"
                )
                return data
            _load_calendar(conn, data, dags, heartbeats="heartbeats" in tables)
            if "incidents" in tables:
                _load_incidents(conn, data, readable)
            data.silences_available = "silences" in tables
            if data.silences_available:
                data.silences = _active_silences(conn, readable)
            if "signoffs" in tables:
                _load_signoffs(conn, data, readable)
            _load_slos(conn, cfg, data, readable)
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


def _load_incidents(conn: psycopg.Connection[dict[str, Any]], data: PageData, readable: set[str]) -> None:
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
        )
        for r in rows
        if r["dag_id"] in readable
    ]


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


def _fmt_number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def _load_slos(
    conn: psycopg.Connection[dict[str, Any]], cfg: MaintenanceConfig, data: PageData, readable: set[str]
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
        f"{_fmt_number(a or 0, 3)} % this month",
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
        f"{_fmt_number(e or 0, 3)} % this week",
        e is not None and e < slos.error_rate_pct,
        f"{perf} · service.error_rate",
        err,
    )
    objective = slos.recovery_time_minutes * 60
    tables = _tables(conn)
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
            f"< {_minutes(objective)}",
            "no recovery test yet"
            if test is None
            else f"{_minutes(float(test['rto_seconds']))} ({test['kind']})",
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
                f"< {_minutes(objective)}",
                "no incident resolved"
                if n == 0 or inc is None
                else f"{n - over} of {n} resolved within the objective; longest {_minutes(float(inc['longest']))}",
                "unknown" if n == 0 else ("met" if over == 0 else "missed"),
                "incidents",
                None if inc is None else inc["last"],
            )
        )


def _load_recovery(conn: psycopg.Connection[dict[str, Any]], data: PageData, readable: set[str]) -> None:
    rows = conn.execute(
        """
        SELECT kind, dag_id, run_id, started_at, rto_seconds, status,
               CASE WHEN jsonb_typeof(details -> 'phases') = 'array' THEN details -> 'phases' END AS phases
        FROM recovery_tests
        WHERE rto_seconds IS NOT NULL AND started_at >= %s AND dag_id = ANY(%s)
        ORDER BY started_at
        """,
        [data.now - dt.timedelta(days=366), sorted(readable)],
    ).fetchall()
    data.recovery = [
        RecoveryPoint(**{**r, "phases": tuple(p for p in (r["phases"] or []) if isinstance(p, dict))})
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


# ---------------------------------------------------------------------------------------------
# Silences (table from migration 011; the page adds and lifts UI silences)
# ---------------------------------------------------------------------------------------------


def _require_silences(conn: psycopg.Connection[dict[str, Any]]) -> None:
    if "silences" not in _tables(conn):
        raise SilencesUnavailable(
            "the results store has no silences table yet (store migration 011 has not been applied)"
        )


def add_silence(
    dsn: str,
    *,
    dag_id: str | None,
    check_pattern: str | None,
    reason: str,
    created_by: str,
    expires_at: dt.datetime,
    known_dag_ids: Collection[str],
    now: dt.datetime | None = None,
    max_duration: dt.timedelta = MAX_SILENCE,
) -> int:
    """Add a UI silence (``source = 'ui'``); returns its id.

    The rules are :func:`sanvi_ops.core.silences.validate`'s, the same as for the config file's
    silences (a reason, an author, an expiry in the future and at most ``max_duration`` away, a DAG
    or a check pattern); the page adds that the DAG must be one of this project's.

    :raises ValueError: naming the field (:class:`~sanvi_ops.core.silences.SilenceError` is one).
    :raises SilencesUnavailable: when migration 011 has not created the table yet.
    :raises StoreUnavailable: when the store cannot be reached or written.
    """
    dag = (dag_id or "").strip() or None
    pattern = (check_pattern or "").strip() or None
    if dag is not None and dag not in known_dag_ids:
        raise ValueError(f"silence.dag_id: {dag!r} is not a DAG of this project")
    if pattern is not None and len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"silence.check_pattern: at most {MAX_PATTERN_CHARS} characters")
    with _reaching(dsn, "add the silence"):
        with _connect(dsn) as conn:
            _require_silences(conn)
        silence = silence_rules.add_silence(
            dsn,
            dag_id=dag,
            check_pattern=pattern,
            reason=reason,
            created_by=created_by,
            expires_at=expires_at,
            source="ui",
            now=now,
            max_duration=max_duration,
        )
    return silence.id


def lift_silence(
    dsn: str,
    silence_id: int,
    *,
    by: str,
    editable_dag_ids: Collection[str] | None = None,
    known_dag_ids: Collection[str] = (),
) -> bool:
    """Lift an active UI silence now; ``False`` when it is unknown, already lifted or expired.

    :param editable_dag_ids: the DAGs ``by`` may edit (``None`` = all). A silence of one DAG needs
        that DAG; a silence of every DAG needs every DAG in ``known_dag_ids``.
    :raises PermissionError: naming the silence and the DAG when ``by`` may not lift it.
    :raises ValueError: for a silence from the config file (deleting its entry lifts it; lifted
        here, the next run's sync would put it back).
    :raises SilencesUnavailable: when migration 011 has not created the table yet.
    :raises StoreUnavailable: when the store cannot be reached or written.
    """
    with _reaching(dsn, f"lift silence #{silence_id}"), _connect(dsn) as conn:
        _require_silences(conn)
        found = conn.execute(
            "SELECT dag_id, source FROM silences WHERE id = %s AND lifted_at IS NULL AND expires_at > now()",
            [silence_id],
        ).fetchone()
    if found is None:
        return False
    if found["source"] != "ui":
        raise ValueError(
            f"silence #{silence_id} comes from the config file: delete its entry under silences: "
            "in maintenance.yaml to lift it"
        )
    if editable_dag_ids is not None:
        needed = {found["dag_id"]} if found["dag_id"] is not None else set(known_dag_ids)
        missing = sorted(needed - set(editable_dag_ids))
        if missing:
            raise PermissionError(
                f"silence #{silence_id}: {by} may not edit DAG(s) {', '.join(missing)}, so may not lift it"
            )
    with _reaching(dsn, f"lift silence #{silence_id}"):
        silence_rules.lift_silence(dsn, silence_id, by)
    return True


@contextmanager
def _reaching(dsn: str, action: str) -> Iterator[None]:
    """Store failures while doing ``action`` → :class:`StoreUnavailable` naming it (no password)."""
    from sanvi_ops.core.store import StoreError

    try:
        yield
    except psycopg.Error as exc:
        reason = redact(" ".join(str(exc).split()), dsn)
        raise StoreUnavailable(f"the results store could not {action}: {reason}") from None
    except StoreError as exc:
        raise StoreUnavailable(f"the results store could not {action}: {redact(str(exc), dsn)}") from None


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

CAPACITY_DAG_ID: Final = "capacity_planning"
_PHASE_COLOURS: Final = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)

_KIND_COLOURS: Final = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 7200:  # the objective reads "60 min", a 70-minute drill "70 min"
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _age(delta: dt.timedelta) -> str:
    s = max(0, int(delta.total_seconds()))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def _when(value: dt.datetime | None, tz: str) -> str:
    if value is None:
        return "—"
    from zoneinfo import ZoneInfo

    local = value.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def phase_bar_svg(phases: Sequence[Mapping[str, Any]], scale_s: float, *, width: int = 420) -> str:
    """One recovery test's phases as a stacked bar (``scale_s`` seconds = full width); the phases
    after the RTO mark (validation) are hatched lighter. Every name is escaped."""
    x, parts = 0.0, []
    for i, p in enumerate(phases):
        try:
            seconds = max(0.0, float(p.get("seconds") or 0))
        except (TypeError, ValueError):
            continue
        w = width * seconds / scale_s if scale_s > 0 else 0.0
        rate = p.get("mb_per_s")
        label = f"{p.get('name', '?')}: {seconds:.1f} s" + (f" ({rate} MB/s)" if rate is not None else "")
        opacity = "1" if p.get("in_rto", True) else "0.45"
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="14" fill="{_PHASE_COLOURS[i % len(_PHASE_COLOURS)]}" '
            f'fill-opacity="{opacity}"><title>{_e(label)}</title></rect>'
        )
        x += w
    return (
        f'<svg class=phasebar width="{width}" height="14" viewBox="0 0 {width} 14" role="img" '
        f'aria-label="restore phases">{"".join(parts)}</svg>'
    )


def phases_table(points: Sequence[RecoveryPoint], tz: str, *, limit: int = 6) -> str:
    """The newest recovery tests with recorded phases: when, kind, RTO, a stacked bar and the line."""
    from sanvi_ops.core.rto_forecast import phases_line

    with_phases = [p for p in points if p.phases][-limit:]
    if not with_phases:
        return "<p class=small>No recovery test has recorded its phases yet.</p>"
    scale = max(sum(max(0.0, float(ph.get("seconds") or 0)) for ph in p.phases) for p in with_phases) or 1.0
    rows = [
        "<table class=phases><tr><th>Test</th><th>Kind</th><th>RTO</th><th>Phases (faded: validation after "
        "the RTO mark)</th></tr>"
    ]
    for p in reversed(with_phases):
        rows.append(
            f"<tr><td>{_e(_when(p.started_at, tz))}</td><td>{_e(p.kind)}</td><td>{_e(_minutes(p.rto_seconds))}</td>"
            f"<td>{phase_bar_svg(p.phases, scale)}<div class=small>{_e(phases_line(p.phases))}</div></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def recovery_chart_svg(
    points: Sequence[RecoveryPoint],
    objective_s: float,
    *,
    start: dt.datetime,
    end: dt.datetime,
    width: int = 900,
    height: int = 260,
) -> str:
    """Measured recovery times (minutes) over time, one colour per kind, the objective as a red line.

    Plain SVG text: no script, nothing fetched. Each point has a ``<title>`` (kind, date, minutes).
    """
    left, right, top, bottom = 56, 170, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_minutes = max([objective_s / 60 * 1.25, *[p.rto_seconds / 60 * 1.1 for p in points]])
    step = next(s for s in (5, 10, 15, 30, 60, 120, 240, 480, 960, 1e9) if top_minutes / s <= 6)
    top_minutes = math.ceil(top_minutes / step) * step
    span = max((end - start).total_seconds(), 1.0)

    def x(at: dt.datetime) -> float:
        return left + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    def y(minutes: float) -> float:
        return top + plot_h * (1 - min(minutes, top_minutes) / top_minutes)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" aria-label="Measured recovery times against the '
        f'{_minutes(objective_s)} objective">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    value = 0.0
    while value <= top_minutes + 1e-9:
        yy = y(value)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" font-size="11">{value:g}</text>')
        value += step
    out.append(
        f'<text x="14" y="{top + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 14 {top + plot_h / 2:.0f})" '
        'text-anchor="middle">minutes</text>'
    )
    month = dt.datetime(start.year, start.month, 1, tzinfo=dt.UTC)
    while month <= end:
        if month >= start:
            xx = x(month)
            out.append(
                f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#888"/>'
            )
            out.append(
                f'<text x="{xx:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10">{month:%b %y}</text>'
            )
        month = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=dt.UTC)
    oy = y(objective_s / 60)
    out.append(
        f'<line class="objective" x1="{left}" x2="{left + plot_w}" y1="{oy:.1f}" y2="{oy:.1f}" '
        'stroke="#d62728" stroke-width="2" stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{left + plot_w - 4}" y="{oy - 5:.1f}" text-anchor="end" font-size="11" fill="#d62728">'
        f"objective {_minutes(objective_s)}</text>"
    )
    kinds = sorted({p.kind for p in points})
    colour = {k: _KIND_COLOURS[i % len(_KIND_COLOURS)] for i, k in enumerate(kinds)}
    for kind in kinds:
        series = [p for p in points if p.kind == kind]
        if len(series) > 1:
            path = " ".join(f"{x(p.started_at):.1f},{y(p.rto_seconds / 60):.1f}" for p in series)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour[kind]}" stroke-opacity="0.5"/>'
            )
        for p in series:
            over = p.rto_seconds >= objective_s
            ring = ' stroke="#d62728" stroke-width="2"' if over else ""
            out.append(
                f'<circle class="point{" over" if over else ""}" cx="{x(p.started_at):.1f}" '
                f'cy="{y(p.rto_seconds / 60):.1f}" r="{4 if over else 3}" fill="{colour[kind]}"{ring}>'
                f"<title>{_e(kind)} {p.started_at:%Y-%m-%d}: {_minutes(p.rto_seconds)}</title></circle>"
            )
    for i, kind in enumerate(kinds):
        ly = top + 12 + i * 18
        out.append(f'<circle cx="{left + plot_w + 16}" cy="{ly - 4}" r="5" fill="{colour[kind]}"/>')
        count = sum(1 for p in points if p.kind == kind)
        out.append(f'<text x="{left + plot_w + 26}" y="{ly}" font-size="11">{_e(kind)} ({count})</text>')
    if not points:
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" font-size="13" '
            'fill="#666">no recovery time measured in the last year</text>'
        )
    out.append("</svg>")
    return "".join(out)


_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a1a1a;font-size:14px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}
table{border-collapse:collapse;width:100%;margin-bottom:8px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f4f4f4;font-weight:600}
.meta{color:#555}.small{font-size:12px;color:#555}
.s{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff;background:#888}
.s-ok,.s-met,.s-sent{background:#2e7d32}.s-warning,.s-pending{background:#ed8c00}
.s-error,.s-given-up{background:#7b1fa2}.s-critical,.s-missed,.s-P1{background:#c62828}
.s-skipped,.s-unknown,.s-never{background:#9e9e9e}.s-P2{background:#ef6c00}.s-P3{background:#f9a825;color:#222}
.s-P4{background:#607d8b}
.problem{background:#fff3e0;border:1px solid #ffb74d;padding:8px 12px;margin:8px 0}
.notice{background:#e8f5e9;border:1px solid #81c784;padding:8px 12px;margin:8px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:0 24px}
form.inline{display:inline}
form.silence label{display:inline-block;margin-right:10px}
form.silence input[type=text]{width:220px}
.chart{max-width:100%;height:auto}
table.calendar{table-layout:fixed}
table.calendar td{overflow-wrap:anywhere}
td.t{white-space:nowrap}
td.small{overflow-wrap:anywhere}
.glance-bar{display:flex;flex-wrap:wrap;gap:8px;margin:10px 0 4px}
a.glance{color:#fff;text-decoration:none;padding:4px 12px;border-radius:14px;font-weight:600;font-size:13px}
a{color:#0b57d0}
"""


def _status_badge(status: str | None) -> str:
    label = status or "never ran"
    css = (status or "never").replace(" ", "-")
    return f'<span class="s s-{_e(css)}">{_e(label)}</span>'


def _dag_link(dag_id: str, base: str) -> str:
    return f'<a href="{_e(base)}dags/{_e(dag_id)}" target="_top">{_e(dag_id)}</a>'


def render_page(
    data: PageData,
    *,
    user: str,
    csrf_token: str,
    may_silence: bool,
    airflow_base: str = "../",
    action_base: str = "",
    message: str | None = None,
    error: str | None = None,
) -> str:
    """The whole page as HTML (no script). Links to DAGs are relative to ``airflow_base``; forms post
    to ``action_base`` + ``silences`` / ``silences/<id>/lift`` with ``csrf_token``."""
    tz = data.timezone
    parts: list[str] = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Maintenance · Sanvi Ops</title><style>{_CSS}</style></head><body>",
        "<h1>Maintenance</h1>",
        f'<p class="meta">As of {_e(_when(data.now, tz))} {_e(tz)} · signed in as <b>{_e(user)}</b> · '
        f"from the results store</p>",
    ]
    if message:
        parts.append(f'<div class="notice" role="status">{_e(message)}</div>')
    if error:
        parts.append(f'<div class="problem" role="alert">{_e(error)}</div>')
    for problem in data.problems:
        parts.append(f'<div class="problem" role="alert">{_e(problem)}</div>')
    parts.append(_glance(data))
    parts.append(_render_calendar(data, airflow_base))
    parts.append('<div class="grid"><div>')
    parts.append(_render_incidents(data, airflow_base))
    parts.append("</div><div>")
    parts.append(
        _render_silences(data, csrf_token=csrf_token, may_silence=may_silence, action_base=action_base)
    )
    parts.append("</div></div>")
    if data.signoffs:
        parts.append(_render_signoffs(data, airflow_base))

    # SLOs -----------------------------------------------------------------------------------
    parts.append('<h2 id="slos">SLO status</h2><table class="slos">')
    parts.append(
        "<tr><th>SLO</th><th>Target</th><th>Measured</th><th>Status</th><th>From</th><th>At</th></tr>"
    )
    for slo in data.slos:
        parts.append(
            f"<tr><td>{_e(slo.name)}</td><td>{_e(slo.target)}</td><td>{_e(slo.measured)}</td>"
            f"<td>{_status_badge(slo.state)}</td><td class=small>{_e(slo.source)}</td>"
            f"<td>{_e(_when(slo.at, tz))}</td></tr>"
        )
    parts.append("</table>")

    # Recovery times ------------------------------------------------------------------------------
    over = sum(1 for p in data.recovery if p.rto_seconds >= data.recovery_objective_s)
    parts.append(
        f'<h2 id="recovery">Measured recovery times (last 12 months: {len(data.recovery)} tests, '
        f"{over} over the {_e(_minutes(data.recovery_objective_s))} objective)</h2>"
    )
    parts.append(
        recovery_chart_svg(
            data.recovery, data.recovery_objective_s, start=data.now - dt.timedelta(days=365), end=data.now
        )
    )
    if data.rto_forecast is not None:
        status, summary, at = data.rto_forecast
        parts.append(
            f"<p id=rto-forecast>{_status_badge(status)} {_e(summary)} "
            f"<span class=small>(capacity planning, {_e(_when(at, tz))})</span></p>"
        )
    else:
        parts.append(
            "<p id=rto-forecast class=small>No RTO forecast yet (capacity_planning computes it).</p>"
        )
    parts.append(phases_table(data.recovery, tz))

    # Notifications ----------------------------------------------------------------------------------
    parts.append(
        f'<h2 id="notifications">Notifications · {data.pending_count} pending, '
        f"{data.given_up_count} given up (not delivered to Slack)</h2>"
    )
    if data.undelivered:
        parts.append("<h3>Not delivered to Slack</h3>")
        parts.append(_notification_table(data.undelivered, tz, "undelivered"))
    parts.append(f"<h3>Latest {len(data.notifications)}</h3>")
    parts.append(_notification_table(data.notifications, tz, "notifications"))
    parts.append("</body></html>")
    return "".join(parts)


def render_unavailable(reason: str, *, user: str | None = None, retry_url: str = "./") -> str:
    """The page's own error panel, for when it cannot show anything useful (answered with HTTP
    503): the maintenance config is broken, or the results store is down for a write. ``reason``
    is shown as given (escaped): callers pass text without secrets."""
    who = f" · signed in as <b>{_e(user)}</b>" if user else ""
    return "".join(
        [
            "<!doctype html><html lang=en><head><meta charset=utf-8>",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Maintenance unavailable · Sanvi Ops</title><style>{_CSS}</style></head><body>",
            "<h1>Maintenance</h1>",
            f'<p class="meta">The page cannot be shown right now (HTTP 503){who}</p>',
            f'<div class="problem" role="alert"><b>Unavailable:</b> <span class="reason">{_e(reason)}</span></div>',
            f'<p><a href="{_e(retry_url)}">Try again</a> once it is fixed. Nothing was changed.</p>',
            "</body></html>",
        ]
    )


_CALENDAR_COLS: Final = (
    "<colgroup>"
    + "".join(f'<col style="width:{w}%">' for w in (13, 16, 9, 21, 10, 10, 7, 14))
    + "</colgroup>"
)


def _glance(data: PageData) -> str:
    """One line that answers "is anything wrong?" with links to the sections below."""
    missed = sum(1 for s in data.slos if s.state == "missed")
    failing = sum(
        1 for rows in data.calendar.values() for r in rows if r.last_status in {"error", "critical"}
    )
    items = [
        (
            "incidents",
            f"{len(data.incidents)} open incident{'s' if len(data.incidents) != 1 else ''}",
            "critical" if data.incidents else "ok",
        ),
        ("calendar", f"{failing} task{'s' if failing != 1 else ''} failing", "error" if failing else "ok"),
        ("slos", f"{missed} SLO{'s' if missed != 1 else ''} missed", "missed" if missed else "ok"),
        (
            "notifications",
            f"{data.pending_count + data.given_up_count} not delivered to Slack",
            "pending" if data.pending_count + data.given_up_count else "ok",
        ),
        (
            "silences",
            f"{len(data.silences)} active silence{'s' if len(data.silences) != 1 else ''}",
            "warning" if data.silences else "ok",
        ),
    ]
    if data.signoffs:
        items.append(("signoffs", f"{len(data.signoffs)} waiting for a person", "pending"))
    links = "".join(
        f'<a class="glance s-{_e(css)}" href="#{anchor}">{_e(text)}</a>' for anchor, text, css in items
    )
    return f'<nav class="glance-bar" aria-label="At a glance">{links}</nav>'


def _render_calendar(data: PageData, airflow_base: str) -> str:
    tz = data.timezone
    parts: list[str] = []
    parts.append('<h2 id="calendar">Calendar</h2>')
    for key, title in CADENCE_TITLES.items():
        rows = data.calendar.get(key) or []
        if not rows:
            continue
        parts.append(f'<h3>{_e(title)}</h3><table class="calendar" data-cadence="{_e(key)}">')
        parts.append(_CALENDAR_COLS)
        parts.append(
            "<tr><th>Task</th><th>DAG</th><th>Responsible</th><th>Schedule</th><th>Next run</th>"
            "<th>Last run</th><th>Last status</th><th>Worst result</th></tr>"
        )
        for r in rows:
            # An all-green run needs no detail; otherwise its worst result is what to read first.
            worst = (
                f"{r.checks} check{'s' if r.checks != 1 else ''} ok"
                if r.last_status == "ok"
                else r.last_summary
            )
            parts.append(
                f'<tr data-dag="{_e(r.dag_id)}"><td>{_e(r.title)}</td><td>{_dag_link(r.dag_id, airflow_base)}</td>'
                f'<td>{_e(r.team)}</td><td>{_e(r.schedule)}</td><td class="t">{_e(_when(r.next_run, tz))}</td>'
                f'<td class="t">{_e(_when(r.last_run, tz))}</td><td>{_status_badge(r.last_status)}</td>'
                f'<td class="small">{_e(worst)}</td></tr>'
            )
        parts.append("</table>")

    return "".join(parts)


def _render_signoffs(data: PageData, airflow_base: str) -> str:
    tz = data.timezone
    parts = [
        f'<h2 id="signoffs">Waiting for a person ({len(data.signoffs)})</h2>',
        '<table class="signoffs"><tr><th>What</th><th>DAG</th><th>Who</th><th>Subject</th>'
        "<th>Asked</th><th>Deadline</th><th></th></tr>",
    ]
    for so in data.signoffs:
        late = " (overdue)" if so.deadline <= data.now else ""
        link = ""
        if so.url.startswith(("/", "http://", "https://")):
            link = f'<a href="{_e(so.url)}" target="_top">answer</a>'
        parts.append(
            f"<tr><td>{_e(so.kind)}</td><td>{_dag_link(so.dag_id, airflow_base)}</td><td>{_e(so.team)}</td>"
            f'<td class="small">{_e(so.subject)}</td><td class="t">{_e(_when(so.requested_at, tz))}</td>'
            f'<td class="t">{_e(_when(so.deadline, tz))}{late}</td><td>{link}</td></tr>'
        )
    parts.append("</table>")
    return "".join(parts)


def _render_incidents(data: PageData, airflow_base: str) -> str:
    tz = data.timezone
    parts: list[str] = []
    parts.append(f'<h2 id="incidents">Open incidents ({len(data.incidents)})</h2>')
    if data.incidents:
        parts.append(
            '<table class="incidents"><tr><th>Incident</th><th>P-level</th><th>Age</th><th>DAG · check</th>'
            "<th>Summary</th></tr>"
        )
        for i in data.incidents:
            parts.append(
                f"<tr><td>{_e(i.ref)}</td><td>{_status_badge(i.severity)}</td>"
                f'<td title="opened {_e(_when(i.opened_at, tz))}">{_e(_age(i.age))}</td>'
                f"<td>{_dag_link(i.dag_id, airflow_base)} · {_e(i.check)}</td>"
                f'<td class="small">{_e(i.summary)}</td></tr>'
            )
        parts.append("</table>")
    else:
        parts.append("<p>No open incident.</p>")
    return "".join(parts)


def _render_silences(data: PageData, *, csrf_token: str, may_silence: bool, action_base: str) -> str:
    tz = data.timezone
    parts: list[str] = []
    parts.append(f'<h2 id="silences">Active silences ({len(data.silences)})</h2>')
    if not data.silences_available:
        parts.append(
            '<p class="small">Silences are not available yet: the results store has no '
            "<code>silences</code> table (store migration 011).</p>"
        )
    else:
        if data.silences:
            parts.append(
                '<table class="silences"><tr><th>#</th><th>DAG</th><th>Checks</th><th>Reason</th>'
                "<th>By</th><th>Until</th><th></th></tr>"
            )
            for s in data.silences:
                lift = ""
                if may_silence and s.source == "ui":
                    lift = (
                        f'<form class="inline" method="post" action="{_e(action_base)}silences/{s.id}/lift">'
                        f'<input type="hidden" name="csrf" value="{_e(csrf_token)}">'
                        f'<button type="submit">Lift</button></form>'
                    )
                parts.append(
                    f"<tr><td>{s.id}</td><td>{_e(s.dag_id or 'any')}</td><td>{_e(s.check_pattern or 'any')}</td>"
                    f'<td class="small">{_e(s.reason)}</td><td>{_e(s.created_by)} ({_e(s.source)})</td>'
                    f"<td>{_e(_when(s.expires_at, tz))}</td><td>{lift}</td></tr>"
                )
            parts.append("</table>")
        else:
            parts.append("<p>No active silence.</p>")
        if may_silence:
            options = "".join(f'<option value="{_e(d)}">{_e(d)}</option>' for d in data.dag_ids)
            parts.append(
                f'<form class="silence" method="post" action="{_e(action_base)}silences">'
                f'<input type="hidden" name="csrf" value="{_e(csrf_token)}">'
                f'<label>DAG <select name="dag_id"><option value="">any DAG</option>{options}</select></label>'
                '<label>Checks <input type="text" name="check_pattern" placeholder="e.g. http.* (blank: all of the DAG)" '
                f'maxlength="{MAX_PATTERN_CHARS}"></label><br>'
                f'<label>Reason <input type="text" name="reason" required maxlength="{MAX_REASON_CHARS}" '
                'placeholder="why, and who is on it"></label>'
                '<label>For <input type="number" name="hours" required min="0.25" '
                f'max="{data.max_silence.total_seconds() / 3600:g}" step="0.25" value="4" style="width:70px"> hours</label>'
                '<button type="submit">Add silence</button></form>'
            )
        else:
            parts.append('<p class="small">Adding or lifting a silence needs edit access to DAGs.</p>')
    return "".join(parts)


def _notification_table(rows: Iterable[NotificationRow], tz: str, css: str) -> str:
    out = [
        f'<table class="{css}"><tr><th>#</th><th>When</th><th>Kind</th><th>DAG</th><th>Channel</th>'
        "<th>State</th><th>Message</th></tr>"
    ]
    for n in rows:
        first = n.text.strip().splitlines()[0] if n.text.strip() else ""
        error = f'<br><span class="small">last error: {_e(n.last_error)}</span>' if n.last_error else ""
        out.append(
            f"<tr><td>{n.id}</td><td>{_e(_when(n.created_at, tz))}</td><td>{_e(n.kind)}</td>"
            f"<td>{_e(n.dag_id)}</td><td>{_e(n.channel)}</td><td>{_status_badge(n.state)}"
            f"{f' <span class=small>({n.attempts} tries)</span>' if n.state != 'sent' else ''}</td>"
            f'<td class="small">{_e(first[:200])}{error}</td></tr>'
        )
    out.append("</table>")
    return "".join(out)
