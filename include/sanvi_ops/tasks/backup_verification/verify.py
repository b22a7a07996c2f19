"""Daily backup verification: are the backups there, whole, encrypted, and recent enough?

Reads only what :mod:`sanvi_ops.core.backups` writes (its docstring has the S3 layout and the
``manifest.json`` format). Every check returns :class:`~sanvi_ops.core.results.CheckResult`s and
never raises for a sick system: a missing backup, a half-written one (objects but no
``manifest.json``), an object whose size or SHA-256 differs from the manifest (corrupted or
truncated), an unencrypted object, a gap in the hourly chain, S3 answering 500 or timing out —
each ends as a result that names what is wrong.

Rows of the guide's backup table covered here:

* database: :func:`verify_database_backups` (self-managed mode),
* file storage: :func:`check_file_storage` (a finished copy by ``file_storage_backup`` from the
  last day, all its objects there),
* configuration: :func:`check_configuration` (versioned bucket that keeps old versions for at
  least the retention),
* system images: :func:`check_system_images` (an AMI of ours younger than the cadence, none
  older than the retention).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import statistics
from collections.abc import Callable
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types, denied_result, is_denied
from sanvi_ops.core.backups import (
    MANIFEST_NAME,
    BackupEntry,
    CorruptBackup,
    StoredReader,
    backup_id_for,
    list_backups,
)
from sanvi_ops.core.results import SEVERITY_ORDER, CheckResult, Status, grade

COMPONENT = "backups"
SEVERITY = "P2"  # a data-safety finding: significant impact, not (yet) an outage

__all__ = [
    "check_configuration",
    "check_file_storage",
    "check_rds_backups",
    "check_system_images",
    "s3_failure",
    "verify_database_backups",
    "verify_objects",
]


def s3_failure(check: str, what: str, exc: Exception) -> CheckResult:
    """An S3 call that failed (5xx, timeout, access denied): ``error``, the check could not run."""
    from botocore.exceptions import ClientError

    if is_denied(exc):
        # the component is the IAM prefix of the refused call (S3, or EC2/RDS for the callers
        # that share this helper)
        service = {"DescribeImages": "ec2", "DescribeDBInstances": "rds", "DescribeDBSnapshots": "rds"}.get(
            str(getattr(exc, "operation_name", "")), "s3"
        )
        return denied_result(check, exc, service=service, component=COMPONENT, details={"what": what})
    reason = aws_error_text(exc)
    if isinstance(exc, ClientError) and (
        status := exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    ):
        reason = f"{reason} (HTTP {status})"
    return CheckResult(
        check, Status.ERROR, f"{what}: S3 did not answer usefully — {reason}", component=COMPONENT
    )


class _Hashing:
    """``read(n)`` over an S3 body that hashes and counts the stored bytes passing through."""

    def __init__(self, body: Any) -> None:
        self.body, self.digest, self.size = body, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.body.read(n if n and n > 0 else 1 << 20)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


def _hash_object(s3: Any, bucket: str, obj: dict[str, Any]) -> tuple[int, str, str | None]:
    """``(stored size, stored sha256, raw problem)``: a compressed object is also decompressed
    (streaming) and its raw size and SHA-256 compared with the manifest's."""
    body = s3.get_object(Bucket=bucket, Key=obj["key"])["Body"]
    stored = _Hashing(body)
    problem: str | None = None
    try:
        if str(obj.get("compression") or "none") != "none":
            try:
                StoredReader(stored, obj).drain()
            except CorruptBackup as exc:
                problem = str(exc).removeprefix(f"{obj['key']}: ")
        stored.drain()
    finally:
        body.close()
    return stored.size, stored.digest.hexdigest(), problem


def _rehash(s3: Any, bucket: str, obj: dict[str, Any]) -> list[str]:
    """What is wrong with one object's bytes: the stored SHA-256, then (compressed) the raw one."""
    size, sha, raw_problem = _hash_object(s3, bucket, obj)
    if size != int(obj["size"]) or sha != obj["sha256"]:
        return [f"{obj['name']}: SHA-256 mismatch (corrupted): {sha[:12]}… ≠ {obj['sha256'][:12]}…"]
    if raw_problem:
        return [f"{obj['name']}: stored bytes intact but {raw_problem}"]
    return []


