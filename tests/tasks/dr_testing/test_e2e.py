"""``dr_testing`` (and ``backup_testing`` in RDS mode) end to end with ``dag.test()``.

Real PostgreSQL 18, moto (S3 in two regions, KMS, RDS) and the Slack stand-in on 127.0.0.1.
Self-managed: a backup taken with the backup DAG, then an April drill (auto scope = full system:
database + file storage + configuration), stored per kind in ``recovery_tests`` and reported;
then a manual DR-site activation dry run (trigger-form Params) against replica buckets in the DR
region. RDS mode: both DAGs
restore onto temporary moto instances, validate over SQL through the ``scratch_db`` connection's
host/port override and delete them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from devstack.demo_http import make_server
from sanvi_ops.tasks.configuration_backup.snapshot import make_snapshot, write_snapshot
from tests.fixtures.config import shipped_config
from tests.fixtures.connections import pg_conn
from tests.fixtures.e2e import drill_succeeded, load_dag, task_states
from tests.fixtures.postgres import own_cluster
from tests.tasks.database_backup_full.test_e2e import BUCKET


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster)."""
    yield from own_cluster()


pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
SMOKE = "SELECT id, name FROM machines ORDER BY id"
#: The sources of the configuration backup's snapshot (its newest version is applied).
SNAPSHOT = {
    "ssm": {
        "paths": ["/sanvi/"],
        "parameters": [
            {"Name": "/sanvi/production/app/log_level", "Type": "String", "Value": "info"},
            {"Name": "/sanvi/production/app/feature_x", "Type": "String", "Value": "on"},
        ],
    }
}


def _env(monkeypatch, tmp_path, e2e, app_dsn, store_dsn, cfg_changes):
    cfg = shipped_config()
    cfg["database_backups"]["part_size_mb"] = 5
    cfg["tasks"]["backup_testing"]["settings"].update(
        {"smoke_queries": [{"name": "machines", "sql": SMOKE}], "rpo_column": "public.events.created_at"}
    )
    for section, values in cfg_changes.items():  # "tasks.dr_testing.settings": {...}
        node = cfg
        for key in section.split("."):
            node = node.setdefault(key, {})
        node.update(values)
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    e2e.set("sanvi_app_db", pg_conn(app_dsn))
    e2e.set("sanvi_ops_store", pg_conn(store_dsn))
    e2e.aws()
    e2e.slack()


def _seed(make_db) -> str:
    app_dsn = make_db("app")
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE machines (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO machines SELECT g, 'm' || g FROM generate_series(1, 200) g")
        conn.execute("CREATE TABLE events (id int, created_at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO events VALUES (1, now())")
    return app_dsn


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple[str, str, dict]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary, details FROM check_results WHERE run_id = %s", (run_id,)
        ).fetchall()
    return {name: (status, summary, details) for name, status, summary, details in rows}


def _recovery_rows(store_dsn: str) -> list[tuple]:
    with psycopg.connect(store_dsn) as conn:
        return conn.execute(
            "SELECT dag_id, kind, status, rto_seconds, rpo_seconds, details FROM recovery_tests ORDER BY id"
        ).fetchall()


