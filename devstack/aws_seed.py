"""Seed a local AWS endpoint (moto) with the healthy demo stack the health checks expect.

``make run`` and the tests call :func:`seed_demo` against the moto server so that the System
Health Check's AWS part finds, as it would in production: the backup and file-storage buckets,
the ECS cluster with its frontend and backend services at their desired count, the RDS
instance and the ElastiCache cluster.

moto notes (5.2): ``CreateService`` reports ``runningCount`` 0 (or the value of the env var
``MOTO_ECS_SERVICE_RUNNING`` in the moto server's process) and never starts tasks by itself;
``UpdateService`` with a ``desiredCount`` sets ``runningCount`` to that count. So after creating
a service we update it to its own desired count, which makes running == desired. RDS instances
and ElastiCache clusters are ``available`` as soon as they are created.

It refuses any endpoint that is not on this machine: it must never create resources in real AWS.

:func:`seed_governance` (called by :func:`seed_demo`) adds what the quarterly Architecture
Review and Compliance Audit look at, compliant and not, so a local run has findings to show:

- network: the ``tasks.architecture_review.settings.vpc_names[0]`` VPC with an internet gateway, a public and a
  private subnet in the region's first zone, only a public one in the second (finding: no
  private subnet there), a NAT gateway the private subnet routes through, and an internet-facing
  ALB in the public subnets; the demo RDS instance is single-AZ (finding: documented Multi-AZ);
  an undocumented bucket ``sanvi-legacy-exports`` (finding: extra);
- audit logs: the system-access group keeps 400 days (ok), the data-access group 365 days
  (finding: 3 years needed), the changes group is missing (finding);
- the backup bucket encrypted with SSE-KMS and carrying the backups' lifecycle rule (ok); the
  evidence bucket versioned (ok);
- IAM: a deployment user whose key is used, a contractor's user whose key never is, and a role.
  moto stamps them with the current time, so the 90-day access review and key rotation have
  nothing to report until they age (the tests age them in moto's own state).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from devstack.aws import LOCAL_AWS_ENV

__all__ = ["DemoNames", "seed_configuration", "seed_demo", "seed_governance", "seed_story", "warm_up"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
#: ``0`` skips :func:`seed_governance` in :func:`seed_demo` (the test suite: only the tests of
#: the quarterly reviews need those resources, and they seed them themselves).
GOVERNANCE_ENV = "SANVI_OPS_SEED_GOVERNANCE"


@dataclass(frozen=True)
class DemoNames:
    """Names of the demo resources: what ``health_check`` in the config will look for."""

    buckets: Mapping[str, str]
    ecs_cluster: str
    ecs_services: Sequence[str]
    rds_instances: Sequence[str]
    elasticache_clusters: Sequence[str]
    ecs_desired_count: int = 2  # the guide's scaling minimum: "Min instances: 2"

    @classmethod
    def from_health_config(cls, health_check: Any) -> DemoNames:
        """The names a ``HealthCheckConfig`` (``cfg.tasks.system_health_check.settings``) will check."""
        return cls(
            buckets=dict(health_check.buckets),
            ecs_cluster=str(health_check.ecs_cluster),
            ecs_services=tuple(health_check.ecs_services),
            rds_instances=tuple(health_check.rds_instances),
            elasticache_clusters=tuple(health_check.elasticache_clusters),
        )


@cache
def _session(region: str) -> Any:
    """One boto3 session per region for the process: its loader keeps the service models, so a
    second seeding does not parse them again (seconds for EC2's)."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )


def _require_local(endpoint_url: str) -> None:
    host = urlsplit(endpoint_url).hostname or ""
    if host not in _LOOPBACK:
        raise ValueError(
            f"seed_demo: endpoint_url {endpoint_url!r} is not on this machine; the demo stack is only ever "
            "seeded into a local AWS endpoint (moto), never into real AWS"
        )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", {}) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _seed_buckets(s3: Any, buckets: Mapping[str, str], region: str) -> None:
    from botocore.exceptions import ClientError

    for bucket in buckets.values():
        try:
            s3.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            if region == "us-east-1":  # the one region that rejects a LocationConstraint
                s3.create_bucket(Bucket=bucket)
            else:
                s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def _task_definition(ecs: Any, cluster: str, service: str) -> str:
    family = f"{cluster}-{service}"
    existing = ecs.list_task_definitions(familyPrefix=family, status="ACTIVE").get("taskDefinitionArns", [])
    if existing:
        return str(existing[-1])
    response = ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {
                "name": service,
                "image": f"sanvi/{service}:demo",
                "cpu": 256,
                "memory": 512,
                "essential": True,
                "portMappings": [{"containerPort": 3000 if service == "frontend" else 4000}],
            }
        ],
    )
    return str(response["taskDefinition"]["taskDefinitionArn"])


