# ruff: noqa: F811 - the fixtures are imported from tests.tasks.backup_testing.test_restore
"""A tampered backup must not commandeer the restore test (issue 10, item 1).

Real servers: PostgreSQL 18 (the source cluster and the scratch server) and moto S3. Each test
takes a genuine backup with :mod:`sanvi_ops.core.backups`, rewrites its ``base.tar`` the way an
attacker who can write to the bucket (or run ``ALTER SYSTEM`` on production) would, and
re-uploads it under a new backup id with a matching ``manifest.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import psycopg
import pytest

from sanvi_ops.core import backups, pgserver
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import restore
from tests.tasks.backup_testing.test_restore import (  # noqa: F401 - fixtures
    BUCKET,
    PREFIX,
    _backup,
    _by_check,
    _left,
    _settings,
    pg,
    s3,
    scratch,
    seeded,
)

pytestmark = pytest.mark.integration

SECRETS = {
    "AIRFLOW_CONN_SANVI_OPS_STORE": "postgresql://store:store-secret@db/store",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-never-leaked",
    "SLACK_BOT_TOKEN": "xoxb-never-leaked",
    "PGPASSWORD": "pg-secret-never-leaked",
}


@pytest.fixture
def drop(short_tmp) -> Path:
    """A directory the scratch server's user may write to: where a hostile command would write."""
    path = short_tmp("sr-drop-")
    path.chmod(0o777)
    return path


_GENUINE: dict[str, object] = {}


@pytest.fixture
def genuine(s3, boto_client, pg, seeded) -> dict:
    """A genuine backup (its manifest), taken once per module and put back into each test's clean
    moto. Its cluster has a superuser ``restorer`` whose catalog entry carries ``ALTER ROLE
    restorer SET session_preload_libraries`` naming a file that is not a library."""
    if not _GENUINE:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS restorer")
            conn.execute("CREATE ROLE restorer SUPERUSER LOGIN")
            conn.execute(f"ALTER ROLE restorer SET session_preload_libraries = '{EVIL_ROLE_LIB}'")
        try:
            manifest = _backup(s3, boto_client, seeded)
        finally:
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                conn.execute("DROP ROLE restorer")
        _GENUINE["manifest"] = manifest
        _GENUINE["objects"] = {
            o["key"]: s3.get_object(Bucket=BUCKET, Key=o["key"])["Body"].read() for o in manifest["objects"]
        }
        return manifest
    manifest = _GENUINE["manifest"]
    for key, body in _GENUINE["objects"].items():  # type: ignore[attr-defined]
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    import json

    key = f"{PREFIX}{manifest['backup_id']}/manifest.json"  # type: ignore[index]
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(manifest).encode())
    return manifest  # type: ignore[return-value]


EVIL_ROLE_LIB = "/tmp/sanvi-test-not-a-library.so"


