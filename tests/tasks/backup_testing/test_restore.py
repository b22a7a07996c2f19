"""The restore test against real servers: PostgreSQL 18 (source + scratch cluster) and moto S3.

Backups are taken with :mod:`sanvi_ops.core.backups` (as the backup DAGs do), then restored with
:func:`sanvi_ops.tasks.backup_testing.restore.run_restore_test`. Covers the issue's restore faults: scratch server
down, restore killed halfway then rerun, a backup id that does not exist, production as the
target, a corrupted object.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from sanvi_ops.core import backups
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import restore
from tests.fixtures.postgres import own_cluster


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster): a physical backup
    copies the whole cluster, which must not carry the other tests' databases."""
    yield from own_cluster()


pytestmark = pytest.mark.integration

BUCKET = "sanvi-restore-test"
PREFIX = "postgres/"
ALIAS = "alias/sanvi-restore-test"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def seeded(make_db):
    dsn = make_db("app")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 500) g")
        conn.execute("CREATE TABLE audit_log (id int, created_at timestamptz NOT NULL DEFAULT now())")
        conn.execute(
            "INSERT INTO audit_log SELECT g, now() - interval '5 minutes' FROM generate_series(1, 20) g"
        )
        conn.execute('CREATE SCHEMA "Odd Schema"')
        conn.execute('CREATE TABLE "Odd Schema"."Mixed Case" (x int)')
        conn.execute('INSERT INTO "Odd Schema"."Mixed Case" VALUES (1), (2)')
    return dsn


@pytest.fixture
def s3(boto_client):
    client = boto_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def scratch(short_tmp):
    root = short_tmp("sr-") / "scratch"
    yield root
    restore.clean_leftovers(root)


def _backup(s3, boto_client, dsn, kind="full"):
    manifest, _ = backups.run_backup(
        s3,
        boto_client("kms"),
        target=backups.PgTarget.from_dsn(dsn),
        bucket=BUCKET,
        prefix=PREFIX,
        kms_alias=ALIAS,
        kind=kind,
        part_size_mb=5,
    )
    return manifest


def _settings(root: Path, **kw) -> restore.RestoreSettings:
    base = {
        "bucket": BUCKET,
        "prefix": PREFIX,
        "scratch_root": root,
        "smoke_queries": [
            ("orders", "SELECT count(*) FROM orders"),
            ("odd", 'SELECT * FROM "Odd Schema"."Mixed Case"'),
        ],
        "rpo_column": "public.audit_log.created_at",
    }
    base.update(kw)
    return restore.RestoreSettings(**base)


def _by_check(outcome) -> dict[str, object]:
    return {r.check: r for r in outcome.results}


