"""Backups against real servers: PostgreSQL 18 (pg_basebackup) and moto (S3 + KMS) on 127.0.0.1."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import pg_bin
from sanvi_ops.core import backups
from tests.fixtures.postgres import own_cluster


@pytest.fixture(scope="module")
def pg():
    """This module's own cluster (see tests.fixtures.postgres.own_cluster): a physical backup
    copies the whole cluster, which must not carry the other tests' databases."""
    yield from own_cluster()


pytestmark = pytest.mark.integration

BUCKET = "sanvi-backups-test"
PREFIX = "postgres/"
ALIAS = "alias/sanvi-backups-test"


@pytest.fixture
def seeded(make_db):
    dsn = make_db("app")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 500) g")
        conn.execute('CREATE SCHEMA "Odd Schema"')
        conn.execute('CREATE TABLE "Odd Schema"."Mixed Case" (x int)')
        conn.execute('INSERT INTO "Odd Schema"."Mixed Case" VALUES (1), (2)')
    return dsn


@pytest.fixture
def s3(boto_client):
    client = boto_client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


def _run(s3, kms, dsn, kind, **kw):
    return backups.run_backup(
        s3,
        kms,
        target=backups.PgTarget.from_dsn(dsn),
        bucket=BUCKET,
        prefix=PREFIX,
        kms_alias=ALIAS,
        kind=kind,
        part_size_mb=5,
        **kw,
    )


def _extract(s3, key: str, into: Path) -> None:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(body)) as tf:
        tf.extractall(into, filter="tar")


