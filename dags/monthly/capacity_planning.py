"""
# Capacity Planning (monthly, 3rd Wednesday, 11:00)

*The guide: "Review and plan for capacity needs" — DevOps & Product.*

| task | what | held to |
|---|---|---|
| `plan_storage` | samples every database's and the largest tables' sizes now (into `disk_samples`), then for every target the results store sampled over the period (databases, tables, filesystems and RDS from the weekly Disk Space Check): growth per day and, where there is a capacity, days until full | full within the planning horizon (`horizon_days`, 90) is a warning |
| `plan_compute` | CPU and memory per instance from Prometheus (`tasks.system_health_check.settings.prometheus` queries) over the period: average, p95, least-squares trend; draws the trend chart (PNG, kept in the results store, `performance_charts`) | the guide's "scale up at 70 %" (`scale_up_pct`, default `thresholds.cpu.warning`): p95 above it, or the trend crossing it within the horizon, is a warning; trends need `min_trend_days` (7) of data |
| `check_autoscaling` | Application Auto Scaling targets of the ECS services (`service/<cluster>/<service>`) | the guide: min 2, max 10; not registered or different is a warning |
| `check_read_write_ratio` | rows read (`seq_tup_read + idx_tup_fetch`) against rows written (`n_tup_ins + n_tup_upd + n_tup_del`) of `pg_stat_user_tables` since the last statistics reset | above 4:1 a read replica is recommended (warning) |
| `attach_chart` | after `notify`: the chart is shared in the thread of the run's Slack summary | once per run; without Slack the chart stays in the store |

Settings: `tasks.capacity_planning.settings` in `include/config/maintenance.yaml`.

Started by hand (trigger form): `checks` (one left out reports `<task>.not_selected` as skipped),
`evaluate_at` (ISO time, UTC: plan from the period ending then instead of the run's scheduled
time), `period_days` and `horizon_days` (instead of the config's). See the README, "Starting a
DAG by hand".

## When it is yellow or red
1. `capacity.*_growth` warning: the target fills within the horizon — plan storage (RDS
   `AllocatedStorage`, a bigger volume) or archiving with the owning team.
2. `capacity.cpu_trend` / `capacity.memory_trend` warning: raise the service's task size or its
   auto-scaling bounds before the trend reaches the line; check the chart in the Slack thread.
3. `capacity.autoscaling[*]` warning: align the scalable target with the guide
   (`aws application-autoscaling register-scalable-target --service-namespace ecs ...`).
4. `capacity.read_write_ratio` warning: propose a read replica for reporting/read traffic.
5. Connection or store errors: the result names the connection; fix it and re-run.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task, teardown

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, iso_time_param, optional_int_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.capacity_planning import airflow_tasks as capacity_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = ("plan_storage", "plan_compute", "check_autoscaling", "check_read_write_ratio")


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "checks": checks_param(CHECKS),
        "evaluate_at": iso_time_param(
            title="Evaluate at",
            description="ISO time (UTC) ending the period to plan from; empty = the run's scheduled time.",
        ),
        "period_days": optional_int_param(
            title="Period (days)",
            description=(
                "Days looked back on for storage growth and CPU/memory trends (1–730; trends need "
                "tasks.capacity_planning.settings.min_trend_days of data); empty = tasks.capacity_planning.settings.period (30 d)."
            ),
            minimum=1,
            maximum=730,
        ),
        "horizon_days": optional_int_param(
            title="Horizon (days)",
            description=(
                "Planning horizon: full, or crossing the scale-up line, within it is a warning "
                "(1–1095); empty = tasks.capacity_planning.settings.horizon_days (90)."
            ),
            minimum=1,
            maximum=1095,
        ),
    },
)
def capacity_planning() -> None:
    @task
    @when_selected
    def plan_storage() -> list[dict[str, Any]]:
        """Database/table sizes sampled now; growth and days until full of every stored target."""
        return capacity_tasks.storage(get_current_context())

    @task
    @when_selected
    def plan_compute() -> list[dict[str, Any]]:
        """CPU and memory per instance over the period against the scale-up line; the trend chart."""
        return capacity_tasks.trends(get_current_context())

    @task
    @when_selected
    def check_autoscaling() -> list[dict[str, Any]]:
        """ECS services' auto-scaling min/max (Application Auto Scaling) against the guide."""
        return capacity_tasks.autoscaling(get_current_context())

    @task
    @when_selected
    def check_read_write_ratio() -> list[dict[str, Any]]:
        """Rows read vs written (pg_stat_user_tables); read replica above the configured ratio."""
        return capacity_tasks.read_write(get_current_context())

    @teardown
    def attach_chart() -> dict[str, Any]:
        """Share the chart in the Slack summary's thread (a teardown: it never changes the run's state)."""
        return capacity_tasks.attach_chart(get_current_context())

    publish(plan_storage(), plan_compute(), check_autoscaling(), check_read_write_ratio()) >> attach_chart()


capacity_planning()
