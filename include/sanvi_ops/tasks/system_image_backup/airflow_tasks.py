"""Bodies of ``system_image_backup``'s tasks: config + connections in, results out.

The work itself is :mod:`sanvi_ops.tasks.system_image_backup.images`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def _ec2(cfg: MaintenanceConfig) -> Any:
    from sanvi_ops.airflow_kit.connections import aws_client

    return aws_client(cfg.connections.aws, "ec2")


def _dry_run(params: Any) -> bool:
    return bool((params or {}).get("dry_run"))


def take_images(logical_date: Any = None, params: Any = None, run_id: str = "") -> ResultDicts:
    """This week's image of every tagged instance (a dry run only lists them)."""
    from sanvi_ops.tasks.system_image_backup.images import ImageSettings
    from sanvi_ops.tasks.system_image_backup.images import take_images as take

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = cfg.system_image_backups
        moment = logical_date or dt.datetime.now(dt.UTC)
        settings = ImageSettings(
            instance_tag_key=s.instance_tag_key,
            instance_tag_value=s.instance_tag_value,
            name_prefix=s.name_prefix,
            encrypt=s.encrypt,
            kms_key_id=s.kms_key_id,
            wait_seconds=s.wait_minutes * 60,
            run_id=run_id,
        )
        day = moment.astimezone(ZoneInfo(cfg.timezone)).date()
        return take(_ec2(cfg), settings, day=day, dry_run=_dry_run(params))

    return guard("system_images", Status.ERROR, run)


def prune_images(params: Any = None, now: dt.datetime | None = None) -> ResultDicts:
    """Deregister our AMIs older than ``backups.system_images.retention_days`` (never an untagged one)."""
    from sanvi_ops.tasks.system_image_backup.images import prune_images as prune

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        return [
            prune(
                _ec2(cfg),
                now=now or dt.datetime.now(dt.UTC),
                retention_days=cfg.backups.system_images.retention_days,
                dry_run=_dry_run(params),
            )
        ]

    return guard("system_images", Status.ERROR, run)
