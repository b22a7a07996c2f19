"""Quarterly Architecture Review: the AWS inventory against the documented architecture.

Three steps, each a plain function:

1. :func:`take_inventory` reads what runs in the account — ECS services with running/desired
   task counts, ELBv2 load balancers, RDS instances (class, Multi-AZ), ElastiCache clusters and
   replication groups, S3 buckets, and the network of the documented VPCs: subnets (public when
   their route table sends ``0.0.0.0/0`` to an internet gateway, private otherwise) and NAT
   gateways. Each area is read on its own: a refused call (``AccessDenied``) is an ``error``
   result naming the missing IAM action and only that area is left out.
2. :func:`compare_with_documented` holds the inventory to the ``architecture_review`` config (the
   guide's component overview and network layout): each documented resource that is **missing**
   or **different**, and each undocumented one (**extra**), is a ``warning`` naming it.
3. :func:`changes_since` compares with the previous review's inventory (kept in the results
   store as the details of the ``architecture.inventory`` result): what was added, removed or
   changed since last quarter.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_result
from sanvi_ops.core.queries import query_loader
from sanvi_ops.core.results import CheckResult, Status

__all__ = [
    "INVENTORY_CHECK",
    "ArchitectureSpec",
    "Inventory",
    "buckets",
    "cache_clusters",
    "changes_since",
    "compare_with_documented",
    "ecs_services",
    "load_balancers",
    "network",
    "previous_inventory",
    "rds_instances",
    "take_inventory",
]

INVENTORY_CHECK = "architecture.inventory"
SQL_DIR = Path(__file__).resolve().parent / "sql"
ROLE = "the review's role"

#: Inventory kinds, in report order, and the component their results carry.
KINDS: dict[str, str] = {
    "ecs_services": "ecs",
    "load_balancers": "elb",
    "rds_instances": "rds",
    "cache_clusters": "elasticache",
    "buckets": "s3",
    "vpcs": "vpc",
    "subnets": "vpc",
    "nat_gateways": "vpc",
}
#: Attributes that move by themselves between reviews (not a change of the architecture).
_VOLATILE = {"running", "pending", "status", "state"}

Inventory = dict[str, dict[str, dict[str, Any]]]


@dataclass(frozen=True)
class ArchitectureSpec:
    """The documented architecture (built from ``cfg.tasks.architecture_review.settings`` by the glue)."""

    ecs_cluster: str
    ecs_services: Mapping[str, int] = field(default_factory=dict)  # name → min tasks
    load_balancers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # name → type, scheme
    require_alb: bool = True
    rds_instances: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # class, multi_az, engine
    cache_clusters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # engine, node_type
    buckets: Sequence[str] = ()
    vpc_names: Sequence[str] = ()
    require_public_and_private_per_az: bool = True
    require_nat_gateway: bool = True
    undocumented_ok: Sequence[str] = ()

    def ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.undocumented_ok)


# --------------------------------------------------------------------------------------------
# Inventory
# --------------------------------------------------------------------------------------------


def _pages(client: Any, method: str, key: str, **kwargs: Any) -> Iterable[dict[str, Any]]:
    for page in client.get_paginator(method).paginate(**kwargs):
        yield from page.get(key, [])


def _tag(tags: Iterable[Mapping[str, Any]] | None, key: str = "Name") -> str:
    return next((str(t.get("Value", "")) for t in tags or [] if t.get("Key") == key), "")


def ecs_services(ecs: Any, cluster: str) -> dict[str, dict[str, Any]]:
    """Every service of ``cluster`` with its status and desired/running/pending task counts
    (``{}`` when the cluster does not exist)."""
    from botocore.exceptions import ClientError

    try:
        arns = [str(a) for a in _pages(ecs, "list_services", "serviceArns", cluster=cluster)]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ClusterNotFoundException":
            return {}
        raise
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(arns), 10):  # DescribeServices takes 10 at a time
        for svc in ecs.describe_services(cluster=cluster, services=arns[i : i + 10]).get("services", []):
            if svc.get("status") == "INACTIVE":
                continue
            found[str(svc["serviceName"])] = {
                "cluster": cluster,
                "status": svc.get("status"),
                "desired": int(svc.get("desiredCount", 0)),
                "running": int(svc.get("runningCount", 0)),
                "pending": int(svc.get("pendingCount", 0)),
                "launch_type": svc.get("launchType"),
            }
    return found


def load_balancers(elbv2: Any) -> dict[str, dict[str, Any]]:
    """ELBv2 load balancers by name: type, scheme, state, VPC and zones."""
    return {
        str(lb["LoadBalancerName"]): {
            "type": lb.get("Type", "application"),
            "scheme": lb.get("Scheme"),
            "state": (lb.get("State") or {}).get("Code"),
            "vpc_id": lb.get("VpcId"),
            "zones": sorted(z.get("ZoneName", "") for z in lb.get("AvailabilityZones", [])),
        }
        for lb in _pages(elbv2, "describe_load_balancers", "LoadBalancers")
    }


def rds_instances(rds: Any) -> dict[str, dict[str, Any]]:
    """RDS DB instances: class, Multi-AZ, engine and version, status."""
    return {
        str(db["DBInstanceIdentifier"]): {
            "instance_class": db.get("DBInstanceClass"),
            "multi_az": bool(db.get("MultiAZ")),
            "engine": db.get("Engine"),
            "engine_version": db.get("EngineVersion"),
            "status": db.get("DBInstanceStatus"),
        }
        for db in _pages(rds, "describe_db_instances", "DBInstances")
    }


def cache_clusters(ec: Any) -> dict[str, dict[str, Any]]:
    """ElastiCache replication groups and cache clusters by id (``kind`` tells which; a member
    cluster names its ``replication_group``)."""
    found: dict[str, dict[str, Any]] = {}
    for group in _pages(ec, "describe_replication_groups", "ReplicationGroups"):
        found[str(group["ReplicationGroupId"])] = {
            "kind": "replication_group",
            "engine": group.get("Engine", "redis"),
            "node_type": group.get("CacheNodeType"),
            "status": group.get("Status"),
            "members": sorted(group.get("MemberClusters", [])),
            "multi_az": group.get("MultiAZ"),
        }
    for cc in _pages(ec, "describe_cache_clusters", "CacheClusters"):
        found[str(cc["CacheClusterId"])] = {
            "kind": "cluster",
            "engine": cc.get("Engine"),
            "node_type": cc.get("CacheNodeType"),
            "status": cc.get("CacheClusterStatus"),
            "nodes": int(cc.get("NumCacheNodes", 0)),
            "replication_group": cc.get("ReplicationGroupId"),
        }
    return found


def buckets(s3: Any) -> dict[str, dict[str, Any]]:
    """S3 buckets of the account (``ListBuckets``: IAM action ``s3:ListAllMyBuckets``)."""
    return {
        str(b["Name"]): {"created": b["CreationDate"].isoformat() if b.get("CreationDate") else None}
        for b in s3.list_buckets().get("Buckets", [])
    }


def _default_route(table: Mapping[str, Any]) -> tuple[bool, bool]:
    """(routes 0.0.0.0/0 or ::/0 to an internet gateway, routes it to a NAT gateway)."""
    igw = nat = False
    for route in table.get("Routes", []):
        if (
            route.get("DestinationCidrBlock") != "0.0.0.0/0"
            and route.get("DestinationIpv6CidrBlock") != "::/0"
        ):
            continue
        if str(route.get("GatewayId", "")).startswith("igw-"):
            igw = True
        if route.get("NatGatewayId"):
            nat = True
    return igw, nat


def network(ec2: Any, vpc_names: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """The documented VPCs (by ``Name`` tag), their subnets (public/private from the route
    tables: a subnet without an explicit association uses the VPC's main table) and NAT
    gateways. Returns ``{"vpcs": ..., "subnets": ..., "nat_gateways": ...}``."""
    out: dict[str, dict[str, dict[str, Any]]] = {"vpcs": {}, "subnets": {}, "nat_gateways": {}}
    if not vpc_names:
        return out
    vpcs = list(
        _pages(ec2, "describe_vpcs", "Vpcs", Filters=[{"Name": "tag:Name", "Values": list(vpc_names)}])
    )
    if not vpcs:
        return out
    ids = [str(v["VpcId"]) for v in vpcs]
    names = {str(v["VpcId"]): _tag(v.get("Tags")) or str(v["VpcId"]) for v in vpcs}
    for v in vpcs:
        out["vpcs"][names[v["VpcId"]]] = {"vpc_id": v["VpcId"], "cidr": v.get("CidrBlock")}
    vpc_filter = [{"Name": "vpc-id", "Values": ids}]
    tables = list(_pages(ec2, "describe_route_tables", "RouteTables", Filters=vpc_filter))
    main: dict[str, tuple[bool, bool]] = {}
    explicit: dict[str, tuple[bool, bool]] = {}
    for table in tables:
        routes = _default_route(table)
        for assoc in table.get("Associations", []):
            if assoc.get("Main"):
                main[str(table["VpcId"])] = routes
            elif assoc.get("SubnetId"):
                explicit[str(assoc["SubnetId"])] = routes
    for sn in _pages(ec2, "describe_subnets", "Subnets", Filters=vpc_filter):
        sid, vpc_id = str(sn["SubnetId"]), str(sn["VpcId"])
        igw, nat = explicit.get(sid, main.get(vpc_id, (False, False)))
        out["subnets"][sid] = {
            "vpc": names.get(vpc_id, vpc_id),
            "az": sn.get("AvailabilityZone"),
            "cidr": sn.get("CidrBlock"),
            "name": _tag(sn.get("Tags")),
            "public": igw,
            "nat_route": nat,
        }
    for gw in _pages(ec2, "describe_nat_gateways", "NatGateways", Filters=vpc_filter):
        if gw.get("State") in ("deleted", "deleting"):
            continue
        out["nat_gateways"][str(gw["NatGatewayId"])] = {
            "vpc": names.get(str(gw.get("VpcId")), gw.get("VpcId")),
            "subnet_id": gw.get("SubnetId"),
            "state": gw.get("State"),
        }
    return out


def _area_error(check: str, component: str, client: Any, what: str, exc: Exception) -> CheckResult:
    return aws_error_result(
        check,
        exc,
        client=client,
        component=component,
        role=ROLE,
        failed=f"{what} could not be inventoried ({{reason}}); it is left out of this review",
    )


def take_inventory(
    clients: Mapping[str, Any], *, ecs_cluster: str, vpc_names: Sequence[str]
) -> tuple[Inventory, list[CheckResult]]:
    """Read every area; ``(inventory, error results)``. An area that fails is absent from the
    inventory (and listed under ``"unavailable"`` by :func:`inventory_result`).

    :param clients: boto3 clients by service: ``ecs``, ``elbv2``, ``rds``, ``elasticache``,
        ``s3``, ``ec2``.
    """
    areas: list[tuple[str, str, str, Callable[[], dict[str, Any]]]] = [
        (
            "ecs_services",
            "ecs",
            f"ECS services of {ecs_cluster}",
            lambda: ecs_services(clients["ecs"], ecs_cluster),
        ),
        ("load_balancers", "elbv2", "load balancers", lambda: load_balancers(clients["elbv2"])),
        ("rds_instances", "rds", "RDS instances", lambda: rds_instances(clients["rds"])),
        (
            "cache_clusters",
            "elasticache",
            "ElastiCache clusters",
            lambda: cache_clusters(clients["elasticache"]),
        ),
        ("buckets", "s3", "S3 buckets", lambda: buckets(clients["s3"])),
        ("network", "ec2", "VPC subnets and NAT gateways", lambda: network(clients["ec2"], vpc_names)),
    ]
    inventory: Inventory = {}
    errors: list[CheckResult] = []
    for kind, service, what, read in areas:
        try:
            found = read()
        except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
            component = "vpc" if kind == "network" else KINDS[kind]
            errors.append(_area_error(f"{INVENTORY_CHECK}[{kind}]", component, clients[service], what, exc))
            continue
        if kind == "network":
            inventory.update(found)
        else:
            inventory[kind] = found
    return inventory, errors


def inventory_result(inventory: Inventory, *, taken_at: dt.datetime) -> CheckResult:
    """The snapshot as an ``ok`` result (kept by the results store; next quarter compares with it)."""
    kinds = [k for k in KINDS if k in inventory]
    unavailable = [k for k in KINDS if k not in inventory]
    counts = {k: len(inventory[k]) for k in kinds}
    text = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items())
    missing = f"; not read: {', '.join(unavailable)}" if unavailable else ""
    return CheckResult(
        check=INVENTORY_CHECK,
        status=Status.OK,
        summary=f"inventory: {text or 'nothing'}{missing}",
        metric="resources",
        observed=float(sum(counts.values())),
        unit="count",
        details={
            "inventory": {k: inventory[k] for k in kinds},
            "unavailable": unavailable,
            "counts": counts,
            "taken_at": taken_at.isoformat(),
        },
        component="aws",
    )


# --------------------------------------------------------------------------------------------
# Against the documented architecture
# --------------------------------------------------------------------------------------------


def _finding(kind: str, component: str, resource: str, text: str, action: str, **details: Any) -> CheckResult:
    return CheckResult(
        check=f"architecture.{kind}[{resource}]",
        status=Status.WARNING,
        summary=f"{text} — Action: {action}",
        details={"resource": resource, "finding": kind, **details},
        component=component,
    )


def _missing(component: str, resource: str, text: str, **details: Any) -> CheckResult:
    return _finding(
        "missing",
        component,
        resource,
        text,
        "build it as documented, or correct architecture_review",
        **details,
    )


def _extra(component: str, resource: str, text: str, **details: Any) -> CheckResult:
    return _finding(
        "extra",
        component,
        resource,
        text,
        "document it in architecture_review (or undocumented_ok), or remove it",
        **details,
    )


def _different(component: str, resource: str, diffs: dict[str, dict[str, Any]], label: str) -> CheckResult:
    said = "; ".join(f"{k} is {v['actual']!r}, documented {v['documented']!r}" for k, v in diffs.items())
    return _finding(
        "different",
        component,
        resource,
        f"{label}: {said}",
        "change it to the documented value, or update architecture_review after review",
        differences=diffs,
    )


def _diffs(actual: Mapping[str, Any], documented: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: {"actual": actual.get(k), "documented": v}
        for k, v in documented.items()
        if v is not None and actual.get(k) != v
    }


def _compare_ecs(have: dict[str, dict[str, Any]], spec: ArchitectureSpec) -> list[CheckResult]:
    out: list[CheckResult] = []
    for name, min_tasks in spec.ecs_services.items():
        svc = have.get(name)
        resource = f"ecs:{name}"
        if svc is None:
            out.append(_missing("ecs", resource, f"ECS service {name} is not in cluster {spec.ecs_cluster}"))
            continue
        diffs: dict[str, dict[str, Any]] = {}
        if svc["desired"] < min_tasks:
            diffs["desired_tasks"] = {"actual": svc["desired"], "documented": f">= {min_tasks}"}
        if svc["running"] < min_tasks:
            diffs["running_tasks"] = {"actual": svc["running"], "documented": f">= {min_tasks}"}
        if diffs:
            out.append(_different("ecs", resource, diffs, f"ECS service {name}"))
    for name in sorted(set(have) - set(spec.ecs_services)):
        if not spec.ignored(name):
            out.append(
                _extra("ecs", f"ecs:{name}", f"ECS service {name} in {spec.ecs_cluster} is not documented")
            )
    return out


def _compare_load_balancers(have: dict[str, dict[str, Any]], spec: ArchitectureSpec) -> list[CheckResult]:
    out: list[CheckResult] = []
    for name, want in spec.load_balancers.items():
        lb = have.get(name)
        if lb is None:
            out.append(_missing("elb", f"elb:{name}", f"load balancer {name} does not exist"))
        elif diffs := _diffs(lb, want):
            out.append(_different("elb", f"elb:{name}", diffs, f"load balancer {name}"))
    if spec.load_balancers:
        for name in sorted(set(have) - set(spec.load_balancers)):
            if not spec.ignored(name):
                out.append(
                    _extra(
                        "elb", f"elb:{name}", f"{have[name]['type']} load balancer {name} is not documented"
                    )
                )
    if spec.require_alb:
        albs = [
            n
            for n, lb in have.items()
            if lb["type"] == "application" and lb["scheme"] == "internet-facing" and lb["state"] != "failed"
        ]
        if not albs:
            out.append(
                _missing(
                    "elb",
                    "alb",
                    "no internet-facing Application Load Balancer (the guide: 'Application Load Balancer for "
                    "traffic distribution')",
                )
            )
    return out


def _compare_rds(have: dict[str, dict[str, Any]], spec: ArchitectureSpec) -> list[CheckResult]:
    out: list[CheckResult] = []
    for name, want in spec.rds_instances.items():
        db = have.get(name)
        if db is None:
            out.append(_missing("rds", f"rds:{name}", f"RDS instance {name} does not exist"))
        elif diffs := _diffs(db, want):
            out.append(_different("rds", f"rds:{name}", diffs, f"RDS instance {name}"))
    for name in sorted(set(have) - set(spec.rds_instances)):
        if not spec.ignored(name):
            db = have[name]
            out.append(
                _extra(
                    "rds",
                    f"rds:{name}",
                    f"RDS instance {name} ({db['instance_class']}, {db['engine']}) is not documented",
                )
            )
    return out


def _compare_caches(have: dict[str, dict[str, Any]], spec: ArchitectureSpec) -> list[CheckResult]:
    out: list[CheckResult] = []
    documented = set(spec.cache_clusters)
    for name, want in spec.cache_clusters.items():
        cc = have.get(name)
        if cc is None:
            out.append(_missing("elasticache", f"elasticache:{name}", f"ElastiCache {name} does not exist"))
        elif diffs := _diffs(cc, want):
            out.append(_different("elasticache", f"elasticache:{name}", diffs, f"ElastiCache {name}"))
    for name in sorted(set(have) - documented):
        cc = have[name]
        if cc.get("replication_group") in documented or spec.ignored(name):
            continue  # a member of a documented replication group
        out.append(
            _extra(
                "elasticache",
                f"elasticache:{name}",
                f"ElastiCache {cc['kind'].replace('_', ' ')} {name} is not documented",
            )
        )
    return out


def _compare_buckets(have: dict[str, dict[str, Any]], spec: ArchitectureSpec) -> list[CheckResult]:
    out = [
        _missing("s3", f"s3:{name}", f"S3 bucket {name} does not exist")
        for name in spec.buckets
        if name not in have
    ]
    out += [
        _extra("s3", f"s3:{name}", f"S3 bucket {name} is not documented")
        for name in sorted(set(have) - set(spec.buckets))
        if not spec.ignored(name)
    ]
    return out


def _compare_network(inv: Inventory, spec: ArchitectureSpec) -> list[CheckResult]:
    out: list[CheckResult] = []
    vpcs, subnets, nats = inv.get("vpcs", {}), inv.get("subnets", {}), inv.get("nat_gateways", {})
    for vpc in spec.vpc_names:
        if vpc not in vpcs:
            out.append(_missing("vpc", f"vpc:{vpc}", f"VPC {vpc} (Name tag) does not exist"))
            continue
        mine = {sid: s for sid, s in subnets.items() if s["vpc"] == vpc}
        if spec.require_public_and_private_per_az:
            zones = sorted({str(s["az"]) for s in mine.values()})
            if not zones:
                out.append(_missing("vpc", f"vpc:{vpc}/subnets", f"VPC {vpc} has no subnets"))
            for az in zones:
                kinds = {bool(s["public"]) for s in mine.values() if s["az"] == az}
                for public, word in ((True, "public"), (False, "private")):
                    if public not in kinds:
                        out.append(
                            _missing(
                                "vpc",
                                f"subnet:{vpc}/{az}/{word}",
                                f"VPC {vpc} has no {word} subnet in {az} (the guide: public and private subnets"
                                " in every zone used)",
                                az=az,
                            )
                        )
        gateways = [g for g, n in nats.items() if n["vpc"] == vpc and n["state"] in ("available", "pending")]
        if spec.require_nat_gateway:
            if not gateways:
                out.append(
                    _missing(
                        "vpc",
                        f"nat_gateway:{vpc}",
                        f"VPC {vpc} has no NAT gateway (the guide: private subnets reach the internet for updates "
                        "through one)",
                    )
                )
            for sid, sn in sorted(mine.items()):
                if not sn["public"] and not sn["nat_route"]:
                    label = f"{sid} ({sn['name']})" if sn["name"] else sid
                    out.append(
                        _different(
                            "vpc",
                            f"subnet:{sid}",
                            {"default_route": {"actual": "none", "documented": "NAT gateway"}},
                            f"private subnet {label} in {sn['az']}",
                        )
                    )
    return out


def compare_with_documented(inventory: Inventory, spec: ArchitectureSpec) -> list[CheckResult]:
    """Missing, extra and different resources (``warning`` each), then one ``architecture.documented``
    summary. Areas absent from the inventory (they could not be read) are not compared."""
    steps: list[tuple[str, Callable[[], list[CheckResult]]]] = [
        ("ecs_services", lambda: _compare_ecs(inventory["ecs_services"], spec)),
        ("load_balancers", lambda: _compare_load_balancers(inventory["load_balancers"], spec)),
        ("rds_instances", lambda: _compare_rds(inventory["rds_instances"], spec)),
        ("cache_clusters", lambda: _compare_caches(inventory["cache_clusters"], spec)),
        ("buckets", lambda: _compare_buckets(inventory["buckets"], spec)),
        ("vpcs", lambda: _compare_network(inventory, spec)),
    ]
    findings: list[CheckResult] = []
    skipped: list[str] = []
    for kind, compare in steps:
        if kind not in inventory:
            skipped.append(kind)
            continue
        findings += compare()
    counts = {
        k: sum(1 for f in findings if f.details["finding"] == k) for k in ("missing", "different", "extra")
    }
    compared = sum(len(v) for k, v in inventory.items() if k in KINDS)
    tail = f"; not compared (could not be read): {', '.join(skipped)}" if skipped else ""
    summary = (
        f"{compared} resources against the documented architecture: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + tail
        if findings
        else f"{compared} resources match the documented architecture{tail}"
    )
    return [
        *findings,
        CheckResult(
            check="architecture.documented",
            status=Status.OK,
            summary=summary,
            metric="findings",
            observed=float(len(findings)),
            unit="count",
            details={**counts, "not_compared": skipped},
            component="aws",
        ),
    ]


# --------------------------------------------------------------------------------------------
# Since the last review
# --------------------------------------------------------------------------------------------


_sql = query_loader(SQL_DIR)


def previous_inventory(
    store_dsn: str, *, dag_id: str, run_id: str, before: dt.datetime
) -> dict[str, Any] | None:
    """The newest stored inventory of ``dag_id`` before ``before`` (another run than ``run_id``):
    ``{"run_id", "logical_date", "recorded_at", "inventory", "unavailable"}`` or ``None``."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(store_dsn, row_factory=dict_row) as conn:
        row = conn.execute(
            _sql("previous_inventory.sql"),
            {"dag_id": dag_id, "run_id": run_id, "check_name": INVENTORY_CHECK, "before": before},
        ).fetchone()
    if row is None:
        return None
    details = row["details"] or {}
    return {
        "run_id": row["run_id"],
        "logical_date": row["logical_date"].isoformat() if row["logical_date"] else None,
        "recorded_at": row["recorded_at"].isoformat(),
        "inventory": details.get("inventory", {}),
        "unavailable": details.get("unavailable", []),
    }


def changes_since(previous: Mapping[str, Any] | None, inventory: Inventory) -> CheckResult:
    """What was added, removed or changed since the previous review (``ok``: information for the
    reviewers; drift from the documentation is :func:`compare_with_documented`'s)."""
    if previous is None:
        return CheckResult(
            check="architecture.changes",
            status=Status.OK,
            summary="first inventory: no earlier review to compare with",
            component="aws",
        )
    before: Mapping[str, Any] = previous.get("inventory", {})
    added: list[str] = []
    removed: list[str] = []
    changed: dict[str, dict[str, dict[str, Any]]] = {}
    compared = [k for k in KINDS if k in inventory and k in before]
    for kind in compared:
        old, new = before[kind], inventory[kind]
        added += [f"{kind}:{n}" for n in sorted(set(new) - set(old))]
        removed += [f"{kind}:{n}" for n in sorted(set(old) - set(new))]
        for name in sorted(set(old) & set(new)):
            diff = {
                k: {"before": old[name].get(k), "now": new[name].get(k)}
                for k in sorted(set(old[name]) | set(new[name]))
                if k not in _VOLATILE and old[name].get(k) != new[name].get(k)
            }
            if diff:
                changed[f"{kind}:{name}"] = diff
    when = previous.get("logical_date") or previous.get("recorded_at")
    if not (added or removed or changed):
        summary = f"no change since the review of {when} ({previous['run_id']})"
    else:
        parts = [f"+{len(added)} added", f"-{len(removed)} removed", f"{len(changed)} changed"]
        listed = ", ".join(
            [*(f"+{a}" for a in added[:5]), *(f"-{r}" for r in removed[:5]), *list(changed)[:5]]
        )
        summary = f"since the review of {when}: {', '.join(parts)} ({listed})"
    return CheckResult(
        check="architecture.changes",
        status=Status.OK,
        summary=summary,
        metric="changes",
        observed=float(len(added) + len(removed) + len(changed)),
        unit="count",
        details={
            "previous_run_id": previous["run_id"],
            "previous_at": when,
            "added": added,
            "removed": removed,
            "changed": changed,
            "not_compared": [k for k in KINDS if k not in compared],
        },
        component="aws",
    )
