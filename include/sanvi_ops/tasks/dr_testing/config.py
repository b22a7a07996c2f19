"""The DR Testing's settings (``tasks.dr_testing.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from pydantic import Field

from sanvi_ops.core.config import (
    NonEmpty,
    Threshold,
    _Model,
)


class DrReplicaBuckets(_Model):
    """The DR region's copies (replication targets) of the primary buckets."""

    backups: str | None = None  # replica of database_backups.bucket (same prefix)
    files: str | None = None
    configuration: str | None = None


class DrTestingConfig(_Model):
    """``dr_testing``: the monthly disaster-recovery drill (``sanvi_ops.tasks.dr_testing.dr``).

    Scope follows ``recovery_testing``: its cadences pick the months (quarterly = Jan/Apr/Jul/Oct,
    semi-annually = Jan/Jul, annually = Jan) from the run's logical date.
    """

    scratch_dir: str | None = None  # the DR cluster's root; None = <tmp>/sanvi-dr
    port: int | None = Field(default=None, ge=1, le=65535)  # None = a free port on 127.0.0.1
    dr_region: NonEmpty = "us-west-2"
    replica_buckets: DrReplicaBuckets = Field(default_factory=DrReplicaBuckets)
    #: File storage recovery: objects (and MB) actually copied back per drill; a larger bucket is
    #: sampled evenly and its full recovery time extrapolated from the measured throughput.
    files_max_objects: int = Field(default=200, ge=1)
    files_max_mb: int = Field(default=512, ge=1)
    configuration_max_objects: int = Field(default=500, ge=1)
    rto: Threshold = Threshold(warning=45, critical=60, unit="min")  # the guide: Recovery Time < 1 hour
    rpo: Threshold = Threshold(warning=75, critical=120, unit="min")  # hourly incrementals + slack
    trend_runs: int = Field(default=5, ge=1, le=50)
    timeout_minutes: int = Field(default=180, gt=0)
