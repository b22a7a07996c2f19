"""Bodies of ``file_storage_backup``'s tasks: config + connections in, results out.

They never raise for a sick system: a copy that failed, a missing or tampered object, S3
refusing a call are results (:mod:`sanvi_ops.tasks.file_storage_backup.files`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def buckets(cfg: MaintenanceConfig) -> tuple[str, str]:
    """(source, destination) buckets of the file copies; raises ``ValueError`` naming the key."""
    f = cfg.file_storage_backups
    source = f.source_bucket or cfg.tasks.system_health_check.settings.buckets.get("files")
    if not source:
        raise ValueError(
            "no file bucket to back up: set file_storage_backups.source_bucket or "
            "tasks.system_health_check.settings.buckets.files"
        )
    return source, f.bucket or cfg.database_backups.bucket


def backup_day(cfg: MaintenanceConfig, logical_date: Any = None) -> dt.date:
    """The day a run copies: its logical date in the config's time zone (a re-run of a day
    completes that day's copy)."""
    moment = logical_date or dt.datetime.now(dt.UTC)
    return moment.astimezone(ZoneInfo(cfg.timezone)).date()  # type: ignore[no-any-return]


def _s3(cfg: MaintenanceConfig) -> Any:
    from sanvi_ops.tasks.database_backup_full.airflow_tasks import _s3 as backup_s3

    return backup_s3(cfg)


def _failure(check: str, what: str, exc: Exception) -> CheckResult:
    from sanvi_ops.tasks.backup_verification.verify import s3_failure

    return dataclasses.replace(s3_failure(check, what, exc), component="file_storage")


def ensure_retention() -> ResultDicts:
    """The lifecycle rule on the copies' prefix: Glacier after N days, expiry after the retention."""
    from sanvi_ops.core.backups import ensure_lifecycle
    from sanvi_ops.tasks.file_storage_backup.files import LIFECYCLE_RULE_ID

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        f = cfg.file_storage_backups
        _, bucket = buckets(cfg)
        try:
            result = ensure_lifecycle(
                _s3(cfg),
                bucket,
                f.prefix,
                glacier_after_days=f.glacier_after_days,
                retention_days=cfg.backups.file_storage.retention_days,
                rule_id=LIFECYCLE_RULE_ID,
            )
        except Exception as exc:  # noqa: BLE001 - S3 trouble is a result here
            return [_failure("file_storage.retention", f"lifecycle of s3://{bucket}", exc)]
        return [dataclasses.replace(result, check="file_storage.retention", component="file_storage")]

    return guard("file_storage", Status.ERROR, run)


def copy_files(logical_date: Any = None) -> ResultDicts:
    """Today's server-side copy of the file bucket, manifest last."""
    from sanvi_ops.core.aws_errors import aws_error_types
    from sanvi_ops.tasks.file_storage_backup.files import copy_bucket, copy_result

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        f = cfg.file_storage_backups
        source, bucket = buckets(cfg)
        try:
            outcome = copy_bucket(
                _s3(cfg), source, bucket, f.prefix, backup_day(cfg, logical_date), workers=f.copy_workers
            )
        except aws_error_types(OSError) as exc:
            return [_failure("file_storage.copy", f"copy of s3://{source} to s3://{bucket}", exc)]
        return [copy_result(outcome, source, bucket, f.prefix)]

    return guard("file_storage", Status.ERROR, run)


def verify_copy(logical_date: Any = None) -> ResultDicts:
    """Today's copy against its manifest (count, bytes, sizes) and a rotating checksum sample."""
    from sanvi_ops.core.aws_errors import aws_error_types
    from sanvi_ops.tasks.file_storage_backup import files

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        f = cfg.file_storage_backups
        source, bucket = buckets(cfg)
        try:
            return files.verify_copy(
                _s3(cfg),
                source,
                bucket,
                f.prefix,
                backup_day(cfg, logical_date),
                sample_objects=f.sample_objects,
                sample_max_bytes=f.sample_max_mb * 1_000_000,
            )
        except aws_error_types(OSError) as exc:
            return [_failure("file_storage.verify", f"s3://{bucket}/{f.prefix}", exc)]

    return guard("file_storage", Status.ERROR, run)
