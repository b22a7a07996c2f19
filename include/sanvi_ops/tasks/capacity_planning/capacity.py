"""Monthly capacity planning: storage growth, CPU/memory trends, auto-scaling bounds, read/write ratio.

Plain functions taking ready clients / DSNs and returning :class:`CheckResult` s:

- :func:`storage_growth`: per stored target (``disk_samples``: databases, tables, filesystems,
  RDS) the growth per day fitted through the samples of the period and, where the target has a
  capacity, the days until it is full (:func:`sanvi_ops.tasks.disk_space_check.disk.days_until_full`). Full within the
  planning horizon is a warning.
- :func:`table_usages`: this run's table sizes as samples (targets ``table:<db>/<schema>.<table>``),
  so table growth has a history from now on.
- :func:`resource_trends`: per instance, the average, p95 and least-squares trend of a percent
  series (CPU or memory) over the period, against the scaling guideline ("scale up at 70 %"):
  p95 above it, or the trend line crossing it within the horizon, is a warning.
- :func:`autoscaling_bounds`: the ECS services' Application Auto Scaling min/max against the guide.
- :func:`read_write_ratio`: rows read vs rows written (``pg_stat_user_tables``); above the
  guideline (4:1) a read replica is recommended (warning).
- :func:`trend_chart`: PNG of the CPU and memory series with the scale-up line.
- :func:`rto_outlook`: the RTO forecast (:func:`sanvi_ops.core.rto_forecast.forecast`) from the
  newest recovery test's phases (``recovery_tests.details.phases``) and the application
  database's size samples: the month the restore crosses ``slos.recovery_time_minutes``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types, denied_result, is_denied
from sanvi_ops.core.prometheus import PrometheusClient, RangeSeries
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.disk_space_check.disk import GIB, Usage, days_until_full, growth_per_day

__all__ = [
    "Trend",
    "autoscaling_bounds",
    "fit_trend",
    "load_period_samples",
    "percentile",
    "latest_recovery_phases",
    "read_write_ratio",
    "resource_trends",
    "rto_outlook",
    "storage_growth",
    "table_usages",
    "trend_chart",
]

APPLICATION_NAME = "sanvi-ops-capacity"

Points = Sequence[tuple[datetime, float]]


def _gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


# -- storage -------------------------------------------------------------------------------------


def table_usages(tables: Sequence[Mapping[str, Any]], database: str, at: datetime) -> list[Usage]:
    """Samples of the largest tables (rows of ``sanvi_ops/tasks/disk_space_check/sql/largest_tables.sql``)."""
    return [
        Usage(
            target=f"table:{database}/{t['schema']}.{t['table']}",
            check=f"capacity.table_growth[{database}/{t['schema']}.{t['table']}]",
            component="postgres",
            label=f"table {t['schema']}.{t['table']}",
            used_bytes=float(t["bytes"]),
            size_bytes=None,
            at=at,
        )
        for t in tables
    ]


def load_period_samples(
    store_dsn: str, since: datetime, until: datetime
) -> dict[str, list[tuple[datetime, float, float | None]]]:
    """Every stored sample between ``since`` and ``until`` per target: (time, used, size)."""
    out: dict[str, list[tuple[datetime, float, float | None]]] = {}
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME, row_factory=dict_row) as conn:
        rows = conn.execute(
            """
            SELECT target, sampled_at, used_bytes, size_bytes FROM disk_samples
            WHERE sampled_at >= %s AND sampled_at <= %s ORDER BY target, sampled_at
            """,
            [since, until],
        ).fetchall()
    for r in rows:
        size = None if r["size_bytes"] is None else float(r["size_bytes"])
        out.setdefault(r["target"], []).append((r["sampled_at"], float(r["used_bytes"]), size))
    return out


def latest_recovery_phases(store_dsn: str) -> dict[str, Any] | None:
    """The newest recovery test (restore test or DR drill's database) that recorded its phases."""
    with psycopg.connect(store_dsn, application_name=APPLICATION_NAME, row_factory=dict_row) as conn:
        row: dict[str, Any] | None = conn.execute(
            """
            SELECT dag_id, run_id, kind, started_at, details -> 'phases' AS phases FROM recovery_tests
            WHERE kind IN ('restore_test', 'dr_database') AND jsonb_typeof(details -> 'phases') = 'array'
              AND jsonb_array_length(details -> 'phases') > 0
            ORDER BY started_at DESC LIMIT 1
            """
        ).fetchone()
    return row


def rto_outlook(
    test: Mapping[str, Any] | None,
    samples: Mapping[str, Sequence[tuple[datetime, float, float | None]]],
    database: str,
    *,
    objective_s: float,
    now: datetime,
) -> CheckResult:
    """The RTO forecast for ``database`` (samples of target ``postgres:<database>``) from ``test``
    (a row of :func:`latest_recovery_phases`); the size at the test is the sample nearest to it."""
    from sanvi_ops.core.rto_forecast import forecast

    points = sorted((t, used) for t, used, _ in samples.get(f"postgres:{database}", []))
    phases = list(test["phases"]) if test else []
    size_at_test = None
    if test and points:
        started = test["started_at"]
        size_at_test = min(points, key=lambda p: abs((p[0] - started).total_seconds()))[1]
    source = f"{test['kind']} {test['run_id']} of {test['started_at']:%Y-%m-%d}" if test else ""
    result = forecast(phases, size_at_test, points, objective_s=objective_s, now=now, source=source)
    result.details["database"] = database
    return result


def _kind(target: str) -> str:
    return {"table": "table", "postgres": "database", "fs": "filesystem", "rds": "rds"}.get(
        target.split(":", 1)[0], "storage"
    )


def storage_growth(
    samples: Mapping[str, Sequence[tuple[datetime, float, float | None]]], *, horizon_days: float
) -> list[CheckResult]:
    """One result per target: growth per day over the samples and days until full.

    A target with a capacity (filesystem, RDS) that fills within ``horizon_days`` is a warning;
    growth of a database or table is reported (ok) with its projection at the horizon.
    """
    results: list[CheckResult] = []
    for target in sorted(samples):
        points = sorted(samples[target], key=lambda p: p[0])
        kind = _kind(target)
        name = target.split(":", 1)[-1]
        series = [(t, used) for t, used, _ in points]
        slope = growth_per_day(series)
        _, used_now, size = points[-1]
        span_days = (points[-1][0] - points[0][0]).total_seconds() / 86400.0
        details: dict[str, Any] = {
            "target": target,
            "samples": len(points),
            "span_days": round(span_days, 2),
            "used_bytes": used_now,
            "size_bytes": size,
            "growth_bytes_per_day": None if slope is None else round(slope, 1),
        }
        if slope is None:
            results.append(
                CheckResult(
                    check=f"capacity.{kind}_growth[{name}]",
                    status=Status.OK,
                    summary=f"{kind} {name}: {_gib(used_now)}; no growth trend yet ({len(points)} sample(s))",
                    metric="used_bytes",
                    observed=used_now,
                    unit="bytes",
                    details=details,
                    component="storage",
                )
            )
            continue
        projected = used_now + slope * horizon_days
        details["projected_bytes_at_horizon"] = round(projected, 1)
        growth = (
            f"{_gib(used_now)}, {_gib(slope * 30)} per 30 days, {_gib(projected)} in {horizon_days:g} days"
        )
        status = Status.OK
        if size:
            days = days_until_full(series, size, used_now)
            details["days_until_full"] = None if days is None else round(days, 1)
            if days is None:
                growth += f"; {100 * used_now / size:.1f} % of {_gib(size)}, not filling"
            else:
                growth += f"; full in ~{days:.0f} days ({100 * used_now / size:.1f} % of {_gib(size)})"
                if days <= horizon_days:
                    status = Status.WARNING
                    growth += f" — within the {horizon_days:g}-day planning horizon: plan more storage"
        results.append(
            CheckResult(
                check=f"capacity.{kind}_growth[{name}]",
                status=status,
                summary=f"{kind} {name}: {growth}",
                metric="growth_bytes_per_day",
                observed=round(slope, 1),
                unit="bytes/day",
                thresholds={"horizon_days": horizon_days},
                details=details,
                component="storage",
            )
        )
    return results


# -- CPU / memory trends ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Summary of one percent series: average, p95, slope (points per day), last fitted value."""

    average: float
    p95: float
    slope_per_day: float | None
    fitted_now: float
    span_days: float
    points: int


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (as numpy's default); ``values`` non-empty."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fit_trend(points: Points) -> Trend | None:
    """Average, p95 and least-squares line of ``points``; ``None`` without points."""
    if not points:
        return None
    values = [v for _, v in points]
    slope = growth_per_day(points)
    avg = sum(values) / len(values)
    t0 = min(t for t, _ in points)
    t_last = max(t for t, _ in points)
    span = (t_last - t0).total_seconds() / 86400.0
    if slope is None:
        fitted = avg
    else:
        mean_x = sum((t - t0).total_seconds() / 86400.0 for t, _ in points) / len(points)
        fitted = avg + slope * (span - mean_x)
    return Trend(avg, percentile(values, 95), slope, fitted, span, len(values))


def _grade_trend(
    resource: str,
    instance: str,
    trend: Trend,
    *,
    scale_up_pct: float,
    horizon_days: float,
    min_trend_days: float,
) -> CheckResult:
    details: dict[str, Any] = {
        "instance": instance,
        "average_pct": round(trend.average, 2),
        "p95_pct": round(trend.p95, 2),
        "slope_pct_per_day": None if trend.slope_per_day is None else round(trend.slope_per_day, 4),
        "span_days": round(trend.span_days, 2),
        "points": trend.points,
    }
    parts = [f"avg {trend.average:.1f} %, p95 {trend.p95:.1f} %"]
    status = Status.OK
    if trend.p95 > scale_up_pct:
        status = Status.WARNING
        parts.append(f"p95 above the scale-up line ({scale_up_pct:g} %): scale up now")
    if trend.span_days < min_trend_days or trend.slope_per_day is None:
        parts.append(f"trend not extrapolated ({trend.span_days:.1f} of {min_trend_days:g} days of data)")
        details["days_until_scale_up"] = None
    else:
        slope = trend.slope_per_day
        projected = trend.fitted_now + slope * horizon_days
        details["projected_pct_at_horizon"] = round(projected, 2)
        if trend.fitted_now >= scale_up_pct:
            days: float | None = 0.0
        elif slope > 0:
            days = (scale_up_pct - trend.fitted_now) / slope
        else:
            days = None
        details["days_until_scale_up"] = None if days is None else round(days, 1)
        parts.append(f"trend {slope:+.2f} points/day, {projected:.1f} % in {horizon_days:g} days")
        if days is not None and days <= horizon_days:
            status = Status.WARNING
            parts.append(f"crosses {scale_up_pct:g} % in ~{days:.0f} days: plan to scale up")
    return CheckResult(
        check=f"capacity.{resource}_trend[{instance}]",
        status=status,
        summary=f"{resource} {instance}: " + "; ".join(parts),
        metric=f"{resource}_p95_pct",
        observed=round(trend.p95, 2),
        unit="%",
        thresholds={"scale_up": scale_up_pct, "horizon_days": horizon_days},
        details=details,
        component=instance,
    )


def resource_trends(
    prom: PrometheusClient,
    resource: str,
    query: str,
    start: datetime,
    end: datetime,
    *,
    step: timedelta | str,
    scale_up_pct: float,
    horizon_days: float,
    min_trend_days: float,
) -> tuple[list[CheckResult], dict[str, list[tuple[datetime, float]]]]:
    """Results per ``instance`` of ``query`` (percent) over ``start``..``end``, and the series.

    :raises PrometheusError: the caller reports it.
    """
    series: list[RangeSeries] = prom.query_range(query, start, end, step)
    by_instance: dict[str, list[tuple[datetime, float]]] = {}
    for s in series:
        points = [(t, v) for t, v in s.points if math.isfinite(v)]
        if points:
            by_instance[s.labels.get("instance", "?")] = points
    results: list[CheckResult] = []
    for instance in sorted(by_instance):
        trend = fit_trend(by_instance[instance])
        if trend is None:  # pragma: no cover - filtered above
            continue
        results.append(
            _grade_trend(
                resource,
                instance,
                trend,
                scale_up_pct=scale_up_pct,
                horizon_days=horizon_days,
                min_trend_days=min_trend_days,
            )
        )
    if not results:
        results.append(
            CheckResult(
                check=f"capacity.{resource}_trend",
                status=Status.WARNING,
                summary=f"no {resource} series in Prometheus for the period (query: {query})",
                component="prometheus",
            )
        )
    return results, by_instance


# -- auto-scaling ----------------------------------------------------------------------------------


def autoscaling_bounds(
    client: Any, cluster: str, services: Sequence[str], *, min_capacity: int, max_capacity: int
) -> list[CheckResult]:
    """Each ECS service's scalable target (``ecs:service:DesiredCount``) against the guide's bounds.

    Not registered, or min/max other than the guide's, is a warning; an AWS error an ``error``
    result naming the call.
    """

    ids = {f"service/{cluster}/{s}": s for s in services}
    try:
        found: list[dict[str, Any]] = []
        paginator = client.get_paginator("describe_scalable_targets")
        for page in paginator.paginate(ServiceNamespace="ecs", ResourceIds=list(ids)):
            found.extend(page.get("ScalableTargets", []))
    except aws_error_types() as exc:
        if is_denied(exc):
            return [denied_result("capacity.autoscaling", exc, client=client, component="ecs")]
        return [
            CheckResult(
                check="capacity.autoscaling",
                status=Status.ERROR,
                summary=f"application-autoscaling:DescribeScalableTargets failed: {aws_error_text(exc)}",
                component="ecs",
            )
        ]
    targets = {
        t["ResourceId"]: t
        for t in found
        if t.get("ScalableDimension", "ecs:service:DesiredCount") == "ecs:service:DesiredCount"
    }
    out: list[CheckResult] = []
    thresholds: dict[str, float] = {"min_capacity": min_capacity, "max_capacity": max_capacity}
    for resource_id, service in ids.items():
        check = f"capacity.autoscaling[{service}]"
        target = targets.get(resource_id)
        if target is None:
            out.append(
                CheckResult(
                    check=check,
                    status=Status.WARNING,
                    summary=(
                        f"{service}: no auto-scaling registered for {resource_id} "
                        f"(the guide: min {min_capacity}, max {max_capacity})"
                    ),
                    thresholds=thresholds,
                    details={"resource_id": resource_id},
                    component=service,
                )
            )
            continue
        lo, hi = int(target["MinCapacity"]), int(target["MaxCapacity"])
        problems = []
        if lo != min_capacity:
            problems.append(f"min {lo} ≠ {min_capacity}")
        if hi != max_capacity:
            problems.append(f"max {hi} ≠ {max_capacity}")
        out.append(
            CheckResult(
                check=check,
                status=Status.WARNING if problems else Status.OK,
                summary=f"{service}: auto-scaling min {lo}, max {hi}"
                + (f" — differs from the guide: {', '.join(problems)}" if problems else " as the guide says"),
                metric="max_capacity",
                observed=float(hi),
                thresholds=thresholds,
                details={"resource_id": resource_id, "min_capacity": lo, "max_capacity": hi},
                component=service,
            )
        )
    return out


# -- read/write ratio ------------------------------------------------------------------------------

READ_WRITE_SQL = """
SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)::float8 AS reads,
       coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::float8 AS writes,
       current_database() AS db
FROM pg_stat_user_tables
"""


def read_write_ratio(dsn: str, *, replica_above: float, timeout_s: float = 30) -> CheckResult:
    """Rows read (sequential + index fetches) against rows written since the statistics reset.

    :raises psycopg.Error: the caller reports it.
    """
    with psycopg.connect(
        dsn,
        connect_timeout=max(1, int(timeout_s)),
        application_name=APPLICATION_NAME,
        autocommit=True,
        row_factory=dict_row,
    ) as conn:
        conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout_s * 1000)}ms"])
        row = conn.execute(READ_WRITE_SQL).fetchone()
    reads = float(row["reads"]) if row else 0.0
    writes = float(row["writes"]) if row else 0.0
    db = row["db"] if row else "?"
    details = {"database": db, "rows_read": reads, "rows_written": writes}
    thresholds = {"read_replica_above": replica_above}
    if writes == 0:
        return CheckResult(
            check="capacity.read_write_ratio",
            status=Status.OK,
            summary=f"{db}: {reads:.0f} rows read, no writes recorded: no ratio yet",
            thresholds=thresholds,
            details=details,
            component="postgres",
        )
    ratio = reads / writes
    high = ratio > replica_above
    return CheckResult(
        check="capacity.read_write_ratio",
        status=Status.WARNING if high else Status.OK,
        summary=f"{db}: read/write ratio {ratio:.1f}:1"
        + (
            f" — above {replica_above:g}:1: recommend a read replica for read traffic"
            if high
            else f" (a read replica pays off above {replica_above:g}:1)"
        ),
        metric="read_write_ratio",
        observed=round(ratio, 3),
        thresholds=thresholds,
        details=details,
        component="postgres",
    )


