"""Bodies of the backup DAGs' tasks (``database_backup_full`` and ``database_backup_incremental``):
config + connections in.

The backup tasks raise when the backup fails (Airflow retries them, and no Asset event is
emitted for a failed backup). The engine (pg_basebackup, streaming upload, manifests, chain) is
:mod:`sanvi_ops.core.backups`, shared with verification, restore tests and DR drills;
``backup_verification``'s tasks are in :mod:`sanvi_ops.tasks.backup_verification.airflow_tasks`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

#: S3 client settings for backups: bounded retries and timeouts so S3 trouble ends the task.
S3_CONFIG: dict[str, Any] = {
    "retries": {"max_attempts": 5, "mode": "standard"},
    "connect_timeout": 10,
    "read_timeout": 60,
}


def asset_uri(cfg: MaintenanceConfig, kind: str) -> str:
    """``s3://<bucket>/<prefix>full`` / ``…incremental``: the Asset each backup kind updates."""
    b = cfg.database_backups
    return f"s3://{b.bucket}/{b.prefix}{kind}"


def backup_asset(kind: str) -> Any:
    """The Airflow Asset a successful ``kind`` backup emits (parse-time safe: config only)."""
    from airflow.sdk import Asset

    return Asset(name=f"sanvi_db_backup_{kind}", uri=asset_uri(load_config(), kind), group="backups")


def _s3(cfg: MaintenanceConfig, service: str = "s3") -> Any:
    """A boto3 client through the Amazon provider's hook, with bounded retries and timeouts."""
    from botocore.config import Config

    from sanvi_ops.airflow_kit.connections import aws_hook

    return aws_hook(cfg.connections.aws, service, Config(**S3_CONFIG)).get_client_type()


def _rds_instances(cfg: MaintenanceConfig, check: str) -> tuple[list[str], ResultDicts | None]:
    instances = list(cfg.tasks.system_health_check.settings.rds_instances)
    if instances:
        return instances, None
    return [], [
        CheckResult(
            check,
            Status.ERROR,
            "database_backups.mode is rds but tasks.system_health_check.settings.rds_instances is empty: no instance to back up",
            component="rds",
        ).to_dict()
    ]


def rds_daily(params: Any = None, run_id: str = "", now: dt.datetime | None = None) -> ResultDicts:
    """RDS mode's daily full (:func:`sanvi_ops.core.rds_backups.daily_backup` per instance):
    retention checked (set when the run's Param ``set_retention`` and
    ``database_backups.rds.allow_set_retention`` both allow it), today's snapshot, pruning,
    the Glacier export."""
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.core import backups, rds_backups

    cfg = load_config()
    instances, problem = _rds_instances(cfg, "backup.full")
    if problem is not None:
        return problem
    b, r = cfg.database_backups, cfg.database_backups.rds
    asked = bool((params or {}).get("set_retention"))
    key_id = None
    if r.glacier == "export" and r.export_iam_role_arn:
        key_id = backups.ensure_kms_key(_s3(cfg, "kms"), b.kms_key_alias)
    settings = rds_backups.DailySettings(
        retention_days=cfg.backups.database.retention_days,
        snapshot_prefix=r.snapshot_prefix,
        set_retention=asked and r.allow_set_retention,
        set_retention_asked=asked,
        glacier=r.glacier,
        export_bucket=r.export_bucket or b.bucket,
        export_prefix=r.export_prefix,
        export_iam_role_arn=r.export_iam_role_arn,
        kms_key_id=key_id,
        run_id=run_id,
    )
    rds = aws_client(cfg.connections.aws, "rds")
    moment = now or dt.datetime.now(dt.UTC)
    results: list[CheckResult] = []
    for name in instances:
        results += rds_backups.daily_backup(rds, name, settings, now=moment)
    return [x.to_dict() for x in results]


