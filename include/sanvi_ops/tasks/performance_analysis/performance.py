"""Weekly performance analysis: what PostgreSQL and Prometheus say about the last week.

PostgreSQL (:func:`check_database`), one connection, read-only:

- ``postgres.pg_stat_statements``: ``skipped`` with the commands that enable it when the
  extension is not installed in the database (or its library is not preloaded).
- ``postgres.top_queries``: the top statements by total time, mean time and calls, each with
  its change against last week's snapshot (the counters are cumulative, so this week's calls
  and mean time are the difference of two snapshots). ``warning`` when a frequent statement's
  mean time grew by more than ``regression_pct``.
- ``postgres.cache_hit_ratio``: buffer hits / (hits + reads), held to warning / critical
  floors.
- ``postgres.unused_indexes``: indexes never scanned, except unique and primary-key ones.
- ``postgres.seq_scans``: big tables read mostly by sequential scans.
- ``postgres.connection_pool``: client connections vs the connections a login can get,
  held to the guide's DB-connection thresholds.

Prometheus (:func:`check_service`), evaluated at ``at`` (the run's data interval end):

- ``service.request_rate``: requests per second over the week and now.
- ``service.latency_p95`` / ``service.error_rate``: the week's value against the SLOs
  (p95 < 300 ms, errors < 0.1 %) and the current value against the alert thresholds
  (error rate > 1 % for 5 m / > 5 % for 1 m; p95 > 500 ms / > 1 s).
- ``service.availability``: month-to-date request availability against 99.9 % and the error
  budget left this month.

A query returning no series, or Prometheus being down, is a result that says so, never an
exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from sanvi_ops.core.prometheus import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnreachable,
    RangeSeries,
    promql_duration,
    sustained_min,
)
from sanvi_ops.core.queries import query_loader
from sanvi_ops.core.results import CheckResult, Status, grade
from sanvi_ops.core.store import redact

__all__ = [
    "ENABLE_PG_STAT_STATEMENTS",
    "ServiceLimits",
    "ServiceQueries",
    "StatementStat",
    "check_database",
    "check_service",
    "latest_snapshot",
    "load_chart",
    "mark_chart_shared",
    "save_chart",
    "save_snapshot",
    "week_series",
]

SQL_DIR = Path(__file__).resolve().parent / "sql"
APPLICATION_NAME = "sanvi-ops-performance"

#: What a DBA runs to enable pg_stat_statements (the first two need a restart).
ENABLE_PG_STAT_STATEMENTS = (
    "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; "
    "-- restart PostgreSQL (on RDS: add it to the parameter group), then in the database: "
    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
)


_sql = query_loader(SQL_DIR)


def _reason(exc: BaseException) -> str:
    primary = exc.diag.message_primary if isinstance(exc, psycopg.errors.DatabaseError) else None
    return " ".join((primary or str(exc) or type(exc).__name__).split())


# ------------------------------------------------------------------------------------------
# PostgreSQL
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StatementStat:
    """Cumulative pg_stat_statements counters of one statement."""

    queryid: int
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    rows: int

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StatementStat:
        return cls(
            queryid=int(row["queryid"]),
            query=str(row["query"]),
            calls=int(row["calls"]),
            total_ms=float(row["total_ms"]),
            mean_ms=float(row["mean_ms"]),
            rows=int(row["rows"]),
        )


def statement_changes(
    current: Iterable[StatementStat], previous: Mapping[int, StatementStat] | None
) -> dict[int, dict[str, Any]]:
    """Per statement: this week's calls, total and mean time, and the mean's change vs last week.

    With no previous snapshot (first run) or a statement not in it, or counters that went down
    (``pg_stat_statements_reset()``), the week's figures are the cumulative ones and ``new`` /
    ``reset`` says why.
    """
    out: dict[int, dict[str, Any]] = {}
    for stat in current:
        prev = (previous or {}).get(stat.queryid)
        if prev is None or stat.calls < prev.calls:
            out[stat.queryid] = {
                "week_calls": stat.calls,
                "week_total_ms": round(stat.total_ms, 3),
                "week_mean_ms": round(stat.mean_ms, 3),
                "mean_change_pct": None,
                "baseline": "none" if previous is None else ("reset" if prev else "new"),
            }
            continue
        calls = stat.calls - prev.calls
        total = stat.total_ms - prev.total_ms
        mean = total / calls if calls else 0.0
        change = (mean - prev.mean_ms) / prev.mean_ms * 100 if prev.mean_ms > 0 and calls else None
        out[stat.queryid] = {
            "week_calls": calls,
            "week_total_ms": round(total, 3),
            "week_mean_ms": round(mean, 3),
            "mean_change_pct": None if change is None else round(change, 1),
            "baseline": "last_week",
        }
    return out


def _connect(dsn: str, timeout_s: float) -> psycopg.Connection[dict[str, Any]]:
    conn = psycopg.connect(
        dsn,
        connect_timeout=max(1, int(timeout_s)),
        application_name=APPLICATION_NAME,
        autocommit=True,
        row_factory=dict_row,
    )
    try:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout_s * 1000)}ms"])
    except psycopg.Error:
        conn.close()
        raise
    return conn


def check_database(
    dsn: str,
    previous: Mapping[int, StatementStat] | None,
    *,
    top_n: int = 10,
    regression_pct: float = 50.0,
    regression_min_calls: int = 100,
    cache_hit_warning_pct: float = 99.0,
    cache_hit_critical_pct: float = 90.0,
    seq_scan_min_rows: int = 10_000,
    seq_scan_min_scans: int = 100,
    connections_warning_pct: float = 80.0,
    connections_critical_pct: float = 90.0,
    timeout_s: float = 30.0,
    snapshot_statements: int = 500,
) -> tuple[list[CheckResult], list[StatementStat] | None]:
    """The PostgreSQL half of the analysis; returns the results and the snapshot to keep.

    :param previous: last week's snapshot by queryid (``None``: there is none yet).
    :param snapshot_statements: statements kept per ranking in the snapshot (far more than
        ``top_n``, so next week's top statements are very likely to have a baseline).
    :returns: results, and the statements read now (``None`` when pg_stat_statements is not
        available or the database could not be read).
    """
    try:
        conn = _connect(dsn, timeout_s)
    except psycopg.Error as exc:
        return [
            CheckResult(
                check="postgres.performance",
                status=Status.ERROR,
                summary=f"cannot connect to the application database: {redact(_reason(exc), dsn)}",
                component="postgres",
            )
        ], None
    results: list[CheckResult] = []
    snapshot: list[StatementStat] | None = None
    with conn:
        for name, fn in (
            (
                "statements",
                lambda: _statements(
                    conn,
                    previous,
                    top_n,
                    max(top_n, snapshot_statements),
                    regression_pct,
                    regression_min_calls,
                ),
            ),
            ("cache_hit_ratio", lambda: [_cache_hit(conn, cache_hit_warning_pct, cache_hit_critical_pct)]),
            ("unused_indexes", lambda: [_unused_indexes(conn)]),
            ("seq_scans", lambda: [_seq_scans(conn, seq_scan_min_rows, seq_scan_min_scans, top_n)]),
            (
                "connection_pool",
                lambda: [_connection_pool(conn, connections_warning_pct, connections_critical_pct)],
            ),
        ):
            try:
                produced = fn()
            except psycopg.Error as exc:
                check = "postgres.top_queries" if name == "statements" else f"postgres.{name}"
                results.append(
                    CheckResult(
                        check=check,
                        status=Status.ERROR,
                        summary=f"{name}: query failed: {_reason(exc)}",
                        component="postgres",
                    )
                )
                continue
            if isinstance(produced, tuple):
                snapshot, items = produced
                results.extend(items)
            else:
                results.extend(produced)
    return results, snapshot


def _statements(
    conn: psycopg.Connection[dict[str, Any]],
    previous: Mapping[int, StatementStat] | None,
    top_n: int,
    keep: int,
    regression_pct: float,
    regression_min_calls: int,
) -> tuple[list[StatementStat] | None, list[CheckResult]]:
    row = conn.execute(_sql("extension.sql")).fetchone()
    assert row is not None
    if not row["installed"] or not row["preloaded"]:
        missing = "not installed in" if not row["installed"] else "not preloaded for"
        return None, [
            CheckResult(
                check="postgres.pg_stat_statements",
                status=Status.SKIPPED,
                summary=(
                    f"pg_stat_statements is {missing} database {row['database']!r}: top queries "
                    f"skipped. To enable it: {ENABLE_PG_STAT_STATEMENTS}"
                ),
                details={
                    "installed": bool(row["installed"]),
                    "preloaded": bool(row["preloaded"]),
                    "enable": ENABLE_PG_STAT_STATEMENTS,
                },
                component="postgres",
            )
        ]
    stats = [
        StatementStat.from_row(r) for r in conn.execute(_sql("statements.sql"), {"limit": keep}).fetchall()
    ]
    changes = statement_changes(stats, previous)

    def entry(stat: StatementStat) -> dict[str, Any]:
        return {**asdict(stat), "total_ms": round(stat.total_ms, 3), "mean_ms": round(stat.mean_ms, 3)} | (
            changes[stat.queryid]
        )

    def top(key: str) -> list[dict[str, Any]]:
        # Ranked by this week's figures (cumulative ones on the first run or after a reset).
        ordered = sorted(stats, key=lambda s: (-float(changes[s.queryid][key]), s.queryid))
        return [entry(s) for s in ordered[:top_n]]

    regressions = [
        entry(s)
        for s in stats
        if (c := changes[s.queryid])["mean_change_pct"] is not None
        and c["mean_change_pct"] > regression_pct
        and c["week_calls"] >= regression_min_calls
    ]
    regressions.sort(key=lambda e: -float(e["mean_change_pct"]))
    by_total = top("week_total_ms")
    if regressions:
        worst_q = regressions[0]
        summary = (
            f"{len(regressions)} statement(s) slower than last week by more than {regression_pct:g} %; "
            f"worst: mean {worst_q['week_mean_ms']:g} ms ({worst_q['mean_change_pct']:+g} %) "
            f"for {worst_q['query'][:80]!r}"
        )
    elif by_total:
        summary = (
            f"top statement by total time this week: {by_total[0]['week_total_ms']:g} ms over "
            f"{by_total[0]['week_calls']} calls ({by_total[0]['query'][:80]!r})"
            + ("" if previous is not None else "; no snapshot from last week yet")
        )
    else:
        summary = "pg_stat_statements has no statements recorded for this database yet"
    result = CheckResult(
        check="postgres.top_queries",
        status=Status.WARNING if regressions else Status.OK,
        summary=summary,
        metric="regressed_statements",
        observed=float(len(regressions)),
        unit="count",
        thresholds={"mean_change_pct": regression_pct},
        details={
            "by_total_time": by_total,
            "by_mean_time": top("week_mean_ms"),
            "by_calls": top("week_calls"),
            "regressions": regressions[:top_n],
            "baseline": "last_week" if previous is not None else "none",
        },
        component="postgres",
    )
    return stats, [result]


def _cache_hit(conn: psycopg.Connection[dict[str, Any]], warning: float, critical: float) -> CheckResult:
    row = conn.execute(_sql("cache_hit.sql")).fetchone()
    hit, read = (int(row["hit"] or 0), int(row["read"] or 0)) if row else (0, 0)
    if hit + read == 0:
        return CheckResult(
            check="postgres.cache_hit_ratio",
            status=Status.SKIPPED,
            summary="no buffer reads recorded yet (statistics just reset)",
            component="postgres",
        )
    ratio = 100.0 * hit / (hit + read)
    status = grade(ratio, warning, critical, higher_is_worse=False)
    return CheckResult(
        check="postgres.cache_hit_ratio",
        status=status,
        summary=f"buffer cache hit ratio {ratio:.2f} % ({hit} hits, {read} reads)"
        + ("" if status is Status.OK else f"; below {warning if status is Status.WARNING else critical:g} %"),
        metric="cache_hit_ratio_pct",
        observed=round(ratio, 3),
        unit="%",
        thresholds={"warning": warning, "critical": critical},
        details={"blks_hit": hit, "blks_read": read, "stats_reset": str(row["stats_reset"]) if row else None},
        component="postgres",
    )


def _unused_indexes(conn: psycopg.Connection[dict[str, Any]]) -> CheckResult:
    rows = conn.execute(_sql("unused_indexes.sql")).fetchall()
    items = [dict(r) for r in rows]
    total = sum(int(r["bytes"]) for r in items)
    names = ", ".join(f"{r['schema']}.{r['index']}" for r in items[:5])
    return CheckResult(
        check="postgres.unused_indexes",
        status=Status.WARNING if items else Status.OK,
        summary=(
            f"{len(items)} index(es) never used ({total} bytes), e.g. {names}: consider dropping them"
            if items
            else "every non-unique index has been used"
        ),
        metric="unused_indexes",
        observed=float(len(items)),
        unit="count",
        details={"indexes": items[:50], "total_bytes": total},
        component="postgres",
    )


def _seq_scans(
    conn: psycopg.Connection[dict[str, Any]], min_rows: int, min_scans: int, limit: int
) -> CheckResult:
    rows = conn.execute(
        _sql("seq_scans.sql"), {"min_rows": min_rows, "min_scans": min_scans, "limit": limit}
    ).fetchall()
    items = [dict(r) for r in rows]
    names = ", ".join(f"{r['schema']}.{r['table']}" for r in items[:5])
    return CheckResult(
        check="postgres.seq_scans",
        status=Status.WARNING if items else Status.OK,
        summary=(
            f"{len(items)} table(s) read mostly by sequential scans: {names} (check for a missing index)"
            if items
            else f"no table of {min_rows}+ rows is read mostly by sequential scans"
        ),
        metric="seq_scan_heavy_tables",
        observed=float(len(items)),
        unit="count",
        thresholds={"min_rows": float(min_rows), "min_scans": float(min_scans)},
        details={"tables": items},
        component="postgres",
    )


def _connection_pool(
    conn: psycopg.Connection[dict[str, Any]], warning: float, critical: float
) -> CheckResult:
    row = conn.execute(_sql("connections.sql")).fetchone()
    assert row is not None
    usable = int(row["max_connections"]) - int(row["superuser_reserved"]) - int(row["reserved"])
    in_use = int(row["in_use"])
    pct = 100.0 * in_use / usable if usable > 0 else 100.0
    status = grade(pct, warning, critical)
    return CheckResult(
        check="postgres.connection_pool",
        status=status,
        summary=(
            f"{in_use} of {usable} usable connections in use ({pct:.1f} %): "
            f"{row['active']} active, {row['idle']} idle, {row['idle_in_transaction']} idle in transaction"
        ),
        metric="connections_used_pct",
        observed=round(pct, 2),
        unit="%",
        thresholds={"warning": warning, "critical": critical},
        details={k: int(v) for k, v in row.items()} | {"usable": usable},
        component="postgres",
    )


# -- the store's weekly snapshot --------------------------------------------------------------


def save_snapshot(
    store_dsn: str, database: str, run_id: str, at: datetime, stats: list[StatementStat]
) -> None:
    """Keep this run's statements (idempotent per ``(database, run_id)``)."""
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME) as conn:
        conn.execute(
            """
            INSERT INTO pg_statement_snapshots (database, run_id, taken_at, statements)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (database, run_id)
            DO UPDATE SET taken_at = EXCLUDED.taken_at, statements = EXCLUDED.statements
            """,
            [database, run_id, at, Jsonb([asdict(s) for s in stats])],
        )


