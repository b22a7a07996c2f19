"""The monthly disaster-recovery drill: recover from backups alone, as if the primary were lost.

Scope (the guide's "Recovery Testing" list, ``recovery_testing`` in the config)
==============================================================================
:func:`scope_for` decides from the run's logical date, so a rerun of the same run does the same:

- ``dr_site_activation`` when the month is a semi-annual month (Jan, Jul),
- else ``full_system`` when it is a quarterly month (Jan, Apr, Jul, Oct),
- else ``database``.

(The months follow each item's ``cadence``: monthly = every month, quarterly = 1/4/7/10,
semi_annually = 1/7, annually = 1.) A manual run may name the scope.

What each scope recovers
========================
- **database** (every scope): the newest complete backup whose whole chain (full + incrementals)
  is in S3 is restored with :func:`sanvi_ops.tasks.backup_testing.restore.run_restore_test` into a DR cluster on this
  worker (``tasks.dr_testing.settings.scratch_dir`` / ``port``; the same guards: never the application
  database's server nor a ``production_targets`` entry, the directory empty or ours), validated
  (``pg_amcheck``, row counts against the manifest, smoke queries) without contacting the primary
  (its catalog is not compared) and always removed. A gap in the newest chain is critical and
  the drill falls back to the newest intact chain, so the measured RPO shows what a real
  disaster would lose. RDS mode: PITR to the latest restorable time in ``dr_region``
  (:mod:`sanvi_ops.tasks.backup_testing.rds_restore`).
- **full_system** adds **file storage** (objects of the files bucket — latest versions —
  copied back to local disk and checked against size/MD5; a bucket larger than
  ``files_max_objects``/``files_max_mb`` is sampled evenly and its full recovery time
  extrapolated from the measured MB/s) and **configuration** (the versioned configuration
  bucket: versioning on, every latest object retrievable, its SHA-256 recorded).
- **dr_site_activation**: the same, but from the DR region: the replica buckets
  (``tasks.dr_testing.settings.replica_buckets``) must exist *in* ``dr_region``, and everything is read there.

RTO = drill start → the last component recovered (the database: server healthy and answering
the smoke queries). RPO = drill start − newest ``rpo_column`` row in the recovered database.
Both are compared with the guide's 1-hour objective (``tasks.dr_testing.settings.rto``/``rpo``). Each scope
records its row in ``recovery_tests`` (kinds ``dr_database``, ``dr_full_system``,
``dr_site_activation``), every component its own recovery time in ``details``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanvi_ops.core.backups import BackupEntry, list_backups
from sanvi_ops.core.results import CheckResult, Status, grade, worst
from sanvi_ops.tasks.backup_testing.restore import (
    DIR_PREFIX,
    RestoreOutcome,
    RestoreRefused,
    _process_start,
    check_scratch_root,
    clean_leftovers,
    write_marker,
)
from sanvi_ops.tasks.dr_testing.system import ScratchSystem, SystemSettings, clean_system_leftovers

SCOPES = ("database", "full_system", "dr_site_activation")
KINDS = {
    "database": "dr_database",
    "full_system": "dr_full_system",
    "dr_site_activation": "dr_site_activation",
}
CADENCE_MONTHS: dict[str, frozenset[int]] = {
    "weekly": frozenset(range(1, 13)),
    "monthly": frozenset(range(1, 13)),
    "quarterly": frozenset({1, 4, 7, 10}),
    "semi_annually": frozenset({1, 7}),
    "annually": frozenset({1}),
}

__all__ = [
    "CADENCE_MONTHS",
    "KINDS",
    "SCOPES",
    "DrOutcome",
    "DrSettings",
    "check_bucket_region",
    "pick_intact_chain",
    "recover_configuration",
    "recover_files",
    "run_drill",
    "scope_for",
]


def scope_for(when: dt.date, cadences: dict[str, str]) -> str:
    """The drill's scope for a run whose logical date is ``when``.

    ``cadences``: ``recovery_testing`` item → cadence (``full_system``, ``dr_site_activation``).
    The widest scope whose cadence includes ``when``'s month wins.
    """
    month = when.month
    if month in CADENCE_MONTHS[cadences.get("dr_site_activation", "semi_annually")]:
        return "dr_site_activation"
    if month in CADENCE_MONTHS[cadences.get("full_system", "quarterly")]:
        return "full_system"
    return "database"


def _result(check: str, status: Status, summary: str, **kw: Any) -> CheckResult:
    return CheckResult(f"dr.{check}", status, summary, component="dr", **kw)


def _s3_error(what: str, exc: Exception) -> str:
    from sanvi_ops.core.aws_errors import aws_error_text

    operation = getattr(exc, "operation_name", None)
    return f"{what}: {operation + ' ' if operation else ''}{aws_error_text(exc)}"


# --------------------------------------------------------------------------------------------
# Database: the newest intact chain
# --------------------------------------------------------------------------------------------


def pick_intact_chain(entries: list[BackupEntry]) -> tuple[BackupEntry | None, list[str]]:
    """The newest complete backup whose every chain member is complete, and the problems of the
    newer ones skipped (a gap in the chain, a half-written backup)."""
    by_id = {e.backup_id: e for e in entries}
    problems: list[str] = []
    for entry in reversed(entries):
        if not entry.complete:
            problems.append(f"{entry.backup_id}: {entry.manifest_error or 'no manifest.json (half-written)'}")
            continue
        assert entry.manifest is not None
        missing = [
            m
            for m in entry.manifest.get("chain", [entry.backup_id])
            if m not in by_id or not by_id[m].complete
        ]
        if missing:
            problems.append(
                f"{entry.backup_id}: gap in its chain, {', '.join(missing)} missing or incomplete"
            )
            continue
        return entry, problems
    return None, problems


# --------------------------------------------------------------------------------------------
# File storage and configuration
# --------------------------------------------------------------------------------------------


@dataclass
class ComponentOutcome:
    """One recovered component's figures (``recovery_tests.details.components``)."""

    name: str
    result: CheckResult
    seconds: float | None = None
    bytes: int = 0
    objects: int = 0
    estimated_seconds: float | None = None  # the whole component, when only a sample was copied
    #: When it was recovered, seconds since the drill's start (its RTO; components overlap).
    ended_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.result.status),
            "seconds": self.seconds,
            "bytes": self.bytes,
            "objects": self.objects,
            "estimated_seconds": self.estimated_seconds,
            "rto_seconds": self.ended_s,
        }