def rds_hourly(now: dt.datetime | None = None) -> ResultDicts:
    """RDS mode's hourly half: each instance's latest restorable time within the RPO."""
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.core import rds_backups
    from sanvi_ops.tasks.backup_verification.verify import s3_failure

    cfg = load_config()
    instances, problem = _rds_instances(cfg, "backup.incremental")
    if problem is not None:
        return problem
    rds = aws_client(cfg.connections.aws, "rds")
    within = cfg.backups.database.incremental_every or dt.timedelta(hours=1)
    moment = now or dt.datetime.now(dt.UTC)
    results: list[CheckResult] = []
    for name in instances:
        try:
            facts = rds_backups.read_facts(rds, name)
        except Exception as exc:  # noqa: BLE001 - AWS errors are results
            results.append(s3_failure(f"rds_backup[{name}].restorable", f"RDS {name}", exc))
            continue
        # A missing instance: check_facts says so (critical) and nothing else.
        results += (
            [rds_backups.check_restorable(facts, now=moment, within=within)]
            if facts.exists
            else rds_backups.check_facts(facts, now=moment, retention_days=0, restorable_within=within)
        )
    return [x.to_dict() for x in results]


def take_backup(kind: str, outlet_events: Any = None, params: Any = None, run_id: str = "") -> ResultDicts:
    """Take a ``full`` or ``incremental`` backup of the application database (rds mode: the
    daily snapshot work / the hourly restorable-time check)."""
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core import backups

    cfg = load_config()
    if cfg.database_backups.mode == "rds":
        return rds_daily(params, run_id) if kind == "full" else rds_hourly()
    b = cfg.database_backups
    db = cfg.backups.database
    timeout = b.full_timeout_minutes if kind == "full" else b.incremental_timeout_minutes
    manifest, result = backups.run_backup(
        _s3(cfg),
        _s3(cfg, "kms"),
        target=backups.PgTarget.from_dsn(postgres_dsn(cfg.connections.app_db)),
        bucket=b.bucket,
        prefix=b.prefix,
        kms_alias=b.kms_key_alias,
        kind=kind,
        max_chain_age=2 * (db.full_every or dt.timedelta(days=1)),
        part_size_mb=b.part_size_mb,
        max_inflight_parts=b.max_inflight_parts,
        pg_bin_dir=b.pg_bin_dir,
        timeout_s=timeout * 60 * 0.9,
        compression=b.compression,
        compression_level=b.compression_level,
    )
    if outlet_events is not None:
        # The Asset event carries what a downstream DAG needs to find this backup.
        event = outlet_events[backup_asset(kind)]
        event.extra = {
            "backup_id": manifest["backup_id"],
            "kind": manifest["kind"],
            "chain": manifest["chain"],
            "manifest_key": f"{b.prefix}{manifest['backup_id']}/manifest.json",
            "bucket": b.bucket,
        }
    return [result.to_dict()]


def ensure_retention() -> ResultDicts:
    """Create the S3 lifecycle rule (Glacier, expiry) when missing; report it when different.

    Self-managed: on the backup prefix. RDS mode with ``glacier: export``: on the export prefix.
    """
    from sanvi_ops.core.backups import ensure_lifecycle

    cfg = load_config()
    b = cfg.database_backups
    bucket, prefix, rule_id = b.bucket, b.prefix, None
    if b.mode == "rds":
        if b.rds.glacier != "export":
            return [
                CheckResult(
                    "backup.retention",
                    Status.SKIPPED,
                    "database_backups.rds.glacier is none: no export prefix to keep",
                    component="backups",
                ).to_dict()
            ]
        from sanvi_ops.core.rds_backups import EXPORT_RULE_ID

        bucket, prefix, rule_id = b.rds.export_bucket or b.bucket, b.rds.export_prefix, EXPORT_RULE_ID
    try:
        result = ensure_lifecycle(
            _s3(cfg),
            bucket,
            prefix,
            glacier_after_days=b.glacier_after_days,
            retention_days=cfg.backups.database.retention_days,
            rule_id=rule_id,
        )
    except ConnectionMissing as exc:
        result = CheckResult("backup.retention", Status.ERROR, str(exc), component="backups")
    except Exception as exc:  # noqa: BLE001 - S3 trouble is a result here, not a failed backup
        from sanvi_ops.tasks.backup_verification.verify import s3_failure

        result = s3_failure("backup.retention", f"lifecycle of s3://{b.bucket}", exc)
    return [result.to_dict()]
