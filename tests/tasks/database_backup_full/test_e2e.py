"""Backups end to end with ``dag.test()``: full → incremental → verification, real servers.

PostgreSQL 18 (application DB + results store), moto (S3, KMS, EC2) and the Slack-compatible
server on 127.0.0.1. Asserts the backups in S3, the Asset events, the stored results and
that no secret reached Slack.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.connections import pg_conn
from tests.fixtures.e2e import load_dag, task_states
from tests.fixtures.postgres import own_cluster


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster): a physical backup
    copies the whole cluster, which must not carry the other tests' databases."""
    yield from own_cluster()


pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
BUCKET = "sanvi-machinery-backups"


def seed_backup_targets(boto_client: Any) -> Any:
    """What the backup DAGs back up to and from in moto: the backup bucket, the versioned files
    bucket with today's copy and an AMI named as the weekly system image; returns the S3 client."""
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="sanvi-machinery-files")
    s3.put_bucket_versioning(Bucket="sanvi-machinery-files", VersioningConfiguration={"Status": "Enabled"})
    # Today's file copy (file_storage_backup's; versioning alone no longer passes the verification).
    from sanvi_ops.tasks.file_storage_backup.files import copy_bucket

    copy_bucket(s3, "sanvi-machinery-files", BUCKET, "files/", datetime.now(UTC).date())
    ec2 = boto_client("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    ec2.create_image(InstanceId=instance["InstanceId"], Name="sanvi-app-weekly")
    return s3


@pytest.fixture
def backup_env(pg, e2e, boto_client, tmp_path, monkeypatch):
    cfg = shipped_config()
    cfg["database_backups"]["part_size_mb"] = 5
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))

    env = e2e.connect(app_db=True, aws=True)
    s3 = seed_backup_targets(boto_client)

    app_dsn = env["app_dsn"]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE machines (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO machines SELECT g, 'm' || g FROM generate_series(1, 300) g")
    return {"s3": s3, "app_dsn": app_dsn, "store_dsn": env["store_dsn"], "password": pg.password}


def _stored(store_dsn: str, dag_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s", (dag_id,)
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def test_full_incremental_then_verification(backup_env, slack_api):
    from sanvi_ops.core.backups import list_backups

    s3 = backup_env["s3"]
    dr = load_dag("database_backup_full").test(logical_date=datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)

    with psycopg.connect(backup_env["app_dsn"], autocommit=True) as conn:
        conn.execute("INSERT INTO machines VALUES (301, 'new')")
    dr = load_dag("database_backup_incremental").test(logical_date=datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)

    entries = list_backups(s3, BUCKET, "postgres/")
    assert [e.kind for e in entries] == ["full", "incremental"] and all(e.complete for e in entries)
    assert entries[1].manifest["chain"] == [entries[0].backup_id, entries[1].backup_id]
    assert entries[1].manifest["row_counts"]["public.machines"] == 301
    # The shipped config compresses: base.tar.zst, raw and stored checksums in the manifest.
    tar = next(o for o in entries[0].manifest["objects"] if o["name"] == "base.tar")
    assert tar["key"].endswith("base.tar.zst") and tar["compression"] == "zstd"
    assert tar["size"] < tar["raw_size"] and entries[0].manifest["compression"]["method"] == "zstd"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert rules[0]["Expiration"]["Days"] == 30

    # Both runs emitted their Asset with the backup id.
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = {e.asset.name: e.extra for e in session.query(AssetEvent).all()}
    assert events["sanvi_db_backup_full"]["backup_id"] == entries[0].backup_id
    assert events["sanvi_db_backup_incremental"]["chain"] == entries[1].manifest["chain"]

    dr = load_dag("backup_verification").test(logical_date=datetime.now(UTC))
    stored = _stored(backup_env["store_dsn"], "backup_verification")
    assert stored["backup.full.exists"][0] == "ok", stored
    assert stored["backup.full.checksums"][0] == "ok", stored
    # A fresh bucket has only minutes of history: a chain younger than 24 h, said as a warning.
    assert stored["backup.chain"][0] == "warning", stored
    assert stored["file_storage.backup"][0] == "ok" and stored["system_images.backup"][0] == "ok"
    assert stored["backup.retention"][0] == "ok"

    for msg in slack_api.messages:
        assert backup_env["password"] not in json.dumps(msg)


def test_backup_failure_turns_the_run_red_and_writes_nothing_good(backup_env, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_APP_DB",
        pg_conn(backup_env["app_dsn"].replace(f"password={backup_env['password']}", "password=wrong")),
    )
    dr = load_dag("database_backup_full").test(logical_date=datetime(2026, 11, 28, 1, 0, tzinfo=UTC))
    states = task_states(dr)
    assert states["take_full_backup"] == "failed", states
    keys = [o["Key"] for o in backup_env["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    # no database backup's manifest (the fixture's file-storage copy under files/ has its own)
    assert not [k for k in keys if k.endswith("manifest.json") and not k.startswith("files/")]
    stored = _stored(backup_env["store_dsn"], "database_backup_full")
    assert stored["take_full_backup.task"][0] == "error", stored


def test_rds_mode_runs_the_guides_backup_row(backup_env, boto_client, tmp_path, monkeypatch):
    """``database_backups.mode: rds`` against the moto server (describe/modify_db_instance,
    create/describe_db_snapshots, start/describe_export_tasks): the full sets the retention
    (Param + config flag), takes the daily snapshot and keeps the export prefix's lifecycle;
    the incremental checks the restorable time; the verification reads the same facts."""
    cfg = shipped_config()
    cfg["database_backups"]["mode"] = "rds"
    cfg["database_backups"]["rds"].update(
        allow_set_retention=True, export_iam_role_arn="arn:aws:iam::123456789012:role/sanvi-rds-export"
    )
    path = tmp_path / "rds.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))
    instance = cfg["tasks"]["system_health_check"]["settings"]["rds_instances"][0]
    rds = boto_client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier=instance,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
        StorageEncrypted=True,
    )

    dr = load_dag("database_backup_full").test(
        logical_date=datetime(2026, 11, 27, 1, 0, tzinfo=UTC), run_conf={"set_retention": True}
    )
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    stored = _stored(backup_env["store_dsn"], "database_backup_full")
    assert stored[f"rds_backup[{instance}].automated"][0] == "ok", stored
    assert "raised from 7 to 30 d" in stored[f"rds_backup[{instance}].automated"][1]
    assert stored[f"rds_backup[{instance}].daily_snapshot"][0] == "ok"
    assert stored["backup.retention"][0] == "ok"  # the export prefix's lifecycle rule, created
    inst = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    assert inst["BackupRetentionPeriod"] == 30
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier=instance, SnapshotType="manual")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in snaps] == [
        f"sanvi-daily-{instance}-{datetime.now(UTC):%Y-%m-%d}"
    ]
    rules = backup_env["s3"].get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert [r["Filter"]["Prefix"] for r in rules] == ["rds-exports/"]

    dr = load_dag("database_backup_incremental").test(logical_date=datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    stored = _stored(backup_env["store_dsn"], "database_backup_incremental")
    assert stored[f"rds_backup[{instance}].restorable"][0] == "ok", stored

    load_dag("backup_verification").test(logical_date=datetime.now(UTC))
    stored = _stored(backup_env["store_dsn"], "backup_verification")
    for part in ("automated", "restorable", "snapshot", "encrypted", "daily", "glacier_export"):
        assert stored[f"rds_backup[{instance}].{part}"][0] == "ok", (part, stored)