# -- chart -----------------------------------------------------------------------------------------


def trend_chart(
    cpu: Mapping[str, Points],
    memory: Mapping[str, Points],
    *,
    title: str,
    scale_up_pct: float,
    start: datetime | None = None,
    end: datetime | None = None,
) -> bytes:
    """Two panels — CPU % and memory % per instance over the period — with the scale-up line, as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6), dpi=100, layout="constrained")
    ax_cpu, ax_mem = fig.subplots(2, 1, sharex=True)
    for ax, data, label in ((ax_cpu, cpu, "CPU used (%)"), (ax_mem, memory, "memory used (%)")):
        if data:
            for instance in sorted(data):
                points = data[instance]
                ax.plot([t for t, _ in points], [v for _, v in points], linewidth=1.0, label=instance)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.axhline(
            scale_up_pct, color="orange", linestyle="--", linewidth=1, label=f"scale up {scale_up_pct:g} %"
        )
        ax.set_ylabel(label)
        ax.set_ylim(0, 100)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    ax_mem.xaxis.set_major_formatter(mdates.DateFormatter("%d %b %H:%M", tz="UTC"))  # type: ignore[no-untyped-call]
    if start is not None and end is not None:
        ax_mem.set_xlim(start, end)
    ax_mem.set_xlabel("UTC")
    fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
