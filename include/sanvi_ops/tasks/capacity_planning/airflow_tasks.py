"""Bodies of the Capacity Planning tasks: config + connections in, result dicts out.

Storage growth is fitted through the ``disk_samples`` of the results store (kept weekly by the
Disk Space Check); this run adds a sample of every database's and the largest tables' sizes, so
the history grows even where no Disk Space Check runs. The CPU/memory chart is kept in the
results store (``performance_charts``, keyed by this DAG and run) and shared in the Slack
summary's thread by :func:`attach_chart`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.airflow_kit.params import param_value
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.performance_analysis.airflow_tasks import evaluation_time

log = logging.getLogger(__name__)

DAG_ID = "capacity_planning"


def _ids(context: Mapping[str, Any], at: datetime) -> tuple[str, str]:
    dag_run = context.get("dag_run")
    dag_id = str(getattr(dag_run, "dag_id", "") or DAG_ID)
    run_id = str(getattr(dag_run, "run_id", "") or f"manual__{at.isoformat()}")
    return dag_id, run_id


def _result(check: str, status: Status, summary: str, component: str, **details: Any) -> ResultDicts:
    return [
        CheckResult(
            check=check, status=status, summary=summary, details=details, component=component
        ).to_dict()
    ]


def period(context: Mapping[str, Any], cfg: MaintenanceConfig) -> timedelta:
    """The period looked back on: the manual run's ``period_days`` Param, else the config's."""
    days = param_value(context, "period_days")
    return cfg.tasks.capacity_planning.settings.period if days is None else timedelta(days=int(days))


def horizon_days(context: Mapping[str, Any], cfg: MaintenanceConfig) -> float:
    """The planning horizon: the manual run's ``horizon_days`` Param, else the config's."""
    return float(param_value(context, "horizon_days", cfg.tasks.capacity_planning.settings.horizon_days))


def scale_up_pct(cfg: MaintenanceConfig) -> float:
    """The guide's "scale up at 70 %": the configured value, else ``thresholds.cpu.warning``."""
    value = cfg.tasks.capacity_planning.settings.scale_up_pct
    return float(cfg.thresholds.cpu.warning if value is None else value)


def storage(context: Mapping[str, Any]) -> ResultDicts:
    """Sample database and table sizes now, then growth and days until full of every stored target."""
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core.store import redact
    from sanvi_ops.tasks.capacity_planning.capacity import load_period_samples, storage_growth, table_usages
    from sanvi_ops.tasks.disk_space_check.disk import database_sizes, save_samples

    cfg = load_config()
    c = cfg.tasks.capacity_planning.settings
    at = evaluation_time(context)
    _, run_id = _ids(context, at)
    extra: list[CheckResult] = []
    usages: list[Any] = []
    try:
        dsn = postgres_dsn(cfg.connections.app_db, application_name="sanvi-ops-capacity")
        dbs, largest = database_sizes(dsn, at, top_tables=c.top_tables, timeout_s=c.timeout_seconds)
        usages = [*dbs, *table_usages(largest.details.get("tables", []), largest.details["database"], at)]
    except (ConnectionMissing, ValueError) as exc:
        extra.append(
            CheckResult(check="capacity.sample", status=Status.ERROR, summary=str(exc), component="postgres")
        )
    except psycopg.Error as exc:
        reason = redact(" ".join(str(exc).split()), dsn)
        extra.append(
            CheckResult(
                check="capacity.sample",
                status=Status.ERROR,
                summary=f"database and table sizes not sampled: {reason}",
                component="postgres",
            )
        )
    try:
        store_dsn = results_store(cfg).dsn
        save_samples(store_dsn, run_id, usages)
        samples = load_period_samples(store_dsn, at - period(context, cfg), at)
    except (ConnectionMissing, ValueError, psycopg.Error) as exc:
        return [
            *(r.to_dict() for r in extra),
            *_result(
                "capacity.storage",
                Status.ERROR,
                f"no storage growth: results store unavailable ({exc})",
                "storage",
            ),
        ]
    if not samples:
        extra.append(
            CheckResult(
                check="capacity.storage",
                status=Status.WARNING,
                summary="no size samples in the results store for the period (is disk_space_check running?)",
                component="storage",
            )
        )
    results = storage_growth(samples, horizon_days=horizon_days(context, cfg))
    results.append(rto_forecast(store_dsn, samples, cfg, at))
    return [r.to_dict() for r in [*results, *extra]]


