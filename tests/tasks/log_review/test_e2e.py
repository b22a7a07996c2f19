"""The Log Review end to end: ``dag.test()`` with CloudWatch Logs on the moto server, the
application database and the results store on real PostgreSQL, Slack on the test server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag
from tests.tasks.log_review.test_logs_cloudwatch_aws import _put

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "log_review"


@pytest.fixture
def log_env(e2e, boto_client, tmp_path, monkeypatch):
    cfg = shipped_config()
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    store_dsn = e2e.connect(app_db=True, aws=True)["store_dsn"]
    return {
        "store_dsn": store_dsn,
        "groups": cfg["tasks"]["log_review"]["settings"]["log_groups"],
        "logs": boto_client("logs"),
    }


def _rows(dsn: str, run_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return {
            name: (status, summary)
            for name, status, summary in conn.execute(
                "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            ).fetchall()
        }


def test_review_reports_signatures_then_calls_out_a_new_one(log_env, slack_api) -> None:
    frontend, backend = log_env["groups"]
    logs = log_env["logs"]
    # moto refuses events older than 14 days: the runs are for "now".
    day1 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    _put(logs, frontend, [(day1 - timedelta(minutes=i), f"INFO GET / 200 in {i} ms") for i in range(50)])
    _put(
        logs,
        backend,
        [(day1 - timedelta(minutes=i), f"INFO GET /api/health 200 in {i} ms") for i in range(300)]
        + [
            (day1 - timedelta(minutes=5 + i), f"ERROR timeout after {100 + i} ms for order {i}")
            for i in range(2)
        ],
    )

    dr = load_dag(DAG_ID).test(logical_date=day1)
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert all(s == "success" for s in states.values()), states
    rows = _rows(log_env["store_dsn"], dr.run_id)
    assert rows[f"logs.error_rate[{backend}]"][0] == "ok"  # 2 of 302 events = 0.66 % < 1 %
    assert rows[f"logs.error_rate[{frontend}]"][0] == "ok"
    assert (
        rows[f"logs.signatures[{backend}]"][0] == "ok"
        and "baseline" in rows[f"logs.signatures[{backend}]"][1]
    )
    assert rows["postgres.server_log"][0] == "skipped"
    assert any("Log Review" in json.dumps(m) for m in slack_api.messages)

    day2 = day1 + timedelta(minutes=30)
    _put(
        logs,
        backend,
        [(day2 - timedelta(minutes=1), "ERROR payment gateway 502 for cart 77")],
        stream="app-2",
    )
    dr2 = load_dag(DAG_ID).test(logical_date=day2)
    rows2 = _rows(log_env["store_dsn"], dr2.run_id)
    status, summary = rows2[f"logs.signatures[{backend}]"]
    assert status == "warning" and "1 NEW since last week" in summary and "payment gateway" in summary
    with psycopg.connect(log_env["store_dsn"]) as conn:
        stored = conn.execute("SELECT count(*) FROM log_signatures WHERE source = %s", (backend,)).fetchone()[
            0
        ]
    assert stored == 2


def _details(dsn: str, run_id: str) -> dict[str, tuple[str, dict]]:
    with psycopg.connect(dsn) as conn:
        return {
            name: (status, details)
            for name, status, details in conn.execute(
                "SELECT check_name, status, details FROM check_results WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            ).fetchall()
        }


def test_manual_run_params_narrow_the_review(log_env) -> None:
    """Trigger-form Params: ``checks`` leaves the server log out (reported as skipped),
    ``log_groups`` reviews one group, ``hours`` shortens the window; the defaults (a scheduled
    run) review everything over 24 h."""
    frontend, backend = log_env["groups"]
    logs = log_env["logs"]
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    _put(logs, frontend, [(end - timedelta(minutes=i), f"INFO GET / 200 in {i} ms") for i in range(20)])
    _put(
        logs,
        backend,
        [(end - timedelta(minutes=i), f"INFO GET /api/health 200 in {i} ms") for i in range(100)]
        + [
            (end - timedelta(minutes=30), "ERROR timeout after 100 ms for order 1"),
            (end - timedelta(hours=5), "ERROR disk quota exceeded on node 3"),
        ],
    )
    manual = load_dag(DAG_ID).test(
        logical_date=end,
        run_conf={"checks": ["review_cloudwatch_logs"], "log_groups": [backend], "hours": 2},
    )
    rows = _details(log_env["store_dsn"], manual.run_id)
    assert rows[f"logs.error_rate[{backend}]"][1]["errors"] == 1  # the 5 h old error is outside 2 h
    assert not [name for name in rows if frontend in name], rows
    status, details = rows["review_postgres_log.not_selected"]
    assert status == "skipped" and details["selected"] == ["review_cloudwatch_logs"]
    assert "postgres.server_log" not in rows

    scheduled_like = load_dag(DAG_ID).test(logical_date=end + timedelta(minutes=1))
    rows = _details(log_env["store_dsn"], scheduled_like.run_id)
    assert rows[f"logs.error_rate[{backend}]"][1]["errors"] == 2
    assert f"logs.error_rate[{frontend}]" in rows and "postgres.server_log" in rows
    assert not [name for name in rows if name.endswith(".not_selected")], rows
