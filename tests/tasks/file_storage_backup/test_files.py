"""The daily file copy: sample rotation (pure), and copy + verification against the moto server."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sanvi_ops.tasks.file_storage_backup.files import (
    copy_bucket,
    copy_prefix,
    copy_result,
    day_prefix,
    sample_window,
    verify_copy,
)

DAY = dt.date(2026, 12, 3)


# ---------------------------------------------------------------------------------------------
# Sample rotation (pure)
# ---------------------------------------------------------------------------------------------


def test_sample_rotates_daily_and_covers_every_key():
    keys = [f"k{i:02d}" for i in range(10)]
    first = sample_window(keys, DAY, 3)
    assert len(first) == 3 and sample_window(keys, DAY, 3) == first  # deterministic per day
    assert sample_window(keys, DAY + dt.timedelta(days=1), 3) != first  # a different window tomorrow
    seen = set()
    for n in range(4):  # ⌈10 / 3⌉ days cover everything
        seen |= set(sample_window(keys, DAY + dt.timedelta(days=n), 3))
    assert seen == set(keys)


def test_sample_edge_cases():
    assert sample_window([], DAY, 5) == []
    assert sample_window(["a", "b"], DAY, 0) == []
    assert sample_window(["b", "a"], DAY, 5) == ["a", "b"]  # fewer keys than the sample: all of them


# ---------------------------------------------------------------------------------------------
# Against the moto server
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def buckets(boto_client):
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="app-files")
    s3.create_bucket(Bucket="backups")
    for i in range(12):
        s3.put_object(Bucket="app-files", Key=f"machines/{i}/manual.pdf", Body=f"manual {i} ".encode() * 50)
    s3.put_object(Bucket="app-files", Key="odd name/ü & ../x.txt", Body=b"hostile key")
    return s3


def _stored(s3):
    return {o["Key"] for o in s3.list_objects_v2(Bucket="backups").get("Contents", [])}


def test_copy_then_verify_is_green_and_a_rerun_copies_nothing(buckets):
    s3 = buckets
    outcome = copy_bucket(s3, "app-files", "backups", "files/", DAY, workers=4)
    assert len(outcome.copied) == 13 and not outcome.failed
    result = copy_result(outcome, "app-files", "backups", "files/")
    assert result.status == "ok" and "13 object(s)" in result.summary
    stored = _stored(s3)
    assert f"{copy_prefix('files/', DAY)}odd name/ü & ../x.txt" in stored
    manifest = json.loads(
        s3.get_object(Bucket="backups", Key=f"{day_prefix('files/', DAY)}manifest.json")["Body"].read()
    )
    assert manifest["count"] == 13 and manifest["bytes"] == outcome.bytes

    again = copy_bucket(s3, "app-files", "backups", "files/", DAY)
    assert again.copied == [] and len(again.unchanged) == 13  # incremental within the day

    results = verify_copy(
        s3, "app-files", "backups", "files/", DAY, sample_objects=13, sample_max_bytes=10**8
    )
    assert [(r.check, r.status) for r in results] == [
        ("file_storage.verify", "ok"),
        ("file_storage.checksums", "ok"),
    ], results
    assert len(results[1].details["sampled"]) == 13


def test_tampered_object_in_the_copy_is_critical(buckets):
    s3 = buckets
    copy_bucket(s3, "app-files", "backups", "files/", DAY)
    key = "machines/3/manual.pdf"
    original = s3.get_object(Bucket="app-files", Key=key)["Body"].read()
    # Same size, different bytes: only the checksum sees it.
    s3.put_object(Bucket="backups", Key=copy_prefix("files/", DAY) + key, Body=b"X" * len(original))
    results = verify_copy(
        s3, "app-files", "backups", "files/", DAY, sample_objects=13, sample_max_bytes=10**8
    )
    status = {r.check: r for r in results}
    assert status["file_storage.verify"].status == "ok"
    assert status["file_storage.checksums"].status == "critical"
    assert key in status["file_storage.checksums"].summary


def test_missing_or_truncated_object_in_the_copy_is_critical(buckets):
    s3 = buckets
    copy_bucket(s3, "app-files", "backups", "files/", DAY)
    data = copy_prefix("files/", DAY)
    s3.delete_object(Bucket="backups", Key=data + "machines/1/manual.pdf")
    s3.put_object(Bucket="backups", Key=data + "machines/2/manual.pdf", Body=b"short")
    results = verify_copy(s3, "app-files", "backups", "files/", DAY, sample_objects=0, sample_max_bytes=1)
    verify = results[0]
    assert verify.status == "critical" and verify.severity == "P2"
    assert verify.details["missing"] == ["machines/1/manual.pdf"]
    assert verify.details["wrong_size"] == ["machines/2/manual.pdf"]


def test_no_manifest_is_critical_and_source_as_destination_is_refused(buckets):
    s3 = buckets
    results = verify_copy(s3, "app-files", "backups", "files/", DAY, sample_objects=5, sample_max_bytes=10**6)
    assert [(r.check, r.status) for r in results] == [("file_storage.verify", "critical")]
    with pytest.raises(ValueError, match="file_storage_backups.bucket is the source bucket"):
        copy_bucket(s3, "app-files", "app-files", "files/", DAY)


def test_source_changed_after_the_copy_is_skipped_not_flagged(buckets):
    s3 = buckets
    copy_bucket(s3, "app-files", "backups", "files/", DAY)
    s3.put_object(Bucket="app-files", Key="machines/0/manual.pdf", Body=b"new edition")
    s3.delete_object(Bucket="app-files", Key="machines/5/manual.pdf")
    results = verify_copy(
        s3, "app-files", "backups", "files/", DAY, sample_objects=13, sample_max_bytes=10**8
    )
    checksums = results[1]
    assert checksums.status == "ok", checksums
    assert set(checksums.details["changed_since_copy"]) == {"machines/0/manual.pdf", "machines/5/manual.pdf"}


def test_copy_failure_is_critical_without_manifest(buckets, monkeypatch):
    s3 = buckets
    from botocore.exceptions import ClientError

    real = s3.copy_object

    def refuse(**kwargs):
        if kwargs["CopySource"]["Key"] == "machines/7/manual.pdf":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "CopyObject")
        return real(**kwargs)

    monkeypatch.setattr(s3, "copy_object", refuse)
    outcome = copy_bucket(s3, "app-files", "backups", "files/", DAY)
    result = copy_result(outcome, "app-files", "backups", "files/")
    assert result.status == "critical" and "machines/7/manual.pdf" in result.summary
    assert f"{day_prefix('files/', DAY)}manifest.json" not in _stored(s3)