def _seed_ecs(ecs: Any, cluster: str, services: Sequence[str], desired: int) -> None:
    ecs.create_cluster(clusterName=cluster)  # idempotent in ECS and in moto
    current: dict[str, Any] = {}
    for i in range(0, len(services), 10):  # DescribeServices takes at most 10 names
        described = ecs.describe_services(cluster=cluster, services=list(services[i : i + 10]))
        current.update(
            {s["serviceName"]: s for s in described.get("services", []) if s.get("status") == "ACTIVE"}
        )
    for service in services:
        if service not in current:
            ecs.create_service(
                cluster=cluster,
                serviceName=service,
                taskDefinition=_task_definition(ecs, cluster, service),
                desiredCount=desired,
            )
        svc = current.get(service)
        if svc is None or svc.get("runningCount") != desired or svc.get("desiredCount") != desired:
            # moto: UpdateService sets runningCount to the desired count (see module docstring).
            ecs.update_service(cluster=cluster, service=service, desiredCount=desired)


def _seed_rds(rds: Any, instances: Sequence[str]) -> None:
    from botocore.exceptions import ClientError

    for instance in instances:
        try:
            db = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        except ClientError as exc:
            if _code(exc) != "DBInstanceNotFound":
                raise
            rds.create_db_instance(
                DBInstanceIdentifier=instance,
                DBInstanceClass="db.t4g.medium",
                Engine="postgres",
                EngineVersion="16.4",
                AllocatedStorage=100,
                MasterUsername="sanvi_admin",
                MasterUserPassword="local-demo-only",  # noqa: S106 - moto only; never a real instance
                MultiAZ=False,
                DBName="sanvi",
            )
            continue
        if db.get("DBInstanceStatus") == "stopped":
            rds.start_db_instance(DBInstanceIdentifier=instance)


def _seed_elasticache(ec: Any, clusters: Sequence[str]) -> None:
    from botocore.exceptions import ClientError

    for cluster in clusters:
        try:
            ec.describe_cache_clusters(CacheClusterId=cluster)
        except ClientError as exc:
            if _code(exc) != "CacheClusterNotFound":
                raise
            ec.create_cache_cluster(
                CacheClusterId=cluster,
                Engine="redis",
                EngineVersion="7.1",
                CacheNodeType="cache.t4g.small",
                NumCacheNodes=1,
            )


