"""The weekly restore test: a physical backup from S3 restored into a throw-away PostgreSQL.

What a run does (self-managed mode; the backups are :mod:`sanvi_ops.core.backups`')
===========================================================================
1. **Guards, before any command runs** (:func:`refuse_production`, :func:`guard_scratch_root`):
   the scratch server's ``host:port`` must not resolve to the application database's server nor
   to an entry of ``tasks.backup_testing.settings.production_targets`` (same host and port, whatever the
   database name); the scratch root must not lie inside a production data directory — the
   application server's (asked of it when it runs on this machine) or one of
   ``tasks.backup_testing.settings.production_data_dirs`` — and when the server cannot tell (no
   ``pg_read_all_settings``, not answering) the restore is refused unless that list is set; the
   scratch root holds nothing but our own marked directories.
2. **Leftovers of a killed run are removed first**: every ``sanvi-restore-*`` directory under the
   scratch root carrying our marker file is stopped (its postmaster, if still running) and deleted.
3. The backup: the newest complete one, or the ``backup_id`` asked for (an unknown or half-written
   id is an ``error`` result naming the newest good one).
4. **Restore** (the physical equivalent of ``pg_restore -j``): the members of the backup's chain
   are downloaded concurrently (``download_concurrency``; with ``download_part_mb`` > 0 each object
   also as that many ranged GETs in flight); each ``base.tar`` is streamed straight
   into ``tarfile`` while its SHA-256 and size are checked against the manifest (no local copy of
   the tar), a chain is merged with ``pg_combinebackup``. Each member is first checked with
   ``pg_verifybackup``; the server binaries must be the backup's major version. The server
   (:mod:`sanvi_ops.core.pgserver`) never uses the backup's own configuration: its program- and
   library-loading settings are forced off on the command line, ``postgresql.auto.conf`` is
   emptied, signal files removed (``restore.config`` reports what the backup carried); it
   listens on a private unix socket (``local all all trust``, no TCP), with a minimal
   environment, and reaches consistency from the WAL inside ``base.tar`` (``-X fetch``).
5. **Validate**: ``pg_amcheck --all`` (``--heapallindexed`` by default); every table's row count
   against the manifest (a missing table is critical; a different count a warning, because the
   counts are taken just before the backup and a busy database moves on); the schema — table
   list against the manifest, columns against the live source database's catalog when it is
   reachable (a difference there is a warning: the source may have migrated since); the
   configured smoke queries (read-only); the newest ``rpo_column`` value against the backup's
   point (measured RPO).
6. **Always** stop the server and delete the directory, also after a failure.

RTO = start of the test → restored server healthy (smoke queries passed); restore duration =
download + extract + combine; MB/s over the bytes of the whole chain. Each test is one row of
``recovery_tests`` (store migration 006) and the report shows the previous ``trend_runs``.

Every phase is timed (:class:`sanvi_ops.core.rto_forecast.PhaseTimer`): prepare (guards, listing,
version), download, extract, verify, combine, start (to consistency), smoke — these sum to the
RTO — then amcheck, row_counts, schema and rpo. They are kept in ``recovery_tests.details.phases``
and reported as the ``restore.phases`` line (``phases: download 12.1 s (155 MB/s) · …``); the
capacity plan's RTO forecast scales them with the database's growth.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanvi_ops.core.backups import MANIFEST_NAME, TAR_NAME, BackupEntry, PgTarget, list_backups
from sanvi_ops.core.pgserver import (
    SESSION_OPTIONS,
    ConfigFinding,
    ScratchServer,
    binary_major,
    child_env,
    neutralise_data_dir,
    resolve_pg_bin,
    start_scratch,
    stop_data_dir,
)
from sanvi_ops.core.results import CheckResult, Status, grade, worst
from sanvi_ops.core.rto_forecast import PhaseTimer, phases_line

log = logging.getLogger(__name__)

MARKER = ".sanvi-restore"
DIR_PREFIX = "sanvi-restore-"
#: The DR drill's scratch environments (sanvi_ops.tasks.dr_testing.system.clean_system_leftovers).
SYSTEM_DIR_PREFIX = DIR_PREFIX + "system-"
KIND = "restore_test"
CHUNK = 1 << 20

__all__ = [
    "RestoreFailed",
    "RestoreOutcome",
    "RestoreRefused",
    "RestoreSettings",
    "check_scratch_root",
    "guard_scratch_root",
    "clean_leftovers",
    "default_scratch_root",
    "record_test",
    "recent_tests",
    "refuse_production",
    "run_restore_test",
]


class RestoreRefused(RuntimeError):
    """A guard refused the restore target; nothing was run."""


class RestoreFailed(RuntimeError):
    """The restore could not be completed (download, checksum, combine, start)."""


class VerificationFailed(RestoreFailed):
    """``pg_verifybackup`` found a restored backup different from its ``backup_manifest``."""


class VersionMismatch(RestoreFailed):
    """The server binaries are another major version than the backup."""


class _StartFailed(RestoreFailed):
    """The scratch server did not start; carries what the backup's configuration held."""

    def __init__(self, cause: Exception, findings: list[ConfigFinding]) -> None:
        super().__init__(str(cause))
        self.findings = findings


def default_scratch_root() -> Path:
    return Path(tempfile.gettempdir()) / "sanvi-restore"


# --------------------------------------------------------------------------------------------
# Guards
# --------------------------------------------------------------------------------------------


def _addresses(host: str) -> set[str]:
    """IP addresses ``host`` resolves to (the name itself when it does not resolve)."""
    if host.startswith("/"):
        return {host}
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)} | {host}
    except OSError:
        return {host}


def _same_server(host_a: str, port_a: int, host_b: str, port_b: int) -> bool:
    if port_a != port_b:
        return False
    a, b = _addresses(host_a), _addresses(host_b)
    loopback = {"127.0.0.1", "::1", "localhost"}
    return bool(a & b) or (bool(a & loopback) and bool(b & loopback))


