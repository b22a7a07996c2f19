"""The DR drill against real servers: PostgreSQL 18 (source + DR cluster), moto S3 in two regions.

Backups are taken with :mod:`sanvi_ops.core.backups` (as the backup DAGs do); the drill
(:func:`sanvi_ops.tasks.dr_testing.dr.run_drill`) recovers them from S3 alone. Covers the scopes (database, full
system, DR-site activation from replica buckets in another region) and the issue's faults for
the DR path: backup missing, manifest missing, a gap in the chain, S3 answering 500 or timing
out, the DR server down, a drill killed halfway then rerun, a backup id that does not exist,
production (or a foreign directory) as the DR target.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import psycopg
import psycopg.sql
import pytest
from botocore.config import Config

from sanvi_ops.core import backups
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import restore
from sanvi_ops.tasks.dr_testing import dr
from tests.fixtures.postgres import own_cluster


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster)."""
    yield from own_cluster()


pytestmark = pytest.mark.integration

BUCKET = "sanvi-dr-backups"
PREFIX = "postgres/"
ALIAS = "alias/sanvi-dr-test"
REPO = Path(__file__).resolve().parents[3]
DR_REGION = "us-west-2"


@pytest.fixture
def seeded(make_db, pg):
    dsn = make_db("app")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 400) g")
        conn.execute("CREATE TABLE audit_log (id int, created_at timestamptz NOT NULL DEFAULT now())")
        conn.execute("INSERT INTO audit_log SELECT g, now() FROM generate_series(1, 10) g")
    yield dsn
    # Keep the module's cluster small: every backup copies all of it.
    with psycopg.connect(pg.dsn("postgres"), autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(
                psycopg.sql.Identifier(backups.PgTarget.from_dsn(dsn).dbname)
            )
        )


@pytest.fixture
def s3(boto_client):
    client = boto_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def root(short_tmp):
    path = short_tmp("dr-") / "dr"
    yield path
    restore.clean_leftovers(path)


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


def _restore_settings(root: Path, bucket: str = BUCKET, **kw) -> restore.RestoreSettings:
    base = {
        "bucket": bucket,
        "prefix": PREFIX,
        "scratch_root": root,
        "smoke_queries": [("orders", "SELECT count(*) FROM orders")],
        "rpo_column": "public.audit_log.created_at",
    }
    base.update(kw)
    return restore.RestoreSettings(**base)


def _drill(s3, root, app_dsn, scope="database", backup_id=None, dry_run=False, rs=None, **kw):
    rs = rs or _restore_settings(root)
    app = backups.PgTarget.from_dsn(app_dsn) if app_dsn else None

    def database(clock):
        return dr.self_managed_database(s3, rs, app=app, backup_id=backup_id, dry_run=dry_run, clock=clock)

    settings = dr.DrSettings(scope=scope, root=root, **kw)
    return dr.run_drill(settings, database=database, s3=s3, dry_run=dry_run)


def _by_check(outcome):
    return {r.check: r for r in outcome.results}


def _left(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_scope_rule_follows_recovery_testing_cadences():
    cad = {"full_system": "quarterly", "dr_site_activation": "semi_annually"}
    months = {m: dr.scope_for(dt.date(2027, m, 5), cad) for m in range(1, 13)}
    assert [m for m, s in months.items() if s == "dr_site_activation"] == [1, 7]
    assert [m for m, s in months.items() if s == "full_system"] == [4, 10]
    assert all(s == "database" for m, s in months.items() if m not in (1, 4, 7, 10))
    assert dr.scope_for(
        dt.date(2027, 4, 1), {"full_system": "monthly", "dr_site_activation": "annually"}
    ) == ("full_system")


def test_dr_site_activation_recovers_from_the_replica_buckets_in_the_dr_region(s3, boto_client, seeded, root):
    full = _backup(s3, boto_client, seeded)
    west = boto_client("s3", DR_REGION)
    loc = {"LocationConstraint": DR_REGION}
    for bucket in ("dr-backups", "dr-files", "dr-config"):
        west.create_bucket(Bucket=bucket, CreateBucketConfiguration=loc)
    west.put_bucket_versioning(Bucket="dr-config", VersioningConfiguration={"Status": "Enabled"})
    for key in (o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]):  # cross-region copy
        west.copy_object(Bucket="dr-backups", Key=key, CopySource={"Bucket": BUCKET, "Key": key})
    west.put_object(Bucket="dr-files", Key="uploads/a.pdf", Body=b"%PDF" * 100)
    west.put_object(Bucket="dr-config", Key="app/settings.yaml", Body=b"a: 1\n")

    outcome = _drill(
        west,
        root,
        seeded,
        scope="dr_site_activation",
        rs=_restore_settings(root, bucket="dr-backups"),
        region=DR_REGION,
        backups_bucket="dr-backups",
        files_bucket="dr-files",
        configuration_bucket="dr-config",
    )
    checks = _by_check(outcome)
    assert checks["dr.site.region"].status == Status.OK
    assert checks["dr.rto"].status == Status.OK and checks["dr.database.row_counts"].status == Status.OK
    assert outcome.database.backup_id == full["backup_id"]
    assert {k for k, _ in outcome.rows()} == {"dr_database", "dr_site_activation"}

    # A "replica" in the primary's region is not a DR site.
    s3.create_bucket(Bucket="not-dr-files")
    s3.put_object(Bucket="not-dr-files", Key="x", Body=b"x")
    assert "not in the DR region" in dr.check_bucket_region(west, "not-dr-files", DR_REGION)
    assert _left(root) == []