def seed_demo(
    endpoint_url: str,
    region: str = "us-east-1",
    names: DemoNames | None = None,
    governance: bool | None = None,
) -> dict[str, Any]:
    """Create (idempotently) the healthy demo AWS stack in the moto server at ``endpoint_url``.

    Existing resources are kept; a service below its desired count is brought back to it and a
    stopped RDS instance is started, so a second call leaves a healthy stack too.

    :param endpoint_url: a loopback URL (``http://127.0.0.1:PORT``); anything else is refused.
    :param region: region of every resource.
    :param names: resource names; by default the ones ``health_check`` in the loaded config
        (``load_config()``, honouring ``SANVI_OPS_CONFIG``) checks, so seed and checks never drift.
    :param governance: also :func:`seed_governance`; ``None`` = unless ``SANVI_OPS_SEED_GOVERNANCE=0``.
    :returns: what was seeded, shaped like ``health_check``'s settings: ``buckets``,
        ``ecs_cluster``, ``ecs_services``, ``rds_instances``, ``elasticache_clusters``, plus
        ``endpoint_url`` and ``region``.
    :raises ValueError: when ``endpoint_url`` is not local.
    """
    _require_local(endpoint_url)
    if names is None:
        from sanvi_ops.core.config import load_config

        names = DemoNames.from_health_config(load_config().tasks.system_health_check.settings)
    session = _session(region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    _seed_buckets(client("s3"), names.buckets, region)
    _seed_ecs(client("ecs"), names.ecs_cluster, list(names.ecs_services), names.ecs_desired_count)
    _seed_rds(client("rds"), list(names.rds_instances))
    _seed_elasticache(client("elasticache"), list(names.elasticache_clusters))
    if governance is None:
        governance = os.environ.get(GOVERNANCE_ENV, "1") != "0"
    if governance:
        seed_governance(endpoint_url, region)
    return {
        "endpoint_url": endpoint_url,
        "region": region,
        "buckets": dict(names.buckets),
        "ecs_cluster": names.ecs_cluster,
        "ecs_services": list(names.ecs_services),
        "rds_instances": list(names.rds_instances),
        "elasticache_clusters": list(names.elasticache_clusters),
    }


# --------------------------------------------------------------------------------------------
# Quarterly governance: architecture review and compliance audit
# --------------------------------------------------------------------------------------------

#: What :func:`seed_governance` makes non-compliant on purpose (the tests hold the checks to it).
LEGACY_BUCKET = "sanvi-legacy-exports"
DEPLOY_USER = "ci-deployer"
CONTRACTOR_USER = "former-contractor"
DEPLOY_ROLE = "sanvi-deploy"


def _seed_network(ec2: Any, elbv2: Any, vpc_name: str, region: str) -> dict[str, Any]:
    existing = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [vpc_name]}])["Vpcs"]
    if existing:
        return {"vpc_id": existing[0]["VpcId"]}

    def tagged(kind: str, name: str) -> list[dict[str, Any]]:
        return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]

    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=tagged("vpc", vpc_name))["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2] or [
        f"{region}a"
    ]

    def subnet(cidr: str, az: str, name: str) -> str:
        return str(
            ec2.create_subnet(
                VpcId=vpc, CidrBlock=cidr, AvailabilityZone=az, TagSpecifications=tagged("subnet", name)
            )["Subnet"]["SubnetId"]
        )

    public_a = subnet("10.20.0.0/24", zones[0], f"{vpc_name}-public-a")
    private_a = subnet("10.20.10.0/24", zones[0], f"{vpc_name}-private-a")
    public_b = subnet("10.20.1.0/24", zones[-1], f"{vpc_name}-public-b")  # no private subnet in b
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    for sn in (public_a, public_b):
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=sn)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=public_a, AllocationId=eip)["NatGateway"]["NatGatewayId"]
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.associate_route_table(RouteTableId=private_rt, SubnetId=private_a)
    sg = ec2.create_security_group(GroupName=f"{vpc_name}-alb", Description="ALB", VpcId=vpc)["GroupId"]
    elbv2.create_load_balancer(
        Name=f"{vpc_name}-alb",
        Subnets=[public_a, public_b],
        SecurityGroups=[sg],
        Scheme="internet-facing",
        Type="application",
    )
    return {"vpc_id": vpc, "public": [public_a, public_b], "private": [private_a], "nat_gateway": nat}


def _ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    _seed_buckets(s3, {"bucket": bucket}, region)


def _seed_audit_logs(logs: Any, groups: Mapping[str, Sequence[str]]) -> None:
    # system access: 400 d (≥ 1 y, ok); data access: 365 d (< 3 y); changes: not created
    retention = {"system_access": 400, "data_access": 365}
    for category, days in retention.items():
        for name in groups.get(category, []):
            if not logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups"):
                logs.create_log_group(logGroupName=name)
            logs.put_retention_policy(logGroupName=name, retentionInDays=days)


