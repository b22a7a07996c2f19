"""Backup → restore test end to end with ``dag.test()``: real PostgreSQL 18, moto S3/KMS, Slack stand-in.

Takes a full and an incremental backup with the backup DAGs, runs ``backup_testing`` and asserts
the restored data equals the source (smoke-query answer digests computed on both sides), the
figures landed in ``recovery_tests`` with a trend, the scratch directory is gone and no secret
reached Slack. A second run with a ``backup_id`` Param that does not exist ends in an error result.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag, task_states
from tests.fixtures.postgres import own_cluster
from tests.tasks.database_backup_full.test_e2e import BUCKET


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster): a physical backup
    copies the whole cluster, which must not carry the other tests' databases."""
    yield from own_cluster()


pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
SMOKE = "SELECT id, name FROM machines ORDER BY id"


@pytest.fixture
def restore_env(pg, e2e, boto_client, tmp_path, monkeypatch, short_tmp):
    scratch = short_tmp("sr-") / "scratch"
    cfg = shipped_config()
    cfg["database_backups"]["part_size_mb"] = 5
    cfg["tasks"]["backup_testing"]["settings"].update(
        {
            "scratch_dir": str(scratch),
            "smoke_queries": [{"name": "machines", "sql": SMOKE}],
            "rpo_column": "public.events.created_at",
        }
    )
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    env = e2e.connect(app_db=True, aws=True)
    boto_client("s3").create_bucket(Bucket=BUCKET)

    app_dsn = env["app_dsn"]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE machines (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO machines SELECT g, 'm' || g FROM generate_series(1, 300) g")
        conn.execute("CREATE TABLE events (id int, created_at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO events VALUES (1, now())")
    return {"app_dsn": app_dsn, "store_dsn": env["store_dsn"], "password": pg.password, "scratch": scratch}


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple[str, str, dict]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary, details FROM check_results WHERE dag_id = 'backup_testing' "
            "AND run_id = %s",
            (run_id,),
        ).fetchall()
    return {name: (status, summary, details) for name, status, summary, details in rows}


def test_backup_then_restore_test_restores_the_source_data(restore_env, slack_api):
    env = restore_env
    dr = load_dag("database_backup_full").test(logical_date=datetime(2026, 11, 27, 1, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    with psycopg.connect(env["app_dsn"], autocommit=True) as conn:
        conn.execute("INSERT INTO machines VALUES (301, 'new')")
        conn.execute("INSERT INTO events VALUES (2, now())")
    dr = load_dag("database_backup_incremental").test(logical_date=datetime(2026, 11, 27, 2, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)

    dag = load_dag("backup_testing")
    dr = dag.test(logical_date=datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    assert set(task_states(dr).values()) == {"success"}, task_states(dr)
    stored = _stored(env["store_dsn"], dr.run_id)
    for name in (
        "restore.duration",
        "restore.amcheck",
        "restore.row_counts",
        "restore.schema",
        "restore.smoke",
    ):
        assert stored[name][0] == "ok", (name, stored[name][1])
    assert stored["restore.rpo"][0] == "ok" and "chain of 2" in stored["restore.duration"][1]

    # The restored data equals the source: the same answer to the same query on both sides.
    with psycopg.connect(env["app_dsn"]) as conn:
        source = hashlib.sha256(repr(conn.execute(SMOKE).fetchall()).encode()).hexdigest()
    assert stored["restore.smoke"][2]["answer_sha256"] == {"machines": source}
    assert stored["restore.row_counts"][1].startswith("all ")
    assert list(env["scratch"].iterdir()) == []

    with psycopg.connect(env["store_dsn"]) as conn:
        (row,) = conn.execute(
            "SELECT backup_id, status, bytes, mb_per_s, rto_seconds, rpo_seconds FROM recovery_tests"
        ).fetchall()
    assert row[0].endswith("-incr") and row[1] == "ok" and row[2] > 0 and row[4] > 0 and row[5] is not None

    # A second test shows the first in its trend; a Param naming a missing backup is an error.
    dr2 = dag.test(logical_date=datetime(2026, 12, 4, 3, 0, tzinfo=UTC))
    assert "over the last 2 tests" in _stored(env["store_dsn"], dr2.run_id)["restore.trend"][1]
    dr3 = dag.test(
        logical_date=datetime(2026, 12, 11, 3, 0, tzinfo=UTC), run_conf={"backup_id": "20200101T000000Z-full"}
    )
    stored3 = _stored(env["store_dsn"], dr3.run_id)
    assert stored3["restore.run"][0] == "error" and "does not exist" in stored3["restore.run"][1]

    assert any("RTO" in json.dumps(m) for m in slack_api.messages)
    # issue 18: the Slack report carries the phase line (download with its MB/s, combine, amcheck)
    phase_lines = [m for m in slack_api.messages if "phases: prepare" in json.dumps(m, ensure_ascii=False)]
    assert phase_lines and all(
        w in json.dumps(phase_lines[0], ensure_ascii=False)
        for w in ("download", "MB/s", "combine", "amcheck")
    ), slack_api.messages
    for msg in slack_api.messages:
        assert env["password"] not in json.dumps(msg)
