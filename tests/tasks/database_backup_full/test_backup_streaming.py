"""The streaming pieces of sanvi_ops.core.backups, offline: tar walker, multipart writer, schedules."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import threading
import time

import pytest

from sanvi_ops.core.backups import MultipartWriter, TarMemberCatcher, backup_id_for, lifecycle_rule

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
    from sanvi_ops.core.calendar import non_guide_dags
    from sanvi_ops.core.config import load_config

    cfg = load_config()
    jobs = non_guide_dags(cfg)
    assert jobs["database_backup_full"].cron == "0 1 * * *"
    assert jobs["database_backup_incremental"].cron == "0 0,2-23 * * *"
    database = cfg.backups.database.model_copy(update={"incremental_every": dt.timedelta(hours=2)})
    two_hourly = cfg.model_copy(update={"backups": cfg.backups.model_copy(update={"database": database})})
    expected = "0 3,5,7,9,11,13,15,17,19,21,23 * * *"
    assert non_guide_dags(two_hourly)["database_backup_incremental"].cron == expected


# --------------------------------------------------------------------------------------------
# Sizing: S3 allows 10,000 parts of 5 MiB..5 GiB
# --------------------------------------------------------------------------------------------

GiB, TiB, MiB = 1024**3, 1024**4, 1024**2


@pytest.mark.parametrize(
    ("db_bytes", "configured_mb", "want_mb"),
    [
        (1 * GiB, 16, 16),  # small: the configured size
        (100 * GiB, 16, 16),  # 16 MiB x 10,000 = 156 GiB holds 100 GiB x 1.25
        (200 * GiB, 16, 26),  # 200 GiB x 1.25 / 10,000 = 25.6 MiB -> 26 MiB
        (6 * TiB, 16, 787),  # 6 TiB x 1.25 / 10,000 = 786.4 MiB -> 787 MiB
        (200 * GiB, 64, 64),  # a larger configured size is kept
    ],
)
def test_part_size_grows_with_the_database(db_bytes, configured_mb, want_mb):
    from sanvi_ops.core.backups import S3_MAX_PARTS, plan_part_size

    plan = plan_part_size(db_bytes, configured_mb)
    assert plan.part_size == want_mb * MiB
    assert plan.part_size * S3_MAX_PARTS >= db_bytes * 1.25, "room for growth during the backup"
    assert 5 * MiB <= plan.part_size <= 5 * GiB


def test_part_size_at_the_s3_ceiling_and_refusal_beyond_it():
    from sanvi_ops.core.backups import BackupTooLarge, plan_part_size

    ceiling = 10_000 * 5 * GiB  # 48.8 TiB
    at = plan_part_size(ceiling, 16)
    assert at.part_size == 5 * GiB and at.headroom == 1.0 and "less than" in at.reason
    near = plan_part_size(int(ceiling / 1.25) - GiB, 16)  # still the full headroom
    assert near.part_size <= 5 * GiB and near.headroom >= 1.25
    with pytest.raises(BackupTooLarge) as err:
        plan_part_size(ceiling + 1, 16)
    assert "48.8 TiB" in str(err.value) and "mode: rds" in str(err.value)


def test_multipart_writer_refuses_the_10001st_part_clearly(monkeypatch):
    from sanvi_ops.core import backups

    monkeypatch.setattr(backups, "S3_MAX_PARTS", 3)
    s3 = FakeS3(0)
    w = MultipartWriter(s3, "b", "k", part_size=10, inflight=1, sse={"ServerSideEncryption": "aws:kms"})
    with pytest.raises(backups.BackupFailed, match="outgrew 3 parts"):
        w.write(b"x" * 45)
    w.abort()
    assert s3.aborted


# --------------------------------------------------------------------------------------------
# zstd: stored stream out, raw tar back, damaged or hostile streams refused
# --------------------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.size = 0

    def write(self, data):
        self.data += data
        self.size += len(data)


def _stored(raw: bytes, compression: str = "zstd", chunk: int = 1 << 16):
    from sanvi_ops.core.backups import StoredStream

    sink = Sink()
    stream = StoredStream(sink, compression)
    for i in range(0, len(raw), chunk):
        stream.write(raw[i : i + chunk])
    stream.finish()
    return bytes(sink.data), stream.describe("base.tar", "p/x/base.tar.zst")


def _read_back(stored: bytes, obj: dict, n: int = 10240) -> bytes:
    from sanvi_ops.core.backups import open_stored

    reader = open_stored(io.BytesIO(stored), obj)
    out = bytearray()
    while data := reader.read(n):
        assert len(data) <= n, "reads are bounded"
        out += data
    reader.drain()
    return bytes(out)


def _sample_tar() -> bytes:
    rows = b"".join(b"%08d,customer-%d,order note text\n" % (i, i % 97) for i in range(40_000))
    return _tar({"base/1/16384": rows, "backup_manifest": b'{"PostgreSQL-Backup-Manifest-Version": 2}'})


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_stored_stream_round_trip_records_both_checksums(compression):
    import hashlib

    raw = _sample_tar()
    stored, obj = _stored(raw, compression)
    assert obj["compression"] == compression and obj["raw_size"] == len(raw)
    assert obj["raw_sha256"] == hashlib.sha256(raw).hexdigest()
    assert obj["size"] == len(stored) and obj["sha256"] == hashlib.sha256(stored).hexdigest()
    if compression == "zstd":
        assert len(stored) < len(raw) / 4
    assert _read_back(stored, obj) == raw
    from sanvi_ops.core.backups import open_stored

    with tarfile.open(fileobj=open_stored(io.BytesIO(stored), obj), mode="r|") as tf:
        assert [m.name for m in tf] == ["base/1/16384", "backup_manifest"]


def test_damaged_or_hostile_compressed_streams_are_refused():
    import zstandard

    from sanvi_ops.core.backups import CorruptBackup

    raw = _sample_tar()
    stored, obj = _stored(raw)
    flipped = bytearray(stored)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises(CorruptBackup):
        _read_back(bytes(flipped), obj)
    with pytest.raises(CorruptBackup, match="unknown compression 'lz4'"):
        _read_back(stored, {**obj, "compression": "lz4"})
    # A bomb: the manifest says 1 KB, the stream inflates far beyond: stopped at once.
    bomb = zstandard.ZstdCompressor().compress(b"\0" * (64 << 20))
    with pytest.raises(CorruptBackup, match="more than the 1024 bytes"):
        _read_back(bomb, {**obj, "raw_size": 1024, "raw_sha256": None})
    # A frame asking for a 1 GiB window is refused, not allocated.
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=30)
    big_window = zstandard.ZstdCompressor(compression_params=params).compressobj()
    data = big_window.compress(b"abc" * 1000) + big_window.flush()
    with pytest.raises(CorruptBackup, match="damaged"):
        _read_back(data, {**obj, "raw_size": 3000, "raw_sha256": None})
    # Intact zstd but not the tar the manifest recorded.
    other, _ = _stored(raw[:-512] + b"\1" * 512)
    with pytest.raises(CorruptBackup, match="raw sha256"):
        _read_back(other, obj)


def test_compression_keeps_memory_bounded_per_chunk():
    """Output per 1 MiB chunk stays small: the compressor never buffers the whole stream."""
    import os as _os

    from sanvi_ops.core.backups import StoredStream

    sink = Sink()
    stream = StoredStream(sink, "zstd", threads=0)
    peak = 0
    for _ in range(64):
        before = sink.size
        stream.write(_os.urandom(1 << 20))
        peak = max(peak, sink.size - before)
    stream.finish()
    assert sink.size > 60 << 20 and peak < 16 << 20