def latest_snapshot(
    store_dsn: str, database: str, before: datetime, *, exclude_run_id: str | None = None
) -> dict[int, StatementStat] | None:
    """The newest snapshot of ``database`` taken before ``before`` (another run's), or ``None``."""
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME, row_factory=dict_row) as conn:
        row = conn.execute(
            """
            SELECT statements FROM pg_statement_snapshots
            WHERE database = %s AND taken_at < %s AND run_id IS DISTINCT FROM %s
            ORDER BY taken_at DESC LIMIT 1
            """,
            [database, before, exclude_run_id],
        ).fetchone()
    if row is None:
        return None
    return {int(s["queryid"]): StatementStat.from_row(s) for s in row["statements"]}


def save_chart(store_dsn: str, dag_id: str, run_id: str, png: bytes) -> None:
    """Keep this run's chart in the results store (idempotent per run)."""
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME) as conn:
        conn.execute(
            """
            INSERT INTO performance_charts (dag_id, run_id, png) VALUES (%s, %s, %s)
            ON CONFLICT (dag_id, run_id) DO UPDATE SET png = EXCLUDED.png, created_at = now()
            """,
            [dag_id, run_id, png],
        )


def load_chart(store_dsn: str, dag_id: str, run_id: str) -> tuple[bytes, str | None] | None:
    """The run's chart and the Slack file id it was shared as (``None``: not shared yet)."""
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME) as conn:
        row = conn.execute(
            "SELECT png, slack_file_id FROM performance_charts WHERE dag_id = %s AND run_id = %s",
            [dag_id, run_id],
        ).fetchone()
    return None if row is None else (bytes(row[0]), row[1])


