"""Parsing and mapping of Alertmanager's webhook body (pure: no store, no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sanvi_ops.core.alerting.intake import (
    MAX_ALERTS,
    MAX_BODY_BYTES,
    MAX_CHECK_CHARS,
    PayloadError,
    check_name,
    episode_run_id,
    finding,
    parse_payload,
    priority,
)
from sanvi_ops.core.results import Status
from tests.core.alerting.payloads import CPU_LABELS, alert, encode, notification

pytestmark = pytest.mark.unit
LEVELS = {"P1", "P2", "P3", "P4"}


def test_parses_what_alertmanager_sends() -> None:
    parsed = parse_payload(encode(notification()))
    assert parsed.version == "4" and parsed.receiver == "sanvi-ops"
    (a,) = parsed.alerts
    assert a.status == "firing" and a.name == "SanviCpuCritical"
    assert a.startsAt == datetime(2026, 12, 3, 13, 50, 40, 123456, tzinfo=UTC)  # nanoseconds cut


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body: not JSON"),
        (b"{not json", "body: not JSON"),
        (b"\xff\xfe", "body: not JSON"),
        (b"[1, 2]", "body: a JSON object expected, got list"),
        (b'"text"', "body: a JSON object expected, got str"),
        (
            encode(notification(version="3")),
            "version: Alertmanager webhook payload version '4' expected, got '3'",
        ),
        (encode(notification(version=4)), "version '4' expected, got 4"),
        (encode({k: v for k, v in notification().items() if k != "version"}), "got None"),
        (encode(notification(alerts="x")), "alerts: Input should be a valid list"),
        (encode(notification(status="burning")), "status: Input should be 'firing' or 'resolved'"),
        (
            encode(notification(alert(starts_at="yesterday"))),
            "alerts[0].startsAt: Input should be a valid datetime",
        ),
        (
            encode(notification(alert(starts_at="2026-12-03T13:50:40"))),
            "alerts[0].startsAt: Input should have timezone info",
        ),
        (
            encode(notification(alert(fingerprint="'; DROP TABLE incidents;--"))),
            "alerts[0].fingerprint: String should match pattern",
        ),
        (
            encode(notification(alert(labels={"severity": "critical"}))),
            "alerts[0].labels.alertname: required",
        ),
        (
            encode(notification(alert(labels={**CPU_LABELS, "bad-name": "x"}))),
            "alerts[0].labels.bad-name.[key]",
        ),
        (
            encode(notification(alert(labels={**CPU_LABELS, "instance": "x" * 2000}))),
            "alerts[0].labels.instance: String should have at most 1024",
        ),
        (
            encode(notification(*[alert()] * (MAX_ALERTS + 1))),
            f"alerts: List should have at most {MAX_ALERTS} items",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "body: not JSON"),
    ],
    ids=lambda v: v[:50] if isinstance(v, str) else "",
)
def test_hostile_and_half_written_bodies_are_refused_naming_the_field(body: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as err:
        parse_payload(body)
    assert message in str(err.value)


def test_half_written_body_names_the_first_problems_only() -> None:
    half = notification()
    del half["alerts"][0]["startsAt"], half["alerts"][0]["fingerprint"], half["alerts"][0]["status"]
    with pytest.raises(PayloadError) as err:
        parse_payload(encode(half))
    text = str(err.value)
    assert "alerts[0].status: Field required" in text and "alerts[0].startsAt: Field required" in text


def test_errors_never_echo_the_values_sent() -> None:
    secret = "<script>hunter2</script>"
    with pytest.raises(PayloadError) as err:
        parse_payload(encode(notification(alert(starts_at=secret))))
    assert secret not in str(err.value)


def test_huge_body_refused_before_parsing() -> None:
    body = encode(notification(alert(annotations={"description": "x" * MAX_BODY_BYTES})))
    with pytest.raises(PayloadError, match=r"^body: \d+ bytes, more than the 1048576 accepted"):
        parse_payload(body)


def test_unknown_fields_are_ignored() -> None:
    parsed = parse_payload(encode(notification(newField={"a": 1}, alerts=[{**alert(), "extra": 1}])))
    assert len(parsed.alerts) == 1


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (CPU_LABELS, "SanviCpuCritical[backend-1]"),
        ({"alertname": "Up"}, "Up"),
        (
            {**CPU_LABELS, "alertname": "SanviDiskCritical", "mountpoint": "/", "device": "/dev/x"},
            "SanviDiskCritical[device=/dev/x,instance=backend-1,mountpoint=/]",
        ),
        ({"alertname": "Multi\nLine  name", "instance": "a"}, "Multi Line name[a]"),
        ({"alertname": "InstanceDown", "instance": "a", "job": "node"}, "InstanceDown[instance=a,job=node]"),
        (
            {"alertname": "HighCPU", "instance": "a", "severity": "critical"},
            "HighCPU[instance=a,severity=critical]",
        ),
    ],
)
def test_check_name_is_the_alert_and_the_labels_that_tell_series_apart(
    labels: dict[str, str], expected: str
) -> None:
    parsed = parse_payload(encode(notification(alert(labels=labels)))).alerts[0]
    assert check_name(parsed) == expected


def test_long_check_names_are_capped_and_stay_unique_by_fingerprint() -> None:
    labels = {**CPU_LABELS, "path": "p" * 1000}
    a = parse_payload(encode(notification(alert(labels=labels, fingerprint="aaaa1111")))).alerts[0]
    b = parse_payload(encode(notification(alert(labels=labels, fingerprint="bbbb2222")))).alerts[0]
    assert len(check_name(a)) <= MAX_CHECK_CHARS
    assert check_name(a) != check_name(b) and check_name(a).endswith("#aaaa1111")


@pytest.mark.parametrize(
    ("labels", "level"),
    [
        ({"priority": "P1", "severity": "warning"}, "P1"),  # the rule's own priority wins
        ({"priority": "p4"}, "P4"),
        ({"severity": "critical"}, "P2"),
        ({"severity": "page"}, "P2"),
        ({"severity": "warning"}, "P3"),
        ({"severity": "ticket"}, "P3"),
        ({"severity": "P1"}, "P1"),
        ({"severity": "info"}, "P4"),
        ({"severity": "whatever", "priority": "P9"}, "P2"),  # unknown: the default of a critical result
        ({}, "P2"),
    ],
)
def test_priority_from_labels(labels: dict[str, str], level: str) -> None:
    assert priority(labels, LEVELS)[0] == level


def test_firing_alert_becomes_a_critical_result_with_its_description() -> None:
    a = parse_payload(encode(notification())).alerts[0]
    item = finding(a, LEVELS)
    r = item.result
    assert (r.check, r.status, r.severity) == ("SanviCpuCritical[backend-1]", Status.CRITICAL, "P2")
    assert r.summary.startswith("CPU on backend-1 is 97.00%: above the critical limit of 90%")
    assert r.details["fingerprint"] == "ea4a0ee3b1c2d3e4" and r.details["ends_at"] is None
    assert r.details["impact"] == "CPU above 90% for 5m (critical)"
    assert item.owner_dag == "system_health_check" and item.firing
    json.dumps(r.to_dict())  # travels as any CheckResult


def test_warning_alert_is_a_warning_result_at_p3() -> None:
    a = parse_payload(
        encode(notification(alert(labels={**CPU_LABELS, "severity": "warning", "priority": "P3"})))
    ).alerts[0]
    assert (finding(a, LEVELS).result.status, finding(a, LEVELS).result.severity) == (Status.WARNING, "P3")


def test_resolved_alert_is_ok_and_says_when() -> None:
    a = parse_payload(encode(notification(alert("resolved", ends_at="2026-12-03T13:55:00Z")))).alerts[0]
    r = finding(a, LEVELS).result
    assert r.status is Status.OK
    assert (
        r.summary == "SanviCpuCritical resolved at 13:55:00 03/12/2026 UTC (CPU above 90% for 5m (critical))"
    )


def test_one_episode_one_run_id() -> None:
    first = parse_payload(encode(notification())).alerts[0]
    again = parse_payload(encode(notification(alert("resolved", ends_at="2026-12-03T14:00:00Z")))).alerts[0]
    later = parse_payload(encode(notification(alert(starts_at="2026-12-03T15:00:00Z")))).alerts[0]
    assert (
        episode_run_id(first) == episode_run_id(again) == "alertmanager:ea4a0ee3b1c2d3e4:20261203T135040.123Z"
    )
    assert episode_run_id(later) != episode_run_id(first)
