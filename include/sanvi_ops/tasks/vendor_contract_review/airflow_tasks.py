"""Bodies of the Vendor Contract Review's tasks: the year's cost reviews and delivered SLAs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanvi_ops.airflow_kit.annual_review import from_store, review_period, store_dsn
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts


def settings(cfg: MaintenanceConfig) -> Any:
    return cfg.tasks.vendor_contract_review.settings


def cost_reviews(context: Mapping[str, Any]) -> ResultDicts:
    from sanvi_ops.core.annual_review import stored_results
    from sanvi_ops.tasks.vendor_contract_review.contracts import cost_year

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        rows = stored_results(store_dsn(cfg), "cost_optimization", review_period(context, s))
        return [cost_year(rows, expected=s.min_cost_reviews)]

    return from_store("contract_review.cost_reviews", run)


def slas(context: Mapping[str, Any]) -> ResultDicts:
    from sanvi_ops.tasks.vendor_security_assessment.airflow_tasks import vendor_slas

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        return vendor_slas(cfg, context, expected=s.min_sla_reviews, prefix="contract_review", lookback=s)

    return from_store("contract_review.sla", run)
