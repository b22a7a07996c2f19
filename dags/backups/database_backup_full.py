"""
# Database Backup — full (daily, `database_backups.full_at`, default 01:00)

*The guide: "Database — Daily full, hourly incremental — 30 days — S3 + Glacier".*
Not one of the guide's 16 tasks: it is the job whose results `backup_verification` checks.

| task | what |
|---|---|
| `ensure_retention` | the S3 lifecycle rule on `<bucket>/<prefix>`: Glacier after `glacier_after_days`, expiry after `backups.database.retention_days`, stale multipart uploads aborted after 1 day. Created when missing; a different rule is reported (warning), never changed |
| `take_full_backup` | `pg_basebackup -Ft -X fetch -c fast -D -` of the application database (`sanvi_app_db`) streamed into an S3 multipart upload (SSE-KMS with the backup key, created when its alias is missing), SHA-256 computed on the way, `manifest.json` written last. Emits the Asset `s3://<bucket>/<prefix>full`, which triggers `backup_verification` |

Layout and manifest format: `include/sanvi_ops/backups.py` (module docstring) and the README.

Started by hand (trigger form): no Params — a manual run backs up now, exactly as a scheduled
one (and emits the same Asset). There is no dry run: the backup task has no plan-only mode, so
the form offers none. See the README, "Starting a DAG by hand".

## When it is red
1. `take_full_backup` failed: its log has pg_basebackup's message (never a password). Common
   causes: the role lacks `REPLICATION`, `pg_hba.conf` has no `replication` line for the worker,
   `max_wal_senders` exhausted, S3/KMS refused. Nothing half-written is ever used: a backup
   without `manifest.json` is ignored, and the lifecycle rule aborts its multipart upload.
2. Re-run the DAG once fixed; the hourly incrementals start a new chain from this full.
3. `ensure_retention` warning: reconcile the bucket's lifecycle rule with the policy by hand.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.config import load_config
from sanvi_ops.glue import backup_tasks
from sanvi_ops.glue.frame import maintenance_dag
from sanvi_ops.glue.publish import publish

FULL = backup_tasks.backup_asset("full")


@maintenance_dag(__file__, __doc__)
def database_backup_full() -> None:
    @task
    def ensure_retention() -> list[dict[str, Any]]:
        """Lifecycle rule for the backup prefix: created if missing, reported if different."""
        return backup_tasks.ensure_retention()

    @task(outlets=[FULL], pool=load_config().vacuum.pool)
    def take_full_backup(*, outlet_events: Any = None) -> list[dict[str, Any]]:
        """Stream a full physical backup to S3 (encrypted, hashed, manifest last)."""
        return backup_tasks.take_backup("full", outlet_events)

    publish(ensure_retention(), take_full_backup())


database_backup_full()
