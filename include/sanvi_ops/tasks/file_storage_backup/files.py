"""The daily copy of the application's file storage, and its verification (clients in, results out).

Layout in the backup bucket (one complete point-in-time copy per day)::

    <prefix><YYYY-MM-DD>/data/<source key>     server-side copies (CopyObject; UploadPartCopy > 5 GiB)
    <prefix><YYYY-MM-DD>/manifest.json         written last: what the source held, per key size + ETag

Why a dated copy and not replication: a replica mirrors deletions and overwrites within
seconds, so a file deleted or corrupted by the application is gone from the replica too; a dated
copy is a restore point the guide's 30 days can count. Server-side copies keep bytes off the
worker, and a re-run of the same day copies only what is missing or differs (ETag and size), so a
retry after a failure is cheap. A lifecycle rule on ``<prefix>`` moves copies to Glacier and
expires them (:func:`sanvi_ops.core.backups.ensure_lifecycle`).

Verification (:func:`verify_copy`) holds the copy to its manifest — object count, total bytes,
every key with its size — and hashes a rotating sample (:func:`sample_window`: a different window
of the sorted keys each day) in source and copy with SHA-256. A missing, truncated or tampered
object is a ``critical`` result naming it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_types
from sanvi_ops.core.results import CheckResult, Status

FORMAT = "sanvi-file-backup/1"
MANIFEST_NAME = "manifest.json"
LIFECYCLE_RULE_ID = "sanvi-file-backups-retention"
COMPONENT = "file_storage"
SEVERITY = "P2"  # a data-safety finding, as the database backups'
#: CopyObject copies at most 5 GiB; larger objects go through the managed multipart copy.
COPY_OBJECT_LIMIT = 5 * 1024**3
CHUNK = 1 << 20

__all__ = [
    "CopyOutcome",
    "copy_bucket",
    "copy_prefix",
    "day_prefix",
    "find_copy",
    "list_objects",
    "sample_window",
    "verify_copy",
]


def day_prefix(prefix: str, day: dt.date) -> str:
    """``files/2026-12-03/``: the copy of ``day``."""
    return f"{prefix}{day:%Y-%m-%d}/"


def copy_prefix(prefix: str, day: dt.date) -> str:
    """``files/2026-12-03/data/``: where the objects of ``day``'s copy live."""
    return f"{day_prefix(prefix, day)}data/"


def list_objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, tuple[int, str]]:
    """Key (without ``prefix``) → (size, ETag) of every object under ``prefix``."""
    out: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) :]] = (int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))
    return out


@dataclass
class CopyOutcome:
    """What one day's copy did."""

    day: dt.date
    source: dict[str, tuple[int, str]]
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    manifest_key: str = ""

    @property
    def bytes(self) -> int:
        return sum(size for size, _ in self.source.values())


def _copy_one(s3: Any, source_bucket: str, key: str, size: int, etag: str, bucket: str, dest: str) -> None:
    source = {"Bucket": source_bucket, "Key": key}
    if size > COPY_OBJECT_LIMIT:
        s3.copy(source, bucket, dest)  # boto3's managed UploadPartCopy
        return
    # IfMatch: copy the version that was listed; a changed object fails (412) and is retried once
    # with what the source holds now.
    from botocore.exceptions import ClientError

    try:
        s3.copy_object(CopySource=source, Bucket=bucket, Key=dest, CopySourceIfMatch=f'"{etag}"')
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"PreconditionFailed", "412"}:
            raise
        s3.copy_object(CopySource=source, Bucket=bucket, Key=dest)


