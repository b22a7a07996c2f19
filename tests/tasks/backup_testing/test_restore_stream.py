"""The restore's download side (issue 18): ranged-GET splitting, the choice of ranged GETs, and
the pipelined extraction that checks the manifest's hashes on the stream.

Unit tests on in-memory tars (fast); one integration test streams a real object from the moto
server fixture, as a single GET and as ranged GETs.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from sanvi_ops.tasks.backup_testing import restore


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _obj(data: bytes, **kw) -> dict:
    sha = hashlib.sha256(data).hexdigest()
    return {"name": "base.tar", "key": "p/base.tar", "size": len(data), "sha256": sha, **kw}


FILES = {"PG_VERSION": b"18\n", "base/1/1259": bytes(range(256)) * 8000, "global/pg_control": b"c" * 8192}


# -- the splitter ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "part", "expected"),
    [
        (0, 4, []),
        (1, 4, [(0, 0)]),
        (4, 4, [(0, 3)]),
        (10, 4, [(0, 3), (4, 7), (8, 9)]),
        (12, 4, [(0, 3), (4, 7), (8, 11)]),
    ],
)
def test_split_ranges_covers_every_byte_once(size, part, expected):
    assert restore.split_ranges(size, part) == expected


def test_split_ranges_of_a_large_object_is_contiguous():
    ranges = restore.split_ranges(10 * 2**30 + 5, 16 << 20)
    assert ranges[0][0] == 0 and ranges[-1][1] == 10 * 2**30 + 4
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:], strict=False))
    with pytest.raises(ValueError, match="part size"):
        restore.split_ranges(10, 0)


@pytest.mark.parametrize(
    ("mode", "endpoint", "on"),
    [
        ("auto", "https://s3.eu-west-1.amazonaws.com", True),
        ("auto", "https://s3.amazonaws.com", True),
        ("auto", "https://s3.cn-north-1.amazonaws.com.cn", True),
        ("auto", "http://127.0.0.1:5000", False),  # moto: a single GET is ~10x faster
        ("auto", "https://minio.internal:9000", False),
        ("auto", "http://evil.amazonaws.com.example.org", False),
        ("auto", None, False),
        ("on", "http://127.0.0.1:5000", True),
        ("off", "https://s3.amazonaws.com", False),
    ],
)
def test_ranged_gets_auto_is_on_for_aws_only(mode, endpoint, on):
    assert restore.ranged_gets_enabled(mode, endpoint) is on


def test_part_size_follows_the_settings(tmp_path):
    s = restore.RestoreSettings(bucket="b", prefix="p/", scratch_root=tmp_path)
    assert s.part_size("https://s3.amazonaws.com") == 16 << 20
    assert s.part_size("http://127.0.0.1:5000") == 0
    s.download_part_mb = 0
    assert s.part_size("https://s3.amazonaws.com") == 0
    with pytest.raises(ValueError, match="ranged_gets"):
        restore.ranged_gets_enabled("sometimes", None)


def test_a_short_ranged_response_is_an_error_not_a_shorter_stream():
    class Short:
        def get_object(self, Bucket, Key, Range):  # noqa: N803 - boto3's names
            return {"Body": io.BytesIO(b"xx")}

    body = restore._RangedBody(Short(), "b", "k", 10, 4, ahead=2)
    with pytest.raises(restore.RestoreFailed, match="truncated response"):
        body.read(4)
    body.close()


# -- the streaming extractor -----------------------------------------------------------------------


class _Trickle(io.BytesIO):
    """A body that returns small, uneven reads, as a socket does."""

    def read(self, n: int = -1) -> bytes:
        return super().read(min(n if n and n > 0 else 1 << 20, 1000 + self.tell() % 777))


def test_extract_stream_writes_every_file_and_checks_the_hash(tmp_path):
    data = _tar(FILES)
    size, sha, reader = restore.extract_stream(_Trickle(data), _obj(data), tmp_path / "d")
    assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
    for name, content in FILES.items():
        assert (tmp_path / "d" / name).read_bytes() == content
    assert reader.last_byte_at is not None


def test_a_truncated_stream_fails(tmp_path):
    data = _tar(FILES)
    cut = data[: len(data) // 2]
    with pytest.raises(restore.RestoreFailed, match="corrupted or truncated"):
        restore.extract_stream(io.BytesIO(cut), _obj(data), tmp_path / "d")


def test_a_tampered_stream_fails_even_when_the_tar_is_valid(tmp_path):
    data = _tar(FILES)
    evil = _tar({**FILES, "PG_VERSION": b"17\n"})  # same length, valid tar, other bytes
    assert len(evil) == len(data)
    with pytest.raises(restore.RestoreFailed, match="corrupted or truncated"):
        restore.extract_stream(io.BytesIO(evil), _obj(data), tmp_path / "d")


def test_a_path_leaving_the_directory_is_refused(tmp_path):
    data = _tar({"../escape": b"x"})
    with pytest.raises(restore.RestoreFailed, match="not a readable tar stream"):
        restore.extract_stream(io.BytesIO(data), _obj(data), tmp_path / "d")
    assert not (tmp_path / "escape").exists()


def test_a_damaged_zstd_stream_fails(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    raw = _tar(FILES)
    stored = bytearray(zstandard.ZstdCompressor(level=3).compress(raw))
    stored[len(stored) // 2] ^= 0xFF
    obj = _obj(
        bytes(stored),
        compression="zstd",
        raw_size=len(raw),
        raw_sha256=hashlib.sha256(raw).hexdigest(),
    )
    with pytest.raises(restore.RestoreFailed, match="corrupted or truncated"):
        restore.extract_stream(io.BytesIO(bytes(stored)), obj, tmp_path / "d")


def test_a_download_error_reaches_the_reader_and_the_thread_stops(tmp_path):
    class Broken(io.BytesIO):
        def read(self, n: int = -1) -> bytes:
            if self.tell() > 20000:
                raise ConnectionResetError("peer reset")
            return super().read(4096)

    data = _tar(FILES)
    with pytest.raises(restore.RestoreFailed, match="ConnectionResetError|peer reset"):
        restore.extract_stream(Broken(data), _obj(data), tmp_path / "d")


def test_the_prefetch_queue_bounds_memory():
    src = io.BytesIO(b"z" * (64 << 10))
    reader = restore._Prefetch(src, chunk=1024, depth=4)
    try:
        import time

        time.sleep(0.3)  # the thread fills the queue, then waits
        assert reader._q.qsize() <= 4 and reader.size <= 5 * 1024
        out = bytearray()
        while chunk := reader.read(3000):
            out += chunk
        assert bytes(out) == b"z" * (64 << 10) and reader.stalled_s > 0
    finally:
        reader.close()


# -- against the moto server -----------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("part_size", [0, 64 << 10])
def test_download_extract_from_moto_single_and_ranged(boto_client, tmp_path: Path, part_size):
    s3 = boto_client("s3")
    bucket = "sanvi-restore-stream"
    s3.create_bucket(Bucket=bucket)
    data = _tar(FILES)
    s3.put_object(Bucket=bucket, Key="p/base.tar", Body=data)
    stream = restore._download_extract(s3, bucket, _obj(data), tmp_path / "d", part_size=part_size, ahead=3)
    assert stream.bytes == len(data) and 0 <= stream.download_s <= stream.total_s
    assert (tmp_path / "d" / "base/1/1259").read_bytes() == FILES["base/1/1259"]
    s3.put_object(Bucket=bucket, Key="p/base.tar", Body=data[:-512] + b"\1" * 512)  # tampered tail
    with pytest.raises(restore.RestoreFailed, match="corrupted or truncated"):
        restore._download_extract(s3, bucket, _obj(data), tmp_path / "e", part_size=part_size, ahead=3)


def _member_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "", mode: int = 0o600):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, size, link, mode
    return info


def test_untar_writes_through_no_symlink_leaving_the_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    data = _member_tar(
        (_info("pg_wal", tarfile.SYMTYPE, link=str(outside)), None),
        (_info("pg_wal/evil", size=1), b"x"),
    )
    with pytest.raises(restore.RestoreFailed, match="not a readable tar stream"):
        restore.extract_stream(io.BytesIO(data), _obj(data), tmp_path / "d")
    assert not (outside / "evil").exists()


@pytest.mark.parametrize("kind", [tarfile.LNKTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE])
def test_untar_refuses_what_pg_basebackup_never_writes(tmp_path, kind):
    data = _member_tar((_info("odd", kind, link="PG_VERSION" if kind == tarfile.LNKTYPE else ""), None))
    with pytest.raises(restore.RestoreFailed, match="only files, directories and symlinks"):
        restore.extract_stream(io.BytesIO(data), _obj(data), tmp_path / "d")


def test_untar_keeps_modes_without_setuid_or_group_write(tmp_path):
    data = _member_tar(
        (_info("base", tarfile.DIRTYPE, mode=0o700), None),
        (_info("base/f", size=3, mode=0o6777), b"abc"),
    )
    restore.extract_stream(io.BytesIO(data), _obj(data), tmp_path / "d")
    assert (tmp_path / "d/base/f").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "d/base").stat().st_mode & 0o7777 == 0o700
