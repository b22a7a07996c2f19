"""
# External Security Assessment (annually, September, 4th Thursday, 11:00)

*The guide: "Compliance Reviews: Annual external security assessment" — Security.*

Gathers the year's security record for the external assessors, writes it as a report to the
evidence bucket, and waits for the Security team to record the assessment's verdict and findings.

| task | what | a finding (warning) when |
|---|---|---|
| `review_pentests` | the penetration-test forms of the last `lookback_days` (365) as the Security team entered them (Penetration Testing's `record_pentest_outcome`: outcome, tester, findings by severity, report URL) | fewer than `min_pentests` (4) tests with a recorded outcome; a test failed or found critical/high issues |
| `review_security_scans` | every Security Scan run of the year with its findings | fewer than `min_security_scans` (12) runs |
| `write_report` | every result above (the evidence in each result's details) as `report.json` and `report.md` to `s3://<evidence bucket>/annual-reviews/external_security_assessment/<year>/` (the compliance audit's versioned bucket, SSE, read back by version) | `review.report` `error` when the bucket is not versioned or the write fails |

Then `record` stores the results and `notify` posts them to Slack. Then `sign_off`: the
**Security** team fills in a form under **Required actions** (verdict accepted /
accepted_with_actions / not_accepted, findings by severity, notes, the assessors' report URL)
within `signoffs.dags.external_security_assessment.deadline` (30 days). The entry is stored
(`sign_off.findings`: not accepted or a critical finding **critical**, with actions or a high
finding warning). No entry by the deadline: a **critical** result and an `[ESCALATION]`.

## When it is not green
- `review.report` in `error`: the report was not kept. Enable versioning on the evidence bucket
  or grant `s3:PutObject`, and rerun.
- `assessment.pentests` warning: a quarter's test has no recorded outcome; record it (re-run
  that Penetration Testing run's form) or give the assessors the reason.
- Any `error` naming the results store: the evidence could not be read; fix the store connection
  (`connections.store`) and rerun.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.annual_review import report_and_sign_off
from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.tasks.external_security_assessment import airflow_tasks as assessment_tasks


@maintenance_dag(__file__, __doc__)
def external_security_assessment() -> None:
    @task
    def review_pentests() -> list[dict[str, Any]]:
        """The year's penetration-test forms: how many, and what they found."""
        return assessment_tasks.pentests(get_current_context())

    @task
    def review_security_scans() -> list[dict[str, Any]]:
        """The year's Security Scan runs and their findings."""
        return assessment_tasks.security_scans(get_current_context())

    report_and_sign_off(
        review_pentests(),
        review_security_scans(),
        what="Annual external security assessment",
        body="Hand the report (its S3 location is in the `review.report` result) to the external "
        "assessors; record their verdict and findings here when the assessment is done.",
        settings_of=assessment_tasks.settings,
    )


external_security_assessment()
