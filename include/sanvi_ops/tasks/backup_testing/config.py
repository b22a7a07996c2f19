"""The Backup Testing's settings (``tasks.backup_testing.settings``), with the RDS restore's.

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sanvi_ops.core.config import (
    NonEmpty,
    Threshold,
    _Model,
)


class RdsRestoreConfig(_Model):
    """RDS mode (``database_backups.mode: rds``): the temporary instances the weekly restore test
    (latest automated snapshot) and the monthly DR drill (point-in-time restore) create.

    They are tagged ``sanvi-ops:purpose`` / ``sanvi-ops:created-by`` so a later run finds and
    deletes an orphan; they are always deleted without a final snapshot. SQL validation uses the
    ``connections.scratch_db`` connection's login/password/schema; its host/port, when set,
    replace the endpoint the API returns (for workers that reach RDS through a tunnel/proxy).
    """

    #: The production instance whose backups are restored; ``None``: the first of
    #: ``tasks.system_health_check.settings.rds_instances``.
    source_instance: str | None = None
    instance_class: NonEmpty = "db.t3.micro"
    subnet_group: str | None = None  # DB subnet group of the temporary instance (None: default VPC)
    security_group_ids: list[NonEmpty] = Field(default_factory=list)
    timeout_minutes: int = Field(default=90, gt=0)  # bound of the "available" wait
    poll_seconds: int = Field(default=30, ge=1, le=300)


class SmokeQuery(_Model):
    """One application query the restored database must answer (read-only, any result)."""

    name: NonEmpty
    sql: NonEmpty


class BackupTestingConfig(_Model):
    """``backup_testing``: the weekly restore test of a database backup (sanvi_ops.tasks.backup_testing.restore)."""

    scratch_dir: str | None = None  # root of the throw-away data directories; None = <tmp>/sanvi-restore
    port: int | None = Field(default=None, ge=1, le=65535)  # None = a free port on 127.0.0.1
    superuser: NonEmpty = "postgres"  # a superuser role of the restored cluster (local trust only)
    production_targets: list[NonEmpty] = Field(default_factory=list)  # "host:port[/db]" never restored into
    #: Absolute data directories of the production PostgreSQL servers on this machine. The scratch
    #: root must lie outside them; when the app role cannot read ``data_directory`` (no
    #: ``pg_read_all_settings``) the restore is refused unless this list is set.
    production_data_dirs: list[Annotated[str, Field(pattern=r"^/")]] = Field(default_factory=list)
    amcheck_heapallindexed: bool = True
    smoke_queries: list[SmokeQuery] = Field(default_factory=list)
    rpo_column: str | None = Field(default=None, pattern=r"^[^.]+\.[^.]+\.[^.]+$")  # schema.table.column
    rpo: Threshold = Threshold(warning=75, critical=120, unit="min")
    rto: Threshold = Threshold(warning=45, critical=60, unit="min")
    download_concurrency: int = Field(default=2, ge=1, le=16)  # chain members downloaded at once
    #: Parallel ranged GETs per object: ``auto`` = on for AWS's own S3 endpoints, off for any
    #: other (moto serves ranged GETs ~10× slower than one streaming GET); ``on``; ``off``.
    ranged_gets: Literal["auto", "on", "off"] = "auto"
    #: Size of each ranged GET; 0 = one streaming GET per object (as ``ranged_gets: off``).
    download_part_mb: int = Field(default=16, ge=0, le=512)
    #: Ranged GETs in flight per object (memory: ``download_part_mb`` × (this + 1)).
    ranged_in_flight: int = Field(default=8, ge=1, le=32)
    #: Validation in parallel: ``pg_amcheck --jobs`` and the connections counting rows.
    validation_jobs: int = Field(default=2, ge=1, le=16)
    trend_runs: int = Field(default=5, ge=1, le=50)
    timeout_minutes: int = Field(default=120, gt=0)
    #: ``database_backups.mode: rds``: the temporary instance the restore test creates (and the DR
    #: drill's, which reads this too).
    rds_restore: RdsRestoreConfig = Field(default_factory=RdsRestoreConfig)