def _left(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_full_backup_restores_validates_and_is_removed(s3, boto_client, pg, seeded, scratch, monkeypatch):
    manifest = _backup(s3, boto_client, seeded)
    commands: list[list[str]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen
    monkeypatch.setattr(
        subprocess, "run", lambda args, *a, **k: commands.append(list(args)) or real_run(args, *a, **k)
    )
    monkeypatch.setattr(
        subprocess, "Popen", lambda args, *a, **k: commands.append(list(args)) or real_popen(args, *a, **k)
    )

    settings = _settings(
        scratch, ranged_gets="on", download_part_mb=1, ranged_in_flight=3
    )  # many ranged GETs
    outcome = restore.run_restore_test(s3, settings, app=backups.PgTarget.from_dsn(seeded))
    checks = _by_check(outcome)
    assert outcome.backup_id == manifest["backup_id"]
    for name in (
        "restore.duration",
        "restore.amcheck",
        "restore.row_counts",
        "restore.schema",
        "restore.smoke",
        "restore.rpo",
    ):
        assert checks[name].status == Status.OK, (name, checks[name].summary)
    assert "source's catalog" in checks["restore.schema"].summary
    assert checks["restore.row_counts"].observed == 522
    assert 4 <= checks["restore.rpo"].observed < 15  # the newest audit row is ~5 min older than the backup
    assert outcome.bytes == manifest["objects"][0]["size"] and outcome.mb_per_s and outcome.rto_seconds
    assert _left(scratch) == [], "the scratch cluster is always removed"
    assert any(Path(c[0]).name == "pg_amcheck" for c in commands)
    assert not [c for c in commands if pg.password in " ".join(map(str, c))], "no password on a command line"


def test_incremental_chain_is_combined(s3, boto_client, seeded, scratch):
    _backup(s3, boto_client, seeded)
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("INSERT INTO orders SELECT g, 'late' FROM generate_series(501, 600) g")
        conn.execute("INSERT INTO audit_log VALUES (21, now())")
    incr = _backup(s3, boto_client, seeded, "incremental")
    assert len(incr["chain"]) == 2

    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    checks = _by_check(outcome)
    assert outcome.backup_id == incr["backup_id"] and outcome.details["chain"] == incr["chain"]
    assert checks["restore.row_counts"].status == Status.OK, checks["restore.row_counts"].summary
    assert checks["restore.row_counts"].observed == 623
    assert checks["restore.rpo"].observed < 2
    assert "combine" in [p["name"] for p in outcome.details["phases"]]  # pg_combinebackup timed
    assert _left(scratch) == []


def test_named_backup_that_does_not_exist_is_an_error_and_runs_nothing(s3, boto_client, seeded, scratch):
    good = _backup(s3, boto_client, seeded)
    outcome = restore.run_restore_test(
        s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded), backup_id="20200101T000000Z-full"
    )
    (result,) = outcome.results
    assert result.check == "restore.run" and result.status == Status.ERROR
    assert "does not exist" in result.summary and good["backup_id"] in result.summary
    assert _left(scratch) == []


def test_dry_run_picks_and_guards_only(s3, boto_client, seeded, scratch):
    good = _backup(s3, boto_client, seeded)
    outcome = restore.run_restore_test(
        s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded), dry_run=True
    )
    (result,) = outcome.results
    assert result.status == Status.SKIPPED and good["backup_id"] in result.summary
    assert outcome.backup_id == good["backup_id"] and _left(scratch) == []