def mark_chart_shared(store_dsn: str, dag_id: str, run_id: str, file_id: str) -> None:
    """Record that the run's chart is in Slack as ``file_id``."""
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME) as conn:
        conn.execute(
            "UPDATE performance_charts SET slack_file_id = %s WHERE dag_id = %s AND run_id = %s",
            [file_id, dag_id, run_id],
        )


# ------------------------------------------------------------------------------------------
# Prometheus
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceQueries:
    """PromQL for the service's traffic; ``$window`` is replaced by a range (``5m``, ``7d``)."""

    request_rate: str = 'sum(rate(http_requests_total{job="sanvi-backend"}[$window]))'
    error_rate: str = (
        'sum(rate(http_requests_total{job="sanvi-backend",status=~"5.."}[$window]))'
        ' / sum(rate(http_requests_total{job="sanvi-backend"}[$window]))'
    )
    latency_p95: str = (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{job="sanvi-backend"}[$window])))'
    )

    def render(self, name: str, window: timedelta | str) -> str:
        template: str = getattr(self, name)
        return template.replace("$window", promql_duration(window))


def _scalar(prom: PrometheusClient, expr: str, at: datetime) -> float | None:
    """The single value of ``expr`` at ``at``; ``None`` when it returned no series (or NaN)."""
    samples = prom.query(expr, at=at)
    values = [s.value for s in samples if s.value == s.value]  # drop NaN (0/0)
    return values[0] if values else None


