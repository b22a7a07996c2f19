"""Airflow's own health: the api-server's ``GET /api/v2/monitor/health``.

The endpoint answers (no authentication needed) with one entry per Airflow component::

    {"metadatabase": {"status": "healthy"},
     "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": "2026-11-27T09:00:01+00:00"},
     "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": "..."},
     "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": "..."}}

``status`` is ``healthy``/``unhealthy``; the triggerer's and DAG processor's are ``null`` when
none ever ran. One result per component (``airflow.<component>``):

- ``unhealthy`` → ``critical``: the metadatabase or the scheduler is a P1 (nothing runs); the
  triggerer (deadline alerts, deferred tasks) and the DAG processor (DAG changes not picked up) a P2;
- healthy, but the heartbeat is older than ``heartbeat_critical`` → ``critical`` (the endpoint
  may be a cached or stale view), older than ``heartbeat_warning`` → ``warning``;
- ``null`` (never ran) → ``warning``: deadline alerts need a triggerer;
- the endpoint unreachable or not answering 200 → one ``critical`` result ``airflow.api`` (P2:
  the UI and the task API are down or unreachable from the worker); a body that is not the
  health shape → ``error`` naming what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.system_health_check.health.http import redact_url

__all__ = ["COMPONENTS", "check_airflow_health"]

#: Component → (heartbeat field, severity when unhealthy, what it means when it is down).
COMPONENTS: Final[Mapping[str, tuple[str | None, str, str]]] = {
    "metadatabase": (None, "P1", "the metadata database is unreachable: nothing can be scheduled or run"),
    "scheduler": (
        "latest_scheduler_heartbeat",
        "P1",
        "no new runs start and deadline alerts are not evaluated",
    ),
    "triggerer": (
        "latest_triggerer_heartbeat",
        "P2",
        "deferred tasks and deadline alert callbacks do not run",
    ),
    "dag_processor": ("latest_dag_processor_heartbeat", "P2", "DAG file changes are not picked up"),
}


def _age(value: Any, now: datetime) -> timedelta | None:
    if not value:
        return None
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return now - stamp


def _grade(
    name: str, entry: Any, now: datetime, warning_age: timedelta, critical_age: timedelta, url: str
) -> CheckResult:
    field, severity, impact = COMPONENTS[name]
    check = f"airflow.{name}"
    base: dict[str, Any] = {"check": check, "component": "airflow"}
    if not isinstance(entry, Mapping) or "status" not in entry:
        return CheckResult(
            **base,
            status=Status.ERROR,
            summary=f"Airflow health at {url}: no '{name}.status' in the answer (not Airflow 3's health endpoint?)",
        )
    status = entry.get("status")
    heartbeat = entry.get(field) if field else None
    try:
        age = _age(heartbeat, now)
    except ValueError:
        return CheckResult(
            **base, status=Status.ERROR, summary=f"Airflow {name}: heartbeat {heartbeat!r} is not a timestamp"
        )
    details: dict[str, Any] = {"status": status, "heartbeat": heartbeat, "url": url}
    metric: dict[str, Any] = {}
    if age is not None:
        details["heartbeat_age_s"] = round(age.total_seconds(), 1)
        metric = {
            "metric": "heartbeat_age_s",
            "observed": age.total_seconds(),
            "unit": "s",
            "thresholds": {"warning": warning_age.total_seconds(), "critical": critical_age.total_seconds()},
        }
    seen = f" (last heartbeat {_ago(age)})" if age is not None else ""
    label = name.replace("_", " ")
    if status is None:
        return CheckResult(
            **base, **metric, status=Status.WARNING, details=details,
            summary=f"Airflow {label}: not running (none has ever started): {impact}",
        )  # fmt: skip
    if status != "healthy":
        return CheckResult(
            **base, **metric, status=Status.CRITICAL, severity=severity, details=details,
            summary=f"Airflow {label} is {status}{seen}: {impact}",
        )  # fmt: skip
    if age is not None and age > critical_age:
        return CheckResult(
            **base, **metric, status=Status.CRITICAL, severity=severity, details=details,
            summary=f"Airflow {label} reported healthy but its heartbeat is stale{seen}: {impact}",
        )  # fmt: skip
    if age is not None and age > warning_age:
        return CheckResult(
            **base, **metric, status=Status.WARNING, details=details,
            summary=f"Airflow {label} healthy, heartbeat late{seen}",
        )  # fmt: skip
    return CheckResult(
        **base, **metric, status=Status.OK, details=details, summary=f"Airflow {label} healthy{seen}"
    )


def _ago(age: timedelta | None) -> str:
    if age is None:
        return "never"
    seconds = max(int(age.total_seconds()), 0)
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def check_airflow_health(
    base_url: str,
    *,
    path: str = "/api/v2/monitor/health",
    timeout_s: float = 10,
    heartbeat_warning: timedelta = timedelta(minutes=2),
    heartbeat_critical: timedelta = timedelta(minutes=10),
    auth: tuple[str, str] | None = None,
    now: datetime | None = None,
    client: httpx.Client | None = None,
) -> list[CheckResult]:
    """One result per Airflow component from the api-server's health endpoint (see module doc).

    :param base_url: the api-server, e.g. ``http://airflow-apiserver:8080``.
    :param now: the time heartbeats are aged against (default now, UTC).
    """
    if heartbeat_warning >= heartbeat_critical:
        raise ValueError("heartbeat_warning must be shorter than heartbeat_critical")
    url = base_url.rstrip("/") + "/" + path.lstrip("/")
    shown = redact_url(url)
    now = now or datetime.now(UTC)
    started = time.perf_counter()
    try:
        if client is None:
            with httpx.Client(timeout=timeout_s, follow_redirects=False, auth=auth) as own:
                response = own.get(url)
        else:
            response = client.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return [
            CheckResult(
                check="airflow.api",
                status=Status.CRITICAL,
                severity="P2",
                component="airflow",
                summary=f"Airflow api-server at {shown} did not answer: {type(exc).__name__}: {exc}"[:500],
                details={"url": shown},
            )
        ]
    latency_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        return [
            CheckResult(
                check="airflow.api",
                status=Status.CRITICAL,
                severity="P2",
                component="airflow",
                summary=f"Airflow health endpoint {shown} answered HTTP {response.status_code}",
                details={"url": shown, "status_code": response.status_code},
            )
        ]
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return [
            CheckResult(
                check="airflow.api",
                status=Status.ERROR,
                component="airflow",
                summary=f"Airflow health endpoint {shown} did not answer with a JSON object",
                details={"url": shown},
            )
        ]
    results = [
        _grade(name, body.get(name), now, heartbeat_warning, heartbeat_critical, shown) for name in COMPONENTS
    ]
    results.insert(
        0,
        CheckResult(
            check="airflow.api",
            status=Status.OK,
            component="airflow",
            summary=f"Airflow api-server answered in {latency_ms:.0f} ms",
            metric="latency_ms",
            observed=latency_ms,
            unit="ms",
            details={"url": shown},
        ),
    )
    return results