def verify_objects(s3: Any, bucket: str, entry: BackupEntry, *, check: str) -> list[CheckResult]:
    """Every object of ``entry``'s manifest: present, same size, same SHA-256, KMS-encrypted."""
    from botocore.exceptions import ClientError

    assert entry.manifest is not None
    problems: list[str] = []
    unencrypted: list[str] = []
    glacier: list[str] = []
    decompressed: list[str] = []
    checked = 0
    for obj in entry.manifest["objects"]:
        key = obj["key"]
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"404", "NoSuchKey", "NotFound"}:
                problems.append(f"{obj['name']} is missing")
                continue
            raise
        if head.get("StorageClass") in {"GLACIER", "DEEP_ARCHIVE"}:
            glacier.append(obj["name"])
            continue
        if head.get("ServerSideEncryption") != "aws:kms":
            unencrypted.append(obj["name"])
        if int(head["ContentLength"]) != int(obj["size"]):
            problems.append(
                f"{obj['name']} is {head['ContentLength']} bytes, the manifest says {obj['size']} (truncated?)"
            )
            continue
        checked += 1
        problems += _rehash(s3, bucket, obj)
        if obj.get("compression", "none") != "none":
            decompressed.append(obj["name"])
    results = []
    details = {
        "backup_id": entry.backup_id,
        "objects_hashed": checked,
        "in_glacier": glacier,
        "decompressed": decompressed,
    }
    if problems:
        results.append(
            CheckResult(
                check,
                Status.CRITICAL,
                f"backup {entry.backup_id} is damaged: " + "; ".join(problems),
                details={**details, "problems": problems},
                component=COMPONENT,
                severity=SEVERITY,
            )
        )
    elif glacier and not checked:
        results.append(
            CheckResult(
                check,
                Status.SKIPPED,
                f"backup {entry.backup_id} is in Glacier; not re-hashed",
                details=details,
                component=COMPONENT,
            )
        )
    else:
        results.append(
            CheckResult(
                check,
                Status.OK,
                f"backup {entry.backup_id}: {checked} objects match their SHA-256 and size"
                + (f" ({', '.join(decompressed)} also decompressed and re-hashed)" if decompressed else ""),
                details=details,
                component=COMPONENT,
            )
        )
    if unencrypted:
        results.append(
            CheckResult(
                f"{check}.encryption",
                Status.CRITICAL,
                f"backup {entry.backup_id}: not encrypted with KMS: {', '.join(unencrypted)}",
                component=COMPONENT,
                severity=SEVERITY,
            )
        )
    return results


def _guarded(check: str, what: str, fn: Callable[[], list[CheckResult]]) -> list[CheckResult]:
    try:
        return fn()
    except aws_error_types(OSError) as exc:
        return [s3_failure(check, what, exc)]


def _finished(entry: BackupEntry) -> dt.datetime:
    assert entry.manifest is not None
    return dt.datetime.fromisoformat(entry.manifest["finished_at"])


