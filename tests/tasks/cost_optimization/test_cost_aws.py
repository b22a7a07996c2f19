"""Cost Optimization checks against the moto server on 127.0.0.1, seeded with idle and in-use
resources: each check must flag exactly the idle ones.

moto implements Cost Explorer ``GetCostAndUsage`` but tracks no costs; its answers are queued
through moto's ``/moto-api/static/ce/cost-and-usage-results`` endpoint (one per distinct
request, in request order), shaped as in the AWS API reference.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.cost_optimization.cost import (
    Prices,
    check_spend,
    idle_load_balancers,
    old_snapshots,
    savings_summary,
    stopped_instances,
    unattached_volumes,
)

pytestmark = pytest.mark.integration

AMI = "ami-12c6146b"  # one of moto's default images
PRICES = Prices(ebs_gb_month={"gp3": 0.08, "gp2": 0.10}, snapshot_gb_month=0.05)


def ce_period(start: str, end: str, groups: dict[str, float]) -> dict[str, Any]:
    return {
        "TimePeriod": {"Start": start, "End": end},
        "Total": {},
        "Groups": [
            {"Keys": [name], "Metrics": {"UnblendedCost": {"Amount": str(amount), "Unit": "USD"}}}
            for name, amount in groups.items()
        ],
        "Estimated": False,
    }


def queue_costs(endpoint: str, *responses: list[dict[str, Any]]) -> None:
    body = {"results": [{"ResultsByTime": periods, "DimensionValueAttributes": []} for periods in responses]}
    resp = requests.post(f"{endpoint}/moto-api/static/ce/cost-and-usage-results", json=body, timeout=10)
    assert resp.status_code == 201, resp.text


def seed_quarters(endpoint: str) -> None:
    """2026-Q2 (asked first: the last quarter) and 2026-Q3 (this quarter), three months each."""
    last = [
        ce_period(f"2026-0{m}-01", f"2026-0{m + 1}-01", {"Amazon EC2": 100, "Amazon RDS": 200, "AWS KMS": 1})
        for m in (4, 5, 6)
    ]
    this = [
        ce_period(
            f"2026-{m:02d}-01",
            f"2026-{m + 1:02d}-01",
            {"Amazon EC2": 130, "Amazon RDS": 210, "AWS KMS": 2, "Amazon S3": 50},
        )
        for m in (7, 8, 9)
    ]
    queue_costs(endpoint, last, this)


def seed_idle(ec2: Any, elbv2: Any) -> dict[str, Any]:
    """Idle and in-use resources of every kind; returns the ids of each."""
    ids: dict[str, Any] = {}
    ids["free_volume"] = ec2.create_volume(AvailabilityZone="us-east-1a", Size=100, VolumeType="gp3")[
        "VolumeId"
    ]
    running = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0]
    stopped = ec2.run_instances(
        ImageId=AMI,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.large",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "old-worker"}]}],
    )["Instances"][0]
    ec2.stop_instances(InstanceIds=[stopped["InstanceId"]])
    ids["running"], ids["stopped"] = running["InstanceId"], stopped["InstanceId"]
    used = ec2.create_volume(AvailabilityZone="us-east-1a", Size=50, VolumeType="gp2")["VolumeId"]
    ec2.attach_volume(VolumeId=used, InstanceId=running["InstanceId"], Device="/dev/sdf")
    ids["snapshot"] = ec2.create_snapshot(VolumeId=used)["SnapshotId"]

    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"] if s["VpcId"] == vpc][:2]
    busy = elbv2.create_load_balancer(Name="busy-alb", Subnets=subnets)["LoadBalancers"][0]
    elbv2.create_load_balancer(Name="idle-alb", Subnets=subnets)
    tg = elbv2.create_target_group(
        Name="busy-tg", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="instance"
    )["TargetGroups"][0]
    elbv2.register_targets(TargetGroupArn=tg["TargetGroupArn"], Targets=[{"Id": running["InstanceId"]}])
    elbv2.create_listener(
        LoadBalancerArn=busy["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    return ids


def test_spend_increase_per_service(aws_endpoint: str, boto_client: Any) -> None:
    seed_quarters(aws_endpoint)
    results = check_spend(
        boto_client("ce"), dt.date(2026, 10, 8), increase_warning_pct=20, min_monthly_usd=10
    )
    by = {r.check: r for r in results}
    assert set(by) == {"cost.spend_increase[Amazon EC2]", "cost.spend_increase[Amazon S3]", "cost.spend"}
    ec2 = by["cost.spend_increase[Amazon EC2]"]
    assert ec2.status is Status.WARNING and ec2.observed == 30.0
    assert ec2.details == {"service": "Amazon EC2", "this_quarter_usd": 390.0, "last_quarter_usd": 300.0}
    assert "new this quarter" in by["cost.spend_increase[Amazon S3]"].summary
    total = by["cost.spend"]
    assert total.status is Status.OK
    assert total.details["this_quarter"] == "2026-Q3" and total.details["last_quarter"] == "2026-Q2"
    assert total.details["this_quarter_usd"] == 390 + 630 + 6 + 150
    assert total.details["last_quarter_usd"] == 300 + 600 + 3


def test_idle_resources_flag_exactly_the_idle_ones(aws_endpoint: str, boto_client: Any) -> None:
    ec2, elbv2 = boto_client("ec2"), boto_client("elbv2")
    ids = seed_idle(ec2, elbv2)

    vols = unattached_volumes(ec2, PRICES)
    assert [r.check for r in vols] == [f"cost.unattached_volume[{ids['free_volume']}]"]
    assert vols[0].details["monthly_cost_usd"] == 8.0 and vols[0].status is Status.WARNING

    stopped = stopped_instances(ec2, PRICES)
    assert [r.check for r in stopped] == [f"cost.stopped_instance[{ids['stopped']}]"]
    assert "old-worker" in stopped[0].summary
    root = stopped[0].details["volume_ids"]
    assert len(root) == 1
    size = ec2.describe_volumes(VolumeIds=root)["Volumes"][0]
    expected = PRICES.volume(size["VolumeType"], size["Size"])
    assert stopped[0].details["monthly_cost_usd"] == expected

    lbs = idle_load_balancers(elbv2, PRICES)
    assert [r.check for r in lbs] == ["cost.idle_load_balancer[idle-alb]"]
    assert lbs[0].details["monthly_cost_usd"] == round(0.0225 * 730, 2)

    snap_start = ec2.describe_snapshots(SnapshotIds=[ids["snapshot"]])["Snapshots"][0]["StartTime"]
    # moto stamps snapshots "now": judge them from 29 and 31 days later.
    assert old_snapshots(ec2, PRICES, retention_days=30, now=snap_start + dt.timedelta(days=29)) == []
    old = old_snapshots(ec2, PRICES, retention_days=30, now=snap_start + dt.timedelta(days=31))
    assert [r.check for r in old] == [f"cost.old_snapshot[{ids['snapshot']}]"]
    assert old[0].details["monthly_cost_usd"] == 2.5 and old[0].details["age_days"] == 31

    summary = savings_summary(vols + stopped + lbs + old)
    assert summary.observed == round(8.0 + expected + 16.43 + 2.5, 2)
    assert summary.details["idle_resources"] == 4


def test_nothing_idle_is_quiet(aws_endpoint: str, boto_client: Any) -> None:
    ec2, elbv2 = boto_client("ec2"), boto_client("elbv2")
    assert unattached_volumes(ec2, PRICES) == []
    assert stopped_instances(ec2, PRICES) == []
    assert idle_load_balancers(elbv2, PRICES) == []
    summary = savings_summary([])
    assert summary.status is Status.OK and summary.observed == 0


def test_snapshot_of_a_registered_image_is_kept_until_the_image_goes(
    aws_endpoint: str, boto_client: Any
) -> None:
    ec2 = boto_client("ec2")
    inst = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=inst, Name="golden")["ImageId"]
    snaps = ec2.describe_snapshots(Filters=[{"Name": "description", "Values": [f"*{image}*"]}])["Snapshots"]
    assert len(snaps) == 1
    later = snaps[0]["StartTime"] + dt.timedelta(days=31)
    assert old_snapshots(ec2, PRICES, retention_days=30, now=later) == []
    ec2.deregister_image(ImageId=image)
    flagged = old_snapshots(ec2, PRICES, retention_days=30, now=later)
    assert [r.check for r in flagged] == [f"cost.old_snapshot[{snaps[0]['SnapshotId']}]"]
