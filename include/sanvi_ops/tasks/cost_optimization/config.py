"""The Cost Optimization's settings (``tasks.cost_optimization.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sanvi_ops.core.config import (
    NonEmpty,
    _Model,
)


class CostOptimizationConfig(_Model):
    """What the quarterly Cost Optimization (``sanvi_ops.tasks.cost_optimization.cost``) flags, and its price table.

    Snapshot retention is ``backups.database.retention_days``; prices are USD on-demand list
    prices of the account's region (update them when AWS changes them).
    """

    #: A service whose spend rose more than this over the previous quarter is a warning.
    spend_increase_warning_pct: float = Field(default=20, gt=0)
    #: Services below this many USD a month this quarter are not compared (noise).
    spend_min_monthly_usd: float = Field(default=10, ge=0)
    cost_metric: Literal["UnblendedCost", "AmortizedCost", "NetUnblendedCost", "BlendedCost"] = (
        "UnblendedCost"
    )
    #: EBS storage, USD per GB-month, by volume type.
    ebs_gb_month_usd: dict[NonEmpty, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "gp3": 0.08,
            "gp2": 0.10,
            "io1": 0.125,
            "io2": 0.125,
            "st1": 0.045,
            "sc1": 0.015,
            "standard": 0.05,
        }
    )
    snapshot_gb_month_usd: float = Field(default=0.05, ge=0)
    #: Load balancer hour, USD, by type (``application``, ``network``, ``gateway``).
    load_balancer_hourly_usd: dict[NonEmpty, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"application": 0.0225, "network": 0.0225, "gateway": 0.0125}
    )
    hours_per_month: float = Field(default=730, gt=0)
