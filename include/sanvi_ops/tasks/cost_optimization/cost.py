"""Quarterly Cost Optimization: spend by service quarter over quarter, and idle resources.

Plain functions taking ready boto3 clients. Every idle resource is one ``warning`` result with
``details["monthly_cost_usd"]`` (``None`` where the price table does not know it), and
:func:`savings_summary` adds them up. A call the credentials may not make (``AccessDenied``)
becomes an ``error`` result naming the missing IAM action; the other checks still run.

"This quarter" is the last *complete* quarter before the run's logical date (the DAG runs in the
first month of a quarter, once the previous quarter's invoice is final); "the last" is the one
before it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_text, denied_result, is_aws_error, is_denied
from sanvi_ops.core.results import CheckResult, Status


@dataclass(frozen=True)
class Prices:
    """The small price table idle resources are costed with (USD, on-demand, one region)."""

    #: EBS volume storage per GB-month by volume type (gp3, gp2, io1, st1, sc1, standard, ...).
    ebs_gb_month: dict[str, float] = field(default_factory=lambda: {"gp3": 0.08, "gp2": 0.10})
    #: EBS snapshot storage per GB-month (standard tier).
    snapshot_gb_month: float = 0.05
    #: Load balancer hours by type (``application``, ``network``, ``gateway``).
    lb_hourly: dict[str, float] = field(default_factory=lambda: {"application": 0.0225, "network": 0.0225})
    hours_per_month: float = 730.0

    def volume(self, volume_type: str, size_gb: float) -> float | None:
        price = self.ebs_gb_month.get(volume_type)
        return None if price is None else round(price * size_gb, 2)

    def snapshot(self, size_gb: float) -> float:
        return round(self.snapshot_gb_month * size_gb, 2)

    def load_balancer(self, lb_type: str) -> float | None:
        price = self.lb_hourly.get(lb_type)
        return None if price is None else round(price * self.hours_per_month, 2)


# ------------------------------------------------------------------------------------------
# Quarters and Cost Explorer
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quarter:
    """A calendar quarter; ``end`` is exclusive, as Cost Explorer's ``TimePeriod.End``."""

    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _previous(q_start: dt.date) -> dt.date:
    return (
        dt.date(q_start.year - 1, 10, 1)
        if q_start.month == 1
        else dt.date(q_start.year, q_start.month - 3, 1)
    )


def quarters(logical_date: dt.date | dt.datetime) -> tuple[Quarter, Quarter]:
    """``(this, last)``: the last complete quarter before ``logical_date`` and the one before."""
    day = logical_date.date() if isinstance(logical_date, dt.datetime) else logical_date
    running = _quarter_start(day)
    this_start = _previous(running)
    last_start = _previous(this_start)
    return Quarter(this_start, running), Quarter(last_start, this_start)


