"""backup_verification's faults against moto (S3, KMS, EC2), each ending in a clear result.

Backups here are written in the exact layout of :mod:`sanvi_ops.core.backups` by a small helper (a
real pg_basebackup per test would only slow the suite; tests/tasks/database_backup_full/test_backups.py takes
real ones and tests/tasks/database_backup_full/test_e2e.py verifies them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config

from sanvi_ops.core import backups
from sanvi_ops.tasks.backup_verification.verify import (
    check_configuration,
    check_file_storage,
    check_system_images,
    verify_database_backups,
)

pytestmark = pytest.mark.integration

BUCKET = "sanvi-backups-verify"
PREFIX = "postgres/"
NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def s3(boto_client):
    client = boto_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def key_id(boto_client):
    return backups.ensure_kms_key(boto_client("kms"), "alias/sanvi-backups")


def put_backup(s3, key_id, when, kind="full", parent=None, size=4096, manifest=True, encrypt=True):
    """A backup in the real layout (random tar bytes), finished at ``when``."""
    bid = backups.backup_id_for(when - dt.timedelta(minutes=5), kind)
    base = f"{PREFIX}{bid}/"
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id} if encrypt else {}
    objects = []
    for name, body in (("base.tar", os.urandom(size)), ("backup_manifest", b'{"x": 1}')):
        s3.put_object(Bucket=BUCKET, Key=base + name, Body=body, **sse)
        objects.append(
            {"name": name, "key": base + name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        )
    chain = [*(parent["chain"] if parent else []), bid]
    doc = {
        "format": backups.FORMAT,
        "backup_id": bid,
        "kind": kind,
        "parent": parent["backup_id"] if parent else None,
        "chain": chain,
        "started_at": (when - dt.timedelta(minutes=5)).isoformat(),
        "finished_at": when.isoformat(),
        "duration_s": 300,
        "row_counts": {"public.t": 1},
        "objects": objects,
        "total_bytes": sum(o["size"] for o in objects),
        "encryption": {"sse": "aws:kms", "kms_key_id": key_id},
    }
    if manifest:
        s3.put_object(Bucket=BUCKET, Key=base + "manifest.json", Body=json.dumps(doc).encode(), **sse)
    return doc


def hourly_day(s3, key_id, *, skip_hours=(), full_size=4096):
    """Last night's full at 01:05 and incrementals every hour since yesterday 09:05."""
    start = NOW - dt.timedelta(hours=25)
    prev = put_backup(s3, key_id, start.replace(minute=5) - dt.timedelta(days=1), size=full_size)
    t = start.replace(minute=5)
    while t < NOW:
        if t.hour not in skip_hours:
            kind = "full" if t.hour == 1 else "incremental"
            prev = put_backup(
                s3,
                key_id,
                t,
                kind,
                None if kind == "full" else prev,
                size=full_size if kind == "full" else 512,
            )
        t += dt.timedelta(hours=1)
    return prev


def verify(s3, **kw):
    args = {
        "now": NOW,
        "full_max_age": dt.timedelta(hours=27),
        "incremental_every": dt.timedelta(hours=1),
        "rpo_warning_min": 75,
        "rpo_critical_min": 120,
        "shrink_warning_pct": 30,
        "sample_older": 2,
        "retention_days": 30,
        "glacier_after_days": 7,
    }
    args.update(kw)
    return {r.check: r for r in verify_database_backups(s3, BUCKET, PREFIX, **args)}


def test_healthy_day_is_ok_with_rpo(s3, key_id):
    backups.ensure_lifecycle(s3, BUCKET, PREFIX, glacier_after_days=7, retention_days=30)
    hourly_day(s3, key_id)
    results = verify(s3)
    bad = {c: (r.status, r.summary) for c, r in results.items() if r.status != "ok"}
    assert not bad, bad
    assert results["backup.chain"].observed == 60.0
    assert len([c for c in results if c.startswith("backup.sample[")]) == 2


