"""
# Database Backup — incremental (hourly, except in the full backup's hour)

*The guide: "Database — Daily full, hourly incremental".* Not one of the guide's 16 tasks.

`take_incremental_backup` runs `pg_basebackup --incremental=<parent backup_manifest>` (PostgreSQL
17+, `summarize_wal = on`) against the newest complete backup in S3 and streams it exactly as the
full does (multipart, SSE-KMS, SHA-256, `manifest.json` last, chained to its parent in
`manifest.json` → `parent`, `chain`). With no complete backup to chain to, or a chain whose full
is older than two days, it takes a full instead and reports a warning: the one-hour RPO matters
more than the cadence. Emits the Asset `s3://<bucket>/<prefix>incremental`.

**RDS mode** (`database_backups.mode: rds`): AWS ships the transaction logs; the task checks
each `tasks.system_health_check.settings.rds_instances`' `LatestRestorableTime` is within `incremental_every` (the RPO;
critical otherwise).

Server settings it needs: `wal_level = replica`, `summarize_wal = on`, `max_wal_senders >= 2`,
`wal_summary_keep_time` longer than a day, a `replication` line in `pg_hba.conf`, a role with
`REPLICATION`.

Started by hand (trigger form): no Params — a manual run backs up now, exactly as a scheduled
one (and emits the same Asset). There is no dry run: the backup task has no plan-only mode, so
the form offers none. See the README, "Starting a DAG by hand".

## When it is red
1. The log has pg_basebackup's message. "WAL summaries are required" means summaries for the
   parent are gone (server restarted without `summarize_wal`, or kept too short): trigger
   `database_backup_full` to start a new chain.
2. Each missed hour widens the RPO; `backup_verification` reports the largest gap of the day.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.database_backup_full import airflow_tasks as backup_tasks

INCREMENTAL = backup_tasks.backup_asset("incremental")


@maintenance_dag(__file__, __doc__)
def database_backup_incremental() -> None:
    @task(outlets=[INCREMENTAL], pool=load_config().tasks.database_maintenance.settings.pool)
    def take_incremental_backup(*, outlet_events: Any = None) -> list[dict[str, Any]]:
        """Stream an incremental backup chained to the newest complete one."""
        return backup_tasks.take_backup("incremental", outlet_events)

    publish(take_incremental_backup())


database_backup_incremental()