def rto_forecast_from_store(store_dsn: str, cfg: MaintenanceConfig, at: datetime) -> CheckResult:
    """The RTO forecast for reports other than the capacity plan (the DR drill's): the size samples
    of ``tasks.capacity_planning.settings.period`` read from the store here."""
    import psycopg

    from sanvi_ops.tasks.capacity_planning.capacity import load_period_samples

    try:
        samples = load_period_samples(store_dsn, at - cfg.tasks.capacity_planning.settings.period, at)
    except psycopg.Error as exc:
        return CheckResult(
            check="rto_forecast",
            status=Status.ERROR,
            summary=f"RTO forecast not possible: disk_samples unreadable ({' '.join(str(exc).split())[:200]})",
            component="backups",
        )
    return rto_forecast(store_dsn, samples, cfg, at)


def app_database(cfg: MaintenanceConfig) -> str | None:
    """The application database's name (its ``disk_samples`` target is ``postgres:<name>``)."""
    from psycopg.conninfo import conninfo_to_dict

    from sanvi_ops.airflow_kit.connections import postgres_dsn

    try:
        name = conninfo_to_dict(postgres_dsn(cfg.connections.app_db)).get("dbname")
    except (ConnectionMissing, ValueError):
        return None
    return str(name) if name else None


def rto_forecast(store_dsn: str, samples: Any, cfg: MaintenanceConfig, at: datetime) -> CheckResult:
    """Issue 18's RTO forecast: the newest recovery test's phases scaled with the database's growth."""
    import psycopg

    from sanvi_ops.tasks.capacity_planning.capacity import latest_recovery_phases, rto_outlook

    database = app_database(cfg)
    if database is None:
        return CheckResult(
            check="rto_forecast",
            status=Status.WARNING,
            summary=f"RTO forecast not possible: connection {cfg.connections.app_db!r} (connections.app_db) "
            "names no database",
            component="backups",
        )
    try:
        test = latest_recovery_phases(store_dsn)
    except psycopg.Error as exc:
        return CheckResult(
            check="rto_forecast",
            status=Status.ERROR,
            summary=f"RTO forecast not possible: recovery_tests unreadable ({' '.join(str(exc).split())[:200]})",
            component="backups",
        )
    return rto_outlook(test, samples, database, objective_s=cfg.slos.recovery_time_minutes * 60, now=at)


