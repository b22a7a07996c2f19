"""Body of ``dr_testing``'s task: config + connections + Params in, result dicts out.

A guard refusal is a ``critical`` ``dr.guard`` result and nothing runs; every other failure is a
result too. Each drill is recorded in ``recovery_tests`` (kinds ``dr_database`` and, for the
wider scopes, ``dr_full_system`` / ``dr_site_activation``) before the report is published.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.backup_testing.airflow_tasks import rds_settings, run_id_of, settings_from, sql_login

log = logging.getLogger(__name__)


def default_dr_root() -> Path:
    return Path(tempfile.gettempdir()) / "sanvi-dr"


def logical_day(context: Mapping[str, Any], cfg: MaintenanceConfig) -> dt.date:
    """The run's logical date in the calendar's time zone (manual runs: when they run)."""
    when = context.get("logical_date")
    if when is None:
        dag_run = context.get("dag_run")
        when = getattr(dag_run, "run_after", None) or getattr(dag_run, "logical_date", None)
    if when is None:
        when = dt.datetime.now(dt.UTC)
    return dt.datetime.fromisoformat(str(when)).astimezone(ZoneInfo(cfg.timezone)).date()


def resolve_scope(context: Mapping[str, Any], cfg: MaintenanceConfig) -> tuple[str, str]:
    """``(scope, why)`` from the ``scope`` Param or, for ``auto``, the logical date."""
    from sanvi_ops.tasks.dr_testing.dr import SCOPES, scope_for

    asked = str((context.get("params") or {}).get("scope") or "auto")
    if asked != "auto":
        if asked not in SCOPES:
            raise ValueError(f"Param scope: {asked!r} is not one of auto, {', '.join(SCOPES)}")
        return asked, "chosen in the trigger form"
    day = logical_day(context, cfg)
    rt = cfg.recovery_testing
    scope = scope_for(
        day, {"full_system": rt.full_system.cadence, "dr_site_activation": rt.dr_site_activation.cadence}
    )
    return scope, (
        f"logical date {day.isoformat()}: full system {rt.full_system.cadence}, "
        f"DR-site activation {rt.dr_site_activation.cadence} (recovery_testing)"
    )


def _s3_in(cfg: MaintenanceConfig, region: str | None) -> Any:
    from botocore.config import Config

    from sanvi_ops.airflow_kit.connections import aws_hook
    from sanvi_ops.tasks.database_backup_full.airflow_tasks import S3_CONFIG

    return aws_hook(cfg.connections.aws, "s3", Config(**S3_CONFIG)).get_client_type(region_name=region)


def dr_restore_settings(cfg: MaintenanceConfig, *, bucket: str | None = None) -> Any:
    """:class:`sanvi_ops.tasks.backup_testing.restore.RestoreSettings` of the DR cluster."""
    d = cfg.tasks.dr_testing.settings
    settings = settings_from(cfg)
    settings.scratch_root = Path(d.scratch_dir) if d.scratch_dir else default_dr_root()
    settings.port = d.port
    settings.rto_warning_min, settings.rto_critical_min = d.rto.warning, d.rto.critical
    settings.rpo_warning_min, settings.rpo_critical_min = d.rpo.warning, d.rpo.critical
    settings.timeout_s = d.timeout_minutes * 60
    if bucket:
        settings.bucket = bucket
    return settings


def _local_stack(cfg: MaintenanceConfig) -> bool:
    """The AWS connection points at a loopback endpoint (moto in ``make run`` and the tests)."""
    from urllib.parse import urlsplit

    try:
        from airflow.sdk import BaseHook

        extra = BaseHook.get_connection(cfg.connections.aws).extra_dejson or {}
    except Exception:  # noqa: BLE001 - no connection: not the local stack
        return False
    host = urlsplit(str(extra.get("endpoint_url") or "")).hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def configuration_location(cfg: MaintenanceConfig, *, site: bool) -> tuple[str | None, str, str]:
    """Where the drill finds the configuration backup: (bucket, prefix, the key that sets the bucket).

    The configuration backup's own bucket and prefix (``configuration_backups.bucket``, else the
    database backups' bucket); the DR site: ``replica_buckets.configuration``, same prefix.
    """
    from sanvi_ops.tasks.configuration_backup.airflow_tasks import bucket_of

    prefix = cfg.configuration_backups.prefix
    if site:
        replica = cfg.tasks.dr_testing.settings.replica_buckets.configuration
        return replica, prefix, "tasks.dr_testing.settings.replica_buckets.configuration"
    return bucket_of(cfg), prefix, "configuration_backups.bucket"


def system_settings(cfg: MaintenanceConfig, dr: Any, *, site: bool, point: bool) -> Any:
    """:class:`sanvi_ops.tasks.dr_testing.system.SystemSettings` from ``tasks.dr_testing.settings``.

    The configuration snapshot is read where the drill's configuration component reads (``dr``,
    its :class:`~sanvi_ops.tasks.dr_testing.dr.DrSettings`). The DR site is pointed at the
    recovered instance only with ``point`` (the local stack, or a real account's approvers said
    yes); otherwise the activation recovers and probes in scratch only.
    """
    from sanvi_ops.tasks.dr_testing.system import SystemSettings

    d = cfg.tasks.dr_testing.settings
    fs, ds = d.full_system, d.dr_site
    return SystemSettings(
        root=dr.root,
        snapshot_bucket=dr.configuration_bucket,
        snapshot_prefix=dr.configuration_prefix,
        snapshot_bucket_key=dr.configuration_bucket_key,
        app_parameters_path=fs.app_parameters_path,
        cache_query=fs.cache_query,
        cache_max_keys=fs.cache_max_keys,
        redis_server=fs.redis_server,
        app_command=list(fs.app_command) if fs.app_command else None,
        app_health_path=fs.app_health_path,
        app_start_timeout_s=fs.app_start_timeout_seconds,
        site_url=ds.url,
        point_url=ds.point_url if point else None,
        site_ca_file=ds.ca_file,
        dr_site=site,
    )


PROMOTE_TASK_PREFIX = "approve_promote_"


def promote_approvers(cfg: MaintenanceConfig) -> list[str]:
    """Keys of ``contacts`` who approve pointing the DR site (``dr_site.approval_environment``'s
    deployment window), with an error naming a bad environment."""
    from sanvi_ops.airflow_kit.approval import window_approvers

    env = cfg.tasks.dr_testing.settings.dr_site.approval_environment
    return window_approvers(cfg, env, "tasks.dr_testing.settings.dr_site.approval_environment")


def promote_needs_approval(context: Mapping[str, Any], cfg: MaintenanceConfig) -> str | None:
    """``None`` when this run would point a real DR site (so a person must approve first); else
    why no approval is asked (the approval tasks are skipped with it)."""
    try:
        scope, _ = resolve_scope(context, cfg)
    except ValueError as exc:
        return str(exc)
    dry_run = bool((context.get("params") or {}).get("dry_run"))
    return _no_promote_approval(
        scope, dry_run, cfg.tasks.dr_testing.settings.dr_site, lambda: _local_stack(cfg)
    )


def _no_promote_approval(scope: str, dry_run: bool, ds: Any, local: Callable[[], bool]) -> str | None:
    """Why this run asks nobody before pointing the DR site, ``None`` when it must ask: the one
    rule for the approval tasks (at their start) and the drill (reading their answers)."""
    if scope != "dr_site_activation":
        return f"scope {scope}: nothing is promoted"
    if dry_run:
        return "a dry run: nothing is promoted"
    if not (ds.point_url and ds.url):
        return "tasks.dr_testing.settings.dr_site.point_url/url not set: the DR site is only probed"
    if local():
        return "the local stack: the demo DR site is pointed without asking"
    return None


def promote_approvals() -> list[Any]:
    """The approval tasks of the DAG being defined: one per approver, each skipped unless
    :func:`promote_needs_approval` says this run would point a real DR site."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.airflow_kit.approval import approval_spec
    from sanvi_ops.airflow_kit.signoff import TASK_TIMEOUT, RecordedApproval, extend_for_wait, hitl_users

    cfg = load_config()
    ds = cfg.tasks.dr_testing.settings.dr_site
    asks = []
    for key in promote_approvers(cfg):
        contact = cfg.contacts[key]
        asks.append(
            RecordedApproval(
                task_id=f"{PROMOTE_TASK_PREFIX}{key}",
                subject="Approve pointing the DR site at the recovered database",
                body=(
                    f"This DR-site activation recovers the system from the DR region's copies and then "
                    f"points **{ds.url}** at the recovered instance, probes it and fails back. You answer "
                    f"as **{contact.role}**; every approver of {ds.approval_environment}'s deployment "
                    "window must approve. Reject (or leave unanswered) and the drill recovers and probes "
                    "in scratch only: nothing is promoted."
                ),
                spec=approval_spec(key, contact),
                precheck=lambda context: promote_needs_approval(context, load_config()),
                assigned_users=hitl_users(cfg.approvals.responders.get(key, [])),
                response_timeout=ds.approval_deadline,
                execution_timeout=TASK_TIMEOUT,
                doc_md=f"Approval by the {contact.role} before a real DR site is pointed at the "
                "recovered instance; skipped when nothing would be promoted.",
            )
        )
    extend_for_wait(DagContext.get_current(), ds.approval_deadline)
    return asks


