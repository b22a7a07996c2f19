"""A deployment's ``[api] base_url`` (``AIRFLOW__API__BASE_URL``) is the start of the run link in Slack.

Through the real path a run takes: ``record_run`` renders the summary into the outbox of a real
results store, ``deliver`` posts it to the Slack-compatible test server; the environment variable is
read by Airflow's own configuration, as in docker-compose.yaml and the Helm values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sanvi_ops.core.results import CheckResult, Status
from tests.fixtures.connections import pg_conn, slack_conn

pytestmark = pytest.mark.integration

DAG_ID = "system_health_check"
RUN_ID = "manual__2026-12-03T10:00:00+00:00"
BASE_URL = "https://airflow.sanvi.example.com/ops"


@pytest.fixture
def deployment(make_db, slack_api, monkeypatch):
    from sanvi_ops.core.config import clear_config_cache, load_config

    clear_config_cache()
    cfg = load_config()
    monkeypatch.setenv(f"AIRFLOW_CONN_{cfg.connections.store.upper()}", pg_conn(make_db("store")))
    monkeypatch.setenv(f"AIRFLOW_CONN_{cfg.connections.slack.upper()}", slack_conn(slack_api))
    return slack_api


@pytest.mark.parametrize("configured", [BASE_URL, BASE_URL + "/"])
def test_the_run_link_in_slack_starts_with_base_url(deployment, monkeypatch, configured):
    from sanvi_ops.airflow_kit.publish import deliver, record_run

    monkeypatch.setenv("AIRFLOW__API__BASE_URL", configured)
    result = CheckResult(check="production.backend", status=Status.OK, summary="200 in 12 ms")
    record_run(DAG_ID, RUN_ID, datetime(2026, 12, 3, 10, tzinfo=UTC), [result])
    deliver(DAG_ID)

    (message,) = deployment.messages
    posted = json.dumps(message)
    link = f"{BASE_URL}/dags/{DAG_ID}/runs/manual__2026-12-03T10%3A00%3A00%2B00%3A00"
    assert link in posted, posted
    assert "localhost" not in posted and "//dags" not in posted
