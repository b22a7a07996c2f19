"""Outbox → Slack against a Slack-Web-API-compatible server on 127.0.0.1 and a real PostgreSQL.

Covers the issue's delivery rules: outbox first, 429 ``Retry-After`` honoured, 5xx / connection
errors / timeouts retried with bounded backoff, ``invalid_auth`` not retried, undelivered messages
sent by a later run in order, ``[RESOLVED]`` in the incident's thread, no double sending, and the
outbox as the sink when there is no Slack connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from devstack.postgres import free_port
from sanvi_ops.core.config import load_config
from sanvi_ops.core.notify import render
from sanvi_ops.core.notify.pipeline import process_failure, process_run
from sanvi_ops.core.notify.slack import DeliveryReport, RetryPolicy, SlackSender, deliver_pending, make_client
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore

if TYPE_CHECKING:
    from tests.fixtures.slack import SlackApi

# Until tests/conftest.py lists it: registers the `slack_api` fixture (a no-op once it does).

pytestmark = pytest.mark.integration

DAG = "system_health_check"
NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
RUN_URL = "http://127.0.0.1:8080/dags/system_health_check/runs/{run}"
FAST = RetryPolicy(max_retries=2, backoff_factor=0.01, max_retry_after=5)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    """The project's config, read in UTC so the expected times below are plain."""
    return load_config().model_copy(update={"timezone": "UTC"})


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("outbox"))
    s.migrate()
    return s


def _sender(
    api: SlackApi, *, token: str | None = None, timeout: float = 5, base_url: str | None = None
) -> SlackSender:
    client = make_client(token or api.token, base_url=base_url or api.base_url, timeout=timeout, policy=FAST)
    client.proxy = None  # loopback only: never through an HTTP(S)_PROXY from the environment
    return SlackSender(client, connection_name="connection 'slack_api_default'")


def _down_url() -> str:
    return f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there


def redis_down(severity: str | None = "P1") -> CheckResult:
    return CheckResult(
        "redis.ping",
        Status.CRITICAL,
        "Redis at 127.0.0.1:6379 did not answer PING",
        severity=severity,
        component="redis",
    )


def redis_ok() -> CheckResult:
    return CheckResult("redis.ping", Status.OK, "PONG in 1 ms", "latency_ms", 1.0, "ms", component="redis")


def pg_ok() -> CheckResult:
    return CheckResult(
        "postgres.connections", Status.OK, "12 of 100 connections in use", "connections_used_pct", 12.0, "%",
        {"warning": 80, "critical": 90}, component="postgres",
    )  # fmt: skip


def _record(store: ResultStore, cfg, run: str, results: list[CheckResult], now: datetime = NOW):  # type: ignore[no-untyped-def]
    return process_run(store, cfg, DAG, run, now, results, RUN_URL.format(run=run), now=now)


# ------------------------------------------------------------------------------ happy path


