"""Alertmanager webhook bodies (version 4) as Alertmanager 0.25 writes them, for the intake tests."""

from __future__ import annotations

import json
from typing import Any

CPU_LABELS = {
    "alertname": "SanviCpuCritical",
    "component": "host",
    "dag_id": "system_health_check",
    "instance": "backend-1",
    "priority": "P2",
    "severity": "critical",
    "team": "Infrastructure",
}
CPU_ANNOTATIONS = {
    "summary": "CPU above 90% for 5m (critical)",
    "description": "CPU on backend-1 is 97.00%: above the critical limit of 90% for 5m "
    "(thresholds.cpu.critical). Runbook: the system_health_check DAG.",
    "runbook_url": "http://localhost:8080/dags/system_health_check",
}


def alert(
    status: str = "firing",
    *,
    fingerprint: str = "ea4a0ee3b1c2d3e4",
    starts_at: str = "2026-12-03T13:50:40.123456789Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": dict(CPU_LABELS if labels is None else labels),
        "annotations": dict(CPU_ANNOTATIONS if annotations is None else annotations),
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=sanvi",
        "fingerprint": fingerprint,
    }


def notification(*alerts: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    alerts = alerts or (alert(),)
    body = {
        "receiver": "sanvi-ops",
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"].get("alertname", "")},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": '{}:{alertname="SanviCpuCritical"}',
        "truncatedAlerts": 0,
    }
    body.update(overrides)
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()
