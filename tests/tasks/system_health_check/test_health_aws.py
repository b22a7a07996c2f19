"""AWS health checks against a real moto server (S3, ECS, RDS, ElastiCache) on 127.0.0.1.

moto notes: ``CreateService`` reports ``runningCount`` = the env var ``MOTO_ECS_SERVICE_RUNNING``
of the moto server's process (0 when unset) and ``UpdateService(desiredCount=N)`` sets
``runningCount`` to N, so "desired count raised, tasks not yet running" cannot be produced with
``UpdateService``; a service created with more desired than running tasks can. The session's moto
server runs in this process (a thread), so ``monkeypatch.setenv`` reaches it.
"""

from __future__ import annotations

import pytest

from devstack.aws_seed import DemoNames, seed_demo
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.system_health_check.health.aws import (
    check_buckets,
    check_ecs,
    check_elasticache,
    check_rds,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def demo(aws_endpoint):
    return seed_demo(aws_endpoint)


def run_all(boto_client, demo, **overrides):
    names = {**demo, **overrides}
    return (
        check_buckets(boto_client("s3"), names["buckets"])
        + check_ecs(boto_client("ecs"), names["ecs_cluster"], names["ecs_services"])
        + check_rds(boto_client("rds"), names["rds_instances"])
        + check_elasticache(boto_client("elasticache"), names["elasticache_clusters"])
    )


def test_seeded_demo_stack_is_all_ok(boto_client, demo):
    results = run_all(boto_client, demo)
    assert {r.status for r in results} == {Status.OK}, [
        r.summary for r in results if r.status is not Status.OK
    ]
    checks = [r.check for r in results]
    assert checks[:2] == ["s3.backups", "s3.files"]
    assert {"ecs.frontend", "ecs.backend"} <= set(checks)
    assert f"rds.{demo['rds_instances'][0]}" in checks
    assert f"elasticache.{demo['elasticache_clusters'][0]}" in checks
    frontend = next(r for r in results if r.check == "ecs.frontend")
    assert frontend.observed == 2 and frontend.details["desired"] == 2
    assert frontend.summary == f"ECS service frontend in {demo['ecs_cluster']}: 2 of 2 tasks running"


def test_seed_uses_the_config_names_and_is_idempotent(aws_endpoint, boto_client):
    from sanvi_ops.core.config import load_config

    hc = load_config().tasks.system_health_check.settings
    first = seed_demo(aws_endpoint)
    assert first["buckets"] == dict(hc.buckets)
    assert first["ecs_cluster"] == hc.ecs_cluster and first["ecs_services"] == list(hc.ecs_services)
    assert first["rds_instances"] == list(hc.rds_instances)
    assert first["elasticache_clusters"] == list(hc.elasticache_clusters)
    assert seed_demo(aws_endpoint) == first
    ecs = boto_client("ecs")
    assert len(ecs.list_services(cluster=first["ecs_cluster"])["serviceArns"]) == len(first["ecs_services"])
    family = f"{first['ecs_cluster']}-frontend"
    assert len(ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"]) == 1
    assert {r.status for r in run_all(boto_client, first)} == {Status.OK}


def test_seed_with_own_names(aws_endpoint, boto_client):
    names = DemoNames(
        buckets={"backups": "own-backups"},
        ecs_cluster="own-cluster",
        ecs_services=("api",),
        rds_instances=("own-db",),
        elasticache_clusters=("own-cache",),
        ecs_desired_count=3,
    )
    seeded = seed_demo(aws_endpoint, names=names)
    results = run_all(boto_client, seeded)
    assert {r.status for r in results} == {Status.OK}
    assert next(r for r in results if r.check == "ecs.api").observed == 3


def test_seed_refuses_anything_but_a_local_endpoint():
    with pytest.raises(ValueError, match="not on this machine"):
        seed_demo("https://s3.amazonaws.com")


def test_missing_bucket_is_critical_and_named(boto_client, demo):
    s3 = boto_client("s3")
    s3.delete_bucket(Bucket=demo["buckets"]["files"])
    results = check_buckets(s3, {**demo["buckets"], "archive": "sanvi-no-such-bucket"})
    by = {r.check: r for r in results}
    assert by["s3.backups"].status is Status.OK
    assert by["s3.files"].status is Status.CRITICAL and by["s3.files"].severity == "P1"
    assert by["s3.files"].summary == f"S3 bucket '{demo['buckets']['files']}' (files) does not exist (404)"
    assert by["s3.archive"].status is Status.CRITICAL and "sanvi-no-such-bucket" in by["s3.archive"].summary


def test_ecs_running_below_desired(boto_client, demo, monkeypatch):
    ecs = boto_client("ecs")
    cluster = demo["ecs_cluster"]
    # A service with no task running at all: CreateService in moto starts none.
    ecs.create_service(cluster=cluster, serviceName="worker", desiredCount=2)
    # One of two running (warning), and one of four (critical, but not down).
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "1")
    ecs.create_service(cluster=cluster, serviceName="api", desiredCount=2)
    ecs.create_service(cluster=cluster, serviceName="reports", desiredCount=4)
    monkeypatch.delenv("MOTO_ECS_SERVICE_RUNNING")

    results = check_ecs(ecs, cluster, ["frontend", "worker", "api", "reports", "ghost"])
    by = {r.check: r for r in results}
    assert by["ecs.frontend"].status is Status.OK
    assert by["ecs.worker"].status is Status.CRITICAL and by["ecs.worker"].severity == "P1"
    assert (
        by["ecs.worker"].summary
        == f"ECS service worker in {cluster}: only 0 of 2 desired tasks running, 2 pending"
    )
    assert by["ecs.api"].status is Status.WARNING
    assert by["ecs.api"].observed == 1 and by["ecs.api"].thresholds == {"warning": 2, "critical": 1}
    assert by["ecs.reports"].status is Status.CRITICAL and by["ecs.reports"].severity == "P2"
    assert by["ecs.ghost"].status is Status.CRITICAL and by["ecs.ghost"].severity == "P1"
    assert by["ecs.ghost"].summary == f"ECS service ghost not found in cluster {cluster} (MISSING)"


def test_ecs_deleted_service_and_missing_cluster(boto_client, demo):
    ecs = boto_client("ecs")
    cluster = demo["ecs_cluster"]
    ecs.delete_service(cluster=cluster, service="backend", force=True)
    (backend,) = check_ecs(ecs, cluster, ["backend"])
    assert backend.status is Status.CRITICAL and "is INACTIVE, not ACTIVE" in backend.summary

    results = check_ecs(ecs, "no-such-cluster", ["frontend", "backend"])
    assert [r.check for r in results] == ["ecs.frontend", "ecs.backend"]
    assert all(r.status is Status.CRITICAL for r in results)
    assert "cluster 'no-such-cluster' not found (ClusterNotFoundException)" in results[0].summary
    assert results[0].details["aws_error_code"] == "ClusterNotFoundException"


def test_ecs_more_than_ten_services_are_batched(boto_client, demo):
    ecs = boto_client("ecs")
    names = [f"svc{i:02d}" for i in range(12)]
    for name in names:
        ecs.create_service(cluster=demo["ecs_cluster"], serviceName=name, desiredCount=1)
        ecs.update_service(cluster=demo["ecs_cluster"], service=name, desiredCount=1)
    results = check_ecs(ecs, demo["ecs_cluster"], names)
    assert [r.check for r in results] == [f"ecs.{n}" for n in names]
    assert {r.status for r in results} == {Status.OK}


def test_rds_stopped_is_critical(boto_client, demo):
    rds = boto_client("rds")
    instance = demo["rds_instances"][0]
    rds.stop_db_instance(DBInstanceIdentifier=instance)
    (result,) = check_rds(rds, [instance])
    assert result.status is Status.CRITICAL and result.severity == "P1"
    assert result.summary == f"RDS instance {instance} is stopped"
    assert result.details["engine"] == "postgres"
    # seed_demo restores the healthy stack.
    seed_demo(demo["endpoint_url"])
    assert check_rds(rds, [instance])[0].status is Status.OK


def test_rds_missing_is_critical(boto_client, demo):
    (result,) = check_rds(boto_client("rds"), ["sanvi-nowhere-db"])
    assert result.status is Status.CRITICAL and result.summary == "RDS instance sanvi-nowhere-db not found"


def test_elasticache_missing_and_deleting(boto_client, demo):
    ec = boto_client("elasticache")
    cluster = demo["elasticache_clusters"][0]
    missing, present = check_elasticache(ec, ["sanvi-no-such-cache", cluster])
    assert missing.status is Status.CRITICAL and missing.severity == "P1"
    assert missing.summary == "ElastiCache cluster sanvi-no-such-cache not found (CacheClusterNotFound)"
    assert present.status is Status.OK
    ec.delete_cache_cluster(CacheClusterId=cluster)  # moto keeps it as "deleting"
    (deleting,) = check_elasticache(ec, [cluster])
    assert (
        deleting.status is Status.CRITICAL
        and deleting.summary == f"ElastiCache cluster {cluster} is deleting"
    )


def test_elasticache_replication_group_is_found(boto_client, aws_endpoint):
    ec = boto_client("elasticache")
    ec.create_replication_group(
        ReplicationGroupId="sanvi-rg",
        ReplicationGroupDescription="demo",
        Engine="redis",
        CacheNodeType="cache.t4g.small",
        NumCacheClusters=2,
    )
    (result,) = check_elasticache(ec, ["sanvi-rg"])
    assert result.status is Status.OK
    assert result.details["kind"] == "replication group"


def test_nothing_configured_is_skipped(boto_client, aws_endpoint):
    assert check_buckets(boto_client("s3"), {})[0].status is Status.SKIPPED
    assert check_ecs(boto_client("ecs"), "c", [])[0].status is Status.SKIPPED
    assert check_rds(boto_client("rds"), [])[0].status is Status.SKIPPED
    assert check_elasticache(boto_client("elasticache"), [])[0].status is Status.SKIPPED


def test_unreachable_endpoint_names_the_resource(aws_endpoint):
    import boto3
    from botocore.config import Config

    from devstack.postgres import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    cfg = Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=2)
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=dead, config=cfg)
    (result,) = check_buckets(s3, {"backups": "b"})
    assert result.status is Status.CRITICAL
    assert result.summary.startswith("Could not reach the AWS endpoint to check S3 bucket 'b' (backups)")
    rds = boto3.client("rds", region_name="us-east-1", endpoint_url=dead, config=cfg)
    (result,) = check_rds(rds, ["db1"])
    assert result.status is Status.CRITICAL and "RDS instance 'db1'" in result.summary


