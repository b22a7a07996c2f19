"""
# Vendor Contract Review (annually, January, 4th Thursday, 11:00)

*The guide: "Vendor Assessment: Annual contract and pricing review" — Finance & DevOps.*

Gathers the year's cost reviews and each critical vendor's delivered SLA, writes them as a report
to the evidence bucket, and waits for Finance & DevOps to record the review.

| task | what | a finding (warning) when |
|---|---|---|
| `review_cost_reviews` | the quarterly Cost Optimization runs of the last `lookback_days`: spend per quarter, services whose spend rose, idle resources' potential savings | fewer than `min_cost_reviews` (4) reviews with spend figures |
| `review_vendor_slas` | per vendor, the availability each quarterly SLA review measured (service credits owed) | fewer than `min_sla_reviews` reviews; a quarter below the SLA |
| `write_report` | the results, JSON and Markdown, to `s3://<evidence bucket>/annual-reviews/vendor_contract_review/<year>/` | `review.report` `error` when not written |

Then `record`, `notify`, and `sign_off`: **Finance & DevOps** fill in the form (verdict,
findings, notes: renewals, price changes, credits claimed) within 14 days.

## When it is not green
- `contract_review.cost_reviews` warning: a quarter has no cost figures; run Cost Optimization
  for it (Cost Explorer keeps 13 months) before negotiating.
- `contract_review.sla[<vendor>]` warning: claim the service credits for the quarters below SLA.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.annual_review import report_and_sign_off
from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.tasks.vendor_contract_review import airflow_tasks as contract_tasks


@maintenance_dag(__file__, __doc__)
def vendor_contract_review() -> None:
    @task
    def review_cost_reviews() -> list[dict[str, Any]]:
        """The year's quarterly cost reviews: spend, increases, potential savings."""
        return contract_tasks.cost_reviews(get_current_context())

    @task
    def review_vendor_slas() -> list[dict[str, Any]]:
        """Each critical vendor's delivered SLA this year (service credits)."""
        return contract_tasks.slas(get_current_context())

    report_and_sign_off(
        review_cost_reviews(),
        review_vendor_slas(),
        what="Annual contract and pricing review",
        body="Review the vendors' contracts and pricing against the year's spend and delivered SLA "
        "below; record renewals, price changes and credits claimed as findings.",
        settings_of=contract_tasks.settings,
    )


vendor_contract_review()
