"""
# File Storage Backup (daily, `file_storage_backups.at`, default 02:00)

*The guide: "File storage — Daily — 30 days — S3 + Glacier".*
Not one of the guide's 16 tasks: it is the job whose copy `backup_verification` looks for.

| task | what |
|---|---|
| `ensure_retention` | the S3 lifecycle rule on `<bucket>/<prefix>` (`file_storage_backups`): Glacier after `glacier_after_days`, expiry after `backups.file_storage.retention_days`. Created when missing; a different rule is reported (warning), never changed |
| `copy_files` | every object of the file bucket (`file_storage_backups.source_bucket`, default `tasks.system_health_check.settings.buckets.files`) copied server-side to `<bucket>/<prefix><YYYY-MM-DD>/data/<key>`; a re-run copies only what is missing or differs (ETag, size); `manifest.json` (each key's size and ETag) written last |
| `verify_copy` | today's copy against its manifest: object count, total bytes, every key and size; and SHA-256 of a rotating sample (`sample_objects`, a different window of the keys each day, at most `sample_max_mb`) in source and copy |

Why a dated copy rather than replication: a replica follows deletions and overwrites within
seconds, so it cannot bring back yesterday's file; a dated copy is a restore point, and
server-side copies never pass bytes through the worker. See docs/backups.md.

Started by hand (trigger form): a manual run copies its logical date's day now, exactly as a
scheduled one; a re-run of a day finishes that day's copy.

## When it is not green
1. `file_storage.copy` critical: some objects could not be copied (the result names the first
   and why: access denied, KMS, throttling). No manifest was written, so the day counts as
   missing. Fix and re-run: only what is missing is copied.
2. `file_storage.verify` critical: an object of the manifest is missing from the copy or has
   the wrong size (deleted or overwritten in the backup bucket after the copy). Check who can
   write to `<bucket>/<prefix>`, then re-run the day.
3. `file_storage.checksums` critical: a sampled copy differs from its source (tampered or
   corrupted). Treat it as an incident: check the bucket's access logs, re-run the day.
4. `file_storage.retention` warning: reconcile the bucket's lifecycle rule with the policy by hand.
5. `file_storage.connection` error: the AWS connection or a bucket setting is missing; the
   summary names the key.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.file_storage_backup import airflow_tasks as files


@maintenance_dag(__file__, __doc__)
def file_storage_backup() -> None:
    @task
    def ensure_retention() -> list[dict[str, Any]]:
        """Lifecycle rule for the copies: created if missing, reported if different."""
        return files.ensure_retention()

    @task
    def copy_files(logical_date: Any = None) -> list[dict[str, Any]]:
        """Copy the file bucket into today's dated prefix (server-side), manifest last."""
        return files.copy_files(logical_date)

    @task
    def verify_copy(logical_date: Any = None) -> list[dict[str, Any]]:
        """Count, bytes and sizes against the manifest; a rotating SHA-256 sample against the source."""
        return files.verify_copy(logical_date)

    copied = copy_files()
    verified = verify_copy()
    copied >> verified
    publish(ensure_retention(), copied, verified)


file_storage_backup()