def _retampered(s3, manifest: dict, changes: dict[str, bytes], *, append: bool = True) -> str:
    """Re-upload ``manifest``'s base.tar with ``changes`` (member name → bytes appended or the new
    content) under a new backup id, with a manifest.json that matches; returns the new id."""
    body = s3.get_object(Bucket=BUCKET, Key=manifest["objects"][0]["key"])["Body"].read()
    out = io.BytesIO()
    pending = dict(changes)
    with (
        tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tin,
        tarfile.open(fileobj=out, mode="w") as tout,
    ):
        for member in tin.getmembers():
            data = tin.extractfile(member).read() if member.isfile() else None
            if member.name in pending:
                extra = pending.pop(member.name)
                data = (data or b"") + extra if append else extra
                member.size = len(data)
            tout.addfile(member, io.BytesIO(data) if data is not None else None)
        for name, data in pending.items():  # files the genuine backup did not have
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tout.addfile(info, io.BytesIO(data))
    tar = out.getvalue()
    new_id = backups.backup_id_for(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), "full")
    base = f"{PREFIX}{new_id}/"
    pg_manifest = s3.get_object(Bucket=BUCKET, Key=manifest["objects"][1]["key"])["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=base + "base.tar", Body=tar)
    s3.put_object(Bucket=BUCKET, Key=base + "backup_manifest", Body=pg_manifest)
    forged = {
        **manifest,
        "backup_id": new_id,
        "chain": [new_id],
        "objects": [
            {
                "name": "base.tar",
                "key": base + "base.tar",
                "size": len(tar),
                "sha256": hashlib.sha256(tar).hexdigest(),
            },
            {**manifest["objects"][1], "key": base + "backup_manifest"},
        ],
        "total_bytes": len(tar) + len(pg_manifest),
    }
    import json

    s3.put_object(Bucket=BUCKET, Key=base + "manifest.json", Body=json.dumps(forged).encode())
    return new_id


def _server_env_probe(seen: dict[str, str]):
    """Wrap restore._amcheck: while the scratch server runs, look at the environment its
    processes have (a program the server runs, and /proc/<postmaster>/environ)."""
    real = restore._amcheck

    def probe(work, port, settings):
        pid = int((work / "data" / "postmaster.pid").read_text().split()[0])
        seen["proc_environ"] = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        out = work / "env.txt"
        out.touch()
        os.chmod(out, 0o666)
        dsn = restore._local_dsn(work, port, "postgres", settings.superuser)
        with psycopg.connect(dsn, autocommit=True) as conn:  # what any program the server ran would see
            conn.execute(f"COPY (SELECT 1) TO PROGRAM 'env > {out}'")  # noqa: S608 - our own path
        seen["program_env"] = out.read_text()
        return real(work, port, settings)

    return probe


def test_archive_command_in_auto_conf_runs_nothing_leaks_nothing_and_is_a_finding(
    s3, genuine, seeded, scratch, drop, monkeypatch
):
    leak = drop / "leak"
    hostile = f"\narchive_mode = on\narchive_command = 'env > {leak}'\narchive_timeout = 1\n".encode()
    bad_id = _retampered(s3, genuine, {"postgresql.auto.conf": hostile})
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    seen: dict[str, str] = {}
    monkeypatch.setattr(restore, "_amcheck", _server_env_probe(seen))

    outcome = restore.run_restore_test(
        s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded), backup_id=bad_id
    )
    checks = _by_check(outcome)
    config = checks["restore.config"]
    assert config.status == Status.CRITICAL and "archive_command" in config.summary
    assert "postgresql.auto.conf" in config.summary and str(leak) in config.summary
    assert checks["restore.verify"].status == Status.OK  # pg_verifybackup ignores postgresql.auto.conf
    assert checks["restore.row_counts"].status == Status.OK  # the restore itself still ran
    time.sleep(1.5)  # archive_timeout = 1: an armed archiver would have fired by now
    assert not leak.exists(), "the backup's archive_command ran"
    names = {line.split("=", 1)[0] for line in seen["program_env"].splitlines() if "=" in line}
    own = {"PGDATA", "PGSYSCONFDIR", "PGLOCALEDIR"}  # PGDATA is ours; postgres sets the other two itself
    assert not {n for n in names if n.startswith(("AIRFLOW", "AWS", "SLACK", "PG"))} - own, names
    for secret in SECRETS.values():
        assert secret not in seen["program_env"] and secret not in seen["proc_environ"]
    assert _left(scratch) == []


