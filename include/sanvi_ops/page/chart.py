"""The recovery-time chart and the restore-phase bars, as geometry: where each line, point and
label goes. The markup is the template's (``templates/_chart.html.j2``): plain SVG, no script,
nothing fetched.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sanvi_ops.core.rto_forecast import phases_line
from sanvi_ops.page.formats import minutes
from sanvi_ops.page.model import RecoveryPoint

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
_STEPS: Final = (5, 10, 15, 30, 60, 120, 240, 480, 960, 1e9)


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    #: At or over the objective: drawn larger, with a red ring.
    over: bool
    #: The tooltip: kind, date, minutes.
    title: str


@dataclass(frozen=True)
class ChartSeries:
    kind: str
    colour: str
    points: tuple[ChartPoint, ...]

    @property
    def polyline(self) -> str | None:
        """The line through the points (``x,y x,y …``), or ``None`` for a single point."""
        if len(self.points) < 2:
            return None
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


@dataclass(frozen=True)
class Tick:
    #: The position along its axis (y for the minutes, x for the months).
    at: float
    label: str


@dataclass(frozen=True)
class RecoveryChart:
    """Measured recovery times (minutes) over time, one series per kind, the objective as a line."""

    width: int
    height: int
    left: int
    top: int
    plot_w: int
    plot_h: int
    minute_ticks: tuple[Tick, ...]
    month_ticks: tuple[Tick, ...]
    objective_y: float
    objective: str
    series: tuple[ChartSeries, ...]

    @property
    def right(self) -> int:
        return self.left + self.plot_w

    @property
    def bottom(self) -> int:
        return self.top + self.plot_h


def recovery_chart(
    points: Sequence[RecoveryPoint],
    objective_s: float,
    *,
    start: dt.datetime,
    end: dt.datetime,
    width: int = 900,
    height: int = 260,
) -> RecoveryChart:
    """Where everything of the chart goes, ``start`` to ``end`` left to right."""
    left, right, top, bottom = 56, 170, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_minutes = max([objective_s / 60 * 1.25, *[p.rto_seconds / 60 * 1.1 for p in points]])
    step = next(s for s in _STEPS if top_minutes / s <= 6)
    top_minutes = math.ceil(top_minutes / step) * step
    span = max((end - start).total_seconds(), 1.0)

    def x(at: dt.datetime) -> float:
        return left + plot_w * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    def y(mins: float) -> float:
        return top + plot_h * (1 - min(mins, top_minutes) / top_minutes)

    minute_ticks = []
    value = 0.0
    while value <= top_minutes + 1e-9:
        minute_ticks.append(Tick(y(value), f"{value:g}"))
        value += step
    month_ticks = []
    month = dt.datetime(start.year, start.month, 1, tzinfo=dt.UTC)
    while month <= end:
        if month >= start:
            month_ticks.append(Tick(x(month), f"{month:%b %y}"))
        month = dt.datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=dt.UTC)
    kinds = sorted({p.kind for p in points})
    series = tuple(
        ChartSeries(
            kind,
            _KIND_COLOURS[i % len(_KIND_COLOURS)],
            tuple(
                ChartPoint(
                    x(p.started_at),
                    y(p.rto_seconds / 60),
                    p.rto_seconds >= objective_s,
                    f"{kind} {p.started_at:%Y-%m-%d}: {minutes(p.rto_seconds)}",
                )
                for p in points
                if p.kind == kind
            ),
        )
        for i, kind in enumerate(kinds)
    )
    return RecoveryChart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_w=plot_w,
        plot_h=plot_h,
        minute_ticks=tuple(minute_ticks),
        month_ticks=tuple(month_ticks),
        objective_y=y(objective_s / 60),
        objective=minutes(objective_s),
        series=series,
    )


@dataclass(frozen=True)
class PhaseSegment:
    x: float
    width: float
    colour: str
    #: Phases after the RTO mark (validation) are drawn lighter.
    opacity: str
    #: The tooltip: name, seconds, throughput.
    label: str


@dataclass(frozen=True)
class PhaseBar:
    """One recovery test's phases as a stacked bar, with its one-line text."""

    point: RecoveryPoint
    segments: tuple[PhaseSegment, ...]
    line: str
    width: int


def _seconds(phase: Mapping[str, Any]) -> float:
    return max(0.0, float(phase.get("seconds") or 0))


def _segments(phases: Sequence[Mapping[str, Any]], scale_s: float, width: int) -> tuple[PhaseSegment, ...]:
    x, out = 0.0, []
    for i, p in enumerate(phases):
        try:
            seconds = _seconds(p)
        except (TypeError, ValueError):
            continue
        w = width * seconds / scale_s if scale_s > 0 else 0.0
        rate = p.get("mb_per_s")
        label = f"{p.get('name', '?')}: {seconds:.1f} s" + (f" ({rate} MB/s)" if rate is not None else "")
        opacity = "1" if p.get("in_rto", True) else "0.45"
        out.append(PhaseSegment(x, w, _PHASE_COLOURS[i % len(_PHASE_COLOURS)], opacity, label))
        x += w
    return tuple(out)


def phase_bars(points: Sequence[RecoveryPoint], *, limit: int = 6, width: int = 420) -> list[PhaseBar]:
    """The newest ``limit`` tests with recorded phases, newest first, on one scale (the longest
    test = ``width``)."""
    with_phases = [p for p in points if p.phases][-limit:]
    if not with_phases:
        return []
    scale = max(sum(_seconds(ph) for ph in p.phases) for p in with_phases) or 1.0
    return [
        PhaseBar(p, _segments(p.phases, scale, width), phases_line(p.phases), width)
        for p in reversed(with_phases)
    ]