def spend_by_service(ce: Any, quarter: Quarter, metric: str = "UnblendedCost") -> dict[str, float]:
    """USD per service over ``quarter`` (``GetCostAndUsage``, monthly, grouped by SERVICE)."""
    totals: dict[str, float] = {}
    kwargs: dict[str, Any] = {
        "TimePeriod": {"Start": quarter.start.isoformat(), "End": quarter.end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": [metric],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    while True:
        page = ce.get_cost_and_usage(**kwargs)
        for period in page.get("ResultsByTime", []):
            for group in period.get("Groups", []):
                service = group["Keys"][0]
                amount = float(group.get("Metrics", {}).get(metric, {}).get("Amount", 0) or 0)
                totals[service] = totals.get(service, 0.0) + amount
        token = page.get("NextPageToken")
        if not token:
            return {k: round(v, 2) for k, v in totals.items()}
        kwargs["NextPageToken"] = token


def check_spend(
    ce: Any,
    logical_date: dt.date | dt.datetime,
    *,
    increase_warning_pct: float = 20.0,
    min_monthly_usd: float = 0.0,
    metric: str = "UnblendedCost",
) -> list[CheckResult]:
    """Each service whose spend rose more than ``increase_warning_pct`` over the last quarter is
    a warning (services below ``min_monthly_usd`` a month this quarter are left out as noise;
    a new service counts as an increase); then one ``cost.spend`` total."""
    this, last = quarters(logical_date)
    try:
        before = spend_by_service(ce, last, metric)
        now = spend_by_service(ce, this, metric)
    except Exception as exc:  # noqa: BLE001 — turned into an error result (or re-raised)
        return [_error("cost.spend", "cost_explorer", ce, "get_cost_and_usage", exc)]
    results: list[CheckResult] = []
    for service in sorted(set(before) | set(now)):
        cur, prev = now.get(service, 0.0), before.get(service, 0.0)
        if cur / 3 < min_monthly_usd:
            continue
        pct = None if prev <= 0 else (cur - prev) / prev * 100
        if pct is None or pct > increase_warning_pct:
            rise = "new this quarter" if pct is None else f"+{pct:.0f} %"
            results.append(
                CheckResult(
                    check=f"cost.spend_increase[{service}]",
                    status=Status.WARNING,
                    summary=(
                        f"{service}: ${cur:,.2f} in {this.label} vs ${prev:,.2f} in {last.label} ({rise}) "
                        "— Action: explain the rise or right-size the service"
                    ),
                    metric="spend_increase_pct",
                    observed=None if pct is None else round(pct, 1),
                    unit="%",
                    thresholds={"warning": increase_warning_pct},
                    details={"service": service, "this_quarter_usd": cur, "last_quarter_usd": prev},
                    component="cost_explorer",
                )
            )
    total_now, total_before = round(sum(now.values()), 2), round(sum(before.values()), 2)
    results.append(
        CheckResult(
            check="cost.spend",
            status=Status.OK,
            summary=(
                f"spend {this.label} ${total_now:,.2f} vs {last.label} ${total_before:,.2f}; "
                f"{len(results)} service(s) up more than {increase_warning_pct:g} %"
            ),
            metric="quarter_spend_usd",
            observed=total_now,
            unit="USD",
            details={
                "this_quarter": this.label,
                "last_quarter": last.label,
                "this_quarter_usd": total_now,
                "last_quarter_usd": total_before,
                "by_service": {"this": now, "last": before},
            },
            component="cost_explorer",
        )
    )
    return results


# ------------------------------------------------------------------------------------------
# Idle resources
# ------------------------------------------------------------------------------------------


def _idle(check: str, component: str, summary: str, cost: float | None, **details: Any) -> CheckResult:
    money = "unknown cost" if cost is None else f"${cost:,.2f}/month"
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=f"{summary} ({money})",
        metric="monthly_cost_usd",
        observed=cost,
        unit="USD",
        details={"monthly_cost_usd": cost, **details},
        component=component,
    )


def _pages(client: Any, method: str, key: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(method).paginate(**kwargs):
        yield from page.get(key, [])


def unattached_volumes(ec2: Any, prices: Prices) -> list[CheckResult]:
    """EBS volumes in state ``available`` (attached to nothing)."""
    out = []
    for vol in _pages(
        ec2, "describe_volumes", "Volumes", Filters=[{"Name": "status", "Values": ["available"]}]
    ):
        vid, vtype, size = vol["VolumeId"], vol.get("VolumeType", ""), vol.get("Size", 0)
        out.append(
            _idle(
                f"cost.unattached_volume[{vid}]",
                "ebs",
                f"EBS volume {vid} ({size} GB {vtype}) is attached to nothing — Action: snapshot and delete it",
                prices.volume(vtype, size),
                volume_id=vid,
                size_gb=size,
                volume_type=vtype,
            )
        )
    return out


def old_snapshots(ec2: Any, prices: Prices, *, retention_days: int, now: dt.datetime) -> list[CheckResult]:
    """Own EBS snapshots started more than ``retention_days`` before ``now``.

    A snapshot backing an existing AMI is left out (AWS refuses to delete it while the image is
    registered); one whose AMI was deregistered is reported like any other.
    """
    now = as_utc(now)
    cutoff = now - dt.timedelta(days=retention_days)
    old = []
    for snap in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        if isinstance(snap.get("StartTime"), dt.datetime):
            # botocore parses timestamps aware, unless a host (Airflow's worker) set a parser
            snap = {**snap, "StartTime": as_utc(snap["StartTime"])}
            if snap["StartTime"] < cutoff:
                old.append(snap)
    in_use = _ami_snapshots(ec2, {m.group(0) for s in old if (m := _AMI_ID.search(s.get("Description", "")))})
    out = []
    for snap in old:
        started = snap["StartTime"]
        if snap["SnapshotId"] in in_use:
            continue
        sid, size = snap["SnapshotId"], snap.get("VolumeSize", 0)
        age = (now - started).days
        out.append(
            _idle(
                f"cost.old_snapshot[{sid}]",
                "ebs",
                f"snapshot {sid} ({size} GB) is {age} days old, beyond the {retention_days}-day retention "
                "— Action: delete it unless an AMI or a legal hold needs it",
                prices.snapshot(size),
                snapshot_id=sid,
                size_gb=size,
                age_days=age,
                retention_days=retention_days,
            )
        )
    return out


def as_utc(value: dt.datetime) -> dt.datetime:
    """A plain ``datetime`` aware in UTC (a naive value is taken as UTC). Rebuilt from the
    timestamp: arithmetic on pendulum's ``DateTime`` (Airflow's logical date) can drop the zone."""
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(value.timestamp(), tz=dt.UTC)


_AMI_ID = re.compile(r"\bami-[0-9a-z]+")


def _ami_snapshots(ec2: Any, image_ids: set[str]) -> set[str]:
    """Snapshot ids backing the images of ``image_ids`` that still exist (a filter, not
    ``ImageIds``: a deregistered id is simply absent instead of failing the call)."""
    ids, found = sorted(image_ids), set()
    for i in range(0, len(ids), 200):
        filters = [{"Name": "image-id", "Values": ids[i : i + 200]}]
        for image in _pages(ec2, "describe_images", "Images", Filters=filters):
            for bdm in image.get("BlockDeviceMappings", []):
                if sid := bdm.get("Ebs", {}).get("SnapshotId"):
                    found.add(sid)
    return found


def stopped_instances(ec2: Any, prices: Prices) -> list[CheckResult]:
    """Stopped EC2 instances; their cost is that of the EBS volumes they keep."""
    instances = [
        inst
        for res in _pages(
            ec2,
            "describe_instances",
            "Reservations",
            Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}],
        )
        for inst in res.get("Instances", [])
    ]
    volume_ids = sorted(
        {
            bdm["Ebs"]["VolumeId"]
            for inst in instances
            for bdm in inst.get("BlockDeviceMappings", [])
            if bdm.get("Ebs", {}).get("VolumeId")
        }
    )
    volumes = {}
    if volume_ids:
        volumes = {v["VolumeId"]: v for v in _pages(ec2, "describe_volumes", "Volumes", VolumeIds=volume_ids)}
    out = []
    for inst in instances:
        iid = inst["InstanceId"]
        ids = [
            b["Ebs"]["VolumeId"]
            for b in inst.get("BlockDeviceMappings", [])
            if b.get("Ebs", {}).get("VolumeId")
        ]
        costs = [
            prices.volume(volumes[v].get("VolumeType", ""), volumes[v].get("Size", 0))
            for v in ids
            if v in volumes
        ]
        cost = None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 2)
        name = next((t["Value"] for t in inst.get("Tags", []) if t.get("Key") == "Name"), "")
        label = f"{iid} ({name})" if name else iid
        out.append(
            _idle(
                f"cost.stopped_instance[{iid}]",
                "ec2",
                f"instance {label} ({inst.get('InstanceType', '?')}) is stopped; its {len(ids)} volume(s) "
                "still cost — Action: terminate it (keep an AMI) or start using it",
                cost,
                instance_id=iid,
                instance_type=inst.get("InstanceType"),
                volume_ids=ids,
            )
        )
    return out