def test_happy_path_posts_incident_and_summary(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    out = _record(store, cfg, "run1", [pg_ok(), redis_down()])
    assert len(out.opened) == 1 and store.count_pending() == 2  # outbox first, nothing sent yet
    assert slack_api.requests == []

    report = deliver_pending(store, _sender(slack_api))
    assert (report.sent, report.failed, report.left) == (2, 0, 0) and report.ok

    incident_req, summary_req = slack_api.requests
    assert incident_req.path == summary_req.path == "/api/chat.postMessage"
    assert incident_req.headers["Authorization"] == f"Bearer {slack_api.token}"
    incident, summary = slack_api.messages
    primary, secondary = cfg.on_call_at(NOW)
    ref = out.opened[0]
    assert incident["channel"] == cfg.slack.incident_channel
    assert incident["text"] == (
        f"[INCIDENT] {ref} - Severity: P1 - Service: redis\n"
        "Issue: Redis at 127.0.0.1:6379 did not answer PING\n"
        f"Impact: {cfg.severities['P1'].description}: redis affected\n"
        "Status: Investigation in progress\n"
        f"Next update: {(NOW + cfg.severities['P1'].update_every):%H:%M}\n"
        f"On-call: {render.mention(primary)} (secondary: {render.mention(secondary)})"
    )
    assert incident["link_names"] is True and "thread_ts" not in incident
    assert incident["blocks"][0]["text"]["text"] == incident["text"]

    assert summary["channel"] == cfg.slack.channel
    blocks = summary["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == f":rotating_light: {cfg.tasks[DAG].title}: CRITICAL"
    assert f"*Team:* {cfg.teams[cfg.tasks[DAG].team].name}" in blocks[1]["elements"][0]["text"]
    assert blocks[2]["text"]["text"].splitlines() == [
        ":rotating_light: *redis.ping* — Redis at 127.0.0.1:6379 did not answer PING",
        ":white_check_mark: *postgres.connections*: 12% (limits: warning 80%, critical 90%)"
        " — 12 of 100 connections in use",
    ]
    assert blocks[3]["elements"][0]["url"] == RUN_URL.format(run="run1")

    row = store.get_notification(f"summary:{DAG}:run1")
    assert row is not None and row.slack_ts == summary["ts"] and row.slack_channel == summary["channel_id"]
    assert row.attempts == 1 and row.last_error is None

    again = deliver_pending(store, _sender(slack_api))  # nothing pending: nothing posted
    assert again.sent == 0 and len(slack_api.requests) == 2


def test_a_retried_record_task_queues_nothing_twice(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    first = _record(store, cfg, "run1", [pg_ok(), redis_down()])
    second = _record(store, cfg, "run1", [pg_ok(), redis_down()])
    assert first.message_ids == second.message_ids
    assert store.table_counts() == {"check_results": 2, "notifications": 2, "incidents": 1}
    assert deliver_pending(store, _sender(slack_api)).sent == 2
    assert len(slack_api.messages) == 2


# ------------------------------------------------------------------------ retries and faults


def test_429_honours_retry_after(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok()])
    slack_api.fail_next(429, 1, retry_after=1)
    report = deliver_pending(store, _sender(slack_api))
    assert report.sent == 1 and report.left == 0
    first, second = slack_api.requests
    assert (first.outcome, second.outcome) == ("http_429", "posted")
    assert second.at - first.at >= 1.0  # waited for Retry-After


def test_429_longer_than_the_cap_is_left_for_a_later_run(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok()])
    slack_api.fail_next(429, 1, retry_after=120)
    report = deliver_pending(store, _sender(slack_api))
    assert (report.sent, report.failed, report.left) == (0, 1, 1)
    assert slack_api.outcomes() == ["http_429"]  # not retried inside the task
    row = store.pending()[0]
    assert row.last_error is not None and "Retry-After 120 s" in row.last_error
    assert deliver_pending(store, _sender(slack_api)).sent == 1  # the next run


def test_500_then_success(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok()])
    slack_api.fail_next(500, 2, only_posts=True)
    report = deliver_pending(store, _sender(slack_api))
    assert report.sent == 1
    # Each 5xx may hide an accepted post: the channel is searched before every new post.
    assert slack_api.outcomes() == ["http_500", "list", "history", "http_500", "list", "history", "posted"]
    assert len(slack_api.messages) == 1


def test_500_beyond_the_retry_budget_stays_pending(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok(), redis_down()])
    slack_api.fail_next(503, 10, only_posts=True)
    report = deliver_pending(store, _sender(slack_api))
    assert (report.sent, report.failed, report.left) == (0, 1, 2)
    assert slack_api.post_outcomes() == ["http_503"] * 3  # 1 try + 2 retries, then stop (order kept)
    assert "HTTP 503" in (report.stopped_by or "")
    first = store.pending()[0]
    assert first.in_doubt and first.delivery_key and "may have accepted" in (first.last_error or "")


def test_timeout_is_retried(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok()])
    slack_api.delay_next(10, 1, only_posts=True)
    report = deliver_pending(store, _sender(slack_api, timeout=0.5))
    assert report.sent == 1
    assert slack_api.outcomes() == ["delayed", "list", "history", "posted"]


def test_timeouts_beyond_the_retry_budget_stay_pending(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok()])
    slack_api.delay_next(10, 3, only_posts=True)
    report = deliver_pending(store, _sender(slack_api, timeout=0.3))
    assert (report.sent, report.failed, report.left) == (0, 1, 1)
    assert slack_api.post_outcomes() == ["delayed"] * 3
    assert "timed out" in (store.pending()[0].last_error or "")


def test_invalid_auth_is_not_retried_and_nothing_is_lost(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok(), redis_down()])
    wrong = "xoxb-wrong-token-123"
    report = deliver_pending(store, _sender(slack_api, token=wrong))
    assert (report.sent, report.failed, report.left) == (0, 1, 2)
    assert slack_api.outcomes() == ["invalid_auth"]  # one request: no retry, and delivery stopped
    error = store.pending()[0].last_error or ""
    assert "invalid_auth" in error and "connection 'slack_api_default'" in error and wrong not in error
    assert "invalid_auth" in report.describe()

    fixed = deliver_pending(store, _sender(slack_api))  # the token is fixed: both go out, in order
    assert fixed.sent == 2
    assert [m["text"].split(" ")[0] for m in slack_api.messages] == ["[INCIDENT]", ":rotating_light:"]