#: Server access logs of the classified buckets (kept 1096 days: the guide's 3 years of data access).
ACCESS_LOG_BUCKET = "sanvi-machinery-access-logs"
ACCESS_LOG_DAYS = 1096


def _kms_key(kms: Any, alias: str) -> str:
    """The key id behind ``alias`` (``alias/...``), created with the alias when missing."""
    for page in kms.get_paginator("list_aliases").paginate():
        for a in page.get("Aliases", []):
            if a["AliasName"] == alias and a.get("TargetKeyId"):
                return str(a["TargetKeyId"])
    key = kms.create_key(Description=f"sanvi demo {alias}")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    return str(key)


def _seed_classification(client: Any, cfg: Any, region: str) -> None:
    """Data classification (the Compliance Audit's ``check_data_classification``): every demo
    bucket tagged; the Confidential/Restricted ones (backups Restricted, files and the audit
    evidence Confidential) with a KMS key of their own, Block Public Access, server access logging
    to :data:`ACCESS_LOG_BUCKET` whose lifecycle keeps the logs 1096 days. The demo RDS instance
    is tagged Confidential with its log exports kept 1096 days, but moto creates it unencrypted
    (encryption cannot be turned on in place): its ``own_kms_key`` finding is the one deliberate
    gap (docs/checks.md). The legacy bucket is Internal."""
    from botocore.exceptions import ClientError

    s3, kms, logs, rds = client("s3"), client("kms"), client("logs"), client("rds")
    tag_key = cfg.tasks.compliance_audit.settings.data_classification.tag_key
    db, ca = cfg.database_backups, cfg.tasks.compliance_audit.settings
    files = cfg.tasks.system_health_check.settings.buckets.get("files")
    _ensure_bucket(s3, ACCESS_LOG_BUCKET, region)
    s3.put_bucket_acl(Bucket=ACCESS_LOG_BUCKET, ACL="log-delivery-write")
    s3.put_bucket_lifecycle_configuration(
        Bucket=ACCESS_LOG_BUCKET,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "data-access-3y",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": ACCESS_LOG_DAYS},
                }
            ]
        },
    )
    classes = {
        ACCESS_LOG_BUCKET: "Internal",
        LEGACY_BUCKET: "Internal",
        db.bucket: "Restricted",
        ca.evidence.bucket: "Confidential",
    }
    if files:
        classes[files] = "Confidential"
    pab = {
        k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    }
    for bucket, cls in classes.items():
        _ensure_bucket(s3, bucket, region)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": tag_key, "Value": cls}]})
        if cls == "Internal":
            continue
        alias = db.kms_key_alias if bucket == db.bucket else f"alias/sanvi-{bucket}"
        key = _kms_key(kms, alias)
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": alias if bucket == db.bucket else key,
                        }
                    }
                ]
            },
        )
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=pab)
        s3.put_bucket_logging(
            Bucket=bucket,
            BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": ACCESS_LOG_BUCKET, "TargetPrefix": f"{bucket}/"}
            },
        )
    for instance in cfg.tasks.system_health_check.settings.rds_instances:
        try:
            arn = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]["DBInstanceArn"]
        except ClientError:
            continue  # not seeded here (the test suite seeds governance alone)
        rds.add_tags_to_resource(ResourceName=arn, Tags=[{"Key": tag_key, "Value": "Confidential"}])
        rds.modify_db_instance(
            DBInstanceIdentifier=instance,
            CloudwatchLogsExportConfiguration={"EnableLogTypes": ["postgresql"]},
            ApplyImmediately=True,
        )
        group = f"/aws/rds/instance/{instance}/postgresql"
        try:
            logs.create_log_group(logGroupName=group)
        except ClientError as exc:
            if _code(exc) != "ResourceAlreadyExistsException":
                raise
        logs.put_retention_policy(logGroupName=group, retentionInDays=1096)