def trends(context: Mapping[str, Any]) -> ResultDicts:
    """CPU and memory per instance over the period (avg, p95, trend) and the trend chart PNG."""
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.core.prometheus import PrometheusClient, PrometheusError
    from sanvi_ops.tasks.capacity_planning.capacity import resource_trends, trend_chart
    from sanvi_ops.tasks.performance_analysis.performance import save_chart

    cfg = load_config()
    c = cfg.tasks.capacity_planning.settings
    at = evaluation_time(context)
    dag_id, run_id = _ids(context, at)
    try:
        base_url, auth = http_base_url(cfg.connections.prometheus)
    except ConnectionMissing as exc:
        return _result("capacity.trends", Status.SKIPPED, str(exc), "prometheus")
    except ValueError as exc:
        return _result("capacity.trends", Status.ERROR, str(exc), "prometheus")
    limit = scale_up_pct(cfg)
    looked_back = period(context, cfg)
    start = at - looked_back
    queries = cfg.tasks.system_health_check.settings.prometheus
    results: list[CheckResult] = []
    series: dict[str, dict[str, list[tuple[datetime, float]]]] = {}
    with PrometheusClient(base_url, timeout_s=c.timeout_seconds, auth=auth) as prom:
        for resource, query in (("cpu", queries.cpu), ("memory", queries.memory)):
            try:
                found, series[resource] = resource_trends(
                    prom,
                    resource,
                    query,
                    start,
                    at,
                    step=c.trend_step,
                    scale_up_pct=limit,
                    horizon_days=horizon_days(context, cfg),
                    min_trend_days=c.min_trend_days,
                )
            except PrometheusError as exc:
                found = [
                    CheckResult(
                        check=f"capacity.{resource}_trend",
                        status=Status.ERROR,
                        summary=f"{resource} trend not read: {exc}",
                        component="prometheus",
                    )
                ]
            results.extend(found)
    if not any(series.values()):
        results.append(
            CheckResult(
                check="capacity.chart",
                status=Status.SKIPPED,
                summary="no chart: no data",
                component="prometheus",
            )
        )
        return [r.to_dict() for r in results]
    png = trend_chart(
        series.get("cpu", {}),
        series.get("memory", {}),
        title=f"CPU and memory — {looked_back.days} days to {at:%Y-%m-%d %H:%M} UTC",
        scale_up_pct=limit,
        start=start,
        end=at,
    )
    try:
        save_chart(results_store(cfg).dsn, dag_id, run_id, png)
        chart = CheckResult(
            check="capacity.chart",
            status=Status.OK,
            summary=f"CPU/memory trend chart stored in the results store (performance_charts, run {run_id})",
            details={"png_bytes": len(png), "table": "performance_charts", "run_id": run_id},
            component="prometheus",
        )
    except Exception as exc:
        chart = CheckResult(
            check="capacity.chart",
            status=Status.WARNING,
            summary=f"chart drawn ({len(png)} bytes) but not stored: {exc}",
            details={"png_bytes": len(png)},
            component="prometheus",
        )
    return [r.to_dict() for r in [*results, chart]]


def autoscaling(context: Mapping[str, Any]) -> ResultDicts:
    """Min/max of the ECS services' Application Auto Scaling targets against the guide."""
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.capacity_planning.capacity import autoscaling_bounds

    cfg = load_config()
    c = cfg.tasks.capacity_planning.settings
    services = list(c.autoscaling_services or cfg.tasks.system_health_check.settings.ecs_services)
    if not services:
        return _result("capacity.autoscaling", Status.SKIPPED, "no ECS services configured", "ecs")
    try:
        client = aws_client(cfg.connections.aws, "application-autoscaling")
    except (ConnectionMissing, ValueError) as exc:
        return _result("capacity.autoscaling", Status.ERROR, str(exc), "ecs")
    results = autoscaling_bounds(
        client,
        cfg.tasks.system_health_check.settings.ecs_cluster,
        services,
        min_capacity=c.autoscaling_min,
        max_capacity=c.autoscaling_max,
    )
    return [r.to_dict() for r in results]


def read_write(context: Mapping[str, Any]) -> ResultDicts:
    """Read/write ratio of the application database (``pg_stat_user_tables``)."""
    import psycopg

    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core.store import redact
    from sanvi_ops.tasks.capacity_planning.capacity import read_write_ratio

    cfg = load_config()
    c = cfg.tasks.capacity_planning.settings
    try:
        dsn = postgres_dsn(cfg.connections.app_db, application_name="sanvi-ops-capacity")
    except (ConnectionMissing, ValueError) as exc:
        return _result("capacity.read_write_ratio", Status.ERROR, str(exc), "postgres")
    try:
        result = read_write_ratio(dsn, replica_above=c.read_replica_ratio, timeout_s=c.timeout_seconds)
    except psycopg.Error as exc:
        reason = redact(" ".join(str(exc).split()), dsn)
        return _result("capacity.read_write_ratio", Status.ERROR, f"not read: {reason}", "postgres")
    return [result.to_dict()]


def attach_chart(context: Mapping[str, Any]) -> dict[str, Any]:
    """Share the run's trend chart in the thread of its Slack summary (once per run; never fails the run)."""
    from sanvi_ops.tasks.performance_analysis import airflow_tasks as performance_tasks

    return performance_tasks.attach_chart(
        context, file_prefix="capacity", title="CPU and memory over the period, with the scale-up line"
    )
