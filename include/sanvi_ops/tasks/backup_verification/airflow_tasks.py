"""Bodies of ``backup_verification``'s tasks: config + connections in.

They never raise for a sick system: they return results that say it. The checks themselves are
:mod:`sanvi_ops.tasks.backup_verification.verify`.
"""

from __future__ import annotations

import datetime as dt

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.database_backup_full.airflow_tasks import _s3


def verify_database(now: dt.datetime | None = None) -> ResultDicts:
    """Self-managed: the database backups in S3 (see :mod:`sanvi_ops.tasks.backup_verification.verify`)."""
    from sanvi_ops.tasks.backup_verification.verify import verify_database_backups

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        b, db, v = cfg.database_backups, cfg.backups.database, cfg.tasks.backup_verification.settings
        if b.mode == "rds":
            from sanvi_ops.airflow_kit.connections import aws_client
            from sanvi_ops.tasks.backup_verification.verify import check_rds_backups

            if not cfg.tasks.system_health_check.settings.rds_instances:
                raise ValueError(
                    "database_backups.mode is rds but tasks.system_health_check.settings.rds_instances is empty"
                )
            return check_rds_backups(
                aws_client(cfg.connections.aws, "rds"),
                list(cfg.tasks.system_health_check.settings.rds_instances),
                now=now or dt.datetime.now(dt.UTC),
                retention_days=db.retention_days,
                restorable_within=db.incremental_every or dt.timedelta(hours=1),
                snapshot_prefix=b.rds.snapshot_prefix,
                daily_within=v.full_max_age,
                # a daily export, plus a day for it to run: older is a stalled Glacier half
                export_within=v.full_max_age + dt.timedelta(days=1) if b.rds.glacier == "export" else None,
            )
        return verify_database_backups(
            _s3(cfg),
            b.bucket,
            b.prefix,
            now=now or dt.datetime.now(dt.UTC),
            full_max_age=v.full_max_age,
            incremental_every=db.incremental_every,
            rpo_warning_min=v.rpo.warning,
            rpo_critical_min=v.rpo.critical,
            shrink_warning_pct=v.shrink_warning_pct,
            sample_older=v.sample_older,
            retention_days=db.retention_days,
            glacier_after_days=b.glacier_after_days,
        )

    return guard("backups", Status.ERROR, run)


def verify_other_rows(now: dt.datetime | None = None) -> ResultDicts:
    """File storage, configuration and system images (the guide's other backup rows)."""
    from sanvi_ops.tasks.backup_verification.verify import (
        check_configuration,
        check_file_storage,
        check_system_images,
    )

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        moment = now or dt.datetime.now(dt.UTC)
        v = cfg.tasks.backup_verification.settings
        s3 = _s3(cfg)
        results: list[CheckResult] = []
        files = v.files_bucket or cfg.file_storage_backups.source_bucket
        files = files or cfg.tasks.system_health_check.settings.buckets.get("files")
        fs, fb = cfg.backups.file_storage, cfg.file_storage_backups
        if files:
            results.append(
                check_file_storage(
                    s3,
                    files,
                    fb.bucket or cfg.database_backups.bucket,
                    fb.prefix,
                    now=moment,
                    within=fs.full_every or dt.timedelta(days=1),
                )
            )
        else:
            results.append(
                CheckResult(
                    "file_storage.backup",
                    Status.SKIPPED,
                    "no files bucket configured (tasks.system_health_check.settings.buckets.files)",
                    component="file_storage",
                )
            )
        # A bucket of its own when configured; else the configuration backup's prefix and snapshot.
        from sanvi_ops.tasks.configuration_backup.airflow_tasks import bucket_of

        config_bucket, config_prefix = (
            (v.configuration_bucket, "")
            if v.configuration_bucket
            else (bucket_of(cfg), cfg.configuration_backups.prefix)
        )
        results.append(
            check_configuration(
                s3,
                config_bucket,
                retention_days=cfg.backups.configuration.retention_days,
                prefix=config_prefix,
            )
        )
        if v.check_amis:
            from sanvi_ops.airflow_kit.connections import aws_client

            images = cfg.backups.system_images
            results += check_system_images(
                aws_client(cfg.connections.aws, "ec2"),
                now=moment,
                newest_within=images.full_every or dt.timedelta(days=7),
                retention_days=images.retention_days,
            )
        return results

    return guard("backups", Status.ERROR, run)