def _seed_iam(iam: Any, endpoint_url: str, region: str) -> None:
    from botocore.exceptions import ClientError

    try:
        iam.get_user(UserName=DEPLOY_USER)
        return
    except ClientError as exc:
        if _code(exc) != "NoSuchEntity":
            raise
    for user in (DEPLOY_USER, CONTRACTOR_USER):
        iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=DEPLOY_USER)["AccessKey"]
    iam.create_access_key(UserName=CONTRACTOR_USER)  # never used
    trust = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
        '"Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
    )
    iam.create_role(RoleName=DEPLOY_ROLE, AssumeRolePolicyDocument=trust)
    # one call with the deployment key: moto records its last use, as AWS would
    _session(region).client(
        "sts",
        endpoint_url=endpoint_url,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    ).get_caller_identity()


def seed_governance(endpoint_url: str, region: str = "us-east-1", cfg: Any = None) -> dict[str, Any]:
    """Create (idempotently) what the Architecture Review and the Compliance Audit inspect, with
    the deliberate gaps listed in the module docstring; names come from ``cfg`` (default: the
    loaded config)."""
    from sanvi_ops.core.backups import lifecycle_rule

    _require_local(endpoint_url)
    if cfg is None:
        from sanvi_ops.core.config import load_config

        cfg = load_config()
    session = _session(region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    s3 = client("s3")
    ar, ca, db = (
        cfg.tasks.architecture_review.settings,
        cfg.tasks.compliance_audit.settings,
        cfg.database_backups,
    )
    network = _seed_network(client("ec2"), client("elbv2"), ar.vpc_names[0], region) if ar.vpc_names else {}
    _ensure_bucket(s3, LEGACY_BUCKET, region)
    _ensure_bucket(s3, ca.evidence.bucket, region)
    s3.put_bucket_versioning(Bucket=ca.evidence.bucket, VersioningConfiguration={"Status": "Enabled"})
    _ensure_bucket(s3, db.bucket, region)
    s3.put_bucket_encryption(
        Bucket=db.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": db.kms_key_alias,
                    }
                }
            ]
        },
    )
    rule = lifecycle_rule(db.prefix, db.glacier_after_days, cfg.backups.database.retention_days)
    s3.put_bucket_lifecycle_configuration(Bucket=db.bucket, LifecycleConfiguration={"Rules": [rule]})
    _seed_audit_logs(client("logs"), {k: list(v) for k, v in ca.log_groups.items()})
    _seed_iam(client("iam"), endpoint_url, region)
    _seed_classification(client, cfg, region)
    return {"network": network, "legacy_bucket": LEGACY_BUCKET, "evidence_bucket": ca.evidence.bucket}


# --------------------------------------------------------------------------------------------
# The first start's story: what the daily and weekly DAGs read, seeded so that they find data
# --------------------------------------------------------------------------------------------

#: Error lines of the demo services (the Log Review groups them into signatures). A few per day
#: among hundreds of normal lines: an error rate well under the guide's 1 % warning.
DEMO_ERRORS: dict[str, list[str]] = {
    "frontend": [
        "ERROR [web] GET /api/orders/{order} failed: upstream timeout after 3012 ms (request {req})",
        "ERROR [web] GET /api/orders/{order} failed: upstream timeout after 2987 ms (request {req})",
    ],
    "backend": [
        'ERROR [orders] could not serialize access due to concurrent update (order {order}, user "u{user}")',
        'ERROR [orders] could not serialize access due to concurrent update (order {order}, user "u{user}")',
        "ERROR [billing] payment gateway answered 502 for invoice {order} after 1200 ms",
        "ERROR [billing] payment gateway answered 502 for invoice {order} after 1187 ms",
    ],
}
#: Normal lines per group per day (one every ~3 minutes).
DEMO_INFO_PER_DAY = 480
#: ECR scan findings of the demo images: the frontend is clean of CRITICAL/HIGH, the backend
#: has one HIGH finding (a warning in the Security Patch Review, part of the story).
DEMO_IMAGE_FINDINGS: dict[str, list[dict[str, str]]] = {
    "frontend": [
        {"name": "CVE-2024-45590", "severity": "MEDIUM", "package": "body-parser", "version": "1.20.2"},
        {"name": "CVE-2024-43796", "severity": "LOW", "package": "express", "version": "4.19.2"},
    ],
    "backend": [
        {"name": "CVE-2024-6345", "severity": "HIGH", "package": "setuptools", "version": "69.5.1"},
        {"name": "CVE-2024-35195", "severity": "MEDIUM", "package": "requests", "version": "2.31.0"},
    ],
}


