"""The store-down path's edge cases against the Slack stand-in and a real results store.

The spool here is a dict that round-trips JSON, standing in for the Airflow Variables the glue
uses (those need a running task: tests/e2e/test_store_outage.py drives the real thing through
``dag.test()``). What is real: the results store, the Slack Web API server, the sender.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from devstack.postgres import free_port
from sanvi_ops.core.config import load_config
from sanvi_ops.core.notify.slack import RetryPolicy, SlackSender, deliver_pending, make_client
from sanvi_ops.core.notify.store_down import announce, replay, spool_run
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore

if TYPE_CHECKING:
    from tests.fixtures.slack import SlackApi

pytestmark = pytest.mark.integration

DAG = "system_health_check"
FAST = RetryPolicy(max_retries=1, backoff_factor=0.01, max_retry_after=5)


class JsonSpool:
    """Keeps entries as JSON text, as the Variable-backed spool does."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}

    def save(self, key: str, entry: dict[str, Any]) -> None:
        self.data[key] = json.dumps(entry)

    def load(self, key: str) -> dict[str, Any] | None:
        return json.loads(self.data[key]) if key in self.data else None

    def load_all(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in self.data.items()}

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load_config().model_copy(update={"timezone": "UTC"})


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("spool"))
    s.migrate()
    return s


def _sender(api: SlackApi, base_url: str | None = None) -> SlackSender:
    client = make_client(api.token, base_url=base_url or api.base_url, timeout=5, policy=FAST)
    client.proxy = None
    return SlackSender(client)


def p1() -> CheckResult:
    return CheckResult(
        "redis.ping", Status.CRITICAL, "Redis did not answer PING", severity="P1", component="redis"
    )


def _spool(spool: JsonSpool, cfg, run: str, at: datetime):  # type: ignore[no-untyped-def]
    return spool_run(spool, cfg, DAG, run, at, [p1()], None, detected_at=at, store_error="connection refused")


def _p1_messages(api: SlackApi) -> list[dict]:
    return [m for m in api.messages if "Severity: P1" in m["text"]]


def test_slack_down_too_the_regular_incident_goes_out_after_the_replay(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    spool, at = JsonSpool(), datetime.now(UTC) - timedelta(hours=2)
    entry = _spool(spool, cfg, "run1", at)
    lines = announce(spool, entry, _sender(slack_api, f"http://127.0.0.1:{free_port()}/api/"))
    assert len(lines) == 2 and all("unreachable" in line for line in lines)
    assert {p["state"] for p in spool.load_all()[entry.spool_key]["posts"]} == {"failed"}

    report = replay(store, cfg, spool)
    assert report.replayed == [f"{DAG} run1"] and spool.data == {}
    (incident,) = store.open_incidents(DAG)
    assert incident.opened_at == at and incident.opened_run_id == "run1"
    assert deliver_pending(store, _sender(slack_api)).sent == 2
    (announced,) = _p1_messages(slack_api)
    assert announced["text"].startswith(f"[INCIDENT] {incident.ref} - Severity: P1")  # the regular one


def test_direct_post_in_doubt_is_looked_up_after_the_replay_not_reposted(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    spool, at = JsonSpool(), datetime.now(UTC)
    entry = _spool(spool, cfg, "run1", at)
    slack_api.fail_after_accept(504)  # the direct [INCIDENT] lands; its answer does not
    slack_api.fail_next(200, 1, error="missing_scope")  # and the lookup is refused
    announce(spool, entry, _sender(slack_api))
    posts = {p["role"]: p for p in spool.load_all()[entry.spool_key]["posts"]}
    assert posts["incident:redis.ping"]["state"] == "sending" and posts["summary"]["state"] == "sent"
    assert len(_p1_messages(slack_api)) == 1

    announce(spool, entry, _sender(slack_api))  # a retried record task: found, not re-posted
    assert len(_p1_messages(slack_api)) == 1
    assert spool.load_all()[entry.spool_key]["posts"][0]["state"] == "sent"


def test_in_doubt_at_replay_time_is_resolved_by_the_outbox_lookup(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    spool, at = JsonSpool(), datetime.now(UTC)
    entry = _spool(spool, cfg, "run1", at)
    slack_api.fail_after_accept(504)
    slack_api.fail_next(200, 1, error="missing_scope")
    announce(spool, entry, _sender(slack_api))  # leaves the [INCIDENT] "sending"

    replay(store, cfg, spool)
    (incident,) = store.open_incidents(DAG)
    row = store.get_notification(f"incident:{incident.id}")
    assert row is not None and row.in_doubt and row.delivery_key == entry.posts[0].key
    report = deliver_pending(store, _sender(slack_api))
    assert report.recovered == 1 and report.left == 0
    assert len(_p1_messages(slack_api)) == 1 and len(slack_api.messages) == 2


def test_a_retried_record_keeps_its_spool_entry_and_posts_once(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    spool, at = JsonSpool(), datetime.now(UTC)
    first = _spool(spool, cfg, "run1", at)
    announce(spool, first, _sender(slack_api))
    again = _spool(spool, cfg, "run1", at + timedelta(minutes=1))  # the retry, a minute later
    assert again.detected_at == at and [p.key for p in again.posts] == [p.key for p in first.posts]
    assert announce(spool, again, _sender(slack_api)) == []
    assert len(slack_api.messages) == 2


def test_a_malformed_entry_is_kept_and_does_not_block_the_others(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    spool, at = JsonSpool(), datetime.now(UTC)
    spool.data["broken"] = json.dumps({"version": 1, "dag_id": DAG})
    spool.data["future"] = json.dumps({"version": 99})
    _spool(spool, cfg, "run1", at)
    report = replay(store, cfg, spool)
    assert report.replayed == [f"{DAG} run1"]
    assert sorted(spool.data) == ["broken", "future"] and len(report.skipped) == 2
    assert "malformed" in report.describe()
