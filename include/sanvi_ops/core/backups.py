"""Physical PostgreSQL backups streamed to S3: daily full, hourly incremental, manifest last.

How a backup is taken
=====================
``pg_basebackup -Ft -X fetch -c fast -D -`` (plus ``--incremental=<parent backup_manifest>``
for an incremental) writes one tar stream to our stdin pipe. We read it in 1 MiB chunks and
feed each chunk, at the same time, to

* a SHA-256 of the whole stream,
* a tiny tar-header walker that captures the ``backup_manifest`` member PostgreSQL appends at
  the end of the stream (needed as the parent of the next incremental and by
  ``pg_verifybackup``/``pg_combinebackup`` on restore),
* optionally a zstd compressor (``database_backups.compression``, default ``zstd``; a SHA-256
  of the raw tar and one of the compressed bytes as stored),
* an S3 multipart upload: a part buffer of ``part_size_mb``; at most ``max_inflight_parts``
  parts uploading while the next fills. Memory is bounded by
  ``part_size_mb × (max_inflight_parts + 1)`` whatever the database size; nothing is written to
  local disk.

Sizing: S3 takes at most 10,000 parts of 5 MiB..5 GiB. Before anything starts, the cluster is
measured (sum of ``pg_tablespace_size``, else of ``pg_database_size``) and the part size raised
when 10,000 × ``part_size_mb`` would not hold it × 1.25 (growth and WAL during the backup): 16 MiB
up to 125 GiB, 26 MiB at 200 GiB, 787 MiB at 6 TiB; beyond 10,000 × 5 GiB (≈ 48.8 TiB) the backup
is refused (:class:`BackupTooLarge`). Fewer parts go in flight when they are big, keeping memory
near max(the configured bound, 1 GiB).

Every object is written with ``ServerSideEncryption=aws:kms`` and the backup key
(``database_backups.kms_key_alias``; the key is created when the alias does not exist). A
failed ``pg_basebackup`` aborts the multipart upload. The manifest ``manifest.json`` is written
**last**: a backup without it is half-written and never used or counted as good.

Row counts are taken in one ``REPEATABLE READ`` snapshot of the application database just
before ``pg_basebackup`` starts. The physical backup is consistent as of its ``end_lsn`` (a
little later), so on a busy database the restored counts may differ from the manifest by the
writes made during the backup; on a quiet one they are equal.

Server settings it needs (PostgreSQL 17+)
-----------------------------------------
``wal_level = replica`` (or ``logical``), ``max_wal_senders >= 2`` (default 10),
``summarize_wal = on`` (incremental backups read the WAL summaries), ``wal_summary_keep_time``
longer than the gap between a backup and its child (default 10 days), a ``replication`` line in
``pg_hba.conf`` for the backup user (initdb's default allows 127.0.0.1 with scram), and a role
with ``REPLICATION`` (or superuser). An incremental whose parent's WAL summaries are gone fails;
the next nightly full starts a new chain.

S3 layout
=========
::

    s3://<bucket>/<prefix><backup_id>/base.tar[.zst]    the pg_basebackup tar stream (.zst: zstd)
    s3://<bucket>/<prefix><backup_id>/backup_manifest   PostgreSQL's manifest (also inside base.tar)
    s3://<bucket>/<prefix><backup_id>/manifest.json     ours, written last

``backup_id`` is ``<UTC start, %Y%m%dT%H%M%SZ>-full`` or ``…-incr``; ids sort by time.

``manifest.json`` (``"format": "sanvi-pg-backup/1"``)::

    {
      "format": "sanvi-pg-backup/1",
      "backup_id": "20261127T010000Z-full",
      "kind": "full" | "incremental",
      "parent": null | "<backup_id of the previous backup in the chain>",
      "chain": ["<full id>", "<incr id>", ..., "<this id>"],   # restore order
      "started_at": "2026-11-27T01:00:00+00:00", "finished_at": "...", "duration_s": 12.3,
      "server_version": "18.1", "server_version_num": 180001, "system_identifier": "7712…",
      "timeline": 1, "start_lsn": "0/2000028", "end_lsn": "0/2000120",
      "database": "<application database>",
      "row_counts": {"public.orders": 1234, ...},          # schema.table → exact count(*)
      "objects": [{"name": "base.tar", "key": "<full S3 key, …/base.tar.zst>",
                   "size": 123, "sha256": "<hex>",              # as stored in S3 (compressed)
                   "compression": "zstd" | "none",               # absent in older backups = none
                   "raw_size": 456, "raw_sha256": "<hex>"},      # the tar pg_basebackup wrote
                  {"name": "backup_manifest", "key": "...", "size": 45, "sha256": "<hex>",
                   "compression": "none", "raw_size": 45, "raw_sha256": "<hex>"}],
      "total_bytes": 168,                                   # stored
      "raw_bytes": 501,                                     # uncompressed
      "compression": {"method": "zstd", "level": 3},
      "sizing": {"cluster_bytes": …, "measured": "sum of pg_tablespace_size",
                 "part_size": 16777216, "parts": 8, "reason": "…"},
      "encryption": {"sse": "aws:kms", "kms_key_id": "<key id>"},
      "pg_basebackup": {"format": "tar", "wal": "fetch", "compression": "none",
                        "incremental_of": null | "<parent id>"}
    }

Restoring (for ``backup_testing`` / ``dr_testing``): download ``base.tar`` of every id in
``chain`` (check sizes and sha256 against the manifest; :func:`open_stored` undoes the entry's
compression while streaming and checks the raw size and sha256), untar each into its own directory,
``pg_verifybackup`` each, then ``pg_combinebackup <full dir> <incr dirs…> -o <target>`` (a full
alone is used as is), and start the server on the target; ``base.tar`` carries the WAL needed
to reach consistency (``-X fetch``).

Retention is S3's job: a lifecycle rule on ``<prefix>`` moves objects to Glacier after
``glacier_after_days``, expires them after ``backups.database.retention_days`` and aborts
multipart uploads left by a killed run after a day. :func:`ensure_lifecycle` creates it when
missing and reports when it differs; nothing here deletes backups.

Passwords never reach a command line: the libpq tools get a ``PGPASSFILE`` written 0600 in a
private temporary directory and removed afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanvi_ops.core.pgserver import child_env, resolve_pg_bin  # one source of PostgreSQL binaries
from sanvi_ops.core.results import CheckResult, Status

log = logging.getLogger(__name__)

FORMAT = "sanvi-pg-backup/1"
MANIFEST_NAME = "manifest.json"
TAR_NAME = "base.tar"
PG_MANIFEST_NAME = "backup_manifest"
LIFECYCLE_RULE_ID = "sanvi-db-backups-retention"
CHUNK = 1 << 20

__all__ = [
    "FORMAT",
    "MANIFEST_NAME",
    "BackupEntry",
    "BackupFailed",
    "BackupTooLarge",
    "USER_TABLES_SQL",
    "PgTarget",
    "backup_id_for",
    "ensure_kms_key",
    "ensure_lifecycle",
    "list_backups",
    "open_stored",
    "plan_part_size",
    "resolve_pg_bin",
    "take_backup",
]


class BackupFailed(RuntimeError):
    """The backup could not be taken; nothing usable was left behind (no manifest written)."""


# --------------------------------------------------------------------------------------------
# PostgreSQL side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTarget:
    """Where to connect: the application database (physical backups copy its whole cluster)."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    #: The connection's other libpq parameters (sslmode, options, keepalives, ...), kept so the
    #: backup tools connect the way the Airflow connection says (see :func:`libpq_env`).
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_dsn(cls, dsn: str) -> PgTarget:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(dsn)
        core = {"host", "port", "user", "password", "dbname", "application_name", "connect_timeout"}
        return cls(
            host=str(d.get("host") or "127.0.0.1"),
            port=int(d.get("port") or 5432),
            user=str(d.get("user") or "postgres"),
            password=str(d.get("password") or ""),
            dbname=str(d.get("dbname") or "postgres"),
            params=tuple(sorted((k, str(v)) for k, v in d.items() if k not in core and v is not None)),
        )

    def dsn(self) -> str:
        from psycopg.conninfo import make_conninfo

        return str(
            make_conninfo(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=self.dbname,
                connect_timeout=10,
                application_name="sanvi_ops.backup",
                **dict(self.params),
            )
        )

    def __repr__(self) -> str:  # never print the password
        return f"PgTarget(host={self.host!r}, port={self.port}, user={self.user!r}, dbname={self.dbname!r})"