def _service_of(name: str) -> str:
    return "frontend" if "front" in name else "backend"


def _seed_log_events(logs: Any, group: str, now_ms: int) -> int:
    """A day of the service's log lines, ending now; skipped when the group had one within the
    hour (a restart adds no duplicates). Returns the number of events written."""
    if not logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups"):
        logs.create_log_group(logGroupName=group)
    stream = "app/demo"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream).get("logStreams", [])
    if not streams:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    elif int(streams[0].get("lastEventTimestamp") or 0) > now_ms - 3_600_000:
        return 0
    service = _service_of(group)
    day_ms = 24 * 3_600_000
    step = day_ms // DEMO_INFO_PER_DAY
    events: list[dict[str, Any]] = [
        {
            "timestamp": now_ms - day_ms + i * step,
            "message": f"INFO [{service}] {'GET' if i % 3 else 'POST'} /api/{'orders' if i % 2 else 'machines'} "
            f"200 in {40 + (i * 37) % 160} ms",
        }
        for i in range(DEMO_INFO_PER_DAY)
    ]
    errors = DEMO_ERRORS[service]
    for n, template in enumerate(errors):
        at = now_ms - day_ms + (n + 1) * day_ms // (len(errors) + 1) + 1
        message = template.format(order=8800 + 17 * n, req=f"r-{4100 + n}", user=300 + n)
        events.append({"timestamp": at, "message": message})
    events.sort(key=lambda e: int(e["timestamp"]))
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return len(events)


