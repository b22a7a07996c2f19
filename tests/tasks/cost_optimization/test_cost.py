"""Cost Optimization logic without servers: quarters, prices, the savings total, and Cost
Explorer paging and permission errors through botocore's ``Stubber`` (responses shaped as in the
AWS API reference for ``GetCostAndUsage``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.cost_optimization.config import CostOptimizationConfig
from sanvi_ops.tasks.cost_optimization.cost import (
    Prices,
    Quarter,
    check_spend,
    guarded,
    quarters,
    savings_summary,
    unattached_volumes,
)


@pytest.mark.parametrize(
    ("logical", "this", "last"),
    [
        (dt.date(2026, 10, 8), ("2026-07-01", "2026-10-01"), ("2026-04-01", "2026-07-01")),
        (dt.date(2027, 1, 14), ("2026-10-01", "2027-01-01"), ("2026-07-01", "2026-10-01")),
        (dt.date(2026, 4, 9), ("2026-01-01", "2026-04-01"), ("2025-10-01", "2026-01-01")),
        (
            dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC),
            ("2025-10-01", "2026-01-01"),
            ("2025-07-01", "2025-10-01"),
        ),
    ],
)
def test_quarters_are_the_last_two_complete_ones(
    logical: Any, this: tuple[str, str], last: tuple[str, str]
) -> None:
    got_this, got_last = quarters(logical)
    assert (got_this.start.isoformat(), got_this.end.isoformat()) == this
    assert (got_last.start.isoformat(), got_last.end.isoformat()) == last
    assert got_this.start == got_last.end


def test_quarter_label() -> None:
    assert Quarter(dt.date(2026, 10, 1), dt.date(2027, 1, 1)).label == "2026-Q4"


def test_prices() -> None:
    p = Prices(ebs_gb_month={"gp3": 0.08}, snapshot_gb_month=0.05, lb_hourly={"application": 0.0225})
    assert p.volume("gp3", 100) == 8.0
    assert p.volume("io2", 100) is None
    assert p.snapshot(40) == 2.0
    assert p.load_balancer("application") == 16.43
    assert p.load_balancer("classic") is None


def _idle(name: str, cost: float | None) -> CheckResult:
    return CheckResult(check=name, status=Status.WARNING, summary=name, details={"monthly_cost_usd": cost})


def test_savings_summary_counts_unknown_costs_apart() -> None:
    other = CheckResult(check="cost.old_snapshots", status=Status.ERROR, summary="denied")
    s = savings_summary([_idle("a", 8.0), _idle("b", 2.5), _idle("c", None), other])
    assert s.status is Status.OK and s.observed == 10.5
    assert s.details == {"monthly_cost_usd_total": 10.5, "idle_resources": 3, "unknown_cost": 1}
    assert "$10.50/month" in s.summary and "1 more of unknown cost" in s.summary


def _ce() -> tuple[Any, Stubber]:
    client = boto3.client(
        "ce", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return client, Stubber(client)


def _page(groups: dict[str, str], token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {
        "ResultsByTime": [
            {
                "TimePeriod": {"Start": "2026-07-01", "End": "2026-08-01"},
                "Total": {},
                "Groups": [
                    {"Keys": [k], "Metrics": {"UnblendedCost": {"Amount": v, "Unit": "USD"}}}
                    for k, v in groups.items()
                ],
                "Estimated": False,
            }
        ]
    }
    if token:
        page["NextPageToken"] = token
    return page


def test_spend_follows_next_page_token_and_ignores_small_services() -> None:
    ce, stub = _ce()
    last = {
        "TimePeriod": {"Start": "2026-04-01", "End": "2026-07-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    this = {**last, "TimePeriod": {"Start": "2026-07-01", "End": "2026-10-01"}}
    stub.add_response("get_cost_and_usage", _page({"Amazon EC2": "100"}, token="t1"), last)
    stub.add_response(
        "get_cost_and_usage", _page({"Amazon EC2": "100", "AWS KMS": "1"}), {**last, "NextPageToken": "t1"}
    )
    stub.add_response("get_cost_and_usage", _page({"Amazon EC2": "250", "AWS KMS": "9"}), this)
    with stub:
        results = check_spend(ce, dt.date(2026, 10, 8), increase_warning_pct=20, min_monthly_usd=10)
    stub.assert_no_pending_responses()
    assert [r.check for r in results] == ["cost.spend_increase[Amazon EC2]", "cost.spend"]
    assert results[0].observed == 25.0  # 250 vs 200
    assert results[1].details["last_quarter_usd"] == 201.0


def test_spend_below_threshold_is_only_the_total() -> None:
    ce, stub = _ce()
    stub.add_response("get_cost_and_usage", _page({"Amazon RDS": "300"}))
    stub.add_response("get_cost_and_usage", _page({"Amazon RDS": "330"}))
    with stub:
        results = check_spend(ce, dt.date(2026, 10, 8), increase_warning_pct=20)
    assert [(r.check, r.status) for r in results] == [("cost.spend", Status.OK)]


def test_access_denied_names_the_missing_action() -> None:
    ce, stub = _ce()
    stub.add_client_error(
        "get_cost_and_usage", service_error_code="AccessDeniedException", http_status_code=400
    )
    with stub:
        results = check_spend(ce, dt.date(2026, 10, 8))
    assert len(results) == 1 and results[0].status is Status.ERROR
    assert results[0].details["missing_action"] == "ce:GetCostAndUsage"
    assert "ce:GetCostAndUsage" in results[0].summary


def test_guarded_turns_a_refused_describe_into_an_error() -> None:
    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stub = Stubber(ec2)
    stub.add_client_error(
        "describe_volumes", service_error_code="UnauthorizedOperation", http_status_code=403
    )
    with stub:
        results = guarded(
            "cost.unattached_volumes",
            "ebs",
            ec2,
            "describe_volumes",
            lambda: unattached_volumes(ec2, Prices()),
        )
    assert [(r.check, r.status, r.details) for r in results] == [
        ("cost.unattached_volumes", Status.ERROR, {"missing_action": "ec2:DescribeVolumes"})
    ]


def test_guarded_lets_programming_errors_through() -> None:
    def boom() -> list[CheckResult]:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        guarded("x", "ebs", None, "m", boom)


def test_config_defaults_and_validation() -> None:
    cfg = CostOptimizationConfig()
    assert cfg.spend_increase_warning_pct == 20 and cfg.ebs_gb_month_usd["gp3"] == 0.08
    with pytest.raises(ValueError, match="spend_increase_warning_pct"):
        CostOptimizationConfig(spend_increase_warning_pct=0)
    with pytest.raises(ValueError, match="cost_metric"):
        CostOptimizationConfig(cost_metric="Dollars")  # type: ignore[arg-type]


def test_shipped_config_has_the_section() -> None:
    from sanvi_ops.core.config import load_config

    cfg = load_config()
    assert cfg.tasks.cost_optimization.settings.snapshot_gb_month_usd == 0.05
    assert cfg.backups.database.retention_days == 30


def test_old_snapshots_take_naive_start_times_as_utc() -> None:
    from sanvi_ops.tasks.cost_optimization.cost import old_snapshots

    ec2 = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stub = Stubber(ec2)
    snaps = [
        {"SnapshotId": "snap-old", "VolumeSize": 10, "StartTime": dt.datetime(2026, 1, 1), "Description": ""},
        {
            "SnapshotId": "snap-new",
            "VolumeSize": 10,
            "StartTime": dt.datetime(2026, 1, 30),
            "Description": "",
        },
        {
            "SnapshotId": "snap-ami",
            "VolumeSize": 8,
            "StartTime": dt.datetime(2025, 1, 1),
            "Description": "Created by CreateImage(i-0abc) for ami-0123456789abcdef0",
        },
        {
            "SnapshotId": "snap-orphan",
            "VolumeSize": 8,
            "StartTime": dt.datetime(2025, 1, 1),
            "Description": "Created by CreateImage(i-0abc) for ami-0fedcba9876543210",
        },
    ]
    stub.add_response("describe_snapshots", {"Snapshots": snaps}, {"OwnerIds": ["self"]})
    stub.add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": "ami-0123456789abcdef0",
                    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-ami"}}],
                }
            ]
        },
        {"Filters": [{"Name": "image-id", "Values": ["ami-0123456789abcdef0", "ami-0fedcba9876543210"]}]},
    )
    with stub:
        results = old_snapshots(ec2, Prices(), retention_days=30, now=dt.datetime(2026, 2, 15, tzinfo=dt.UTC))
    # snap-ami backs a registered image (AWS refuses to delete it); snap-orphan's image is gone
    assert [r.check for r in results] == ["cost.old_snapshot[snap-old]", "cost.old_snapshot[snap-orphan]"]
    assert results[0].details["monthly_cost_usd"] == 0.5 and results[0].details["age_days"] == 45


def test_as_utc_keeps_the_zone_through_pendulum_arithmetic() -> None:
    import pendulum

    from sanvi_ops.tasks.cost_optimization.cost import as_utc

    cutoff = as_utc(pendulum.datetime(2027, 1, 6, 5, 0, tz="Europe/Berlin")) - dt.timedelta(days=30)
    assert cutoff.utcoffset() == dt.timedelta(0) and cutoff.hour == 4
    assert as_utc(dt.datetime(2026, 1, 1)) < cutoff  # a naive value is UTC, and comparable
