"""Restore phases and the RTO forecast (pure logic: no I/O).

:class:`PhaseTimer` times each phase of a restore (download, extract, verify, combine, start to
consistency, smoke, amcheck, row counts, schema, RPO); each phase is a dict
``{"name", "seconds", "bytes", "mb_per_s", "in_rto"}`` kept in ``recovery_tests.details.phases``.
``in_rto`` marks the phases before the restored server is healthy (RTO = start → smoke passed):
their sum is the RTO; the validation after it (amcheck, row counts, schema, RPO) is reported too.

:func:`forecast` projects the RTO for the next months: the size-proportional phases
(:data:`PROPORTIONAL`) scale with the database size — fitted by least squares through the
capacity samples of ``disk_samples`` (``postgres:<db>``) — the others are fixed costs. The first
month whose total reaches the objective (``slos.recovery_time_minutes``) is a ``warning`` naming
the phase that contributes most; already over is ``critical``; too few samples or no measured
phases is a ``warning`` saying so (never green by omission).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sanvi_ops.core.results import CheckResult, Status

__all__ = [
    "PROPORTIONAL",
    "PhaseTimer",
    "forecast",
    "phases_line",
]

#: Phases whose time grows with the database's size; every other phase is a fixed cost.
PROPORTIONAL = frozenset({"download", "extract", "verify", "combine", "sync", "amcheck", "row_counts"})
MONTH_DAYS = 30.4375


@dataclass
class PhaseTimer:
    """Wall-clock timer of a restore's phases, in the order they ran."""

    phases: list[dict[str, Any]] = field(default_factory=list)
    in_rto: bool = True

    def add(self, name: str, seconds: float, nbytes: int | None = None) -> dict[str, Any]:
        seconds = max(0.0, float(seconds))
        phase: dict[str, Any] = {
            "name": name,
            "seconds": round(seconds, 3),
            "bytes": nbytes,
            "mb_per_s": round(nbytes / 1e6 / seconds, 1) if nbytes and seconds > 0 else None,
            "in_rto": self.in_rto,
        }
        self.phases.append(phase)
        return phase

    @contextmanager
    def phase(self, name: str, nbytes: int | None = None) -> Iterator[dict[str, Any]]:
        """Time the block as phase ``name``; set ``ctx["bytes"]`` inside when known only then.

        A phase that raises is recorded too (``failed``: true), so a failed restore shows where.
        """
        ctx: dict[str, Any] = {"bytes": nbytes}
        t0 = time.monotonic()
        try:
            yield ctx
        except BaseException:
            self.add(name, time.monotonic() - t0, ctx.get("bytes"))["failed"] = True
            raise
        self.add(name, time.monotonic() - t0, ctx.get("bytes"))

    def rto_seconds(self) -> float:
        return round(sum(float(p["seconds"]) for p in self.phases if p.get("in_rto")), 3)


def _phase_text(p: Mapping[str, Any]) -> str:
    text = f"{p['name']} {float(p['seconds']):.1f} s"
    if p.get("mb_per_s") is not None:
        text += f" ({float(p['mb_per_s']):.0f} MB/s)"
    if p.get("failed"):
        text += " FAILED"
    return text


def phases_line(phases: Sequence[Mapping[str, Any]]) -> str:
    """``phases: download 12.1 s (155 MB/s) · extract … · amcheck …`` (one compact line)."""
    if not phases:
        return "phases: none recorded"
    return "phases: " + " · ".join(_phase_text(p) for p in phases)


# -- forecast --------------------------------------------------------------------------------------


