"""
# Cost Optimization (quarterly, 1st month, 2nd Thursday, 11:00)

*The guide: "Review and optimize cloud resource costs" — Finance & DevOps.*

Gathers the evidence for the quarterly cost review from the AWS account (connection
`aws_default`). "This quarter" is the last complete quarter before the run's logical date (its
invoice is final by the 2nd week), compared with the quarter before it.

| task | what | a finding (warning) when |
|---|---|---|
| `check_spend` | Cost Explorer `GetCostAndUsage`, monthly, grouped by SERVICE, both quarters | a service's spend rose more than `tasks.cost_optimization.settings.spend_increase_warning_pct` (20 %) or is new (services under `spend_min_monthly_usd` a month are ignored) |
| `find_idle_resources` | unattached EBS volumes; own snapshots older than `backups.database.retention_days` (30); stopped instances (cost = their volumes); load balancers without a healthy target | each one, with `details.monthly_cost_usd` from the price table in `tasks.cost_optimization.settings`; then `cost.potential_savings` totals them |

Then `record` stores the results and `notify` posts the report to Slack. Findings are warnings:
the run stays green unless a check could not run (`error`, e.g. a missing IAM permission — the
summary names the action, such as `ce:GetCostAndUsage`).

Then `sign_off` asks **Finance & DevOps** to sign the review off (even when the evidence run is
red): they are mentioned in Slack with a link, and answer in the Airflow UI under **Required
actions** (Approve / Reject with a comment) within `signoffs.dags.cost_optimization.deadline`
(7 days). The answer is stored and posted in Slack. Rejected: the run turns red with the
comment as the reason. No answer by the deadline: a `signoff.sign_off` result of severity
`on_timeout` (warning) and an `[ESCALATION]` to the team lead.

## Acting on the report
1. Spend increases: the service owner explains each (growth, a new feature) or opens a
   right-sizing ticket; Reserved Instances / Savings Plans for steady growth.
2. Idle resources: each summary ends with **Action:**; delete after confirming with the owner
   (snapshot a volume first; keep an AMI of a stopped instance you terminate).
3. Keep the price table in `include/config/maintenance.yaml` current with the region's prices.
4. Sign-off rejected: the comment says why; act on it and re-run the DAG (a new sign-off).
5. An `error`: grant the named action to the role (read-only: `ce:GetCostAndUsage`,
   `ec2:Describe*`, `elasticloadbalancing:Describe*`).

Trigger form: `checks` picks which automated checks run; the ones left out are
recorded as `skipped` (`<task>.not_selected`). Scheduled runs check everything.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.airflow_kit.signoff import sign_off
from sanvi_ops.tasks.cost_optimization import airflow_tasks as cost_tasks

CHECKS = ("check_spend", "find_idle_resources")


@maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
def cost_optimization() -> None:
    @task
    @when_selected
    def check_spend() -> list[dict[str, Any]]:
        """Cost Explorer spend by service, this quarter against the last."""
        return cost_tasks.spend(dict(get_current_context()))

    @task
    @when_selected
    def find_idle_resources() -> list[dict[str, Any]]:
        """Unattached volumes, old snapshots, stopped instances, idle load balancers; total savings."""
        return cost_tasks.idle_resources(dict(get_current_context()))

    reported = publish(check_spend(), find_idle_resources())
    sign_off(
        reported,
        subject="Quarterly cost review: sign-off by Finance & DevOps",
        body="Review the spend by service and the idle resources below; approve when the actions "
        "are agreed (owners named, tickets opened), reject with the reason otherwise.",
    )


cost_optimization()
