"""The System Health Check end to end: ``dag.test()`` against real servers on 127.0.0.1.

PostgreSQL (application DB + results store), Redis, moto (S3/ECS/RDS/ElastiCache), Prometheus
(when installed), a Slack-Web-API-compatible server, a stand-in for the application's HTTP
endpoints and one for Airflow's own health endpoint (``/api/v2/monitor/health``). Asserts what was stored and what Slack received, and that re-running the same run
duplicates nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.connections import conn_env
from tests.fixtures.e2e import load_dag, task_states
from tests.fixtures.ops_monitor import airflow_health_body

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "system_health_check"


@pytest.fixture
def health_env(
    redis_server,
    e2e,
    app,
    tmp_path,
    monkeypatch,
    ops_monitor,
):
    """Connections and a config pointing every component at the local servers."""
    from devstack.aws_seed import seed_demo

    cfg = shipped_config()
    cfg["tasks"]["system_health_check"]["settings"]["endpoints"] = [
        {
            "name": f"production-{c}",
            "url": f"{app.url}/production{p}",
            "environment": "production",
            "component": c,
        }
        for c, p in (("frontend", "/"), ("backend", "/api/health"))
    ]
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    env = e2e.connect(app_db=True, aws=True)
    seed_demo(env["aws_endpoint"])  # the names the configuration expects
    e2e.set(
        "sanvi_redis",
        conn_env("redis", host="127.0.0.1", port=redis_server.port, password=redis_server.password),
    )
    # Airflow's health endpoint: a server answering in Airflow 3's shape, healthy unless a test says.
    ops_monitor.health_body = airflow_health_body()
    e2e.set(
        "sanvi_airflow_api", conn_env("http", host="127.0.0.1", port=ops_monitor.server.port, schema="http")
    )
    # Prometheus is opted into by the test that wants it (its demo data has a hot CPU).
    e2e.unset("sanvi_prometheus")
    return {"store_dsn": env["store_dsn"], "config": cfg}


def _stored(store_dsn: str) -> list[tuple]:
    with psycopg.connect(store_dsn) as conn:
        return conn.execute(
            "SELECT run_id, check_name, status, summary FROM check_results WHERE dag_id = %s ORDER BY check_name",
            (DAG_ID,),
        ).fetchall()


def test_healthy_stack_reports_ok_and_rerun_duplicates_nothing(health_env, slack_api):
    dag = load_dag(DAG_ID)
    logical = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    dr = dag.test(logical_date=logical)
    states = task_states(dr)
    rows = _stored(health_env["store_dsn"])
    assert all(s == "success" for s in states.values()), [r[1:] for r in rows if r[2] != "ok"]

    checks = {name: status for _run, name, status, _summary in rows}
    assert {"postgres.connect", "redis.ping"} <= set(checks) or len(checks) >= 8, checks
    assert not [c for c, s in checks.items() if s in ("critical", "error")], checks
    assert {
        checks[f"airflow.{c}"] for c in ("api", "metadatabase", "scheduler", "triggerer", "dag_processor")
    } == {"ok"}
    run_ids = {run for run, _c, _s, _summary in rows}
    assert len(run_ids) == 1

    summaries = [m for m in slack_api.messages if "System Health Check" in json.dumps(m)]
    assert len(summaries) == 1, slack_api.messages
    body = json.dumps(summaries[0])
    assert "DevOps" in body and run_ids.pop() in body.replace("%3A", ":").replace("%2B", "+")
    for secret in (health_env["store_dsn"].split("password=")[1].split()[0], "testing"):
        assert secret not in body

    # A second run stores its own records, once each, and posts its own summary, once.
    dr2 = dag.test(logical_date=logical)
    assert dr2.run_id != dr.run_id
    rows2 = _stored(health_env["store_dsn"])
    per_run = Counter(run for run, _c, _s, _summary in rows2)
    assert per_run == {dr.run_id: len(rows), dr2.run_id: len(rows)}
    assert len({(run, check) for run, check, _s, _summary in rows2}) == len(rows2)
    assert len([m for m in slack_api.messages if "System Health Check" in json.dumps(m)]) == 2

    # A retried record/notify of the same run (what Airflow does on a retry) duplicates nothing.
    from sanvi_ops.airflow_kit.publish import deliver, record_run
    from sanvi_ops.core.store import ResultStore

    results = ResultStore(health_env["store_dsn"]).results_for_run(DAG_ID, dr2.run_id)
    sent_before = len(slack_api.messages)
    record_run(DAG_ID, dr2.run_id, logical, results)
    deliver(DAG_ID)
    assert _stored(health_env["store_dsn"]) == rows2
    assert len(slack_api.messages) == sent_before, "a retry of the same run re-posted its summary"


def test_dead_component_opens_incident_then_resolves(health_env, slack_api, app):
    dag = load_dag(DAG_ID)
    app.behaviour.status["/production/api/health"] = 503
    dr = dag.test(logical_date=datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    states = task_states(dr)
    assert states["notify"] == "failed", states  # the run is red because a result is critical
    assert all(s == "success" for t, s in states.items() if t != "notify"), states

    texts = [m.get("text", "") for m in slack_api.messages]
    incident = [t for t in texts if t.startswith("[INCIDENT]")]
    assert len(incident) == 1, texts
    assert "Severity: P1" in incident[0] and "production-backend" in incident[0]

    app.behaviour.status.clear()
    dag.test(logical_date=datetime(2026, 11, 29, 9, 0, tzinfo=UTC))
    resolved = [m for m in slack_api.messages if m.get("text", "").startswith("[RESOLVED]")]
    assert len(resolved) == 1
    incident_msg = next(m for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]"))
    assert resolved[0].get("thread_ts") == incident_msg["ts"]


def test_host_metrics_from_prometheus_are_graded_and_stored(health_env, e2e, slack_api):
    """The demo series: backend-1 CPU > 90 % for 20 min (critical), db-1 memory 85 % for 30 min."""
    e2e.prometheus()
    dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    rows = {name: status for _run, name, status, _summary in _stored(health_env["store_dsn"])}
    assert rows["host.cpu[backend-1]"] == "critical"
    assert rows["host.memory[db-1]"] == "warning"
    assert rows["host.cpu[frontend-1]"] == "ok"
    assert task_states(dr)["notify"] == "failed"
    assert any(
        m.get("text", "").startswith("[INCIDENT]") and "backend-1" in m["text"] for m in slack_api.messages
    )


def test_no_prometheus_connection_is_a_not_configured_warning(health_env, slack_api):
    """A deployment without Prometheus says so: a warning naming the connection, never green."""
    load_dag(DAG_ID).test(logical_date=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    rows = {name: (status, summary) for _run, name, status, summary in _stored(health_env["store_dsn"])}
    status, summary = rows["host_metrics.connection"]
    assert status == "warning", rows
    assert "not configured" in summary and "sanvi_prometheus" in summary
    assert "AIRFLOW_CONN_SANVI_PROMETHEUS" in summary
    assert rows["slack.auth"][0] == "ok"  # the Slack stand-in accepted the token (auth.test)


def test_no_airflow_api_and_no_slack_connection_are_not_configured_warnings(health_env, monkeypatch):
    """Without the Airflow-API and Slack connections the run says both are not configured."""
    monkeypatch.delenv("AIRFLOW_CONN_SANVI_AIRFLOW_API")
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_API_DEFAULT")
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 12, 1, 10, 0, tzinfo=UTC),
        run_conf={"checks": ["check_airflow", "check_slack"]},
    )
    rows = {name: (status, summary) for _run, name, status, summary in _stored(health_env["store_dsn"])}
    assert rows["airflow.connection"][0] == "warning" and "sanvi_airflow_api" in rows["airflow.connection"][1]
    status, summary = rows["slack.connection"]
    assert status == "warning" and "not configured" in summary and "slack_api_default" in summary
    assert "outbox" in summary
    # Warnings: the run itself is not red, and the summary (kept in the outbox) names them.
    assert task_states(dr)["notify"] == "success"
    with psycopg.connect(health_env["store_dsn"]) as conn:
        outbox = " ".join(
            str(r) for r in conn.execute("SELECT text, blocks FROM notifications WHERE kind = 'summary'")
        )
    assert "not configured" in outbox


def test_unhealthy_airflow_scheduler_is_a_p1_incident(health_env, slack_api, ops_monitor):
    """Only the airflow component is checked (the trigger form's Checks param)."""
    ops_monitor.health_body = airflow_health_body(scheduler="unhealthy")
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 12, 2, 9, 0, tzinfo=UTC), run_conf={"checks": ["check_airflow"]}
    )
    rows = {name: status for _run, name, status, _summary in _stored(health_env["store_dsn"])}
    assert rows["airflow.scheduler"] == "critical" and rows["airflow.triggerer"] == "ok"
    assert rows["check_postgres.not_selected"] == rows["check_aws.not_selected"] == "skipped"
    assert task_states(dr)["notify"] == "failed"
    incident = [m["text"] for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
    assert len(incident) == 1 and "Severity: P1 - Service: airflow" in incident[0]
