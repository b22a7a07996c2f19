"""The Performance Analysis's settings (``tasks.performance_analysis.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator, model_validator

from sanvi_ops.core.config import (
    Duration,
    NonEmpty,
    _Model,
)


class PerformanceAnalysisConfig(_Model):
    """What the weekly Performance Analysis reads and how it grades it (``sanvi_ops.tasks.performance_analysis.performance``).

    The three queries are PromQL templates: ``$window`` becomes the range (``5m``, ``7d``, the
    month so far). The SLOs and alert thresholds come from ``slos`` and ``thresholds``.
    """

    top_queries: int = Field(default=10, gt=0, le=100)
    #: A statement whose mean time grew by more than this (%) with at least ``regression_min_calls``
    #: calls this week is a warning.
    regression_pct: float = Field(default=50, gt=0)
    regression_min_calls: int = Field(default=100, ge=0)
    #: Buffer cache hit ratio floors (%): below warning is a warning, below critical critical.
    cache_hit_warning_pct: float = Field(default=99, gt=0, le=100)
    cache_hit_critical_pct: float = Field(default=90, gt=0, le=100)
    seq_scan_min_rows: int = Field(default=10_000, ge=0)
    seq_scan_min_scans: int = Field(default=100, ge=0)
    error_budget_warning_left_pct: float = Field(default=25, ge=0, le=100)
    chart_step: Duration = dt.timedelta(minutes=15)
    timeout_seconds: float = Field(default=30, gt=0)
    request_rate_query: NonEmpty = 'sum(rate(http_requests_total{job="sanvi-backend"}[$window]))'
    error_rate_query: NonEmpty = (
        'sum(rate(http_requests_total{job="sanvi-backend",status=~"5.."}[$window]))'
        ' / sum(rate(http_requests_total{job="sanvi-backend"}[$window]))'
    )
    latency_p95_query: NonEmpty = (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{job="sanvi-backend"}[$window])))'
    )

    @field_validator("request_rate_query", "error_rate_query", "latency_p95_query")
    @classmethod
    def _has_window(cls, value: str) -> str:
        if "$window" not in value:
            raise ValueError("must contain $window where the range goes (e.g. rate(x[$window]))")
        return value

    @model_validator(mode="after")
    def _floors(self) -> PerformanceAnalysisConfig:
        if self.cache_hit_warning_pct <= self.cache_hit_critical_pct:
            raise ValueError(
                f"cache_hit_warning_pct ({self.cache_hit_warning_pct:g}) must be above "
                f"cache_hit_critical_pct ({self.cache_hit_critical_pct:g}): they are floors"
            )
        return self