def copy_bucket(
    s3: Any,
    source_bucket: str,
    bucket: str,
    prefix: str,
    day: dt.date,
    *,
    workers: int = 8,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> CopyOutcome:
    """Copy every object of ``source_bucket`` into ``<bucket>/<prefix><day>/data/`` server-side;
    objects already there with the same size and ETag (a re-run) are not copied again. Writes
    ``manifest.json`` last, only when every object was copied. Raises only for listing errors."""
    if source_bucket == bucket:
        raise ValueError(
            f"file_storage_backups.bucket is the source bucket {bucket!r}: a backup inside the bucket it "
            "protects is lost with it (and would be copied into itself every day)"
        )
    started = now()
    source = list_objects(s3, source_bucket)
    data = copy_prefix(prefix, day)
    present = list_objects(s3, bucket, data)
    outcome = CopyOutcome(day=day, source=source)
    todo = []
    for key, (size, etag) in sorted(source.items()):
        have = present.get(key)
        if have is not None and have[0] == size and have[1] == etag:
            outcome.unchanged.append(key)
        else:
            todo.append((key, size, etag))

    def run(item: tuple[str, int, str]) -> tuple[str, str | None]:
        key, size, etag = item
        try:
            _copy_one(s3, source_bucket, key, size, etag, bucket, data + key)
        except aws_error_types(OSError, ValueError) as exc:
            return key, str(exc)[:300]
        return key, None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for key, problem in pool.map(run, todo):
            if problem is None:
                outcome.copied.append(key)
            else:
                outcome.failed[key] = problem
    if not outcome.failed:
        manifest = {
            "format": FORMAT,
            "day": f"{day:%Y-%m-%d}",
            "source_bucket": source_bucket,
            "started_at": started.isoformat(),
            "finished_at": now().isoformat(),
            "count": len(source),
            "bytes": outcome.bytes,
            # [key, size, source ETag], sorted by key
            "objects": [[k, s, e] for k, (s, e) in sorted(source.items())],
        }
        outcome.manifest_key = day_prefix(prefix, day) + MANIFEST_NAME
        s3.put_object(
            Bucket=bucket,
            Key=outcome.manifest_key,
            Body=json.dumps(manifest, separators=(",", ":")).encode(),
            ContentType="application/json",
        )
    return outcome


def copy_result(outcome: CopyOutcome, source_bucket: str, bucket: str, prefix: str) -> CheckResult:
    """``file_storage.copy``: ok when every object is in today's copy, critical otherwise."""
    where = f"s3://{bucket}/{day_prefix(prefix, outcome.day)}"
    details = {
        "source_bucket": source_bucket,
        "copy": where,
        "objects": len(outcome.source),
        "bytes": outcome.bytes,
        "copied": len(outcome.copied),
        "unchanged": len(outcome.unchanged),
        "failed": dict(list(outcome.failed.items())[:20]),
        "manifest": outcome.manifest_key or None,
    }
    if outcome.failed:
        first = next(iter(outcome.failed))
        return CheckResult(
            "file_storage.copy",
            Status.CRITICAL,
            f"{len(outcome.failed)} of {len(outcome.source)} object(s) of s3://{source_bucket} not copied to "
            f"{where} (first: {first}: {outcome.failed[first]}); no manifest written",
            observed=float(len(outcome.failed)),
            unit="count",
            details=details,
            component=COMPONENT,
            severity=SEVERITY,
        )
    return CheckResult(
        "file_storage.copy",
        Status.OK,
        f"s3://{source_bucket} → {where}: {len(outcome.source)} object(s), {_mb(outcome.bytes)} "
        f"({len(outcome.copied)} copied, {len(outcome.unchanged)} already there)",
        metric="objects",
        observed=float(len(outcome.source)),
        unit="count",
        details=details,
        component=COMPONENT,
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def sample_window(keys: Iterable[str], day: dt.date, size: int) -> list[str]:
    """``size`` keys of the sorted ``keys``, a different window each day: day ``n`` (days since
    2000-01-01) starts at ``n × size`` mod the number of keys and wraps, so consecutive days cover
    the whole copy in ⌈keys / size⌉ days. Deterministic: a re-run of a day hashes the same keys."""
    ordered = sorted(set(keys))
    if not ordered or size <= 0:
        return []
    if size >= len(ordered):
        return ordered
    start = ((day - dt.date(2000, 1, 1)).days * size) % len(ordered)
    return [ordered[(start + i) % len(ordered)] for i in range(size)]


def _sha256(s3: Any, bucket: str, key: str) -> tuple[str, int]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    digest, total = hashlib.sha256(), 0
    try:
        while chunk := body.read(CHUNK):
            digest.update(chunk)
            total += len(chunk)
    finally:
        body.close()
    return digest.hexdigest(), total


def read_manifest(s3: Any, bucket: str, prefix: str, day: dt.date) -> dict[str, Any] | None:
    """The manifest of ``day``'s copy, ``None`` when there is none (copy missing or unfinished)."""
    from botocore.exceptions import ClientError

    try:
        raw = s3.get_object(Bucket=bucket, Key=day_prefix(prefix, day) + MANIFEST_NAME)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise
    manifest = json.loads(raw)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"s3://{bucket}/{day_prefix(prefix, day)}{MANIFEST_NAME}: not a {FORMAT} manifest")
    return manifest


def verify_copy(
    s3: Any,
    source_bucket: str,
    bucket: str,
    prefix: str,
    day: dt.date,
    *,
    sample_objects: int,
    sample_max_bytes: int,
) -> list[CheckResult]:
    """``file_storage.verify`` (count, bytes, every key and size against the manifest) and
    ``file_storage.checksums`` (SHA-256 of today's sample, source vs copy)."""
    where = f"s3://{bucket}/{day_prefix(prefix, day)}"
    manifest = read_manifest(s3, bucket, prefix, day)
    if manifest is None:
        return [
            CheckResult(
                "file_storage.verify",
                Status.CRITICAL,
                f"{where}: no manifest.json: today's copy is missing or did not finish",
                component=COMPONENT,
                severity=SEVERITY,
            )
        ]
    expected = {str(k): (int(s), str(e)) for k, s, e in manifest["objects"]}
    copy = list_objects(s3, bucket, copy_prefix(prefix, day))
    missing = sorted(set(expected) - set(copy))
    wrong_size = sorted(k for k in set(expected) & set(copy) if copy[k][0] != expected[k][0])
    extra = sorted(set(copy) - set(expected))
    copy_bytes = sum(copy[k][0] for k in set(expected) & set(copy))
    details: dict[str, Any] = {
        "expected_objects": len(expected),
        "copied_objects": len(set(expected) & set(copy)),
        "expected_bytes": int(manifest["bytes"]),
        "copied_bytes": copy_bytes,
        "missing": missing[:20],
        "wrong_size": wrong_size[:20],
        "extra": extra[:20],
    }
    results: list[CheckResult] = []
    if missing or wrong_size:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]})")
        if wrong_size:
            k = wrong_size[0]
            parts.append(
                f"{len(wrong_size)} of the wrong size (first {k}: {copy[k][0]} B, source {expected[k][0]} B)"
            )
        results.append(
            CheckResult(
                "file_storage.verify",
                Status.CRITICAL,
                f"{where}: {len(expected)} object(s) expected, " + "; ".join(parts),
                metric="missing_objects",
                observed=float(len(missing) + len(wrong_size)),
                unit="count",
                details=details,
                component=COMPONENT,
                severity=SEVERITY,
            )
        )
    else:
        results.append(
            CheckResult(
                "file_storage.verify",
                Status.OK,
                f"{where}: {len(expected)} object(s), {_mb(copy_bytes)}, as the manifest says"
                + (f" ({len(extra)} extra object(s) ignored)" if extra else ""),
                metric="objects",
                observed=float(len(expected)),
                unit="count",
                details=details,
                component=COMPONENT,
            )
        )
    results.append(
        _checksums(s3, source_bucket, bucket, prefix, day, expected, copy, sample_objects, sample_max_bytes)
    )
    return results


