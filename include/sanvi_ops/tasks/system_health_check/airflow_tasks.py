"""Bodies of the System Health Check's tasks: config + connections in, result dicts out.

Each function is one Airflow task and one component; a component whose connection is missing
or whose client cannot even be built becomes a result that says so, never an exception, so the
other components are still checked and reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sanvi_ops.airflow_kit.connections import ConnectionMissing
from sanvi_ops.core.config import MaintenanceConfig, load_config
from sanvi_ops.core.results import CheckResult, Status

ResultDicts = list[dict[str, Any]]


def not_configured(component: str, exc: ConnectionMissing, consequence: str = "") -> CheckResult:
    """A component whose connection is deliberately absent: ``warning`` "not configured", naming
    the connection id and the variable that defines it. Never ``skipped``: a skipped result
    does not colour the run, and a deployment missing a piece must say so."""
    from sanvi_ops.airflow_kit.connections import env_var_name

    conn_id = exc.conn_id
    hint = f"set {env_var_name(conn_id)} or add connection {conn_id!r} in Admin → Connections"
    return CheckResult(
        check=f"{component}.connection",
        status=Status.WARNING,
        summary=f"{component} not configured: Airflow connection {conn_id!r} is not defined"
        + (f"; {consequence}" if consequence else "")
        + f" ({hint})",
        details={"not_configured": True, "connection": conn_id, "fix": hint},
        component=component,
    )


def _guard(
    component: str,
    status_if_missing: Status,
    fn: Callable[[MaintenanceConfig], list[CheckResult]],
    *,
    consequence: str = "",
) -> ResultDicts:
    """Run ``fn``; a missing connection becomes a result with ``status_if_missing`` (``warning``
    reads "not configured"), an unusable one (empty host, unparseable URI) an ``error``."""
    cfg = load_config()
    try:
        results = fn(cfg)
    except ConnectionMissing as exc:
        if status_if_missing is Status.WARNING:
            results = [not_configured(component, exc, consequence)]
        else:
            results = [
                CheckResult(
                    check=f"{component}.connection",
                    status=status_if_missing,
                    summary=str(exc),
                    component=component,
                )
            ]
    except ValueError as exc:  # defined but unusable (empty host, unparseable URI, ...)
        results = [
            CheckResult(
                check=f"{component}.connection", status=Status.ERROR, summary=str(exc), component=component
            )
        ]
    return [r.to_dict() for r in results]


def http_endpoints() -> ResultDicts:
    from sanvi_ops.tasks.system_health_check.health.http import check_endpoints

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        latency = cfg.thresholds.latency_p95
        return check_endpoints(
            list(cfg.health_check.endpoints),
            slo_p95_ms=cfg.slos.response_time_p95_ms,
            latency_warning_ms=latency.warning,
            latency_critical_ms=latency.critical,
        )

    return _guard("http", Status.ERROR, run)


def postgres() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.system_health_check.health.postgres import check_postgres

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        thr = cfg.thresholds.db_connections
        return check_postgres(
            postgres_dsn(cfg.connections.app_db),
            warning_pct=thr.warning,
            critical_pct=thr.critical,
            timeout_s=cfg.health_check.component_timeout_seconds,
        )

    return _guard("postgres", Status.ERROR, run)


def redis() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import redis_url
    from sanvi_ops.tasks.system_health_check.health.redis import check_redis

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        thr = cfg.thresholds.memory
        return check_redis(
            redis_url(cfg.connections.redis),
            timeout_s=cfg.health_check.component_timeout_seconds,
            memory_warning_pct=thr.warning,
            memory_critical_pct=thr.critical,
        )

    return _guard("redis", Status.ERROR, run)


def aws() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.system_health_check.health import aws as checks
    from sanvi_ops.tasks.system_health_check.health import run_concurrently

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        hc = cfg.health_check
        conn_id = cfg.connections.aws
        return run_concurrently(
            {
                "s3": lambda: checks.check_buckets(aws_client(conn_id, "s3"), dict(hc.buckets)),
                "ecs": lambda: checks.check_ecs(
                    aws_client(conn_id, "ecs"), hc.ecs_cluster, list(hc.ecs_services)
                ),
                "rds": lambda: checks.check_rds(aws_client(conn_id, "rds"), list(hc.rds_instances)),
                "elasticache": lambda: checks.check_elasticache(
                    aws_client(conn_id, "elasticache"), list(hc.elasticache_clusters)
                ),
            },
            timeout_s=hc.component_timeout_seconds,
        )

    return _guard("aws", Status.ERROR, run)


def host_metrics() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.core.prometheus import PrometheusClient
    from sanvi_ops.tasks.system_health_check.health.metrics import check_host_metrics

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        base_url, auth = http_base_url(cfg.connections.prometheus)
        queries = cfg.health_check.prometheus
        # Six queries share the component's time budget: each gets a slice, so a slow
        # Prometheus is reported as such rather than as an overrun component.
        per_query = max(1.0, cfg.health_check.component_timeout_seconds / 6)
        with PrometheusClient(base_url, timeout_s=per_query, auth=auth) as prom:
            return check_host_metrics(
                prom,
                cfg.thresholds.cpu,
                cfg.thresholds.memory,
                cpu_query=queries.cpu,
                memory_query=queries.memory,
            )

    # No Prometheus connection: host CPU/memory go unchecked; a warning says which connection to set.
    return _guard("host_metrics", Status.WARNING, run, consequence="host CPU and memory are not checked")


def airflow() -> ResultDicts:
    """Airflow's own health endpoint (api-server ``/api/v2/monitor/health``)."""
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.tasks.system_health_check.health.airflow import check_airflow_health

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        settings = cfg.meta_monitoring.airflow_health
        base_url, auth = http_base_url(settings.connection)
        return check_airflow_health(
            base_url,
            path=settings.path,
            timeout_s=min(settings.timeout_seconds, cfg.health_check.component_timeout_seconds),
            heartbeat_warning=settings.heartbeat_warning,
            heartbeat_critical=settings.heartbeat_critical,
            auth=auth,
        )

    # No connection: Airflow's own health goes unchecked; a warning says which connection to set.
    return _guard(
        "airflow",
        Status.WARNING,
        run,
        consequence="Airflow's own health (scheduler, triggerer) is not checked",
    )


def slack() -> ResultDicts:
    """Can the notifier post? ``auth.test`` with the Slack connection's token. No connection:
    ``warning`` "not configured" (messages stay in the outbox and on the Maintenance page)."""
    from sanvi_ops.airflow_kit.connections import get_connection, slack_client
    from sanvi_ops.tasks.system_health_check.health.slack import check_slack_auth

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        conn_id = cfg.connections.slack
        get_connection(conn_id)  # ConnectionMissing → not configured
        client = slack_client(conn_id, max_retries=1)
        return [check_slack_auth(client, conn_id=conn_id)]

    return _guard(
        "slack",
        Status.WARNING,
        run,
        consequence="nothing is posted: messages stay in the outbox, shown on the Maintenance page",
    )
