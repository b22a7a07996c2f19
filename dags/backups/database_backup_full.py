"""
# Database Backup — full (daily, `database_backups.full_at`, default 01:00)

*The guide: "Database — Daily full, hourly incremental — 30 days — S3 + Glacier".*
Not one of the guide's 16 tasks: it is the job whose results `backup_verification` checks.

| task | what |
|---|---|
| `ensure_retention` | the S3 lifecycle rule on `<bucket>/<prefix>`: Glacier after `glacier_after_days`, expiry after `backups.database.retention_days`, stale multipart uploads aborted after 1 day. Created when missing; a different rule is reported (warning), never changed |
| `take_full_backup` | `pg_basebackup -Ft -X fetch -c fast -D -` of the application database (`sanvi_app_db`) streamed into an S3 multipart upload (SSE-KMS with the backup key, created when its alias is missing), SHA-256 computed on the way, `manifest.json` written last. Emits the Asset `s3://<bucket>/<prefix>full`, which triggers `backup_verification` |

Layout and manifest format: `include/sanvi_ops/core/backups.py` (module docstring) and the README.
The stream is zstd-compressed by default (`database_backups.compression`), and the multipart
part size grows with the cluster so S3's 10,000 parts hold it; a cluster beyond 10,000 × 5 GiB
(≈ 48.8 TiB) is refused before anything starts.

**RDS mode** (`database_backups.mode: rds`, `include/sanvi_ops/core/rds_backups.py`), per
`tasks.system_health_check.settings.rds_instances`: `ensure_retention` keeps the lifecycle rule of the export prefix
(`database_backups.rds.export_prefix`); `take_full_backup` checks `BackupRetentionPeriod` ≥
`backups.database.retention_days` (raises it only with the Param `set_retention` **and**
`database_backups.rds.allow_set_retention: true`), takes today's manual snapshot
`sanvi-daily-<instance>-<date>` (tagged; once a day), deletes our tagged ones older than the
retention (never an untagged one) and exports the newest not yet exported to S3 (Parquet, to
Glacier by lifecycle).

Started by hand (trigger form): a manual run backs up now, exactly as a scheduled one (and emits
the same Asset). There is no dry run: the backup task has no plan-only mode, so the form offers
none. Param `set_retention` (rds mode only; default off): allow this run to raise the RDS backup
retention. See the README, "Starting a DAG by hand".

## When it is red
1. `take_full_backup` failed: its log has pg_basebackup's message (never a password). Common
   causes: the role lacks `REPLICATION`, `pg_hba.conf` has no `replication` line for the worker,
   `max_wal_senders` exhausted, S3/KMS refused. Nothing half-written is ever used: a backup
   without `manifest.json` is ignored, and the lifecycle rule aborts its multipart upload.
2. Re-run the DAG once fixed; the hourly incrementals start a new chain from this full.
3. `ensure_retention` warning: reconcile the bucket's lifecycle rule with the policy by hand.
4. RDS mode: `rds_backup[<db>].automated` warning — retention below the policy; trigger with
   `set_retention` once the config allows it. `glacier_export` warning "not configured": set
   `database_backups.rds.export_iam_role_arn`.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.database_backup_full import airflow_tasks as backup_tasks

FULL = backup_tasks.backup_asset("full")


def _set_retention_param() -> Any:
    from airflow.sdk import Param

    return Param(
        False,
        type="boolean",
        title="Set RDS backup retention",
        description=(
            "RDS mode only: raise BackupRetentionPeriod to backups.database.retention_days where it "
            "is lower. Takes effect only when database_backups.rds.allow_set_retention is true."
        ),
    )


@maintenance_dag(__file__, __doc__, params={"set_retention": _set_retention_param()})
def database_backup_full() -> None:
    @task
    def ensure_retention() -> list[dict[str, Any]]:
        """Lifecycle rule for the backup prefix: created if missing, reported if different."""
        return backup_tasks.ensure_retention()

    @task(outlets=[FULL], pool=load_config().tasks.database_maintenance.settings.pool)
    def take_full_backup(
        *, outlet_events: Any = None, params: Any = None, run_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Stream a full physical backup to S3 (encrypted, hashed, manifest last); RDS mode: the
        daily snapshot, its retention and export."""
        return backup_tasks.take_backup("full", outlet_events, params=params, run_id=run_id or "")

    publish(ensure_retention(), take_full_backup())


database_backup_full()
