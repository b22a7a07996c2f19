"""Bodies of the Vendor Security Assessment's tasks: the vendors' year from the results store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanvi_ops.airflow_kit.annual_review import from_store, review_period, store_dsn
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts


def settings(cfg: MaintenanceConfig) -> Any:
    return cfg.tasks.vendor_security_assessment.settings


def vendor_slas(
    cfg: MaintenanceConfig, context: Mapping[str, Any], *, expected: int, prefix: str, lookback: Any
) -> list[CheckResult]:
    """Each critical vendor's SLA figures of the year (shared with the contract review)."""
    from sanvi_ops.core.annual_review import stored_results
    from sanvi_ops.tasks.vendor_security_assessment.vendors import sla_year

    rows = stored_results(
        store_dsn(cfg),
        "compliance_audit",
        review_period(context, lookback),
        check_like="compliance.vendor_sla[%",
    )
    vendors = {k: (v.name, v.sla_pct) for k, v in cfg.tasks.compliance_audit.settings.vendors.items()}
    return sla_year(rows, vendors, expected=expected, prefix=prefix)


def slas(context: Mapping[str, Any]) -> ResultDicts:
    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        return vendor_slas(cfg, context, expected=s.min_sla_reviews, prefix="vendor_assessment", lookback=s)

    return from_store("vendor_assessment.sla", run)
