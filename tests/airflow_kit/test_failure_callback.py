"""The failure callback every task carries: a crash is stored in the outbox and posted to Slack.

The context is what Airflow hands a callback (task instance, DAG run, exception); the store and
the Slack server are real.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import psycopg
import pytest

from sanvi_ops.airflow_kit.callbacks import on_task_failure
from sanvi_ops.airflow_kit.publish import FindingsReported

pytestmark = pytest.mark.integration


def _pg_conn(dsn: str) -> str:
    d = psycopg.conninfo.conninfo_to_dict(dsn)
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": d["host"],
            "port": int(d["port"]),
            "login": d["user"],
            "password": d["password"],
            "schema": d["dbname"],
        }
    )


@pytest.fixture
def callback_env(make_db, slack_api, monkeypatch):
    store_dsn = make_db("store")
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_OPS_STORE", _pg_conn(store_dsn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        json.dumps(
            {"conn_type": "slack", "password": slack_api.token, "extra": {"base_url": slack_api.base_url}}
        ),
    )
    return store_dsn


def _context(exc: BaseException, task_id: str = "check_postgres", try_number: int = 3) -> dict:
    return {
        "ti": SimpleNamespace(task_id=task_id, try_number=try_number, max_tries=2),
        "dag_run": SimpleNamespace(
            dag_id="system_health_check", run_id="scheduled__2026-11-27T09:00:00+00:00"
        ),
        "exception": exc,
    }


def test_crash_is_stored_then_posted_once_without_secrets(callback_env, slack_api):
    exc = RuntimeError("connection to server failed: host=db password=hunter2 dbname=sanvi")
    on_task_failure(_context(exc))
    on_task_failure(_context(exc))  # a callback that fires twice does not post twice

    assert len(slack_api.messages) == 1
    text = slack_api.messages[0]["text"]
    assert "system_health_check" in text and "check_postgres" in text and "RuntimeError" in text
    assert "try 3 of 3" in text  # 2 retries: the third try is the last (ti.max_tries counts retries)
    assert "hunter2" not in json.dumps(slack_api.messages[0])
    with psycopg.connect(callback_env) as conn:
        rows = conn.execute("SELECT kind, sent_at IS NOT NULL FROM notifications").fetchall()
    assert rows == [("failure", True)]


@pytest.mark.parametrize(
    ("try_number", "retries", "expected"), [(1, 0, "try 1 of 1"), (4, 3, "try 4 of 4"), (2, 3, "try 2 of 4")]
)
def test_try_count_reads_as_tries_not_retries(callback_env, slack_api, try_number, retries, expected):
    context = _context(RuntimeError("boom"), try_number=try_number)
    context["ti"].max_tries = retries
    on_task_failure(context)
    (message,) = slack_api.messages
    assert expected in message["text"] and "of 3 " not in message["text"]


def test_findings_failure_is_not_reported_twice(callback_env, slack_api):
    on_task_failure(_context(RuntimeError(f"{FindingsReported.__name__}: overall status critical"), "notify"))
    assert slack_api.messages == []


def test_store_down_posts_straight_to_slack(callback_env, slack_api, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_OPS_STORE",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": 1,
                "login": "x",
                "password": "y",
                "schema": "z",
            }
        ),
    )
    on_task_failure(_context(ValueError("boom")))
    assert len(slack_api.messages) == 1 and "ValueError" in slack_api.messages[0]["text"]


def test_slack_down_keeps_the_message_for_a_later_run(callback_env, slack_api):
    slack_api.fail_next(500, n=20)
    on_task_failure(_context(ValueError("boom")))  # never raises
    with psycopg.connect(callback_env) as conn:
        assert conn.execute("SELECT count(*) FROM notifications WHERE sent_at IS NULL").fetchone() == (1,)
