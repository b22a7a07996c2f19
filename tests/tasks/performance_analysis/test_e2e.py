"""Performance Analysis end to end: ``dag.test()`` against PostgreSQL 18 with
pg_stat_statements, the demo Prometheus (evaluated at its ``now`` through the ``evaluate_at``
Param), the results store and a Slack-compatible server, all on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "performance_analysis"


@pytest.fixture
def perf_env(e2e, monkeypatch):
    env = e2e.connect(app_db=True)
    app_dsn, store_dsn = env["app_dsn"], env["store_dsn"]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer int, note text)")
        conn.execute("CREATE INDEX orders_customer_idx ON orders (customer)")
        conn.execute("INSERT INTO orders SELECT g, g % 10, 'n' || g FROM generate_series(1, 500) g")
    monkeypatch.delenv("SANVI_OPS_CONFIG", raising=False)
    e2e.unset("sanvi_prometheus")
    return {"app_dsn": app_dsn, "store_dsn": store_dsn}


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary, details FROM check_results WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {name: (status, summary, details) for name, status, summary, details in rows}


@pytest.mark.prometheus
def test_weekly_analysis_with_snapshot_chart_and_slack(perf_env, e2e, slack_api):
    server = e2e.prometheus()
    with psycopg.connect(perf_env["app_dsn"], autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        for i in range(30):
            conn.execute("SELECT count(*) FROM orders WHERE note LIKE %s", [f"%{i}%"]).fetchone()

    dag = load_dag(DAG_ID)
    at = server.now
    dr = dag.test(
        logical_date=datetime(2026, 11, 24, 10, 30, tzinfo=UTC), run_conf={"evaluate_at": at.isoformat()}
    )
    states = task_states(dr)
    assert all(s == "success" for s in states.values()), states  # warnings only: the run is green
    rows = _stored(perf_env["store_dsn"], dr.run_id)
    assert rows["service.error_rate"][0] == "warning" and "> 1 % for 5m" in rows["service.error_rate"][1]
    assert rows["service.latency_p95"][0] == "warning"
    assert rows["service.availability"][0] == "warning"
    assert rows["service.request_rate"][0] == "ok"
    assert rows["postgres.top_queries"][0] == "ok" and rows["postgres.top_queries"][2]["baseline"] == "none"
    assert rows["postgres.unused_indexes"][0] == "warning"
    assert rows["postgres.connection_pool"][0] == "ok"
    assert rows["service.chart"][0] == "ok" and rows["service.chart"][2]["png_bytes"] > 10_000

    with psycopg.connect(perf_env["store_dsn"]) as conn:
        (png,) = conn.execute("SELECT png FROM performance_charts WHERE run_id = %s", (dr.run_id,)).fetchone()
        snapshots = conn.execute("SELECT database, run_id FROM pg_statement_snapshots").fetchall()
    assert bytes(png).startswith(b"\x89PNG")
    assert snapshots == [("sanvi_app_db", dr.run_id)]

    summaries = [m for m in slack_api.messages if "Performance Analysis" in json.dumps(m)]
    assert len(summaries) == 1, slack_api.messages
    # The chart went into the summary's thread through Slack's external upload, once.
    assert len(slack_api.files) == 1, slack_api.outcomes()
    shared = slack_api.files[0]
    assert shared["content"] == bytes(png) and shared["filename"].endswith(".png")
    assert shared["thread_ts"] == summaries[0]["ts"] and shared["channel_id"] == summaries[0]["channel_id"]
    with psycopg.connect(perf_env["store_dsn"]) as conn:
        (file_id,) = conn.execute(
            "SELECT slack_file_id FROM performance_charts WHERE run_id = %s", (dr.run_id,)
        ).fetchone()
    assert file_id == shared["id"]
    from sanvi_ops.tasks.performance_analysis.airflow_tasks import attach_chart

    assert attach_chart({"dag_run": dr})["reason"] == "already shared"  # a retry posts nothing
    assert len(slack_api.files) == 1

    # Next week's run compares against this snapshot.
    dr2 = dag.test(
        logical_date=datetime(2026, 12, 1, 10, 30, tzinfo=UTC),
        run_conf={"evaluate_at": (at + timedelta(seconds=30)).isoformat()},
    )
    rows2 = _stored(perf_env["store_dsn"], dr2.run_id)
    assert rows2["postgres.top_queries"][2]["baseline"] == "last_week"


def test_without_pg_stat_statements_or_prometheus_says_what_to_do(perf_env, slack_api):
    dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 24, 10, 30, tzinfo=UTC))
    rows = _stored(perf_env["store_dsn"], dr.run_id)
    status, summary, _ = rows["postgres.pg_stat_statements"]
    assert status == "skipped" and "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in summary
    assert rows["service.connection"][0] == "skipped" and "sanvi_prometheus" in rows["service.connection"][1]
    assert rows["service.chart"][0] == "skipped"
    assert all(s == "success" for s in task_states(dr).values())
    assert any("CREATE EXTENSION" in json.dumps(m) for m in slack_api.messages)


@pytest.mark.prometheus
def test_red_run_still_gets_its_chart_and_stays_red(perf_env, e2e, slack_api, monkeypatch, tmp_path):
    """Availability held to 99.95 % is missed (critical): notify fails the run; the chart teardown
    still shares the chart and does not turn the run green."""
    import yaml

    server = e2e.prometheus()
    cfg = shipped_config()
    cfg["slos"]["availability_pct"] = 99.95
    path = tmp_path / "maintenance.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))

    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 24, 10, 30, tzinfo=UTC),
        run_conf={"evaluate_at": server.now.isoformat()},
    )
    states = task_states(dr)
    assert states["notify"] == "failed" and states["attach_chart"] == "success", states
    assert str(dr.state) == "failed"
    assert _stored(perf_env["store_dsn"], dr.run_id)["service.availability"][0] == "critical"
    assert len(slack_api.files) == 1