def _seed_ecr(ecr: Any, endpoint_url: str, region: str, repositories: Sequence[str]) -> None:
    """Each repository with one pushed ``:latest`` image whose scan completed with the findings
    of :data:`DEMO_IMAGE_FINDINGS` (moto serves them through its ``scan-finding-results`` API)."""
    import hashlib
    import json
    import urllib.request

    from botocore.exceptions import ClientError

    results = []
    for repo in repositories:
        try:
            ecr.create_repository(repositoryName=repo, imageScanningConfiguration={"scanOnPush": True})
        except ClientError as exc:
            if _code(exc) != "RepositoryAlreadyExistsException":
                raise
        if not ecr.describe_images(repositoryName=repo).get("imageDetails"):
            layer = hashlib.sha256(repo.encode()).hexdigest()
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 7023,
                    "digest": f"sha256:{hashlib.sha256(layer.encode()).hexdigest()}",
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": 32654,
                        "digest": f"sha256:{layer}",
                    }
                ],
            }
            ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), imageTag="latest")
        try:
            ecr.start_image_scan(repositoryName=repo, imageId={"imageTag": "latest"})
        except ClientError as exc:
            if _code(exc) != "LimitExceededException":  # moto: one scan per image per day
                raise
        findings = DEMO_IMAGE_FINDINGS[_service_of(repo)]
        counts: dict[str, int] = {}
        for f in findings:
            counts[f["severity"]] = counts.get(f["severity"], 0) + 1
        results.append(
            {
                "repositoryName": repo,
                "imageId": {"imageTag": "latest"},
                "imageScanStatus": {
                    "status": "COMPLETE",
                    "description": "The scan was completed successfully.",
                },
                "imageScanFindings": {
                    "findingSeverityCounts": counts,
                    "findings": [
                        {
                            "name": f["name"],
                            "uri": f"https://nvd.nist.gov/vuln/detail/{f['name']}",
                            "severity": f["severity"],
                            "attributes": [
                                {"key": "package_name", "value": f["package"]},
                                {"key": "package_version", "value": f["version"]},
                            ],
                        }
                        for f in findings
                    ],
                },
            }
        )
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/static/ecr/scan-finding-results",
        data=json.dumps({"results": results, "region": region}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - loopback URL checked above
        resp.read()


def _seed_file_storage(s3: Any, bucket: str, region: str) -> None:
    """The file-storage bucket is versioned, as the guide's file backups expect."""
    _ensure_bucket(s3, bucket, region)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _seed_system_image(ec2: Any) -> None:
    """One AMI of ours (the weekly system image); a fresh one after each start of moto."""
    if not ec2.describe_images(Owners=["self"]).get("Images"):
        ec2.register_image(Name="sanvi-backend-weekly", Description="Sanvi backend system image (demo)")


#: The configuration sources the configuration backup reads (``configuration_backups.sources``):
#: two plain parameters, one SecureString and one secret. The tests assert that the two secret
#: values below appear nowhere in S3 or git.
DEMO_PARAMETERS: tuple[tuple[str, str, str], ...] = (
    ("/sanvi/production/app/log_level", "String", "info"),
    (
        "/sanvi/production/app/allowed_origins",
        "StringList",
        "https://app.sanvi-machinery.com,https://dr.sanvi-machinery.com",
    ),
    ("/sanvi/production/app/session_signing_key", "SecureString", "demo-securestring-value-7f3a9c"),
)
DEMO_SECRET_NAME = "sanvi/production/app-db"
DEMO_SECRET_VALUE = '{"username": "sanvi_app", "password": "demo-secret-value-4be81d"}'


def seed_configuration(endpoint_url: str, region: str = "us-east-1", bucket: str | None = None) -> None:
    """The demo's SSM parameters and Secrets Manager secret (created when missing, never
    overwritten) and, when ``bucket`` is given, versioning on it (where the configuration
    snapshots go). ECS is :func:`seed_demo`'s."""
    from botocore.exceptions import ClientError

    _require_local(endpoint_url)
    session = _session(region)
    ssm = session.client("ssm", endpoint_url=endpoint_url)
    for name, kind, value in DEMO_PARAMETERS:
        try:
            ssm.put_parameter(Name=name, Type=kind, Value=value, Overwrite=False, Description="Sanvi demo")
        except ClientError as exc:
            if _code(exc) != "ParameterAlreadyExists":
                raise
    secrets = session.client("secretsmanager", endpoint_url=endpoint_url)
    try:
        secrets.create_secret(Name=DEMO_SECRET_NAME, SecretString=DEMO_SECRET_VALUE, Description="Sanvi demo")
    except ClientError as exc:
        if _code(exc) != "ResourceExistsException":
            raise
    if bucket:
        s3 = session.client("s3", endpoint_url=endpoint_url)
        _ensure_bucket(s3, bucket, region)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


#: Demo documents of the file-storage bucket (what file_storage_backup copies each day).
DEMO_FILES: dict[str, bytes] = {
    **{
        f"manuals/press-{n:02d}.pdf": (f"%PDF-1.4 Sanvi press {n} manual\n".encode() * 40)
        for n in range(1, 9)
    },
    **{f"drawings/frame-{n:03d}.dwg": bytes(range(256)) * (4 + n) for n in range(1, 13)},
    "invoices/2026/INV-8800.json": b'{"invoice": 8800, "total": 1200.5}',
}


def _seed_file_objects(s3: Any, bucket: str) -> int:
    """The demo documents, when the bucket is empty (kept across restarts by moto_state)."""
    if s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount"):
        return 0
    for key, body in DEMO_FILES.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return len(DEMO_FILES)


def _seed_backup_instance(ec2: Any, key: str, value: str) -> None:
    """One running application server tagged for the weekly system image (system_image_backup)."""
    found = ec2.describe_instances(
        Filters=[
            {"Name": f"tag:{key}", "Values": [value]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]
    if not found:
        ec2.run_instances(
            ImageId="ami-12c6146b",  # one of moto's built-in AMIs
            MinCount=1,
            MaxCount=1,
            InstanceType="t3.medium",
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [{"Key": key, "Value": value}, {"Key": "Name", "Value": "sanvi-app-1"}],
                }
            ],
        )


#: (service, call, kwargs) made once after seeding so that moto has built each backend the DAGs
#: use before they run: the first call to a moto service is slow (seconds under load).
WARM_UP_CALLS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("kms", "list_aliases", {}),
    ("cloudwatch", "list_metrics", {}),
    ("ce", "get_cost_and_usage", {}),
    ("application-autoscaling", "describe_scalable_targets", {"ServiceNamespace": "ecs"}),
    ("s3control", "get_public_access_block", {"AccountId": "123456789012"}),
    ("sts", "get_caller_identity", {}),
)


