"""Disk Space Check sources on real servers: Prometheus node metrics (demo series), RDS and
CloudWatch on moto (``put_metric_data`` seeds FreeStorageSpace), PostgreSQL sizes, and the
results store's samples for the forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devstack.postgres import free_port
from sanvi_ops.core.prometheus import PrometheusClient, PrometheusUnreachable
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from sanvi_ops.tasks.disk_space_check.disk import (
    GIB,
    Usage,
    database_sizes,
    filesystem_usage,
    grade_usage,
    load_samples,
    rds_usage,
    save_samples,
)

pytestmark = pytest.mark.integration


@pytest.mark.prometheus
def test_filesystems_from_node_metrics(prometheus_server):
    with PrometheusClient(prometheus_server.url) as prom:
        usages = {u.target: u for u in filesystem_usage(prom, prometheus_server.now)}
    assert set(usages) == {
        "fs:frontend-1:/",
        "fs:backend-1:/",
        "fs:backend-2:/",
        "fs:db-1:/",
        "fs:db-1:/var/lib/postgresql",
    }
    pg_volume = usages["fs:db-1:/var/lib/postgresql"]
    assert pg_volume.size_bytes == 500 * GIB
    assert pg_volume.used_pct == pytest.approx(82.0, abs=0.01)
    result = grade_usage(pg_volume, [], warning_pct=80, critical_pct=90)
    assert result.status is Status.WARNING and result.check == "disk.filesystem[db-1:/var/lib/postgresql]"
    assert grade_usage(usages["fs:frontend-1:/"], [], warning_pct=80, critical_pct=90).status is Status.OK


@pytest.mark.prometheus
def test_no_filesystem_series(prometheus_server):
    with PrometheusClient(prometheus_server.url) as prom:
        assert filesystem_usage(prom, prometheus_server.now, size_query="no_such_metric") == []


def test_prometheus_down_raises_for_the_caller():
    with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2) as prom:
        with pytest.raises(PrometheusUnreachable):
            filesystem_usage(prom, datetime.now(UTC))


def _rds_with_free_storage(boto_client, name: str, allocated_gib: int, free_gib: float, at: datetime) -> None:
    boto_client("rds").create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=allocated_gib,
        MasterUsername="sanvi",
        MasterUserPassword="not-a-real-password",
    )
    cw = boto_client("cloudwatch")
    for minutes_ago, gib in ((20, free_gib + 1), (5, free_gib)):
        cw.put_metric_data(
            Namespace="AWS/RDS",
            MetricData=[
                {
                    "MetricName": "FreeStorageSpace",
                    "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": name}],
                    "Timestamp": at - timedelta(minutes=minutes_ago),
                    "Value": gib * GIB,
                    "Unit": "Bytes",
                }
            ],
        )


def test_rds_free_storage_from_cloudwatch(boto_client):
    at = datetime.now(UTC).replace(microsecond=0)
    _rds_with_free_storage(boto_client, "sanvi-production-db", 100, 8.0, at)
    _rds_with_free_storage(boto_client, "sanvi-reporting-db", 200, 150.0, at)
    boto_client("rds").create_db_instance(
        DBInstanceIdentifier="sanvi-quiet-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="sanvi",
        MasterUserPassword="not-a-real-password",
    )
    found = rds_usage(
        boto_client("rds"),
        boto_client("cloudwatch"),
        ["sanvi-production-db", "sanvi-reporting-db", "sanvi-quiet-db", "sanvi-missing-db"],
        at,
    )
    usages = {u.target: u for u in found if isinstance(u, Usage)}
    direct = {r.check: r for r in found if isinstance(r, CheckResult)}

    prod = usages["rds:sanvi-production-db"]
    assert prod.used_pct == pytest.approx(92.0)  # newest datapoint: 8 GiB free of 100
    result = grade_usage(prod, [], warning_pct=80, critical_pct=90)
    assert result.status is Status.CRITICAL and "RDS sanvi-production-db" in result.summary
    assert usages["rds:sanvi-reporting-db"].used_pct == pytest.approx(25.0)

    assert direct["disk.rds[sanvi-quiet-db]"].status is Status.WARNING
    assert "no FreeStorageSpace datapoints" in direct["disk.rds[sanvi-quiet-db]"].summary
    assert direct["disk.rds[sanvi-missing-db]"].status is Status.WARNING
    assert "DBInstanceNotFound" in direct["disk.rds[sanvi-missing-db]"].summary


def test_database_sizes_and_largest_tables(make_db):
    dsn = make_db("sizes")
    with psycopg.connect(dsn) as conn:
        conn.execute('CREATE TABLE "big ""table"" ü" (id int, pad text)')
        conn.execute(
            """INSERT INTO "big ""table"" ü" SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g"""
        )
        conn.execute("CREATE TABLE small (id int)")
    at = datetime.now(UTC)
    usages, largest = database_sizes(dsn, at, top_tables=5)
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    assert f"postgres:{dbname}" in {u.target for u in usages}
    assert all(u.size_bytes is None and u.used_bytes > 0 for u in usages)
    assert largest.details["database"] == dbname
    tables = [t["table"] for t in largest.details["tables"]]
    assert tables[0] == 'big "table" ü' and "small" in tables
    assert largest.details["tables"][0]["bytes"] > 4_000_000


def test_samples_round_trip_and_forecast(make_db):
    store_dsn = make_db("store")
    ResultStore(store_dsn).migrate()
    t0 = datetime(2026, 10, 1, 10, 30, tzinfo=UTC)
    for week in range(4):
        u = Usage(
            "fs:db-1:/data",
            "c",
            "db-1",
            "db-1 /data",
            (50 + 7 * week) * GIB,
            100 * GIB,
            t0 + timedelta(weeks=week),
        )
        save_samples(store_dsn, f"run-{week}", [u])
    save_samples(
        store_dsn,
        "run-3",
        [Usage("fs:db-1:/data", "c", "db-1", "x", 71 * GIB, 100 * GIB, t0 + timedelta(weeks=3))],
    )
    now = Usage("fs:db-1:/data", "c", "db-1", "db-1 /data", 78 * GIB, 100 * GIB, t0 + timedelta(weeks=4))
    history = load_samples(
        store_dsn, [now.target, "fs:other:/"], t0 - timedelta(days=1), exclude_run_id="run-4"
    )
    assert len(history[now.target]) == 4 and history["fs:other:/"] == []
    assert load_samples(store_dsn, [now.target], t0 + timedelta(days=8))[now.target][0][1] == 64 * GIB
    result = grade_usage(now, history[now.target], warning_pct=80, critical_pct=90, full_within_days=30)
    assert result.details["growth_bytes_per_day"] == pytest.approx(GIB, rel=1e-6)
    assert result.details["days_until_full"] == pytest.approx(22.0, abs=0.1)
    assert result.status is Status.WARNING and "full in ~22 days" in result.summary


def test_cloudwatch_throttling_is_an_error_result(boto_client):
    """moto never throttles: CloudWatch's ``Throttling`` error (as the AWS API reference shapes it)
    comes from botocore's Stubber; RDS itself is moto."""
    from botocore.stub import Stubber

    at = datetime.now(UTC)
    boto_client("rds").create_db_instance(
        DBInstanceIdentifier="sanvi-production-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=100,
        MasterUsername="sanvi",
        MasterUserPassword="not-a-real-password",
    )
    cloudwatch = boto_client("cloudwatch")
    with Stubber(cloudwatch) as stub:
        stub.add_client_error(
            "get_metric_statistics",
            service_error_code="Throttling",
            service_message="Rate exceeded",
            http_status_code=400,
        )
        found = rds_usage(boto_client("rds"), cloudwatch, ["sanvi-production-db"], at)
    assert len(found) == 1 and isinstance(found[0], CheckResult)
    assert found[0].status is Status.ERROR
    assert "Throttling" in found[0].summary and "Rate exceeded" in found[0].summary
