"""Bodies of the External Security Assessment's tasks: the year's record from the results store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanvi_ops.airflow_kit.annual_review import from_store, review_period, store_dsn
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts


def settings(cfg: MaintenanceConfig) -> Any:
    return cfg.tasks.external_security_assessment.settings


def pentests(context: Mapping[str, Any]) -> ResultDicts:
    from sanvi_ops.core.annual_review import signoff_rows
    from sanvi_ops.tasks.external_security_assessment.assessment import pentest_record

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        rows = signoff_rows(store_dsn(cfg), "penetration_testing", review_period(context, s))
        return pentest_record(rows, expected=s.min_pentests)

    return from_store("assessment.pentests", run)


def security_scans(context: Mapping[str, Any]) -> ResultDicts:
    from sanvi_ops.core.annual_review import stored_results
    from sanvi_ops.tasks.external_security_assessment.assessment import scan_record

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        rows = stored_results(store_dsn(cfg), "security_scan", review_period(context, s))
        return [scan_record(rows, expected=s.min_security_scans)]

    return from_store("assessment.security_scans", run)
