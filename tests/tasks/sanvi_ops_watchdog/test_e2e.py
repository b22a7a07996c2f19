"""The watchdog DAG end to end: ``dag.test()`` against a real results store, the fake Slack and a
dead man's switch endpoint on 127.0.0.1.

One run must: ping the outside monitor, record a heartbeat, escalate an incident open past the
guide's "Escalate After" (in its Slack thread), and deliver a message an earlier run left pending.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from sanvi_ops.core.config import load_config
from sanvi_ops.core.notify.pipeline import process_run
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from tests.fixtures.connections import conn_env, pg_conn
from tests.fixtures.e2e import load_dag

if TYPE_CHECKING:
    from tests.fixtures.ops_monitor import OpsMonitor
    from tests.fixtures.slack import SlackApi

pytestmark = pytest.mark.e2e

DAG_ID = "sanvi_ops_watchdog"


def test_watchdog_pings_records_escalates_and_flushes(
    e2e,
    make_db,
    slack_api: SlackApi,
    ops_monitor: OpsMonitor,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    store = ResultStore(make_db("watchdog"))
    store.migrate()
    e2e.set("sanvi_ops_store", pg_conn(store.dsn))
    e2e.slack()
    e2e.set("sanvi_heartbeat", conn_env("http", host=ops_monitor.ping_url))

    # A P1 opened 40 minutes ago by the health check; Slack was down then, so it is still pending.
    opened = datetime.now(UTC) - timedelta(minutes=40)
    down = CheckResult(
        "redis.ping", Status.CRITICAL, "Redis did not answer PING", severity="P1", component="redis"
    )
    out = process_run(store, load_config(), "system_health_check", "run1", opened, [down], None, now=opened)
    assert store.count_pending() == 2 and slack_api.messages == []

    dr = load_dag(DAG_ID).test()
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states == {"ping_heartbeat": "success", "sweep_incidents": "success", "flush_outbox": "success"}

    assert len(ops_monitor.pings) == 1 and DAG_ID in ops_monitor.pings[0]["body"]
    beat = store.latest_heartbeat(DAG_ID)
    assert beat is not None and beat["pinged"] is True and beat["run_id"] == dr.run_id

    texts = [m["text"].splitlines()[0] for m in slack_api.messages]
    ref = out.opened[0]
    assert texts[0] == f"[INCIDENT] {ref} - Severity: P1 - Service: redis"  # the pending one, in order
    escalation = next(m for m in slack_api.messages if m["text"].startswith("[ESCALATION]"))
    assert escalation["thread_ts"] == slack_api.messages[0]["ts"]
    assert "Escalated to: Team Lead @devops-lead" in escalation["text"]
    assert not any("Escalated to: CTO" in m["text"] for m in slack_api.messages)  # due at 60 min
    assert store.count_pending() == 0


def test_watchdog_does_not_escalate_an_acknowledged_incident(
    e2e,
    make_db,
    slack_api: SlackApi,
    ops_monitor: OpsMonitor,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from sanvi_ops.core.incidents import acknowledge_and_announce

    store = ResultStore(make_db("watchdog_ack"))
    store.migrate()
    e2e.set("sanvi_ops_store", pg_conn(store.dsn))
    e2e.slack()
    e2e.set("sanvi_heartbeat", conn_env("http", host=ops_monitor.ping_url))
    cfg = load_config()
    opened = datetime.now(UTC) - timedelta(minutes=70)  # past both the Team Lead and the CTO level
    down = CheckResult(
        "redis.ping", Status.CRITICAL, "Redis did not answer PING", severity="P1", component="redis"
    )
    out = process_run(store, cfg, "system_health_check", "run1", opened, [down], None, now=opened)
    incident_id = int(out.opened[0].lstrip("#"))
    ack, _ = acknowledge_and_announce(
        store, cfg, incident_id, by="alice", source="page", now=opened + timedelta(minutes=10)
    )
    assert ack.within_target

    dr = load_dag(DAG_ID).test()
    assert {str(ti.state) for ti in dr.get_task_instances()} == {"success"}
    texts = [m["text"] for m in slack_api.messages]
    assert texts[0].startswith(f"[INCIDENT] {out.opened[0]} ")
    assert not any(t.startswith("[ESCALATION]") for t in texts)
    ack_reply = next(m for m in slack_api.messages if m["text"].startswith("[UPDATE]"))
    assert "Acknowledged by alice (the Maintenance page)" in ack_reply["text"]
    assert ack_reply["thread_ts"] == slack_api.messages[0]["ts"]
    assert store.count_pending() == 0
