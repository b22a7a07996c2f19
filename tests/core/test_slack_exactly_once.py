"""Each outbox message reaches Slack exactly once, even when the answer to a post is lost.

Against the Slack stand-in (which can accept a post and then answer 504, stall past the client's
timeout or drop the connection) and real PostgreSQL results stores, one of which is stopped
between ``chat.postMessage`` and ``mark_sent``. Every test ends with one copy per message in the
channel, found again by its idempotency key (Block Kit ``metadata``) instead of posted twice.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devstack.postgres import LocalPostgres
from sanvi_ops.core.config import load_config
from sanvi_ops.core.notify.pipeline import process_run
from sanvi_ops.core.notify.slack import (
    METADATA_EVENT_TYPE,
    RetryPolicy,
    SlackSender,
    deliver_pending,
    make_client,
)
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore, StoreError

if TYPE_CHECKING:
    from tests.fixtures.slack import SlackApi

pytestmark = pytest.mark.integration

DAG = "system_health_check"
FAST = RetryPolicy(max_retries=2, backoff_factor=0.01, max_retry_after=5)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load_config().model_copy(update={"timezone": "UTC"})


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("once"))
    s.migrate()
    return s


@pytest.fixture(scope="module")
def stoppable_pg() -> Iterator[LocalPostgres]:
    """A cluster of its own that a test may stop and start (the session's server is shared)."""
    server = LocalPostgres(Path(tempfile.mkdtemp(prefix="sanvi-test-pg-")), password=secrets.token_hex(12))
    server.start()
    yield server
    server.destroy()


def _sender(api: SlackApi, timeout: float = 5) -> SlackSender:
    client = make_client(api.token, base_url=api.base_url, timeout=timeout, policy=FAST)
    client.proxy = None
    return SlackSender(client, connection_name="connection 'slack_api_default'")


def redis_down() -> CheckResult:
    return CheckResult(
        "redis.ping", Status.CRITICAL, "Redis did not answer PING", severity="P1", component="redis"
    )


def _record(store: ResultStore, cfg, run: str, results: list[CheckResult]):  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    return process_run(store, cfg, DAG, run, now, results, None, now=now)


def _keys(api: SlackApi) -> list[str]:
    return [m["metadata"]["event_payload"]["key"] for m in api.messages]


def test_every_post_carries_its_idempotency_key(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [redis_down()])
    assert deliver_pending(store, _sender(slack_api)).sent == 2
    rows = {m.dedupe_key: m for m in store.notifications(DAG)}
    for message in slack_api.messages:
        assert message["metadata"]["event_type"] == METADATA_EVENT_TYPE
    assert sorted(_keys(slack_api)) == sorted(str(m.delivery_key) for m in rows.values())
    assert all(m.sending_since is None and not m.in_doubt for m in rows.values())


@pytest.mark.parametrize("fault", ["504", "timeout", "reset"])
def test_answer_lost_after_slack_accepted_posts_once(
    store: ResultStore, slack_api: SlackApi, cfg, fault: str
) -> None:  # type: ignore[no-untyped-def]
    """A 504 (or a stall, or a dropped connection) after Slack accepted the post: the sender looks
    the message up by its key, finds it and marks it sent with that ts; nothing is re-posted."""
    _record(store, cfg, "run1", [redis_down()])
    if fault == "504":
        slack_api.fail_after_accept(504)
    elif fault == "timeout":
        slack_api.delay_after_accept(10)
    else:
        slack_api.reset_after_accept()
    report = deliver_pending(store, _sender(slack_api, timeout=1))
    assert (report.sent, report.recovered, report.failed, report.left) == (1, 1, 0, 0), report.errors

    assert len(slack_api.messages) == 2 and len(slack_api.posts()) == 2  # one post per message
    assert slack_api.post_outcomes()[0].startswith("posted_then_")
    assert "history" in slack_api.outcomes()
    (opened,) = store.open_incidents()
    incident = store.get_notification(f"incident:{opened.id}")
    assert incident is not None and incident.slack_ts == slack_api.messages[0]["ts"]
    assert incident.slack_channel == slack_api.messages[0]["channel_id"]


def test_a_5xx_before_accepting_is_posted_after_the_lookup(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [redis_down()])
    slack_api.fail_next(502, 1, only_posts=True)  # a gateway error; Slack never saw it
    report = deliver_pending(store, _sender(slack_api))
    assert (report.sent, report.recovered, report.left) == (2, 0, 0)
    assert slack_api.post_outcomes() == ["http_502", "posted", "posted"] and len(slack_api.messages) == 2


def test_lookup_impossible_keeps_the_message_instead_of_posting_blind(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [redis_down()])
    slack_api.fail_after_accept(504)
    slack_api.fail_next(200, 1, error="missing_scope")  # conversations.* refused: no history scope
    report = deliver_pending(store, _sender(slack_api))
    assert (report.sent, report.failed, report.left) == (0, 1, 2)
    assert len(slack_api.posts()) == 1  # not re-posted blind
    first = store.pending()[0]
    assert first.in_doubt and "missing_scope" in (first.last_error or "")
    assert "channels:history" in (first.last_error or "")

    fixed = deliver_pending(store, _sender(slack_api))  # scope granted: found, then the rest goes out
    assert (fixed.recovered, fixed.sent, fixed.left) == (1, 1, 0)
    assert len(slack_api.messages) == 2 and len(slack_api.posts()) == 2


def test_a_thread_reply_is_looked_up_in_its_thread(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    sender = _sender(slack_api)
    _record(store, cfg, "run1", [redis_down()])
    deliver_pending(store, sender)
    ok = CheckResult("redis.ping", Status.OK, "PONG", component="redis")
    _record(store, cfg, "run2", [ok])
    slack_api.fail_after_accept(504)  # the [RESOLVED] reply lands, its answer does not
    report = deliver_pending(store, sender)
    assert (report.recovered, report.sent, report.left) == (1, 1, 0)
    assert "replies" in slack_api.outcomes()
    resolved = [m for m in slack_api.messages if m["text"].startswith("[RESOLVED]")]
    assert len(resolved) == 1 and resolved[0]["thread_ts"] == slack_api.messages[0]["ts"]


def test_store_dies_between_post_and_mark_sent(stoppable_pg: LocalPostgres, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    """The post lands, then the results store goes away before ``mark_sent``: the row stays
    "sending"; once the store is back the next delivery finds the message in the channel."""
    name = f"once_{secrets.token_hex(3)}"
    stoppable_pg.create_database(name)
    store = ResultStore(stoppable_pg.dsn(name), connect_timeout=2)
    store.migrate()
    out = _record(store, cfg, "run1", [redis_down()])

    def die(_message: dict) -> None:
        slack_api.on_accept = None
        stoppable_pg.stop("immediate")

    slack_api.on_accept = die
    try:
        report = deliver_pending(store, _sender(slack_api))
        assert report.store_down and report.sent == 0 and not report.ok
        assert "cannot connect" in (report.stopped_by or "") or "failed" in (report.stopped_by or "")
        assert len(slack_api.messages) == 1  # the [INCIDENT] is in the channel, unrecorded
        with pytest.raises(StoreError):
            store.count_pending()
    finally:
        stoppable_pg.start()
    # LocalPostgres takes another port when the old one is still in TIME_WAIT: follow it.
    store = ResultStore(stoppable_pg.dsn(name), connect_timeout=2)

    incident_key = f"incident:{out.opened[0].lstrip('#')}"
    row = store.get_notification(incident_key)
    assert row is not None and row.in_doubt and row.sent_at is None

    again = deliver_pending(store, _sender(slack_api))  # the watchdog's or the next run's flush
    assert (again.recovered, again.sent, again.left) == (1, 1, 0)
    assert len(slack_api.messages) == 2 and len(slack_api.posts()) == 2
    incident = store.get_notification(incident_key)
    assert incident is not None and incident.slack_ts == slack_api.messages[0]["ts"]
    assert [m["text"].split(" ")[0] for m in slack_api.messages] == ["[INCIDENT]", ":rotating_light:"]


@pytest.mark.parametrize(
    ("retry_after", "min_wait"),
    [("1.5", 1.5), ("-1", 1.0), ("garbage", 1.0), ("http-date", 0.0)],
)
def test_odd_retry_after_is_honoured_not_raised(
    store: ResultStore, slack_api: SlackApi, cfg, retry_after: str, min_wait: float
) -> None:  # type: ignore[no-untyped-def]
    from email.utils import format_datetime

    if retry_after == "http-date":
        retry_after = format_datetime(datetime.now(UTC), usegmt=True)
    _record(store, cfg, "run1", [CheckResult("redis.ping", Status.OK, "PONG")])
    slack_api.fail_next(429, 1, retry_after=retry_after)
    report = deliver_pending(store, _sender(slack_api))
    assert report.sent == 1 and report.left == 0
    first, second = slack_api.requests
    assert (first.outcome, second.outcome) == ("http_429", "posted")
    assert second.at - first.at >= min_wait


def test_rate_limit_that_never_ends_is_recorded_on_the_message(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [CheckResult("redis.ping", Status.OK, "PONG")])
    slack_api.fail_next(429, 3, retry_after="0.1")
    report = deliver_pending(store, _sender(slack_api))  # never raises
    assert (report.sent, report.failed, report.left) == (0, 1, 1)
    row = store.pending()[0]
    assert "HTTP 429, Retry-After 0.1 s" in (row.last_error or "") and row.attempts == 1
    assert not row.in_doubt  # a 429 is a refusal: the next run posts without a lookup

    slack_api.fail_next(429, 3, retry_after="Someday")
    deliver_pending(store, _sender(slack_api))
    row = store.pending()[0]
    assert "Retry-After 'Someday' unreadable, 1 s assumed" in (row.last_error or "")
