"""Bodies of the System Health Check's tasks: config + connections in, result dicts out.

Each function is one Airflow task and one component; a component whose connection is missing
or whose client cannot even be built becomes a result that says so, never an exception, so the
other components are still checked and reported.
"""

from __future__ import annotations

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def http_endpoints() -> ResultDicts:
    from sanvi_ops.tasks.system_health_check.health.http import check_endpoints

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        latency = cfg.thresholds.latency_p95
        return check_endpoints(
            list(cfg.tasks.system_health_check.settings.endpoints),
            slo_p95_ms=cfg.slos.response_time_p95_ms,
            latency_warning_ms=latency.warning,
            latency_critical_ms=latency.critical,
        )

    return guard("http", Status.ERROR, run)


def postgres() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.tasks.system_health_check.health.postgres import check_postgres

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        thr = cfg.thresholds.db_connections
        return check_postgres(
            postgres_dsn(cfg.connections.app_db),
            warning_pct=thr.warning,
            critical_pct=thr.critical,
            timeout_s=cfg.tasks.system_health_check.settings.component_timeout_seconds,
        )

    return guard("postgres", Status.ERROR, run)


def redis() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import redis_url
    from sanvi_ops.tasks.system_health_check.health.redis import check_redis

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        thr = cfg.thresholds.memory
        return check_redis(
            redis_url(cfg.connections.redis),
            timeout_s=cfg.tasks.system_health_check.settings.component_timeout_seconds,
            memory_warning_pct=thr.warning,
            memory_critical_pct=thr.critical,
        )

    return guard("redis", Status.ERROR, run)


def aws() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import aws_client
    from sanvi_ops.tasks.system_health_check.health import aws as checks
    from sanvi_ops.tasks.system_health_check.health import run_concurrently

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        hc = cfg.tasks.system_health_check.settings
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

    return guard("aws", Status.ERROR, run)


def host_metrics() -> ResultDicts:
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.core.prometheus import PrometheusClient
    from sanvi_ops.tasks.system_health_check.health.metrics import check_host_metrics

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        base_url, auth = http_base_url(cfg.connections.prometheus)
        queries = cfg.tasks.system_health_check.settings.prometheus
        # Six queries share the component's time budget: each gets a slice, so a slow
        # Prometheus is reported as such rather than as an overrun component.
        per_query = max(1.0, cfg.tasks.system_health_check.settings.component_timeout_seconds / 6)
        with PrometheusClient(base_url, timeout_s=per_query, auth=auth) as prom:
            return check_host_metrics(
                prom,
                cfg.thresholds.cpu,
                cfg.thresholds.memory,
                cpu_query=queries.cpu,
                memory_query=queries.memory,
            )

    # No Prometheus connection: host CPU/memory go unchecked; a warning says which connection to set.
    return guard("host_metrics", Status.WARNING, run, consequence="host CPU and memory are not checked")


def airflow() -> ResultDicts:
    """Airflow's own health endpoint (api-server ``/api/v2/monitor/health``)."""
    from sanvi_ops.airflow_kit.connections import http_base_url
    from sanvi_ops.tasks.system_health_check.health.airflow import check_airflow_health

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        settings = cfg.tasks.system_health_check.settings.airflow_health
        base_url, auth = http_base_url(settings.connection)
        return check_airflow_health(
            base_url,
            path=settings.path,
            timeout_s=min(
                settings.timeout_seconds, cfg.tasks.system_health_check.settings.component_timeout_seconds
            ),
            heartbeat_warning=settings.heartbeat_warning,
            heartbeat_critical=settings.heartbeat_critical,
            auth=auth,
        )

    # No connection: Airflow's own health goes unchecked; a warning says which connection to set.
    return guard(
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

    return guard(
        "slack",
        Status.WARNING,
        run,
        consequence="nothing is posted: messages stay in the outbox, shown on the Maintenance page",
    )
