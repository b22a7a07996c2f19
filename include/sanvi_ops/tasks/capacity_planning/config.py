"""The Capacity Planning's settings (``tasks.capacity_planning.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from sanvi_ops.core.config import (
    Duration,
    NonEmpty,
    _Model,
)


class CapacityPlanningConfig(_Model):
    """What the monthly Capacity Planning (``sanvi_ops.tasks.capacity_planning.capacity``) reads and how it plans.

    The CPU/memory queries are ``tasks.system_health_check.settings.prometheus``; the ECS cluster and services
    ``tasks.system_health_check.settings.ecs_cluster`` / ``ecs_services`` unless ``autoscaling_services`` lists others.
    """

    #: The period looked back on (growth and trends are fitted over it).
    period: Duration = dt.timedelta(days=30)
    #: Growth and trends are projected this far ahead: crossing a limit within it is a warning.
    horizon_days: float = Field(default=90, gt=0)
    #: The guide's "scale up at 70 %"; ``null`` = ``thresholds.cpu.warning``.
    scale_up_pct: float | None = Field(default=None, gt=0, le=100)
    #: A CPU/memory trend is only extrapolated from at least this much data.
    min_trend_days: float = Field(default=7, ge=0)
    #: Resolution of the CPU/memory range queries (and of the chart).
    trend_step: Duration = dt.timedelta(minutes=15)
    autoscaling_min: int = Field(default=2, ge=0)
    autoscaling_max: int = Field(default=10, gt=0)
    autoscaling_services: list[NonEmpty] = Field(default_factory=list)
    #: Reads per write above which a read replica is recommended (the guide: 4:1).
    read_replica_ratio: float = Field(default=4, gt=0)
    top_tables: int = Field(default=10, gt=0, le=100)
    timeout_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> CapacityPlanningConfig:
        if self.autoscaling_min > self.autoscaling_max:
            raise ValueError(
                f"autoscaling_min ({self.autoscaling_min}) must not exceed autoscaling_max ({self.autoscaling_max})"
            )
        return self
