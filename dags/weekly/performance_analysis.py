"""
# Performance Analysis (weekly, Tuesday 10:30)

*The guide: "Review system performance metrics" — DevOps.*

| task | what | held to |
|---|---|---|
| `analyse_database` | the application database (`sanvi_app_db`): top statements by total time, mean time and calls from `pg_stat_statements`, each with its change against last week's snapshot; buffer cache hit ratio; indexes never used (not unique/PK); tables read mostly by sequential scans; connection pool utilisation | a statement's mean time up > 50 % (100+ calls) is a warning; cache hits < 99 % warning / < 90 % critical; connections > 80 % / > 90 % |
| `analyse_service` | Prometheus (`sanvi_prometheus`): request rate, p95 latency and error rate over the week and now; availability this month | SLOs p95 < 300 ms and errors < 0.1 % over the week; alerts: errors > 1 % for 5 m / > 5 % for 1 m, p95 > 500 ms / > 1 s now; availability 99.9 % with the error budget left this month |
| `draw_chart` | PNG of the week's p95 latency and error rate with the SLO and thresholds | kept in the results store, table `performance_charts` |
| `attach_chart` | after `notify`: the PNG is shared in the thread of the run's Slack summary (Slack's external upload: `files.getUploadURLExternal` → upload → `files.completeUploadExternal`) | once per run; without Slack the chart stays in the store |

The snapshot of `pg_stat_statements` is kept in the results store (`pg_statement_snapshots`)
on every run; counters are cumulative, so this week's calls and mean time are the difference
to last week's snapshot. Settings: `tasks.performance_analysis.settings` in `include/config/maintenance.yaml`.

Started by hand (trigger form): `checks` (database, service, chart; one left out reports
`<task>.not_selected` as skipped), `evaluate_at` (ISO time, UTC: analyse the week ending then
instead of the run's scheduled time), `top_queries` (how many statements to list). See the
README, "Starting a DAG by hand".

## When it is yellow or red
1. `postgres.pg_stat_statements` skipped: its summary gives the commands that enable it
   (`shared_preload_libraries`, restart, `CREATE EXTENSION pg_stat_statements`).
2. `postgres.top_queries` warning: the regressed statements are in the result's details; run
   `EXPLAIN (ANALYZE, BUFFERS)` on them and compare with last week's deployment.
3. `postgres.unused_indexes` / `postgres.seq_scans`: candidates to drop / to index; check on
   a replica and with the owning team before changing anything.
4. `service.*` critical: the current error rate or latency crossed an alert threshold — the
   incident process applies. `service.availability` warning/critical: the month's error
   budget is low/spent: freeze risky deployments.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import get_current_context, task, teardown

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, iso_time_param, optional_int_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.performance_analysis import airflow_tasks as performance_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = ("analyse_database", "analyse_service", "draw_chart")


@maintenance_dag(
    __file__,
    __doc__,
    params={
        "checks": checks_param(CHECKS),
        "evaluate_at": iso_time_param(
            title="Evaluate at",
            description="ISO time (UTC) whose week to analyse; empty = the run's scheduled time.",
        ),
        "top_queries": optional_int_param(
            title="Top statements",
            description=(
                "How many statements (per ranking) and sequentially scanned tables to list (1–100); "
                "empty = tasks.performance_analysis.settings.top_queries (10), as scheduled."
            ),
            minimum=1,
            maximum=100,
        ),
    },
)
def performance_analysis() -> None:
    @task
    @when_selected
    def analyse_database() -> list[dict[str, Any]]:
        """pg_stat_statements top statements vs last week, cache hits, unused indexes, seq scans, connections."""
        return performance_tasks.database(get_current_context())

    @task
    @when_selected
    def analyse_service() -> list[dict[str, Any]]:
        """Request rate, p95 latency, error rate and availability from Prometheus vs SLOs and alerts."""
        return performance_tasks.service(get_current_context())

    @task
    @when_selected
    def draw_chart() -> list[dict[str, Any]]:
        """PNG of the week's p95 latency and error rate, kept in the results store."""
        return performance_tasks.chart(get_current_context())

    @teardown
    def attach_chart() -> dict[str, Any]:
        """Share the chart in the Slack summary's thread (a teardown: it never changes the run's state)."""
        return performance_tasks.attach_chart(get_current_context())

    publish(analyse_database(), analyse_service(), draw_chart()) >> attach_chart()


performance_analysis()