def promote_decision(context: Mapping[str, Any], cfg: MaintenanceConfig) -> tuple[bool, str]:
    """``(promote, why)`` from the approval tasks' answers (a real account's DR site)."""
    from sanvi_ops.core.run_policy import all_approved

    ti = context.get("ti")
    if ti is None:
        return False, "no approval recorded"
    answers = {
        a: ti.xcom_pull(task_ids=f"{PROMOTE_TASK_PREFIX}{a}", default=None) for a in promote_approvers(cfg)
    }
    return all_approved(answers)


def dr_test(context: Mapping[str, Any]) -> ResultDicts:
    """Run the drill of the run's scope, record it, return its results."""
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core.backups import PgTarget
    from sanvi_ops.tasks.backup_testing.restore import RestoreRefused
    from sanvi_ops.tasks.dr_testing.dr import DrSettings, run_drill, self_managed_database

    cfg = load_config()
    params = context.get("params") or {}
    dry_run = bool(params.get("dry_run"))
    backup_id = params.get("backup_id") or None
    try:
        scope, why = resolve_scope(context, cfg)
    except ValueError as exc:
        return [CheckResult("dr.scope", Status.ERROR, str(exc), component="dr").to_dict()]
    d, v = cfg.tasks.dr_testing.settings, cfg.tasks.backup_verification.settings
    site = scope == "dr_site_activation"
    region = d.dr_region if site else None
    dag_id, run_id = run_id_of(context, "dr_testing")
    try:
        app: PgTarget | None = PgTarget.from_dsn(postgres_dsn(cfg.connections.app_db))
    except ConnectionMissing:
        app = None
    config_bucket, config_prefix, config_key = configuration_location(cfg, site=site)
    settings = DrSettings(
        scope=scope,
        root=Path(d.scratch_dir) if d.scratch_dir else default_dr_root(),
        region=d.dr_region,
        backups_bucket=d.replica_buckets.backups if site else cfg.database_backups.bucket,
        files_bucket=d.replica_buckets.files
        if site
        else (v.files_bucket or cfg.tasks.system_health_check.settings.buckets.get("files")),
        configuration_bucket=config_bucket,
        configuration_prefix=config_prefix,
        configuration_bucket_key=config_key,
        files_bucket_key="tasks.dr_testing.settings.replica_buckets.files"
        if site
        else "tasks.backup_verification.settings.files_bucket",
        files_max_objects=d.files_max_objects,
        files_max_mb=d.files_max_mb,
        configuration_max_objects=d.configuration_max_objects,
        rto_warning_min=d.rto.warning,
        rto_critical_min=d.rto.critical,
    )
    local = _local_stack(cfg)
    asks = _no_promote_approval(scope, dry_run, d.dr_site, lambda: local) is None
    promote, promote_why = promote_decision(context, cfg) if asks else (False, "")
    settings.system = system_settings(cfg, settings, site=site, point=local or promote)
    scope_result = CheckResult(
        "dr.scope",
        Status.OK,
        f"scope {scope.replace('_', ' ')} ({why})" + (f"; DR region {d.dr_region}" if site else ""),
        component="dr",
        details={"scope": scope, "dry_run": dry_run},
    )
    try:
        s3 = _s3_in(cfg, region)
        if cfg.database_backups.mode == "rds":
            database = _rds_database(cfg, run_id=run_id, app=app, dry_run=dry_run)
        else:
            restore_settings = dr_restore_settings(cfg, bucket=settings.backups_bucket)

            def database(
                clock: tuple[dt.datetime, float], while_up: Any = None, on_downloaded: Any = None
            ) -> Any:
                if site and not settings.backups_bucket:
                    from sanvi_ops.tasks.backup_testing.restore import RestoreOutcome

                    missing = CheckResult(
                        "dr.database.run",
                        Status.CRITICAL,
                        "tasks.dr_testing.settings.replica_buckets.backups is not set: no backups in the DR region to recover from",
                        severity="P2",
                        component="dr",
                    )
                    return RestoreOutcome(results=[], started_at=clock[0]), [missing]
                return self_managed_database(
                    s3,
                    restore_settings,
                    app=app,
                    backup_id=backup_id,
                    dry_run=dry_run,
                    clock=clock,
                    while_up=while_up,
                    on_downloaded=on_downloaded,
                )

        outcome = run_drill(settings, database=database, s3=s3, dry_run=dry_run)
    except RestoreRefused as exc:
        return [
            scope_result.to_dict(),
            CheckResult("dr.guard", Status.CRITICAL, str(exc), severity="P3", component="dr").to_dict(),
        ]
    except ValueError as exc:  # configuration (a production_targets entry, no RDS source, a login)
        return [
            scope_result.to_dict(),
            CheckResult("dr.config", Status.ERROR, str(exc), component="dr").to_dict(),
        ]
    except ConnectionMissing as exc:
        return [
            scope_result.to_dict(),
            CheckResult("dr.connection", Status.ERROR, str(exc), component="dr").to_dict(),
        ]
    results = [scope_result, *outcome.results]
    if asks:
        results.append(
            CheckResult(
                "dr.site.promote",
                Status.OK if promote else Status.SKIPPED,
                f"the DR site was pointed at the recovered instance, {promote_why}"
                if promote
                else f"the DR site was not pointed at the recovered instance ({promote_why}); "
                "recovered and probed in scratch only",
                component="dr",
            )
        )
    if not dry_run:
        results += _record(cfg, dag_id, run_id, outcome)
    return [r.to_dict() for r in results]


