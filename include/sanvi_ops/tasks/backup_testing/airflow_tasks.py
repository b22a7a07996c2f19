"""Body of ``backup_testing``'s task: config + connections in, result dicts out.

A guard refusal (production as the target, a foreign scratch directory) is a ``critical``
result and nothing runs; a bad backup or a failed restore is a result too, never an exception.
Every test with a chosen backup is recorded in the results store's ``recovery_tests`` (migration
006) and the report carries the trend of the earlier ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

log = logging.getLogger(__name__)


def settings_from(cfg: MaintenanceConfig) -> Any:
    """:class:`sanvi_ops.tasks.backup_testing.restore.RestoreSettings` from the config."""
    from sanvi_ops.tasks.backup_testing.restore import RestoreSettings, default_scratch_root

    t, b = cfg.tasks.backup_testing.settings, cfg.database_backups
    return RestoreSettings(
        bucket=b.bucket,
        prefix=b.prefix,
        scratch_root=Path(t.scratch_dir) if t.scratch_dir else default_scratch_root(),
        port=t.port,
        superuser=t.superuser,
        production_targets=list(t.production_targets),
        production_data_dirs=list(t.production_data_dirs),
        heapallindexed=t.amcheck_heapallindexed,
        smoke_queries=[(q.name, q.sql) for q in t.smoke_queries],
        rpo_column=t.rpo_column,
        rpo_warning_min=t.rpo.warning,
        rpo_critical_min=t.rpo.critical,
        rto_warning_min=t.rto.warning,
        rto_critical_min=t.rto.critical,
        download_concurrency=t.download_concurrency,
        ranged_gets=t.ranged_gets,
        download_part_mb=t.download_part_mb,
        ranged_in_flight=t.ranged_in_flight,
        validation_jobs=t.validation_jobs,
        pg_bin_dir=b.pg_bin_dir,
        timeout_s=t.timeout_minutes * 60,
    )


def rds_settings(cfg: MaintenanceConfig, *, rto: Any = None, rpo: Any = None) -> Any:
    """:class:`sanvi_ops.tasks.backup_testing.rds_restore.RdsSettings` from ``rds_restore`` (+ ``backup_testing``'s
    validation; ``rto``/``rpo`` thresholds of the caller's section)."""
    from sanvi_ops.tasks.backup_testing.rds_restore import RdsSettings

    r, t = cfg.tasks.backup_testing.settings.rds_restore, cfg.tasks.backup_testing.settings
    production = list(cfg.tasks.system_health_check.settings.rds_instances)
    source = r.source_instance or (production[0] if production else None)
    if not source:
        raise ValueError(
            "tasks.backup_testing.settings.rds_restore.source_instance is not set and tasks.system_health_check.settings.rds_instances is empty"
        )
    rto, rpo = rto or t.rto, rpo or t.rpo
    return RdsSettings(
        source_instance=source,
        production_instances=production,
        production_targets=list(t.production_targets),
        instance_class=r.instance_class,
        subnet_group=r.subnet_group,
        security_group_ids=list(r.security_group_ids),
        timeout_s=r.timeout_minutes * 60,
        poll_s=r.poll_seconds,
        smoke_queries=[(q.name, q.sql) for q in t.smoke_queries],
        rpo_column=t.rpo_column,
        rpo_warning_min=rpo.warning,
        rpo_critical_min=rpo.critical,
        rto_warning_min=rto.warning,
        rto_critical_min=rto.critical,
    )


def sql_login(cfg: MaintenanceConfig) -> Any:
    """How to log in to a restored RDS instance: the ``connections.scratch_db`` connection
    (login, password, schema = database; host/port, when set, replace the API's endpoint)."""
    from sanvi_ops.airflow_kit.connections import get_connection, postgres_extras
    from sanvi_ops.tasks.backup_testing.rds_restore import SqlLogin

    conn = get_connection(cfg.connections.scratch_db)
    if not conn.login:
        raise ValueError(f"Airflow connection {cfg.connections.scratch_db!r}: login is empty")
    return SqlLogin(
        user=conn.login,
        password=conn.password or "",
        dbname=conn.schema or None,
        host=conn.host or None,
        port=int(conn.port) if conn.port else None,
        params=postgres_extras(cfg.connections.scratch_db),
    )


def run_id_of(context: Mapping[str, Any], fallback: str) -> tuple[str, str]:
    """``(dag_id, run_id)`` of the running DAG run."""
    import datetime as dt

    dag_run = context.get("dag_run")
    run_id = str(getattr(dag_run, "run_id", "") or f"manual__{dt.datetime.now(dt.UTC).isoformat()}")
    return str(getattr(dag_run, "dag_id", "") or fallback), run_id


def _rds_restore_test(
    cfg: MaintenanceConfig, context: Mapping[str, Any], *, app: Any, snapshot_id: str | None, dry_run: bool
) -> Any:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.backup_testing.rds_restore import restore_snapshot

    _, run_id = run_id_of(context, "backup_testing")
    return restore_snapshot(
        aws_client(cfg.connections.aws, "rds"),
        rds_settings(cfg),
        sql_login(cfg),
        run_id=run_id,
        app=app,
        snapshot_id=snapshot_id,
        dry_run=dry_run,
    )


def _param(context: Mapping[str, Any], name: str) -> Any:
    params = context.get("params") or {}
    return params.get(name)


def restore_test(context: Mapping[str, Any]) -> ResultDicts:
    """Restore the chosen (default: newest) backup into a scratch cluster and validate it."""
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core.backups import PgTarget
    from sanvi_ops.tasks.backup_testing.rds_restore import KIND_RDS
    from sanvi_ops.tasks.backup_testing.restore import (
        KIND,
        RestoreRefused,
        recent_tests,
        record_test,
        run_restore_test,
        trend_result,
    )
    from sanvi_ops.tasks.database_backup_full.airflow_tasks import _s3

    cfg = load_config()
    backup_id = _param(context, "backup_id") or None
    dry_run = bool(_param(context, "dry_run"))
    try:
        app: PgTarget | None = PgTarget.from_dsn(postgres_dsn(cfg.connections.app_db))
    except ConnectionMissing:
        app = None  # the guard still holds production_targets; the schema is compared with the manifest
    rds_mode = cfg.database_backups.mode == "rds"
    try:
        if rds_mode:
            outcome = _rds_restore_test(cfg, context, app=app, snapshot_id=backup_id, dry_run=dry_run)
        else:
            outcome = run_restore_test(
                _s3(cfg), settings_from(cfg), app=app, backup_id=backup_id, dry_run=dry_run
            )
    except ConnectionMissing as exc:
        return [CheckResult("restore.connection", Status.ERROR, str(exc), component="backups").to_dict()]
    except (RestoreRefused, ValueError) as exc:
        return [
            CheckResult(
                "restore.guard", Status.CRITICAL, str(exc), severity="P3", component="backups"
            ).to_dict()
        ]
    results = list(outcome.results)
    if outcome.backup_id and not dry_run:
        dag_id, run_id = run_id_of(context, "backup_testing")
        try:
            store_dsn = results_store(cfg).dsn
            kind = KIND_RDS if rds_mode else KIND
            earlier = recent_tests(
                store_dsn, cfg.tasks.backup_testing.settings.trend_runs, before_run=run_id, kind=kind
            )
            record_test(store_dsn, dag_id, run_id, outcome, kind=kind)
            results.append(trend_result(outcome, earlier))
        except Exception as exc:  # noqa: BLE001 - the test stands without its history
            log.warning("results store unavailable for recovery_tests: %s", exc)
            results.append(
                CheckResult(
                    "restore.trend",
                    Status.WARNING,
                    f"restore figures not recorded: results store unavailable ({type(exc).__name__})",
                    component="backups",
                )
            )
    return [r.to_dict() for r in results]
