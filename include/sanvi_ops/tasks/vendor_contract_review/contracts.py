"""Annual Vendor Contract Review: a year of cost reviews, for the contract and pricing talks.

:func:`cost_year` reads the quarterly Cost Optimization results: the spend each quarter
(``cost.spend``), the services whose spend rose (``cost.spend_increase[...]``) and the idle
resources' potential savings (``cost.potential_savings``). Fewer reviews than expected is a
finding. The vendors' delivered SLA (for service credits) comes from
:func:`sanvi_ops.tasks.vendor_security_assessment.vendors.sla_year`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sanvi_ops.core.annual_review import count_result
from sanvi_ops.core.results import CheckResult


def cost_year(rows: Sequence[Mapping[str, Any]], *, expected: int) -> CheckResult:
    """``rows``: ``check_results`` of ``cost_optimization`` in the year."""
    runs: dict[str, dict[str, Any]] = {}
    for r in rows:
        run = runs.setdefault(
            r["run_id"],
            {
                "run_id": r["run_id"],
                "at": r["at"],
                "spend_usd": None,
                "savings_usd_month": None,
                "increases": [],
            },
        )
        name = r["check_name"]
        if name == "cost.spend":
            run["spend_usd"] = r.get("observed")
            run["spend"] = r["summary"]
        elif name == "cost.potential_savings":
            run["savings_usd_month"] = r.get("observed")
        elif name.startswith("cost.spend_increase["):
            run["increases"].append(r["summary"])
    reviews = [run for run in runs.values() if run["spend_usd"] is not None]
    spend = sum(float(run["spend_usd"]) for run in reviews)
    latest = max(reviews, key=lambda run: run["at"], default=None)
    savings = latest["savings_usd_month"] if latest else None
    increases = sum(len(run["increases"]) for run in reviews)
    extra = f"; spend ${spend:,.2f} over them, {increases} service increase(s) flagged"
    if savings is not None:
        extra += f", idle resources ${float(savings):,.2f}/month at the last review"
    return count_result(
        "contract_review.cost_reviews",
        what="quarterly cost reviews with spend figures",
        found=reviews,
        expected=expected,
        action="run Cost Optimization for the missing quarters (Cost Explorer keeps 13 months) "
        "before negotiating",
        component="cost",
        extra=extra,
    )
