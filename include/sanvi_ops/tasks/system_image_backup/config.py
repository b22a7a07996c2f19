"""How the servers' system images are taken: ``system_image_backups`` in ``maintenance.yaml``,
read by the ``system_image_backup`` DAG.

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from sanvi_ops.core.config import ClockTime, NonEmpty, Weekday, _Model


class SystemImageBackupSettings(_Model):
    """The guide's "System images — Weekly — 30 days — AMI" row (``system_image_backup``).

    Weekly, each EC2 instance tagged ``instance_tag_key=instance_tag_value`` gets an AMI
    (``CreateImage`` with ``NoReboot``), named ``<name_prefix>-<instance>-<YYYY-MM-DD>`` and tagged
    ``sanvi-ops:purpose=weekly-system-image``; an AMI whose snapshots are not encrypted is copied
    with ``CopyImage(Encrypted=True)`` and the plain one removed. AMIs with our tag older than
    ``backups.system_images.retention_days`` are deregistered and their snapshots deleted; an
    AMI without our tag is never touched.
    """

    team: NonEmpty = "devops"
    weekday: Weekday = Weekday.SUNDAY
    #: When the weekly images start (the config's time zone): a quiet hour, ``NoReboot`` keeps
    #: the instances serving, but the volumes are busy while their snapshots start.
    at: ClockTime = dt.time(3, 0)
    instance_tag_key: NonEmpty = "Backup"
    instance_tag_value: NonEmpty = "weekly"
    name_prefix: NonEmpty = "sanvi-weekly"
    #: Copy an AMI whose snapshots are unencrypted with ``CopyImage(Encrypted=True)``.
    encrypt: bool = True
    #: KMS key of the encrypted copy (``None``: the account's default EBS key).
    kms_key_id: str | None = None
    #: How long to wait for an image to become ``available`` before it is copied or reported.
    wait_minutes: int = Field(default=90, gt=0)
    execution_timeout_minutes: int = Field(default=180, gt=0)
