"""Bodies of the Disk Space Check tasks: config + connections in, result dicts out.

Each source is its own task. Every measured target is graded against ``thresholds.disk`` with a
days-until-full estimate fitted through the samples the results store kept from earlier runs,
and this run's sample is stored for the next one. Without a results store the check still
grades (no forecast) and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.airflow_kit.guard import connection_result
from sanvi_ops.airflow_kit.params import param_value
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.performance_analysis.airflow_tasks import evaluation_time

if TYPE_CHECKING:
    from sanvi_ops.tasks.disk_space_check.disk import Usage

log = logging.getLogger(__name__)


def _run_id(context: Mapping[str, Any], at: datetime) -> str:
    return str(getattr(context.get("dag_run"), "run_id", "") or f"manual__{at.isoformat()}")


def grade_and_record(
    cfg: MaintenanceConfig, run_id: str, at: datetime, usages: Sequence[Any], component: str
) -> list[CheckResult]:
    """Grade each :class:`~sanvi_ops.tasks.disk_space_check.disk.Usage` with its stored history; store this run's samples."""
    from sanvi_ops.tasks.disk_space_check.disk import grade_usage, load_samples, save_samples

    extra: list[CheckResult] = []
    history: dict[str, list[tuple[datetime, float]]] = {}
    store_dsn: str | None = None
    try:
        store_dsn = results_store(cfg).dsn
        history = load_samples(
            store_dsn,
            [u.target for u in usages],
            at - cfg.tasks.disk_space_check.settings.history,
            exclude_run_id=run_id,
        )
    except Exception as exc:  # the forecast is a bonus; the percentages stand without it
        log.warning("results store unavailable for disk history: %s", exc)
        store_dsn = None
        extra.append(
            CheckResult(
                check=f"{component}.history",
                status=Status.WARNING,
                summary=f"no days-until-full forecast: results store unavailable ({exc})",
                component=component,
            )
        )
    thr = cfg.thresholds.disk
    results = [
        grade_usage(
            u,
            history.get(u.target, []),
            warning_pct=thr.warning,
            critical_pct=thr.critical,
            full_within_days=cfg.tasks.disk_space_check.settings.full_within_days,
        )
        for u in usages
    ]
    if store_dsn is not None:
        save_samples(store_dsn, run_id, usages)
    return [*results, *extra]


def mount_point_filter(context: Mapping[str, Any]) -> list[str]:
    """The manual run's ``mount_points`` Param (shell-style patterns); empty = every mount point."""
    return [str(p) for p in param_value(context, "mount_points", [])]


def _wanted(usage: Usage, patterns: Sequence[str]) -> bool:
    from fnmatch import fnmatchcase

    mountpoint = str(usage.details.get("mountpoint", ""))
    return not patterns or any(fnmatchcase(mountpoint, p) for p in patterns)


def filesystems(context: Mapping[str, Any]) -> ResultDicts:
    """Every filesystem node_exporter reports (Prometheus); with the ``mount_points`` Param, only
    the mount points matching one of its patterns (others are neither graded nor sampled)."""
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.core.prometheus import PrometheusClient, PrometheusError
    from sanvi_ops.tasks.disk_space_check.disk import filesystem_usage

    cfg = load_config()
    at = evaluation_time(context)
    try:
        base_url, auth = http_base_url(cfg.connections.prometheus)
    except ConnectionMissing as exc:
        return connection_result("filesystems", exc, Status.SKIPPED)
    except ValueError as exc:
        return connection_result("filesystems", exc, Status.ERROR)
    d = cfg.tasks.disk_space_check.settings
    try:
        with PrometheusClient(base_url, timeout_s=d.timeout_seconds, auth=auth) as prom:
            usages = filesystem_usage(
                prom, at, size_query=d.filesystem_size_query, avail_query=d.filesystem_avail_query
            )
    except PrometheusError as exc:
        return [
            CheckResult(
                check="disk.filesystems",
                status=Status.ERROR,
                summary=f"filesystems not checked: {exc}",
                component="filesystems",
            ).to_dict()
        ]
    patterns = mount_point_filter(context)
    if patterns and usages:
        usages = [u for u in usages if _wanted(u, patterns)]
        if not usages:
            return [
                CheckResult(
                    check="disk.filesystems",
                    status=Status.WARNING,
                    summary=f"no filesystem matches the mount_points Param ({', '.join(patterns)})",
                    component="filesystems",
                    details={"mount_points": patterns},
                ).to_dict()
            ]
    if not usages:
        return [
            CheckResult(
                check="disk.filesystems",
                status=Status.WARNING,
                summary=(
                    "no filesystem series in Prometheus (is node_exporter scraped?); queries: "
                    f"{d.filesystem_size_query} / {d.filesystem_avail_query}"
                ),
                component="filesystems",
            ).to_dict()
        ]
    return [r.to_dict() for r in grade_and_record(cfg, _run_id(context, at), at, usages, "filesystems")]


def rds(context: Mapping[str, Any]) -> ResultDicts:
    """Free storage of each RDS instance (CloudWatch) against its allocated storage."""
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.disk_space_check.disk import Usage, rds_usage

    cfg = load_config()
    at = evaluation_time(context)
    instances = list(cfg.tasks.system_health_check.settings.rds_instances)
    if not instances:
        return [
            CheckResult(
                check="disk.rds",
                status=Status.SKIPPED,
                summary="no RDS instances configured (tasks.system_health_check.settings.rds_instances)",
                component="rds",
            ).to_dict()
        ]
    conn_id = cfg.connections.aws
    try:
        found = rds_usage(aws_client(conn_id, "rds"), aws_client(conn_id, "cloudwatch"), instances, at)
    except (ConnectionMissing, ValueError) as exc:
        return connection_result("rds", exc, Status.ERROR)
    usages = [u for u in found if isinstance(u, Usage)]
    direct = [r for r in found if isinstance(r, CheckResult)]
    graded = grade_and_record(cfg, _run_id(context, at), at, usages, "rds") if usages else []
    return [r.to_dict() for r in [*graded, *direct]]


def postgres(context: Mapping[str, Any]) -> ResultDicts:
    """Database sizes (growth per week) and the largest tables of the application database (as
    many as the ``top_tables`` Param, else ``tasks.disk_space_check.settings.top_tables``)."""
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.disk_space_check.disk import database_sizes

    cfg = load_config()
    at = evaluation_time(context)
    try:
        dsn = postgres_dsn(cfg.connections.app_db, application_name="sanvi-ops-disk")
    except (ConnectionMissing, ValueError) as exc:
        return connection_result("postgres", exc, Status.ERROR)
    try:
        usages, largest = database_sizes(
            dsn,
            at,
            top_tables=int(
                param_value(context, "top_tables", cfg.tasks.disk_space_check.settings.top_tables)
            ),
            timeout_s=cfg.tasks.disk_space_check.settings.timeout_seconds,
        )
    except psycopg.Error as exc:
        from sanvi_ops.core.store import redact

        reason = redact(" ".join(str(exc).split()), dsn)
        return [
            CheckResult(
                check="postgres.sizes",
                status=Status.ERROR,
                summary=f"database sizes not read: {reason}",
                component="postgres",
            ).to_dict()
        ]
    graded = grade_and_record(cfg, _run_id(context, at), at, usages, "postgres")
    return [r.to_dict() for r in [*graded, largest]]
