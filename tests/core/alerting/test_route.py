"""The plugin's ``POST /sanvi-ops/alertmanager`` on a real HTTP server (uvicorn, 127.0.0.1), against
the real results store and the Slack sink: refusals store nothing, repeats post once, a store that
is down answers 503 and the retry loses nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from devstack.postgres import free_port
from sanvi_ops.core.alerting.intake import DAG_ID, MAX_BODY_BYTES
from sanvi_ops.core.store import ResultStore
from tests.core.alerting.payloads import CPU_LABELS, alert, encode, notification
from tests.fixtures.alertmanager import TOKEN, IntakeServer, intake_env, wait_for_message
from tests.fixtures.connections import conn_env

pytestmark = pytest.mark.integration
EMPTY = {"check_results": 0, "notifications": 0, "incidents": 0}


@pytest.fixture
def store(make_db: Callable[[str], str], slack_api: object, monkeypatch: pytest.MonkeyPatch) -> ResultStore:
    s = ResultStore(make_db("am_route"))
    s.migrate()
    for key, value in intake_env(s.dsn, slack_api).items():
        monkeypatch.setenv(key, value)
    return s


def _post(
    server: IntakeServer, body: bytes, token: str | None = TOKEN, scheme: str = "Bearer"
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0"}
    if token is not None:
        headers["Authorization"] = f"{scheme} {token}".strip()
    return httpx.post(server.url, content=body, headers=headers, timeout=30, trust_env=False)


def _drained(store: ResultStore, timeout: float = 10) -> bool:
    """Whether the outbox empties (a message is marked sent just after Slack accepted it)."""
    deadline = time.monotonic() + timeout
    while store.count_pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    return store.count_pending() == 0


@pytest.mark.parametrize(
    ("token", "scheme"),
    [(None, "Bearer"), ("wrong", "Bearer"), ("", "Bearer"), (TOKEN, "Basic"), (TOKEN + "x", "Bearer")],
)
def test_bad_or_missing_token_is_401_and_stores_nothing(
    store: ResultStore, intake_server: IntakeServer, token: str | None, scheme: str
) -> None:
    response = _post(intake_server, encode(notification()), token, scheme)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert store.table_counts() == EMPTY


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{", 400, "body: not JSON"),
        (
            encode(notification(version="3")),
            400,
            "version: Alertmanager webhook payload version '4' expected",
        ),
        (
            encode(notification(alert(labels={"severity": "critical"}))),
            400,
            "alerts[0].labels.alertname: required",
        ),
        (b"x" * (MAX_BODY_BYTES + 1), 413, "more than the 1048576 bytes accepted"),
    ],
    ids=["not-json", "version-3", "no-alertname", "huge"],
)
def test_malformed_body_is_refused_and_stores_nothing(
    store: ResultStore, intake_server: IntakeServer, body: bytes, status: int, detail: str
) -> None:
    response = _post(intake_server, body)
    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert store.table_counts() == EMPTY


def test_intake_without_its_connection_answers_503(
    store: ResultStore, intake_server: IntakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SANVI_ALERTMANAGER")
    response = _post(intake_server, encode(notification()))
    assert response.status_code == 503
    assert "'sanvi_alertmanager' is not defined" in response.json()["detail"]
    assert store.table_counts() == EMPTY


def test_firing_posts_incident_once_and_resolved_in_thread(
    store: ResultStore, intake_server: IntakeServer, slack_api
) -> None:
    first = _post(intake_server, encode(notification()))
    assert first.status_code == 200, first.text
    assert len(first.json()["opened"]) == 1
    incident = wait_for_message(slack_api, r"^\[INCIDENT\] #\d+ - Severity: P2", timeout=15)
    for _ in range(3):  # Alertmanager's repeats and retries
        again = _post(intake_server, encode(notification()))
        assert again.status_code == 200 and len(again.json()["deduplicated"]) == 1
    resolved_body = encode(notification(alert("resolved", ends_at="2026-12-03T13:58:00Z")))
    assert _post(intake_server, resolved_body).status_code == 200
    resolved = wait_for_message(slack_api, r"^\[RESOLVED\]", timeout=15)
    assert resolved["thread_ts"] == incident["ts"]
    time.sleep(0.5)
    assert [m["text"].split(" ", 1)[0] for m in slack_api.messages] == ["[INCIDENT]", "[RESOLVED]"]
    assert store.open_incidents(DAG_ID) == [] and _drained(store)


def test_store_down_answers_503_and_the_retry_loses_nothing(
    store: ResultStore, intake_server: IntakeServer, slack_api, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = intake_env(store.dsn, slack_api)["AIRFLOW_CONN_SANVI_OPS_STORE"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_OPS_STORE",
        conn_env("postgres", host="127.0.0.1", port=free_port(), login="x", password="x", schema="x"),
    )
    down = _post(intake_server, encode(notification()))
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "30"
    assert "results store unavailable" in down.json()["detail"]
    assert slack_api.messages == []
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_OPS_STORE", real)  # the store is back; Alertmanager retries
    assert _post(intake_server, encode(notification())).status_code == 200
    wait_for_message(slack_api, r"^\[INCIDENT\]", timeout=15)
    assert len(store.open_incidents(DAG_ID)) == 1


def test_slack_down_leaves_the_incident_in_the_outbox(
    store: ResultStore, intake_server: IntakeServer, slack_api
) -> None:
    slack_api.fail_next(500, n=20)
    response = _post(intake_server, encode(notification()))
    assert response.status_code == 200  # recorded: Alertmanager must not retry for Slack's sake
    deadline = time.monotonic() + 15
    while not slack_api.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)
    (message,) = store.notifications()
    assert message.kind == "incident" and message.sent_at is None  # the watchdog delivers it later
    assert len(store.open_incidents(DAG_ID)) == 1


def test_concurrent_notifications_are_all_delivered_at_once(
    store: ResultStore, intake_server: IntakeServer, slack_api
) -> None:
    """Two groups flushed at the same moment: the second delivery waits for the first's lock
    instead of leaving its [INCIDENT] to the watchdog."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [
        encode(notification(alert(labels={**CPU_LABELS, "instance": f"backend-{i}"}, fingerprint=f"{i:04x}")))
        for i in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        statuses = [r.status_code for r in pool.map(lambda b: _post(intake_server, b), bodies)]
    assert statuses == [200] * 4
    deadline = time.monotonic() + 15
    while len(slack_api.messages) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(m["text"].split(" - Service: ")[1].split("\n")[0] for m in slack_api.messages) == [
        f"SanviCpuCritical[backend-{i}]" for i in range(4)
    ]
    assert _drained(store)


def test_store_not_migrated_answers_503_naming_the_command(
    make_db: Callable[[str], str], slack_api, intake_server: IntakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = make_db("am_bare")
    for key, value in intake_env(bare, slack_api).items():
        monkeypatch.setenv(key, value)
    response = _post(intake_server, encode(notification()))
    assert response.status_code == 503
    assert "schema is behind this code" in response.json()["detail"]
    assert "migrate" in response.json()["detail"]
