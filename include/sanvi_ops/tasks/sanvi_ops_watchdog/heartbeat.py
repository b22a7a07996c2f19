"""The dead man's switch: ping an outside monitor so that silence from us is itself an alarm.

Services such as healthchecks.io, Cronitor or Better Stack give a URL per check and alert when it
has not been requested within its period (plus a grace time). The watchdog DAG requests it every
``meta_monitoring.watchdog.every_minutes``; a stopped scheduler, a dead worker fleet or a broken
metadata database all end the pings, and the outside monitor (which does not run on this
platform) raises the alarm. Airflow cannot report its own death; this is how it is noticed.

:func:`ping` is plain HTTP (GET, any 2xx is success) with a bounded timeout, no retries of its own
(the Airflow task retries), and never puts the URL's secret path in a message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = ["PingResult", "ping", "public_target"]

USER_AGENT = "sanvi-ops-watchdog/1"


@dataclass(frozen=True)
class PingResult:
    ok: bool
    detail: str
    status_code: int | None = None
    latency_ms: float | None = None


def public_target(url: str) -> str:
    """``https://hc-ping.com/…``: scheme and host only (the path of a ping URL is its secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}/…"


def ping(url: str, *, timeout_s: float = 10, body: str | None = None) -> PingResult:
    """Request the heartbeat URL once; ``ok`` when it answers 2xx within ``timeout_s``.

    :param body: sent with POST when given (healthchecks.io shows it with the ping), else GET.
    """
    target = public_target(url)
    started = time.perf_counter()
    try:
        with httpx.Client(
            timeout=timeout_s, follow_redirects=True, headers={"User-Agent": USER_AGENT}
        ) as client:
            response = client.post(url, content=body) if body is not None else client.get(url)
    except httpx.HTTPError as exc:
        return PingResult(False, f"heartbeat ping to {target} failed: {type(exc).__name__}")
    latency = (time.perf_counter() - started) * 1000
    if 200 <= response.status_code < 300:
        return PingResult(True, f"heartbeat ping to {target}: HTTP {response.status_code} in {latency:.0f} ms",
                          response.status_code, latency)  # fmt: skip
    return PingResult(
        False,
        f"heartbeat ping to {target} answered HTTP {response.status_code}",
        response.status_code,
        latency,
    )
