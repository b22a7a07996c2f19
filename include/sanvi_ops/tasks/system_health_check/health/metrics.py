"""Host CPU and memory against the guide's thresholds, from Prometheus.

The guide says "CPU > 70 % for 15m → warning, > 90 % for 5m → critical" (memory: 80 % / 90 %).
"For 15m" is evaluated the way an alerting rule's ``for:`` is, in PromQL: the lowest value of the
query over the window (a ``[15m:1m]`` subquery, see :func:`sanvi_ops.core.prometheus.sustained_min`)
must be above the threshold, and the series must have existed for the whole window. A value that
is high *right now* but was not high for long enough is ``ok``, and the summary says so.

One result per instance (``host.cpu[backend-1]``), so one hot host is one incident. A query that
returns nothing is a ``warning`` ("no data"): silence from monitoring is not health. When
Prometheus cannot be asked (unreachable, bad PromQL in the configuration, HTTP error) the result
is ``error`` with Prometheus's own message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sanvi_ops.core.prometheus import (
    PrometheusClient,
    PrometheusError,
    Sample,
    promql_duration,
    sustained_min,
)
from sanvi_ops.core.results import CheckResult, Status

#: The standard node_exporter formulas: percent of CPU time not idle, percent of memory not available.
DEFAULT_CPU_QUERY = '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))'
DEFAULT_MEMORY_QUERY = "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)"


class ThresholdLike(Protocol):
    """What we need of a threshold (``sanvi_ops.core.config.Threshold`` has exactly this)."""

    @property
    def warning(self) -> float: ...

    @property
    def critical(self) -> float: ...

    @property
    def warning_for(self) -> timedelta | None: ...

    @property
    def critical_for(self) -> timedelta | None: ...


@dataclass(frozen=True)
class Assessment:
    """How one series fared: its status and the sentence explaining it."""

    status: Status
    reason: str


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)


def _held(duration: timedelta | None) -> str:
    return f" for {promql_duration(duration)}" if duration else ""


def assess(
    current: float,
    held_min_warning: float | None,
    held_min_critical: float | None,
    threshold: ThresholdLike,
) -> Assessment:
    """Grade one series (pure logic).

    :param current: the value now.
    :param held_min_warning: the lowest value over the last ``warning_for`` (``None``: the series did
        not exist for the whole window). Ignored when ``warning_for`` is ``None``: then the current
        value alone decides, as for a threshold without a duration.
    :param held_min_critical: the same over ``critical_for``.
    """
    crit = current if threshold.critical_for is None else held_min_critical
    warn = current if threshold.warning_for is None else held_min_warning
    if crit is not None and crit > threshold.critical:
        return Assessment(
            Status.CRITICAL, f"above {_fmt(threshold.critical)}%{_held(threshold.critical_for)}"
        )
    if warn is not None and warn > threshold.warning:
        note = ""
        if current > threshold.critical:
            note = f"; above {_fmt(threshold.critical)}% now but not yet{_held(threshold.critical_for)}"
        return Assessment(
            Status.WARNING, f"above {_fmt(threshold.warning)}%{_held(threshold.warning_for)}{note}"
        )
    if current > threshold.critical:
        return Assessment(
            Status.OK, f"above {_fmt(threshold.critical)}% now but not yet{_held(threshold.critical_for)}"
        )
    if current > threshold.warning:
        return Assessment(
            Status.OK, f"above {_fmt(threshold.warning)}% now but not yet{_held(threshold.warning_for)}"
        )
    return Assessment(Status.OK, f"below {_fmt(threshold.warning)}%")


def series_name(labels: dict[str, str], all_labels: list[dict[str, str]]) -> str:
    """What to call a series in a check name: its ``instance``, or its labels when that is ambiguous."""
    instance = labels.get("instance")
    if instance and sum(1 for other in all_labels if other.get("instance") == instance) == 1:
        return instance
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return ",".join(f"{k}={v}" for k, v in sorted(shown.items())) or "all"


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def _by_key(samples: list[Sample]) -> dict[tuple[tuple[str, str], ...], float]:
    return {_key(s.labels): s.value for s in samples}


def check_metric(
    prom: PrometheusClient,
    name: str,
    label: str,
    threshold: ThresholdLike,
    query: str,
    at: datetime,
    step: str = "1m",
) -> list[CheckResult]:
    """Check one metric (``name`` ``cpu`` → checks ``host.cpu[<instance>]``) at ``at``."""
    check = f"host.{name}"
    metric = f"{name}_used_pct"
    limits = {"warning": float(threshold.warning), "critical": float(threshold.critical)}
    windows = {"warning_for": threshold.warning_for, "critical_for": threshold.critical_for}
    base_details = {
        "query": query,
        "prometheus": prom.display_url,
        "at": at.isoformat(),
        **{k: promql_duration(v) if v else None for k, v in windows.items()},
    }
    try:
        current = prom.query(query, at)
        held = {
            k: _by_key(prom.query(sustained_min(query, v, step), at)) if v else {} for k, v in windows.items()
        }
    except (PrometheusError, ValueError) as exc:
        return [
            CheckResult(
                check=check,
                status=Status.ERROR,
                summary=f"{label} check could not run: {exc}",
                metric=metric,
                unit="%",
                thresholds=limits,
                details={**base_details, "error": str(exc)},
                component="prometheus",
            )
        ]
    now_by_key = _by_key(current)
    labels_by_key = {_key(s.labels): {k: v for k, v in s.labels.items() if k != "__name__"} for s in current}
    for values in held.values():
        for key in values:
            labels_by_key.setdefault(key, dict(key))
    if not labels_by_key:
        return [
            CheckResult(
                check=check,
                status=Status.WARNING,
                summary=f"no data for {label}: Prometheus at {prom.display_url} returned no series for {query}",
                metric=metric,
                unit="%",
                thresholds=limits,
                details=base_details,
                component="prometheus",
            )
        ]
    all_labels = list(labels_by_key.values())
    results = []
    for key, labels in labels_by_key.items():
        who = series_name(labels, all_labels)
        details = {
            **base_details,
            "labels": labels,
            "min_over_warning_for": held["warning_for"].get(key),
            "min_over_critical_for": held["critical_for"].get(key),
        }
        value = now_by_key.get(key)
        if value is None or not math.isfinite(value):
            summary = f"no current {label} value for {who}" + (f" (got {value})" if value is not None else "")
            results.append(
                CheckResult(
                    check=f"{check}[{who}]",
                    status=Status.WARNING,
                    summary=summary,
                    metric=metric,
                    unit="%",
                    thresholds=limits,
                    details=details,
                    component=labels.get("instance", who),
                )
            )
            continue
        verdict = assess(value, held["warning_for"].get(key), held["critical_for"].get(key), threshold)
        results.append(
            CheckResult(
                check=f"{check}[{who}]",
                status=verdict.status,
                summary=f"{label} on {who} at {_fmt(value)}%: {verdict.reason}",
                metric=metric,
                observed=round(value, 3),
                unit="%",
                thresholds=limits,
                details=details,
                component=labels.get("instance", who),
            )
        )
    return sorted(results, key=lambda r: r.check)


def check_host_metrics(
    prom: PrometheusClient,
    cpu: ThresholdLike,
    memory: ThresholdLike,
    cpu_query: str = DEFAULT_CPU_QUERY,
    memory_query: str = DEFAULT_MEMORY_QUERY,
    at: datetime | None = None,
    *,
    step: str = "1m",
) -> list[CheckResult]:
    """CPU and memory per instance against the guide's thresholds, evaluated at ``at``.

    :param prom: a ready client (the glue builds it from the Prometheus connection).
    :param cpu: / :param memory: thresholds with ``warning``, ``critical`` (percent) and
        ``warning_for`` / ``critical_for`` (how long the value must have been above them).
    :param cpu_query: / :param memory_query: PromQL returning percent used, one series per instance.
    :param at: evaluation time (timezone-aware); ``None`` → now. Every query uses the same instant.
    :param step: the subquery resolution of the "held for" windows.
    :returns: one result per instance and metric, never raises for a sick system.
    """
    when = at or datetime.now(UTC)
    return [
        *check_metric(prom, "cpu", "CPU", cpu, cpu_query, when, step),
        *check_metric(prom, "memory", "Memory", memory, memory_query, when, step),
    ]