def _parse_target(text: str) -> tuple[str, int, str | None]:
    hostport, _, db = text.partition("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"production target {text!r} must look like host:port or host:port/dbname")
    return host, int(port), (db or None)


def refuse_production(
    *,
    scratch_host: str,
    scratch_port: int | None,
    dbname: str,
    app: PgTarget | None,
    production_targets: list[str] = [],  # noqa: B006 - read only
) -> None:
    """Raise :class:`RestoreRefused` when the restore target is a production server.

    Production = the application connection's server or an entry of ``production_targets``
    (``host:port``; a ``/dbname`` suffix is accepted but does not narrow it): the same host
    (by address, aliases included) and port, **whatever the database name** — a physical restore
    brings back a whole cluster, and any database of a production server is production.
    """
    if scratch_port is None:
        return  # a free port is picked: it cannot be a running server's
    if app is not None and _same_server(scratch_host, scratch_port, app.host, app.port):
        raise RestoreRefused(
            f"restore target {scratch_host}:{scratch_port}/{dbname} is the application database's server "
            f"({app.host}:{app.port}, database {app.dbname}): same server, whatever the database: refused"
        )
    for entry in production_targets:
        host, port, _db = _parse_target(entry)
        if _same_server(scratch_host, scratch_port, host, port):
            raise RestoreRefused(
                f"restore target {scratch_host}:{scratch_port}/{dbname} is listed as production ({entry}): refused"
            )


def _is_local(host: str) -> bool:
    """Does ``host`` name this machine (a unix socket, loopback, or an address of ours)?"""
    if not host or host.startswith("/") or host.startswith("@"):
        return True
    for addr in _addresses(host):
        if addr in {"localhost", "::1"} or addr.startswith("127."):
            return True
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.bind((addr, 0))  # only an address of one of our interfaces binds
            return True
        except OSError:
            continue
    return False


def production_data_dir(app: PgTarget | None) -> tuple[Path | None, str | None]:
    """``(data directory, why it is not known)`` of the application server.

    ``(None, None)``: nothing to ask (no application connection, or a server on another machine,
    whose data directory cannot be under a local path). ``(None, reason)``: the guard cannot
    decide — the reason names the missing permission or the failure.
    """
    if app is None or not _is_local(app.host):
        return None, None
    import psycopg

    try:
        with psycopg.connect(app.dsn(), connect_timeout=5) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None, (
            f"role {app.user!r} may not read data_directory on {app.host}:{app.port} "
            f"(it needs pg_read_all_settings: GRANT pg_read_all_settings TO {app.user})"
        )
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())[:200]
        return (
            None,
            f"the application server {app.host}:{app.port} did not tell its data_directory ({reason})",
        )
    if not row or not row[0]:
        return None, f"the application server {app.host}:{app.port} returned no data_directory"
    return Path(row[0]), None


def guard_scratch_root(root: Path, app: PgTarget | None, production_data_dirs: list[str]) -> None:
    """Raise :class:`RestoreRefused` unless ``root`` lies outside every known production data
    directory: the application server's own (asked of it) and ``production_data_dirs``
    (``tasks.backup_testing.settings.production_data_dirs``). When the server cannot tell (a role without
    ``pg_read_all_settings``, the server down) the guard refuses — unless
    ``production_data_dirs`` is configured, which then stands for the server's answer."""
    asked, problem = production_data_dir(app)
    known = [Path(p) for p in production_data_dirs]
    if problem and not known:
        raise RestoreRefused(
            f"cannot tell whether scratch directory {root} lies inside production's data directory: {problem}; "
            "refused — grant the permission, or list the production data directories in "
            "tasks.backup_testing.settings.production_data_dirs"
        )
    check_scratch_root(root, [*known, *([asked] if asked else [])])


def _empty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and not any(path.iterdir())
    except OSError:
        return False


def check_scratch_root(root: Path, production_dir: Path | Sequence[Path] | None) -> None:
    """Raise :class:`RestoreRefused` unless ``root`` is a safe place for scratch clusters.

    It must not be (inside) a production data directory nor contain one, and must hold nothing
    but our own marked ``sanvi-restore-*`` directories (empty is fine).
    """
    resolved = root.resolve()
    dirs = [production_dir] if isinstance(production_dir, Path) else list(production_dir or [])
    for production in dirs:
        prod = production.resolve()
        if resolved == prod or prod in resolved.parents or resolved in prod.parents:
            raise RestoreRefused(
                f"scratch directory {root} overlaps the production data directory {prod}: refused"
            )
    if not root.exists():
        return
    # Ours: a directory with our prefix and its marker, or with our prefix and still empty (one
    # that another component of the same drill has just made; its marker is the first file it
    # writes, so "empty" is checked before "marked", and either order of the two is safe).
    foreign = [
        p.name
        for p in root.iterdir()
        if not (p.name.startswith(DIR_PREFIX) and (_empty_dir(p) or (p / MARKER).exists()))
    ]
    if foreign:
        raise RestoreRefused(
            f"scratch directory {root} is neither empty nor ours (unmarked: {', '.join(sorted(foreign)[:5])}): "
            "refused; point tasks.backup_testing.settings.scratch_dir at an empty directory"
        )


# --------------------------------------------------------------------------------------------
# The scratch cluster
# --------------------------------------------------------------------------------------------


def _stop_dir(work: Path) -> None:
    with contextlib.suppress(Exception):
        stop_data_dir(work / "data", "immediate")


def _process_start(pid: int) -> str | None:
    """The start time (clock ticks since boot) of process ``pid``; None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def write_marker(work: Path, data: dict[str, Any]) -> None:
    """Write ``work``'s marker atomically (a temp file renamed over it): a sweep reading it while it
    is rewritten must never see half a file, which it would take for a dead run's and clean up."""
    tmp = work / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, work / MARKER)


def _owner_alive(marker: Path) -> bool:
    """Is the run that wrote ``marker`` still running (same pid *and* start time: no PID reuse)?"""
    try:
        data = json.loads(marker.read_text())
        pid, started = int(data["pid"]), data.get("pid_start")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return pid != os.getpid() and started is not None and _process_start(pid) == started


def clean_leftovers(root: Path) -> list[str]:
    """Stop and delete every marked scratch directory under ``root`` whose run is gone (killed);
    a directory of a run still alive (another DAG using the same root) is left alone."""
    cleaned: list[str] = []
    if not root.exists():
        return cleaned
    for path in sorted(root.iterdir()):
        if path.name.startswith(SYSTEM_DIR_PREFIX):
            continue  # the DR drill's scratch environment: its own sweep kills its processes first
        if path.name.startswith(DIR_PREFIX) and (path / MARKER).exists() and not _owner_alive(path / MARKER):
            _stop_dir(path)
            shutil.rmtree(path, ignore_errors=True)
            cleaned.append(path.name)
    return cleaned


#: Chunks the download thread may hold ahead of the extraction (memory bound of a single GET).
PREFETCH_CHUNKS = 16
#: Hosts whose ranged GETs are served in parallel at full speed (AWS S3's own endpoints).
_AWS_S3_SUFFIXES = (".amazonaws.com", ".amazonaws.com.cn")


def ranged_gets_enabled(mode: str, endpoint_url: str | None) -> bool:
    """Whether to fetch objects as parallel ranged GETs (``tasks.backup_testing.settings.ranged_gets``).

    ``on``/``off`` say so; ``auto`` is on for AWS's own S3 endpoints, where one connection tops
    out far below the network and parallel ranges scale, and off for any other endpoint. moto,
    the local stack's S3, copies the whole object for each ranged GET: measured on the 2-core dev
    machine, a single GET streams ~600 MB/s and 16/64 MiB ranges 34/59 MB/s (2 or 4 in flight).
    """
    if mode not in {"auto", "on", "off"}:
        raise ValueError(f"tasks.backup_testing.settings.ranged_gets must be auto, on or off, got {mode!r}")
    if mode != "auto":
        return mode == "on"
    from urllib.parse import urlsplit

    host = (urlsplit(endpoint_url or "").hostname or "").lower()
    return host.endswith(_AWS_S3_SUFFIXES)