def _no_data(check: str, what: str, expr: str) -> CheckResult:
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=f"{what}: the query returned no series (is the metric scraped? query: {' '.join(expr.split())})",
        details={"query": expr},
        component="service",
    )


def _month_start(at: datetime) -> datetime:
    local = at.astimezone(UTC)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class ServiceLimits:
    """SLOs and alert thresholds the service metrics are held to (the guide's defaults)."""

    slo_p95_ms: float = 300
    slo_error_pct: float = 0.1
    slo_availability_pct: float = 99.9
    error_warning_pct: float = 1
    error_warning_for: timedelta = timedelta(minutes=5)
    error_critical_pct: float = 5
    error_critical_for: timedelta = timedelta(minutes=1)
    latency_warning_ms: float = 500
    latency_critical_ms: float = 1000
    budget_warning_left_pct: float = 25


def check_service(
    prom: PrometheusClient,
    at: datetime,
    *,
    queries: ServiceQueries | None = None,
    limits: ServiceLimits | None = None,
    week: timedelta = timedelta(days=7),
    alert_window: str = "5m",
) -> list[CheckResult]:
    """The Prometheus half of the analysis, evaluated at ``at``.

    Prometheus down or a failing query: one ``error`` result naming it. A query with no series:
    a ``warning`` result naming the query (a dashboard with no data is itself a finding).
    """
    q, lim = queries or ServiceQueries(), limits or ServiceLimits()
    try:
        return [
            _request_rate(prom, at, q, week, alert_window),
            _latency(prom, at, q, lim, week, alert_window),
            _errors(prom, at, q, lim, week, alert_window),
            _availability(prom, at, q, lim),
        ]
    except PrometheusUnreachable as exc:
        summary = f"Prometheus is unreachable, service metrics not analysed: {exc}"
    except PrometheusError as exc:
        summary = f"a Prometheus query failed: {exc}"
    return [
        CheckResult(check="service.prometheus", status=Status.ERROR, summary=summary, component="service")
    ]


