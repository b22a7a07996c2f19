"""Capacity Planning end to end: ``dag.test()`` against PostgreSQL 18 (application DB and results
store with earlier size samples), Application Auto Scaling on the moto server, the demo
Prometheus (evaluated at its ``now`` through the ``evaluate_at`` Param) and a Slack-compatible
server, all on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.fixtures.e2e import load_dag

pytestmark = pytest.mark.e2e

DAG_ID = "capacity_planning"


@pytest.fixture
def cap_env(e2e, boto_client, monkeypatch):
    from devstack.aws_seed import seed_demo
    from sanvi_ops.core.config import load_config

    monkeypatch.delenv("SANVI_OPS_CONFIG", raising=False)
    cfg = load_config()
    env = e2e.connect(app_db=True, aws=True)
    seed_demo(env["aws_endpoint"])
    scaling = boto_client("application-autoscaling")
    for service, lo, hi in (("frontend", 2, 10), ("backend", 1, 10)):
        scaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cfg.tasks.system_health_check.settings.ecs_cluster}/{service}",
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=lo,
            MaxCapacity=hi,
        )
    app_dsn, store_dsn = env["app_dsn"], env["store_dsn"]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, note text)")
        conn.execute("INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 200) g")
        for _ in range(10):
            conn.execute("SELECT count(*) FROM orders").fetchone()  # 2000 rows read vs 200 written
        conn.execute("SELECT pg_stat_force_next_flush()")
    e2e.unset("sanvi_prometheus")
    return {"app_dsn": app_dsn, "store_dsn": store_dsn}


def _seed_history(store_dsn: str, at: datetime) -> None:
    """Three weekly samples of a filesystem filling 1 GiB a day (as disk_space_check keeps them)."""
    from sanvi_ops.core.store import ResultStore
    from sanvi_ops.tasks.disk_space_check.disk import Usage, save_samples

    ResultStore(store_dsn).migrate()
    gib = 1024**3
    for week in range(3):
        t = at - timedelta(days=7 * (3 - week))
        save_samples(
            store_dsn,
            f"disk{week}",
            [Usage("fs:db-1:/var/lib/postgresql", "c", "db-1", "l", (50 + 7 * week) * gib, 100 * gib, t)],
        )


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary, details FROM check_results WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {name: (status, summary, details) for name, status, summary, details in rows}


@pytest.mark.prometheus
def test_monthly_plan_with_chart_in_the_slack_thread(cap_env, e2e, slack_api, monkeypatch):
    server = e2e.prometheus()
    at = server.now
    _seed_history(cap_env["store_dsn"], at)

    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 18, 11, tzinfo=UTC), run_conf={"evaluate_at": at.isoformat()}
    )
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert all(s == "success" for s in states.values()), states  # warnings only: the run is green
    rows = _stored(cap_env["store_dsn"], dr.run_id)

    fs = rows["capacity.filesystem_growth[db-1:/var/lib/postgresql]"]
    assert fs[0] == "warning" and fs[2]["days_until_full"] < 90
    db = psycopg.conninfo.conninfo_to_dict(cap_env["app_dsn"])["dbname"]
    assert rows[f"capacity.table_growth[{db}/public.orders]"][0] == "ok"
    assert rows[f"capacity.database_growth[{db}]"][0] == "ok"
    # demo story: backend-1 CPU 96 % and db-1 memory 85 % at the end of the data
    assert rows["capacity.cpu_trend[backend-1]"][0] == "warning"
    assert rows["capacity.cpu_trend[frontend-1]"][0] == "ok"
    assert rows["capacity.memory_trend[db-1]"][0] == "warning"
    assert rows["capacity.autoscaling[frontend]"][0] == "ok"
    assert (
        rows["capacity.autoscaling[backend]"][0] == "warning"
        and "min 1 ≠ 2" in rows["capacity.autoscaling[backend]"][1]
    )
    assert (
        rows["capacity.read_write_ratio"][0] == "warning"
        and "read replica" in rows["capacity.read_write_ratio"][1]
    )
    assert rows["capacity.chart"][0] == "ok"
    assert (
        rows["rto_forecast"][0] == "warning"
        and "no recovery test with recorded phases" in rows["rto_forecast"][1]
    )

    with psycopg.connect(cap_env["store_dsn"]) as conn:
        (png,) = conn.execute(
            "SELECT png FROM performance_charts WHERE dag_id = %s AND run_id = %s", (DAG_ID, dr.run_id)
        ).fetchone()
    assert bytes(png).startswith(b"\x89PNG")
    summaries = [m for m in slack_api.messages if "Capacity Planning" in json.dumps(m)]
    assert len(summaries) == 1, slack_api.messages
    assert len(slack_api.files) == 1, slack_api.outcomes()
    shared = slack_api.files[0]
    assert shared["content"] == bytes(png) and shared["thread_ts"] == summaries[0]["ts"]

    from sanvi_ops.tasks.capacity_planning.airflow_tasks import attach_chart

    assert attach_chart({"dag_run": dr})["reason"] == "already shared"  # a retry posts nothing


def _seed_recovery_history(store_dsn: str, app_dsn: str, at: datetime) -> None:
    """Issue 18: a restore test with its phases (34 min, download the largest) a day ago, and the
    application database growing by 20 % of today's size a week: the hour is crossed in month 1."""
    from sanvi_ops.core.rto_forecast import PhaseTimer
    from sanvi_ops.core.store import ResultStore
    from sanvi_ops.tasks.backup_testing import restore
    from sanvi_ops.tasks.disk_space_check.disk import Usage, save_samples

    ResultStore(store_dsn).migrate()
    db = psycopg.conninfo.conninfo_to_dict(app_dsn)["dbname"]
    with psycopg.connect(app_dsn) as conn:
        size = float(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
    for week, share in enumerate((0.4, 0.6, 0.8)):
        t = at - timedelta(days=7 * (3 - week))
        save_samples(
            store_dsn, f"db{week}", [Usage(f"postgres:{db}", "c", "postgres", "l", size * share, None, t)]
        )
    timer = PhaseTimer()
    for name, seconds in (
        ("prepare", 1),
        ("download", 1500),
        ("extract", 500),
        ("verify", 60),
        ("start", 20),
    ):
        timer.add(name, seconds, int(size) if name in ("download", "extract") else None)
    outcome = restore.RestoreOutcome(
        results=[],
        backup_id="b1",
        started_at=at - timedelta(days=1),
        rto_seconds=2081,
        details={"phases": timer.phases},
    )
    restore.record_test(store_dsn, "backup_testing", "scheduled__week", outcome)


def test_without_prometheus_the_rest_still_plans(cap_env, slack_api):
    at = datetime(2026, 11, 18, 11, tzinfo=UTC)
    _seed_recovery_history(cap_env["store_dsn"], cap_env["app_dsn"], at)
    dr = load_dag(DAG_ID).test(logical_date=at)
    rows = _stored(cap_env["store_dsn"], dr.run_id)
    forecast = rows["rto_forecast"]
    assert (
        forecast[0] == "warning" and "in month 1" in forecast[1] and "largest phase: download" in forecast[1]
    )
    assert forecast[2]["source"].startswith("restore_test scheduled__week")
    assert rows["capacity.trends"][0] == "skipped" and "sanvi_prometheus" in rows["capacity.trends"][1]
    db = psycopg.conninfo.conninfo_to_dict(cap_env["app_dsn"])["dbname"]
    growth = rows[f"capacity.database_growth[{db}]"]
    assert growth[0] == "ok" and growth[2]["samples"] == 4  # three seeded + sampled now
    assert rows["capacity.autoscaling[backend]"][0] == "warning"
    assert all(str(ti.state) == "success" for ti in dr.get_task_instances())
    assert slack_api.files == []