def split_ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` byte ranges covering ``size`` bytes in parts of ``part_size``."""
    if part_size <= 0:
        raise ValueError(f"part size must be positive, got {part_size}")
    return [(start, min(start + part_size, size) - 1) for start in range(0, max(size, 0), part_size)]


class _RangedBody:
    """Sequential reads over one S3 object fetched as ranged GETs, ``ahead`` parts in flight.

    The reader consumes in order while the next parts download: memory is bounded by
    ``part_size × (ahead + 1)`` whatever the object size. A part shorter than its range (a
    truncated response) is an error, never a silently shorter stream.
    """

    def __init__(self, s3: Any, bucket: str, key: str, size: int, part_size: int, ahead: int) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.ranges = split_ranges(size, part_size)
        self.ahead = max(1, ahead)
        self._pool = ThreadPoolExecutor(max_workers=self.ahead, thread_name_prefix="restore-range")
        self._futures: list[Any] = []
        self._next = 0
        self._buf = memoryview(b"")
        self._fill()

    def _get(self, first: int, last: int) -> bytes:
        resp = self.s3.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={first}-{last}")
        data = bytes(resp["Body"].read())
        if len(data) != last - first + 1:
            raise RestoreFailed(
                f"{self.key}: ranged GET bytes={first}-{last} returned {len(data)} bytes (truncated response)"
            )
        return data

    def _fill(self) -> None:
        while len(self._futures) < self.ahead and self._next < len(self.ranges):
            self._futures.append(self._pool.submit(self._get, *self.ranges[self._next]))
            self._next += 1

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            if not self._futures:
                return b""
            self._buf = memoryview(self._futures.pop(0).result())
            self._fill()
        n = len(self._buf) if n is None or n < 0 else n
        out, self._buf = bytes(self._buf[:n]), self._buf[n:]
        return out

    def close(self) -> None:
        for fut in self._futures:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Prefetch:
    """The download side of the pipeline: a thread reads ``body`` (one streaming GET or
    :class:`_RangedBody`), hashes and counts the stored bytes, and hands chunks to the extraction
    through a queue of :data:`PREFETCH_CHUNKS` (memory stays bounded whatever the object size).

    The reader (decompression and ``tarfile``, in the caller's thread) works on chunk *n* while
    chunk *n+1* arrives; SHA-256 and socket reads release the GIL, so both cores work.
    ``last_byte_at`` (monotonic) is when S3's last byte arrived; ``stalled_s`` how long the
    download waited for a full queue (> 0: the extraction was the slower side). An error of the
    download is raised in the reader; :meth:`close` stops the thread when the reader gives up.
    """

    _END = object()

    def __init__(self, body: Any, chunk: int = CHUNK, depth: int = PREFETCH_CHUNKS) -> None:
        import queue
        import threading

        self.body = body
        self.chunk = chunk
        self.digest = hashlib.sha256()
        self.size = 0
        self.last_byte_at: float | None = None
        self.stalled_s = 0.0
        self._q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._buf = memoryview(b"")
        self._done = False
        self._thread = threading.Thread(target=self._run, name="restore-download", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        import queue

        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
            except queue.Full:
                continue
            self.stalled_s += time.monotonic() - t0
            return True
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.body.read(self.chunk)
                if not data:
                    break
                self.digest.update(data)
                self.size += len(data)
                if not self._put(bytes(data)):
                    return
            self.last_byte_at = time.monotonic()
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self._put(exc)

    def read(self, n: int = -1) -> bytes:
        if not self._buf:
            if self._done:
                return b""
            item = self._q.get()
            if item is self._END:
                self._done = True
                return b""
            if isinstance(item, BaseException):
                self._done = True
                raise item
            if n is None or n < 0 or n >= len(item):
                return bytes(item)  # the whole chunk as it came: no copy
            self._buf = memoryview(item)
        n = len(self._buf) if n is None or n < 0 else n
        out, self._buf = bytes(self._buf[:n]), self._buf[n:]
        return out

    def drain(self) -> None:
        while self.read(self.chunk):
            pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class _Blocks:
    """Exact reads over a ``read(n)`` stream that may return fewer bytes (socket-like), handing
    file data out as views of the chunks it holds (no copy on the way to the disk)."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self._buf = memoryview(b"")

    def _fill(self) -> None:
        data = self.source.read(CHUNK)
        if not data:
            raise RestoreFailed("the tar stream ends inside a member (corrupted or truncated)")
        self._buf = memoryview(data)

    def exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            if not self._buf:
                self._fill()
            take = self._buf[: n - len(out)]
            out += take
            self._buf = self._buf[len(take) :]
        return bytes(out)

    def views(self, n: int) -> Iterator[memoryview]:
        while n > 0:
            if not self._buf:
                self._fill()
            take = self._buf[:n]
            self._buf = self._buf[len(take) :]
            n -= len(take)
            yield take

    def skip(self, n: int) -> None:
        for _ in self.views(n):
            pass


_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


def untar(source: Any, into: Path) -> int:
    """Extract a plain ustar stream (what ``pg_basebackup -Ft`` writes) into ``into``; files written.

    Each header is parsed and checked by :mod:`tarfile` (``TarInfo.frombuf``: checksum, fields)
    and passed through its ``tar`` filter (no absolute path, nothing resolving outside ``into``
    through ``..`` or an earlier symlink; setuid/setgid and group/other write bits cleared). File
    data goes from the received chunks to ``os.write`` without the copies of ``tarfile``'s stream
    mode. Only what PostgreSQL writes is accepted: regular files, directories and symlinks; a hard
    link, device, FIFO or extended (pax/GNU) header is refused. Files are created with
    ``O_NOFOLLOW`` and never fsynced (see :func:`_sync_once`); ownership and times are not
    restored (the scratch server's user owns everything, :func:`~sanvi_ops.core.pgserver.start_scratch`).
    """
    dest = os.path.realpath(into)
    blocks = _Blocks(source)
    dirs: list[tuple[str, int]] = []
    files = 0
    while True:
        header = blocks.exact(tarfile.BLOCKSIZE)
        if header == tarfile.NUL * tarfile.BLOCKSIZE:
            break  # end of archive (the second zero block and the padding: the caller drains them)
        info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
        if info.type not in (*_FILE_TYPES, tarfile.DIRTYPE, tarfile.SYMTYPE):
            raise tarfile.TarError(
                f"member {info.name!r} has type {info.type!r}: only files, directories and symlinks are "
                "restored (pg_basebackup writes plain ustar)"
            )
        member = tarfile.tar_filter(info, dest)  # raises tarfile.FilterError
        path = os.path.join(dest, member.name)
        if member.type == tarfile.DIRTYPE:
            os.makedirs(path, 0o700, exist_ok=True)
            dirs.append((path, (member.mode or 0o700) & 0o7777))
            continue
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        if member.type == tarfile.SYMTYPE:
            os.symlink(member.linkname, path)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            for view in blocks.views(member.size):
                while view:
                    view = view[os.write(fd, view) :]
            os.fchmod(fd, (member.mode or 0o600) & 0o7777)
        finally:
            os.close(fd)
        files += 1
        blocks.skip(-member.size % tarfile.BLOCKSIZE)
    for path, mode in reversed(dirs):
        os.chmod(path, mode)
    return files


@dataclass(frozen=True)
class _Stream:
    """What one object's pipelined download + extraction measured."""

    bytes: int
    download_s: float  # start → S3's last byte
    total_s: float  # start → the last file extracted and every check passed
    stalled_s: float  # the download waited this long for the extraction


def extract_stream(body: Any, obj: dict[str, Any], into: Path) -> tuple[int, str, _Prefetch]:
    """Untar the stored bytes of ``obj`` read from ``body`` into ``into`` while they arrive.

    Checks on the stream, before anything is trusted: the stored bytes' size and SHA-256 against
    the manifest (``size``/``sha256``), and through :func:`~sanvi_ops.core.backups.open_stored` the
    decompressed tar's (``raw_size``/``raw_sha256``). A truncated or tampered stream raises
    :class:`RestoreFailed` (the caller deletes the directory; nothing extracted is used).
    ``tarfile``'s ``tar`` filter refuses absolute paths, ``..``, and links leaving ``into``.

    Files are written without fsync (see :func:`_sync_once`). Returns ``(bytes, sha256, the
    prefetcher)``.
    """
    from sanvi_ops.core.backups import CorruptBackup, open_stored

    key = obj.get("key", obj.get("name", "?"))
    into.mkdir(parents=True)
    reader = _Prefetch(body)
    try:
        tar_stream = open_stored(reader, obj)
        untar(tar_stream, into)
        tar_stream.drain()  # the end-of-archive padding (and the raw size/sha256 check)
    except RestoreFailed:
        raise
    except CorruptBackup as exc:  # the decompressed tar differs from the manifest
        raise RestoreFailed(f"{key}: {exc} (corrupted or truncated): not restored") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise RestoreFailed(
            f"{key}: not a readable tar stream ({exc}; corrupted or truncated): not restored"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - S3 errors of the download thread
        raise RestoreFailed(f"{key}: download failed ({type(exc).__name__}: {exc})") from exc
    finally:
        reader.close()
    sha = reader.digest.hexdigest()
    if reader.size != obj["size"] or sha != obj["sha256"]:
        raise RestoreFailed(
            f"{key}: {reader.size} bytes with sha256 {sha[:12]}…, the manifest says "
            f"{obj['size']} bytes with {obj['sha256'][:12]}… (corrupted or truncated): not restored"
        )
    return reader.size, sha, reader


def _download_extract(
    s3: Any, bucket: str, obj: dict[str, Any], into: Path, *, part_size: int = 0, ahead: int = 2
) -> _Stream:
    """Stream one ``base.tar`` from S3 into ``into``, checked against the manifest (:func:`extract_stream`).

    ``part_size`` 0: one streaming GET. Otherwise ranged GETs of ``part_size``, ``ahead`` in
    flight (see :func:`ranged_gets_enabled`).
    """
    t_start = time.monotonic()
    stored = int(s3.head_object(Bucket=bucket, Key=obj["key"])["ContentLength"])
    if stored != int(obj["size"]):
        raise RestoreFailed(
            f"{obj['key']}: S3 holds {stored} bytes, the manifest says {obj['size']} (corrupted or truncated): "
            "not restored"
        )
    body: Any
    if part_size and int(obj["size"]) > part_size:
        body = _RangedBody(s3, bucket, obj["key"], int(obj["size"]), part_size, ahead)
    else:
        try:
            body = s3.get_object(Bucket=bucket, Key=obj["key"])["Body"]
        except Exception as exc:  # noqa: BLE001 - named in the result
            raise RestoreFailed(f"{obj['key']}: download failed ({type(exc).__name__}: {exc})") from exc
    try:
        size, _sha, reader = extract_stream(body, obj, into)
    finally:
        with contextlib.suppress(Exception):
            body.close()
    end = time.monotonic()
    return _Stream(size, (reader.last_byte_at or end) - t_start, end - t_start, reader.stalled_s)


def _sync_once(data: Path, settings: RestoreSettings) -> None:
    """One ``initdb --sync-only`` of the restored data directory, instead of an fsync per file.

    Crash safety: nothing is fsynced while the tar is extracted or the chain combined
    (``pg_combinebackup --no-sync``), as ``pg_basebackup`` and ``initdb`` themselves sync once at
    the end. Before this point a crash can only leave a half-written scratch directory, which is
    never started: its marker makes the next run delete it. After it, every file the server did
    not write itself is durable before the server's first checkpoint relies on it (the guarantee
    ``initdb --sync-only`` exists for; the server's own start-up sync of a backup that was not shut
    down cleanly then finds nothing left to write).
    """
    proc = subprocess.run(  # noqa: S603
        [resolve_pg_bin("initdb", settings.pg_bin_dir), "--sync-only", "-D", str(data)],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
        timeout=settings.timeout_s,
    )
    if proc.returncode != 0:
        raise RestoreFailed(f"initdb --sync-only exited {proc.returncode}: {proc.stderr.strip()[-500:]}")


@dataclass
class RestoreSettings:
    """What :func:`run_restore_test` needs besides S3 (``backup_testing`` config, resolved)."""

    bucket: str
    prefix: str
    scratch_root: Path
    port: int | None = None
    superuser: str = "postgres"
    production_targets: list[str] = field(default_factory=list)
    production_data_dirs: list[str] = field(default_factory=list)
    heapallindexed: bool = True
    smoke_queries: list[tuple[str, str]] = field(default_factory=list)
    rpo_column: str | None = None
    rpo_warning_min: float = 75
    rpo_critical_min: float = 120
    rto_warning_min: float = 45
    rto_critical_min: float = 60
    download_concurrency: int = 2  # chain members downloaded at once
    #: Parallel ranged GETs per object: ``auto`` (AWS's endpoints only), ``on``, ``off``; see
    #: :func:`ranged_gets_enabled`. ``download_part_mb`` 0 turns them off too.
    ranged_gets: str = "auto"
    download_part_mb: int = 16
    ranged_in_flight: int = 8  # ranged GETs in flight per object
    validation_jobs: int = 2  # pg_amcheck --jobs and row-count connections
    pg_bin_dir: str | None = None
    timeout_s: float = 7200

    def part_size(self, endpoint_url: str | None) -> int:
        """Bytes per ranged GET for an S3 client at ``endpoint_url``; 0 = one streaming GET."""
        if self.download_part_mb <= 0 or not ranged_gets_enabled(self.ranged_gets, endpoint_url):
            return 0
        return self.download_part_mb << 20


@dataclass
class RestoreOutcome:
    """The results of one test and the figures recorded in ``recovery_tests``."""

    results: list[CheckResult]
    backup_id: str | None = None
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    bytes: int | None = None
    restore_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_s(self) -> float | None:
        if self.bytes is None or not self.restore_seconds:
            return None
        return round(self.bytes / 1e6 / self.restore_seconds, 2)

    @property
    def status(self) -> Status:
        return worst(self.results) if self.results else Status.SKIPPED


def _result(check: str, status: Status, summary: str, **kw: Any) -> CheckResult:
    return CheckResult(f"restore.{check}", status, summary, component="backups", **kw)


def _pick(s3: Any, settings: RestoreSettings, backup_id: str | None) -> tuple[BackupEntry | None, str]:
    entries = list_backups(s3, settings.bucket, settings.prefix, read_manifests=True)
    complete = [e for e in entries if e.complete]
    newest = complete[-1].backup_id if complete else None
    if backup_id is None:
        if newest is None:
            return None, f"no complete backup under s3://{settings.bucket}/{settings.prefix}"
        return complete[-1], ""
    found = next((e for e in entries if e.backup_id == backup_id), None)
    if found is None:
        return None, f"backup {backup_id!r} does not exist (newest complete: {newest or 'none'})"
    if not found.complete:
        return None, (
            f"backup {backup_id!r} is incomplete ({found.manifest_error or 'no manifest.json'}); "
            f"newest complete: {newest or 'none'}"
        )
    return found, ""


def _manifest(s3: Any, settings: RestoreSettings, backup_id: str) -> dict[str, Any]:
    key = f"{settings.prefix}{backup_id}/{MANIFEST_NAME}"
    try:
        data: dict[str, Any] = json.loads(s3.get_object(Bucket=settings.bucket, Key=key)["Body"].read())
    except Exception as exc:  # noqa: BLE001 - any failure: the chain is broken
        raise RestoreFailed(f"chain member {backup_id}: manifest unreadable ({type(exc).__name__})") from exc
    return data


def _restore_files(
    s3: Any,
    settings: RestoreSettings,
    manifest: dict[str, Any],
    work: Path,
    timer: PhaseTimer | None = None,
    major: int | None = None,
) -> int:
    """Download, check and extract the chain; combine into ``work/data``; sync once; bytes downloaded.

    ``timer`` gets the phases ``download`` (start → S3's last byte; extraction runs alongside)
    and ``extract`` (what the extraction still had to do after the last byte), ``verify``,
    ``combine`` and ``sync``.
    """
    timer = timer or PhaseTimer()
    chain: list[str] = manifest["chain"]
    manifests = {
        bid: (manifest if bid == manifest["backup_id"] else _manifest(s3, settings, bid)) for bid in chain
    }
    dirs = {bid: work / ("data" if len(chain) == 1 else f"chain-{i}") for i, bid in enumerate(chain)}
    part_size = settings.part_size(getattr(getattr(s3, "meta", None), "endpoint_url", None))

    def one(bid: str) -> _Stream:
        obj = next((o for o in manifests[bid]["objects"] if o["name"] == TAR_NAME), None)
        if obj is None:
            raise RestoreFailed(f"{bid}: the manifest lists no {TAR_NAME}")
        return _download_extract(
            s3, settings.bucket, obj, dirs[bid], part_size=part_size, ahead=settings.ranged_in_flight
        )

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=settings.download_concurrency, thread_name_prefix="restore") as pool:
        streams = list(pool.map(one, chain))
    wall = time.monotonic() - t0
    total = sum(s.bytes for s in streams)
    download = min(wall, max(s.download_s for s in streams))
    phase = timer.add("download", download, total)
    phase.update(
        ranged_part_bytes=part_size or None,
        stalled_on_extract_s=round(sum(s.stalled_s for s in streams), 3),
        pipelined="extract",
    )
    timer.add("extract", wall - download)  # the tail after the last byte: no rate of its own
    with timer.phase("verify"):
        for bid in chain:  # before anything is changed in the directories
            _verify(dirs[bid], bid, settings)
    if len(chain) > 1:
        with timer.phase("combine"):
            _combine(settings, chain, dirs, work, major)
    with timer.phase("sync", total):
        _sync_once(work / "data", settings)
    return total


def _combine(
    settings: RestoreSettings, chain: list[str], dirs: dict[str, Path], work: Path, major: int | None = None
) -> None:
    """``pg_combinebackup`` of the extracted chain into ``work/data``; the members are removed.

    ``--no-sync``: :func:`_sync_once` follows. ``--link`` (PostgreSQL 18+): unchanged files are
    hard links to the extracted full instead of copies (same file system; the members are
    deleted right after, so nothing else sees a shared file).
    """
    cmd = [resolve_pg_bin("pg_combinebackup", settings.pg_bin_dir), "--no-sync"]
    if major is not None and major >= 18:
        cmd.append("--link")
    proc = subprocess.run(  # noqa: S603
        [*cmd, *(str(dirs[b]) for b in chain), "-o", str(work / "data")],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
        timeout=settings.timeout_s,
    )
    if proc.returncode != 0:
        raise RestoreFailed(f"pg_combinebackup exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    for bid in chain:
        shutil.rmtree(dirs[bid], ignore_errors=True)


def _verify(member: Path, backup_id: str, settings: RestoreSettings) -> None:
    """``pg_verifybackup`` on one extracted backup of the chain: every file against PostgreSQL's
    own ``backup_manifest`` and the WAL the backup needs (parsed with ``pg_waldump``)."""
    proc = subprocess.run(  # noqa: S603
        [resolve_pg_bin("pg_verifybackup", settings.pg_bin_dir), "--quiet", str(member)],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(),
        timeout=settings.timeout_s,
    )
    if proc.returncode != 0:
        out = " ".join((proc.stderr + proc.stdout).split())
        raise VerificationFailed(f"pg_verifybackup of {backup_id} exited {proc.returncode}: {out[-500:]}")


def _check_major(manifest: dict[str, Any], settings: RestoreSettings) -> int:
    """The server binaries' major version, which must be the backup's; raises otherwise."""
    try:
        ours = binary_major(settings.pg_bin_dir)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise RestoreFailed(f"cannot run the PostgreSQL server binary: {exc}") from exc
    num = str(manifest.get("server_version_num") or "")
    theirs = int(num) // 10000 if num.isdigit() else None
    if theirs is not None and theirs != ours:
        raise VersionMismatch(
            f"backup {manifest.get('backup_id')} is PostgreSQL {theirs} ({manifest.get('server_version')}), "
            f"the server binaries are PostgreSQL {ours} ({resolve_pg_bin('postgres', settings.pg_bin_dir)}): "
            "set database_backups.pg_bin_dir to PostgreSQL "
            f"{theirs}'s bin directory"
        )
    return ours


def _config_result(findings: list[ConfigFinding]) -> CheckResult:
    """What the backup's configuration asked for, and that it was not used."""
    critical = [f for f in findings if f.critical]
    signals = [f for f in findings if f.kind == "signal"]
    details = {
        "findings": [
            {"file": f.file, "setting": f.setting, "value": f.value[:200], "line": f.line, "kind": f.kind}
            for f in findings
        ],
        "neutralised": "postgresql.conf not read, postgresql.auto.conf emptied, signal files removed, "
        "program/library settings forced off on the command line",
    }
    if critical:
        return _result(
            "config",
            Status.CRITICAL,
            f"SECURITY: the backup's postgresql.auto.conf sets {'; '.join(f.describe() for f in critical[:4])}"
            " — neutralised, nothing ran; ALTER SYSTEM on production or a tampered backup: find out who set it",
            severity="P2",
            details=details,
        )
    if signals:
        return _result(
            "config",
            Status.WARNING,
            f"the backup carried {', '.join(f.describe() for f in signals)}: the restore ran without them",
            details=details,
        )
    kept = [f.describe() for f in findings]
    return _result(
        "config",
        Status.OK,
        "the backup's configuration was not used (own config file, postgresql.auto.conf emptied, "
        "program/library settings forced off)"
        + (f"; postgresql.conf sets {'; '.join(kept[:3])}" if kept else ""),
        details=details,
    )


def _start(work: Path, settings: RestoreSettings, major: int) -> tuple[ScratchServer, list[ConfigFinding]]:
    """Start the restored cluster in ``work/data`` (see :mod:`sanvi_ops.core.pgserver`): its own
    configuration disarmed, a private unix socket, local trust only, a minimal environment."""
    data = work / "data"
    version_file = data / "PG_VERSION"
    found = version_file.read_text().strip() if version_file.is_file() else "?"
    if found != str(major):
        raise VersionMismatch(
            f"the restored data directory is PostgreSQL {found}, the server binaries are PostgreSQL {major}: "
            f"set database_backups.pg_bin_dir to PostgreSQL {found}'s bin directory"
        )
    findings = neutralise_data_dir(data)
    try:
        return start_scratch(work, port=settings.port, bin_dir=settings.pg_bin_dir), findings
    except Exception as exc:
        raise _StartFailed(exc, findings) from exc


def _local_dsn(work: Path, port: int, dbname: str, user: str) -> str:
    from psycopg.conninfo import make_conninfo

    return str(
        make_conninfo(
            host=str(work / "sock"),
            port=port,
            dbname=dbname,
            user=user,
            application_name="sanvi_ops.tasks.backup_testing.restore",
            options=SESSION_OPTIONS,
        )
    )


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _amcheck(work: Path, port: int, settings: RestoreSettings) -> CheckResult:
    env = child_env(extra={"PGOPTIONS": SESSION_OPTIONS})
    cmd = [
        resolve_pg_bin("pg_amcheck", settings.pg_bin_dir),
        "-h",
        str(work / "sock"),
        "-p",
        str(port),
        "-U",
        settings.superuser,
        "--all",
        "--install-missing",
        "--no-password",
        f"--jobs={max(1, settings.validation_jobs)}",  # one connection per job, relations in parallel
    ]
    if settings.heapallindexed:
        cmd.append("--heapallindexed")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=False, timeout=settings.timeout_s
    )  # noqa: S603
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode == 0 and not proc.stdout.strip():
        return _result("amcheck", Status.OK, "pg_amcheck --all: no corruption found")
    return _result(
        "amcheck",
        Status.CRITICAL,
        f"pg_amcheck exited {proc.returncode}: {out[-400:] or '(no message)'}",
        severity="P2",
        details={"output": out[-4000:]},
    )


def _columns(dsn: str) -> dict[str, list[str]]:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows = conn.execute(
            """
            SELECT table_schema || '.' || table_name, column_name || ' ' || data_type
            FROM information_schema.columns
            WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
            ORDER BY 1, ordinal_position
            """
        ).fetchall()
    cols: dict[str, list[str]] = {}
    for table, col in rows:
        cols.setdefault(table, []).append(col)
    return cols


def parallel_row_counts(dsn: str, jobs: int) -> dict[str, int]:
    """Exact ``count(*)`` of every user table (the tables of :func:`sanvi_ops.core.backups.row_counts`)
    over ``jobs`` connections, largest tables first.

    Unlike the backup's count this needs no common snapshot: nothing writes to the restored
    scratch cluster, so every session sees the same data.
    """
    import queue
    import threading

    import psycopg
    from psycopg import sql

    from sanvi_ops.core.backups import USER_TABLES_SQL

    with psycopg.connect(dsn) as conn:
        tables = conn.execute(
            sql.SQL("SELECT nspname, relname FROM ({}) t ORDER BY relpages DESC, 1, 2").format(
                sql.SQL(USER_TABLES_SQL)  # a constant of ours, no outside text
            )
        ).fetchall()
    todo: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
    for row in tables:
        todo.put((row[0], row[1]))
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def work() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            while True:
                try:
                    schema, table = todo.get_nowait()
                except queue.Empty:
                    return
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
                row = conn.execute(query).fetchone()
                with lock:
                    counts[f"{schema}.{table}"] = int(row[0]) if row else 0

    workers = max(1, min(jobs, len(tables)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore-count") as pool:
        for fut in [pool.submit(work) for _ in range(workers)]:
            fut.result()
    return dict(sorted(counts.items()))


def _row_counts(manifest: dict[str, Any], restored: dict[str, int]) -> CheckResult:
    expected: dict[str, int] = manifest["row_counts"]
    missing = sorted(set(expected) - set(restored))
    differ = {
        t: {"manifest": n, "restored": restored[t]}
        for t, n in expected.items()
        if t in restored and restored[t] != n
    }
    total = sum(restored.values())
    if missing:
        return _result(
            "row_counts",
            Status.CRITICAL,
            f"{len(missing)} table(s) of the backup missing after restore: {', '.join(missing[:5])}",
            severity="P2",
            details={"missing": missing, "differ": differ},
        )
    if differ:
        return _result(
            "row_counts",
            Status.WARNING,
            f"{len(differ)} of {len(expected)} tables differ from the manifest's counts (writes between the count "
            f"and the backup's end?): {', '.join(list(differ)[:5])}",
            details={"differ": differ},
        )
    return _result(
        "row_counts",
        Status.OK,
        f"all {len(expected)} tables match the manifest ({total} rows)",
        metric="rows",
        observed=float(total),
        unit="rows",
    )


def _schema(manifest: dict[str, Any], restored_dsn: str, source_dsn: str | None) -> CheckResult:
    restored = _columns(restored_dsn)
    tables = set(manifest["row_counts"])
    extra = sorted(t for t in restored if t not in tables and "." in t)
    extra = [t for t in extra if not t.startswith("public.pg_")]
    source: dict[str, list[str]] | None = None
    if source_dsn:
        with contextlib.suppress(Exception):
            source = _columns(source_dsn)
    if source is None:
        return _result(
            "schema",
            Status.OK,
            f"table list matches the manifest ({len(tables)} tables); columns not compared "
            "(source catalog not reachable or, in a DR drill, not consulted)",
            details={"compared_with": "manifest"},
        )
    changed = sorted(t for t in set(source) | set(restored) if source.get(t) != restored.get(t))
    if changed:
        return _result(
            "schema",
            Status.WARNING,
            f"{len(changed)} table(s) differ from the live source's catalog (migrated since the backup?): "
            f"{', '.join(changed[:5])}",
            details={"compared_with": "source catalog", "differ": changed[:50], "extra": extra[:50]},
        )
    return _result(
        "schema",
        Status.OK,
        f"tables and columns equal the live source's catalog ({len(restored)} relations)",
        details={"compared_with": "source catalog"},
    )


def _smoke(dsn: str, queries: list[tuple[str, str]]) -> CheckResult:
    import psycopg

    if not queries:
        return _result(
            "smoke",
            Status.SKIPPED,
            "no smoke queries configured (tasks.backup_testing.settings.smoke_queries)",
            details={"config_key": "tasks.backup_testing.settings.smoke_queries"},
        )
    failed: dict[str, str] = {}
    digests: dict[str, str] = {}  # sha256 of each answer: comparable with the source, leaks no data
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        conn.execute("SET statement_timeout = '60s'")
        for name, query in queries:
            try:
                rows = conn.execute(query.encode()).fetchall()
                digests[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
            except psycopg.Error as exc:
                failed[name] = " ".join(str(exc).split())[:300]
    if failed:
        return _result(
            "smoke",
            Status.CRITICAL,
            f"{len(failed)} of {len(queries)} smoke queries failed: {', '.join(failed)}",
            severity="P2",
            details={"failed": failed},
        )
    return _result(
        "smoke", Status.OK, f"all {len(queries)} smoke queries succeeded", details={"answer_sha256": digests}
    )


def _rpo(
    dsn: str, manifest: dict[str, Any], settings: RestoreSettings, reference: dt.datetime | None = None
) -> tuple[CheckResult, float | None]:
    point = reference or dt.datetime.fromisoformat(manifest.get("row_counts_at") or manifest["started_at"])
    return rpo_check(
        dsn,
        settings.rpo_column,
        point,
        settings.rpo_warning_min,
        settings.rpo_critical_min,
        against="the drill start" if reference else "the backup point",
    )


def rpo_check(
    dsn: str,
    rpo_column: str | None,
    point: dt.datetime,
    warning_min: float,
    critical_min: float,
    *,
    against: str = "the backup point",
) -> tuple[CheckResult, float | None]:
    """Measured RPO: how much older the newest ``rpo_column`` value is than ``point``."""
    import psycopg
    from psycopg import sql

    if not rpo_column:
        skipped = _result(
            "rpo",
            Status.SKIPPED,
            "no tasks.backup_testing.settings.rpo_column configured",
            details={"config_key": "tasks.backup_testing.settings.rpo_column"},
        )
        return skipped, None
    schema, table, column = rpo_column.split(".")
    query = sql.SQL("SELECT max({}) FROM {}.{}").format(
        sql.Identifier(column), sql.Identifier(schema), sql.Identifier(table)
    )
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        return _result("rpo", Status.ERROR, f"{rpo_column}: {' '.join(str(exc).split())[:300]}"), None
    newest = row[0] if row else None
    if newest is None:
        return _result("rpo", Status.WARNING, f"{rpo_column}: no rows in the restored database"), None
    if newest.tzinfo is None:  # timestamp without time zone: taken as UTC
        newest = newest.replace(tzinfo=dt.UTC)
    seconds = max(0.0, (point - newest).total_seconds())
    minutes = seconds / 60
    status = grade(minutes, warning_min, critical_min)
    return (
        _result(
            "rpo",
            status,
            f"newest {rpo_column} in the restore is {minutes:.1f} min older than {against} "
            f"({newest.isoformat()} vs {point.isoformat()})",
            metric="rpo_minutes",
            observed=round(minutes, 2),
            unit="min",
            thresholds={"warning": warning_min, "critical": critical_min},
            severity="P2" if status == Status.CRITICAL else None,
        ),
        seconds,
    )


# --------------------------------------------------------------------------------------------
# The whole test
# --------------------------------------------------------------------------------------------


def run_restore_test(
    s3: Any,
    settings: RestoreSettings,
    *,
    app: PgTarget | None,
    backup_id: str | None = None,
    dry_run: bool = False,
    rpo_reference: dt.datetime | None = None,
    compare_source: bool = True,
    clock: tuple[dt.datetime, float] | None = None,
    while_up: Callable[[str], None] | None = None,
    on_downloaded: Callable[[], None] | None = None,
) -> RestoreOutcome:
    """Guard, clean leftovers, restore, validate, always clean up; never raises for a bad backup.

    :param app: the application database (for the production guard and the source catalog);
        ``None`` when its connection is not configured.
    :param rpo_reference: measure the RPO against this moment (the DR drill's start) instead of
        the backup's point.
    :param compare_source: compare the schema with the live source's catalog (the DR drill does
        not: it recovers as if the primary were lost).
    :param clock: ``(started_at, time.monotonic() at that moment)`` when RTO counts from an
        earlier start (the drill's).
    :param while_up: called with the restored database's DSN once it answers the smoke queries,
        before validation and teardown (the DR drill's application and cache; it must not raise).
    :param on_downloaded: called once the backup's files are down and extracted (the worker's
        CPU-heavy part is over; the DR drill starts its file and configuration recovery then). It
        must not raise; it is not called when the restore fails before.
    :raises RestoreRefused: a guard refused the target (nothing was run).
    """
    started, t0 = clock or (dt.datetime.now(dt.UTC), time.monotonic())
    root = settings.scratch_root
    refuse_production(
        scratch_host="127.0.0.1",
        scratch_port=settings.port,
        dbname=app.dbname if app else "postgres",
        app=app,
        production_targets=settings.production_targets,
    )
    app_dsn = app.dsn() if app else None
    guard_scratch_root(root, app, settings.production_data_dirs)

    results: list[CheckResult] = []
    if dry_run:
        cleaned = sorted(p.name for p in root.iterdir()) if root.exists() else []
        verb = "would remove"
    else:
        cleaned, verb = clean_leftovers(root), "removed"
    if cleaned:
        results.append(
            _result(
                "leftovers",
                Status.WARNING,
                f"{verb} {len(cleaned)} scratch cluster(s) left by a killed run: {', '.join(cleaned)}",
                details={"removed": cleaned, "dry_run": dry_run},
            )
        )
    outcome = RestoreOutcome(results=results, started_at=started)

    try:
        entry, problem = _pick(s3, settings, backup_id)
    except Exception as exc:  # noqa: BLE001 - S3 trouble is a result
        results.append(
            _result("run", Status.ERROR, f"listing s3://{settings.bucket}/{settings.prefix} failed: {exc}")
        )
        return outcome
    if entry is None or entry.manifest is None:
        status = Status.ERROR if backup_id else Status.CRITICAL
        results.append(_result("run", status, problem, severity="P2" if status == Status.CRITICAL else None))
        return outcome
    manifest = entry.manifest
    outcome.backup_id = entry.backup_id
    outcome.details = {"chain": manifest["chain"], "kind": manifest["kind"]}
    if dry_run:
        results.append(
            _result(
                "run",
                Status.SKIPPED,
                f"dry run: would restore {entry.backup_id} (chain of {len(manifest['chain'])}, "
                f"{manifest['total_bytes'] / 1e6:.1f} MB) under {root}",
            )
        )
        return outcome

    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    work = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=root))  # short: unix socket paths
    write_marker(
        work,
        {
            "backup_id": entry.backup_id,
            "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()),
            "started_at": started.isoformat(),
        },
    )
    server = None
    timer = PhaseTimer()
    outcome.details["phases"] = timer.phases  # filled as the phases run, also when one fails
    try:
        try:
            major = _check_major(manifest, settings)
            timer.add("prepare", time.monotonic() - t0)  # guards, leftovers, listing, version
            outcome.bytes = _restore_files(s3, settings, manifest, work, timer, major)
            if on_downloaded is not None:
                on_downloaded()
            results.append(
                _result(
                    "verify",
                    Status.OK,
                    f"pg_verifybackup: {len(manifest['chain'])} backup(s) of the chain match their "
                    "backup_manifest (files and WAL)",
                )
            )
            outcome.restore_seconds = round(time.monotonic() - t0, 3)
            with timer.phase("start"):  # to consistency (WAL replay) and accepting connections
                server, findings = _start(work, settings, major)
            results.append(_config_result(findings))
        except Exception as exc:  # noqa: BLE001 - every failure is a result; cleanup follows
            if isinstance(exc, _StartFailed):
                results.append(_config_result(exc.findings))
            names: dict[type[Exception], str] = {VerificationFailed: "verify", VersionMismatch: "version"}
            check = names.get(type(exc), "run")
            results.append(
                _result(
                    check,
                    Status.CRITICAL,
                    f"restore of {entry.backup_id} failed: {exc}",
                    severity="P2",
                    details={"backup_id": entry.backup_id},
                )
            )
            return outcome
        dsn = _local_dsn(work, server.port, manifest["database"], settings.superuser)
        with timer.phase("smoke"):
            smoke = _smoke(dsn, settings.smoke_queries)
        outcome.rto_seconds = round(time.monotonic() - t0, 3)
        if while_up is not None:
            while_up(dsn)
        timer.in_rto = False  # validation after the server is healthy: reported, not in the RTO
        with timer.phase("amcheck"):
            amcheck = _amcheck(work, server.port, settings)
        with timer.phase("row_counts"):
            counts = _row_counts(manifest, parallel_row_counts(dsn, settings.validation_jobs))
        with timer.phase("schema"):
            schema = _schema(manifest, dsn, app_dsn if compare_source else None)
        checks = [amcheck, counts, schema, smoke]
        with timer.phase("rpo"):
            rpo_result, outcome.rpo_seconds = _rpo(dsn, manifest, settings, rpo_reference)
        checks.append(rpo_result)
        results.extend(checks)
    except Exception as exc:  # noqa: BLE001 - validation could not run
        results.append(_result("run", Status.ERROR, f"validation of {entry.backup_id} failed: {exc}"))
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop("immediate")
        _stop_dir(work)
        shutil.rmtree(work, ignore_errors=True)
    rto_min = (outcome.rto_seconds or 0) / 60
    phases = [dict(p) for p in timer.phases]
    results.insert(
        1 if cleaned else 0,
        _result(
            "phases",
            Status.OK,
            phases_line(phases),
            details={"phases": phases, "in_rto_seconds": timer.rto_seconds()},
        ),
    )
    results.insert(
        1 if cleaned else 0,
        _result(
            "duration",
            grade(rto_min, settings.rto_warning_min, settings.rto_critical_min),
            f"restored {entry.backup_id} ({(outcome.bytes or 0) / 1e6:.1f} MB, chain of {len(manifest['chain'])}) "
            f"in {outcome.restore_seconds:.1f} s ({outcome.mb_per_s} MB/s); RTO {rto_min:.1f} min",
            metric="rto_minutes",
            observed=round(rto_min, 2),
            unit="min",
            thresholds={"warning": settings.rto_warning_min, "critical": settings.rto_critical_min},
            details={
                "backup_id": entry.backup_id,
                "bytes": outcome.bytes,
                "restore_seconds": outcome.restore_seconds,
                "mb_per_s": outcome.mb_per_s,
                "rto_seconds": outcome.rto_seconds,
                "rpo_seconds": outcome.rpo_seconds,
                "phases": phases,
            },
        ),
    )
    return outcome


# --------------------------------------------------------------------------------------------
# Results store (migration 006)
# --------------------------------------------------------------------------------------------


def record_test(
    store_dsn: str, dag_id: str, run_id: str, outcome: RestoreOutcome, *, kind: str = KIND
) -> None:
    """One row in ``recovery_tests`` of ``kind``; a retried task overwrites its own row."""
    import psycopg
    from psycopg.types.json import Jsonb

    with psycopg.connect(store_dsn, connect_timeout=10) as conn:
        conn.execute(
            """
            INSERT INTO recovery_tests (dag_id, run_id, kind, backup_id, started_at, status, bytes,
                                        restore_seconds, mb_per_s, rto_seconds, rpo_seconds, details)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (dag_id, run_id, kind) DO UPDATE SET
                backup_id = EXCLUDED.backup_id, started_at = EXCLUDED.started_at, status = EXCLUDED.status,
                bytes = EXCLUDED.bytes, restore_seconds = EXCLUDED.restore_seconds,
                mb_per_s = EXCLUDED.mb_per_s, rto_seconds = EXCLUDED.rto_seconds,
                rpo_seconds = EXCLUDED.rpo_seconds, details = EXCLUDED.details
            """,
            (
                dag_id,
                run_id,
                kind,
                outcome.backup_id,
                outcome.started_at,
                str(outcome.status),
                outcome.bytes,
                outcome.restore_seconds,
                outcome.mb_per_s,
                outcome.rto_seconds,
                outcome.rpo_seconds,
                Jsonb(outcome.details),
            ),
        )


def recent_tests(
    store_dsn: str, limit: int, *, before_run: str | None = None, kind: str = KIND
) -> list[dict[str, Any]]:
    """The newest ``limit`` recovery tests of ``kind`` (other than ``before_run``), newest first."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(store_dsn, connect_timeout=10, row_factory=dict_row) as conn:
        return conn.execute(
            """
            SELECT run_id, backup_id, started_at, status, bytes, restore_seconds, mb_per_s,
                   rto_seconds, rpo_seconds, details -> 'phases' AS phases
            FROM recovery_tests WHERE kind = %s AND run_id IS DISTINCT FROM %s
            ORDER BY started_at DESC LIMIT %s
            """,
            (kind, before_run, limit),
        ).fetchall()


def trend_result(
    outcome: RestoreOutcome,
    earlier: list[dict[str, Any]],
    *,
    check: str = "restore.trend",
    what: str = "restore",
) -> CheckResult:
    """The trend line for the report: this test's RTO/MB/s against the earlier ones."""
    if not earlier:
        return CheckResult(
            check,
            Status.OK,
            f"first recorded {what} test: no trend yet",
            component="backups",
            details={"earlier": []},
        )
    rows = [
        {
            "started_at": r["started_at"].isoformat(),
            "backup_id": r["backup_id"],
            "status": r["status"],
            "rto_min": round(r["rto_seconds"] / 60, 2) if r["rto_seconds"] is not None else None,
            "mb_per_s": r["mb_per_s"],
            "rpo_min": round(r["rpo_seconds"] / 60, 2) if r["rpo_seconds"] is not None else None,
        }
        for r in earlier
    ]
    rtos = [r["rto_min"] for r in rows if r["rto_min"] is not None]
    now_rto = round((outcome.rto_seconds or 0) / 60, 2) if outcome.rto_seconds is not None else None
    trend = " → ".join(str(r) for r in [*reversed(rtos), now_rto] if r is not None)
    return CheckResult(
        check,
        Status.OK,
        f"RTO (min) over the last {len(rows) + 1} tests ({what}): {trend}",
        component="backups",
        details={"earlier": rows},
    )
