"""
# Configuration Backup (after changes; hourly fallback at `configuration_backups.fallback_cron`)

*The guide: "Configuration — After changes — 90 days — S3 + version control".*
Not one of the guide's 16 tasks: the job whose bucket `backup_verification` checks and whose
snapshot the full-system drill applies.

Runs when the Asset `x-sanvi-ops://configuration` (`sanvi_configuration_changed`) is updated —
the deployment pipeline announces a change through the REST API, or a person clicks "Create
Asset Event" in the UI — and every hour at :20 for changes nobody announced (a console edit).
A run that finds nothing changed costs a few list calls and one `HeadObject`.

| task | what |
|---|---|
| `take_snapshot` | reads SSM Parameter Store under `sources.ssm_paths` (names, types, versions; values of String/StringList only, a SecureString's value is never requested), Secrets Manager metadata under `sources.secret_name_prefixes` (ARN, rotation, last changed, version ids; never a value), the ECS services' settings (desired count, task definition, network, load balancers) and every ACTIVE revision of their task definitions (environment values named like secrets redacted), and this `maintenance.yaml`. Canonical JSON → SHA-256 digest; the same digest as `s3://<bucket>/<prefix>snapshot.json` → "no change", stop. Changed → one commit to `git.repository` (a JSON file per source, the diff summary in the message), then a new S3 version of `snapshot.json`; old versions expire after `backups.configuration.retention_days` (90) by a lifecycle rule created when missing |

Results: `configuration.sources`, `configuration.retention`, `configuration.snapshot` (the diff
summary when changed), `configuration.git`.

Started by hand (trigger form): a manual run checks now, exactly as a scheduled one. There is
no dry run: an unchanged configuration writes nothing anyway.

## When it is not green
1. `configuration.sources` error: a source could not be read (its API and the reason are named;
   often a missing IAM permission: `ssm:DescribeParameters`, `ssm:GetParameters`,
   `secretsmanager:ListSecrets`, `ecs:DescribeServices`, `ecs:ListTaskDefinitions`,
   `ecs:DescribeTaskDefinition`). Nothing was written: a snapshot without a source would read as
   its deletion. Fix and trigger the DAG.
2. `configuration.git` warning "not set": set `configuration_backups.git.repository` (and
   `git.connection` for its credentials). Error: the commit or push failed (named); S3 has the
   snapshot marked `pending` and the next run pushes it.
3. `configuration.retention` critical: the bucket is not versioned, so a change overwrites the
   previous snapshot. Enable versioning or point `configuration_backups.bucket` at a versioned
   bucket. Warning: our lifecycle rule differs from the policy; reconcile it by hand.
4. `configuration.snapshot` error: S3 refused the read or write (named).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.configuration_backup import airflow_tasks as config_backup


@maintenance_dag(__file__, __doc__, also_on_assets=[config_backup.changed_asset()])
def configuration_backup() -> None:
    @task
    def take_snapshot(*, run_id: str | None = None) -> list[dict[str, Any]]:
        """Snapshot SSM, Secrets Manager metadata, ECS and maintenance.yaml; keep it in S3 and git
        when its digest changed."""
        return config_backup.take_snapshot(run_id=run_id or "")

    publish(take_snapshot())


configuration_backup()
