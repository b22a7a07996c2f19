"""
# System Image Backup (weekly, `system_image_backups.weekday` + `.at`, default Sunday 03:00)

*The guide: "System images — Weekly — 30 days — AMI".*
Not one of the guide's 16 tasks: `backup_verification` checks that a recent AMI exists.

| task | what |
|---|---|
| `take_images` | for each EC2 instance tagged `Backup=weekly` (`system_image_backups.instance_tag_key`/`_value`), running or stopped: `CreateImage` with `NoReboot=True`, named `<name_prefix>-<instance>-<YYYY-MM-DD>`, tagged `sanvi-ops:purpose=weekly-system-image` (image and snapshots). An image whose snapshots are not encrypted is copied with `CopyImage(Encrypted=True)` (key `kms_key_id`) as `<name>-enc` and the plain one removed. One image per instance and day: a re-run takes none |
| `prune_images` | AMIs carrying our tag and older than `backups.system_images.retention_days` are deregistered and their snapshots deleted. An AMI without our tag is never touched |

Started by hand (trigger form): Param `dry_run` (default off) lists the images that would be
taken and the AMIs that would be deregistered, and changes nothing. A scheduled run is never a
dry run.

## When it is not green
1. `system_image[<instance>].image` critical: `CreateImage`/`CopyImage` failed or the image did
   not become available within `wait_minutes`; the summary has AWS's reason (IAM needs
   `ec2:CreateImage`, `ec2:CopyImage`, `ec2:CreateTags`, `ec2:DescribeImages`,
   `ec2:DescribeSnapshots`, `ec2:DeregisterImage`, `ec2:DeleteSnapshot`, and `kms:CreateGrant`
   on the key). Re-run once fixed.
2. `system_images.instances` warning: no instance carries the tag; tag the servers to back up.
3. `system_images.retention` warning: an old AMI or snapshot could not be removed (in use by a
   launch template, or still registered); the summary names it.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.system_image_backup import airflow_tasks as images


def _dry_run_param() -> Any:
    from airflow.sdk import Param

    return Param(
        False,
        type="boolean",
        title="Dry run",
        description="List the images that would be taken and the AMIs that would be deregistered; change nothing.",
    )


@maintenance_dag(__file__, __doc__, params={"dry_run": _dry_run_param()})
def system_image_backup() -> None:
    @task
    def take_images(
        logical_date: Any = None, params: Any = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """CreateImage (no reboot, tagged) of each tagged instance; encrypted by CopyImage when needed."""
        return images.take_images(logical_date, params, run_id or "")

    @task
    def prune_images(params: Any = None) -> list[dict[str, Any]]:
        """Deregister our AMIs past the retention and delete their snapshots; never an untagged AMI."""
        return images.prune_images(params)

    taken = take_images()
    pruned = prune_images()
    taken >> pruned
    publish(taken, pruned)


system_image_backup()