def test_channel_not_found_gives_up_that_message_only(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok(), redis_down()])
    slack_api.reject_channel(cfg.slack.incident_channel)
    report = deliver_pending(store, _sender(slack_api))
    assert (report.sent, report.given_up, report.left) == (1, 1, 0)
    assert slack_api.outcomes() == ["channel_not_found", "posted"]
    (opened,) = store.open_incidents()
    incident = store.get_notification(f"incident:{opened.id}")
    assert incident is not None and incident.given_up_at is not None and incident.sent_at is None
    assert "channel_not_found" in (incident.last_error or "") and cfg.slack.incident_channel in (
        incident.last_error or ""
    )


# --------------------------------------------------------------- Slack down, order, threads


def test_slack_down_then_a_later_run_delivers_everything_in_order(
    store: ResultStore,
    slack_api: SlackApi,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    down = _sender(slack_api, base_url=_down_url())
    run1 = _record(store, cfg, "run1", [pg_ok(), redis_down()])
    r1 = deliver_pending(store, down)
    assert (r1.sent, r1.failed, r1.left) == (0, 1, 2)
    assert "unreachable" in (r1.stopped_by or "")
    run2 = _record(store, cfg, "run2", [pg_ok(), redis_ok()], NOW + timedelta(days=1))
    r2 = deliver_pending(store, down)
    assert (r2.sent, r2.failed, r2.left) == (0, 1, 4)
    assert slack_api.requests == []

    r3 = deliver_pending(store, _sender(slack_api))  # Slack is back
    assert (r3.sent, r3.failed, r3.left) == (4, 0, 0)
    texts = [m["text"] for m in slack_api.messages]
    assert texts[0].startswith(f"[INCIDENT] {run1.opened[0]} ")
    assert texts[1].startswith(":rotating_light:")  # run1 summary
    assert texts[2].startswith(f"[RESOLVED] {run2.resolved[0]} ")
    assert texts[3].startswith(":white_check_mark:")  # run2 summary
    incident, _, resolved, _ = slack_api.messages
    assert resolved["thread_ts"] == incident["ts"] and resolved["channel"] == incident["channel_id"]


def test_resolved_is_posted_in_the_incident_thread(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    sender = _sender(slack_api)
    run1 = _record(store, cfg, "run1", [redis_down()])
    deliver_pending(store, sender)
    incident_msg = slack_api.messages[0]

    later = NOW + timedelta(hours=26, minutes=5)
    run2 = _record(store, cfg, "run2", [redis_ok()], later)
    assert run2.resolved == run1.opened and store.open_incidents() == []
    deliver_pending(store, sender)
    resolved_msg = slack_api.messages[2]
    assert resolved_msg["thread_ts"] == incident_msg["ts"]
    assert resolved_msg["channel"] == incident_msg["channel_id"]
    ref = run1.opened[0]
    assert resolved_msg["text"] == (
        f"[RESOLVED] {ref} - Severity: P1 - Service: redis\n"
        "Resolution: redis.ping is ok again in run run2: PONG in 1 ms (measured 1 ms)\n"
        "Root cause: Not acknowledged, so no note; to be confirmed in the post-mortem\n"
        "Impact: redis affected for 1 d 2 h (09:00 15/01/2026 to 11:05 16/01/2026): "
        "Redis at 127.0.0.1:6379 did not answer PING\n"
        "Follow-up: Post-mortem scheduled for 20/01/2026"
    )

    _record(store, cfg, "run3", [redis_ok()], later + timedelta(days=1))  # still ok: nothing more
    assert store.count_pending() == 1  # only run3's summary


def test_still_critical_posts_an_update_in_the_thread(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    sender = _sender(slack_api)
    run1 = _record(store, cfg, "run1", [redis_down()])
    deliver_pending(store, sender)
    run2 = _record(store, cfg, "run2", [redis_down()], NOW + timedelta(days=1))
    assert run2.updated == run1.opened and run2.opened == []
    deliver_pending(store, sender)
    incident_msg, _, update_msg, _ = slack_api.messages
    assert update_msg["thread_ts"] == incident_msg["ts"]
    assert update_msg["text"].startswith(
        f"[UPDATE] {run1.opened[0]} - Severity: P1 - Service: redis\nStatus: "
    )
    assert store.table_counts()["incidents"] == 1


def test_concurrent_flushers_never_double_send(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    for i in range(10):
        _record(store, cfg, f"run{i}", [pg_ok()])
    with store.flush_lock():  # another run is flushing
        blocked = deliver_pending(store, _sender(slack_api))
    assert blocked.locked_out and blocked.sent == 0 and blocked.left == 10 and slack_api.requests == []

    barrier = threading.Barrier(4)
    reports: list[DeliveryReport] = []

    def flush() -> None:
        barrier.wait()
        reports.append(deliver_pending(store, _sender(slack_api)))

    threads = [threading.Thread(target=flush) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.sent for r in reports) == 10
    assert len(slack_api.messages) == 10
    assert [m["text"].split("run ")[-1] for m in slack_api.messages] == [f"`run{i}`" for i in range(10)]


def test_limit_leaves_the_rest_for_the_next_flush(store: ResultStore, slack_api: SlackApi, cfg) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        _record(store, cfg, f"run{i}", [pg_ok()])
    assert deliver_pending(store, _sender(slack_api), limit=2).left == 1
    assert deliver_pending(store, _sender(slack_api), limit=2).sent == 1


# ---------------------------------------------------------------------- sink and failures


def test_no_slack_connection_keeps_the_outbox_as_the_sink(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    _record(store, cfg, "run1", [pg_ok(), redis_down()])
    report = deliver_pending(store, None)
    assert report.sink and report.left == 2 and report.sent == 0 and report.ok
    assert "No Slack connection configured" in report.describe() and "outbox" in report.describe()
    assert report.as_dict()["sink"] is True
    assert slack_api.requests == []
    assert [m.kind for m in store.notifications(DAG)] == ["summary", "incident"]


def test_task_failure_message_is_delivered_without_secrets(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    secret = "hunter22-Secret"
    error = RuntimeError(f"could not connect: postgresql://app:{secret}@127.0.0.1:5432/app")
    process_failure(
        store, cfg, DAG, "check_postgres", "run1", 3, error, "http://127.0.0.1:8080/log", max_tries=3
    )
    process_failure(
        store, cfg, DAG, "check_postgres", "run1", 3, error, "http://127.0.0.1:8080/log", max_tries=3
    )
    assert deliver_pending(store, _sender(slack_api)).sent == 1
    (message,) = slack_api.messages
    assert message["channel"] == cfg.slack.channel
    assert "`check_postgres`" in message["text"] and "try 3 of 3" in message["text"]
    assert "RuntimeError: could not connect: postgresql://app:***@127.0.0.1:5432/app" in message["text"]
    assert secret not in str(message)


def test_incident_rules(store: ResultStore, cfg) -> None:  # type: ignore[no-untyped-def]
    """Only critical results open incidents; no severity means P2; a worse one raises the level."""
    disk = CheckResult("disk.root", Status.CRITICAL, "95% used", "used_pct", 95.0, "%", component="ec2")
    broken = CheckResult("aws.ecs", Status.ERROR, "AccessDenied: check the AWS connection")
    run1 = _record(store, cfg, "run1", [disk, broken, CheckResult("redis.ping", Status.WARNING, "slow")])
    (incident,) = store.open_incidents(DAG)
    assert run1.opened == [incident.ref] and incident.severity == "P2" and incident.check == "disk.root"
    message = store.get_notification(f"incident:{incident.id}")
    assert message is not None and message.channel == cfg.slack.incident_channel
    assert message.text.startswith(f"[INCIDENT] {incident.ref} - Severity: P2 - Service: ec2\n")
    assert f"Next update: {(NOW + cfg.severities['P2'].update_every):%H:%M}" in message.text

    worse = CheckResult(
        "disk.root", Status.CRITICAL, "100% used: writes failing", severity="P1", component="ec2"
    )
    run2 = _record(store, cfg, "run2", [worse], NOW + timedelta(hours=3))
    assert run2.updated == [incident.ref] and run2.opened == []
    update = store.get_notification(f"update:{incident.id}:run2")
    assert update is not None and update.thread_parent_key == f"incident:{incident.id}"
    assert update.text.startswith(f"[UPDATE] {incident.ref} - Severity: P1 - Service: ec2\n")
    assert "Impact: Raised from P2 to P1" in update.text
    assert store.open_incidents(DAG)[0].severity == "P1"

    # 10 minutes later, still critical: a P1 update is not due yet (every 30 min).
    run3 = _record(store, cfg, "run3", [worse], NOW + timedelta(hours=3, minutes=10))
    assert run3.updated == [] and store.get_notification(f"update:{incident.id}:run3") is None


def test_fake_slack_speaks_form_bodies_and_token_fields(slack_api: SlackApi) -> None:
    """The fixture answers like Slack for the other request shapes clients use."""
    import httpx

    form = {
        "token": slack_api.token,
        "channel": "#sanvi-ops",
        "text": "hi",
        "blocks": '[{"type": "divider"}]',
    }
    http = httpx.Client(base_url=slack_api.base_url, trust_env=False)  # loopback, no env proxy
    response = http.post("chat.postMessage", data=form).json()
    assert response["ok"] is True and response["channel"].startswith("C")
    assert slack_api.messages[0]["blocks"] == [{"type": "divider"}]
    unauthenticated = http.post("chat.postMessage", data={"channel": "#x", "text": "t"}).json()
    assert unauthenticated == {"ok": False, "error": "not_authed"}
    auth = http.post("auth.test", headers={"Authorization": f"Bearer {slack_api.token}"})
    assert auth.json()["ok"] is True
    http.close()
    assert slack_api.base_url.startswith("http://127.0.0.1:") and slack_api.base_url.endswith("/api/")
