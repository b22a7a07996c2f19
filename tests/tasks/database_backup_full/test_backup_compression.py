"""zstd-compressed backups against real servers: PostgreSQL 18 and moto (S3 + KMS) on 127.0.0.1.

Round trip: a compressed full + a plain incremental → the restore test (``restore.run_restore_test``,
which reads the manifest and undoes the compression while streaming) → validated. And the daily
verification on compressed objects: intact ones are decompressed and re-hashed; a corrupted
object, or one whose stored bytes are intact but do not decompress to the recorded tar, is
critical.
"""

from __future__ import annotations

import hashlib
import json

import psycopg
import pytest
import zstandard

from sanvi_ops.core import backups
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import restore
from sanvi_ops.tasks.backup_verification.verify import verify_objects
from tests.fixtures.postgres import own_cluster


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster: a physical backup copies the whole cluster."""
    yield from own_cluster()


pytestmark = pytest.mark.integration

BUCKET = "sanvi-compressed-test"
PREFIX = "postgres/"
ALIAS = "alias/sanvi-compressed-test"


@pytest.fixture
def seeded(make_db):
    dsn = make_db("app")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute(
            "INSERT INTO orders SELECT g, repeat(md5((g % 50)::text), 4) FROM generate_series(1, 3000) g"
        )
    return dsn


@pytest.fixture
def s3(boto_client):
    client = boto_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def scratch(short_tmp):
    root = short_tmp("sc-") / "scratch"
    yield root
    restore.clean_leftovers(root)


def _backup(s3, boto_client, dsn, kind="full", compression="zstd"):
    manifest, result = backups.run_backup(
        s3,
        boto_client("kms"),
        target=backups.PgTarget.from_dsn(dsn),
        bucket=BUCKET,
        prefix=PREFIX,
        kms_alias=ALIAS,
        kind=kind,
        part_size_mb=5,
        compression=compression,
    )
    return manifest, result


def _tar(manifest):
    return next(o for o in manifest["objects"] if o["name"] == "base.tar")


def test_compressed_chain_restores_and_validates(s3, boto_client, seeded, scratch):
    full, result = _backup(s3, boto_client, seeded)
    obj = _tar(full)
    assert obj["key"].endswith("/base.tar.zst") and obj["compression"] == "zstd"
    assert obj["size"] < obj["raw_size"] / 2, "a PostgreSQL cluster compresses well"
    assert full["compression"] == {"method": "zstd", "level": 3}
    assert full["raw_bytes"] > full["total_bytes"] and "zstd" in result.summary
    assert full["sizing"]["part_size"] == 5 * 1024**2 and full["sizing"]["cluster_bytes"] > 0
    stored = s3.get_object(Bucket=BUCKET, Key=obj["key"])["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == obj["sha256"], "sha256 = of what is stored"
    raw = zstandard.ZstdDecompressor().stream_reader(stored, read_across_frames=True).read()
    assert len(raw) == obj["raw_size"] and hashlib.sha256(raw).hexdigest() == obj["raw_sha256"]

    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("INSERT INTO orders SELECT g, 'late' FROM generate_series(3001, 3100) g")
    # Compression switched off between a full and its incremental: each chain member is read
    # as its own manifest says.
    incr, _ = _backup(s3, boto_client, seeded, "incremental", compression="none")
    assert _tar(incr)["compression"] == "none" and _tar(incr)["key"].endswith("/base.tar")
    assert len(incr["chain"]) == 2

    settings = restore.RestoreSettings(
        bucket=BUCKET,
        prefix=PREFIX,
        scratch_root=scratch,
        smoke_queries=[("orders", "SELECT count(*) FROM orders")],
    )
    outcome = restore.run_restore_test(s3, settings, app=backups.PgTarget.from_dsn(seeded))
    checks = {r.check: r for r in outcome.results}
    assert outcome.backup_id == incr["backup_id"]
    for name in ("restore.amcheck", "restore.row_counts", "restore.smoke"):
        assert checks[name].status == Status.OK, (name, checks[name].summary)
    assert checks["restore.row_counts"].observed == 3100


def _entry(s3, backup_id):
    return next(e for e in backups.list_backups(s3, BUCKET, PREFIX) if e.backup_id == backup_id)


def test_verification_decompresses_and_catches_a_corrupted_compressed_object(s3, boto_client, seeded):
    full, _ = _backup(s3, boto_client, seeded)
    obj = _tar(full)
    (ok,) = verify_objects(s3, BUCKET, _entry(s3, full["backup_id"]), check="backup.full.checksums")
    assert ok.status == Status.OK and "decompressed and re-hashed" in ok.summary, ok.summary
    assert ok.details["decompressed"] == ["base.tar"]

    key_id = full["encryption"]["kms_key_id"]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    stored = bytearray(s3.get_object(Bucket=BUCKET, Key=obj["key"])["Body"].read())
    stored[len(stored) // 2] ^= 0x55  # one flipped byte, same size
    s3.put_object(Bucket=BUCKET, Key=obj["key"], Body=bytes(stored), **sse)
    (bad,) = verify_objects(s3, BUCKET, _entry(s3, full["backup_id"]), check="backup.full.checksums")
    assert bad.status == Status.CRITICAL and "SHA-256 mismatch" in bad.summary, bad.summary


def test_verification_catches_stored_bytes_that_do_not_decompress_to_the_tar(s3, boto_client, seeded):
    """The stored object matches its recorded SHA-256, but not the raw tar: written damaged.
    The tampered manifest is rewritten whole, as an attacker with write access could."""
    full, _ = _backup(s3, boto_client, seeded)
    obj = _tar(full)
    key_id = full["encryption"]["kms_key_id"]
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id}
    other = zstandard.ZstdCompressor().compress(b"\0" * 10240)  # a valid zstd stream of another tar
    s3.put_object(Bucket=BUCKET, Key=obj["key"], Body=other, **sse)
    obj.update(size=len(other), sha256=hashlib.sha256(other).hexdigest())
    s3.put_object(
        Bucket=BUCKET, Key=f"{PREFIX}{full['backup_id']}/manifest.json", Body=json.dumps(full).encode(), **sse
    )
    (bad,) = verify_objects(s3, BUCKET, _entry(s3, full["backup_id"]), check="backup.full.checksums")
    assert bad.status == Status.CRITICAL and "stored bytes intact but" in bad.summary, bad.summary


def test_cluster_size_measures_every_database(pg, seeded):
    size, how = backups.cluster_size(seeded)
    with psycopg.connect(seeded) as conn:
        one = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    assert size > one and how.startswith("sum of pg_")


def test_too_large_a_database_is_refused_before_anything_starts(s3, boto_client, seeded, monkeypatch):
    monkeypatch.setattr(backups, "cluster_size", lambda dsn: (49 * 1024**4, "sum of pg_tablespace_size"))
    with pytest.raises(backups.BackupTooLarge, match="48.8 TiB"):
        _backup(s3, boto_client, seeded)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
