"""
# System Health Check (daily, 09:00)

*The guide: "Verify all components are functioning properly" — DevOps.*

Checks every component independently, each in its own task with its own timeout, so one dead
component never hides the others:

| task | what | held to |
|---|---|---|
| `check_http_endpoints` | frontend and backend URLs from `tasks.system_health_check.settings.endpoints` | expected status; latency vs the p95 SLO (300 ms) and the latency alert thresholds |
| `check_postgres` | the application database (`sanvi_app_db`): connect, `SELECT 1`, connections in use | DB connections > 80 % warning, > 90 % critical |
| `check_redis` | the cache (`sanvi_redis`): PING, memory used vs maxmemory, clients | memory > 80 % / > 90 % |
| `check_aws` | S3 buckets, ECS services running vs desired, RDS and ElastiCache status (`aws_default`) | any difference is reported |
| `check_host_metrics` | CPU and memory per instance from Prometheus (`sanvi_prometheus`) | CPU > 70 % for 15 m / > 90 % for 5 m; memory > 80 % for 15 m / > 90 % for 5 m |
| `check_airflow` | Airflow itself: the api-server's `/api/v2/monitor/health` (`sanvi_airflow_api`): metadatabase, scheduler, triggerer, DAG processor | unhealthy or heartbeat older than 10 min critical (scheduler/database P1); older than 2 min or never started warning |
| `check_slack` | the notifier: Slack `auth.test` with the Slack connection's token (`slack_api_default`) | refused or unreachable: error |

A component whose connection is not defined (Prometheus, the Airflow API, Slack) is a `warning`
"not configured" naming the connection to set, never green.

Started by hand, the trigger form's **Checks** chooses which component tasks run (all by
default); a component left out is listed as `skipped` in the summary.

Then `record` stores every result in the results store (`sanvi_ops_store`), opens an incident
for a critical result (the guide's `[INCIDENT]` template, with the on-call mention) or resolves
one whose check is healthy again, and `notify` posts the summary to Slack. The run turns red
when anything is critical or in error; the report is already out by then.

## When it is red
1. Open the Slack thread / the `record` task log: each failing check names the component,
   what was observed and the threshold.
2. A component that is down is a P1 (service down): follow the incident process in the guide.
3. A check in `error` could not run: its summary names the connection or setting to fix.
4. `airflow.*` red: Airflow itself is unwell. Scheduler or metadatabase: nothing new runs (check
   the scheduler's container/pod and the metadata database); triggerer: deadline alerts and
   deferred tasks stall; DAG processor: DAG edits are not picked up. `airflow.api`: the api-server
   is down or unreachable from the worker (URL in the `sanvi_airflow_api` connection).
5. A known problem being worked on can be silenced (README "Silencing an alert") so it stops
   paging while it is fixed; the results are still stored.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.system_health_check import airflow_tasks as health_tasks

CHECKS = (
    "check_http_endpoints",
    "check_postgres",
    "check_redis",
    "check_aws",
    "check_host_metrics",
    "check_airflow",
    "check_slack",
)


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "checks": checks_param(
            CHECKS,
            description="Which components to check (default: all, as scheduled): the frontend/backend "
            "endpoints, the application database, the cache, AWS (S3/ECS/RDS/ElastiCache), host CPU/memory "
            "from Prometheus, Airflow's own health endpoint, and Slack (auth.test). A component left out reports a "
            "'skipped' result, so the summary shows what was not checked.",
        )
    },
)
def system_health_check() -> None:
    @task
    @when_selected
    def check_http_endpoints() -> list[dict[str, Any]]:
        """Probe the frontend and backend endpoints concurrently (status, latency)."""
        return health_tasks.http_endpoints()

    @task
    @when_selected
    def check_postgres() -> list[dict[str, Any]]:
        """Connect to the application database; latency and connection headroom."""
        return health_tasks.postgres()

    @task
    @when_selected
    def check_redis() -> list[dict[str, Any]]:
        """PING the cache; memory used against maxmemory; connected clients."""
        return health_tasks.redis()

    @task
    @when_selected
    def check_aws() -> list[dict[str, Any]]:
        """S3 buckets, ECS services, RDS instances and ElastiCache clusters."""
        return health_tasks.aws()

    @task
    @when_selected
    def check_host_metrics() -> list[dict[str, Any]]:
        """CPU and memory per instance from Prometheus, with the guide's durations."""
        return health_tasks.host_metrics()

    @task
    @when_selected
    def check_airflow() -> list[dict[str, Any]]:
        """Airflow's own health endpoint: metadatabase, scheduler, triggerer, DAG processor."""
        return health_tasks.airflow()

    @task
    @when_selected
    def check_slack() -> list[dict[str, Any]]:
        """Can the notifier post? Slack auth.test with the connection's token."""
        return health_tasks.slack()

    publish(
        check_http_endpoints(),
        check_postgres(),
        check_redis(),
        check_aws(),
        check_host_metrics(),
        check_airflow(),
        check_slack(),
    )


system_health_check()