@pytest.fixture
def moto_enforces_iam(aws_endpoint):
    """Switch on moto's IAM enforcement (its own /moto-api/reset-auth) and switch it back after."""
    import json
    import urllib.request

    def reset_auth(value: str) -> str:
        req = urllib.request.Request(
            f"{aws_endpoint}/moto-api/reset-auth",
            data=value.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},  # a form content type would hide the body from moto
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback moto
            return str(json.loads(resp.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    def enable() -> None:
        previous.append(reset_auth("0"))

    previous: list[str] = []
    yield enable
    if previous:
        reset_auth(previous[0])


def test_credentials_and_permissions_refused_are_errors_naming_the_code(
    boto_client, aws_endpoint, moto_enforces_iam
):
    import boto3

    iam = boto_client("iam")
    iam.create_user(UserName="s3-only")
    iam.put_user_policy(
        UserName="s3-only",
        PolicyName="s3-only",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}',
    )
    key = iam.create_access_key(UserName="s3-only")["AccessKey"]
    moto_enforces_iam()

    limited = boto3.client(
        "rds",
        region_name="us-east-1",
        endpoint_url=aws_endpoint,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    (result,) = check_rds(limited, ["db1"])
    assert result.status is Status.ERROR, result.summary
    assert result.summary.startswith(
        "Could not check RDS instance 'db1': AWS refused the request (AccessDenied"
    )
    assert result.details["aws_error_code"] == "AccessDenied"

    unknown = boto_client("rds")  # the "testing" keys do not exist in moto's IAM
    (result,) = check_rds(unknown, ["db1"])
    assert result.status is Status.ERROR
    assert result.details["aws_error_code"] == "InvalidClientTokenId"
    assert "RDS instance 'db1'" in result.summary

    # moto answers JSON-protocol services (ECS) with an XML error botocore cannot parse: the
    # code is then only the HTTP status, and the markup is not pasted into the summary.
    results = check_ecs(boto_client("ecs"), "sanvi-production", ["frontend", "backend"])
    assert [r.status for r in results] == [Status.ERROR, Status.ERROR]
    assert results[0].summary == (
        "Could not check ECS service frontend in cluster 'sanvi-production': AWS refused the request (403: HTTP 403)"
    )