def verify_database_backups(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    now: dt.datetime,
    full_max_age: dt.timedelta,
    incremental_every: dt.timedelta | None,
    rpo_warning_min: float,
    rpo_critical_min: float,
    shrink_warning_pct: float,
    sample_older: int,
    retention_days: int,
    glacier_after_days: int,
) -> list[CheckResult]:
    """All database-backup checks of the daily verification (self-managed mode)."""

    where = f"s3://{bucket}/{prefix}"
    try:
        # Manifests of the last glacier_after_days (+ a day): the chain, the sample and the
        # size history need no more, and older objects cannot be read back without a restore.
        since = now - dt.timedelta(days=glacier_after_days + 1)
        entries = list_backups(s3, bucket, prefix, since=since)
    except aws_error_types(OSError) as exc:
        return [s3_failure("backup.list", f"listing {where}", exc)]

    results: list[CheckResult] = []
    complete = [e for e in entries if e.complete]
    fulls = [e for e in complete if e.kind == "full"]
    # Half-written: objects but no (readable) manifest, and not the one that may still be running.
    running_grace = dt.timedelta(hours=3)
    half = [
        e for e in entries if not e.complete and e.started_at >= since and now - e.started_at > running_grace
    ]
    if half:
        recent = [e for e in half if now - e.started_at <= dt.timedelta(days=2)]
        results.append(
            CheckResult(
                "backup.incomplete",
                Status.WARNING,
                f"{len(half)} half-written backup(s) without {MANIFEST_NAME} (ignored, never used): "
                + ", ".join(
                    e.backup_id + (f" ({e.manifest_error})" if e.manifest_error else "") for e in half[-5:]
                ),
                observed=float(len(recent)),
                unit="count",
                details={"backup_ids": [e.backup_id for e in half]},
                component=COMPONENT,
            )
        )

    newest = fulls[-1] if fulls else None
    if newest is None:
        attempts = [e.backup_id for e in entries if e.kind == "full"]
        results.append(
            CheckResult(
                "backup.full.exists",
                Status.CRITICAL,
                f"no complete full backup in {where}"
                + (f" (half-written: {', '.join(attempts[-3:])})" if attempts else ""),
                component=COMPONENT,
                severity=SEVERITY,
            )
        )
    else:
        age = now - _finished(newest)
        hours = age.total_seconds() / 3600
        stale = age > full_max_age
        results.append(
            CheckResult(
                "backup.full.exists",
                Status.CRITICAL if stale else Status.OK,
                f"newest complete full {newest.backup_id} finished {hours:.1f} h ago"
                + (f", older than the {full_max_age.total_seconds() / 3600:.0f} h allowed" if stale else ""),
                metric="full_backup_age_hours",
                observed=round(hours, 2),
                unit="h",
                thresholds={"critical": full_max_age.total_seconds() / 3600},
                details={"backup_id": newest.backup_id},
                component=COMPONENT,
                severity=SEVERITY if stale else None,
            )
        )
        results += _guarded(
            "backup.full.checksums",
            f"re-hashing {newest.backup_id}",
            lambda: verify_objects(s3, bucket, newest, check="backup.full.checksums"),
        )
        results.append(_size_check(newest, fulls[:-1], shrink_warning_pct))

    if incremental_every is not None:
        results.append(
            _chain_check(
                complete, now=now, since=since, warning_min=rpo_warning_min, critical_min=rpo_critical_min
            )
        )

    # A rotating sample of older complete backups (not yet in Glacier): re-hash every object.
    glacier_age = dt.timedelta(days=glacier_after_days)
    older = [e for e in complete if e is not newest and now - e.started_at < glacier_age]
    if sample_older and older:
        start = (now.date().toordinal() * sample_older) % len(older)
        sample = [older[(start + i) % len(older)] for i in range(min(sample_older, len(older)))]
        for entry in sample:
            results += _guarded(
                f"backup.sample[{entry.backup_id}]",
                f"re-hashing {entry.backup_id}",
                lambda e=entry: verify_objects(s3, bucket, e, check=f"backup.sample[{e.backup_id}]"),  # type: ignore[misc]
            )

    from sanvi_ops.core.backups import ensure_lifecycle

    results += _guarded(
        "backup.retention",
        f"reading the lifecycle of {bucket}",
        lambda: [
            ensure_lifecycle(
                s3,
                bucket,
                prefix,
                glacier_after_days=glacier_after_days,
                retention_days=retention_days,
                create=False,
            )
        ],
    )
    return results


def _raw_bytes(manifest: dict[str, Any]) -> int:
    return int(manifest.get("raw_bytes") or manifest["total_bytes"])


def _size_check(newest: BackupEntry, earlier: list[BackupEntry], shrink_pct: float) -> CheckResult:
    assert newest.manifest is not None
    # Raw (uncompressed) sizes: turning compression on is not a shrink of the data.
    size = float(_raw_bytes(newest.manifest))
    history = [float(_raw_bytes(e.manifest)) for e in earlier[-7:] if e.manifest]
    if not history:
        return CheckResult(
            "backup.full.size",
            Status.OK,
            f"newest full is {size / 1e6:.1f} MB (no earlier full to compare with)",
            metric="full_backup_bytes",
            observed=size,
            unit="bytes",
            component=COMPONENT,
        )
    median = statistics.median(history)
    change = 100.0 * (size - median) / median if median else 0.0
    shrunk = change < -shrink_pct
    return CheckResult(
        "backup.full.size",
        Status.WARNING if shrunk else Status.OK,
        f"newest full is {size / 1e6:.1f} MB, {change:+.0f} % against the median of the last "
        f"{len(history)} ({median / 1e6:.1f} MB)"
        + (
            f": a sudden shrink beyond {shrink_pct:g} % — was data lost or a table dropped?" if shrunk else ""
        ),
        metric="full_backup_size_change_pct",
        observed=round(change, 2),
        unit="%",
        thresholds={"warning": -shrink_pct},
        details={"bytes": size, "median_bytes": median},
        component=COMPONENT,
    )