def test_backup_missing_is_critical_and_creates_nothing(s3, seeded, root):
    outcome = _drill(s3, root, seeded)
    (result,) = outcome.results
    assert result.check == "dr.database.run" and result.status == Status.CRITICAL
    assert "no restorable backup" in result.summary and outcome.rows() == []
    assert _left(root) == []


def test_manifest_missing_and_gap_in_chain(s3, boto_client, seeded, root):
    full = _backup(s3, boto_client, seeded)
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("INSERT INTO orders VALUES (1001, 'after full')")
    incr1 = _backup(s3, boto_client, seeded, "incremental")
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("INSERT INTO orders VALUES (1002, 'after incr1')")
    incr2 = _backup(s3, boto_client, seeded, "incremental")
    assert incr2["chain"] == [full["backup_id"], incr1["backup_id"], incr2["backup_id"]]
    # incr1 half-written (its manifest never landed): incr2's chain has a gap.
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}{incr1['backup_id']}/manifest.json")

    outcome = _drill(s3, root, seeded)
    checks = _by_check(outcome)
    chain = checks["dr.database.chain"]
    assert chain.status == Status.CRITICAL and "gap in its chain" in chain.summary
    assert incr1["backup_id"] in chain.summary and f"recovering from {full['backup_id']}" in chain.summary
    assert outcome.database.backup_id == full["backup_id"]
    assert (
        checks["dr.database.row_counts"].status == Status.OK
        and checks["dr.database.row_counts"].observed == 410
    )
    assert _left(root) == []

    # With only the full and a half-written newer full, the good one is used and the other named.
    s3.delete_object(Bucket=BUCKET, Key=f"{PREFIX}{incr2['backup_id']}/manifest.json")
    entries = backups.list_backups(s3, BUCKET, PREFIX)
    entry, problems = dr.pick_intact_chain(entries)
    assert entry.backup_id == full["backup_id"] and len(problems) == 2
    assert all("half-written" in p for p in problems)


def test_named_backup_that_does_not_exist_is_an_error(s3, boto_client, seeded, root):
    good = _backup(s3, boto_client, seeded)
    outcome = _drill(s3, root, seeded, backup_id="20200101T000000Z-full")
    (result,) = outcome.results
    assert result.check == "dr.database.run" and result.status == Status.ERROR
    assert "does not exist" in result.summary and good["backup_id"] in result.summary
    assert _left(root) == []


class _Always500(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = (
            b"<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"
        )
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def broken_s3(aws_endpoint):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Always500)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{server.server_port}",
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )
    server.shutdown()