def test_backup_missing(s3):
    results = verify(s3)
    assert results["backup.full.exists"].status == "critical"
    assert results["backup.full.exists"].severity == "P2"
    assert results["backup.chain"].status == "critical"


def test_stale_full_is_critical(s3, key_id):
    put_backup(s3, key_id, NOW - dt.timedelta(hours=40))
    results = verify(s3)
    assert results["backup.full.exists"].status == "critical"
    assert "older than the 27 h allowed" in results["backup.full.exists"].summary


def test_manifest_missing_is_half_written_never_good(s3, key_id):
    put_backup(s3, key_id, NOW - dt.timedelta(hours=9), manifest=False)
    results = verify(s3)
    assert results["backup.full.exists"].status == "critical"
    assert "half-written" in results["backup.full.exists"].summary
    assert results["backup.incomplete"].status == "warning"


def test_corrupted_object_is_a_checksum_mismatch(s3, key_id):
    doc = put_backup(s3, key_id, NOW - dt.timedelta(hours=9))
    key = doc["objects"][0]["key"]
    s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=os.urandom(doc["objects"][0]["size"]),
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=key_id,
    )
    result = verify(s3)["backup.full.checksums"]
    assert result.status == "critical" and "SHA-256 mismatch" in result.summary


def test_truncated_object(s3, key_id):
    doc = put_backup(s3, key_id, NOW - dt.timedelta(hours=9))
    key = doc["objects"][0]["key"]
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"short", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_id)
    result = verify(s3)["backup.full.checksums"]
    assert result.status == "critical" and "truncated" in result.summary


def test_unencrypted_object(s3, key_id):
    put_backup(s3, key_id, NOW - dt.timedelta(hours=9), encrypt=False)
    assert verify(s3)["backup.full.checksums.encryption"].status == "critical"


def test_gap_in_the_hourly_chain_reports_rpo(s3, key_id):
    hourly_day(s3, key_id, skip_hours=(5, 6))
    result = verify(s3)["backup.chain"]
    assert result.status == "critical" and result.observed == 180.0, result.summary
    assert "04:05–07:05" in result.summary


def test_broken_chain_parent_half_written(s3, key_id):
    full = put_backup(s3, key_id, NOW - dt.timedelta(hours=3))
    lost = put_backup(s3, key_id, NOW - dt.timedelta(hours=2), "incremental", full, manifest=False)
    lost_doc = {**lost, "chain": [full["backup_id"], lost["backup_id"]]}
    put_backup(s3, key_id, NOW - dt.timedelta(hours=1), "incremental", lost_doc)
    result = verify(s3, incremental_every=dt.timedelta(hours=1))["backup.chain"]
    assert result.status == "critical" and "broken chain" in result.summary


def test_sudden_shrink_is_a_warning(s3, key_id):
    for days in (4, 3, 2):
        put_backup(s3, key_id, NOW - dt.timedelta(days=days), size=100_000)
    put_backup(s3, key_id, NOW - dt.timedelta(hours=9), size=20_000)
    result = verify(s3, incremental_every=None)["backup.full.size"]
    assert result.status == "warning" and "shrink" in result.summary


def test_missing_lifecycle_is_reported_not_created(s3, key_id):
    put_backup(s3, key_id, NOW - dt.timedelta(hours=9))
    assert verify(s3)["backup.retention"].status == "critical"
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)


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
def broken_s3():
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
def silent_s3():
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
def test_s3_500_or_timeout_is_an_error_result(client, request):
    s3 = request.getfixturevalue(client)
    results = verify_database_backups(
        s3,
        BUCKET,
        PREFIX,
        now=NOW,
        full_max_age=dt.timedelta(hours=27),
        incremental_every=dt.timedelta(hours=1),
        rpo_warning_min=75,
        rpo_critical_min=120,
        shrink_warning_pct=30,
        sample_older=2,
        retention_days=30,
        glacier_after_days=7,
    )
    assert [(r.check, r.status) for r in results] == [("backup.list", "error")]
    assert "S3 did not answer" in results[0].summary
    assert (
        check_file_storage(s3, "files", "backups", "files/", now=NOW, within=dt.timedelta(days=1)).status
        == "error"
    )
    assert check_configuration(s3, "cfg", retention_days=90).status == "error"