def gap_span(start: dt.datetime, end: dt.datetime) -> str:
    """``08:49–09:39 UTC`` within one day; ``2 Dec 08:49 → 3 Dec 08:39 UTC`` across midnight (a
    gap of almost a day read ``08:49–08:39`` without its dates: backwards)."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    if start.date() == end.date():
        return f"{start:%H:%M}–{end:%H:%M} UTC"
    return f"{start.day} {start:%b %H:%M} → {end.day} {end:%b %H:%M} UTC"


def _chain_check(
    complete: list[BackupEntry],
    *,
    now: dt.datetime,
    since: dt.datetime,
    warning_min: float,
    critical_min: float,
) -> CheckResult:
    """Largest gap between consecutive backups (and to now) over the last 24 h = current RPO;
    and every incremental's parent must be a complete backup."""
    window_start = now - dt.timedelta(hours=24)
    known = {e.backup_id for e in complete}
    oldest_read = backup_id_for(since, "full")[:16]  # manifests older than this were not read

    def missing(parent_id: str) -> bool:
        return parent_id not in known and parent_id[:16] >= oldest_read

    broken = [
        e.backup_id
        for e in complete
        if e.manifest and e.kind == "incremental" and any(missing(p) for p in e.manifest["chain"][:-1])
    ]
    times = sorted(_finished(e) for e in complete)
    before = [t for t in times if t <= window_start]
    inside = [t for t in times if window_start < t <= now]
    # A chain younger than the window (nothing stored before it, and we looked far enough back:
    # ``since`` is before the window) starts at its first backup: a new system's first day is a
    # short history (a warning that says so), not a day-long gap.
    new_chain = not before and bool(inside) and since <= window_start
    points = ([before[-1]] if before else [inside[0] if new_chain else window_start]) + inside + [now]
    gaps = [(b - a, a, b) for a, b in zip(points, points[1:], strict=False)]
    largest, gap_from, gap_to = max(gaps, key=lambda g: g[0])
    minutes = largest.total_seconds() / 60
    status = grade(minutes, warning_min, critical_min)
    summary = (
        f"{len(inside)} backups in the last 24 h; largest gap {minutes:.0f} min "
        f"({gap_span(gap_from, gap_to)}) = current RPO"
    )
    if new_chain:
        status = max(status, Status.WARNING, key=SEVERITY_ORDER.__getitem__)
        summary += f"; no backup before {inside[0]:%d %b %H:%M} UTC: the chain is younger than 24 h"
    if broken:
        status = Status.CRITICAL
        summary += f"; broken chain (a parent is missing or half-written): {', '.join(broken[-3:])}"
    return CheckResult(
        "backup.chain",
        status,
        summary,
        metric="rpo_minutes",
        observed=round(minutes, 1),
        unit="min",
        thresholds={"warning": warning_min, "critical": critical_min},
        details={"gap_from": gap_from.isoformat(), "gap_to": gap_to.isoformat(), "broken": broken},
        component=COMPONENT,
        severity=SEVERITY if status is Status.CRITICAL else None,
    )


# --------------------------------------------------------------------------------------------
# The guide's other rows
# --------------------------------------------------------------------------------------------


