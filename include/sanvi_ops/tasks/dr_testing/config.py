"""The DR Testing's settings (``tasks.dr_testing.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from sanvi_ops.core.config import (
    Duration,
    NonEmpty,
    Threshold,
    _Model,
)


class DrReplicaBuckets(_Model):
    """The DR region's copies (replication targets) of the primary buckets."""

    backups: str | None = None  # replica of database_backups.bucket (same prefix)
    files: str | None = None  # replica of the file bucket (tasks.system_health_check.settings.buckets.files)
    #: Replica of the configuration backup's bucket (``configuration_backups.bucket``, or
    #: ``database_backups.bucket`` when that is null); the snapshot under the same prefix.
    configuration: str | None = None


class DrFullSystem(_Model):
    """The full-system drill's scratch environment (``sanvi_ops.tasks.dr_testing.system``)."""

    # The configuration snapshot applied as the scratch application's env file is the
    # configuration backup's newest (``configuration_backups``; the DR site: its replica).
    #: SSM parameters of the snapshot under this path become the app's env keys (rest of the name).
    app_parameters_path: str = "/"
    #: Cache warm-up: rows (key, value) of this query on the restored database go into a scratch
    #: Redis (``redis_server``: None = redis-server on PATH).
    cache_query: str | None = None
    cache_max_keys: int = Field(default=10_000, ge=1)
    redis_server: str | None = None
    #: The application, started with ``SANVI_APP_ENV_FILE`` and ``SANVI_APP_PORT`` in a minimal
    #: environment, pointed at the restored database (``DATABASE_URL``) and the cache (``REDIS_URL``).
    app_command: list[str] | None = None
    app_health_path: str = "/api/health"
    app_start_timeout_seconds: int = Field(default=60, gt=0)


class DrSite(_Model):
    """DR-site activation: point the DR environment at the recovered instance and probe it."""

    url: str | None = None  # the DR site's health URL, e.g. https://dr.sanvi-machinery.com/api/health
    point_url: str | None = (
        None  # POST {"environment": "dr", "upstream": ...} points the DR site; null: not pointed
    )
    ca_file: str | None = None  # CA bundle for url (null: the system's)
    #: On the local stack (an AWS endpoint on loopback) the DR site is pointed at the recovered
    #: instance without asking. In a real account every approver of this environment's deployment
    #: window must approve first (``approve_promote_<contact>`` under Required actions, within
    #: ``approval_deadline``); unanswered or rejected: recovered and probed in scratch only.
    approval_environment: NonEmpty = "production"
    approval_deadline: Duration = dt.timedelta(hours=4)


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
    full_system: DrFullSystem = Field(default_factory=DrFullSystem)
    dr_site: DrSite = Field(default_factory=DrSite)
    trend_runs: int = Field(default=5, ge=1, le=50)
    timeout_minutes: int = Field(default=180, gt=0)
