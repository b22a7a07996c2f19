"""Bodies of the Performance Analysis tasks: config + connections in, result dicts out.

Every task evaluates at one instant, :func:`evaluation_time`: the manual run's ``evaluate_at``
Param when given, else the run's data interval end (the scheduled time), else now — so a re-run
of last Tuesday analyses last Tuesday's week.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.airflow_kit.guard import connection_result
from sanvi_ops.airflow_kit.params import param_value
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

log = logging.getLogger(__name__)


def evaluation_time(context: Mapping[str, Any]) -> datetime:
    """The instant a run analyses (timezone-aware, UTC)."""
    params = context.get("params") or {}
    raw = params.get("evaluate_at") if isinstance(params, Mapping) else None
    if raw:
        at = datetime.fromisoformat(str(raw))
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return at.astimezone(UTC)
    end = context.get("data_interval_end")
    if end is not None:
        return datetime.fromtimestamp(end.timestamp(), tz=UTC)
    return datetime.now(UTC)


def _service_queries(cfg: MaintenanceConfig) -> Any:
    from sanvi_ops.tasks.performance_analysis.performance import ServiceQueries

    p = cfg.tasks.performance_analysis.settings
    return ServiceQueries(
        request_rate=p.request_rate_query, error_rate=p.error_rate_query, latency_p95=p.latency_p95_query
    )


def database(context: Mapping[str, Any]) -> ResultDicts:
    """pg_stat_statements (with last week's change), cache hits, unused indexes, sequential
    scans, connection pool; keeps this week's statement snapshot in the results store.

    A manual run's ``top_queries`` Param sets how many statements (and sequentially scanned
    tables) are listed; empty = ``tasks.performance_analysis.settings.top_queries``."""
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.performance_analysis.performance import (
        check_database,
        latest_snapshot,
        save_snapshot,
    )

    cfg = load_config()
    p = cfg.tasks.performance_analysis.settings
    at = evaluation_time(context)
    run_id = str(getattr(context.get("dag_run"), "run_id", "") or f"manual__{at.isoformat()}")
    try:
        dsn = postgres_dsn(cfg.connections.app_db, application_name="sanvi-ops-performance")
    except (ConnectionMissing, ValueError) as exc:
        return connection_result("postgres", exc, Status.ERROR)

    extra: list[CheckResult] = []
    store_dsn: str | None = None
    previous = None
    try:
        store_dsn = results_store(cfg).dsn
        previous = latest_snapshot(store_dsn, cfg.connections.app_db, at, exclude_run_id=run_id)
    except Exception as exc:  # the store is optional for the analysis itself
        log.warning("results store unavailable for the statement snapshot: %s", exc)
        extra.append(
            CheckResult(
                check="postgres.snapshot",
                status=Status.WARNING,
                summary=f"last week's pg_stat_statements snapshot unavailable (results store): {exc}",
                component="postgres",
            )
        )
        store_dsn = None
    thr = cfg.thresholds.db_connections
    results, snapshot = check_database(
        dsn,
        previous,
        top_n=int(param_value(context, "top_queries", p.top_queries)),
        regression_pct=p.regression_pct,
        regression_min_calls=p.regression_min_calls,
        cache_hit_warning_pct=p.cache_hit_warning_pct,
        cache_hit_critical_pct=p.cache_hit_critical_pct,
        seq_scan_min_rows=p.seq_scan_min_rows,
        seq_scan_min_scans=p.seq_scan_min_scans,
        connections_warning_pct=thr.warning,
        connections_critical_pct=thr.critical,
        timeout_s=p.timeout_seconds,
    )
    if snapshot is not None and store_dsn is not None:
        save_snapshot(store_dsn, cfg.connections.app_db, run_id, at, snapshot)
    return [r.to_dict() for r in [*results, *extra]]


def service(context: Mapping[str, Any]) -> ResultDicts:
    """Request rate, p95 latency, error rate and availability from Prometheus."""
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.core.prometheus import PrometheusClient
    from sanvi_ops.tasks.performance_analysis.performance import ServiceLimits, check_service

    cfg = load_config()
    at = evaluation_time(context)
    try:
        base_url, auth = http_base_url(cfg.connections.prometheus)
    except ConnectionMissing as exc:
        return connection_result("service", exc, Status.SKIPPED)
    except ValueError as exc:
        return connection_result("service", exc, Status.ERROR)
    err, lat = cfg.thresholds.error_rate, cfg.thresholds.latency_p95
    with PrometheusClient(
        base_url, timeout_s=cfg.tasks.performance_analysis.settings.timeout_seconds, auth=auth
    ) as prom:
        results = check_service(
            prom,
            at,
            queries=_service_queries(cfg),
            limits=ServiceLimits(
                slo_p95_ms=cfg.slos.response_time_p95_ms,
                slo_error_pct=cfg.slos.error_rate_pct,
                slo_availability_pct=cfg.slos.availability_pct,
                error_warning_pct=err.warning,
                error_warning_for=err.warning_for or timedelta(minutes=5),
                error_critical_pct=err.critical,
                error_critical_for=err.critical_for or timedelta(minutes=1),
                latency_warning_ms=lat.warning,
                latency_critical_ms=lat.critical,
                budget_warning_left_pct=cfg.tasks.performance_analysis.settings.error_budget_warning_left_pct,
            ),
        )
    return [r.to_dict() for r in results]


def chart(context: Mapping[str, Any]) -> ResultDicts:
    """The week's p95 latency and error rate as a PNG, kept in the results store."""
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.core.prometheus import PrometheusClient, PrometheusError
    from sanvi_ops.tasks.performance_analysis.charts import latency_error_chart
    from sanvi_ops.tasks.performance_analysis.performance import save_chart, week_series

    cfg = load_config()
    at = evaluation_time(context)
    dag_run = context.get("dag_run")
    dag_id = str(getattr(dag_run, "dag_id", "") or "performance_analysis")
    run_id = str(getattr(dag_run, "run_id", "") or f"manual__{at.isoformat()}")

    def result(status: Status, summary: str, **details: Any) -> ResultDicts:
        return [
            CheckResult(
                check="service.chart", status=status, summary=summary, details=details, component="service"
            ).to_dict()
        ]

    try:
        base_url, auth = http_base_url(cfg.connections.prometheus)
    except (ConnectionMissing, ValueError) as exc:
        return result(Status.SKIPPED, f"no chart: {exc}")
    try:
        with PrometheusClient(
            base_url, timeout_s=cfg.tasks.performance_analysis.settings.timeout_seconds, auth=auth
        ) as prom:
            latency, errors = week_series(
                prom,
                at,
                queries=_service_queries(cfg),
                step=cfg.tasks.performance_analysis.settings.chart_step,
            )
    except PrometheusError as exc:
        return result(Status.SKIPPED, f"no chart: {exc}")
    lat, err = cfg.thresholds.latency_p95, cfg.thresholds.error_rate
    png = latency_error_chart(
        latency,
        errors,
        title=f"Sanvi API — week to {at:%Y-%m-%d %H:%M} UTC",
        slo_p95_ms=cfg.slos.response_time_p95_ms,
        latency_warning_ms=lat.warning,
        latency_critical_ms=lat.critical,
        slo_error_pct=cfg.slos.error_rate_pct,
        error_warning_pct=err.warning,
        error_critical_pct=err.critical,
        start=at - timedelta(days=7),
        end=at,
    )
    try:
        save_chart(results_store(cfg).dsn, dag_id, run_id, png)
    except Exception as exc:
        return result(
            Status.WARNING, f"chart drawn ({len(png)} bytes) but not stored: {exc}", png_bytes=len(png)
        )
    return result(
        Status.OK,
        f"chart of the week ({len(latency)} latency and {len(errors)} error-rate points) stored in the "
        f"results store (performance_charts, run {run_id})",
        png_bytes=len(png),
        table="performance_charts",
        run_id=run_id,
        points={"latency": len(latency), "error_rate": len(errors)},
    )


