"""
# Backup Verification (daily, 10:00, and after every full backup)

*The guide: "Ensure nightly backups completed successfully" — DBA.*

Runs at 10:00 and also whenever `database_backup_full` emits its Asset
(`s3://<bucket>/<prefix>full`), so a broken night is known before the morning.

| task | what | held to |
|---|---|---|
| `verify_database_backups` | self-managed mode: the backups under `s3://<bucket>/<prefix>` (`database_backups`) | newest full complete (`manifest.json` present) and younger than `verification.full_max_age`; every object of it re-hashed (SHA-256 and size = manifest) and SSE-KMS; size against the median of earlier fulls (shrink > `shrink_warning_pct` = warning); hourly chain: largest gap in 24 h = the current RPO (warning > 75 min, critical > 120 min), no incremental whose parent is missing; a rotating sample of older backups re-hashed; lifecycle rule present and as configured; half-written backups listed |
| `verify_database_backups` (rds mode) | each of `tasks.system_health_check.settings.rds_instances`, from the same facts the backup DAGs and the RDS restore test read (`sanvi_ops.core.rds_backups.read_facts`) | retention ≥ 30 d; latest restorable time ≤ 1 h old; a snapshot in 24 h, all encrypted; our daily snapshot ≤ `full_max_age` old and none kept beyond the retention; with `glacier: export` a completed export to S3 in `full_max_age` + 1 d, none failed since |
| `verify_other_backups` | file storage, configuration, system images | a finished copy of the files bucket by `file_storage_backup` from the last day, all its objects there; configuration bucket versioned, old versions kept ≥ 90 d; an AMI of ours from the last 7 d, none older than 30 d |

S3 answering 500 or timing out becomes an `error` result naming the call, never a crash.

Started by hand (trigger form): Param `checks` picks what to verify (default both); one left
out reports `<task>.not_selected` as skipped. Runs started by the full backup's Asset use the
defaults. See the README, "Starting a DAG by hand".

## When it is red
1. `backup.full.exists` critical: no good full last night. Check `database_backup_full`'s run;
   trigger it now (a full takes minutes to hours depending on size).
2. `backup.full.checksums` critical (mismatch, truncated, missing object): that backup must not
   be restored. Take a new full now; keep the damaged prefix for investigation (copy it aside,
   the lifecycle expires it).
3. `backup.chain` critical: hours without a backup — the data of that window exists only in
   the live database. Trigger `database_backup_incremental` (or a full) now.
4. A row in `error`: the check could not run (S3/EC2 unreachable); its summary names the call.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.backup_verification import airflow_tasks as verification
from sanvi_ops.tasks.database_backup_full import airflow_tasks as backup_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = (
    "verify_database_backups",
    "verify_other_backups",
)


@maintenance_dag(
    __file__,
    __doc__,
    also_on_assets=[backup_tasks.backup_asset("full")],
    params={"checks": checks_param(CHECKS)},
)
def backup_verification() -> None:
    @task
    @when_selected
    def verify_database_backups() -> list[dict[str, Any]]:
        """Database backups in S3: present, complete, recent, intact, encrypted, chained."""
        return verification.verify_database()

    @task
    @when_selected
    def verify_other_backups() -> list[dict[str, Any]]:
        """Today's file storage copy, configuration versioning, recent AMIs."""
        return verification.verify_other_rows()

    publish(verify_database_backups(), verify_other_backups())


backup_verification()