def _request_rate(
    prom: PrometheusClient, at: datetime, q: ServiceQueries, week: timedelta, alert_window: str
) -> CheckResult:
    week_expr = q.render("request_rate", week)
    rate_week = _scalar(prom, week_expr, at)
    rate_now = _scalar(prom, q.render("request_rate", alert_window), at)
    if rate_week is None:
        return _no_data("service.request_rate", "request rate", week_expr)
    return CheckResult(
        check="service.request_rate",
        status=Status.OK,
        summary=f"{rate_week:.2f} req/s on average this week"
        + ("" if rate_now is None else f", {rate_now:.2f} req/s now"),
        metric="requests_per_second",
        observed=round(rate_week, 4),
        unit="req/s",
        details={"now": None if rate_now is None else round(rate_now, 4), "query": week_expr},
        component="service",
    )


def _latency(
    prom: PrometheusClient,
    at: datetime,
    q: ServiceQueries,
    lim: ServiceLimits,
    week: timedelta,
    alert_window: str,
) -> CheckResult:
    """p95 over the week against the SLO; p95 now against the alert thresholds."""
    week_expr = q.render("latency_p95", week)
    lat_week = _scalar(prom, week_expr, at)
    lat_now = _scalar(prom, q.render("latency_p95", alert_window), at)
    if lat_week is None and lat_now is None:
        return _no_data("service.latency_p95", "p95 latency", week_expr)
    week_ms = None if lat_week is None else lat_week * 1000
    now_ms = None if lat_now is None else lat_now * 1000
    alert = Status.OK if now_ms is None else grade(now_ms, lim.latency_warning_ms, lim.latency_critical_ms)
    slo_met = week_ms is None or week_ms < lim.slo_p95_ms
    status = alert if alert is not Status.OK else (Status.OK if slo_met else Status.WARNING)
    parts = []
    if week_ms is not None:
        verdict = "meets" if slo_met else "misses"
        parts.append(f"p95 {week_ms:.0f} ms this week ({verdict} the {lim.slo_p95_ms:g} ms SLO)")
    if now_ms is not None:
        above = "" if alert is Status.OK else f" (above the {alert.value} threshold)"
        parts.append(f"{now_ms:.0f} ms now{above}")
    observed = week_ms if week_ms is not None else now_ms
    return CheckResult(
        check="service.latency_p95",
        status=status,
        summary="; ".join(parts),
        metric="latency_p95_ms",
        observed=None if observed is None else round(observed, 2),
        unit="ms",
        thresholds={
            "slo": lim.slo_p95_ms,
            "warning": lim.latency_warning_ms,
            "critical": lim.latency_critical_ms,
        },
        details={
            "week_ms": None if week_ms is None else round(week_ms, 2),
            "now_ms": None if now_ms is None else round(now_ms, 2),
            "slo_met": slo_met,
            "alert": alert.value,
        },
        severity="P3" if status is Status.CRITICAL else None,
        component="service",
    )