def _passfile_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@contextlib.contextmanager
def libpq_env(target: PgTarget) -> Iterator[dict[str, str]]:
    """Environment for libpq tools: :func:`~sanvi_ops.core.pgserver.child_env` (nothing of the task's
    environment: no ``AIRFLOW_*``, AWS or Slack variable) plus ``HOME`` (libpq's ``~/.postgresql``
    certificates), host/port/user via ``PG*``, the password via a 0600 ``PGPASSFILE`` in a private
    temporary directory that is removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="sanvi-pgpass-"))
    try:
        passfile = tmp / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        line = ":".join(_passfile_escape(v) for v in (target.host, str(target.port), "*", target.user))
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{line}:{_passfile_escape(target.password)}\n")
        env = child_env(extra={"HOME": os.environ["HOME"]} if os.environ.get("HOME") else None)
        env.update(
            {
                "PGHOST": target.host,
                "PGPORT": str(target.port),
                "PGUSER": target.user,
                "PGPASSFILE": str(passfile),
                "PGAPPNAME": "sanvi_ops.backup",
                "PGCONNECT_TIMEOUT": "10",
            }
        )
        if target.params:  # sslmode, options, keepalives...: a service file carries every key
            if any("\n" in v or "\r" in v for _, v in target.params):
                raise ValueError("a libpq connection parameter of the application database holds a newline")
            service = tmp / "pg_service.conf"
            fd = os.open(service, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write("[sanvi]\n" + "".join(f"{k}={v}\n" for k, v in target.params))
            env.update({"PGSERVICEFILE": str(service), "PGSERVICE": "sanvi"})
        yield env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


#: Every user table (partitioned ones at the parent): what the backup counts and the restore recounts.
USER_TABLES_SQL = """
    SELECT n.nspname, c.relname, c.relpages
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
"""


def row_counts(dsn: str) -> dict[str, int]:
    """Exact ``count(*)`` of every user table, all in one REPEATABLE READ snapshot.

    Partitioned tables are counted at the parent (their partitions are not listed again).
    """
    import psycopg
    from psycopg import sql

    counts: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            tables = conn.execute(
                sql.SQL("SELECT nspname, relname FROM ({}) t ORDER BY 1, 2").format(sql.SQL(USER_TABLES_SQL))
            ).fetchall()
            for schema, table in tables:
                query = sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
                row = conn.execute(query).fetchone()
                counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def server_facts(dsn: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int, "
            "(SELECT system_identifier::text FROM pg_control_system())"
        ).fetchone()
    assert row is not None
    return {"server_version": row[0], "server_version_num": row[1], "system_identifier": row[2]}


def cluster_size(dsn: str) -> tuple[int, str]:
    """Bytes a physical backup will copy: ``(size, how it was measured)``.

    ``pg_basebackup`` copies the whole cluster, so this is the sum of every tablespace
    (``pg_tablespace_size``: all databases and the global catalog); a role that may not read a
    tablespace's size falls back to the sum of ``pg_database_size`` of the databases it may
    connect to (``pg_read_all_stats`` or ``CONNECT``).
    """
    import psycopg

    with psycopg.connect(dsn) as conn:
        try:
            with conn.transaction():
                row = conn.execute(
                    "SELECT sum(pg_tablespace_size(oid))::bigint FROM pg_tablespace"
                ).fetchone()
            return int(row[0] or 0) if row else 0, "sum of pg_tablespace_size"
        except psycopg.errors.InsufficientPrivilege:
            pass
        row = conn.execute(
            "SELECT sum(pg_database_size(oid))::bigint FROM pg_database "
            "WHERE datallowconn AND has_database_privilege(oid, 'CONNECT')"
        ).fetchone()
    return int(row[0] or 0) if row else 0, "sum of pg_database_size"


# --------------------------------------------------------------------------------------------
# Sizing: S3 multipart limits
# --------------------------------------------------------------------------------------------

S3_MAX_PARTS = 10_000
S3_MIN_PART = 5 * 1024**2
S3_MAX_PART = 5 * 1024**3
#: Room for growth while the backup runs: ``-X fetch`` adds the WAL written during it, tar
#: headers add a little, and the database keeps growing between the measure and the end.
GROWTH_HEADROOM = 1.25


class BackupTooLarge(BackupFailed):
    """Even 10,000 parts of 5 GiB (≈ 48.8 TiB) cannot hold the database: refused before starting."""


@dataclass(frozen=True)
class PartPlan:
    """The multipart part size for one backup and why."""

    part_size: int
    database_bytes: int
    max_bytes: int  # what 10,000 parts of part_size hold
    headroom: float  # max_bytes / database_bytes
    reason: str

    @property
    def part_size_mb(self) -> float:
        return self.part_size / 1024**2


def plan_part_size(
    database_bytes: int,
    configured_part_mb: int,
    *,
    headroom: float = GROWTH_HEADROOM,
    max_parts: int = S3_MAX_PARTS,
) -> PartPlan:
    """Part size (whole MiB) for a stream of about ``database_bytes``: the configured
    ``part_size_mb`` when 10,000 of them hold the database × ``headroom``, else the smallest
    size that does, at most 5 GiB (S3's limits: 5 MiB ≤ part ≤ 5 GiB, ≤ 10,000 parts).

    A database that fits in 10,000 × 5 GiB but not with the full headroom gets 5 GiB parts
    (the plan says how much room is left).

    :raises BackupTooLarge: the database alone exceeds 10,000 × 5 GiB.
    """
    mib = 1024**2
    configured = max(S3_MIN_PART, configured_part_mb * mib)
    ceiling = S3_MAX_PART * max_parts
    if database_bytes > ceiling:
        raise BackupTooLarge(
            f"the database is {database_bytes / 1024**4:.1f} TiB; one S3 object holds at most "
            f"{max_parts:,} parts of 5 GiB = {ceiling / 1024**4:.1f} TiB: a single-stream backup "
            "cannot hold it (split it by tablespace, or use database_backups.mode: rds)"
        )
    wanted = int(database_bytes * headroom)
    needed = -(-wanted // max_parts)  # ceil
    needed = -(-needed // mib) * mib  # whole MiB
    if needed <= configured:
        size, reason = configured, f"database_backups.part_size_mb ({configured // mib} MiB) suffices"
    elif needed <= S3_MAX_PART:
        size = needed
        reason = (
            f"{needed // mib} MiB parts (more than part_size_mb {configured // mib}) so that "
            f"{max_parts:,} parts hold {database_bytes / 1024**3:.0f} GiB × {headroom:g}"
        )
    else:
        size = S3_MAX_PART
        reason = f"5 GiB parts, the largest S3 allows: less than ×{headroom:g} room for growth"
    return PartPlan(
        part_size=size,
        database_bytes=database_bytes,
        max_bytes=size * max_parts,
        headroom=(size * max_parts / database_bytes) if database_bytes else float("inf"),
        reason=reason,
    )


# --------------------------------------------------------------------------------------------
# Streaming pieces
# --------------------------------------------------------------------------------------------


def _tar_size(field: bytes) -> int:
    if field[0] & 0x80:  # base-256 (GNU) for members >= 8 GiB
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.rstrip(b"\0 ").strip()
    return int(text, 8) if text else 0


class TarMemberCatcher:
    """Walk a tar stream chunk by chunk and keep the content of one member (``backup_manifest``).

    Holds at most one 512-byte header plus the caught member in memory; everything else passes.
    """

    def __init__(self, wanted: str) -> None:
        self.wanted = wanted
        self.caught: bytes | None = None
        self._header = bytearray()
        self._skip = 0  # data + padding bytes of the current member still to pass
        self._keep: bytearray | None = None
        self._keep_left = 0
        self._ended = False

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view and not self._ended:
            if self._skip:
                n = min(self._skip, len(view))
                if self._keep is not None and self._keep_left:
                    k = min(self._keep_left, n)
                    self._keep += view[:k]
                    self._keep_left -= k
                    if not self._keep_left:
                        self.caught = bytes(self._keep)
                        self._keep = None
                self._skip -= n
                view = view[n:]
                continue
            need = 512 - len(self._header)
            self._header += view[:need]
            view = view[need:]
            if len(self._header) < 512:
                return
            header, self._header = bytes(self._header), bytearray()
            if header == b"\0" * 512:
                self._ended = True
                return
            name = header[:100].split(b"\0", 1)[0].decode(errors="replace")
            prefix = header[345:500].split(b"\0", 1)[0].decode(errors="replace")
            if prefix:
                name = f"{prefix}/{name}"
            size = _tar_size(header[124:136])
            self._skip = size + (-size % 512)
            if name == self.wanted:
                self._keep, self._keep_left = bytearray(), size
                if size == 0:
                    self.caught, self._keep = b"", None


class MultipartWriter:
    """A write-only stream into one S3 object by multipart upload, bounded memory.

    ``write`` fills a part buffer; a full buffer is handed to a small thread pool while the next
    fills; at most ``inflight`` parts are uploading at once (``write`` waits for the oldest).
    :meth:`close` completes the upload; :meth:`abort` (also on any error) removes the parts.
    """

    def __init__(
        self, s3: Any, bucket: str, key: str, *, part_size: int, inflight: int, sse: dict[str, str]
    ) -> None:
        self.s3, self.bucket, self.key = s3, bucket, key
        self.part_size, self.inflight = part_size, inflight
        self._buf = bytearray()
        self._pending: list[Future[dict[str, Any]]] = []
        self._parts: list[dict[str, Any]] = []
        self._next = 1
        self._pool = ThreadPoolExecutor(max_workers=inflight, thread_name_prefix="s3-part")
        self.size = 0
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **sse)
        self.upload_id: str = upload["UploadId"]

    def _upload(self, number: int, body: bytes) -> dict[str, Any]:
        resp = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": resp["ETag"]}

    def _submit(self) -> None:
        if self._next > S3_MAX_PARTS:
            raise BackupFailed(
                f"s3://{self.bucket}/{self.key}: the stream outgrew {S3_MAX_PARTS:,} parts of "
                f"{self.part_size / 1024**2:.0f} MiB (the database grew far beyond its size at the start)"
            )
        while len(self._pending) >= self.inflight:
            self._parts.append(self._pending.pop(0).result())
        body, self._buf = bytes(self._buf), bytearray()
        self._pending.append(self._pool.submit(self._upload, self._next, body))
        self._next += 1

    def write(self, data: bytes | memoryview) -> None:
        self._buf += data
        self.size += len(data)
        while len(self._buf) >= self.part_size:
            rest = self._buf[self.part_size :]
            del self._buf[self.part_size :]
            self._submit()
            self._buf = bytearray(rest)

    def close(self) -> None:
        if self._buf or self._next == 1:
            self._submit()
        for fut in self._pending:
            self._parts.append(fut.result())
        self._pending.clear()
        self._pool.shutdown(wait=True)
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": sorted(self._parts, key=lambda p: p["PartNumber"])},
        )

    def abort(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


# --------------------------------------------------------------------------------------------
# S3 side: key, lifecycle, listing
# --------------------------------------------------------------------------------------------


def ensure_kms_key(kms: Any, alias: str) -> str:
    """The key id behind ``alias``; a new symmetric key with that alias when it is missing.

    Idempotent under concurrency: two runs (the first incremental and the full, say) may both
    find the alias missing and both create a key; only one ``CreateAlias`` wins. The loser
    treats ``AlreadyExistsException`` as success, re-reads the alias and uses the winner's key;
    its own key, which never encrypted anything, is scheduled for deletion (7 days, the minimum).
    """
    name = alias if alias.startswith("alias/") else f"alias/{alias}"
    try:
        return str(kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"])
    except kms.exceptions.NotFoundException:
        pass
    key = kms.create_key(
        Description="Sanvi database backups (sanvi_ops)",
        KeyUsage="ENCRYPT_DECRYPT",
        Tags=[{"TagKey": "managed-by", "TagValue": "sanvi_ops"}],
    )
    key_id = str(key["KeyMetadata"]["KeyId"])
    try:
        kms.create_alias(AliasName=name, TargetKeyId=key_id)
    except kms.exceptions.AlreadyExistsException:
        winner = str(kms.describe_key(KeyId=name)["KeyMetadata"]["KeyId"])
        log.info("alias %s was created concurrently (key %s); using it", name, winner)
        if winner != key_id:
            with contextlib.suppress(Exception):  # hygiene only: an unused key costs, nothing more
                kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
        return winner
    log.info("created KMS key %s with alias %s for backups", key_id, name)
    return key_id


def lifecycle_rule(
    prefix: str, glacier_after_days: int, retention_days: int, *, rule_id: str | None = None
) -> dict[str, Any]:
    """The retention rule we want on ``prefix`` (Glacier, expiry, abort stale multipart)."""
    rule: dict[str, Any] = {
        "ID": rule_id or LIFECYCLE_RULE_ID,
        "Filter": {"Prefix": prefix},
        "Status": "Enabled",
        "Expiration": {"Days": retention_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
    }
    if glacier_after_days < retention_days:
        rule["Transitions"] = [{"Days": glacier_after_days, "StorageClass": "GLACIER"}]
    return rule


def _rule_essentials(rule: dict[str, Any]) -> dict[str, Any]:
    prefix = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", ""))
    return {
        "prefix": prefix,
        "status": rule.get("Status"),
        "expiration_days": (rule.get("Expiration") or {}).get("Days"),
        "transitions": sorted(
            (int(t.get("Days", 0)), str(t.get("StorageClass"))) for t in rule.get("Transitions") or []
        ),
        "abort_mpu_days": (rule.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation"),
    }


def ensure_lifecycle(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    glacier_after_days: int,
    retention_days: int,
    create: bool = True,
    rule_id: str | None = None,
) -> CheckResult:
    """Create our lifecycle rule when the bucket has none for ``prefix``; report one that differs.

    Existing rules are never changed or removed: a different rule is a ``warning`` naming the
    difference, for a person to reconcile.
    """
    from botocore.exceptions import ClientError

    want = lifecycle_rule(prefix, glacier_after_days, retention_days, rule_id=rule_id)
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    ours = [r for r in rules if r.get("ID") == want["ID"]]
    for_prefix = [r for r in rules if _rule_essentials(r)["prefix"] == prefix]
    current = (ours or for_prefix or [None])[0]
    check = "backup.retention"
    if current is None:
        if not create:
            return CheckResult(
                check,
                Status.CRITICAL,
                f"s3://{bucket}/{prefix}: no lifecycle rule; backups are never moved to Glacier nor expired",
                component="backups",
                severity="P3",
            )
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [*rules, want]})
        return CheckResult(
            check,
            Status.OK,
            f"s3://{bucket}/{prefix}: lifecycle rule created (Glacier after {glacier_after_days} d, "
            f"expiry after {retention_days} d)",
            details={"created": True, "rule": _rule_essentials(want)},
            component="backups",
        )
    have, expected = _rule_essentials(current), _rule_essentials(want)
    if have != expected:
        diff = {k: {"have": have[k], "want": expected[k]} for k in expected if have[k] != expected[k]}
        return CheckResult(
            check,
            Status.WARNING,
            f"s3://{bucket}/{prefix}: lifecycle rule {current.get('ID')!r} differs from the policy: "
            + ", ".join(f"{k} {v['have']} (want {v['want']})" for k, v in diff.items()),
            details={"difference": diff},
            component="backups",
        )
    return CheckResult(
        check,
        Status.OK,
        f"s3://{bucket}/{prefix}: lifecycle rule matches (Glacier after {glacier_after_days} d, "
        f"expiry after {retention_days} d)",
        component="backups",
    )


@dataclass
class BackupEntry:
    """One backup prefix in S3: complete when its ``manifest.json`` exists and parses."""

    backup_id: str
    kind: str
    started_at: dt.datetime
    keys: dict[str, int]  # object name → size as listed
    manifest: dict[str, Any] | None = None
    manifest_error: str | None = None

    @property
    def complete(self) -> bool:
        return self.manifest is not None


def backup_id_for(when: dt.datetime, kind: str) -> str:
    return when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + ("-full" if kind == "full" else "-incr")


def _parse_id(backup_id: str) -> tuple[dt.datetime, str] | None:
    stamp, _, kind = backup_id.partition("-")
    try:
        when = dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
    if kind not in {"full", "incr"}:
        return None
    return when, ("full" if kind == "full" else "incremental")


def list_backups(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    read_manifests: bool = True,
    since: dt.datetime | None = None,
    newest_complete_only: bool = False,
) -> list[BackupEntry]:
    """Every backup under ``prefix``, oldest first; manifests read (and parsed) when present.

    :param since: read manifests only of backups started at or after this (older entries are
        listed without one, i.e. as if incomplete): bounds the GETs on a long history.
    :param newest_complete_only: read manifests newest first and stop at the first complete one.
    """
    entries: dict[str, BackupEntry] = {}
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rest = obj["Key"][len(prefix) :]
            backup_id, _, name = rest.partition("/")
            parsed = _parse_id(backup_id)
            if parsed is None or not name:
                continue
            entry = entries.setdefault(backup_id, BackupEntry(backup_id, parsed[1], parsed[0], {}))
            entry.keys[name] = int(obj["Size"])
    result = sorted(entries.values(), key=lambda e: e.backup_id)
    if read_manifests:
        for entry in reversed(result):
            if MANIFEST_NAME not in entry.keys or (since is not None and entry.started_at < since):
                continue
            body = s3.get_object(Bucket=bucket, Key=f"{prefix}{entry.backup_id}/{MANIFEST_NAME}")["Body"]
            try:
                manifest = json.loads(body.read())
                if manifest.get("format") != FORMAT or manifest.get("backup_id") != entry.backup_id:
                    raise ValueError("not a manifest of this backup")
                entry.manifest = manifest
            except ValueError as exc:
                entry.manifest_error = f"unreadable manifest: {exc}"
            if newest_complete_only and entry.manifest is not None:
                break
    return result


# --------------------------------------------------------------------------------------------
# Taking a backup
# --------------------------------------------------------------------------------------------


def _wal_range(pg_manifest: bytes) -> dict[str, Any]:
    data = json.loads(pg_manifest)
    ranges = data.get("WAL-Ranges") or []
    if not ranges:
        return {}
    return {
        "timeline": int(ranges[-1]["Timeline"]),
        "start_lsn": ranges[0]["Start-LSN"],
        "end_lsn": ranges[-1]["End-LSN"],
        "pg_system_identifier": str(data.get("System-Identifier", "")),
    }


# --------------------------------------------------------------------------------------------
# Compression of the stored stream (zstd) and reading it back
# --------------------------------------------------------------------------------------------

COMPRESSIONS = ("none", "zstd")
ZSTD_SUFFIX = ".zst"
#: Largest zstd window a reader accepts (ours use 2-8 MiB); a bigger one is refused, not
#: allocated: a tampered object cannot make a restore or a verification take unbounded memory.
ZSTD_MAX_WINDOW = 1 << 27


class CorruptBackup(OSError):
    """Stored bytes that do not decompress to what the manifest recorded."""


class StoredStream:
    """Raw tar chunks in, stored bytes out to ``writer``: optionally zstd, hashing both sides.

    ``raw_sha256``/``raw_size`` describe the tar as pg_basebackup wrote it; ``sha256`` and the
    writer's ``size`` describe the object as stored in S3 (what verification re-hashes).
    Compression runs on ``threads`` zstd worker threads (0: in the calling thread); memory is
    a few zstd windows, independent of the database size.
    """

    def __init__(self, writer: Any, compression: str = "none", *, level: int = 3, threads: int = 1) -> None:
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}")
        self.writer = writer
        self.compression = compression
        self.level = level
        self.raw_digest, self.raw_size = hashlib.sha256(), 0
        self.digest = hashlib.sha256()
        self._cobj: Any = None
        if compression == "zstd":
            import zstandard

            cctx = zstandard.ZstdCompressor(level=level, write_checksum=True, threads=threads)
            self._cobj = cctx.compressobj()

    def _out(self, data: bytes) -> None:
        if data:
            self.digest.update(data)
            self.writer.write(data)

    def write(self, chunk: bytes) -> None:
        self.raw_digest.update(chunk)
        self.raw_size += len(chunk)
        self._out(self._cobj.compress(chunk) if self._cobj is not None else chunk)

    def finish(self) -> None:
        if self._cobj is not None:
            self._out(self._cobj.flush())

    def describe(self, name: str, key: str) -> dict[str, Any]:
        """The manifest entry of the stored object (``size``/``sha256`` = as stored)."""
        return {
            "name": name,
            "key": key,
            "size": self.writer.size,
            "sha256": self.digest.hexdigest(),
            "compression": self.compression,
            "raw_size": self.raw_size,
            "raw_sha256": self.raw_digest.hexdigest(),
        }


class StoredReader:
    """Read an object's raw bytes back from its stored bytes: undoes the manifest entry's
    ``compression`` and checks ``raw_size``/``raw_sha256`` when :meth:`drain` reaches the end.

    ``source`` is any ``read(n)`` file object (the restore's hashing S3 reader). Reads return at
    most ``n`` bytes (bounded memory, even for a decompression bomb: output beyond the recorded
    ``raw_size`` is refused at once). Entries without ``compression`` (older backups) read as is.

    :raises CorruptBackup: unknown compression, a damaged or oversized zstd stream, or raw bytes
        that differ from the manifest.
    """

    def __init__(self, source: Any, obj: dict[str, Any]) -> None:
        self.source = source
        self.what = str(obj.get("key") or obj.get("name"))
        self.compression = str(obj.get("compression") or "none")
        if self.compression not in COMPRESSIONS:
            raise CorruptBackup(f"{self.what}: unknown compression {self.compression!r} in the manifest")
        # Uncompressed, raw = stored: the caller's check of the stored bytes covers it (and a
        # second SHA-256 would only cost time).
        plain = self.compression == "none"
        self.expect_size = None if plain else obj.get("raw_size")
        self.expect_sha = None if plain else obj.get("raw_sha256")
        self.size = 0
        self.digest: Any = None if plain else hashlib.sha256()
        self._reader: Any = source
        self._damaged: tuple[type[BaseException], ...] = ()
        if self.compression == "zstd":
            import zstandard

            dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
            self._reader = dctx.stream_reader(source, read_size=CHUNK, read_across_frames=True, closefd=False)
            self._damaged = (zstandard.ZstdError,)

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._reader.read(n if n and n > 0 else CHUNK)
        except self._damaged as exc:  # a damaged frame, a window too large, a bad checksum
            raise CorruptBackup(f"{self.what}: the {self.compression} stream is damaged ({exc})") from exc
        self.size += len(data)
        if self.expect_size is not None and self.size > int(self.expect_size):
            raise CorruptBackup(
                f"{self.what}: decompresses to more than the {self.expect_size} bytes the manifest records"
            )
        if self.digest is not None:
            self.digest.update(data)
        return data

    def drain(self) -> None:
        """Read to the end (the tar's padding, the rest of the stored object) and check."""
        while self.read(CHUNK):
            pass
        drain = getattr(self.source, "drain", None)
        if drain is not None:
            drain()
        if self.expect_size is not None and self.size != int(self.expect_size):
            raise CorruptBackup(f"{self.what}: {self.size} raw bytes, the manifest says {self.expect_size}")
        if (
            self.expect_sha is not None
            and self.digest is not None
            and self.digest.hexdigest() != self.expect_sha
        ):
            raise CorruptBackup(
                f"{self.what}: raw sha256 {self.digest.hexdigest()[:12]}… ≠ manifest {str(self.expect_sha)[:12]}…"
            )


def open_stored(source: Any, obj: dict[str, Any]) -> StoredReader:
    """The restore's hook: a file object of the raw tar over the stored bytes of ``obj``."""
    return StoredReader(source, obj)


def _stream(
    cmd: list[str],
    env: dict[str, str],
    writer: MultipartWriter,
    stored: StoredStream,
    stderr_path: Path,
    timeout_s: float | None,
) -> bytes:
    """Run pg_basebackup, pass its stdout to S3 chunk by chunk (through ``stored``: hashes and
    compression); returns its backup_manifest.

    On any failure (non-zero exit, a kill, an S3 error, a stream without ``backup_manifest``)
    the process is killed and the multipart upload aborted before the error propagates.
    """
    catcher = TarMemberCatcher(PG_MANIFEST_NAME)
    with stderr_path.open("wb") as stderr_fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr_fh, env=env)  # noqa: S603
    timer = threading.Timer(timeout_s, proc.kill) if timeout_s else None
    if timer is not None:
        timer.start()
    try:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(CHUNK):
            catcher.feed(chunk)
            stored.write(chunk)
        rc = proc.wait()
        if rc != 0:
            err = stderr_path.read_text(errors="replace").strip()[-800:]
            raise BackupFailed(f"pg_basebackup exited {rc}: {err or '(no message)'}")
        if catcher.caught is None:
            raise BackupFailed("the tar stream ended without PostgreSQL's backup_manifest (truncated)")
        stored.finish()
        writer.close()
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        writer.abort()
        raise
    finally:
        if timer is not None:
            timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    return catcher.caught


def take_backup(
    s3: Any,
    *,
    target: PgTarget,
    bucket: str,
    prefix: str,
    kms_key_id: str,
    kind: str,
    parent: BackupEntry | None = None,
    part_size_mb: int = 16,
    max_inflight_parts: int = 2,
    pg_bin_dir: str | None = None,
    now: dt.datetime | None = None,
    timeout_s: float | None = None,
    compression: str = "none",
    compression_level: int = 3,
    compression_threads: int = 1,
) -> dict[str, Any]:
    """Take one ``full`` or ``incremental`` backup (``parent`` = the previous complete backup of
    the chain) and return its manifest, already stored last in S3.

    The part size is ``part_size_mb`` or, for a database too big for 10,000 such parts, the
    size :func:`plan_part_size` picks from :func:`cluster_size` (measured before anything
    starts). ``compression`` ``zstd`` stores ``base.tar.zst`` (see :class:`StoredStream`).

    :raises BackupTooLarge: the database cannot fit in one S3 object; nothing was started.
    :raises BackupFailed: pg_basebackup failed or the stream was incomplete; the multipart
        upload is aborted and no manifest is written.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(
            f"database_backups.compression must be one of {', '.join(COMPRESSIONS)}, got {compression!r}"
        )
    if kind not in {"full", "incremental"}:
        raise ValueError(f"kind must be full or incremental, got {kind!r}")
    if kind == "incremental" and (parent is None or parent.manifest is None):
        raise ValueError("an incremental backup needs a complete parent backup")
    started = now or dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    backup_id = backup_id_for(started, kind)
    while s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{backup_id}/", MaxKeys=1).get("KeyCount"):
        started += dt.timedelta(seconds=1)  # ids are unique per second: never overwrite one
        backup_id = backup_id_for(started, kind)
    base = f"{prefix}{backup_id}/"
    sse = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id}
    dsn = target.dsn()
    facts = server_facts(dsn)
    size, measured = cluster_size(dsn)
    plan = plan_part_size(size, part_size_mb)  # refuses before anything is written
    # Memory is part_size × (inflight + 1): with the big parts of a huge database, fewer in
    # flight keep it near max(the configured bound, 1 GiB).
    budget = max(part_size_mb * 1024**2 * (max_inflight_parts + 1), 1024**3)
    inflight = max(1, min(max_inflight_parts, budget // plan.part_size - 1))
    log.info(
        "cluster %.1f GiB (%s): %s; %d part(s) in flight", size / 1024**3, measured, plan.reason, inflight
    )
    counts = row_counts(dsn)
    counted_at = dt.datetime.now(dt.UTC)

    with contextlib.ExitStack() as stack:
        env = stack.enter_context(libpq_env(target))
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sanvi-backup-")))
        cmd = [
            resolve_pg_bin("pg_basebackup", pg_bin_dir),
            "--format=tar",
            "--wal-method=fetch",
            "--checkpoint=fast",
            "--pgdata=-",
            "--no-password",
            "--manifest-checksums=SHA256",
            f"--label=sanvi {backup_id}",
        ]
        if kind == "incremental":
            assert parent is not None and parent.manifest is not None
            parent_manifest = work / "parent_backup_manifest"
            parent_manifest.write_bytes(
                _get_bytes(s3, bucket, f"{prefix}{parent.backup_id}/{PG_MANIFEST_NAME}")
            )
            cmd.append(f"--incremental={parent_manifest}")
        tar_key = base + TAR_NAME + (ZSTD_SUFFIX if compression == "zstd" else "")
        writer = MultipartWriter(s3, bucket, tar_key, part_size=plan.part_size, inflight=inflight, sse=sse)
        stored = StoredStream(writer, compression, level=compression_level, threads=compression_threads)
        pg_manifest = _stream(cmd, env, writer, stored, work / "stderr", timeout_s)

    head = s3.head_object(Bucket=bucket, Key=tar_key)
    if int(head["ContentLength"]) != writer.size:
        raise BackupFailed(f"S3 holds {head['ContentLength']} bytes of {tar_key}, we sent {writer.size}")
    s3.put_object(Bucket=bucket, Key=base + PG_MANIFEST_NAME, Body=pg_manifest, **sse)
    duration = time.monotonic() - t0
    finished = started + dt.timedelta(seconds=duration)
    chain = [*(parent.manifest["chain"] if parent and parent.manifest else []), backup_id]
    if kind == "full":
        chain = [backup_id]
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "backup_id": backup_id,
        "kind": kind,
        "parent": parent.backup_id if kind == "incremental" and parent else None,
        "chain": chain,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "duration_s": round(duration, 3),
        **facts,
        **_wal_range(pg_manifest),
        "database": target.dbname,
        "row_counts": counts,
        "row_counts_at": counted_at.isoformat(),
        "objects": [
            stored.describe(TAR_NAME, tar_key),
            {
                "name": PG_MANIFEST_NAME,
                "key": base + PG_MANIFEST_NAME,
                "size": len(pg_manifest),
                "sha256": hashlib.sha256(pg_manifest).hexdigest(),
                "compression": "none",
                "raw_size": len(pg_manifest),
                "raw_sha256": hashlib.sha256(pg_manifest).hexdigest(),
            },
        ],
        "total_bytes": writer.size + len(pg_manifest),
        "raw_bytes": stored.raw_size + len(pg_manifest),
        "compression": {"method": compression, "level": compression_level if compression != "none" else None},
        "sizing": {
            "cluster_bytes": size,
            "measured": measured,
            "part_size": plan.part_size,
            "parts": -(-writer.size // plan.part_size) if writer.size else 1,
            "reason": plan.reason,
        },
        "encryption": {"sse": "aws:kms", "kms_key_id": kms_key_id},
        "pg_basebackup": {
            "format": "tar",
            "wal": "fetch",
            "compression": "none",
            "incremental_of": parent.backup_id if kind == "incremental" and parent else None,
        },
    }
    # Last: only now is the backup complete.
    s3.put_object(
        Bucket=bucket,
        Key=base + MANIFEST_NAME,
        Body=json.dumps(manifest, indent=1, sort_keys=True).encode(),
        ContentType="application/json",
        **sse,
    )
    log.info(
        "backup %s complete: %d bytes in %.1f s", backup_id, manifest["total_bytes"], manifest["duration_s"]
    )
    return manifest


def _get_bytes(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def newest_complete(entries: list[BackupEntry]) -> BackupEntry | None:
    complete = [e for e in entries if e.complete]
    return complete[-1] if complete else None


def backup_result(manifest: dict[str, Any], *, fell_back: str | None = None) -> CheckResult:
    """The result a backup run reports (stored and shown in Slack by the DAG's publish tail)."""
    size_mb = manifest["total_bytes"] / 1e6
    rows = sum(manifest["row_counts"].values())
    method = (manifest.get("compression") or {}).get("method", "none")
    raw = manifest.get("raw_bytes") or manifest["total_bytes"]
    stored = f"{size_mb:.1f} MB" + (
        f" ({method}, {raw / 1e6:.1f} MB raw, ×{manifest['total_bytes'] / raw:.2f})"
        if method != "none"
        else ""
    )
    summary = (
        f"{manifest['kind']} backup {manifest['backup_id']}: {stored} in "
        f"{manifest['duration_s']:.1f} s, {len(manifest['row_counts'])} tables / {rows} rows, "
        f"LSN {manifest.get('start_lsn')}..{manifest.get('end_lsn')}"
    )
    if manifest["kind"] == "incremental":
        summary += f", chained to {manifest['parent']} (chain of {len(manifest['chain'])})"
    if fell_back:
        summary += f"; {fell_back}"
    return CheckResult(
        check=f"backup.{manifest['kind']}",
        status=Status.WARNING if fell_back else Status.OK,
        summary=summary,
        metric="backup_bytes",
        observed=float(manifest["total_bytes"]),
        unit="bytes",
        details={
            "backup_id": manifest["backup_id"],
            "duration_s": manifest["duration_s"],
            "chain": manifest["chain"],
            "mb_per_s": round(size_mb / manifest["duration_s"], 2) if manifest["duration_s"] else None,
            "raw_bytes": raw,
            "compression": method,
            "part_size": (manifest.get("sizing") or {}).get("part_size"),
        },
        component="backups",
    )


def run_backup(
    s3: Any,
    kms: Any,
    *,
    target: PgTarget,
    bucket: str,
    prefix: str,
    kms_alias: str,
    kind: str,
    max_chain_age: dt.timedelta = dt.timedelta(days=2),
    part_size_mb: int = 16,
    max_inflight_parts: int = 2,
    pg_bin_dir: str | None = None,
    timeout_s: float | None = None,
    now: dt.datetime | None = None,
    compression: str = "none",
    compression_level: int = 3,
) -> tuple[dict[str, Any], CheckResult]:
    """What a backup DAG runs: key, parent lookup, backup; returns (manifest, result).

    An incremental with nothing to chain to (no complete backup, or a chain whose full is
    older than ``max_chain_age``) takes a full instead and says so (``warning``): the RPO
    promise matters more than the cadence.
    """
    key_id = ensure_kms_key(kms, kms_alias)
    parent: BackupEntry | None = None
    fell_back: str | None = None
    if kind == "incremental":
        parent = newest_complete(list_backups(s3, bucket, prefix, newest_complete_only=True))
        chain_start = None
        if parent is not None and parent.manifest is not None:
            chain_start = _parse_id(parent.manifest["chain"][0])
        moment = now or dt.datetime.now(dt.UTC)
        if parent is None or chain_start is None:
            kind, fell_back = "full", "no complete backup to chain to: took a full backup instead"
            parent = None
        elif moment - chain_start[0] > max_chain_age:
            kind = "full"
            fell_back = (
                f"the chain's full {parent.manifest['chain'][0] if parent.manifest else '?'} is older than "
                f"{max_chain_age}: took a full backup instead"
            )
            parent = None
    common: dict[str, Any] = {
        "target": target,
        "bucket": bucket,
        "prefix": prefix,
        "kms_key_id": key_id,
        "part_size_mb": part_size_mb,
        "max_inflight_parts": max_inflight_parts,
        "pg_bin_dir": pg_bin_dir,
        "now": now,
        "timeout_s": timeout_s,
        "compression": compression,
        "compression_level": compression_level,
    }
    try:
        manifest = take_backup(s3, kind=kind, parent=parent, **common)
    except BackupFailed as exc:
        # The parent's WAL summaries are gone (server restarted without summarize_wal, or
        # kept shorter than the gap): no incremental is possible; a full restores the RPO.
        if kind != "incremental" or "WAL summar" not in str(exc):
            raise
        log.warning("incremental impossible (%s); taking a full backup instead", exc)
        manifest = take_backup(s3, kind="full", parent=None, **common)
        fell_back = f"the parent's WAL summaries are missing ({exc}): took a full backup instead"
    return manifest, backup_result(manifest, fell_back=fell_back)
