"""``file_storage_backup`` end to end with ``dag.test()``, then ``backup_verification`` finds the copy.

moto (S3), the results store on PostgreSQL and the Slack-compatible server on 127.0.0.1.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e


def _stored(store_dsn: str, dag_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s", (dag_id,)
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def test_daily_copy_is_taken_verified_kept_and_found_by_the_verification(e2e, boto_client):
    from sanvi_ops.core.config import load_config

    cfg = load_config()
    files = cfg.tasks.system_health_check.settings.buckets["files"]
    backups = cfg.database_backups.bucket
    env = e2e.connect(aws=True)
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=files)
    s3.create_bucket(Bucket=backups)
    for i in range(30):
        s3.put_object(Bucket=files, Key=f"drawings/{i:03d}.dwg", Body=bytes([i]) * (1000 + i))

    now = datetime.now(UTC)
    dr = load_dag("file_storage_backup").test(logical_date=now)
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    stored = _stored(env["store_dsn"], "file_storage_backup")
    assert stored["file_storage.copy"][0] == "ok" and "30 object(s)" in stored["file_storage.copy"][1]
    assert stored["file_storage.verify"][0] == "ok", stored
    assert stored["file_storage.checksums"][0] == "ok", stored
    assert stored["file_storage.retention"][0] == "ok", stored
    rules = s3.get_bucket_lifecycle_configuration(Bucket=backups)["Rules"]
    rule = next(r for r in rules if r["Filter"]["Prefix"] == "files/")
    assert rule["Expiration"]["Days"] == cfg.backups.file_storage.retention_days
    assert rule["Transitions"][0]["StorageClass"] == "GLACIER"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=backups, Prefix="files/").get("Contents", [])]
    assert f"files/{now:%Y-%m-%d}/manifest.json" in keys and len(keys) == 31

    load_dag("backup_verification").test(logical_date=now)
    verification = _stored(env["store_dsn"], "backup_verification")
    assert verification["file_storage.backup"][0] == "ok", verification
