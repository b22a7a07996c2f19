"""Bodies of the Security Patch Review's tasks: config + connections in, result dicts out.

One task per source (RDS, ElastiCache, ECR, the PostgreSQL server) so a failing AWS API or a
missing connection is reported for that source alone.
"""

from __future__ import annotations

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def rds() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.security_patch_review.patches import review_rds

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        instances = list(cfg.tasks.system_health_check.settings.rds_instances)
        if not instances:
            return [_nothing("rds.patches", "rds", "tasks.system_health_check.settings.rds_instances")]
        return review_rds(aws_client(cfg.connections.aws, "rds"), instances)

    return guard("rds", Status.ERROR, run)


def elasticache() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.security_patch_review.patches import review_elasticache

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        clusters = list(cfg.tasks.system_health_check.settings.elasticache_clusters)
        if not clusters:
            return [
                _nothing(
                    "elasticache.patches",
                    "elasticache",
                    "tasks.system_health_check.settings.elasticache_clusters",
                )
            ]
        return review_elasticache(aws_client(cfg.connections.aws, "elasticache"), clusters)

    return guard("elasticache", Status.ERROR, run)


def ecr_images() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.security_patch_review.patches import review_ecr

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        repos = list(cfg.tasks.security_patch_review.settings.ecr_repositories)
        if not repos:
            return [
                _nothing("ecr.image_findings", "ecr", "tasks.security_patch_review.settings.ecr_repositories")
            ]
        return review_ecr(aws_client(cfg.connections.aws, "ecr"), repos)

    return guard("ecr", Status.ERROR, run)


def postgres_version() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import ConnectionMissing, aws_client, postgres_dsn
    from sanvi_ops.tasks.security_patch_review.patches import (
        newest_postgres_minor_from_rds,
        review_postgres_server,
    )

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        spr = cfg.tasks.security_patch_review.settings

        def from_rds(major: int) -> int | None:
            try:
                client = aws_client(cfg.connections.aws, "rds")
            except ConnectionMissing:
                return None
            return newest_postgres_minor_from_rds(client, major)

        return [
            review_postgres_server(
                postgres_dsn(cfg.connections.app_db),
                dict(spr.postgres_newest_minor),
                rds_lookup=from_rds if spr.postgres_newest_from_aws else None,
            )
        ]

    return guard("postgres", Status.ERROR, run)


def _nothing(check: str, component: str, setting: str) -> CheckResult:
    return CheckResult(
        check=check,
        status=Status.SKIPPED,
        summary=f"nothing to review: {setting} is empty in the maintenance config",
        component=component,
        details={"config_key": setting},
    )
