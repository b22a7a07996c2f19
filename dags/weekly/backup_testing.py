"""
# Backup Testing (weekly, Friday)

*The guide: "Test restore of a sample backup" — DBA; "Recovery Time < 1 hour".*

| task | what | held to |
|---|---|---|
| `restore_backup` | the newest complete backup in `s3://<database_backups.bucket>/<prefix>` (or the `backup_id` Param), full + incrementals, restored into a throw-away PostgreSQL on this worker (127.0.0.1, a free port, a data directory under `tasks.backup_testing.settings.scratch_dir`) | restore: every object's SHA-256/size = manifest, `pg_combinebackup` for a chain; `pg_amcheck --all --heapallindexed` clean; row counts = manifest (missing table critical, different count warning); schema = the live source's catalog (else the manifest's table list); `smoke_queries` succeed; RPO (newest `rpo_column` vs backup point) warning > 75 min, critical > 120 min; RTO warning > 45 min, critical > 60 min |

Guards (before anything runs): a target on the application database's host:port, or one listed
in `tasks.backup_testing.settings.production_targets`, is refused (`restore.guard` critical); the scratch
directory must be empty or hold only our marked `sanvi-restore-*` directories, and must not
overlap the production data directory. The scratch server accepts local-socket logins only
(no TCP, no password). It is always stopped and deleted, also after a failure; a run that finds
a killed run's leftovers removes them first (`restore.leftovers` warning).

Every test is a row of `recovery_tests` in the results store (duration, MB/s, RTO, RPO);
`restore.trend` shows the earlier ones. Params: `backup_id` (empty = newest), `dry_run` (pick
and guard only).

RDS mode (`database_backups.mode: rds`): the newest automated snapshot of
`tasks.backup_testing.settings.rds_restore.source_instance` (or the snapshot named by `backup_id`) is restored to a temporary
instance tagged `sanvi-ops:purpose=restore-test` / `sanvi-ops:created-by=<run id>`, waited for
(bounded by `tasks.backup_testing.settings.rds_restore.timeout_minutes`), validated over SQL with the `scratch_db` connection's
login (smoke queries, tables/rows present, RPO against the snapshot time) and always deleted
without a final snapshot (`restore.cleanup`); an orphan of a killed run is deleted by the next
(`restore.leftovers`). Recorded as kind `restore_test_rds`.

## When it is red
1. `restore.run` critical: the backup could not be restored (checksum, truncated object,
   `pg_combinebackup`, server start). Run `backup_verification`; take a new full backup now.
2. `restore.amcheck` / `restore.row_counts` / `restore.smoke` critical: the backup restores but
   its data is damaged or incomplete — treat the backups as unusable: new full now, then
   investigate the source (`pg_amcheck` on production in a quiet hour).
3. `restore.duration` red: recovery takes longer than the 1-hour objective; look at MB/s in the
   trend (S3 throughput, worker disk) and at the backup size.
4. `restore.cleanup` critical (RDS): the temporary instance was not deleted; the next run deletes it,
   or delete it by hand (it carries the `sanvi-ops:purpose=restore-test` tag).
5. `restore.guard` critical: the configuration points the test at production or at a foreign
   directory. Fix `tasks.backup_testing.settings` in `include/config/maintenance.yaml`; nothing was touched.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, get_current_context, task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.backup_testing import airflow_tasks as restore_tasks


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "backup_id": Param(
            None,
            type=["null", "string"],
            title="Backup id",
            description="e.g. 20261127T010000Z-full (RDS mode: a snapshot id); empty = the newest.",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Pick and guard only."),
    },
)
def backup_testing() -> None:
    @task(pool=load_config().tasks.database_maintenance.settings.pool)
    def restore_backup() -> list[dict[str, Any]]:
        """Restore a backup into a scratch PostgreSQL, validate it, record RTO/RPO, clean up."""
        return restore_tasks.restore_test(get_current_context())

    # An RDS-mode restore creates an instance in the production account: a (standard) change.
    publish(
        restore_backup(),
        changes=lambda params, _: load_config().database_backups.mode == "rds" and not params.get("dry_run"),
    )


backup_testing()