def _fit(points: Sequence[tuple[datetime, float]]) -> tuple[float, float, datetime]:
    """Least squares: ``(size at t_ref, bytes per day, t_ref)`` with t_ref the newest sample."""
    ref = max(t for t, _ in points)
    xs = [(t - ref).total_seconds() / 86400.0 for t, _ in points]
    ys = [v for _, v in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    slope = 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    return my - slope * mx, slope, ref


def _result(status: Status, summary: str, **details: Any) -> CheckResult:
    return CheckResult("rto_forecast", status, summary, component="backups", details=details)


def forecast(
    phases: Sequence[Mapping[str, Any]],
    size_at_test: float | None,
    samples: Sequence[tuple[datetime, float]],
    *,
    objective_s: float,
    now: datetime,
    months: int = 12,
    min_samples: int = 3,
    min_span_days: float = 7.0,
    source: str = "",
) -> CheckResult:
    """Project the restore time (phases counted in the RTO) for each of the next ``months``.

    :param phases: the latest recovery test's phases (:class:`PhaseTimer` dicts).
    :param size_at_test: the database size (bytes) when that test ran (the sample nearest to it).
    :param samples: ``(time, bytes)`` size samples of the database (capacity planning's).
    :param source: what the phases come from (``"restore_test run … of …"``), for the summary.
    """
    rto_phases = [p for p in phases if p.get("in_rto", True) and p.get("seconds") is not None]
    if not rto_phases:
        return _result(
            Status.WARNING,
            "RTO forecast not possible: no recovery test with recorded phases yet (backup_testing's restore "
            "test stores them)",
            reason="no_phases",
        )
    pts = sorted((t, float(v)) for t, v in samples)
    span = (pts[-1][0] - pts[0][0]).total_seconds() / 86400.0 if pts else 0.0
    if len(pts) < min_samples or span < min_span_days or not size_at_test or size_at_test <= 0:
        return _result(
            Status.WARNING,
            f"RTO forecast: not enough samples of the database size ({len(pts)} over {span:.1f} days; "
            f"needs {min_samples} over {min_span_days:g} days, from capacity planning's disk_samples)",
            reason="not_enough_samples",
            samples=len(pts),
            span_days=round(span, 2),
        )
    base, per_day, ref = _fit(pts)
    fixed = {p["name"]: float(p["seconds"]) for p in rto_phases if p["name"] not in PROPORTIONAL}
    prop = {p["name"]: float(p["seconds"]) for p in rto_phases if p["name"] in PROPORTIONAL}
    projection: list[dict[str, Any]] = []
    for m in range(months + 1):
        at = now + timedelta(days=MONTH_DAYS * m)
        size = max(0.0, base + per_day * (at - ref).total_seconds() / 86400.0)
        factor = size / size_at_test
        per_phase = {**{k: v * factor for k, v in prop.items()}, **fixed}
        projection.append(
            {
                "month": m,
                "at": at.date().isoformat(),
                "size_bytes": round(size),
                "total_s": round(sum(per_phase.values()), 1),
                "phases_s": {k: round(v, 1) for k, v in per_phase.items()},
            }
        )
    details: dict[str, Any] = {
        "objective_s": objective_s,
        "growth_bytes_per_day": round(per_day, 1),
        "size_at_test": size_at_test,
        "samples": len(pts),
        "projection": projection,
        "source": source,
    }
    crossing = next((row for row in projection if row["total_s"] >= objective_s), None)
    last = projection[-1]
    obj_min = objective_s / 60
    if crossing is None:
        return _result(
            Status.OK,
            f"RTO forecast: {projection[0]['total_s'] / 60:.1f} min now, {last['total_s'] / 60:.1f} min in "
            f"{months} months ({last['at']}), under the {obj_min:g} min objective",
            **details,
        )
    top = max(crossing["phases_s"].items(), key=lambda kv: kv[1])
    details.update(crossing_month=crossing["month"], crossing_at=crossing["at"], top_phase=top[0])
    if crossing["month"] == 0:
        return _result(
            Status.CRITICAL,
            f"RTO forecast: already over the {obj_min:g} min objective ({crossing['total_s'] / 60:.1f} min "
            f"projected now); largest phase: {top[0]} ({top[1] / 60:.1f} min)",
            severity="P2",
            **details,
        )
    return _result(
        Status.WARNING,
        f"RTO forecast: the restore crosses the {obj_min:g} min objective in month {crossing['month']} "
        f"({crossing['at'][:7]}, {crossing['total_s'] / 60:.1f} min); largest phase: {top[0]} "
        f"({top[1] / 60:.1f} min); now {projection[0]['total_s'] / 60:.1f} min",
        **details,
    )
