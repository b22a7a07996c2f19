"""The Architecture Review end to end: ``dag.test()`` against servers on 127.0.0.1.

AWS is the moto server seeded with the demo stack and the governance resources (compliant and
not: see :func:`devstack.aws_seed.seed_governance`); the results store is real
PostgreSQL and Slack the Slack-compatible test server. Two quarters run one after the other:
the second compares its inventory with the one the first stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from devstack.aws_seed import LEGACY_BUCKET, seed_demo
from tests.fixtures.e2e import load_dag

pytestmark = pytest.mark.e2e

DAG_ID = "architecture_review"


@pytest.fixture
def arch_env(e2e):
    env = e2e.connect(aws=True)
    seed_demo(env["aws_endpoint"], governance=True)
    return env["store_dsn"]


def _rows(dsn: str, run_id: str) -> dict[str, tuple[str, dict]]:
    with psycopg.connect(dsn) as conn:
        return {
            name: (status, details)
            for name, status, details in conn.execute(
                "SELECT check_name, status, details FROM check_results WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, run_id),
            ).fetchall()
        }


def test_two_quarters_inventory_findings_and_changes(arch_env, boto_client, slack_api) -> None:
    dag = load_dag(DAG_ID)
    first = dag.test(logical_date=datetime(2026, 7, 16, 11, tzinfo=UTC), mark_success_pattern="sign_off")
    states = {ti.task_id: str(ti.state) for ti in first.get_task_instances()}
    assert all(s == "success" for s in states.values()), states  # warnings only: the run stays green

    rows = _rows(arch_env, first.run_id)
    assert {n for n, (s, _) in rows.items() if s != "ok"} == {
        "architecture.different[rds:sanvi-production-db]",
        f"architecture.extra[s3:{LEGACY_BUCKET}]",
        "architecture.missing[subnet:sanvi-production/us-east-1b/private]",
    }
    inventory = rows["architecture.inventory"][1]
    assert inventory["counts"]["ecs_services"] == 2 and inventory["unavailable"] == []
    assert rows["architecture.changes"][1] == {} and rows["architecture.changes"][0] == "ok"

    boto_client("s3").create_bucket(Bucket="sanvi-new-reports")
    second = dag.test(logical_date=datetime(2026, 10, 15, 11, tzinfo=UTC), mark_success_pattern="sign_off")
    rows = _rows(arch_env, second.run_id)
    changes = rows["architecture.changes"][1]
    assert changes["previous_run_id"] == first.run_id
    assert changes["added"] == ["buckets:sanvi-new-reports"] and changes["removed"] == []
    assert rows["architecture.extra[s3:sanvi-new-reports]"][0] == "warning"

    texts = [json.dumps(m) for m in slack_api.messages]
    assert any("Architecture Review" in t for t in texts), texts