def _checksums(
    s3: Any,
    source_bucket: str,
    bucket: str,
    prefix: str,
    day: dt.date,
    expected: dict[str, tuple[int, str]],
    copy: dict[str, tuple[int, str]],
    sample_objects: int,
    sample_max_bytes: int,
) -> CheckResult:
    from botocore.exceptions import ClientError

    check = "file_storage.checksums"
    candidates = [k for k in sample_window(expected, day, sample_objects) if k in copy]
    data = copy_prefix(prefix, day)
    hashed: list[str] = []
    differ: list[str] = []
    changed: list[str] = []
    budget = sample_max_bytes
    for key in candidates:
        size = expected[key][0]
        if hashed and 2 * size > budget:
            continue
        try:
            head = s3.head_object(Bucket=source_bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                changed.append(key)  # deleted since the copy: nothing to compare with
                continue
            raise
        if str(head.get("ETag", "")).strip('"') != expected[key][1]:
            changed.append(key)  # overwritten since the copy: the copy holds the old version
            continue
        source_hash, _ = _sha256(s3, source_bucket, key)
        copy_hash, _ = _sha256(s3, bucket, data + key)
        budget -= 2 * size
        hashed.append(key)
        if source_hash != copy_hash:
            differ.append(key)
    details = {"sampled": hashed, "changed_since_copy": changed, "differ": differ}
    if differ:
        return CheckResult(
            check,
            Status.CRITICAL,
            f"{len(differ)} of {len(hashed)} sampled object(s) differ from the source (SHA-256): "
            + ", ".join(differ[:5]),
            observed=float(len(differ)),
            unit="count",
            details=details,
            component=COMPONENT,
            severity=SEVERITY,
        )
    if not hashed and expected and sample_objects > 0:
        return CheckResult(
            check,
            Status.WARNING,
            f"no object could be hashed today ({len(changed)} changed since the copy)",
            details=details,
            component=COMPONENT,
        )
    return CheckResult(
        check,
        Status.OK,
        f"{len(hashed)} sampled object(s) identical in source and copy (SHA-256)"
        + (f"; {len(changed)} changed since the copy, skipped" if changed else ""),
        observed=float(len(hashed)),
        unit="count",
        details=details,
        component=COMPONENT,
    )


def find_copy(
    s3: Any, bucket: str, prefix: str, *, now: dt.datetime, within: dt.timedelta
) -> tuple[dict[str, Any] | None, dt.date | None]:
    """The newest finished copy (manifest) of the days ``now - within`` … ``now``, and its day."""
    day = now.date()
    oldest = (now - within).date()
    while day >= oldest:
        manifest = read_manifest(s3, bucket, prefix, day)
        if manifest is not None:
            finished = dt.datetime.fromisoformat(str(manifest.get("finished_at")))
            if now - finished <= within:
                return manifest, day
        day -= dt.timedelta(days=1)
    return None, None
