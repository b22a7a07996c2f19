"""Body of ``configuration_backup``'s task: config + connections in, results out.

The logic is :mod:`sanvi_ops.tasks.configuration_backup.backup`; this module resolves the
settings (bucket, ECS names, repository credentials) and builds the clients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

#: Updated by whoever changes the configuration (a deployment pipeline through the REST API,
#: a person with "Create Asset Event" in the UI): it triggers a snapshot at once.
CHANGED_URI = "x-sanvi-ops://configuration"


def changed_asset() -> Any:
    """The Asset that announces a configuration change (parse-time safe)."""
    from airflow.sdk import Asset

    return Asset(name="sanvi_configuration_changed", uri=CHANGED_URI, group="configuration")


def bucket_of(cfg: MaintenanceConfig) -> str:
    """``configuration_backups.bucket``, or the database backups' bucket when it is not set."""
    return cfg.configuration_backups.bucket or cfg.database_backups.bucket


def config_file() -> Path:
    """The ``maintenance.yaml`` the DAGs run with (``$SANVI_OPS_CONFIG`` or the shipped one)."""
    import os

    from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, ENV_VAR

    return Path(os.environ.get(ENV_VAR) or DEFAULT_CONFIG_PATH)


def _credentials(conn_id: str | None) -> Any:
    from sanvi_ops.tasks.configuration_backup.git_repo import GitCredentials

    if not conn_id:
        return None
    from sanvi_ops.airflow_kit.connections import get_connection

    conn = get_connection(conn_id)
    extra = conn.extra_dejson or {}
    return GitCredentials(
        username=conn.login or None,
        token=conn.password or None,
        ssh_key_file=str(extra["private_key_file"]) if extra.get("private_key_file") else None,
    )


def plan_from_config(cfg: MaintenanceConfig) -> Any:
    from sanvi_ops.tasks.configuration_backup.backup import BackupPlan

    c = cfg.configuration_backups
    health = cfg.tasks.system_health_check.settings
    src = c.sources
    return BackupPlan(
        bucket=bucket_of(cfg),
        prefix=c.prefix,
        retention_days=cfg.backups.configuration.retention_days,
        ssm_paths=tuple(src.ssm_paths),
        secret_prefixes=tuple(src.secret_name_prefixes),
        ecs_cluster=src.ecs_cluster or health.ecs_cluster,
        ecs_services=tuple(src.ecs_services if src.ecs_services is not None else health.ecs_services),
        maintenance_yaml=config_file() if src.maintenance_yaml else None,
        repository=c.git.repository,
        branch=c.git.branch,
        author=c.git.author_name,
        email=c.git.author_email,
        creds=_credentials(c.git.connection),
        git_timeout=float(c.git.timeout_seconds),
    )


def take_snapshot(run_id: str = "") -> ResultDicts:
    """Snapshot the configuration; keep it (S3 + git) when it changed."""
    from sanvi_ops.airflow_kit.connections import ConnectionMissing, aws_client
    from sanvi_ops.tasks.configuration_backup.backup import run_backup

    cfg = load_config()
    try:
        plan = plan_from_config(cfg)
    except ConnectionMissing as exc:
        return [CheckResult("configuration.git", Status.ERROR, str(exc), component="configuration").to_dict()]
    made: dict[str, Any] = {}

    def clients(service: str) -> Any:
        if service not in made:
            made[service] = aws_client(cfg.connections.aws, service)
        return made[service]

    try:
        outcome = run_backup(clients, plan, run_id=run_id)
    except ConnectionMissing as exc:
        return [
            CheckResult("configuration.sources", Status.ERROR, str(exc), component="configuration").to_dict()
        ]
    return [r.to_dict() for r in outcome.results]