def check_file_storage(
    s3: Any, source_bucket: str, bucket: str, prefix: str, *, now: dt.datetime, within: dt.timedelta
) -> CheckResult:
    """File storage is backed up: a finished copy of ``source_bucket`` (``file_storage_backup``'s
    ``<bucket>/<prefix><day>/manifest.json``) from the last ``within``, whose objects are all
    there. Bucket versioning alone does not count: it does not survive the bucket's deletion nor
    keep a restore point the retention can count."""
    from sanvi_ops.tasks.file_storage_backup.files import copy_prefix, find_copy, list_objects

    check = "file_storage.backup"
    where = f"s3://{bucket}/{prefix}"
    try:
        manifest, day = find_copy(s3, bucket, prefix, now=now, within=within)
        if manifest is None or day is None:
            return CheckResult(
                check,
                Status.CRITICAL,
                f"no finished copy of s3://{source_bucket} in {where} from the last "
                f"{within.total_seconds() / 3600:.0f} h (file_storage_backup did not run or failed)",
                component="file_storage",
                severity=SEVERITY,
            )
        copy = list_objects(s3, bucket, copy_prefix(prefix, day))
    except aws_error_types(OSError, ValueError) as exc:
        if (getattr(exc, "response", None) or {}).get("Error", {}).get("Code") == "NoSuchBucket":
            return CheckResult(
                check,
                Status.CRITICAL,
                f"s3://{bucket} does not exist: no file storage backup",
                component="file_storage",
                severity=SEVERITY,
            )
        return s3_failure(check, where, exc)
    expected = {str(k): int(size) for k, size, _ in manifest.get("objects", [])}
    missing = [k for k, size in expected.items() if copy.get(k, (None,))[0] != size]
    if missing:
        return CheckResult(
            check,
            Status.CRITICAL,
            f"{where}{day:%Y-%m-%d}/: {len(missing)} of {len(expected)} object(s) missing or of the wrong "
            f"size (first {missing[0]})",
            observed=float(len(missing)),
            unit="count",
            details={"day": f"{day:%Y-%m-%d}", "missing": missing[:20]},
            component="file_storage",
            severity=SEVERITY,
        )
    return CheckResult(
        check,
        Status.OK,
        f"copy of s3://{source_bucket} from {manifest.get('finished_at', '')[:16]} in {where}{day:%Y-%m-%d}/: "
        f"{len(expected)} object(s), {int(manifest.get('bytes', 0)) / 1e6:.1f} MB",
        observed=float(len(expected)),
        unit="count",
        details={"day": f"{day:%Y-%m-%d}"},
        component="file_storage",
    )


def _snapshot_intact(s3: Any, bucket: str, prefix: str, retention_days: int) -> CheckResult:
    """The configuration backup's newest snapshot under ``prefix``: there, and its digest matches."""
    from sanvi_ops.tasks.configuration_backup.snapshot import latest_snapshot

    check, where = "configuration.backup", f"s3://{bucket}/{prefix}"
    try:
        snapshot = latest_snapshot(s3, bucket, prefix)
    except LookupError:
        return CheckResult(
            check,
            Status.WARNING,
            f"{where}: versioned, but no configuration snapshot yet (configuration_backup has not run)",
            component="configuration",
        )
    except ValueError as exc:
        return CheckResult(check, Status.CRITICAL, str(exc), component="configuration", severity=SEVERITY)
    except aws_error_types(OSError) as exc:
        return s3_failure(check, where, exc)
    return CheckResult(
        check,
        Status.OK,
        f"{where}: versioned, old versions kept ≥ {retention_days} d; the newest snapshot (taken "
        f"{snapshot.get('taken_at', '?')}) is intact",
        component="configuration",
        details={"digest": snapshot.get("digest"), "taken_at": snapshot.get("taken_at")},
    )


def check_configuration(s3: Any, bucket: str, *, retention_days: int, prefix: str = "") -> CheckResult:
    """Configuration backups: the bucket is versioned and keeps old versions ≥ ``retention_days``
    (rules covering ``prefix``); with ``prefix`` (the configuration backup's), its newest snapshot
    must be there and intact (its digest matches its content)."""
    from botocore.exceptions import ClientError

    check = "configuration.backup"
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return CheckResult(
                check,
                Status.CRITICAL,
                f"s3://{bucket} does not exist",
                component="configuration",
                severity=SEVERITY,
            )
        return s3_failure(check, f"s3://{bucket}", exc)
    except aws_error_types(OSError) as exc:
        return s3_failure(check, f"s3://{bucket}", exc)
    if versioning != "Enabled":
        return CheckResult(
            check,
            Status.CRITICAL,
            f"s3://{bucket}: versioning is {versioning or 'off'}; configuration changes are not kept",
            component="configuration",
            severity=SEVERITY,
        )

    from sanvi_ops.tasks.configuration_backup.snapshot import rule_prefix

    short = [
        int(r["NoncurrentVersionExpiration"]["NoncurrentDays"])
        for r in rules
        if r.get("Status") == "Enabled"
        and "NoncurrentDays" in (r.get("NoncurrentVersionExpiration") or {})
        and prefix.startswith(rule_prefix(r))
    ]
    short = [d for d in short if d < retention_days]
    where = f"s3://{bucket}/{prefix}"
    if short:
        return CheckResult(
            check,
            Status.WARNING,
            f"{where}: old versions expire after {min(short)} d, the guide keeps {retention_days} d",
            component="configuration",
        )
    if prefix:
        return _snapshot_intact(s3, bucket, prefix, retention_days)
    return CheckResult(
        check,
        Status.OK,
        f"{where}: versioned, old versions kept ≥ {retention_days} d",
        component="configuration",
    )


