"""
# Vendor Security Assessment (annually, April, 4th Thursday, 11:00)

*The guide: "Vendor Assessment: Annual security assessment of critical vendors" — Legal & Security.*

Gathers each critical vendor's year (`tasks.compliance_audit.settings.vendors`: AWS, the
authentication provider) from the quarterly SLA reviews, writes it as a report to the evidence
bucket, and waits for Legal & Security to record the assessment.

| task | what | a finding (warning) when |
|---|---|---|
| `review_vendor_slas` | per vendor, the availability the Compliance Audit measured each quarter of the last `lookback_days` (its stored `compliance.vendor_sla[<vendor>]` results) against the vendor's SLA | fewer than `min_sla_reviews` (4) reviews; a quarter below the SLA; a review that could not measure it |
| `write_report` | the results, JSON and Markdown, to `s3://<evidence bucket>/annual-reviews/vendor_security_assessment/<year>/` | `review.report` `error` when not written |

Then `record`, `notify`, and `sign_off`: **Legal & Security** fill in the form (verdict,
findings by severity, notes, report URL) within 14 days, after reviewing each vendor's security
evidence (SOC 2 / ISO 27001 report, incidents and breaches of the year, sub-processors, data
location). Unanswered: a warning and an `[ESCALATION]`.

## When it is not green
- `vendor_assessment.sla[<vendor>]` warning: raise the quarters below the SLA with the vendor
  (service credits, their incident reports); a missing review means a Compliance Audit did not
  run or could not measure the vendor (add a probe of it to the health check).
- `review.report` `error`: the report was not kept (bucket versioning, `s3:PutObject`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.annual_review import report_and_sign_off
from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.tasks.vendor_security_assessment import airflow_tasks as vendor_tasks


@maintenance_dag(__file__, __doc__)
def vendor_security_assessment() -> None:
    @task
    def review_vendor_slas() -> list[dict[str, Any]]:
        """Each critical vendor's quarterly availability this year against its SLA."""
        return vendor_tasks.slas(get_current_context())

    report_and_sign_off(
        review_vendor_slas(),
        what="Annual security assessment of critical vendors",
        body="Review each vendor's security evidence (SOC 2 / ISO 27001 report, the year's incidents, "
        "sub-processors) with the SLA figures below; record the verdict and findings.",
        settings_of=vendor_tasks.settings,
    )


vendor_security_assessment()