def test_production_as_target_is_refused_before_anything_runs(s3, pg, seeded, scratch, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("nothing may run once the target is production")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(restore, "list_backups", forbidden)
    app = backups.PgTarget.from_dsn(seeded)
    with pytest.raises(restore.RestoreRefused, match="application database"):
        restore.run_restore_test(s3, _settings(scratch, port=pg.port), app=app)
    with pytest.raises(restore.RestoreRefused, match="listed as production"):
        restore.run_restore_test(
            s3, _settings(scratch, port=pg.port + 1, production_targets=[f"localhost:{pg.port + 1}"]), app=app
        )
    assert not scratch.exists()


def test_corrupted_object_is_not_restored(s3, boto_client, seeded, scratch):
    manifest = _backup(s3, boto_client, seeded)
    key = manifest["objects"][0]["key"]
    body = bytearray(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    body[-2048] ^= 0xFF  # inside the end-of-archive padding: tar still reads, the checksum does not
    s3.put_object(Bucket=BUCKET, Key=key, Body=bytes(body))
    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    (result,) = outcome.results
    assert result.status == Status.CRITICAL and "corrupted or truncated" in result.summary
    assert _left(scratch) == []


def test_truncated_object_is_not_restored(s3, boto_client, seeded, scratch):
    manifest = _backup(s3, boto_client, seeded)
    key = manifest["objects"][0]["key"]
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body[: len(body) // 2])
    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    (result,) = outcome.results
    assert result.status == Status.CRITICAL and "corrupted or truncated" in result.summary
    assert _left(scratch) == []


def test_scratch_server_down_ends_in_a_clear_result_and_cleanup(
    s3, boto_client, seeded, scratch, monkeypatch
):
    _backup(s3, boto_client, seeded)
    real = restore._amcheck

    def server_dies(work, port, settings):
        pid = int((work / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        return real(work, port, settings)

    monkeypatch.setattr(restore, "_amcheck", server_dies)
    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    statuses = {r.check: r.status for r in outcome.results}
    assert (
        statuses.get("restore.run") == Status.ERROR or statuses.get("restore.amcheck") == Status.CRITICAL
    ), statuses
    assert outcome.status in {Status.ERROR, Status.CRITICAL}
    assert _left(scratch) == []


def test_scratch_server_that_cannot_start_is_critical_and_removed(
    s3, boto_client, seeded, scratch, monkeypatch
):
    from sanvi_ops.core import pgserver

    _backup(s3, boto_client, seeded)

    def cannot_start(work, **kw):
        raise pgserver.ScratchStartError("postgres exited 1 at start: could not create lock file")

    monkeypatch.setattr(restore, "start_scratch", cannot_start)
    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    result = _by_check(outcome)["restore.run"]
    assert result.status == Status.CRITICAL and "could not create lock file" in result.summary
    assert _by_check(outcome)["restore.config"].status == Status.OK  # what the backup carried, still said
    assert _left(scratch) == []


def test_pgdata_guard_without_pg_read_all_settings_refuses_unless_configured(s3, pg, seeded, scratch):
    """A real role that may not read data_directory: the guard cannot decide, so it refuses,
    naming the permission; tasks.backup_testing.settings.production_data_dirs lets it decide."""
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS app_no_settings")
        conn.execute("CREATE ROLE app_no_settings LOGIN PASSWORD 'app-pw-1'")
    app = backups.PgTarget(
        host=pg.host, port=pg.port, user="app_no_settings", password="app-pw-1", dbname="postgres"
    )
    inside = pg.data_dir / "sanvi-scratch-never-created"
    for root in (inside, scratch):
        with pytest.raises(restore.RestoreRefused, match="pg_read_all_settings") as err:
            restore.run_restore_test(s3, _settings(root), app=app, dry_run=True)
        assert "tasks.backup_testing.settings.production_data_dirs" in str(
            err.value
        ) and "app-pw-1" not in str(err.value)
    listed = [str(pg.data_dir)]
    with pytest.raises(restore.RestoreRefused, match="production data directory"):
        restore.run_restore_test(s3, _settings(inside, production_data_dirs=listed), app=app, dry_run=True)
    outcome = restore.run_restore_test(
        s3, _settings(scratch, production_data_dirs=listed), app=app, dry_run=True
    )
    assert [r.check for r in outcome.results] == ["restore.run"]  # past the guards (nothing to restore)
    assert not inside.exists()


KILLED_CHILD = r"""
import sys, time, boto3
from pathlib import Path
from sanvi_ops.core import backups
from sanvi_ops.tasks.backup_testing import restore
restore._amcheck = lambda *a, **k: time.sleep(600)   # hold the run with its scratch server up
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
restore.run_restore_test(s3, restore.RestoreSettings(bucket=sys.argv[2], prefix=sys.argv[3],
                         scratch_root=Path(sys.argv[4])), app=None)
"""


def test_restore_killed_halfway_is_cleaned_by_the_next_run(s3, boto_client, aws_endpoint, seeded, scratch):
    _backup(s3, boto_client, seeded)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'include'}:{REPO}"}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, aws_endpoint, BUCKET, PREFIX, str(scratch)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        pid_files: list[Path] = []
        while time.monotonic() < deadline and not pid_files and child.poll() is None:
            pid_files = list(scratch.glob("sanvi-restore-*/data/postmaster.pid")) if scratch.exists() else []
            time.sleep(0.2)
        assert pid_files, "the child never started its scratch server"
        time.sleep(0.5)
    finally:
        child.kill()
        child.wait()
    leftover = pid_files[0].parents[1]
    postmaster = int(pid_files[0].read_text().split()[0])
    assert leftover.exists() and (leftover / restore.MARKER).exists()

    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    checks = _by_check(outcome)
    assert checks["restore.leftovers"].status == Status.WARNING
    assert leftover.name in checks["restore.leftovers"].summary
    assert checks["restore.row_counts"].status == Status.OK
    assert _left(scratch) == []
    with pytest.raises(ProcessLookupError):
        os.kill(postmaster, 0)


def test_foreign_scratch_directory_is_refused(s3, seeded, scratch):
    scratch.mkdir(parents=True)
    (scratch / "someone-elses-data").mkdir()
    with pytest.raises(restore.RestoreRefused, match="neither empty nor ours"):
        restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    assert (scratch / "someone-elses-data").exists()


def test_results_are_recorded_with_a_trend(make_db):
    from sanvi_ops.core.store import ResultStore

    store = make_db("store")
    ResultStore(store).migrate()
    for i, rto in enumerate((100.0, 90.0)):
        outcome = restore.RestoreOutcome(
            results=[],
            backup_id=f"b{i}",
            bytes=10_000_000,
            restore_seconds=5.0,
            rto_seconds=rto,
            rpo_seconds=60.0,
        )
        restore.record_test(store, "backup_testing", f"run{i}", outcome)
    restore.record_test(store, "backup_testing", "run1", outcome)  # a retry overwrites its row
    earlier = restore.recent_tests(store, 5, before_run="run2")
    assert [r["run_id"] for r in earlier] == ["run1", "run0"] and earlier[0]["mb_per_s"] == 2.0
    current = restore.RestoreOutcome(results=[], rto_seconds=120.0)
    trend = restore.trend_result(current, earlier)
    assert trend.summary.endswith("1.67 → 1.5 → 2.0") and len(trend.details["earlier"]) == 2
    with psycopg.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM recovery_tests").fetchone()[0] == 2
    json.dumps(trend.to_dict())


def test_scratch_inside_the_production_data_directory_is_refused(s3, pg, seeded):
    # The application server tells us its data directory; a scratch root inside it is refused.
    inside = pg.data_dir / "sanvi-scratch-never-created"
    with pytest.raises(restore.RestoreRefused, match="production data directory"):
        restore.run_restore_test(s3, _settings(inside), app=backups.PgTarget.from_dsn(seeded))
    assert not inside.exists()


def test_phases_are_timed_stored_and_sum_to_the_rto(s3, boto_client, seeded, scratch, make_db):
    """Issue 18: every phase of a real restore is timed, reported and kept in recovery_tests."""
    from sanvi_ops.core.store import ResultStore

    _backup(s3, boto_client, seeded)
    outcome = restore.run_restore_test(s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded))
    checks = _by_check(outcome)
    phases = outcome.details["phases"]
    names = [p["name"] for p in phases]
    assert names == [
        "prepare",
        "download",
        "extract",
        "verify",
        "sync",
        "start",
        "smoke",
        "amcheck",
        "row_counts",
        "schema",
        "rpo",
    ]
    by_name = {p["name"]: p for p in phases}
    assert by_name["download"]["bytes"] == outcome.bytes and by_name["download"]["mb_per_s"]
    # extraction runs while the bytes arrive: its phase is the tail after the last byte, no rate
    assert by_name["download"]["pipelined"] == "extract" and by_name["extract"]["mb_per_s"] is None
    assert by_name["download"]["ranged_part_bytes"] is None  # moto: one streaming GET (auto)
    assert all(p["seconds"] >= 0 for p in phases) and by_name["start"]["seconds"] > 0
    in_rto = sum(p["seconds"] for p in phases if p["in_rto"])
    assert outcome.rto_seconds and abs(in_rto - outcome.rto_seconds) <= max(0.25, 0.05 * outcome.rto_seconds)
    assert not any(by_name[n]["in_rto"] for n in ("amcheck", "row_counts", "schema", "rpo"))
    line = checks["restore.phases"].summary
    assert (
        line.startswith("phases: prepare ") and "download " in line and "MB/s" in line and "amcheck " in line
    )
    assert checks["restore.duration"].details["phases"] == checks["restore.phases"].details["phases"]

    store = make_db("store_phases")
    ResultStore(store).migrate()
    restore.record_test(store, "backup_testing", "phases1", outcome)
    (row,) = restore.recent_tests(store, 1)
    assert [p["name"] for p in row["phases"]] == names
    assert abs(sum(p["seconds"] for p in row["phases"] if p["in_rto"]) - row["rto_seconds"]) <= max(
        0.25, 0.05 * row["rto_seconds"]
    )