def idle_load_balancers(elbv2: Any, prices: Prices) -> list[CheckResult]:
    """Load balancers none of whose target groups has a healthy target (or that have none)."""
    out = []
    balancers = list(_pages(elbv2, "describe_load_balancers", "LoadBalancers"))
    # all target groups at once, matched through their LoadBalancerArns (one call, and no
    # TargetGroupNotFound for a balancer that has none)
    all_groups = list(_pages(elbv2, "describe_target_groups", "TargetGroups")) if balancers else []
    for lb in balancers:
        arn, name, lb_type = lb["LoadBalancerArn"], lb["LoadBalancerName"], lb.get("Type", "application")
        groups = [tg for tg in all_groups if arn in tg.get("LoadBalancerArns", [])]
        registered = healthy = 0
        for tg in groups:
            health = elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
            for desc in health.get("TargetHealthDescriptions", []):
                registered += 1
                if desc.get("TargetHealth", {}).get("State") == "healthy":
                    healthy += 1
        if healthy:
            continue
        why = "no target groups" if not groups else f"{registered} registered target(s), none healthy"
        out.append(
            _idle(
                f"cost.idle_load_balancer[{name}]",
                "elb",
                f"{lb_type} load balancer {name} has {why} — Action: delete it or fix its targets",
                prices.load_balancer(lb_type),
                load_balancer_arn=arn,
                type=lb_type,
                target_groups=len(groups),
                registered_targets=registered,
            )
        )
    return out


def guarded(
    check: str, component: str, client: Any, method: str, fn: Callable[[], list[CheckResult]]
) -> list[CheckResult]:
    """``fn()``, or one ``error`` result when AWS refuses or fails (the other checks still run)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 — turned into an error result (or re-raised)
        return [_error(check, component, client, method, exc)]


def savings_summary(results: Iterable[CheckResult]) -> CheckResult:
    """The total monthly cost of the idle resources found (the potential savings)."""
    idle = [r for r in results if "monthly_cost_usd" in r.details]
    known = [r.details["monthly_cost_usd"] for r in idle if r.details["monthly_cost_usd"] is not None]
    total = round(sum(known), 2)
    unknown = len(idle) - len(known)
    tail = f"; {unknown} more of unknown cost" if unknown else ""
    return CheckResult(
        check="cost.potential_savings",
        status=Status.OK,
        summary=f"{len(idle)} idle resource(s): potential savings ${total:,.2f}/month (${total * 12:,.2f}/year){tail}",
        metric="potential_savings_usd_month",
        observed=total,
        unit="USD",
        details={"monthly_cost_usd_total": total, "idle_resources": len(idle), "unknown_cost": unknown},
        component="cost",
    )


def _error(check: str, component: str, client: Any, method: str, exc: Exception) -> CheckResult:
    if is_denied(exc):
        return denied_result(
            check, exc, client=client, method=method, component=component, role="the review's role"
        )
    if not is_aws_error(exc):
        raise exc
    text = aws_error_text(exc)
    return CheckResult(
        check=check, status=Status.ERROR, summary=f"could not be checked: {text}", component=component
    )