def test_file_storage_needs_a_recent_finished_copy_not_versioning(boto_client):
    from sanvi_ops.tasks.file_storage_backup.files import copy_bucket, copy_prefix

    s3 = boto_client("s3")
    for b in ("files", "backups"):
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket="files", Key="a.txt", Body=b"hello")
    day = dt.timedelta(days=1)
    now = dt.datetime.now(dt.UTC)
    # Versioning alone no longer passes: only a copy does.
    s3.put_bucket_versioning(Bucket="files", VersioningConfiguration={"Status": "Enabled"})
    assert check_file_storage(s3, "files", "backups", "files/", now=now, within=day).status == "critical"
    copy_bucket(s3, "files", "backups", "files/", now.date())
    result = check_file_storage(s3, "files", "backups", "files/", now=now, within=day)
    assert result.status == "ok" and "1 object(s)" in result.summary, result
    # Too old: yesterday's copy seen two days later.
    later = now + dt.timedelta(days=2)
    assert check_file_storage(s3, "files", "backups", "files/", now=later, within=day).status == "critical"
    # An object of the manifest gone from the copy.
    s3.delete_object(Bucket="backups", Key=copy_prefix("files/", now.date()) + "a.txt")
    assert check_file_storage(s3, "files", "backups", "files/", now=now, within=day).status == "critical"
    assert check_file_storage(s3, "files", "nope", "files/", now=now, within=day).status == "critical"


def test_configuration_versioned_and_kept_90_days(boto_client):
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="cfg")
    assert check_configuration(s3, "cfg", retention_days=90).status == "critical"
    s3.put_bucket_versioning(Bucket="cfg", VersioningConfiguration={"Status": "Enabled"})
    assert check_configuration(s3, "cfg", retention_days=90).status == "ok"
    s3.put_bucket_lifecycle_configuration(
        Bucket="cfg",
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "old",
                    "Filter": {"Prefix": ""},
                    "Status": "Enabled",
                    "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                }
            ]
        },
    )
    result = check_configuration(s3, "cfg", retention_days=90)
    assert result.status == "warning" and "30 d" in result.summary


def test_configuration_backup_prefix_and_its_newest_snapshot(boto_client):
    """No bucket of its own (the default): the configuration backup's prefix, its retention rule
    (another prefix's shorter rule does not count) and its newest snapshot, intact."""
    from sanvi_ops.tasks.configuration_backup.snapshot import make_snapshot, write_snapshot

    s3 = boto_client("s3")
    s3.create_bucket(Bucket="bkp")
    s3.put_bucket_versioning(Bucket="bkp", VersioningConfiguration={"Status": "Enabled"})
    rule = {"Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}
    s3.put_bucket_lifecycle_configuration(
        Bucket="bkp",
        LifecycleConfiguration={"Rules": [{"ID": "postgres", "Filter": {"Prefix": "postgres/"}, **rule}]},
    )
    missing = check_configuration(s3, "bkp", retention_days=90, prefix="configuration/")
    assert missing.status == "warning" and "no configuration snapshot yet" in missing.summary
    write_snapshot(s3, "bkp", "configuration/", make_snapshot({"ssm": {}}, "2026-12-03T00:00:00Z"), "c1")
    ok = check_configuration(s3, "bkp", retention_days=90, prefix="configuration/")
    assert ok.status == "ok" and "intact" in ok.summary, ok.summary
    # a tampered snapshot (sources edited, digest kept) is critical
    body = s3.get_object(Bucket="bkp", Key="configuration/snapshot.json")["Body"].read()
    s3.put_object(
        Bucket="bkp", Key="configuration/snapshot.json", Body=body.replace(b'"ssm": {}', b'"ssm": {"x": 1}')
    )
    bad = check_configuration(s3, "bkp", retention_days=90, prefix="configuration/")
    assert bad.status == "critical" and "digest mismatch" in bad.summary, bad.summary


def test_system_images(boto_client):
    ec2 = boto_client("ec2")
    now = dt.datetime.now(dt.UTC)
    week = dt.timedelta(days=7)
    assert check_system_images(ec2, now=now, newest_within=week, retention_days=30)[0].status == "critical"
    image = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    ec2.create_image(InstanceId=image["InstanceId"], Name="sanvi-backend-2026-11-27")
    results = {r.check: r for r in check_system_images(ec2, now=now, newest_within=week, retention_days=30)}
    assert results["system_images.backup"].status == "ok"
    assert results["system_images.retention"].status == "ok"
    later = {
        r.check: r
        for r in check_system_images(
            ec2, now=now + dt.timedelta(days=40), newest_within=week, retention_days=30
        )
    }
    assert later["system_images.backup"].status == "critical"
    assert later["system_images.retention"].status == "warning"


def _rds_instance(rds, name, retention=30, encrypted=True):
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=retention,
        StorageEncrypted=encrypted,
    )


