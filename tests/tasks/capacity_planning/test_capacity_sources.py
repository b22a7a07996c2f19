"""Capacity planning sources against real servers on 127.0.0.1: Application Auto Scaling on the
moto server, pg_stat_user_tables on PostgreSQL 18, disk_samples in the results store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.capacity_planning.capacity import (
    autoscaling_bounds,
    load_period_samples,
    read_write_ratio,
    storage_growth,
)
from sanvi_ops.tasks.disk_space_check.disk import Usage, save_samples

pytestmark = pytest.mark.integration


def _ecs_services(boto_client, cluster, *services):
    """moto checks that the cluster and service of a scalable target exist."""
    ecs = boto_client("ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "app:1", "memory": 256}]
    )
    for service in services:
        ecs.create_service(cluster=cluster, serviceName=service, taskDefinition="app", desiredCount=2)


def _register(client, cluster, service, lo, hi):
    client.register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=f"service/{cluster}/{service}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=lo,
        MaxCapacity=hi,
    )


def test_autoscaling_bounds_flag_exactly_the_bad_services(boto_client):
    _ecs_services(boto_client, "prod", "frontend", "backend", "worker")
    _ecs_services(boto_client, "other", "worker")
    client = boto_client("application-autoscaling")
    _register(client, "prod", "frontend", 2, 10)
    _register(client, "prod", "backend", 1, 4)
    _register(client, "other", "worker", 2, 10)  # another cluster: not asked about
    results = autoscaling_bounds(
        client, "prod", ["frontend", "backend", "worker"], min_capacity=2, max_capacity=10
    )
    by = {r.check: r for r in results}
    assert by["capacity.autoscaling[frontend]"].status is Status.OK
    backend = by["capacity.autoscaling[backend]"]
    assert (
        backend.status is Status.WARNING
        and "min 1 ≠ 2" in backend.summary
        and "max 4 ≠ 10" in backend.summary
    )
    worker = by["capacity.autoscaling[worker]"]
    assert worker.status is Status.WARNING and "no auto-scaling registered" in worker.summary


def test_autoscaling_access_denied_is_an_error_naming_the_action():
    """Access denial via botocore's Stubber (moto does not enforce IAM): shaped as AWS returns it."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "application-autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "describe_scalable_targets", service_error_code="AccessDeniedException", http_status_code=400
        )
        (r,) = autoscaling_bounds(client, "prod", ["frontend"], min_capacity=2, max_capacity=10)
    assert r.status is Status.ERROR and "DescribeScalableTargets" in r.summary and "AccessDenied" in r.summary


def test_read_write_ratio_recommends_a_replica_above_the_ratio(make_db):
    dsn = make_db("rw")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g")
        conn.execute("SELECT pg_stat_force_next_flush()")
    low = read_write_ratio(dsn, replica_above=4)
    assert low.status is Status.OK and low.details["rows_written"] == 100
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(6):
            conn.execute("SELECT count(*) FROM t").fetchone()  # 600 rows read by sequential scans
        conn.execute("SELECT pg_stat_force_next_flush()")
    high = read_write_ratio(dsn, replica_above=4)
    assert high.status is Status.WARNING and "read replica" in high.summary
    assert high.observed is not None and high.observed > 4


def test_storage_growth_from_the_stores_samples(make_db):
    from sanvi_ops.core.store import ResultStore

    store = make_db("store")
    ResultStore(store).migrate()
    now = datetime(2026, 11, 18, 11, tzinfo=UTC)
    gib = 1024**3
    for week in range(5):
        at = now - timedelta(days=7 * (4 - week))
        save_samples(
            store,
            f"run{week}",
            [Usage("fs:db-1:/data", "c", "db-1", "l", (60 + week * 7) * gib, 100 * gib, at)],
        )
    save_samples(
        store, "old", [Usage("fs:db-1:/data", "c", "db-1", "l", 1.0, 100 * gib, now - timedelta(days=60))]
    )
    samples = load_period_samples(store, now - timedelta(days=30), now)
    assert len(samples["fs:db-1:/data"]) == 5  # the 60-day-old sample is outside the period
    (r,) = storage_growth(samples, horizon_days=90)
    # 1 GiB a day, 88 of 100 GiB used: full in 12 days
    assert r.status is Status.WARNING and r.details["days_until_full"] == pytest.approx(12)