def test_the_same_tampered_data_directory_started_naively_does_run_the_command(s3, genuine, drop, short_tmp):
    """The control: the attack of the test above is real — a server that reads the backup's own
    configuration (what the restore did before) runs the command at once."""
    leak = drop / "naive-leak"
    hostile = f"\narchive_mode = on\narchive_command = 'env > {leak}'\narchive_timeout = 1\n".encode()
    bad_id = _retampered(s3, genuine, {"postgresql.auto.conf": hostile})
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{bad_id}/base.tar")["Body"].read()
    work = short_tmp("sr-naive-")
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        tf.extractall(work / "data", filter="tar")
    (work / "data" / "pg_hba.conf").write_text("local all all trust\n")
    (work / "sock").mkdir()
    pgserver._hand_over(work)
    user = pgserver._server_user()
    creds = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []} if user else {}
    (work / "data").chmod(0o700)
    proc = subprocess.Popen(
        [
            pgserver.resolve_pg_bin("postgres"),
            "-D",
            str(work / "data"),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={work / 'sock'}",
            "-c",
            "port=5999",
        ],
        env=pgserver.child_env(),
        stdout=subprocess.DEVNULL,
        stderr=(drop / "naive.log").open("w"),
        **creds,
    )
    try:
        deadline = time.monotonic() + 120  # generous: a loaded 2-core CI machine
        while time.monotonic() < deadline:  # the restore test's first work: pg_amcheck --install-missing
            with contextlib.suppress(psycopg.OperationalError):
                dsn = f"host={work / 'sock'} port=5999 dbname=postgres user=postgres"
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                    conn.execute("SELECT pg_switch_wal()")  # what archive_timeout does a second later
                break
            time.sleep(0.2)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (leak.exists() and leak.stat().st_size):
            time.sleep(0.2)
        assert leak.exists(), (drop / "naive.log").read_text()
        assert "PATH=" in leak.read_text()  # the server's environment, written by the backup's command
    finally:
        proc.terminate()
        proc.wait(30)
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def test_hostile_shared_preload_libraries_is_not_loaded_and_is_a_finding(s3, genuine, seeded, scratch, drop):
    """Libraries named by the backup's postgresql.auto.conf, and by ``ALTER ROLE ... SET
    session_preload_libraries`` stored in its catalog (which beats the command line; the
    restore's sessions override it), are never loaded."""
    evil = drop / "evil.so"
    evil.write_bytes(b"not a library: loading it would fail the start or the login")
    hostile = (
        f"\nshared_preload_libraries = '{evil}'\nsession_preload_libraries = '{evil}'\n"
        f"dynamic_library_path = '{drop}'\ninclude_if_exists = '/etc/hostile.conf'\n"
    ).encode()
    bad_id = _retampered(s3, genuine, {"postgresql.auto.conf": hostile, "standby.signal": b""})
    outcome = restore.run_restore_test(
        s3, _settings(scratch, superuser="restorer"), app=backups.PgTarget.from_dsn(seeded), backup_id=bad_id
    )
    checks = _by_check(outcome)
    config = checks["restore.config"]
    assert config.status == Status.CRITICAL and "shared_preload_libraries" in config.summary, config.summary
    found = {(f["file"], f["setting"]) for f in config.details["findings"]}
    assert {
        ("postgresql.auto.conf", "shared_preload_libraries"),
        ("postgresql.auto.conf", "session_preload_libraries"),
        ("postgresql.auto.conf", "dynamic_library_path"),
        ("postgresql.auto.conf", "include_if_exists"),
        ("standby.signal", "standby.signal"),
    } <= found
    # The server started without the library, the role logged in without it, validation ran.
    for name in ("restore.amcheck", "restore.row_counts", "restore.smoke"):
        assert name in checks and checks[name].status == Status.OK, (name, outcome.results)
    assert _left(scratch) == []


def test_server_of_another_major_version_is_a_clear_finding(s3, genuine, seeded, scratch):
    other = Path("/usr/lib/postgresql")
    majors = sorted(p for p in other.glob("*/bin") if (p / "postgres").exists()) if other.exists() else []
    majors = [p for p in majors if pgserver.binary_major(str(p)) != 18]
    if not majors:
        pytest.skip("no PostgreSQL other than 18 installed")
    outcome = restore.run_restore_test(
        s3, _settings(scratch, pg_bin_dir=str(majors[0])), app=backups.PgTarget.from_dsn(seeded)
    )
    version = _by_check(outcome)["restore.version"]
    assert version.status == Status.CRITICAL and "PostgreSQL 18" in version.summary
    assert "pg_bin_dir" in version.summary and _left(scratch) == []


def test_failed_pg_verifybackup_is_critical_and_nothing_starts(s3, genuine, seeded, scratch, monkeypatch):
    # A file PostgreSQL's backup_manifest lists, changed: sizes and checksums no longer match.
    bad_id = _retampered(s3, genuine, {"PG_VERSION": b"18\n# changed\n"}, append=False)
    started: list[object] = []
    monkeypatch.setattr(restore, "start_scratch", lambda *a, **k: started.append(a))
    outcome = restore.run_restore_test(
        s3, _settings(scratch), app=backups.PgTarget.from_dsn(seeded), backup_id=bad_id
    )
    verify = _by_check(outcome)["restore.verify"]
    assert (
        verify.status == Status.CRITICAL
        and "pg_verifybackup" in verify.summary
        and "PG_VERSION" in verify.summary
    )
    assert not started and _left(scratch) == []
