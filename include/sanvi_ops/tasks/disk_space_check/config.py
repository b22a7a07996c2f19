"""The Disk Space Check's settings (``tasks.disk_space_check.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from sanvi_ops.core.config import (
    Duration,
    NonEmpty,
    _Model,
)


class DiskSpaceConfig(_Model):
    """What the weekly Disk Space Check reads (``sanvi_ops.tasks.disk_space_check.disk``); limits are ``thresholds.disk``.

    RDS instances are ``tasks.system_health_check.settings.rds_instances``.
    """

    filesystem_size_query: NonEmpty = (
        'node_filesystem_size_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs"}'
    )
    filesystem_avail_query: NonEmpty = (
        'node_filesystem_avail_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs"}'
    )
    #: A forecast of "full within this many days" is a warning even below the thresholds.
    full_within_days: float = Field(default=30, gt=0)
    #: How far back the days-until-full line is fitted.
    history: Duration = dt.timedelta(days=90)
    top_tables: int = Field(default=10, gt=0, le=100)
    timeout_seconds: float = Field(default=30, gt=0)
