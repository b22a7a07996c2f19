"""AWS health: S3 buckets, ECS services, RDS instances, ElastiCache clusters.

Each function takes a ready boto3 client (built by the glue from the AWS connection, honouring
its ``endpoint_url``) and returns one result per configured resource, named
``s3.<role>``, ``ecs.<service>``, ``rds.<instance>``, ``elasticache.<cluster>``. List APIs are
walked with boto3 paginators. A botocore error becomes a result that names the resource and the
AWS error code:

- the resource does not exist → ``critical`` P1 (the component is gone);
- AWS refused our credentials or permissions, or throttled us → ``error`` (the check could not
  run; nothing is known about the resource);
- the AWS endpoint could not be reached → ``critical`` (we cannot see the stack at all);
- anything else → ``critical`` with the code and message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types, iam_action, is_denied
from sanvi_ops.core.results import CheckResult, Status, grade

__all__ = ["check_buckets", "check_ecs", "check_elasticache", "check_rds"]

#: Codes that say "we may not look", not "the resource is sick".
_CANNOT_RUN_CODES = {
    "403",
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}

#: RDS DB instance statuses (AWS "Viewing Amazon RDS DB instance status").
RDS_OK = {"available"}
RDS_WARNING = {
    "backing-up",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "creating",
    "maintenance",
    "modifying",
    "moving-to-vpc",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "starting",
    "storage-config-upgrade",
    "storage-initialization",
    "storage-optimization",
    "upgrading",
}
RDS_CRITICAL = {
    "deleting",
    "failed",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-parameters",
    "incompatible-restore",
    "insufficient-capacity",
    "restore-error",
    "stopped",
    "stopping",
    "storage-full",
}

#: ElastiCache cluster / replication group statuses.
ELASTICACHE_OK = {"available"}
ELASTICACHE_WARNING = {"creating", "modifying", "rebooting cache cluster nodes", "snapshotting"}
ELASTICACHE_CRITICAL = {"create-failed", "deleted", "deleting", "incompatible-network", "restore-failed"}


def _skipped(check: str, component: str, what: str) -> list[CheckResult]:
    """``what`` ends with the config key in parentheses: ``"RDS instances (tasks.system_health_check.settings.rds_instances)"``."""
    key = what.rsplit("(", 1)[-1].rstrip(")") if what.endswith(")") else ""
    return [
        CheckResult(
            check=check,
            status=Status.SKIPPED,
            summary=f"No {what} configured: nothing to check",
            component=component,
            details={"config_key": key} if key else {},
        )
    ]


def _error_code(exc: ClientError) -> tuple[str, str]:
    """(code, message) of a ClientError; an unparsed markup body is not a message worth keeping."""
    error = exc.response.get("Error", {})
    message = " ".join(str(error.get("Message", "")).split())
    if message.startswith("<"):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = f"HTTP {status}" if status else ""
    if len(message) > 300:
        message = message[:299] + "…"
    return str(error.get("Code", "Unknown")), message


def _aws_failure(
    check: str, component: str, resource: str, exc: Exception, client: Any = None
) -> CheckResult:
    """Turn a botocore error about ``resource`` into a result naming it and the AWS error code
    (and, for a missing permission, the IAM action to grant: ``client`` made the call)."""
    if isinstance(exc, ClientError):
        code, message = _error_code(exc)
        details: dict[str, Any] = {"resource": resource, "aws_error_code": code, "aws_error_message": message}
        text = f"{code}: {message}" if message else code
        if code in _CANNOT_RUN_CODES:
            grant = ""
            if is_denied(exc):
                details["missing_action"] = iam_action(
                    exc, client=client, service=None if client else component
                )
                grant = f" — permission missing: {details['missing_action']}; grant it to the DAG's AWS role"
            return CheckResult(
                check=check,
                status=Status.ERROR,
                summary=f"Could not check {resource}: AWS refused the request ({text}){grant}",
                details=details,
                component=component,
            )
        return CheckResult(
            check=check,
            status=Status.CRITICAL,
            summary=f"{resource}: AWS error {text}",
            details=details,
            component=component,
        )
    details = {"resource": resource, "error": type(exc).__name__, "reason": str(exc)}
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"Could not check {resource}: no usable AWS credentials ({type(exc).__name__})",
            details=details,
            component=component,
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return CheckResult(
            check=check,
            status=Status.CRITICAL,
            summary=f"Could not reach the AWS endpoint to check {resource}: {exc}",
            details=details,
            component=component,
        )
    return CheckResult(
        check=check,
        status=Status.ERROR,
        summary=f"Could not check {resource}: {aws_error_text(exc)}",
        details=details,
        component=component,
    )


def _missing(check: str, component: str, summary: str, **details: Any) -> CheckResult:
    return CheckResult(
        check=check,
        status=Status.CRITICAL,
        summary=summary,
        details=details,
        severity="P1",
        component=component,
    )


# --------------------------------------------------------------------------------------------- S3


def check_buckets(s3: Any, buckets: dict[str, str]) -> list[CheckResult]:
    """Each bucket exists and we can reach it (``HeadBucket``); one ``s3.<role>`` result each.

    :param s3: a boto3 S3 client.
    :param buckets: role → bucket name, e.g. ``{"backups": "sanvi-machinery-backups"}``.
    """
    if not buckets:
        return _skipped("s3", "s3", "S3 buckets (tasks.system_health_check.settings.buckets)")
    results: list[CheckResult] = []
    for role, bucket in buckets.items():
        check = f"s3.{role}"
        resource = f"S3 bucket {bucket!r} ({role})"
        try:
            response = s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code, _message = _error_code(exc)
            if code in {"404", "NoSuchBucket", "NotFound"}:
                results.append(
                    _missing(
                        check, "s3", f"{resource} does not exist ({code})", bucket=bucket, aws_error_code=code
                    )
                )
            else:
                results.append(_aws_failure(check, "s3", resource, exc, s3))
            continue
        except aws_error_types(ValueError) as exc:
            results.append(_aws_failure(check, "s3", resource, exc, s3))
            continue
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = response.get("BucketRegion") or headers.get("x-amz-bucket-region")
        results.append(
            CheckResult(
                check=check,
                status=Status.OK,
                summary=f"{resource} exists and is reachable",
                details={"bucket": bucket, "region": region},
                component="s3",
            )
        )
    return results


# -------------------------------------------------------------------------------------------- ECS


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _grade_service(cluster: str, svc: dict[str, Any]) -> CheckResult:
    name = str(svc["serviceName"])
    check = f"ecs.{name}"
    running = int(svc.get("runningCount", 0))
    desired = int(svc.get("desiredCount", 0))
    pending = int(svc.get("pendingCount", 0))
    state = str(svc.get("status", "UNKNOWN"))
    details = {
        "cluster": cluster,
        "service": name,
        "status": state,
        "running": running,
        "desired": desired,
        "pending": pending,
        "rollout_state": next(
            (d.get("rolloutState") for d in svc.get("deployments", []) if d.get("status") == "PRIMARY"), None
        ),
    }
    base: dict[str, Any] = {
        "check": check,
        "metric": "running_tasks",
        "observed": float(running),
        "unit": "tasks",
        "details": details,
        "component": "ecs",
    }
    if state != "ACTIVE":
        return CheckResult(
            **base,
            status=Status.CRITICAL,
            summary=f"ECS service {name} in {cluster} is {state}, not ACTIVE",
            severity="P1",
        )
    if desired == 0:
        return CheckResult(
            **base,
            status=Status.WARNING,
            summary=f"ECS service {name} in {cluster} is scaled to 0 (desired count 0)",
            thresholds={"warning": 0.0, "critical": 0.0},
        )
    # Below desired → warning; below half of desired (or none at all) → critical.
    thresholds = {"warning": float(desired), "critical": desired / 2}
    status = grade(running, desired, desired / 2, higher_is_worse=False)
    pending_note = f", {pending} pending" if pending else ""
    if status is Status.OK:
        summary = f"ECS service {name} in {cluster}: {running} of {desired} tasks running"
    else:
        summary = f"ECS service {name} in {cluster}: only {running} of {desired} desired tasks running{pending_note}"
    severity = None
    if status is Status.CRITICAL:
        severity = "P1" if running == 0 else "P2"
    return CheckResult(**base, status=status, summary=summary, thresholds=thresholds, severity=severity)


def check_ecs(ecs: Any, cluster: str, services: Sequence[str]) -> list[CheckResult]:
    """ECS services are ACTIVE with their desired number of tasks running; one ``ecs.<service>`` each.

    running < desired → ``warning``; running < half of desired → ``critical`` (P2; P1 when no task
    runs at all); service missing or inactive → ``critical`` P1; desired 0 → ``warning``.

    :param ecs: a boto3 ECS client.
    :param cluster: cluster name or ARN.
    :param services: service names (``DescribeServices`` takes 10 at a time; we batch).
    """
    if not services:
        return _skipped("ecs", "ecs", "ECS services (tasks.system_health_check.settings.ecs_services)")
    found: dict[str, dict[str, Any]] = {}
    missing: dict[str, str] = {}
    for chunk in _chunks(list(services), 10):
        try:
            response = ecs.describe_services(cluster=cluster, services=list(chunk))
        except ClientError as exc:
            code, _message = _error_code(exc)
            if code == "ClusterNotFoundException":
                return [
                    _missing(
                        f"ecs.{name}",
                        "ecs",
                        f"ECS service {name}: cluster {cluster!r} not found ({code})",
                        cluster=cluster,
                        service=name,
                        aws_error_code=code,
                    )
                    for name in services
                ]
            return [
                _aws_failure(f"ecs.{name}", "ecs", f"ECS service {name} in cluster {cluster!r}", exc, ecs)
                for name in services
            ]
        except aws_error_types() as exc:
            return [
                _aws_failure(f"ecs.{name}", "ecs", f"ECS service {name} in cluster {cluster!r}", exc, ecs)
                for name in services
            ]
        for svc in response.get("services", []):
            found[str(svc["serviceName"])] = svc
        for failure in response.get("failures", []):
            arn = str(failure.get("arn", ""))
            missing[arn.rsplit("/", 1)[-1]] = str(failure.get("reason", "MISSING"))
    results = []
    for name in services:
        short = name.rsplit("/", 1)[-1]
        if short in found:
            results.append(_grade_service(cluster, found[short]))
        else:
            reason = missing.get(short, "MISSING")
            results.append(
                _missing(
                    f"ecs.{short}",
                    "ecs",
                    f"ECS service {short} not found in cluster {cluster} ({reason})",
                    cluster=cluster,
                    service=short,
                    reason=reason,
                )
            )
    return results


# -------------------------------------------------------------------------------------------- RDS


def _grade_status(
    check: str,
    component: str,
    resource: str,
    status: str,
    ok: set[str],
    warning: set[str],
    critical: set[str],
    details: dict[str, Any],
) -> CheckResult:
    if status in ok:
        return CheckResult(
            check=check,
            status=Status.OK,
            summary=f"{resource} is {status}",
            details=details,
            component=component,
        )
    if status in critical:
        return CheckResult(
            check=check,
            status=Status.CRITICAL,
            summary=f"{resource} is {status}",
            details=details,
            severity="P1",
            component=component,
        )
    known = status in warning
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=f"{resource} is {status}"
        + ("" if known else " (a status this check does not know: treated as a warning)"),
        details={**details, "recognised_status": known},
        component=component,
    )


def check_rds(rds: Any, instances: Sequence[str]) -> list[CheckResult]:
    """Each RDS DB instance exists and is ``available``; one ``rds.<instance>`` result each.

    ``available`` → ok; transient states (backing-up, modifying, maintenance, ...) → warning;
    stopped, stopping, failed, storage-full, ... → critical P1; missing → critical P1.

    :param rds: a boto3 RDS client.
    :param instances: DB instance identifiers.
    """
    if not instances:
        return _skipped("rds", "rds", "RDS instances (tasks.system_health_check.settings.rds_instances)")
    found: dict[str, dict[str, Any]] = {}
    try:
        paginator = rds.get_paginator("describe_db_instances")
        pages = paginator.paginate(Filters=[{"Name": "db-instance-id", "Values": list(instances)}])
        for page in pages:
            for db in page.get("DBInstances", []):
                found[str(db["DBInstanceIdentifier"])] = db
    except aws_error_types() as exc:
        return [_aws_failure(f"rds.{name}", "rds", f"RDS instance {name!r}", exc, rds) for name in instances]
    results = []
    for name in instances:
        resource = f"RDS instance {name}"
        db = found.get(name)
        if db is None:
            results.append(_missing(f"rds.{name}", "rds", f"{resource} not found", instance=name))
            continue
        details = {
            "instance": name,
            "status": db.get("DBInstanceStatus"),
            "engine": db.get("Engine"),
            "engine_version": db.get("EngineVersion"),
            "instance_class": db.get("DBInstanceClass"),
            "multi_az": db.get("MultiAZ"),
        }
        results.append(
            _grade_status(
                f"rds.{name}", "rds", resource, str(db.get("DBInstanceStatus", "unknown")),
                RDS_OK, RDS_WARNING, RDS_CRITICAL, details,
            )
        )  # fmt: skip
    return results


# ------------------------------------------------------------------------------------ ElastiCache


def check_elasticache(ec: Any, clusters: Sequence[str]) -> list[CheckResult]:
    """Each ElastiCache cluster exists and is ``available``; one ``elasticache.<id>`` result each.

    An id is looked up first as a cache cluster, then as a replication group (a Redis setup with
    replicas is a replication group whose member clusters are named ``<id>-001``, ...).
    ``available`` → ok; creating, modifying, snapshotting, rebooting → warning; deleting,
    create-failed, ... → critical P1; missing → critical P1.

    :param ec: a boto3 ElastiCache client.
    :param clusters: cache cluster or replication group ids.
    """
    if not clusters:
        return _skipped(
            "elasticache",
            "elasticache",
            "ElastiCache clusters (tasks.system_health_check.settings.elasticache_clusters)",
        )
    by_id: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    try:
        for page in ec.get_paginator("describe_cache_clusters").paginate(ShowCacheNodeInfo=False):
            for cc in page.get("CacheClusters", []):
                by_id[str(cc["CacheClusterId"])] = cc
        if any(name not in by_id for name in clusters):
            for page in ec.get_paginator("describe_replication_groups").paginate():
                for group in page.get("ReplicationGroups", []):
                    groups[str(group["ReplicationGroupId"])] = group
    except aws_error_types() as exc:
        return [
            _aws_failure(f"elasticache.{n}", "elasticache", f"ElastiCache cluster {n!r}", exc, ec)
            for n in clusters
        ]
    results = []
    for name in clusters:
        check = f"elasticache.{name}"
        if name in by_id:
            cc = by_id[name]
            status = str(cc.get("CacheClusterStatus", "unknown"))
            details = {
                "cluster": name,
                "kind": "cache cluster",
                "status": status,
                "engine": cc.get("Engine"),
                "engine_version": cc.get("EngineVersion"),
                "node_type": cc.get("CacheNodeType"),
                "nodes": cc.get("NumCacheNodes"),
            }
            resource = f"ElastiCache cluster {name}"
        elif name in groups:
            group = groups[name]
            status = str(group.get("Status", "unknown"))
            details = {
                "cluster": name,
                "kind": "replication group",
                "status": status,
                "members": group.get("MemberClusters", []),
            }
            resource = f"ElastiCache replication group {name}"
        else:
            results.append(
                _missing(
                    check,
                    "elasticache",
                    f"ElastiCache cluster {name} not found (CacheClusterNotFound)",
                    cluster=name,
                )
            )
            continue
        results.append(
            _grade_status(
                check,
                "elasticache",
                resource,
                status,
                ELASTICACHE_OK,
                ELASTICACHE_WARNING,
                ELASTICACHE_CRITICAL,
                details,
            )
        )
    return results
