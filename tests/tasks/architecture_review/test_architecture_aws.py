"""The Architecture Review's inventory and comparisons against the moto server.

The account is seeded with the demo stack plus the governance resources
(:func:`seed_governance`): documented and compliant resources (ECS services at 2 tasks, an
internet-facing ALB, the cache, the documented buckets, a NAT gateway the private subnet routes
through) next to deliberate gaps (a single-AZ RDS instance documented Multi-AZ, an undocumented
bucket, no private subnet in the second zone). Each comparison must flag exactly those. A
refusal is a real IAM policy denial by moto (its IAM enforcement switched on).
"""

from __future__ import annotations

import datetime as dt

import pytest

from devstack.aws_seed import LEGACY_BUCKET, seed_demo
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from sanvi_ops.tasks.architecture_review import architecture as arch
from tests.tasks.system_health_check.test_health_aws import moto_enforces_iam  # noqa: F401 — fixture

pytestmark = pytest.mark.integration

SERVICES = ("ecs", "elbv2", "rds", "elasticache", "s3", "ec2")


@pytest.fixture
def stack(aws_endpoint):
    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.architecture_review.airflow_tasks import spec

    seeded = seed_demo(aws_endpoint, governance=True)
    return seeded, spec(load_config())


def _take(boto_client, documented):
    return arch.take_inventory(
        {s: boto_client(s) for s in SERVICES},
        ecs_cluster=documented.ecs_cluster,
        vpc_names=documented.vpc_names,
    )


def _flagged(results: list[CheckResult]) -> set[str]:
    return {r.check for r in results if r.status is not Status.OK}


def test_seeded_account_flags_exactly_the_gaps(stack, boto_client):
    seeded, documented = stack
    found, errors = _take(boto_client, documented)
    assert errors == []
    assert set(found["ecs_services"]) == {"frontend", "backend"}
    assert found["ecs_services"]["frontend"]["running"] == 2
    assert found["rds_instances"]["sanvi-production-db"]["multi_az"] is False
    subnets = found["subnets"].values()
    assert sorted(s["public"] for s in subnets) == [False, True, True]
    assert [s["nat_route"] for s in subnets if not s["public"]] == [True]

    results = arch.compare_with_documented(found, documented)
    assert _flagged(results) == {
        "architecture.different[rds:sanvi-production-db]",
        f"architecture.extra[s3:{LEGACY_BUCKET}]",
        "architecture.missing[subnet:sanvi-production/us-east-1b/private]",
    }
    rds = next(r for r in results if r.check == "architecture.different[rds:sanvi-production-db]")
    assert rds.details["differences"] == {"multi_az": {"actual": False, "documented": True}}
    summary = results[-1]
    assert summary.check == "architecture.documented" and summary.details["missing"] == 1


def test_drift_is_missing_extra_and_different(stack, boto_client):
    seeded, documented = stack
    ecs, ec2, elbv2 = boto_client("ecs"), boto_client("ec2"), boto_client("elbv2")
    cluster = seeded["ecs_cluster"]
    task_def = ecs.list_task_definitions()["taskDefinitionArns"][0]
    ecs.create_service(cluster=cluster, serviceName="worker", taskDefinition=task_def, desiredCount=1)
    ecs.update_service(cluster=cluster, service="backend", desiredCount=1)
    for lb in elbv2.describe_load_balancers()["LoadBalancers"]:
        elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    boto_client("s3").delete_bucket(Bucket="sanvi-machinery-audit")
    # a private subnet in the second zone, but without a route to the NAT gateway
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["sanvi-production"]}])["Vpcs"][0][
        "VpcId"
    ]
    lonely = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.11.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=lonely["SubnetId"])

    found, _ = _take(boto_client, documented)
    results = arch.compare_with_documented(found, documented)
    assert _flagged(results) == {
        "architecture.different[rds:sanvi-production-db]",
        f"architecture.extra[s3:{LEGACY_BUCKET}]",
        "architecture.extra[ecs:worker]",
        "architecture.different[ecs:backend]",
        "architecture.missing[alb]",
        "architecture.missing[s3:sanvi-machinery-audit]",
        f"architecture.different[subnet:{lonely['SubnetId']}]",
    }
    backend = next(r for r in results if r.check == "architecture.different[ecs:backend]")
    assert backend.details["differences"]["desired_tasks"] == {"actual": 1, "documented": ">= 2"}


