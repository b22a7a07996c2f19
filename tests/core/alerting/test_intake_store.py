"""record_alerts against a real results store: incidents, dedup, resolve, silences, store down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from devstack.postgres import free_port
from sanvi_ops.core.alerting.intake import DAG_ID, parse_payload, record_alerts
from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, MaintenanceConfig, load_config
from sanvi_ops.core.silences import add_silence
from sanvi_ops.core.store import ResultStore, StoreError
from tests.core.alerting.payloads import CPU_LABELS, alert, encode, notification

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 3, 13, 51, tzinfo=UTC)


@pytest.fixture(scope="module")
def cfg() -> MaintenanceConfig:
    return load_config(DEFAULT_CONFIG_PATH)


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("am_intake"))
    s.migrate()
    return s


def _record(store: ResultStore, cfg: MaintenanceConfig, *alerts: dict, now: datetime = NOW) -> dict:
    return record_alerts(store, cfg, parse_payload(encode(notification(*alerts))), now=now).as_dict()


def _texts(store: ResultStore) -> list[str]:
    return [m.text.split("\n", 1)[0] for m in reversed(store.notifications(limit=50))]


def test_firing_opens_an_incident_on_the_incident_channel(store: ResultStore, cfg: MaintenanceConfig) -> None:
    report = _record(store, cfg, alert())
    (incident,) = store.open_incidents(DAG_ID)
    assert report["opened"] == [f"{incident.ref} SanviCpuCritical[backend-1]"]
    assert (incident.check, incident.severity) == ("SanviCpuCritical[backend-1]", "P2")
    (message,) = store.notifications()
    assert message.kind == "incident" and message.channel == cfg.slack.incident_channel
    assert message.text.startswith(
        f"[INCIDENT] {incident.ref} - Severity: P2 - Service: SanviCpuCritical[backend-1]"
    )
    assert "Issue: CPU on backend-1 is 97.00%" in message.text
    assert "On-call: " in message.text
    (result,) = store.results_for_run(DAG_ID, "alertmanager:ea4a0ee3b1c2d3e4:20261203T135040.123Z")
    assert result.status.value == "critical" and result.details["labels"]["dag_id"] == "system_health_check"


def test_repeated_firing_is_deduplicated(store: ResultStore, cfg: MaintenanceConfig) -> None:
    _record(store, cfg, alert())
    for minutes in (1, 5, 60):  # group_interval, repeat_interval, a retry of the same notification
        report = _record(store, cfg, alert(), now=NOW + timedelta(minutes=minutes))
        assert report["opened"] == [] and len(report["deduplicated"]) == 1
    assert len(store.open_incidents(DAG_ID)) == 1
    assert _texts(store) == [_texts(store)[0]]  # one [INCIDENT], nothing else


def test_resolved_posts_in_the_thread_and_closes(store: ResultStore, cfg: MaintenanceConfig) -> None:
    _record(store, cfg, alert())
    (incident,) = store.open_incidents(DAG_ID)
    report = _record(
        store, cfg, alert("resolved", ends_at="2026-12-03T13:58:00Z"), now=NOW + timedelta(minutes=7)
    )
    assert report["resolved"] == [f"{incident.ref} SanviCpuCritical[backend-1]"]
    assert store.open_incidents(DAG_ID) == []
    resolved = store.get_notification(f"resolved:{incident.id}")
    assert resolved is not None and resolved.thread_parent_key == f"incident:{incident.id}"
    assert resolved.text.startswith(f"[RESOLVED] {incident.ref}")
    assert "SanviCpuCritical[backend-1] is ok again" in resolved.text
    # Alertmanager repeats the resolved notification: nothing more.
    again = _record(
        store, cfg, alert("resolved", ends_at="2026-12-03T13:58:00Z"), now=NOW + timedelta(minutes=8)
    )
    assert again["resolved"] == [] and len(_texts(store)) == 2


def test_late_firing_of_a_resolved_episode_does_not_reopen(
    store: ResultStore, cfg: MaintenanceConfig
) -> None:
    _record(store, cfg, alert())
    _record(store, cfg, alert("resolved", ends_at="2026-12-03T13:58:00Z"))
    report = _record(store, cfg, alert())  # the second Alertmanager of an HA pair, or a late retry
    assert report["ignored"] == ["SanviCpuCritical[backend-1]: episode already resolved"]
    assert store.open_incidents(DAG_ID) == [] and len(_texts(store)) == 2


def test_a_new_episode_opens_a_new_incident(store: ResultStore, cfg: MaintenanceConfig) -> None:
    _record(store, cfg, alert())
    _record(store, cfg, alert("resolved", ends_at="2026-12-03T13:58:00Z"))
    report = _record(store, cfg, alert(starts_at="2026-12-03T15:00:00Z"), now=NOW + timedelta(hours=2))
    assert len(report["opened"]) == 1
    assert [t.split(" - ")[0].split()[0] for t in _texts(store)] == ["[INCIDENT]", "[RESOLVED]", "[INCIDENT]"]


def test_resolved_older_episode_leaves_the_newer_one_open(store: ResultStore, cfg: MaintenanceConfig) -> None:
    _record(store, cfg, alert(starts_at="2026-12-03T15:00:00Z"))
    report = _record(store, cfg, alert("resolved", ends_at="2026-12-03T14:00:00Z"))
    assert report["ignored"] == [
        "SanviCpuCritical[backend-1]: resolved an older episode; a newer one is firing"
    ]
    assert len(store.open_incidents(DAG_ID)) == 1


def test_warning_alert_opens_a_p3_incident(store: ResultStore, cfg: MaintenanceConfig) -> None:
    labels = {**CPU_LABELS, "alertname": "SanviCpuWarning", "severity": "warning", "priority": "P3"}
    _record(store, cfg, alert(labels=labels, fingerprint="45bb051"))
    (incident,) = store.open_incidents(DAG_ID)
    assert incident.severity == "P3" and _texts(store)[0].startswith(
        f"[INCIDENT] {incident.ref} - Severity: P3"
    )


def test_silence_on_the_alerts_dag_holds_the_incident_back(
    store: ResultStore, cfg: MaintenanceConfig
) -> None:
    add_silence(
        store.dsn,
        dag_id="system_health_check",
        check_pattern="SanviCpu*",
        reason="host migration",
        created_by="ops",
        expires_at=NOW + timedelta(hours=1),
        source="ui",
        now=NOW,
    )
    report = _record(store, cfg, alert())
    assert len(report["silenced"]) == 1 and report["opened"] == []
    assert len(store.open_incidents(DAG_ID)) == 1 and _texts(store) == []  # recorded, not announced
    # The silence has ended and Alertmanager still sends the alert: the held-back [INCIDENT] goes out.
    later = _record(store, cfg, alert(), now=NOW + timedelta(hours=2))
    assert len(later["opened"]) == 1 and _texts(store)[0].startswith("[INCIDENT]")


def test_several_alerts_in_one_notification(store: ResultStore, cfg: MaintenanceConfig) -> None:
    other = {**CPU_LABELS, "instance": "backend-2"}
    report = _record(store, cfg, alert(), alert(labels=other, fingerprint="0b0b"))
    assert len(report["opened"]) == 2 and len(store.open_incidents(DAG_ID)) == 2
    # One resolves; the other stays open (an alert is never closed for missing from a notification).
    _record(store, cfg, alert("resolved", ends_at="2026-12-03T13:58:00Z"))
    assert [i.check for i in store.open_incidents(DAG_ID)] == ["SanviCpuCritical[backend-2]"]


def test_store_down_raises_and_writes_nothing(cfg: MaintenanceConfig) -> None:
    down = ResultStore(f"host=127.0.0.1 port={free_port()} dbname=x user=x password=x", connect_timeout=2)
    with pytest.raises(StoreError, match="cannot connect"):
        record_alerts(down, cfg, parse_payload(encode(notification())), now=NOW)


def test_the_watchdog_escalates_an_alert_incident_like_any_other(
    store: ResultStore, cfg: MaintenanceConfig
) -> None:
    from sanvi_ops.core.escalation import escalate_after_for, sweep

    _record(store, cfg, alert())
    (incident,) = store.open_incidents(DAG_ID)
    after = escalate_after_for(cfg, "P2")  # P2 → high → 2 h
    assert sweep(store, cfg, now=incident.opened_at + after - timedelta(minutes=1)).escalations == []
    report = sweep(store, cfg, now=incident.opened_at + after)
    assert report.escalations == [f"{incident.ref}→Team Lead"]
    escalation = store.get_notification(f"escalation:{incident.id}:1")
    assert escalation is not None and escalation.thread_parent_key == f"incident:{incident.id}"


def test_alerts_alertmanager_truncated_are_reported(store: ResultStore, cfg: MaintenanceConfig) -> None:
    body = notification(alert(), truncatedAlerts=3)
    report = record_alerts(store, cfg, parse_payload(encode(body)), now=NOW).as_dict()
    assert report["truncated"] == 3 and len(report["opened"]) == 1