def attach_chart(
    context: Mapping[str, Any],
    *,
    file_prefix: str = "performance",
    title: str = "p95 latency and error rate over the week",
) -> dict[str, Any]:
    """Share the run's chart in the thread of its Slack summary (once per run).

    Any DAG that stores a chart with :func:`sanvi_ops.tasks.performance_analysis.performance.save_chart` shares it with
    this (capacity planning does too), naming the file and its title.

    Runs after ``notify``, whatever its outcome. Nothing to do (and no failure) when the chart
    was not drawn, when there is no Slack connection (the chart stays in the results store) or
    when the summary is not delivered yet; a Slack error is logged and left for a manual re-run,
    because the report itself is already out.
    """
    from sanvi_ops.airflow_kit.connections import postgres_dsn, slack_client
    from sanvi_ops.core.notify.slack import SlackDeliveryError, SlackSender
    from sanvi_ops.core.store import ResultStore
    from sanvi_ops.tasks.performance_analysis.performance import load_chart, mark_chart_shared

    cfg = load_config()
    dag_run = context.get("dag_run")
    dag_id = str(getattr(dag_run, "dag_id", "") or "performance_analysis")
    run_id = str(getattr(dag_run, "run_id", ""))
    store_dsn = postgres_dsn(cfg.connections.store)
    chart = load_chart(store_dsn, dag_id, run_id)
    if chart is None:
        return {"shared": False, "reason": "no chart for this run"}
    png, file_id = chart
    if file_id:
        return {"shared": True, "file_id": file_id, "reason": "already shared"}
    client = slack_client(cfg.connections.slack)
    if client is None:
        return {
            "shared": False,
            "reason": f"no Slack connection {cfg.connections.slack!r}: chart kept in the store",
        }
    summary = ResultStore(store_dsn).get_notification(f"summary:{dag_id}:{run_id}")
    if summary is None or not summary.slack_ts or not summary.slack_channel:
        return {"shared": False, "reason": "the run's summary is not in Slack yet: chart kept in the store"}
    try:
        file_id = SlackSender(client).upload_file(
            summary.slack_channel,
            f"{file_prefix}-{run_id}.png".replace(":", "-").replace("+", "-"),
            png,
            title=title,
            thread_ts=summary.slack_ts,
        )
    except SlackDeliveryError as exc:
        log.warning("chart not shared in Slack (%s); it stays in the results store", exc)
        return {"shared": False, "reason": str(exc)}
    mark_chart_shared(store_dsn, dag_id, run_id, file_id)
    return {"shared": True, "file_id": file_id}