def _errors(
    prom: PrometheusClient,
    at: datetime,
    q: ServiceQueries,
    lim: ServiceLimits,
    week: timedelta,
    alert_window: str,
) -> CheckResult:
    """Error rate over the week against the SLO; now against "> 1 % for 5m" / "> 5 % for 1m"."""
    week_expr = q.render("error_rate", week)
    err_week = _scalar(prom, week_expr, at)
    alert_expr = q.render("error_rate", alert_window)
    warn_held = _scalar(prom, sustained_min(alert_expr, lim.error_warning_for), at)
    crit_held = _scalar(prom, sustained_min(alert_expr, lim.error_critical_for), at)
    err_now = _scalar(prom, alert_expr, at)
    if err_week is None and err_now is None:
        return _no_data("service.error_rate", "error rate", week_expr)
    week_pct = None if err_week is None else err_week * 100
    now_pct = None if err_now is None else err_now * 100
    alert = Status.OK
    held = ""
    if crit_held is not None and crit_held * 100 > lim.error_critical_pct:
        alert = Status.CRITICAL
        held = f" (> {lim.error_critical_pct:g} % for {promql_duration(lim.error_critical_for)})"
    elif warn_held is not None and warn_held * 100 > lim.error_warning_pct:
        alert = Status.WARNING
        held = f" (> {lim.error_warning_pct:g} % for {promql_duration(lim.error_warning_for)})"
    slo_met = week_pct is None or week_pct < lim.slo_error_pct
    status = alert if alert is not Status.OK else (Status.OK if slo_met else Status.WARNING)
    parts = []
    if week_pct is not None:
        verdict = "meets" if slo_met else "misses"
        parts.append(f"{week_pct:.3f} % errors this week ({verdict} the {lim.slo_error_pct:g} % SLO)")
    if now_pct is not None:
        parts.append(f"{now_pct:.2f} % now{held}")
    observed = week_pct if week_pct is not None else now_pct
    return CheckResult(
        check="service.error_rate",
        status=status,
        summary="; ".join(parts),
        metric="error_rate_pct",
        observed=None if observed is None else round(observed, 4),
        unit="%",
        thresholds={
            "slo": lim.slo_error_pct,
            "warning": lim.error_warning_pct,
            "critical": lim.error_critical_pct,
        },
        details={
            "week_pct": None if week_pct is None else round(week_pct, 4),
            "now_pct": None if now_pct is None else round(now_pct, 4),
            "slo_met": slo_met,
            "alert": alert.value,
        },
        severity="P2" if status is Status.CRITICAL else None,
        component="service",
    )


