"""Disk Space Check end to end: ``dag.test()`` against the demo Prometheus (node filesystems),
moto (RDS + CloudWatch FreeStorageSpace), PostgreSQL 18 and the results store, whose earlier
samples give the days-until-full forecast."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sanvi_ops.tasks.disk_space_check.disk import GIB
from tests.fixtures.e2e import load_dag, task_states

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

DAG_ID = "disk_space_check"
RDS = "sanvi-production-db"  # tasks.system_health_check.settings.rds_instances in the shipped config
PG_VOLUME = "fs:db-1:/var/lib/postgresql"


@pytest.fixture
def disk_env(e2e, boto_client, monkeypatch):
    from devstack.aws_seed import seed_demo

    env = e2e.connect(app_db=True, aws=True)
    prometheus_server = e2e.prometheus()
    seed_demo(env["aws_endpoint"])  # RDS sanvi-production-db with 100 GiB allocated
    monkeypatch.delenv("SANVI_OPS_CONFIG", raising=False)
    return {"app_dsn": env["app_dsn"], "store_dsn": env["store_dsn"], "at": prometheus_server.now}


def _free_storage(boto_client, at: datetime, free_gib: float) -> None:
    boto_client("cloudwatch").put_metric_data(
        Namespace="AWS/RDS",
        MetricData=[
            {
                "MetricName": "FreeStorageSpace",
                "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": RDS}],
                "Timestamp": at - timedelta(minutes=5),
                "Value": free_gib * GIB,
                "Unit": "Bytes",
            }
        ],
    )


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary, details FROM check_results WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {name: (status, summary, details) for name, status, summary, details in rows}


def test_weekly_check_with_forecast_from_stored_samples(disk_env, boto_client, slack_api):
    at = disk_env["at"]
    _free_storage(boto_client, at, 30.0)  # 70 % used
    dag = load_dag(DAG_ID)
    conf = {"evaluate_at": at.isoformat()}

    # Run 1 (a week earlier by its samples): the forecast has a single sample to work with.
    first = dag.test(logical_date=datetime(2026, 11, 19, 10, 30, tzinfo=UTC), run_conf=conf)
    rows = _stored(disk_env["store_dsn"], first.run_id)
    assert all(s == "success" for s in task_states(first).values()), task_states(first)
    status, summary, details = rows["disk.filesystem[db-1:/var/lib/postgresql]"]
    assert status == "warning" and "82.0 % used" in summary and details["days_until_full"] is None
    assert rows["disk.filesystem[frontend-1:/]"][0] == "ok"
    assert rows[f"disk.rds[{RDS}]"][0] == "ok" and "70.0 % used" in rows[f"disk.rds[{RDS}]"][1]
    app_db = psycopg.conninfo.conninfo_to_dict(disk_env["app_dsn"])["dbname"]
    assert rows[f"postgres.database_size[{app_db}]"][0] == "ok"
    assert rows["postgres.largest_tables"][0] == "ok"

    # Pretend run 1 was a week ago at 78 % (the volume grows 4 % of 500 GiB a week).
    with psycopg.connect(disk_env["store_dsn"]) as conn:
        conn.execute(
            "UPDATE disk_samples SET sampled_at = sampled_at - interval '7 days', used_bytes = %s "
            "WHERE target = %s AND run_id = %s",
            (0.78 * 500 * GIB, PG_VOLUME, first.run_id),
        )
        n_samples = conn.execute(
            "SELECT count(*) FROM disk_samples WHERE run_id = %s", (first.run_id,)
        ).fetchone()
    assert n_samples[0] >= 7  # 5 filesystems, the RDS instance, the databases

    second = dag.test(logical_date=datetime(2026, 11, 26, 10, 30, tzinfo=UTC), run_conf=conf)
    rows = _stored(disk_env["store_dsn"], second.run_id)
    status, summary, details = rows["disk.filesystem[db-1:/var/lib/postgresql]"]
    # 18 % of 500 GiB left at 20 GiB a week: ~31.5 days.
    assert status == "warning" and details["samples"] == 2
    assert details["days_until_full"] == pytest.approx(31.5, abs=0.5)
    assert "full in ~31 days" in summary or "full in ~32 days" in summary
    assert len([m for m in slack_api.messages if "Disk Space Check" in json.dumps(m)]) == 2


def test_rds_almost_full_turns_the_run_red(disk_env, boto_client, slack_api):
    _free_storage(boto_client, disk_env["at"], 5.0)  # 95 % used
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 26, 10, 30, tzinfo=UTC),
        run_conf={"evaluate_at": disk_env["at"].isoformat()},
    )
    rows = _stored(disk_env["store_dsn"], dr.run_id)
    assert rows[f"disk.rds[{RDS}]"][0] == "critical"
    assert task_states(dr)["notify"] == "failed"
    assert any(m.get("text", "").startswith("[INCIDENT]") and RDS in m["text"] for m in slack_api.messages)


def test_manual_run_params_choose_checks_mount_points_and_tables(disk_env, boto_client, slack_api):
    """Trigger-form Params: ``checks`` leaves RDS out (reported as skipped, nothing sampled),
    ``mount_points`` keeps only matching filesystems, ``top_tables`` caps the largest tables."""
    _free_storage(boto_client, disk_env["at"], 5.0)  # 95 % used: critical, if it were checked
    with psycopg.connect(disk_env["app_dsn"], autocommit=True) as conn:
        for i in range(3):
            conn.execute(f"CREATE TABLE t{i} AS SELECT g FROM generate_series(1, {1000 * 10**i}) g")
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 26, 10, 30, tzinfo=UTC),
        run_conf={
            "evaluate_at": disk_env["at"].isoformat(),
            "checks": ["check_filesystems", "check_database_sizes"],
            "mount_points": ["/var/lib/*"],
            "top_tables": 1,
        },
    )
    assert all(s == "success" for s in task_states(dr).values()), task_states(dr)  # RDS's 95 % not looked at
    rows = _stored(disk_env["store_dsn"], dr.run_id)
    status, summary, details = rows["check_rds_storage.not_selected"]
    assert status == "skipped" and details["selected"] == ["check_filesystems", "check_database_sizes"]
    assert not [name for name in rows if name.startswith("disk.rds")], rows
    filesystems = [name for name in rows if name.startswith("disk.filesystem[")]
    assert "disk.filesystem[db-1:/var/lib/postgresql]" in filesystems
    assert all(":/var/lib/" in name for name in filesystems), filesystems
    assert [t["table"] for t in rows["postgres.largest_tables"][2]["tables"]] == ["t2"]
    with psycopg.connect(disk_env["store_dsn"]) as conn:
        targets = [
            r[0] for r in conn.execute("SELECT target FROM disk_samples WHERE run_id = %s", (dr.run_id,))
        ]
    assert PG_VOLUME in targets and not [t for t in targets if t.startswith("rds:")], targets
