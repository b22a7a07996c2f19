"""
# Change Review (on demand)

*Not a task of the guide's calendar: the guide's Change Management asks that an emergency change
gets a post-implementation review (PIR).*

A run that makes an **emergency change** (e.g. Database Maintenance with `emergency: true`,
outside every window) stores its change record, then its `request_review` task triggers this DAG
(run id `review__<dag_id>__<run_id>`, conf `{"dag_id", "run_id"}`) and finishes at once: the
changing DAG never waits for the review, so its timeouts and its next scheduled run are untouched.

`post_implementation_review` asks the **changed DAG's responsible team** for a form under
**Required actions** (what happened, outcome, follow-up), mentioned in Slack (`[SIGN-OFF]`), due
on the record's due date (`change_management.pir_due`, 5 d, after the change). The answer is
stored on the change record (`done`, who, the form) and as this run's
`signoff.post_implementation_review` result. Unanswered by then: `timed_out`, severity
`change_management.pir_on_timeout` (warning) and an `[ESCALATION]` to `on_call.team_lead`.
Several reviews may wait at once (one run per emergency change).

Trigger Params (by hand, e.g. to re-open a lost request): `dag_id`, `run_id` of the change.

## When it is not green
1. **failed, "no emergency change recorded"**: the conf names a run without an emergency change
   record (mistyped by hand?). Check the Maintenance page's **Changes**.
2. **skipped, "already done / timed_out"**: the review was answered (or timed out) before.
3. **the changing run's `request_review` failed, "Dag change_review is paused"**: unpause this DAG
   and clear that task; the review opens with its original due date.
4. **warning / critical, timed out**: nobody answered by the due date; the team lead was told.
   The record stays `timed_out` on the page and in the compliance evidence pack.
"""

from __future__ import annotations

from airflow.sdk import Param

from sanvi_ops.airflow_kit.changes import review_task
from sanvi_ops.airflow_kit.frame import maintenance_dag


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "dag_id": Param(type="string", minLength=1, title="DAG", description="The changed DAG"),
        "run_id": Param(
            type="string", minLength=1, title="Run", description="The run that made the emergency change"
        ),
    },
)
def change_review() -> None:
    review_task()


change_review()