def check_system_images(
    ec2: Any, *, now: dt.datetime, newest_within: dt.timedelta, retention_days: int
) -> list[CheckResult]:
    """An AMI of ours created within ``newest_within``; none older than ``retention_days`` kept."""

    try:
        images = ec2.describe_images(Owners=["self"]).get("Images", [])
    except aws_error_types(OSError) as exc:
        return [s3_failure("system_images.backup", "EC2 describe_images", exc)]

    def created(img: dict[str, Any]) -> dt.datetime:
        return dt.datetime.fromisoformat(str(img["CreationDate"]).replace("Z", "+00:00"))

    if not images:
        return [
            CheckResult(
                "system_images.backup",
                Status.CRITICAL,
                "no AMI of ours exists",
                component="system_images",
                severity=SEVERITY,
            )
        ]
    newest = max(images, key=created)
    age_days = (now - created(newest)).total_seconds() / 86400
    limit = newest_within.total_seconds() / 86400
    results = [
        CheckResult(
            "system_images.backup",
            Status.CRITICAL if age_days > limit else Status.OK,
            f"newest AMI {newest['ImageId']} is {age_days:.1f} d old (limit {limit:.0f} d)",
            metric="newest_ami_age_days",
            observed=round(age_days, 2),
            unit="d",
            thresholds={"critical": limit},
            component="system_images",
            severity=SEVERITY if age_days > limit else None,
        )
    ]
    old = [i["ImageId"] for i in images if (now - created(i)).days > retention_days]
    results.append(
        CheckResult(
            "system_images.retention",
            Status.WARNING if old else Status.OK,
            (
                f"{len(old)} AMI(s) older than {retention_days} d still kept: {', '.join(old[:5])}"
                if old
                else f"no AMI older than {retention_days} d"
            ),
            observed=float(len(old)),
            unit="count",
            component="system_images",
        )
    )
    return results


# --------------------------------------------------------------------------------------------
# RDS mode: AWS takes the backups; we check they are on, kept, recent and encrypted
# --------------------------------------------------------------------------------------------


def check_rds_backups(
    rds: Any,
    instances: list[str],
    *,
    now: dt.datetime,
    retention_days: int,
    restorable_within: dt.timedelta,
    snapshot_within: dt.timedelta = dt.timedelta(hours=24),
    snapshot_prefix: str | None = None,
    daily_within: dt.timedelta | None = None,
    export_within: dt.timedelta | None = None,
) -> list[CheckResult]:
    """Per instance: automated backups on with retention ≥ ``retention_days``, the latest
    restorable time within ``restorable_within`` (the RPO), a snapshot from the last
    ``snapshot_within``, and every snapshot encrypted; with ``daily_within`` our daily snapshot
    (:mod:`sanvi_ops.core.rds_backups`), with ``export_within`` its export to S3/Glacier.

    The facts are :func:`sanvi_ops.core.rds_backups.read_facts`, the same the backup DAGs and the
    weekly RDS restore test read.
    """

    from sanvi_ops.core.rds_backups import check_facts, read_facts

    results: list[CheckResult] = []
    for name in instances:
        try:
            facts = read_facts(rds, name, snapshot_prefix=snapshot_prefix, exports=export_within is not None)
        except aws_error_types(OSError) as exc:
            results.append(s3_failure(f"rds_backup[{name}]", f"RDS {name}", exc))
            continue
        results += check_facts(
            facts,
            now=now,
            retention_days=retention_days,
            restorable_within=restorable_within,
            snapshot_within=snapshot_within,
            daily_within=daily_within,
            export_within=export_within,
        )
    return results
