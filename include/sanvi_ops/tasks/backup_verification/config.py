"""The Backup Verification's settings (``tasks.backup_verification.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from sanvi_ops.core.config import (
    Duration,
    Threshold,
    _Model,
)


class BackupVerificationSettings(_Model):
    """How the daily ``backup_verification`` judges the backups (see ``sanvi_ops.tasks.backup_verification.verify``)."""

    #: The newest full may be at most this old (a day plus the time a full may take).
    full_max_age: Duration = dt.timedelta(hours=27)
    #: Older complete backups whose every object is re-hashed per run (rotating through history).
    sample_older: int = Field(default=2, ge=0)
    #: A full smaller than the median of earlier fulls by more than this is a warning.
    shrink_warning_pct: float = Field(default=30, gt=0, lt=100)
    #: The hourly chain over the last 24 h: largest gap between consecutive backups (= the RPO).
    rpo: Threshold = Threshold(warning=75, critical=120, unit="min")
    #: Configuration backups: a versioned bucket of their own keeping old versions at least this
    #: long; ``None``: the configuration backup's prefix (``configuration_backups``) and its newest
    #: snapshot, which must be intact.
    configuration_bucket: str | None = None
    #: File storage: the bucket whose daily copy (``file_storage_backups``) must exist (``None``:
    #: ``file_storage_backups.source_bucket``, then ``tasks.system_health_check.settings.buckets.files``).
    files_bucket: str | None = None
    #: System images: an AMI younger than ``backups.system_images.full_every`` must exist, none
    #: older than ``backups.system_images.retention_days`` kept.
    check_amis: bool = True