def test_full_backup_streams_to_s3_encrypted_with_manifest_last(s3, boto_client, seeded, tmp_path):
    kms = boto_client("kms")
    calls: list[tuple[str, str]] = []
    s3.meta.events.register(
        "provide-client-params.s3.*",
        lambda params, model, **_: calls.append((model.name, params.get("Key", ""))),
    )
    manifest, result = _run(s3, kms, seeded, "full")
    assert result.status == "ok" and result.check == "backup.full"
    writes = [(op, key.rsplit("/", 1)[-1]) for op, key in calls if op != "HeadObject"]
    assert writes[-1] == ("PutObject", "manifest.json"), writes  # written last
    assert ("CompleteMultipartUpload", "base.tar") in writes and len(
        [w for w in writes if w[0] == "UploadPart"]
    ) >= 2, "streamed in several parts"

    bid = manifest["backup_id"]
    assert bid.endswith("-full") and manifest["chain"] == [bid] and manifest["parent"] is None
    assert manifest["row_counts"]["public.orders"] == 500
    assert manifest["row_counts"]["Odd Schema.Mixed Case"] == 2
    assert manifest["server_version_num"] >= 180000 and manifest["timeline"] == 1
    assert manifest["start_lsn"] and manifest["end_lsn"]
    key_id = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyId"]
    assert manifest["encryption"] == {"sse": "aws:kms", "kms_key_id": key_id}

    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}{bid}/manifest.json")["Body"].read())
    assert stored == manifest
    for obj in manifest["objects"]:
        head = s3.head_object(Bucket=BUCKET, Key=obj["key"])
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"].endswith(key_id)
        assert head["ContentLength"] == obj["size"]
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []

    # What was uploaded is a valid PostgreSQL backup.
    _extract(s3, f"{PREFIX}{bid}/base.tar", tmp_path / "full")
    proc = subprocess.run([pg_bin("pg_verifybackup"), str(tmp_path / "full")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_incremental_chains_to_full_and_combines(s3, boto_client, seeded, tmp_path):
    kms = boto_client("kms")
    full, _ = _run(s3, kms, seeded, "full")
    with psycopg.connect(seeded, autocommit=True) as conn:
        conn.execute("INSERT INTO orders SELECT g, 'late' FROM generate_series(501, 600) g")
    incr, result = _run(s3, kms, seeded, "incremental")
    assert result.status == "ok", result.summary
    assert incr["kind"] == "incremental" and incr["parent"] == full["backup_id"]
    assert incr["chain"] == [full["backup_id"], incr["backup_id"]]
    assert incr["row_counts"]["public.orders"] == 600
    incr2, _ = _run(s3, kms, seeded, "incremental")
    assert incr2["chain"] == [*incr["chain"], incr2["backup_id"]]

    dirs = []
    for bid in incr2["chain"]:
        _extract(s3, f"{PREFIX}{bid}/base.tar", tmp_path / bid)
        dirs.append(str(tmp_path / bid))
    out = tmp_path / "combined"
    proc = subprocess.run([pg_bin("pg_combinebackup"), *dirs, "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "PG_VERSION").exists()


def test_incremental_without_a_full_takes_a_full(s3, boto_client, seeded):
    manifest, result = _run(s3, boto_client("kms"), seeded, "incremental")
    assert manifest["kind"] == "full"
    assert result.status == "warning" and "took a full" in result.summary


def test_backup_killed_halfway_leaves_no_manifest_no_upload_and_no_password(
    s3, boto_client, pg, seeded, monkeypatch
):
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def spy(args, *a, **kw):
        seen.append((list(args), dict(kw.get("env") or {})))
        return real_popen(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", spy)
    key_id = backups.ensure_kms_key(boto_client("kms"), ALIAS)
    with pytest.raises(backups.BackupFailed) as err:
        backups.take_backup(
            s3,
            target=backups.PgTarget.from_dsn(seeded),
            bucket=BUCKET,
            prefix=PREFIX,
            kms_key_id=key_id,
            kind="full",
            timeout_s=0.2,  # pg_basebackup is killed mid-stream
        )
    assert "exited -9" in str(err.value)
    assert pg.password not in str(err.value)
    ((args, env),) = seen
    assert pg.password not in " ".join(args), "the password must never be on a command line"
    assert "PGPASSWORD" not in env and pg.password not in json.dumps(env)
    assert not Path(env["PGPASSFILE"]).exists(), "the passfile is removed afterwards"
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert not [k for k in keys if k.endswith("manifest.json")]


def test_wrong_password_fails_cleanly(s3, boto_client, pg, seeded):
    target = backups.PgTarget.from_dsn(seeded)
    key_id = backups.ensure_kms_key(boto_client("kms"), ALIAS)
    with pytest.raises((backups.BackupFailed, psycopg.OperationalError)) as err:
        backups.take_backup(
            s3,
            target=backups.PgTarget(target.host, target.port, target.user, "wrong-secret", target.dbname),
            bucket=BUCKET,
            prefix=PREFIX,
            kms_key_id=key_id,
            kind="full",
        )
    assert "wrong-secret" not in str(err.value)


def test_kms_key_is_created_once(boto_client):
    kms = boto_client("kms")
    first = backups.ensure_kms_key(kms, ALIAS)
    assert backups.ensure_kms_key(kms, ALIAS) == first
    assert len(kms.list_keys()["Keys"]) == 1


def test_kms_alias_race_two_concurrent_creations_agree_on_one_key(boto_client):
    """The first incremental races the full on creating the alias (moto server, two clients in
    two threads): both find it missing, both create a key, one CreateAlias wins; the other sees
    AlreadyExistsException, re-reads the alias and uses the winner's key."""
    import threading

    clients = [boto_client("kms"), boto_client("kms")]
    both_missing = threading.Barrier(2, timeout=10)

    def hold(**_: object) -> None:  # a before-call handler must return None (else it is the answer)
        both_missing.wait()

    for kms in clients:  # hold each CreateAlias until both threads have created their key
        kms.meta.events.register("before-call.kms.CreateAlias", hold)
    got: list[str] = []
    errors: list[BaseException] = []

    def create(kms) -> None:
        try:
            got.append(backups.ensure_kms_key(kms, ALIAS))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(kms,)) for kms in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    kms = boto_client("kms")
    winner = kms.describe_key(KeyId=ALIAS)["KeyMetadata"]["KeyId"]
    assert got == [winner, winner]
    states = {
        k["KeyId"]: kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"]
        for k in kms.list_keys()["Keys"]
    }
    assert len(states) == 2 and states.pop(winner) == "Enabled"
    assert list(states.values()) == ["PendingDeletion"], "the loser's unused key is scheduled for deletion"


def test_lifecycle_created_when_missing_reported_when_different_never_changed(s3):
    created = backups.ensure_lifecycle(s3, BUCKET, PREFIX, glacier_after_days=7, retention_days=30)
    assert created.status == "ok" and created.details["created"]
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert len(rules) == 1 and rules[0]["Expiration"]["Days"] == 30
    assert rules[0]["Transitions"][0]["StorageClass"] == "GLACIER"
    again = backups.ensure_lifecycle(s3, BUCKET, PREFIX, glacier_after_days=7, retention_days=30)
    assert again.status == "ok" and "matches" in again.summary

    rules[0]["Expiration"] = {"Days": 10}
    s3.put_bucket_lifecycle_configuration(Bucket=BUCKET, LifecycleConfiguration={"Rules": rules})
    differs = backups.ensure_lifecycle(s3, BUCKET, PREFIX, glacier_after_days=7, retention_days=30)
    assert differs.status == "warning" and "expiration_days 10 (want 30)" in differs.summary
    assert s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"][0]["Expiration"]["Days"] == 10


def test_incremental_without_wal_summaries_for_its_parent_takes_a_full(s3, boto_client, seeded, monkeypatch):
    """A parent whose WAL summaries are gone: pg_basebackup refuses the incremental."""
    kms = boto_client("kms")
    _run(s3, kms, seeded, "full")
    real = backups.take_backup
    calls: list[str] = []

    def parent_summaries_gone(s3_, *, kind, **kw):
        calls.append(kind)
        if kind == "incremental":
            raise backups.BackupFailed(
                "pg_basebackup exited 1: pg_basebackup: error: could not initiate base backup: "
                "ERROR:  WAL summaries are required on timeline 1 from 0/2000028 to 0/4000000"
            )
        return real(s3_, kind=kind, **kw)

    monkeypatch.setattr(backups, "take_backup", parent_summaries_gone)
    manifest, result = _run(s3, kms, seeded, "incremental")
    assert calls == ["incremental", "full"]
    assert manifest["kind"] == "full" and result.status == "warning"
    assert "WAL summaries are missing" in result.summary
