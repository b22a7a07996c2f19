"""
# Business Continuity Testing (annually, May, 4th Thursday, 11:00)

*The guide: "Compliance Reviews: Annual business continuity testing" — DevOps & DBA.*

The year's drills and recovery times from the results store, then a **game day**: after
approval, a full-system recovery and the DR-site activation, run by the DR Testing DAG; then a
report in the evidence bucket and the team's sign-off.

| task | what | a finding when |
|---|---|---|
| `review_drills` | every recovery test of the last `lookback_days` (`recovery_tests`: weekly restore tests, DR Testing's database, full-system and DR-site drills) per kind: count, failed, median and worst recovery time against `slos.recovery_time_minutes` (60) | warning: a `required_kinds` kind with no test, a failed test, a recovery time over the objective |
| `approve_<contact>` | the game day's approval by every approver of production's deployment window (Product Owner, CTO), in the UI under **Required actions**, within `approval_deadline` (3 days) | — |
| `check_approval` | all approved: go; otherwise the drills are skipped | — |
| `run_drill_full_system`, `run_drill_dr_site_activation` | trigger `dr_testing` with `{"scope": ...}` (run id `business_continuity__<run>__<scope>`), wait for it (deferred; the fixed run id means a retry never starts a second drill); the second only after the first succeeded | the DR Testing run fails: the task fails |
| `record_game_day` | each drill's stored results and recovery time (`continuity.game_day[<scope>]`) | critical: the drill failed; error: no run found; warning: recovery time over the objective, or the game day was not approved |
| `write_report` | the results, JSON and Markdown, to `s3://<evidence bucket>/annual-reviews/business_continuity_testing/<year>/` | `review.report` `error` when not written |

Then `record`, `notify`, and `sign_off`: **DevOps & DBA** fill in the form (verdict, findings by
severity, notes: what the game day taught, owners and dates) within 7 days.

## When it is not green
- `continuity.game_day[<scope>]` critical: read the DR Testing run named in the summary (its own
  runbook, docs/tasks/dr_testing.md), fix the cause, re-run the game day by triggering this DAG.
- `continuity.game_day[...]` warning "NOT run": the approvers rejected or did not answer; agree a
  date and trigger again.
- `continuity.drills[<kind>]` warning: a drill did not run this year or was slow; see its DAG.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.annual_review import report_and_sign_off
from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.tasks.business_continuity_testing import airflow_tasks as continuity_tasks


@maintenance_dag(__file__, __doc__)
def business_continuity_testing() -> None:
    @task
    def review_drills() -> list[dict[str, Any]]:
        """The year's recovery tests per kind against the recovery time objective."""
        return continuity_tasks.drills(get_current_context())

    report_and_sign_off(
        review_drills(),
        continuity_tasks.game_day(),
        what="Annual business continuity test",
        body="Review the year's drills and the game day below; record what it taught as findings "
        "with owners and dates.",
        settings_of=continuity_tasks.settings,
    )


business_continuity_testing()