def test_quarterly_full_system_drill_then_dr_site_activation(
    pg, e2e, boto_client, slack_api, make_db, tmp_path, monkeypatch, short_tmp
):
    root = short_tmp("dr-") / "dr"
    app_dsn, store_dsn = _seed(make_db), make_db("store")
    s3, west = boto_client("s3"), boto_client("s3", "us-west-2")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="sanvi-machinery-files")
    for i in range(3):
        s3.put_object(Bucket="sanvi-machinery-files", Key=f"uploads/manual-{i}.pdf", Body=b"%PDF-1.7" * 500)
    s3.create_bucket(Bucket="sanvi-config")
    s3.put_bucket_versioning(Bucket="sanvi-config", VersioningConfiguration={"Status": "Enabled"})
    # two versions of the configuration backup's snapshot: the newest is applied
    write_snapshot(
        s3, "sanvi-config", "configuration/", make_snapshot({"ssm": {}}, "2027-04-05T00:00:00Z"), "c1"
    )
    write_snapshot(
        s3, "sanvi-config", "configuration/", make_snapshot(SNAPSHOT, "2027-04-06T00:00:00Z"), "c2"
    )
    snapshot_body = s3.get_object(Bucket="sanvi-config", Key="configuration/snapshot.json")["Body"].read()
    demo = make_server(tmp_path / "slack.jsonl", "xoxb-test", environments=("production", "dr"))
    loc = {"LocationConstraint": "us-west-2"}
    for bucket in ("sanvi-dr-backups", "sanvi-dr-files", "sanvi-dr-config"):
        west.create_bucket(Bucket=bucket, CreateBucketConfiguration=loc)
    west.put_bucket_versioning(Bucket="sanvi-dr-config", VersioningConfiguration={"Status": "Enabled"})
    _env(
        monkeypatch,
        tmp_path,
        e2e,
        app_dsn,
        store_dsn,
        {
            "tasks.dr_testing.settings": {
                "scratch_dir": str(root),
                "files_max_objects": 1,  # a sample: the whole bucket's time is extrapolated
                "full_system": {
                    "app_command": [sys.executable, str(REPO / "devstack/demo_app.py")],
                    "app_parameters_path": "/sanvi/production/app/",
                    "cache_query": "SELECT 'machine:' || id, name FROM machines",
                    "app_start_timeout_seconds": 30,
                },
                "dr_site": {"url": f"{demo.url}/dr/api/health", "point_url": f"{demo.url}/_demo/upstream"},
                "replica_buckets": {
                    "backups": "sanvi-dr-backups",
                    "files": "sanvi-dr-files",
                    "configuration": "sanvi-dr-config",
                },
            },
            "configuration_backups": {"bucket": "sanvi-config"},
        },
    )
    dr = load_dag("database_backup_full").test(logical_date=datetime(2027, 4, 6, 1, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)

    dag = load_dag("dr_testing")
    dr = dag.test(logical_date=datetime(2027, 4, 6, 11, 0, tzinfo=UTC))  # April: quarterly month
    drill_succeeded(dr)
    stored = _stored(store_dsn, dr.run_id)
    assert stored["dr.scope"][1].startswith("scope full system (logical date 2027-04-06")
    for name in (
        "dr.rto",
        "dr.database.amcheck",
        "dr.database.row_counts",
        "dr.database.smoke",
        "dr.database.rpo",
        "dr.file_storage",
        "dr.configuration",
        "dr.configuration_snapshot",
        "dr.cache",
        "dr.application",
    ):
        assert stored[name][0] == "ok", (name, stored[name][1])
    # the newest snapshot applied; the cache warmed from the restored rows; the application's
    # health answered by the demo app on the restored database (200 machines) and scratch cache
    assert "s3://sanvi-config/configuration/snapshot.json" in stored["dr.configuration_snapshot"][1]
    assert stored["dr.configuration_snapshot"][2]["taken_at"] == "2027-04-06T00:00:00Z"
    assert stored["dr.configuration_snapshot"][2]["settings"] == ["FEATURE_X", "LOG_LEVEL"]
    assert stored["dr.cache"][2]["keys"] == 200
    health = stored["dr.application"][2]["health"]
    assert health["machines"] == 200 and health["checks"] == {"config": "ok", "database": "ok", "cache": "ok"}
    rto = stored["dr.rto"][2]
    assert set(rto["components"]) >= {"application", "cache", "configuration_snapshot", "file_storage"}
    with psycopg.connect(app_dsn) as conn:
        source = hashlib.sha256(repr(conn.execute(SMOKE).fetchall()).encode()).hexdigest()
    assert stored["dr.database.smoke"][2]["answer_sha256"] == {"machines": source}
    assert "1 of 3 objects" in stored["dr.file_storage"][1] and stored["dr.file_storage"][2]["sampled"]
    cfg_hash = hashlib.sha256(snapshot_body).hexdigest()
    assert stored["dr.configuration"][2]["sha256"] == {"configuration/snapshot.json": cfg_hash}
    assert "first recorded" in stored["dr.trend"][1]
    # issue 18: the database recovery's phases, and the RTO forecast in the drill report (no size
    # samples in this store yet: a warning saying so, not green)
    assert stored["dr.database.phases"][1].startswith("phases: prepare ")
    assert "download" in stored["dr.database.phases"][1] and "amcheck" in stored["dr.database.phases"][1]
    assert stored["rto_forecast"][0] == "warning" and "not enough samples" in stored["rto_forecast"][1]
    rows = _recovery_rows(store_dsn)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("dr_testing", "dr_database", "ok"),
        ("dr_testing", "dr_full_system", "ok"),
    ]
    assert rows[1][3] >= rows[0][3] > 0 and set(rows[1][5]["components"]) == {
        "database",
        "file_storage",
        "configuration",
        "configuration_snapshot",
        "cache",
        "application",
    }
    assert [p["name"] for p in rows[0][5]["phases"]][:3] == ["prepare", "download", "extract"]
    assert rows[1][5]["components"]["database"]["phases"] == rows[0][5]["phases"]
    assert list(root.iterdir()) == []

    # DR-site activation by hand, as a dry run (trigger-form Params): scope, region check, pick.
    # (The real DR-site restore is tests/tasks/dr_testing/test_dr.py's.)
    for key in (o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]):
        west.copy_object(Bucket="sanvi-dr-backups", Key=key, CopySource={"Bucket": BUCKET, "Key": key})
    west.copy_object(
        Bucket="sanvi-dr-files",
        Key="uploads/manual-0.pdf",
        CopySource={"Bucket": "sanvi-machinery-files", "Key": "uploads/manual-0.pdf"},
    )
    west.copy_object(
        Bucket="sanvi-dr-config",
        Key="configuration/snapshot.json",
        CopySource={"Bucket": "sanvi-config", "Key": "configuration/snapshot.json"},
    )
    dr2 = dag.test(
        logical_date=datetime(2027, 5, 4, 11, 0, tzinfo=UTC),
        run_conf={"scope": "dr_site_activation", "dry_run": True},
    )
    drill_succeeded(dr2)
    stored2 = _stored(store_dsn, dr2.run_id)
    assert "chosen in the trigger form" in stored2["dr.scope"][1] and "us-west-2" in stored2["dr.scope"][1]
    assert stored2["dr.site.region"][0] == "ok", stored2["dr.site.region"]
    assert stored2["dr.database.run"][0] == "skipped" and "would restore" in stored2["dr.database.run"][1]
    assert len(_recovery_rows(store_dsn)) == 2, "a dry run records nothing"

    # The DR-site activation for real (the local stack: no approval): the DR region's copies
    # recovered, the DR site pointed at the recovered instance, probed, then failed back.
    dr3 = load_dag("dr_testing").test(  # July: semi-annual
        logical_date=datetime(2027, 7, 6, 11, 0, tzinfo=UTC), run_conf={"scope": "auto", "dry_run": False}
    )
    drill_succeeded(dr3)
    stored3 = _stored(store_dsn, dr3.run_id)
    assert stored3["dr.scope"][1].startswith("scope dr site activation")
    for name in (
        "dr.rto",
        "dr.site.region",
        "dr.database.smoke",
        "dr.cache",
        "dr.application",
        "dr.site.probe",
    ):
        assert stored3[name][0] == "ok", (name, stored3[name][1])
    assert "served_by" not in json.dumps(stored3["dr.application"][2])
    assert demo.app.upstream("dr") is None, "failed back after the drill"
    assert [r[1] for r in _recovery_rows(store_dsn)][-1] == "dr_site_activation"
    assert list(root.iterdir()) == []
    demo.stop()

    assert any("dr.rto" in json.dumps(m) or "recovered in" in json.dumps(m) for m in slack_api.messages)
    for msg in slack_api.messages:
        assert pg.password not in json.dumps(msg)