def test_rds_backups_healthy_and_unhealthy(boto_client):
    from sanvi_ops.tasks.backup_verification.verify import check_rds_backups

    rds = boto_client("rds")
    _rds_instance(rds, "good")
    rds.create_db_snapshot(DBInstanceIdentifier="good", DBSnapshotIdentifier="good-daily")
    _rds_instance(rds, "bad", retention=0, encrypted=False)
    rds.create_db_snapshot(DBInstanceIdentifier="bad", DBSnapshotIdentifier="bad-manual")
    now = dt.datetime.now(dt.UTC)
    results = {
        r.check: r
        for r in check_rds_backups(
            rds, ["good", "bad", "gone"], now=now, retention_days=30, restorable_within=dt.timedelta(hours=1)
        )
    }
    assert results["rds_backup[good].automated"].status == "ok"
    assert results["rds_backup[good].snapshot"].status == "ok"
    assert results["rds_backup[good].encrypted"].status == "ok"
    assert results["rds_backup[bad].automated"].status == "critical"
    assert results["rds_backup[bad].encrypted"].status == "critical"
    assert results["rds_backup[gone].automated"].status == "critical"
    later = {
        r.check: r
        for r in check_rds_backups(
            rds,
            ["good"],
            now=now + dt.timedelta(days=2),
            retention_days=30,
            restorable_within=dt.timedelta(hours=1),
        )
    }
    assert later["rds_backup[good].snapshot"].status == "critical"


def test_rds_latest_restorable_time_is_the_rpo():
    """moto sets LatestRestorableTime to "now"; a lagging one is fed through botocore's Stubber,
    shaped as in the RDS API reference (DescribeDBInstances / DescribeDBSnapshots)."""
    from botocore.stub import Stubber

    from sanvi_ops.tasks.backup_verification.verify import check_rds_backups

    rds = boto3.client("rds", region_name="us-east-1")
    now = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.UTC)
    with Stubber(rds) as stub:
        stub.add_response(
            "describe_db_instances",
            {
                "DBInstances": [
                    {
                        "DBInstanceIdentifier": "db",
                        "BackupRetentionPeriod": 30,
                        "LatestRestorableTime": now - dt.timedelta(minutes=95),
                    }
                ]
            },
        )
        stub.add_response(
            "describe_db_snapshots",
            {
                "DBSnapshots": [
                    {
                        "DBSnapshotIdentifier": "s1",
                        "SnapshotCreateTime": now - dt.timedelta(hours=3),
                        "Encrypted": True,
                    }
                ]
            },
        )
        results = {
            r.check: r
            for r in check_rds_backups(
                rds, ["db"], now=now, retention_days=30, restorable_within=dt.timedelta(hours=1)
            )
        }
    assert results["rds_backup[db].restorable"].status == "critical"
    assert results["rds_backup[db].restorable"].observed == 95.0
