"""
# Log Review (daily, 09:30)

*The guide: "Check for critical errors or unusual patterns" — DevOps.*

| task | what | held to |
|---|---|---|
| `review_cloudwatch_logs` | ERROR/CRITICAL/FATAL events of the last 24 h in each of `tasks.log_review.settings.log_groups`, grouped into signatures (numbers, ids, UUIDs, hex, timestamps and IPs normalised away) with counts and first seen | error rate: `thresholds.error_rate` (> 1 % warning, > 5 % critical) of all events when the total is known, else `tasks.log_review.settings.errors_per_minute`; a signature new since last week or a CRITICAL/FATAL event is a warning |
| `review_postgres_log` | ERROR/FATAL/PANIC lines at the end of the PostgreSQL server log (`pg_read_file`), when the role may read it | FATAL/PANIC or a new signature is a warning; unreadable = skipped with the reason |

The window ends at the run's scheduled time, so a rerun reads the same 24 h. Signatures and
when each was first seen are kept in the results store (`log_signatures`); a source's first
review is its baseline. Then `record` stores the results and `notify` posts the report.

Started by hand (trigger form): `checks` (CloudWatch and/or the server log; one left out reports
`<task>.not_selected` as skipped), `hours` (the CloudWatch window, default `tasks.log_review.settings.lookback`)
and `log_groups` (a subset of the configured groups). See the README, "Starting a DAG by hand".

## When it is not green
1. **New signature**: read its sample in the Slack report / `record` log, find the owner
   (frontend/backend), open a ticket; page on-call if it is still happening and user-facing.
2. **Error rate critical**: a P3 incident is opened; look at the top signatures first.
3. **`logs.read[...]` error**: CloudWatch throttled (retried with adaptive backoff first), the
   group does not exist, or access is denied — the summary says which and what to change.
4. **Server log skipped**: the role cannot read it or `logging_collector` is off; review the
   log where it is shipped, or grant `pg_monitor` and `pg_read_server_files`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import (
    checks_param,
    optional_int_param,
    param_value,
    string_list_param,
    when_selected,
)
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.log_review import airflow_tasks as log_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = ("review_cloudwatch_logs", "review_postgres_log")
PARAMS = {
    "checks": checks_param(CHECKS),
    "hours": optional_int_param(
        title="Look back (hours)",
        description=(
            "CloudWatch window in hours before the run's time (1–336, up to 14 days); "
            "empty = tasks.log_review.settings.lookback (24 h), as scheduled. The server log is always read "
            "from its end."
        ),
        minimum=1,
        maximum=336,
    ),
    "log_groups": string_list_param(
        title="Log groups",
        description=(
            "Review only these CloudWatch Logs groups (one of tasks.log_review.settings.log_groups each); "
            "empty = all configured groups, as scheduled."
        ),
        choices=load_config().tasks.log_review.settings.log_groups,  # parse time: the local YAML only
    ),
}


@maintenance_dag(__file__, __doc__, params=PARAMS)
def log_review() -> None:
    @task
    @when_selected
    def review_cloudwatch_logs(**context: Any) -> list[dict[str, Any]]:
        """Error events of the look-back window (24 h) per log group: signatures, new ones, error rate."""
        return log_tasks.cloudwatch_logs(
            context["run_id"],
            log_tasks.window_end(context),
            hours=param_value(context, "hours"),
            groups=param_value(context, "log_groups"),
        )

    @task
    @when_selected
    def review_postgres_log(**context: Any) -> list[dict[str, Any]]:
        """Errors at the end of the PostgreSQL server log, where the role may read it."""
        return log_tasks.postgres_log(context["run_id"], log_tasks.window_end(context))

    publish(review_cloudwatch_logs(), review_postgres_log())


log_review()
