"""Bodies of the Cost Optimization's tasks: config + connections in, result dicts out.

Two tasks: Cost Explorer spend (one call per quarter) and the idle resources (EC2/EBS and
ELBv2), each area guarded on its own so a missing permission is reported for it alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.cost_optimization.cost import as_utc


def run_date(context: dict[str, Any]) -> datetime:
    """The run's logical date (UTC), else its data interval end, else now."""
    for key in ("logical_date", "data_interval_end"):
        value = context.get(key)
        if isinstance(value, datetime):
            return as_utc(value)
    return datetime.now(UTC)


def _client(cfg: MaintenanceConfig, service: str) -> Any:
    from sanvi_ops.airflow_kit.connections import aws_client

    return aws_client(cfg.connections.aws, service)


def prices(cfg: MaintenanceConfig) -> Any:
    from sanvi_ops.tasks.cost_optimization.cost import Prices

    co = cfg.tasks.cost_optimization.settings
    return Prices(
        ebs_gb_month=dict(co.ebs_gb_month_usd),
        snapshot_gb_month=co.snapshot_gb_month_usd,
        lb_hourly=dict(co.load_balancer_hourly_usd),
        hours_per_month=co.hours_per_month,
    )


def spend(context: dict[str, Any]) -> ResultDicts:
    from sanvi_ops.tasks.cost_optimization.cost import check_spend

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        co = cfg.tasks.cost_optimization.settings
        return check_spend(
            _client(cfg, "ce"),
            run_date(context),
            increase_warning_pct=co.spend_increase_warning_pct,
            min_monthly_usd=co.spend_min_monthly_usd,
            metric=co.cost_metric,
        )

    return guard("cost_explorer", Status.ERROR, run)


def idle_resources(context: dict[str, Any]) -> ResultDicts:
    from sanvi_ops.tasks.cost_optimization import cost

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        table = prices(cfg)
        ec2, elbv2 = _client(cfg, "ec2"), _client(cfg, "elbv2")
        now = run_date(context)
        retention = cfg.backups.database.retention_days
        results = (
            cost.guarded(
                "cost.unattached_volumes",
                "ebs",
                ec2,
                "describe_volumes",
                lambda: cost.unattached_volumes(ec2, table),
            )
            + cost.guarded(
                "cost.old_snapshots",
                "ebs",
                ec2,
                "describe_snapshots",
                lambda: cost.old_snapshots(ec2, table, retention_days=retention, now=now),
            )
            + cost.guarded(
                "cost.stopped_instances",
                "ec2",
                ec2,
                "describe_instances",
                lambda: cost.stopped_instances(ec2, table),
            )
            + cost.guarded(
                "cost.idle_load_balancers",
                "elb",
                elbv2,
                "describe_load_balancers",
                lambda: cost.idle_load_balancers(elbv2, table),
            )
        )
        return [*results, cost.savings_summary(results)]

    return guard("cost", Status.ERROR, run)
