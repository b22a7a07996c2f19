"""The Cost Optimization end to end: ``dag.test()`` against servers on 127.0.0.1.

AWS is the moto server, seeded with idle and in-use resources; moto tracks no costs, so the two
quarters' Cost Explorer answers are queued through its ``/moto-api/static/ce`` endpoint. The
results store is real PostgreSQL and Slack the Slack-compatible test server.
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
from tests.tasks.cost_optimization.test_cost_aws import seed_idle, seed_quarters

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "cost_optimization"


@pytest.fixture
def cost_env(e2e, boto_client, tmp_path, monkeypatch):
    cfg = shipped_config()
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))

    env = e2e.connect(app_db=True, aws=True)
    seed_quarters(env["aws_endpoint"])
    ids = seed_idle(boto_client("ec2"), boto_client("elbv2"))

    return {"store_dsn": env["store_dsn"], "ids": ids}


def test_spend_and_idle_resources_are_stored_and_reported(cost_env, slack_api) -> None:
    # moto stamps snapshots with the real time: a logical date 40 days on makes them old
    logical = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    # The Finance & DevOps sign-off is answered through the API in tests/e2e/test_signoff_api.py.
    dr = load_dag(DAG_ID).test(logical_date=logical, mark_success_pattern="sign_off")
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert all(s == "success" for s in states.values()), states  # warnings only: the run stays green

    with psycopg.connect(cost_env["store_dsn"]) as conn:
        rows = {
            name: (status, observed, details)
            for name, status, observed, details in conn.execute(
                "SELECT check_name, status, observed, details FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        }
    ids = cost_env["ids"]
    idle = {n for n, (s, _, _) in rows.items() if s == "warning" and not n.startswith("cost.spend")}
    assert idle == {
        f"cost.unattached_volume[{ids['free_volume']}]",
        f"cost.stopped_instance[{ids['stopped']}]",
        "cost.idle_load_balancer[idle-alb]",
        f"cost.old_snapshot[{ids['snapshot']}]",
    }
    assert rows[f"cost.unattached_volume[{ids['free_volume']}]"][2]["monthly_cost_usd"] == 8.0
    assert rows["cost.spend_increase[Amazon EC2]"][0] == "warning"
    assert rows["cost.spend"][0] == "ok"
    savings = rows["cost.potential_savings"]
    assert savings[0] == "ok" and savings[2]["idle_resources"] == 4
    assert savings[1] == pytest.approx(sum(rows[n][2]["monthly_cost_usd"] for n in idle), abs=0.01)

    texts = [json.dumps(m) for m in slack_api.messages]
    assert any("Cost Optimization" in t for t in texts), texts