def warm_up(endpoint_url: str, region: str = "us-east-1") -> list[str]:
    """Make the :data:`WARM_UP_CALLS`; returns the services that answered (errors are expected
    for some, e.g. a missing public access block: the point is that moto loaded the service)."""
    import datetime as dt

    from botocore.exceptions import BotoCoreError, ClientError

    _require_local(endpoint_url)
    session = _session(region)
    warmed = []
    today = dt.date.today()
    for service, call, kwargs in WARM_UP_CALLS:
        if service == "ce":
            kwargs = {
                "TimePeriod": {"Start": (today - dt.timedelta(days=1)).isoformat(), "End": today.isoformat()},
                "Granularity": "DAILY",
                "Metrics": ["UnblendedCost"],
            }
        try:
            getattr(session.client(service, endpoint_url=endpoint_url), call)(**kwargs)
        except (ClientError, BotoCoreError):
            pass
        warmed.append(service)
    return warmed


def seed_story(endpoint_url: str, region: str = "us-east-1", cfg: Any = None) -> dict[str, Any]:
    """What the DAGs of a first start read, so that each finds data rather than nothing: the Log
    Review's CloudWatch Logs groups (a day of lines, a few errors), the Security Patch Review's
    ECR repositories (an image each, scanned, with findings), the file-storage bucket versioned
    with demo documents (File Storage Backup), a system image (Backup Verification), an instance
    tagged for the weekly image (System Image Backup), the configuration backup's SSM parameters and
    secret with its bucket versioned (:func:`seed_configuration`), then :func:`warm_up`. Idempotent."""
    import time

    _require_local(endpoint_url)
    if cfg is None:
        from sanvi_ops.core.config import load_config

        cfg = load_config()
    session = _session(region)

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    now_ms = int(time.time() * 1000)
    logs = client("logs")
    written = {g: _seed_log_events(logs, g, now_ms) for g in cfg.tasks.log_review.settings.log_groups}
    repos = list(cfg.tasks.security_patch_review.settings.ecr_repositories)
    if repos:
        _seed_ecr(client("ecr"), endpoint_url, region, repos)
    files = cfg.file_storage_backups.source_bucket or cfg.tasks.system_health_check.settings.buckets.get(
        "files"
    )
    if files:
        _seed_file_storage(client("s3"), files, region)
        _seed_file_objects(client("s3"), files)
    _seed_system_image(client("ec2"))
    c = cfg.configuration_backups
    seed_configuration(endpoint_url, region, c.bucket or cfg.database_backups.bucket)
    images = cfg.system_image_backups
    _seed_backup_instance(client("ec2"), images.instance_tag_key, images.instance_tag_value)
    return {"log_events": written, "ecr_repositories": repos, "warmed": warm_up(endpoint_url, region)}
