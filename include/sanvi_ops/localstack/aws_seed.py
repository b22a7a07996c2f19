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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sanvi_ops.localstack.aws import LOCAL_AWS_ENV

__all__ = ["DemoNames", "seed_demo"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
        """The names a ``HealthCheckConfig`` (``cfg.health_check``) will check."""
        return cls(
            buckets=dict(health_check.buckets),
            ecs_cluster=str(health_check.ecs_cluster),
            ecs_services=tuple(health_check.ecs_services),
            rds_instances=tuple(health_check.rds_instances),
            elasticache_clusters=tuple(health_check.elasticache_clusters),
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


def seed_demo(endpoint_url: str, region: str = "us-east-1", names: DemoNames | None = None) -> dict[str, Any]:
    """Create (idempotently) the healthy demo AWS stack in the moto server at ``endpoint_url``.

    Existing resources are kept; a service below its desired count is brought back to it and a
    stopped RDS instance is started, so a second call leaves a healthy stack too.

    :param endpoint_url: a loopback URL (``http://127.0.0.1:PORT``); anything else is refused.
    :param region: region of every resource.
    :param names: resource names; by default the ones ``health_check`` in the loaded config
        (``load_config()``, honouring ``SANVI_OPS_CONFIG``) checks, so seed and checks never drift.
    :returns: what was seeded, shaped like ``health_check``'s settings: ``buckets``,
        ``ecs_cluster``, ``ecs_services``, ``rds_instances``, ``elasticache_clusters``, plus
        ``endpoint_url`` and ``region``.
    :raises ValueError: when ``endpoint_url`` is not local.
    """
    import boto3

    _require_local(endpoint_url)
    if names is None:
        from sanvi_ops.config import load_config

        names = DemoNames.from_health_config(load_config().health_check)
    session = boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    _seed_buckets(client("s3"), names.buckets, region)
    _seed_ecs(client("ecs"), names.ecs_cluster, list(names.ecs_services), names.ecs_desired_count)
    _seed_rds(client("rds"), list(names.rds_instances))
    _seed_elasticache(client("elasticache"), list(names.elasticache_clusters))
    return {
        "endpoint_url": endpoint_url,
        "region": region,
        "buckets": dict(names.buckets),
        "ecs_cluster": names.ecs_cluster,
        "ecs_services": list(names.ecs_services),
        "rds_instances": list(names.rds_instances),
        "elasticache_clusters": list(names.elasticache_clusters),
    }
