"""How the application's file storage is backed up: ``file_storage_backups`` in ``maintenance.yaml``,
read by the ``file_storage_backup`` DAG and by ``backup_verification`` (which looks for today's copy).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field, field_validator

from sanvi_ops.core.config import ClockTime, NonEmpty, _Model


class FileStorageBackupSettings(_Model):
    """The guide's "File storage — Daily — 30 days — S3 + Glacier" row (``file_storage_backup``).

    Every day the application's file bucket is copied, server-side (no byte passes through the
    worker), into ``<bucket>/<prefix><YYYY-MM-DD>/data/<key>``; ``manifest.json`` is written last.
    A lifecycle rule on ``<prefix>`` moves copies to Glacier after ``glacier_after_days`` and
    expires them after ``backups.file_storage.retention_days``.
    """

    team: NonEmpty = "devops"
    #: When the daily copy starts (the config's time zone).
    at: ClockTime = dt.time(2, 0)
    #: The application's file bucket (``None``: ``tasks.system_health_check.settings.buckets.files``).
    source_bucket: str | None = None
    #: Where the copies go (``None``: ``database_backups.bucket``); never the source bucket.
    bucket: str | None = None
    prefix: NonEmpty = "files/"
    #: Days before a copy moves to Glacier (lifecycle rule); expiry is the retention.
    glacier_after_days: int = Field(default=7, gt=0)
    #: Objects whose content is hashed in source and copy per run (SHA-256), a different window
    #: of the sorted keys each day, so the whole copy is covered every ⌈objects / sample⌉ days.
    sample_objects: int = Field(default=20, ge=0)
    #: …but at most this many MB read per run (each sampled object is read twice).
    sample_max_mb: int = Field(default=256, gt=0)
    #: Server-side copies in flight.
    copy_workers: int = Field(default=8, ge=1, le=64)
    execution_timeout_minutes: int = Field(default=120, gt=0)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value
