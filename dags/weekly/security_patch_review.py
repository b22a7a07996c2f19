"""
# Security Patch Review (weekly, Monday)

*The guide: "Review available security patches" — Security.*

Collects everything waiting to be patched, each finding with the action a person should take:

| task | what | a finding when |
|---|---|---|
| `check_rds_patches` | RDS instances of `tasks.system_health_check.settings.rds_instances`: pending maintenance actions; engine version vs the newest minor of its major | an action is pending; a newer minor exists |
| `check_elasticache_patches` | ElastiCache clusters of `tasks.system_health_check.settings.elasticache_clusters`: engine version vs the newest of its major; service updates not applied | a newer version exists; an update is waiting |
| `check_ecr_images` | the newest image in each `tasks.security_patch_review.settings.ecr_repositories` repository: scan findings | CRITICAL (critical, P3 incident) or HIGH (warning) findings; never scanned |
| `check_postgres_version` | the application database server (`sanvi_app_db`): `server_version_num` vs `tasks.security_patch_review.settings.postgres_newest_minor` (else RDS) | a newer minor exists |

Then `record` stores the results and `notify` posts the report to Slack. Findings are warnings:
the run stays green unless an image has CRITICAL vulnerabilities or a source could not be read.

Started by hand (trigger form): Param `checks` picks the sources to review (default all); a
source left out reports `<task>.not_selected` as skipped. See the README, "Starting a DAG by hand".

## Acting on the report
1. Each finding's summary ends with **Action:** — the command or step to take. Engine and
   server upgrades go in the production deployment window (Tuesday/Thursday 22:00–02:00) after
   staging; RDS/ElastiCache actions can be opted into the next maintenance window.
2. A CRITICAL image finding: rebuild the image on a patched base, redeploy, and check the
   re-scan; the incident resolves on the next clean review.
3. A check in `error` could not run: its summary names the AWS call or connection that failed.
4. Keep `postgres_newest_minor` in `include/config/maintenance.yaml` current after each
   quarterly PostgreSQL release.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.security_patch_review import airflow_tasks as patch_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = (
    "check_rds_patches",
    "check_elasticache_patches",
    "check_ecr_images",
    "check_postgres_version",
)


@maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
def security_patch_review() -> None:
    @task
    @when_selected
    def check_rds_patches() -> list[dict[str, Any]]:
        """RDS: pending maintenance actions and engine version vs the newest minor."""
        return patch_tasks.rds()

    @task
    @when_selected
    def check_elasticache_patches() -> list[dict[str, Any]]:
        """ElastiCache: engine version vs the newest of its major; service updates waiting."""
        return patch_tasks.elasticache()

    @task
    @when_selected
    def check_ecr_images() -> list[dict[str, Any]]:
        """ECR: CRITICAL/HIGH scan findings of the newest image of each service."""
        return patch_tasks.ecr_images()

    @task
    @when_selected
    def check_postgres_version() -> list[dict[str, Any]]:
        """The application database server's minor version vs the newest of its major."""
        return patch_tasks.postgres_version()

    publish(check_rds_patches(), check_elasticache_patches(), check_ecr_images(), check_postgres_version())


security_patch_review()