def check_bucket_region(s3: Any, bucket: str, region: str) -> str | None:
    """``None`` when ``bucket`` lives in ``region``; else what is wrong."""
    try:
        where = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"
    except Exception as exc:  # noqa: BLE001
        return _s3_error(f"s3://{bucket}", exc)
    if where == "EU":
        where = "eu-west-1"
    if where != region:
        return f"s3://{bucket} is in {where}, not in the DR region {region}"
    return None


def _list_all(s3: Any, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    objs: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objs += page.get("Contents", [])
    return objs


def _sample(objs: list[dict[str, Any]], max_objects: int, max_bytes: int) -> list[dict[str, Any]]:
    """An even spread over the bucket (sorted by key), within both limits."""
    if not objs:
        return []
    step = max(1, len(objs) // max_objects)
    picked: list[dict[str, Any]] = []
    total = 0
    for obj in objs[::step]:
        if len(picked) >= max_objects or (picked and total + int(obj["Size"]) > max_bytes):
            break
        picked.append(obj)
        total += int(obj["Size"])
    return picked


def _mark(root: Path, label: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{label}-", dir=root))
    write_marker(work, {"pid": os.getpid(), "pid_start": _process_start(os.getpid()), "what": label})
    return work


#: Objects copied back at once by :func:`recover_files`.
FILE_STREAMS = 8


def _copy_back(s3: Any, bucket: str, obj: dict[str, Any], work: Path) -> tuple[str, str | None, int]:
    """One object to local disk, checked against its listing: (key, problem or None, bytes)."""
    key = obj["Key"]
    dest = work / "data" / hashlib.sha256(key.encode()).hexdigest()[:32]
    dest.parent.mkdir(exist_ok=True)
    try:
        resp = s3.get_object(Bucket=bucket, Key=key)
        md5, size = hashlib.md5(usedforsecurity=False), 0
        body = resp["Body"]
        with dest.open("wb") as out:
            while chunk := body.read(1 << 20):
                md5.update(chunk)
                size += len(chunk)
                out.write(chunk)
    except Exception as exc:  # noqa: BLE001
        return key, _s3_error("GetObject", exc), 0
    etag = str(obj.get("ETag", "")).strip('"')
    kms = resp.get("ServerSideEncryption") == "aws:kms"
    if size != int(obj["Size"]):
        return key, f"{size} bytes read, {obj['Size']} listed (truncated)", size
    if etag and "-" not in etag and not kms and etag != md5.hexdigest():
        return key, f"MD5 {md5.hexdigest()[:12]}… differs from the ETag {etag[:12]}… (corrupted)", size
    return key, None, size


def recover_files(
    s3: Any, bucket: str, root: Path, *, max_objects: int, max_bytes: int, t0: float
) -> ComponentOutcome:
    """Copy file storage back to local disk (a sample of a large bucket), check each object."""
    start = time.monotonic()
    try:
        objs = _list_all(s3, bucket)
    except Exception as exc:  # noqa: BLE001
        return ComponentOutcome(
            "file_storage",
            _result("file_storage", Status.CRITICAL, _s3_error(f"s3://{bucket}", exc), severity="P2"),
        )
    if not objs:
        return ComponentOutcome(
            "file_storage",
            _result(
                "file_storage",
                Status.CRITICAL,
                f"s3://{bucket} is empty: no file storage to recover",
                severity="P2",
            ),
        )
    total_bytes = sum(int(o["Size"]) for o in objs)
    sample = _sample(sorted(objs, key=lambda o: o["Key"]), max_objects, max_bytes)
    try:
        check_scratch_root(root, None)
    except RestoreRefused as exc:
        return ComponentOutcome(
            "file_storage", _result("file_storage", Status.CRITICAL, str(exc), severity="P3")
        )
    work = _mark(root, "files")  # a killed drill's copy is removed by the next drill's first sweep
    bad: dict[str, str] = {}
    copied = 0
    try:
        from concurrent.futures import ThreadPoolExecutor

        # Several GETs at once: one stream per object leaves S3 (and the moto here) mostly idle
        # between round trips; the client is thread-safe.
        with ThreadPoolExecutor(max_workers=FILE_STREAMS, thread_name_prefix="dr-files") as pool:
            for key, problem, size in pool.map(lambda o: _copy_back(s3, bucket, o, work), sample):
                if problem is not None:
                    bad[key] = problem
                else:
                    copied += size
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - start
    sampled = len(sample) < len(objs)
    estimate = seconds * total_bytes / copied if sampled and copied else seconds
    comp = ComponentOutcome(
        "file_storage",
        _result("file_storage", Status.OK, ""),
        seconds=round(seconds, 3),
        bytes=copied,
        objects=len(sample) - len(bad),
        estimated_seconds=round(estimate, 3),
    )
    what = (
        f"{len(sample)} of {len(objs)} objects ({copied / 1e6:.1f} of {total_bytes / 1e6:.1f} MB, an even sample)"
        if sampled
        else f"all {len(objs)} objects ({copied / 1e6:.1f} MB)"
    )
    details = {
        "bucket": bucket,
        "listed": len(objs),
        "listed_bytes": total_bytes,
        "sampled": sampled,
        "since_drill_start_s": round(time.monotonic() - t0, 3),
    }
    if bad:
        comp.result = _result(
            "file_storage",
            Status.CRITICAL,
            f"s3://{bucket}: {len(bad)} of {len(sample)} objects could not be recovered intact: {', '.join(list(bad)[:3])}",
            severity="P2",
            details={**details, "failed": dict(list(bad.items())[:50])},
        )
    else:
        comp.result = _result(
            "file_storage",
            Status.OK,
            f"s3://{bucket}: recovered {what} in {seconds:.1f} s"
            + (f"; the whole bucket ≈ {estimate / 60:.1f} min" if sampled else ""),
            metric="recovery_minutes",
            observed=round(estimate / 60, 2),
            unit="min",
            details=details,
        )
    return comp


def recover_configuration(s3: Any, bucket: str, *, max_objects: int, prefix: str = "") -> ComponentOutcome:
    """The configuration backup (``s3://bucket/prefix``): versioned, every latest object
    retrievable, SHA-256 recorded."""
    start = time.monotonic()
    where = f"{bucket}/{prefix}"
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
        objs = _list_all(s3, bucket, prefix)
    except Exception as exc:  # noqa: BLE001
        return ComponentOutcome(
            "configuration",
            _result("configuration", Status.CRITICAL, _s3_error(f"s3://{where}", exc), severity="P2"),
        )
    if not objs:
        return ComponentOutcome(
            "configuration",
            _result(
                "configuration",
                Status.CRITICAL,
                f"s3://{where} holds no configuration backup",
                severity="P2",
            ),
        )
    hashes: dict[str, str] = {}
    bad: dict[str, str] = {}
    size = 0
    for obj in sorted(objs, key=lambda o: o["LastModified"], reverse=True)[:max_objects]:
        try:
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        except Exception as exc:  # noqa: BLE001
            bad[obj["Key"]] = _s3_error("GetObject", exc)
            continue
        size += len(body)
        hashes[obj["Key"]] = hashlib.sha256(body).hexdigest()
    seconds = time.monotonic() - start
    comp = ComponentOutcome(
        "configuration",
        _result("configuration", Status.OK, ""),
        seconds=round(seconds, 3),
        bytes=size,
        objects=len(hashes),
    )
    details = {
        "bucket": bucket,
        "prefix": prefix,
        "versioning": versioning or "off",
        "sha256": dict(list(hashes.items())[:100]),
    }
    if bad:
        comp.result = _result(
            "configuration",
            Status.CRITICAL,
            f"s3://{where}: {len(bad)} configuration object(s) not retrievable: {', '.join(list(bad)[:3])}",
            severity="P2",
            details={**details, "failed": bad},
        )
    elif versioning != "Enabled":
        comp.result = _result(
            "configuration",
            Status.WARNING,
            f"s3://{where}: {len(hashes)} objects retrieved, but versioning is {versioning or 'off'} "
            "(earlier configurations cannot be recovered)",
            details=details,
        )
    else:
        newest = max(objs, key=lambda o: o["LastModified"])
        comp.result = _result(
            "configuration",
            Status.OK,
            f"s3://{where}: {len(hashes)} objects retrieved in {seconds:.1f} s (versioned); newest {newest['Key']} "
            f"sha256 {hashes.get(newest['Key'], '?')[:12]}…",
            metric="recovery_minutes",
            observed=round(seconds / 60, 3),
            unit="min",
            details=details,
        )
    return comp


# --------------------------------------------------------------------------------------------
# The drill
# --------------------------------------------------------------------------------------------


@dataclass
class DrSettings:
    """What :func:`run_drill` needs besides clients (``dr_testing`` config, resolved)."""

    scope: str
    root: Path
    region: str | None = None  # the DR region (dr_site_activation: buckets must live there)
    backups_bucket: str | None = None
    files_bucket: str | None = None
    configuration_bucket: str | None = None
    configuration_prefix: str = ""
    #: The config keys that set the buckets (named when one is missing).
    files_bucket_key: str = "tasks.system_health_check.settings.buckets.files"
    configuration_bucket_key: str = "configuration_backups.bucket"
    files_max_objects: int = 200
    files_max_mb: int = 512
    configuration_max_objects: int = 500
    rto_warning_min: float = 45
    rto_critical_min: float = 60
    #: The scratch environment of the full system (configuration applied, cache, application; the
    #: DR site); ``None`` = database, files and configuration objects only.
    system: SystemSettings | None = None


@dataclass
class DrOutcome:
    """The drill's results and the rows it records."""

    scope: str
    started_at: dt.datetime
    results: list[CheckResult] = field(default_factory=list)
    database: RestoreOutcome | None = None
    components: dict[str, ComponentOutcome] = field(default_factory=dict)
    rto_seconds: float | None = None

    def rows(self) -> list[tuple[str, RestoreOutcome]]:
        """``(kind, outcome)`` rows for ``recovery_tests``: the database's, and the scope's."""
        rows: list[tuple[str, RestoreOutcome]] = []
        db = self.database
        if db is not None and db.backup_id:
            rows.append((KINDS["database"], db))
        if self.scope != "database" and db is not None and db.backup_id:
            comps = {
                "database": {
                    "rto_seconds": db.rto_seconds,
                    "bytes": db.bytes,
                    "status": str(db.status),
                    "phases": db.details.get("phases", []),  # the database restore's timed phases
                }
            }
            comps.update({k: c.as_dict() for k, c in self.components.items()})
            rows.append(
                (
                    KINDS[self.scope],
                    RestoreOutcome(
                        results=self.results,
                        backup_id=db.backup_id,
                        started_at=self.started_at,
                        bytes=(db.bytes or 0) + sum(c.bytes for c in self.components.values()),
                        restore_seconds=self.rto_seconds,
                        rto_seconds=self.rto_seconds,
                        rpo_seconds=db.rpo_seconds,
                        details={"scope": self.scope, "components": comps},
                    ),
                )
            )
        return rows

    @property
    def status(self) -> Status:
        return worst(self.results) if self.results else Status.SKIPPED


def _renamed(results: list[CheckResult]) -> list[CheckResult]:
    """``restore.X`` results of the database restore as ``dr.database.X``."""
    return [
        dataclasses.replace(r, check="dr.database." + r.check.split(".", 1)[1], component="dr")
        if r.check.startswith("restore.")
        else r
        for r in results
    ]


def self_managed_database(
    s3: Any,
    settings: Any,
    *,
    app: Any,
    backup_id: str | None,
    dry_run: bool,
    clock: tuple[dt.datetime, float],
    while_up: Callable[[str], None] | None = None,
    on_downloaded: Callable[[], None] | None = None,
) -> tuple[RestoreOutcome, list[CheckResult]]:
    """The database from S3 alone: newest intact chain (or ``backup_id``) into the DR cluster.

    :param settings: :class:`sanvi_ops.tasks.backup_testing.restore.RestoreSettings` of the DR cluster.
    """
    from sanvi_ops.tasks.backup_testing.restore import guard_scratch_root, refuse_production, run_restore_test

    # The guards first, before even listing S3 (run_restore_test repeats them).
    refuse_production(
        scratch_host="127.0.0.1",
        scratch_port=settings.port,
        dbname=app.dbname if app else "postgres",
        app=app,
        production_targets=settings.production_targets,
    )
    guard_scratch_root(settings.scratch_root, app, settings.production_data_dirs)
    extra: list[CheckResult] = []
    if backup_id is None:
        try:
            entries = list_backups(s3, settings.bucket, settings.prefix, read_manifests=True)
        except Exception as exc:  # noqa: BLE001
            res = _result(
                "database.run",
                Status.ERROR,
                _s3_error(f"listing s3://{settings.bucket}/{settings.prefix}", exc),
            )
            return RestoreOutcome(results=[res], started_at=clock[0]), []
        entry, problems = pick_intact_chain(entries)
        if entry is None:
            res = _result(
                "database.run",
                Status.CRITICAL,
                f"no restorable backup under s3://{settings.bucket}/{settings.prefix}"
                + (f" ({'; '.join(problems[:3])})" if problems else ""),
                severity="P1",
            )
            return RestoreOutcome(results=[res], started_at=clock[0]), []
        gaps = [p for p in problems if "gap" in p]
        if problems and not gaps:  # only newer half-written backups: the newest good one is used
            extra.append(
                _result(
                    "database.chain",
                    Status.WARNING,
                    f"newer backup(s) incomplete — {problems[0]}; recovering from {entry.backup_id}",
                    details={"problems": problems[:20], "recovered_from": entry.backup_id},
                )
            )
        if gaps:
            extra.append(
                _result(
                    "database.chain",
                    Status.CRITICAL,
                    f"newest backup not restorable — {gaps[0]}; recovering from {entry.backup_id} instead",
                    severity="P2",
                    details={"problems": problems[:20], "recovered_from": entry.backup_id},
                )
            )
        backup_id = entry.backup_id
    outcome = run_restore_test(
        s3,
        settings,
        app=app,
        backup_id=backup_id,
        dry_run=dry_run,
        rpo_reference=clock[0],
        compare_source=False,
        clock=clock,
        while_up=while_up,
        on_downloaded=on_downloaded,
    )
    return outcome, extra


def _site_checks(settings: DrSettings, s3: Any | None) -> list[CheckResult]:
    """DR-site activation: the replica buckets are configured and live in the DR region."""
    results: list[CheckResult] = []
    buckets = {
        "backups": settings.backups_bucket,
        "files": settings.files_bucket,
        "configuration": settings.configuration_bucket,
    }
    missing = [name for name, bucket in buckets.items() if not bucket]
    if missing:  # a DR site without copies in its region is a finding, not a broken drill
        results.append(
            _result(
                "site.buckets",
                Status.CRITICAL,
                f"tasks.dr_testing.settings.replica_buckets.{', '.join(missing)} not set: the DR site's "
                "copies are unknown, so the DR site cannot be activated from them",
                severity="P2",
            )
        )
    wrong = [
        w
        for b in buckets.values()
        if b and s3 is not None and settings.region and (w := check_bucket_region(s3, b, settings.region))
    ]
    if wrong:
        results.append(
            _result(
                "site.region",
                Status.CRITICAL,
                f"the DR site's copies are not usable in {settings.region}: {'; '.join(wrong)}",
                severity="P2",
            )
        )
    elif not missing:
        results.append(
            _result("site.region", Status.OK, f"the replica buckets are in the DR region {settings.region}")
        )
    return results


def _other_components(settings: DrSettings, s3: Any, t0: float) -> tuple[list[ComponentOutcome], list[float]]:
    """File storage and configuration, one after the other; each one's end (s since ``t0``).

    Their recovery time counts from the drill's start: in a recovery they depend on nothing (S3
    objects, not the database) and run from the start beside it. The drill only runs them once the
    database's backup is down (:func:`_recover`), so that on one worker their GETs do not slow the
    restore; a sampled bucket's end is its whole-bucket estimate."""
    comps: list[ComponentOutcome] = []
    ends: list[float] = []
    if settings.files_bucket:
        comp = recover_files(
            s3,
            settings.files_bucket,
            settings.root,
            max_objects=settings.files_max_objects,
            max_bytes=settings.files_max_mb << 20,
            t0=t0,
        )
    else:
        comp = ComponentOutcome(
            "file_storage",
            _result(
                "file_storage",
                Status.WARNING,
                f"{settings.files_bucket_key} not set: file storage was not recovered",
            ),
        )
    comps.append(comp)
    if comp.seconds is not None:  # a sampled bucket: the whole one's extrapolated end
        comp.ended_s = round(comp.estimated_seconds or comp.seconds, 3)  # from the drill's start
        ends.append(comp.ended_s)
    if settings.configuration_bucket:
        comp = recover_configuration(
            s3,
            settings.configuration_bucket,
            max_objects=settings.configuration_max_objects,
            prefix=settings.configuration_prefix,
        )
    else:
        comp = ComponentOutcome(
            "configuration",
            _result(
                "configuration",
                Status.WARNING,
                f"{settings.configuration_bucket_key} not set: the configuration backup was not recovered",
            ),
        )
    comps.append(comp)
    if comp.seconds is not None:
        comp.ended_s = round(comp.seconds, 3)
        ends.append(comp.ended_s)
    return comps, ends


def run_drill(
    settings: DrSettings,
    *,
    database: Callable[..., tuple[RestoreOutcome, list[CheckResult]]],
    s3: Any | None = None,
    dry_run: bool = False,
) -> DrOutcome:
    """Recover the scope's components, overlapped; RTO = start → the last one recovered.

    The database restore runs in this thread. For the wider scopes, file storage and the
    configuration objects run in one thread beside it, and the scratch environment
    (:class:`~sanvi_ops.tasks.dr_testing.system.ScratchSystem`: snapshot applied, cache server and
    application started) in another; what needs the restored data (cache warm-up, the
    application's health, the DR site) runs as soon as the database answers (``while_up``).

    :param database: recovers the database (self-managed: :func:`self_managed_database`; RDS:
        :func:`sanvi_ops.tasks.backup_testing.rds_restore.restore_latest_time`), given the drill's
        clock and, with ``settings.system``, a ``while_up`` keyword (called with the restored DSN).
    :param s3: S3 client (in the DR region for ``dr_site_activation``) for the other components.
    """
    started, t0 = dt.datetime.now(dt.UTC), time.monotonic()
    out = DrOutcome(scope=settings.scope, started_at=started)
    results = out.results
    if settings.scope == "dr_site_activation":
        results.extend(_site_checks(settings, s3))
    wide = settings.scope != "database" and s3 is not None and not dry_run
    system = ScratchSystem(settings.system, s3, t0) if wide and settings.system is not None else None
    if system is not None:
        # Before anything else touches the root: the generic leftover sweep removes directories
        # only, and a killed drill's directory lists processes that must be killed first.
        system.leftovers = clean_system_leftovers(settings.system.root)  # type: ignore[union-attr]
    if wide:
        # A killed drill's file copy (and restore), before this drill creates anything there: once
        # the restore runs, this process's own directories are not leftovers.
        clean_leftovers(settings.root)
    db_outcome, extra, comps, more, cleanup = _recover(
        settings, database, s3, (started, t0), system=system, wide=wide, results=results
    )
    out.database = db_outcome
    results.extend(extra)
    results.extend(_renamed(db_outcome.results))
    if dry_run:
        return out
    db_rto = db_outcome.rto_seconds
    ends = [db_rto] if db_rto is not None else []
    for comp in comps:
        out.components[comp.name] = comp
        results.append(comp.result)
    ends += more
    if system is not None:
        ends += _system_results(system, out, db_rto, cleanup)
    if db_rto is not None:
        out.rto_seconds = round(max(ends), 3)
        results.insert(0, _rto_result(settings, out, db_rto))
    return out


def _recover(
    settings: DrSettings,
    database: Callable[..., tuple[RestoreOutcome, list[CheckResult]]],
    s3: Any,
    clock: tuple[dt.datetime, float],
    *,
    system: ScratchSystem | None,
    wide: bool,
    results: list[CheckResult],
) -> tuple[RestoreOutcome, list[CheckResult], list[ComponentOutcome], list[float], CheckResult | None]:
    """The database here, the other components in threads beside it; the scratch environment
    always torn down.

    File storage and the configuration objects start once the database's backup is down and
    extracted (``database`` is called with ``on_downloaded`` when it takes one): until then the
    restore's download and extraction are the worker's CPU-bound part, and hundreds of object GETs
    beside them would slow the database by more than they take. A ``database`` without it (RDS:
    nothing is downloaded to the worker) lets them start at once.
    """
    import inspect
    import threading
    from concurrent.futures import ThreadPoolExecutor

    t0 = clock[1]
    downloaded = threading.Event()
    kw: dict[str, Any] = {}
    if "on_downloaded" in inspect.signature(database).parameters:
        kw["on_downloaded"] = downloaded.set
    else:
        downloaded.set()

    def others_when_downloaded() -> tuple[list[ComponentOutcome], list[float]]:
        downloaded.wait()
        return _other_components(settings, s3, t0)

    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dr-component") if wide else None
    others = pool.submit(others_when_downloaded) if pool is not None else None
    prepared = pool.submit(system.prepare) if pool is not None and system is not None else None
    cleanup: CheckResult | None = None
    try:
        if system is not None:

            def while_up(dsn: str) -> None:
                try:
                    if prepared is not None:
                        prepared.result()  # the cache server and the application, started beside
                    system.while_up(dsn)
                except Exception as exc:  # noqa: BLE001 - a component problem is a result
                    results.append(_result("system.run", Status.ERROR, f"{type(exc).__name__}: {exc}"))

            kw["while_up"] = while_up
        try:
            db_outcome, extra = database(clock, **kw)
        finally:
            downloaded.set()  # the restore failed before its download ended: go on regardless
        comps, more = others.result() if others is not None else ([], [])
        if prepared is not None:
            prepared.result()
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if system is not None:
            cleanup = system.teardown()
    return db_outcome, extra, comps, more, cleanup


def _system_results(
    system: ScratchSystem, out: DrOutcome, db_rto: float | None, cleanup: CheckResult | None
) -> list[float]:
    """The scratch environment's components into ``out``; their ends (s since the start)."""
    results, ends = out.results, []
    if system.leftovers:
        results.append(
            _result(
                "system.leftovers",
                Status.WARNING,
                f"stopped and removed {len(system.leftovers)} scratch environment(s) left by a killed drill: "
                + ", ".join(system.leftovers),
                details={"removed": system.leftovers},
            )
        )
    for name, sc in system.components.items():
        if sc.seconds is None and db_rto is None and sc.result.status == Status.OK:
            continue
        out.components[name] = ComponentOutcome(name, sc.result, seconds=sc.seconds, ended_s=sc.ended_s)
        results.append(sc.result)
        if sc.ended_s is not None and sc.result.status == Status.OK:
            ends.append(sc.ended_s)
    needs_db = [n for n in ("cache", "application") if n not in system.components]
    if needs_db and db_rto is None:
        results.append(
            _result(
                "system.run",
                Status.CRITICAL if out.scope != "database" else Status.SKIPPED,
                f"{' and '.join(needs_db)} not recovered: the database was not restored",
                severity="P2",
            )
        )
    if cleanup is not None:
        results.append(cleanup)
    return ends


def _rto_result(settings: DrSettings, out: DrOutcome, db_rto: float) -> CheckResult:
    minutes = (out.rto_seconds or 0) / 60
    status = grade(minutes, settings.rto_warning_min, settings.rto_critical_min)
    parts = [f"database {db_rto / 60:.1f} min"] + [
        f"{name.replace('_', ' ')} {(c.ended_s or c.estimated_seconds or c.seconds or 0) / 60:.1f} min"
        for name, c in out.components.items()
        if c.seconds is not None
    ]
    slowest = max(
        [("database", db_rto)] + [(n, c.ended_s) for n, c in out.components.items() if c.ended_s is not None],
        key=lambda item: item[1],
    )[0]
    return _result(
        "rto",
        status,
        f"{settings.scope.replace('_', ' ')} recovered in {minutes:.1f} min ({', '.join(parts)}; "
        f"the last: {slowest.replace('_', ' ')}); objective < {settings.rto_critical_min:g} min",
        metric="rto_minutes",
        observed=round(minutes, 2),
        unit="min",
        thresholds={"warning": settings.rto_warning_min, "critical": settings.rto_critical_min},
        severity="P2" if status == Status.CRITICAL else None,
        details={
            "database_rto_seconds": db_rto,
            "slowest": slowest,
            "components": {k: c.as_dict() for k, c in out.components.items()},
        },
    )
