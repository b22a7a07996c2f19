"""
# DR Testing (monthly, 1st Tuesday): the disaster-recovery drill

*The guide: "Test disaster recovery procedures" — DevOps & DBA; "Recovery Time < 1 hour";
Recovery Testing: database monthly, full system quarterly, DR site semi-annually, "Document
recovery time for each test".*

| task | what | held to |
|---|---|---|
| `approve_promote_<contact>` | a DR-site activation in a real AWS account that would point `dr_site.url` at the recovered instance first asks every approver of `dr_site.approval_environment`'s deployment window (Product Owner, CTO) under **Required actions**, within `dr_site.approval_deadline`; skipped for every other run (other scopes, dry runs, the local stack) | unanswered or rejected: nothing is promoted (`dr.site.promote` skipped), the drill still recovers and probes in scratch |
| `drill` | recovers from the backups alone, as if the primary were lost. **Database** (every month): the newest complete backup whose whole chain (full + incrementals) is in `s3://<database_backups.bucket>/<prefix>` restored into a DR cluster on this worker (127.0.0.1, `tasks.dr_testing.settings.scratch_dir`/`port`), validated without touching the primary; RDS mode: point-in-time restore to the latest restorable time in `tasks.dr_testing.settings.dr_region` onto a temporary, tagged instance. **Full system** (Jan/Apr/Jul/Oct) adds, overlapped with the database restore, file storage (objects copied back and checked; a large bucket sampled and its time extrapolated), configuration (versioned bucket, every latest object retrievable, SHA-256) and a scratch environment (`tasks.dr_testing.settings.full_system`): the newest configuration snapshot applied as the app's env file, a scratch Redis warmed from the restored database (`cache_query`), the application (`app_command`) healthy against the restored database. **DR-site activation** (Jan/Jul): all of it from the replica buckets, which must live in `dr_region`, then the DR site (`dr_site.url`) pointed at the recovered instance, probed and failed back | RTO (drill start → last component recovered, database healthy and answering the smoke queries) warning > 45 min, critical > 60 min; RPO (drill start − newest `tasks.backup_testing.settings.rpo_column` row) warning > 75 min, critical > 120 min; `pg_amcheck` clean, row counts = manifest, smoke queries succeed; every file/config object intact |

**Scope rule** (from the run's logical date, in the calendar's time zone, so a rerun does the
same): a month of `recovery_testing.dr_site_activation`'s cadence (semi-annually = Jan, Jul) →
`dr_site_activation`; else a month of `full_system`'s (quarterly = Jan, Apr, Jul, Oct) →
`full_system`; else `database`. The `dr.scope` result says which and why.

Params (trigger form): `scope` (auto = the rule above, or database / full_system /
dr_site_activation for a drill by hand), `backup_id` (self-managed: recover this backup instead
of the newest intact chain), `dry_run` (decide the scope, guard and pick only).

Guards: the DR cluster never on the application database's host:port nor a
`tasks.backup_testing.settings.production_targets` entry; its directory empty or holding only our marked
`sanvi-restore-*` directories; in RDS mode the temporary instance never named like a production
instance, only our tagged instances deleted, the SQL target never the application database.
Everything the drill creates is removed, also after a failure; a drill killed halfway is cleaned
by the next run (`dr.database.leftovers` warning).

Each drill is a row per kind in `recovery_tests` (`dr_database`, `dr_full_system`,
`dr_site_activation`) with every component's recovery time; `dr.trend` shows the earlier ones.

## When it is red
1. `dr.rto` red: recovery takes longer than the 1-hour objective. Look at which component took
   the time (its summary and `details.components`) and at MB/s in the trend: S3 throughput, the
   worker's disk, the backup size; consider more frequent fulls (shorter chains).
2. `dr.database.rpo` red: the newest recoverable data is older than an hour — the hourly
   incrementals are not running or not reaching S3 (`backup_verification`'s `backups.chain`).
3. `dr.database.chain` critical: the newest backup's chain has a gap; the drill recovered an
   older one. Take a new full backup now and look at why an incremental is missing.
4. `dr.database.run` critical: the database could not be recovered at all (no restorable backup,
   checksum, `pg_combinebackup`, server start; RDS: the restore call or the wait failed). This
   is a P1-grade finding: a real disaster would lose the database. Take a full backup now and
   run `backup_testing` by hand.
5. `dr.file_storage` / `dr.configuration` critical: objects missing, unreadable or corrupted in
   the (replica) bucket; check versioning/replication (`backup_verification`).
6. `dr.site.region` critical: a replica bucket is missing or not in the DR region — the DR site
   could not be activated. Fix the replication to `tasks.dr_testing.settings.dr_region`.
7. `dr.guard` critical: the configuration points the drill at production or a foreign directory;
   nothing was touched. Fix the `settings` of `dr_testing` / `backup_testing` in `include/config/maintenance.yaml`.
8. `dr.configuration_snapshot` / `dr.cache` / `dr.application` / `dr.site.probe`: warning = a
   setting is missing (the summary names the key); critical = the newest snapshot is unreadable,
   the warm-up query failed, the application did not answer healthy on the restored database (its
   log tail is in the summary) or the DR site did not answer from the recovered instance.
9. RDS: `dr.database.cleanup` critical — a temporary instance was not deleted; the next run deletes
   it (tagged `sanvi-ops:purpose=dr-test`), or delete it by hand.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param, get_current_context, task

from sanvi_ops.airflow_kit.changes import when_result
from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.dr_testing import airflow_tasks as dr_tasks


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "scope": Param(
            "auto",
            type="string",
            enum=["auto", "database", "full_system", "dr_site_activation"],
            title="Scope",
            description="auto = from the logical date (Jan/Jul DR site, Apr/Oct full system, else database).",
        ),
        "backup_id": Param(
            None,
            type=["null", "string"],
            title="Backup id",
            description="Self-managed only, e.g. 20261127T010000Z-incr; empty = the newest intact chain.",
        ),
        "dry_run": Param(
            False, type="boolean", title="Dry run", description="Decide the scope, guard and pick only."
        ),
    },
)
def dr_testing() -> None:
    @task(pool=load_config().tasks.database_maintenance.settings.pool, trigger_rule="none_failed")
    def drill() -> list[dict[str, Any]]:
        """Recover the scope's components from backups alone; measure RTO/RPO; record; clean up."""
        return dr_tasks.dr_test(get_current_context())

    recovered = drill()
    dr_tasks.promote_approvals() >> recovered
    publish(recovered, changes=when_result("dr.scope", scope="dr_site_activation", dry_run=False))


dr_testing()