@pytest.fixture
def silent_s3(aws_endpoint):
    """A server that accepts connections and never answers: S3 timing out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
        region_name="us-east-1",
        config=Config(connect_timeout=1, read_timeout=1, retries={"max_attempts": 1}),
    )
    sock.close()


@pytest.mark.parametrize("client", ["broken_s3", "silent_s3"])
def test_s3_500_or_timeout_ends_in_clear_results(client, request, seeded, root):
    s3 = request.getfixturevalue(client)
    outcome = _drill(
        s3, root, seeded, scope="full_system", files_bucket="files", configuration_bucket="config"
    )
    checks = _by_check(outcome)
    assert (
        checks["dr.database.run"].status == Status.ERROR
        and "listing s3://" in checks["dr.database.run"].summary
    )
    assert (
        checks["dr.file_storage"].status == Status.CRITICAL
        and "s3://files" in checks["dr.file_storage"].summary
    )
    assert checks["dr.configuration"].status == Status.CRITICAL
    assert "dr.rto" not in checks and outcome.rows() == [] and _left(root) == []


def test_dr_server_down_ends_in_a_clear_result_and_cleanup(s3, boto_client, seeded, root, monkeypatch):
    _backup(s3, boto_client, seeded)
    real = restore._amcheck

    def server_dies(work, port, settings):
        pid = int((work / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        return real(work, port, settings)

    monkeypatch.setattr(restore, "_amcheck", server_dies)
    outcome = _drill(s3, root, seeded)
    statuses = {r.check: r.status for r in outcome.results}
    assert (
        statuses.get("dr.database.run") == Status.ERROR
        or statuses.get("dr.database.amcheck") == Status.CRITICAL
    ), statuses
    assert outcome.status in {Status.ERROR, Status.CRITICAL}
    assert _left(root) == []


KILLED_CHILD = r"""
import sys, time, boto3
from pathlib import Path
from sanvi_ops.tasks.dr_testing import dr
from sanvi_ops.tasks.backup_testing import restore
restore._amcheck = lambda *a, **k: time.sleep(600)   # hold the drill with its DR server up
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
rs = restore.RestoreSettings(bucket=sys.argv[2], prefix=sys.argv[3], scratch_root=Path(sys.argv[4]))
dr.run_drill(dr.DrSettings(scope="database", root=Path(sys.argv[4])),
             database=lambda clock: dr.self_managed_database(s3, rs, app=None, backup_id=None,
                                                             dry_run=False, clock=clock), s3=s3)
"""


def test_drill_killed_halfway_is_cleaned_by_the_next_run(s3, boto_client, aws_endpoint, seeded, root):
    _backup(s3, boto_client, seeded)
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'include'}:{REPO}"}
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, aws_endpoint, BUCKET, PREFIX, str(root)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        pid_files: list[Path] = []
        while time.monotonic() < deadline and not pid_files and child.poll() is None:
            pid_files = list(root.glob("sanvi-restore-*/data/postmaster.pid")) if root.exists() else []
            time.sleep(0.2)
        assert pid_files, "the child never started its DR server"
        time.sleep(0.5)
    finally:
        child.kill()
        child.wait()
    leftover = pid_files[0].parents[1]
    postmaster = int(pid_files[0].read_text().split()[0])

    outcome = _drill(s3, root, seeded)
    checks = _by_check(outcome)
    assert (
        checks["dr.database.leftovers"].status == Status.WARNING
        and leftover.name in checks["dr.database.leftovers"].summary
    )
    assert checks["dr.rto"].status == Status.OK and checks["dr.database.row_counts"].status == Status.OK
    assert _left(root) == []
    with pytest.raises(ProcessLookupError):
        os.kill(postmaster, 0)


def test_production_as_dr_target_is_refused_before_anything_runs(s3, pg, seeded, root, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("nothing may run once the target is production")

    monkeypatch.setattr(subprocess, "run", forbidden)
    monkeypatch.setattr(subprocess, "Popen", forbidden)
    monkeypatch.setattr(dr, "list_backups", forbidden)
    monkeypatch.setattr(restore, "list_backups", forbidden)
    with pytest.raises(restore.RestoreRefused, match="application database"):
        _drill(s3, root, seeded, rs=_restore_settings(root, port=pg.port))
    with pytest.raises(restore.RestoreRefused, match="listed as production"):
        _drill(
            s3,
            root,
            seeded,
            rs=_restore_settings(root, port=pg.port + 1, production_targets=[f"localhost:{pg.port + 1}"]),
        )
    assert not root.exists()


def test_foreign_dr_directory_is_refused(s3, boto_client, seeded, root):
    _backup(s3, boto_client, seeded)
    root.mkdir(parents=True)
    (root / "someone-elses-data").mkdir()
    with pytest.raises(restore.RestoreRefused, match="neither empty nor ours"):
        _drill(s3, root, seeded)
    assert _left(root) == ["someone-elses-data"]


def test_dr_directory_inside_the_production_data_directory_is_refused(s3, pg, seeded):
    inside = pg.data_dir / "sanvi-dr-never-created"
    with pytest.raises(restore.RestoreRefused, match="production data directory"):
        _drill(s3, inside, seeded, rs=_restore_settings(inside))
    assert not inside.exists()
