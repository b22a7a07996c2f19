"""The restore guards and the pure pieces of sanvi_ops.tasks.backup_testing.restore (no servers)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sanvi_ops.core.backups import PgTarget
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import restore

APP = PgTarget(host="127.0.0.1", port=5432, user="app", password="s3cret", dbname="sanvi")


@pytest.mark.parametrize(
    ("host", "port"),
    [("127.0.0.1", 5432), ("localhost", 5432)],
)
def test_the_application_server_is_refused(host, port):
    with pytest.raises(restore.RestoreRefused, match="application database") as err:
        restore.refuse_production(scratch_host=host, scratch_port=port, dbname="sanvi", app=APP)
    assert "s3cret" not in str(err.value)


def test_same_server_with_another_database_name_is_refused():
    from sanvi_ops.tasks.backup_testing import rds_restore

    with pytest.raises(restore.RestoreRefused, match="whatever the database"):
        restore.refuse_production(scratch_host="localhost", scratch_port=5432, dbname="scratch", app=APP)
    with pytest.raises(restore.RestoreRefused, match="whatever the database") as err:
        rds_restore.refuse_sql_target("localhost", 5432, "scratch_copy", APP, [])
    assert "s3cret" not in str(err.value)
    with pytest.raises(restore.RestoreRefused, match="listed as production"):
        rds_restore.refuse_sql_target("127.0.0.1", 6001, "other", None, ["localhost:6001/orders"])
    rds_restore.refuse_sql_target("127.0.0.1", 5433, "sanvi", APP, [])


def test_local_hosts_are_recognised():
    assert restore._is_local("127.0.0.1") and restore._is_local("localhost") and restore._is_local("/run/pg")
    assert not restore._is_local("192.0.2.10")  # TEST-NET-1: never an address of ours


def test_production_data_dir_of_a_remote_server_is_not_asked():
    remote = PgTarget(host="192.0.2.10", port=5432, user="app", password="x", dbname="sanvi")
    assert restore.production_data_dir(remote) == (None, None)
    assert restore.production_data_dir(None) == (None, None)


def test_unreachable_local_server_refuses_unless_data_dirs_are_listed(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    down = PgTarget(host="127.0.0.1", port=port, user="app", password="s3cret", dbname="sanvi")
    with pytest.raises(restore.RestoreRefused, match="did not tell its data_directory") as err:
        restore.guard_scratch_root(tmp_path / "scratch", down, [])
    assert "s3cret" not in str(err.value)
    restore.guard_scratch_root(tmp_path / "scratch", down, ["/var/lib/postgresql"])
    with pytest.raises(restore.RestoreRefused, match="production data directory"):
        restore.guard_scratch_root(tmp_path / "scratch", down, [str(tmp_path)])


def test_another_port_or_a_free_port_is_allowed():
    restore.refuse_production(scratch_host="127.0.0.1", scratch_port=5433, dbname="sanvi", app=APP)
    restore.refuse_production(scratch_host="127.0.0.1", scratch_port=None, dbname="sanvi", app=APP)
    restore.refuse_production(scratch_host="127.0.0.1", scratch_port=5432, dbname="sanvi", app=None)


def test_targets_listed_as_production_are_refused():
    listed = ["127.0.0.1:6000", "127.0.0.1:6001/orders"]
    for port, db in ((6000, "anything"), (6001, "orders")):
        with pytest.raises(restore.RestoreRefused, match="listed as production"):
            restore.refuse_production(
                scratch_host="localhost", scratch_port=port, dbname=db, app=None, production_targets=listed
            )
    with pytest.raises(restore.RestoreRefused, match="listed as production"):  # same server, other database
        restore.refuse_production(
            scratch_host="127.0.0.1", scratch_port=6001, dbname="other", app=None, production_targets=listed
        )
    restore.refuse_production(
        scratch_host="127.0.0.1", scratch_port=6002, dbname="orders", app=None, production_targets=listed
    )
    with pytest.raises(ValueError, match="host:port"):
        restore.refuse_production(
            scratch_host="127.0.0.1", scratch_port=1, dbname="x", app=None, production_targets=["nohost"]
        )


def test_scratch_root_empty_missing_or_ours_is_fine(tmp_path):
    restore.check_scratch_root(tmp_path / "missing", None)
    restore.check_scratch_root(tmp_path, None)
    ours = tmp_path / f"{restore.DIR_PREFIX}abc"
    ours.mkdir()
    (ours / restore.MARKER).write_text("{}")
    restore.check_scratch_root(tmp_path, None)


def test_scratch_root_with_foreign_content_is_refused(tmp_path):
    unmarked = tmp_path / f"{restore.DIR_PREFIX}unmarked"
    unmarked.mkdir()
    (unmarked / "PG_VERSION").write_text("18\n")  # our prefix, content, no marker: not ours
    with pytest.raises(restore.RestoreRefused, match="neither empty nor ours"):
        restore.check_scratch_root(tmp_path, None)


def test_an_empty_directory_with_our_prefix_is_a_sibling_just_made(tmp_path):
    """Another component of the same drill makes its directory, then its marker (the first file it
    writes): in between, the directory is ours and empty, never a reason to refuse."""
    (tmp_path / f"{restore.DIR_PREFIX}files-x").mkdir()
    restore.check_scratch_root(tmp_path, None)


@pytest.mark.parametrize("where", ["inside", "same", "contains"])
def test_scratch_root_overlapping_the_production_data_directory_is_refused(tmp_path, where):
    prod = tmp_path / "pgdata"
    prod.mkdir()
    root = {"inside": prod / "scratch", "same": prod, "contains": tmp_path}[where]
    with pytest.raises(restore.RestoreRefused, match="production data directory"):
        restore.check_scratch_root(root, prod)


def test_clean_leftovers_removes_only_marked_dirs(tmp_path):
    ours = tmp_path / f"{restore.DIR_PREFIX}x"
    (ours / "data").mkdir(parents=True)
    (ours / restore.MARKER).write_text("{}")
    keep = tmp_path / "keep"
    keep.mkdir()
    assert restore.clean_leftovers(tmp_path) == [ours.name]
    assert not ours.exists() and keep.exists()


def test_row_count_grading():
    manifest = {"row_counts": {"public.a": 3, "public.b": 1}}
    assert restore._row_counts(manifest, {"public.a": 3, "public.b": 1}).status == Status.OK
    differ = restore._row_counts(manifest, {"public.a": 4, "public.b": 1})
    assert differ.status == Status.WARNING and differ.details["differ"]["public.a"] == {
        "manifest": 3,
        "restored": 4,
    }
    missing = restore._row_counts(manifest, {"public.a": 3})
    assert missing.status == Status.CRITICAL and missing.details["missing"] == ["public.b"]


def test_trend_without_history_and_mb_per_s():
    outcome = restore.RestoreOutcome(results=[], bytes=50_000_000, restore_seconds=10.0, rto_seconds=30.0)
    assert outcome.mb_per_s == 5.0 and outcome.status == Status.SKIPPED
    assert "first recorded" in restore.trend_result(outcome, []).summary
    row = {
        "started_at": dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        "backup_id": "b",
        "status": "ok",
        "rto_seconds": 60.0,
        "mb_per_s": 4.0,
        "rpo_seconds": None,
    }
    assert restore.trend_result(outcome, [row]).summary.endswith("1.0 → 0.5")


def test_config_section_loads_with_defaults():
    from sanvi_ops.core.config import load_config

    t = load_config().tasks.backup_testing.settings
    assert t.rto.critical == 60 and t.port is None and t.smoke_queries == []


def test_settings_from_config_default_scratch_root():
    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.backup_testing.airflow_tasks import settings_from

    s = settings_from(load_config())
    assert s.scratch_root == restore.default_scratch_root() and isinstance(s.scratch_root, Path)


class _FakeS3:
    def __init__(self, data: bytes) -> None:
        self.data, self.ranges = data, []

    def get_object(self, Bucket, Key, Range):  # noqa: N803 - boto3's names
        first, last = (int(x) for x in Range.removeprefix("bytes=").split("-"))
        self.ranges.append((first, last))
        import io

        return {"Body": io.BytesIO(self.data[first : last + 1])}


@pytest.mark.parametrize(("size", "part"), [(0, 4), (1, 4), (10, 4), (12, 4), (1000, 7)])
def test_ranged_body_reads_in_order(size, part):
    data = bytes(i % 251 for i in range(size))
    s3 = _FakeS3(data)
    body = restore._RangedBody(s3, "b", "k", size, part, ahead=3)
    out = bytearray()
    while chunk := body.read(5):
        out += chunk
    body.close()
    assert bytes(out) == data
    assert len(s3.ranges) == -(-size // part)


def test_a_live_runs_directory_is_left_alone(tmp_path):
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f"{restore.DIR_PREFIX}live"
        live.mkdir()
        marker = {"pid": child.pid, "pid_start": restore._process_start(child.pid)}
        (live / restore.MARKER).write_text(json.dumps(marker))
        reused = tmp_path / f"{restore.DIR_PREFIX}reused"  # same pid, other start time: PID reuse
        reused.mkdir()
        (reused / restore.MARKER).write_text(json.dumps({**marker, "pid_start": "1"}))
        assert restore.clean_leftovers(tmp_path) == [reused.name]
        assert live.exists()
    finally:
        child.kill()
        child.wait()
    assert restore.clean_leftovers(tmp_path) == [live.name]