def _availability(prom: PrometheusClient, at: datetime, q: ServiceQueries, lim: ServiceLimits) -> CheckResult:
    """Request availability since the start of the month (UTC) and the error budget left."""
    since = _month_start(at)
    span = timedelta(seconds=max(60, int((at - since).total_seconds())))
    month_expr = q.render("error_rate", span)
    err_month = _scalar(prom, month_expr, at)
    if err_month is None:
        return _no_data("service.availability", "availability", month_expr)
    availability = 100.0 * (1.0 - err_month)
    allowed = 100.0 - lim.slo_availability_pct
    budget_left = 100.0 * (1.0 - (100.0 - availability) / allowed) if allowed > 0 else 0.0
    if availability < lim.slo_availability_pct:
        status = Status.CRITICAL
    elif budget_left < lim.budget_warning_left_pct:
        status = Status.WARNING
    else:
        status = Status.OK
    return CheckResult(
        check="service.availability",
        status=status,
        summary=(
            f"availability {availability:.3f} % since {since:%Y-%m-%d} (SLO {lim.slo_availability_pct:g} %); "
            f"error budget left this month: {max(budget_left, 0.0):.1f} %"
            + (" — exhausted" if budget_left <= 0 else "")
        ),
        metric="error_budget_left_pct",
        observed=round(budget_left, 2),
        unit="%",
        thresholds={"slo": lim.slo_availability_pct, "warning": lim.budget_warning_left_pct, "critical": 0.0},
        details={
            "availability_pct": round(availability, 4),
            "since": since.isoformat(),
            "budget_left_pct": round(budget_left, 2),
        },
        severity="P3" if status is Status.CRITICAL else None,
        component="service",
    )


def week_series(
    prom: PrometheusClient,
    at: datetime,
    *,
    queries: ServiceQueries | None = None,
    week: timedelta = timedelta(days=7),
    step: timedelta = timedelta(minutes=15),
) -> tuple[list[tuple[datetime, float]], list[tuple[datetime, float]]]:
    """(p95 latency in ms, error rate in %) over the week up to ``at``, one point per ``step``."""
    q = queries or ServiceQueries()

    def points(series: list[RangeSeries], scale: float) -> list[tuple[datetime, float]]:
        if not series:
            return []
        return [(t, v * scale) for t, v in series[0].points if v == v]

    latency = prom.query_range(q.render("latency_p95", step), at - week, at, step)
    errors = prom.query_range(q.render("error_rate", step), at - week, at, step)
    return points(latency, 1000.0), points(errors, 100.0)