def _rds_database(cfg: MaintenanceConfig, *, run_id: str, app: Any, dry_run: bool) -> Any:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.backup_testing.rds_restore import restore_latest_time

    d = cfg.tasks.dr_testing.settings
    source_region = aws_client(cfg.connections.aws, "rds").meta.region_name
    rds_dr = aws_client(cfg.connections.aws, "rds", region_name=d.dr_region)
    settings = rds_settings(cfg, rto=d.rto, rpo=d.rpo)
    settings.timeout_s = min(settings.timeout_s, d.timeout_minutes * 60)
    login = sql_login(cfg)

    def database(clock: tuple[dt.datetime, float], while_up: Any = None) -> Any:
        outcome = restore_latest_time(
            rds_dr,
            settings,
            login,
            source_region=source_region,
            run_id=run_id,
            app=app,
            dry_run=dry_run,
            clock=clock,
            prefix="restore",  # renamed dr.database.* by the drill
            while_up=while_up,
        )
        return outcome, []

    return database


def _record(cfg: MaintenanceConfig, dag_id: str, run_id: str, outcome: Any) -> list[CheckResult]:
    from sanvi_ops.tasks.backup_testing.restore import recent_tests, record_test, trend_result
    from sanvi_ops.tasks.dr_testing.dr import KINDS

    rows = outcome.rows()
    if not rows:
        return []
    try:
        store_dsn = results_store(cfg).dsn
        kind = KINDS[outcome.scope]
        earlier = recent_tests(
            store_dsn, cfg.tasks.dr_testing.settings.trend_runs, before_run=run_id, kind=kind
        )
        for row_kind, row in rows:
            record_test(store_dsn, dag_id, run_id, row, kind=row_kind)
        current = dict(rows)[kind]
        from sanvi_ops.tasks.capacity_planning.airflow_tasks import rto_forecast_from_store

        forecast = rto_forecast_from_store(store_dsn, cfg, outcome.started_at)  # issue 18
        return [trend_result(current, earlier, check="dr.trend", what=kind), forecast]
    except Exception as exc:  # noqa: BLE001 - the drill stands without its history
        log.warning("results store unavailable for recovery_tests: %s", exc)
        return [
            CheckResult(
                "dr.trend",
                Status.WARNING,
                f"drill figures not recorded: results store unavailable ({type(exc).__name__})",
                component="dr",
            )
        ]
