"""
# Architecture Review (quarterly, 1st month, 3rd Thursday, 11:00)

*The guide: "Review and optimize system architecture" — Architecture Team ("Long-term Planning:
quarterly architecture review").*

Takes an inventory of the AWS account (connection `aws_default`) and holds it to the
documented architecture in `tasks.architecture_review.settings` (the guide's component overview and network
layout), then compares it with the last review's inventory.

| task | what | a finding (warning) when |
|---|---|---|
| `take_inventory` | ECS services (running/desired tasks), ELBv2 load balancers, RDS instances (class, Multi-AZ), ElastiCache clusters and replication groups, S3 buckets, the documented VPCs' subnets (public = default route to an internet gateway) and NAT gateways; stored as the `architecture.inventory` result | an area could not be read (`error`, e.g. a missing IAM permission: the summary names the action) |
| `compare_with_documented` | each documented resource against the inventory | **missing** (`architecture.missing[...]`), **different** (class, Multi-AZ, engine, type/scheme, tasks below `min_tasks`, a private subnet without a NAT route: `architecture.different[...]`), **extra** (undocumented: `architecture.extra[...]`); no internet-facing ALB; an AZ without a public and a private subnet; no NAT gateway |
| `compare_with_last_quarter` | this inventory against the one the previous review stored | never: `architecture.changes` lists what was added, removed or changed, for the reviewers |

Then `record` stores the results (the inventory with them) and `notify` posts the report to
Slack. Findings are warnings: the run stays green unless something could not run.

Then `sign_off` asks the **Architecture Team** to sign the review off (even when the evidence run
is red): they are mentioned in Slack with a link, and answer in the Airflow UI under **Required
actions** (Approve / Reject with a comment) within `signoffs.dags.architecture_review.deadline`
(7 days). The answer is stored and posted in Slack. Rejected: the run turns red with the comment
as the reason. No answer by the deadline: a `signoff.sign_off` result of severity `on_timeout`
(warning) and an `[ESCALATION]` to the team lead.

## When it is red
A check is in `error`: an area could not be inventoried (its summary names the missing IAM
action, e.g. `elasticloadbalancing:DescribeLoadBalancers`, or the AWS error), the results store
could not be read, or a task failed. The other areas are still compared: fix the permission
(read-only: `ecs:List*`/`Describe*`, `elasticloadbalancing:Describe*`, `rds:Describe*`,
`elasticache:Describe*`, `s3:ListAllMyBuckets`, `ec2:Describe*`) and rerun.

## Acting on the report
1. **missing / different**: build or change the resource as documented, or — after the
   Architecture Team agrees the change — update `tasks.architecture_review.settings` in the config.
2. **extra**: document the resource (or list it in `undocumented_ok`), or remove it.
3. **changes**: confirm each change since last quarter went through the change process.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.airflow_kit.signoff import sign_off
from sanvi_ops.tasks.architecture_review import airflow_tasks as architecture_tasks


@maintenance_dag(__file__, __doc__)
def architecture_review() -> None:
    @task
    def take_inventory() -> list[dict[str, Any]]:
        """ECS, load balancers, RDS, ElastiCache, S3, subnets and NAT gateways, as built."""
        return architecture_tasks.inventory(dict(get_current_context()))

    @task
    def compare_with_documented(inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Missing, extra and different resources against `architecture_review`."""
        return architecture_tasks.documented(inventory)

    @task
    def compare_with_last_quarter(inventory: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What changed since the previous review's stored inventory."""
        return architecture_tasks.last_quarter(inventory, dict(get_current_context()))

    inventory = take_inventory()
    reported = publish(inventory, compare_with_documented(inventory), compare_with_last_quarter(inventory))
    sign_off(
        reported,
        subject="Quarterly architecture review: sign-off by the Architecture Team",
        body="Review what is missing, extra or different against the documented architecture and "
        "what changed since last quarter; approve when each difference is accepted or ticketed "
        "(update `tasks.architecture_review.settings` in the config for accepted changes), reject with the reason "
        "otherwise.",
    )


architecture_review()
