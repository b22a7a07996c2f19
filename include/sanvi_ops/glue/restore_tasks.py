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

from sanvi_ops.config import MaintenanceConfig, load_config
from sanvi_ops.glue.connections import ConnectionMissing
from sanvi_ops.results import CheckResult, Status

log = logging.getLogger(__name__)

ResultDicts = list[dict[str, Any]]


def settings_from(cfg: MaintenanceConfig) -> Any:
    """:class:`sanvi_ops.restore.RestoreSettings` from the config."""
    from sanvi_ops.restore import RestoreSettings, default_scratch_root

    t, b = cfg.backup_testing, cfg.database_backups
    return RestoreSettings(
        bucket=b.bucket,
        prefix=b.prefix,
        scratch_root=Path(t.scratch_dir) if t.scratch_dir else default_scratch_root(),
        port=t.port,
        superuser=t.superuser,
        production_targets=list(t.production_targets),
        heapallindexed=t.amcheck_heapallindexed,
        smoke_queries=[(q.name, q.sql) for q in t.smoke_queries],
        rpo_column=t.rpo_column,
        rpo_warning_min=t.rpo.warning,
        rpo_critical_min=t.rpo.critical,
        rto_warning_min=t.rto.warning,
        rto_critical_min=t.rto.critical,
        download_concurrency=t.download_concurrency,
        download_part_mb=t.download_part_mb,
        pg_bin_dir=b.pg_bin_dir,
        timeout_s=t.timeout_minutes * 60,
    )


def _param(context: Mapping[str, Any], name: str) -> Any:
    params = context.get("params") or {}
    return params.get(name)


def restore_test(context: Mapping[str, Any]) -> ResultDicts:
    """Restore the chosen (default: newest) backup into a scratch cluster and validate it."""
    from sanvi_ops.backups import PgTarget
    from sanvi_ops.glue.backup_tasks import _s3
    from sanvi_ops.glue.connections import postgres_dsn
    from sanvi_ops.restore import (
        RestoreRefused,
        recent_tests,
        record_test,
        run_restore_test,
        trend_result,
    )

    cfg = load_config()
    if cfg.database_backups.mode == "rds":
        return [
            CheckResult(
                "restore.run",
                Status.SKIPPED,
                "database_backups.mode is rds: the RDS snapshot restore test is not built yet",
                component="backups",
            ).to_dict()
        ]
    backup_id = _param(context, "backup_id") or None
    dry_run = bool(_param(context, "dry_run"))
    try:
        app: PgTarget | None = PgTarget.from_dsn(postgres_dsn(cfg.connections.app_db))
    except ConnectionMissing:
        app = None  # the guard still holds production_targets; the schema is compared with the manifest
    try:
        outcome = run_restore_test(
            _s3(cfg), settings_from(cfg), app=app, backup_id=backup_id, dry_run=dry_run
        )
    except (RestoreRefused, ValueError) as exc:
        return [
            CheckResult(
                "restore.guard", Status.CRITICAL, str(exc), severity="P3", component="backups"
            ).to_dict()
        ]
    results = list(outcome.results)
    if outcome.backup_id and not dry_run:
        dag_run = context.get("dag_run")
        run_id = str(getattr(dag_run, "run_id", "") or f"manual__{outcome.started_at.isoformat()}")
        dag_id = str(getattr(dag_run, "dag_id", "") or "backup_testing")
        try:
            from sanvi_ops.store import ResultStore

            store_dsn = postgres_dsn(cfg.connections.store)
            ResultStore(store_dsn, name=f"results store (connection {cfg.connections.store!r})").migrate()
            earlier = recent_tests(store_dsn, cfg.backup_testing.trend_runs, before_run=run_id)
            record_test(store_dsn, dag_id, run_id, outcome)
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
