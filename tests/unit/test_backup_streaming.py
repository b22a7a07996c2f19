"""The streaming pieces of sanvi_ops.backups, offline: tar walker, multipart writer, schedules."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import threading
import time

import pytest

from sanvi_ops.backups import MultipartWriter, TarMemberCatcher, backup_id_for, lifecycle_rule

pytestmark = pytest.mark.unit


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("chunk", [1, 7, 511, 512, 513, 4096, 1 << 20])
def test_tar_catcher_finds_the_manifest_in_any_chunking(chunk):
    manifest = b'{"PostgreSQL-Backup-Manifest-Version": 2}' * 50
    stream = _tar({"base/1/1234": b"x" * 10_000, "empty": b"", "backup_manifest": manifest})
    catcher = TarMemberCatcher("backup_manifest")
    for i in range(0, len(stream), chunk):
        catcher.feed(stream[i : i + chunk])
    assert catcher.caught == manifest


def test_tar_catcher_truncated_stream_has_no_manifest():
    stream = _tar({"a": b"1" * 3000, "backup_manifest": b"{}"})
    catcher = TarMemberCatcher("backup_manifest")
    catcher.feed(stream[:2048])
    assert catcher.caught is None


class FakeS3:
    """Counts parts held by uploads in flight (memory bound) and records the completed object."""

    def __init__(self, delay: float = 0.01) -> None:
        self.delay = delay
        self.inflight = 0
        self.max_inflight = 0
        self.parts: dict[int, bytes] = {}
        self.completed: list[dict] | None = None
        self.aborted = False
        self.lock = threading.Lock()

    def create_multipart_upload(self, **kw):
        assert kw["ServerSideEncryption"] == "aws:kms"
        return {"UploadId": "u1"}

    def upload_part(self, *, PartNumber, Body, **kw):
        with self.lock:
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        time.sleep(self.delay)
        with self.lock:
            self.inflight -= 1
            self.parts[PartNumber] = Body
        return {"ETag": f"e{PartNumber}"}

    def complete_multipart_upload(self, *, MultipartUpload, **kw):
        self.completed = MultipartUpload["Parts"]

    def abort_multipart_upload(self, **kw):
        self.aborted = True


def test_multipart_writer_bounded_in_flight_and_ordered():
    s3 = FakeS3()
    w = MultipartWriter(s3, "b", "k", part_size=1000, inflight=2, sse={"ServerSideEncryption": "aws:kms"})
    data = bytes(range(256)) * 100  # 25,600 bytes → 26 parts
    for i in range(0, len(data), 333):
        w.write(data[i : i + 333])
        assert len(w._buf) < 1000 and len(w._pending) <= 2
    w.close()
    assert s3.max_inflight <= 2
    assert [p["PartNumber"] for p in s3.completed] == list(range(1, 27))
    assert b"".join(s3.parts[n] for n in sorted(s3.parts)) == data
    assert w.size == len(data)


def test_multipart_writer_empty_stream_and_abort():
    s3 = FakeS3(0)
    w = MultipartWriter(s3, "b", "k", part_size=1000, inflight=1, sse={"ServerSideEncryption": "aws:kms"})
    w.close()
    assert s3.completed == [{"PartNumber": 1, "ETag": "e1"}]
    s3b = FakeS3(0)
    w = MultipartWriter(s3b, "b", "k", part_size=10, inflight=1, sse={"ServerSideEncryption": "aws:kms"})
    w.write(b"x" * 25)
    w.abort()
    assert s3b.aborted and s3b.completed is None


def test_backup_ids_sort_by_time():
    t = dt.datetime(2026, 11, 27, 1, 0, tzinfo=dt.UTC)
    ids = [backup_id_for(t, "full"), backup_id_for(t + dt.timedelta(hours=1), "incremental")]
    assert ids == ["20261127T010000Z-full", "20261127T020000Z-incr"] == sorted(ids)


def test_lifecycle_rule_shape():
    rule = lifecycle_rule("postgres/", 7, 30)
    assert rule["Expiration"] == {"Days": 30}
    assert rule["Transitions"] == [{"Days": 7, "StorageClass": "GLACIER"}]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "Transitions" not in lifecycle_rule("postgres/", 30, 30)


def test_backup_jobs_schedules_from_config():
    from sanvi_ops.calendar import non_guide_dags
    from sanvi_ops.config import load_config

    cfg = load_config()
    jobs = non_guide_dags(cfg)
    assert jobs["database_backup_full"].cron == "0 1 * * *"
    assert jobs["database_backup_incremental"].cron == "0 0,2-23 * * *"
    database = cfg.backups.database.model_copy(update={"incremental_every": dt.timedelta(hours=2)})
    two_hourly = cfg.model_copy(update={"backups": cfg.backups.model_copy(update={"database": database})})
    expected = "0 3,5,7,9,11,13,15,17,19,21,23 * * *"
    assert non_guide_dags(two_hourly)["database_backup_incremental"].cron == expected