def test_rds_mode_restore_test_and_dr_drill(pg, e2e, boto_client, slack_api, make_db, tmp_path, monkeypatch):
    app_dsn, store_dsn = _seed(make_db), make_db("store")
    restored = _seed(make_db)  # where SQL validation lands: the scratch_db host/port override
    # The application database is the production RDS instance: a server other than the one the
    # override reaches (the same host and port, whatever the database, is refused as production).
    app_dsn = app_dsn.replace(f"port={pg.port}", f"port={pg.port + 1}")
    rds = boto_client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="sanvi-production-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        DBName="sanvi",
        MasterUsername="sanvi",
        MasterUserPassword="never-used-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=30,
    )
    _env(
        monkeypatch,
        tmp_path,
        e2e,
        app_dsn,
        store_dsn,
        {
            "database_backups": {"mode": "rds"},
            "tasks.dr_testing.settings": {"dr_region": "us-east-1"},
            "tasks.backup_testing.settings.rds_restore": {"poll_seconds": 1},
        },
    )
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_SCRATCH_DB", pg_conn(restored))

    dr = load_dag("backup_testing").test(logical_date=datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    stored = _stored(store_dsn, dr.run_id)
    for name in ("restore.duration", "restore.smoke", "restore.rows", "restore.rpo", "restore.cleanup"):
        assert stored[name][0] == "ok", (name, stored[name][1])

    dr = load_dag("dr_testing").test(logical_date=datetime(2026, 12, 1, 11, 0, tzinfo=UTC))
    stored = _stored(store_dsn, dr.run_id)
    assert stored["dr.scope"][1].startswith("scope database")
    for name in ("dr.rto", "dr.database.smoke", "dr.database.rpo", "dr.database.cleanup"):
        assert stored[name][0] == "ok", (name, stored[name][1])
    assert [r[1] for r in _recovery_rows(store_dsn)] == ["restore_test_rds", "dr_database"]
    assert {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]} == {
        "sanvi-production-db"
    }
    for msg in slack_api.messages:
        assert pg.password not in json.dumps(msg)