def test_changes_since_the_stored_inventory_of_last_quarter(stack, boto_client, make_db):
    _, documented = stack
    dsn = make_db("arch")
    store = ResultStore(dsn)
    store.migrate()
    last_quarter = dt.datetime(2026, 7, 16, 11, tzinfo=dt.UTC)
    found, _ = _take(boto_client, documented)
    store.save_results(
        "architecture_review",
        "scheduled__q3",
        last_quarter,
        [arch.inventory_result(found, taken_at=last_quarter)],
    )
    boto_client("s3").create_bucket(Bucket="sanvi-new-reports")
    boto_client("ecs").update_service(cluster=documented.ecs_cluster, service="frontend", desiredCount=3)

    now = dt.datetime(2026, 10, 15, 11, tzinfo=dt.UTC)
    previous = arch.previous_inventory(dsn, dag_id="architecture_review", run_id="scheduled__q4", before=now)
    assert previous is not None and previous["run_id"] == "scheduled__q3"
    current, _ = _take(boto_client, documented)
    change = arch.changes_since(previous, current)
    assert change.status is Status.OK
    assert change.details["added"] == ["buckets:sanvi-new-reports"]
    assert change.details["removed"] == []
    assert change.details["changed"] == {"ecs_services:frontend": {"desired": {"before": 2, "now": 3}}}
    assert "2026-07-16" in change.summary
    # the run itself and later runs are never "the previous one"
    assert (
        arch.previous_inventory(dsn, dag_id="architecture_review", run_id="scheduled__q3", before=now) is None
    )
    assert arch.changes_since(None, current).summary.startswith("first inventory")


def test_a_denied_area_names_the_action_and_the_rest_is_compared(
    stack,
    boto_client,
    aws_endpoint,
    moto_enforces_iam,  # noqa: F811 — the fixture imported above
):
    import boto3

    _, documented = stack
    iam = boto_client("iam")
    iam.create_user(UserName="reviewer")
    iam.put_user_policy(
        UserName="reviewer",
        PolicyName="read-all-but-elb",
        PolicyDocument=(
            '{"Version": "2012-10-17", "Statement": ['
            '{"Effect": "Allow", "Action": "*", "Resource": "*"},'
            '{"Effect": "Deny", "Action": "elasticloadbalancing:*", "Resource": "*"}]}'
        ),
    )
    key = iam.create_access_key(UserName="reviewer")["AccessKey"]
    moto_enforces_iam()
    clients = {
        s: boto3.client(
            s,
            region_name="us-east-1",
            endpoint_url=aws_endpoint,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        for s in SERVICES
    }
    found, errors = arch.take_inventory(
        clients, ecs_cluster=documented.ecs_cluster, vpc_names=documented.vpc_names
    )
    assert [(e.check, e.status, e.details["missing_action"]) for e in errors] == [
        (
            "architecture.inventory[load_balancers]",
            Status.ERROR,
            "elasticloadbalancing:DescribeLoadBalancers",
        )
    ]
    assert "load_balancers" not in found and set(found["ecs_services"]) == {"frontend", "backend"}
    snapshot = arch.inventory_result(found, taken_at=dt.datetime.now(dt.UTC))
    assert snapshot.details["unavailable"] == ["load_balancers"]
    results = arch.compare_with_documented(found, documented)
    assert "architecture.missing[alb]" not in _flagged(results)  # not compared, not "missing"
    assert "architecture.different[rds:sanvi-production-db]" in _flagged(results)
    assert results[-1].details["not_compared"] == ["load_balancers"]
