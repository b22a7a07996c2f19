"""Acknowledgement, response-time grading, the weekly P4 summary, stale incidents and the
``[RESOLVED]`` text: pure parts, then against a real PostgreSQL store and the Slack sink (127.0.0.1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pytest

from sanvi_ops.core.config import load_config
from sanvi_ops.core.escalation import digest_week, sweep
from sanvi_ops.core.incidents import (
    IncidentNotOpen,
    Replayed,
    acknowledge_and_announce,
    get_acknowledgement,
    parse_slack_action,
    resolve_by_hand,
    response_summary,
    response_target,
    within_target,
)
from sanvi_ops.core.notify import render
from sanvi_ops.core.notify.pipeline import process_run
from sanvi_ops.core.notify.slack import RetryPolicy, SlackSender, deliver_pending, make_client
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore

if TYPE_CHECKING:
    from tests.fixtures.slack import SlackApi

DAG = "system_health_check"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday
FAST = RetryPolicy(max_retries=1, backoff_factor=0.01, max_retry_after=2)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load_config().model_copy(update={"timezone": "UTC"})


# ------------------------------------------------------------------------------- pure parts


def test_response_targets_are_the_guides_response_time_column(cfg) -> None:  # type: ignore[no-untyped-def]
    assert [response_target(cfg, p) for p in ("P1", "P2", "P3", "P4")] == [
        timedelta(minutes=15),
        timedelta(minutes=30),
        timedelta(hours=4),
        timedelta(hours=24),
    ]
    assert within_target(timedelta(minutes=15), timedelta(minutes=15))  # at the deadline: in time
    assert not within_target(timedelta(minutes=15, seconds=1), timedelta(minutes=15))


def test_response_summary_per_severity() -> None:
    targets = {"P1": timedelta(minutes=15), "P2": timedelta(minutes=30), "P4": timedelta(hours=24)}
    rows = [("P1", 300.0, 900.0), ("P1", 1200.0, 900.0), ("P1", 600.0, 900.0), ("P2", 60.0, None)]
    summary = {r.severity: r for r in response_summary(rows, targets)}
    p1 = summary["P1"]
    assert (p1.acknowledged, p1.median_s, p1.worst_s, p1.within_target, p1.target_s) == (3, 600, 1200, 2, 900)
    assert (summary["P2"].acknowledged, summary["P2"].within_target) == (1, 1)  # graded by the config
    assert (summary["P4"].acknowledged, summary["P4"].median_s) == (0, None)  # listed, nothing yet


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 11, 30, 9, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),  # Monday 09:00
        (datetime(2026, 11, 30, 8, 59, tzinfo=UTC), datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),  # just before
        (datetime(2026, 12, 6, 23, 0, tzinfo=UTC), datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),  # Sunday
    ],
)
def test_digest_week_starts_monday_nine(now: datetime, start: datetime) -> None:
    assert digest_week(now) == start


def test_digest_text() -> None:
    text, blocks = render.digest_message(
        "P4",
        date(2026, 11, 30),
        [
            {
                "ref": "#7",
                "service": "disk",
                "open_for": timedelta(days=9, hours=2),
                "acknowledged_by": "alice",
                "summary": "Disk /var at 91%",
            },
            {
                "ref": "#9",
                "service": "tls",
                "open_for": timedelta(days=2),
                "acknowledged_by": "",
                "summary": "Certificate <expires> in 20 days",
            },
        ],  # fmt: skip
        next_digest=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
    )
    assert text == (
        "[SUMMARY] Weekly summary of open P4 incidents - week of 30/11/2026 - 2 open\n"
        "#7 - Service: disk - open 9 d 2 h - acknowledged by alice - Disk /var at 91%\n"
        "#9 - Service: tls - open 2 d - not acknowledged - Certificate &lt;expires&gt; in 20 days\n"
        "Next summary: 09:00 on 07/12/2026"
    )
    assert blocks[0]["type"] == "header" and "#9" in blocks[1]["text"]["text"]


def test_incident_message_has_an_acknowledge_button() -> None:
    _text, blocks = render.incident_message(
        "#12", "P1", "redis", "down", "impact", now=NOW, update_every=timedelta(minutes=30),
        run_url="http://127.0.0.1/run", ack_id=12,
    )  # fmt: skip
    actions = blocks[-1]
    assert actions["type"] == "actions"
    assert actions["elements"][0]["action_id"] == "open_run"  # the link stays first
    assert actions["elements"][1] == {
        "type": "button",
        "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
        "style": "primary",
        "action_id": "ack_incident",
        "value": "12",
    }
    _text, blocks = render.incident_message(
        "#12", "P1", "redis", "down", "impact", now=NOW, update_every=timedelta(minutes=30), ack_id=12
    )
    assert [b["type"] for b in blocks] == ["section", "actions"]


def _payload(value: str = "12", user: str = "U0ACK1234", action: str = "ack_incident") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": action, "value": value}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_parse_slack_action() -> None:
    assert parse_slack_action(_payload()) == (12, "U0ACK1234")
    for bad, why in [
        (b"nothing=here", "no JSON payload"),
        (_payload(value="12; DROP"), "must be an incident id"),
        (_payload(action="other"), "no ack_incident action"),
        (urlencode({"payload": json.dumps({"type": "view_submission"})}).encode(), "block_actions"),
        (urlencode({"payload": json.dumps({"type": "block_actions", "actions": []})}).encode(), "user.id"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_slack_action(bad)


# -------------------------------------------------------------------- against a real store


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("ack"))
    s.migrate()
    return s


def _sender(api: SlackApi) -> SlackSender:
    client = make_client(api.token, base_url=api.base_url, timeout=5, policy=FAST)
    client.proxy = None
    return SlackSender(client)


def redis_down(severity: str = "P1") -> CheckResult:
    return CheckResult(
        "redis.ping", Status.CRITICAL, "Redis did not answer PING", severity=severity, component="redis"
    )


def redis_ok() -> CheckResult:
    return CheckResult("redis.ping", Status.OK, "PONG in 1 ms", "latency_ms", 1.0, "ms", component="redis")


def pg_ok() -> CheckResult:
    return CheckResult(
        "postgres.connections", Status.OK, "12 of 100 in use", "connections_used_pct", 12.0, "%"
    )


def _run(store: ResultStore, cfg, run_id: str, results: list[CheckResult], at: datetime):  # type: ignore[no-untyped-def]
    return process_run(store, cfg, DAG, run_id, at, results, None, now=at, silences=[])


@pytest.mark.integration
def test_acknowledged_incident_is_not_escalated_and_its_response_time_is_graded(
    store: ResultStore,
    slack_api: SlackApi,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    out = _run(store, cfg, "run1", [redis_down()], NOW)
    incident_id = int(out.opened[0].lstrip("#"))
    deliver_pending(store, _sender(slack_api))
    incident_msg = slack_api.messages[0]
    assert incident_msg["blocks"][-1]["elements"][-1]["value"] == str(incident_id)

    ack, new = acknowledge_and_announce(
        store,
        cfg,
        incident_id,
        by="U0ACK1234",
        source="slack",
        note="failing over",
        now=NOW + timedelta(minutes=7),
    )
    assert new and ack.response == timedelta(minutes=7) and ack.target == timedelta(minutes=15)
    assert ack.within_target
    again, new = acknowledge_and_announce(
        store, cfg, incident_id, by="bob", source="page", now=NOW + timedelta(hours=1)
    )
    assert not new and again.by == "U0ACK1234"  # the first acknowledgement wins

    report = sweep(store, cfg, now=NOW + timedelta(hours=2), silences=[])
    assert report.escalations == [] and report.skipped_acknowledged == [out.opened[0]]
    deliver_pending(store, _sender(slack_api))
    ack_msg = slack_api.messages[-1]
    assert ack_msg["thread_ts"] == incident_msg["ts"]
    assert ack_msg["text"] == (
        f"[UPDATE] {out.opened[0]} - Severity: P1 - Service: redis\n"
        "Status: Acknowledged by <@U0ACK1234> (Slack); investigation in progress\n"
        "Actions: Escalation stopped. Note: failing over\n"
        "Impact: Response time 7 min against the P1 target of 15 min (within target)\n"
        "Next update: 09:37"
    )
    assert not any(m["text"].startswith("[ESCALATION]") for m in slack_api.messages)

    # Resolved by the next green run: the value that went green, the note, the duration.
    _run(store, cfg, "run2", [redis_ok()], NOW + timedelta(hours=3))
    resolved = store.get_notification(f"resolved:{incident_id}")
    assert resolved is not None and resolved.text == (
        f"[RESOLVED] {out.opened[0]} - Severity: P1 - Service: redis\n"
        "Resolution: redis.ping is ok again in run run2: PONG in 1 ms (measured 1 ms)\n"
        "Root cause: failing over (note of U0ACK1234, who acknowledged it)\n"
        "Impact: redis affected for 3 h (09:00 27/11/2026 to 12:00 27/11/2026): Redis did not answer PING; "
        "acknowledged by U0ACK1234 after 7 min (P1 target 15 min: within target)\n"
        "Follow-up: Post-mortem scheduled for 01/12/2026"
    )
    deliver_pending(store, _sender(slack_api))
    posted = next(m for m in slack_api.messages if m["text"].startswith("[RESOLVED]"))
    assert posted["text"] == resolved.text and posted["thread_ts"] == incident_msg["ts"]
    with pytest.raises(IncidentNotOpen, match="already resolved"):
        acknowledge_and_announce(store, cfg, incident_id, by="carol", source="page")


@pytest.mark.integration
def test_unacknowledged_incident_still_escalates_and_a_late_ack_is_over_target(
    store: ResultStore,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    out = _run(store, cfg, "run1", [redis_down("P2")], NOW)
    incident_id = int(out.opened[0].lstrip("#"))
    assert sweep(store, cfg, now=NOW + timedelta(hours=2, minutes=1), silences=[]).escalations == [
        f"{out.opened[0]}→Team Lead"
    ]
    ack, _ = acknowledge_and_announce(
        store, cfg, incident_id, by="alice", source="page", now=NOW + timedelta(hours=3)
    )
    assert ack.response == timedelta(hours=3) and not ack.within_target
    assert sweep(store, cfg, now=NOW + timedelta(hours=5), silences=[]).escalations == []  # CTO never paged
    stored = get_acknowledgement(store, incident_id)
    assert stored is not None and (stored.by, stored.source, stored.target) == (
        "alice",
        "page",
        timedelta(minutes=30),
    )


@pytest.mark.integration
def test_a_replayed_signature_is_refused_and_records_nothing(
    store: ResultStore,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    a = int(_run(store, cfg, "run1", [redis_down()], NOW).opened[0].lstrip("#"))
    acknowledge_and_announce(store, cfg, a, by="U0ACK1234", source="slack", request_signature="v0=abc")
    b = int(
        _run(store, cfg, "run2", [redis_ok(), CheckResult("x.y", Status.CRITICAL, "x", severity="P3")], NOW)
        .opened[0]
        .lstrip("#")
    )
    with pytest.raises(Replayed):
        acknowledge_and_announce(store, cfg, b, by="U0ACK1234", source="slack", request_signature="v0=abc")
    assert get_acknowledgement(store, b) is None


@pytest.mark.integration
def test_resolve_by_hand_says_who_and_why(store: ResultStore, cfg) -> None:  # type: ignore[no-untyped-def]
    out = _run(store, cfg, "run1", [redis_down()], NOW)
    incident_id = int(out.opened[0].lstrip("#"))
    closed = resolve_by_hand(
        store, cfg, incident_id, by="admin", note="restarted redis", now=NOW + timedelta(minutes=20)
    )
    assert not closed.is_open and closed.resolved_run_id == "manual"
    msg = store.get_notification(f"resolved:{incident_id}")
    assert msg is not None
    assert "Resolution: Resolved by hand by admin on the Maintenance page: restarted redis\n" in msg.text
    assert "redis affected for 20 min" in msg.text


@pytest.mark.integration
def test_an_incident_whose_check_is_no_longer_produced_resolves_and_says_so(
    store: ResultStore,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    out = _run(store, cfg, "run1", [redis_down(), pg_ok()], NOW)
    incident_id = int(out.opened[0].lstrip("#"))
    # The check was removed: the DAG's results are recorded without it (here directly in the store,
    # as a run spooled while the store was down is), and the sweep notices before escalating.
    store.save_results(DAG, "run2", NOW + timedelta(minutes=10), [pg_ok()])
    report = sweep(store, cfg, now=NOW + timedelta(minutes=40), silences=[])
    assert report.resolved == [out.opened[0]] and report.escalations == []
    msg = store.get_notification(f"resolved:{incident_id}")
    assert msg is not None and (
        "Resolution: redis.ping is no longer checked: run run2 completed without it" in msg.text
    )
    assert store.open_incidents() == []


@pytest.mark.integration
def test_p4_digest_once_per_week_instead_of_weekly_updates(
    store: ResultStore,
    slack_api: SlackApi,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    tls = CheckResult(
        "tls.expiry", Status.CRITICAL, "Certificate expires in 20 days", severity="P4", component="tls"
    )
    out = _run(store, cfg, "run1", [tls], NOW)  # Friday 27/11
    announced = store.get_notification(f"incident:{out.opened[0].lstrip('#')}")
    assert (
        announced is not None and "Next update: in the weekly summary, 09:00 on 30/11/2026" in announced.text
    )
    # Not in this week's summary: it was just announced.
    assert sweep(store, cfg, now=NOW + timedelta(hours=1), silences=[]).digest == []
    monday = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)
    assert sweep(store, cfg, now=monday, silences=[]).digest == out.opened
    assert sweep(store, cfg, now=monday + timedelta(days=3), silences=[]).digest == []  # once a week
    # Still critical a week later: no per-incident [UPDATE] for a P4 (the summary lists it).
    later = _run(store, cfg, "run2", [tls], NOW + timedelta(days=8))
    assert later.updated == []
    assert sweep(store, cfg, now=monday + timedelta(days=7), silences=[]).digest == out.opened
    digests = [m for m in store.notifications(limit=100) if m.dedupe_key.startswith("digest:")]
    assert sorted(m.dedupe_key for m in digests) == ["digest:P4:2026-11-30", "digest:P4:2026-12-07"]
    deliver_pending(store, _sender(slack_api))
    posted = [m for m in slack_api.messages if m["text"].startswith("[SUMMARY]")]
    assert [m["text"].splitlines()[0] for m in posted] == [
        "[SUMMARY] Weekly summary of open P4 incidents - week of 30/11/2026 - 1 open",
        "[SUMMARY] Weekly summary of open P4 incidents - week of 07/12/2026 - 1 open",
    ]
    assert (
        posted[0]["text"]
        .splitlines()[1]
        .startswith(f"{out.opened[0]} - Service: tls - open 3 d - not acknowledged")
    )
    assert all("thread_ts" not in m for m in posted)  # a message of its own, not a reply
    assert not [m for m in slack_api.messages if m["text"].startswith("[UPDATE]")]
