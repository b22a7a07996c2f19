"""HTTP probes of the frontend and backend endpoints, all at once.

Every endpoint gets one request, sent concurrently over one shared ``httpx.AsyncClient`` whose
connection pool is sized to the endpoint count, so 50 endpoints that each answer after 200 ms
take about 200 ms in total, not 10 s. Each request is held to its endpoint's own
``timeout_seconds`` as a wall-clock limit (``asyncio.wait_for``), not only httpx's
per-read limits, so a server that trickles bytes cannot stretch a probe.

One result per endpoint (``http.<endpoint name>``):

- wrong status or no answer at all → ``critical`` (P1 for a production endpoint, P2 elsewhere:
  the guide's "service down" vs "major feature unavailable");
- answered, but slower than the p95 SLO (or the guide's latency warning, whichever is lower)
  → ``warning``; slower than the guide's latency critical → ``critical`` (P3, "performance
  degraded"; P4 outside production);
- otherwise ``ok``. The observed latency (ms) is kept either way.

A single probe is one sample, not a p95; it is held to the p95 limits because a healthy
endpoint answers a single request well inside them. Latency runs from sending the request to
the end of the response body, connect and TLS included: what a user's first request costs.
Redirects are not followed: what an endpoint answers is what is compared with
``expect_status``. Proxy variables (``HTTPS_PROXY``, ``NO_PROXY``) are honoured, as a
worker behind a corporate proxy needs.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

# httpx loads its transport stack (anyio's asyncio backend, httpcore, h11) lazily on the first
# request: ~150 ms that would otherwise be measured as the first probes' latency in every fresh
# task process and trip the 300 ms SLO. Importing them here keeps that cost out of the timing.
# anyio has no public call that loads its asyncio backend: anyio imports this module itself on first use.
import anyio._backends._asyncio  # noqa: F401
import anyio.to_thread  # noqa: F401
import h11  # noqa: F401
import httpcore  # noqa: F401
import httpx

from sanvi_ops.core.results import CheckResult, Status

__all__ = ["EndpointLike", "check_endpoints"]

USER_AGENT = "sanvi-ops-health-check/1"

T = TypeVar("T")


class EndpointLike(Protocol):
    """What a probe needs to know about an endpoint (``sanvi_ops.tasks.system_health_check.config.Endpoint`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def component(self) -> str: ...
    @property
    def expect_status(self) -> int: ...
    @property
    def timeout_seconds(self) -> float: ...


@dataclass(frozen=True)
class _Limits:
    slo_p95_ms: float
    latency_warning_ms: float
    latency_critical_ms: float

    @property
    def warning_ms(self) -> float:
        return min(self.slo_p95_ms, self.latency_warning_ms)


def redact_url(url: str) -> str:
    """``url`` without user:password, fit for a log line, a stored result or Slack."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _is_production(endpoint: EndpointLike) -> bool:
    return endpoint.environment.strip().lower() == "production"


def _base(endpoint: EndpointLike, limits: _Limits) -> dict[str, Any]:
    return {
        "check": f"http.{endpoint.name}",
        "component": endpoint.component,
        "metric": "latency_ms",
        "unit": "ms",
        "thresholds": {"warning": limits.warning_ms, "critical": limits.latency_critical_ms},
    }


def _details(endpoint: EndpointLike, limits: _Limits, **extra: Any) -> dict[str, Any]:
    return {
        "url": redact_url(str(endpoint.url)),
        "environment": endpoint.environment,
        "expect_status": endpoint.expect_status,
        "timeout_s": endpoint.timeout_seconds,
        "slo_p95_ms": limits.slo_p95_ms,
        "latency_warning_ms": limits.latency_warning_ms,
        "latency_critical_ms": limits.latency_critical_ms,
        **extra,
    }


def _grade_answer(
    endpoint: EndpointLike, limits: _Limits, status_code: int, latency_ms: float
) -> CheckResult:
    """Grade an endpoint that answered: its status code first, then its latency."""
    prod = _is_production(endpoint)
    base = _base(endpoint, limits)
    details = _details(endpoint, limits, status_code=status_code, latency_ms=round(latency_ms, 1))
    latency = round(latency_ms)
    if status_code != endpoint.expect_status:
        return CheckResult(
            **base,
            status=Status.CRITICAL,
            summary=(
                f"{endpoint.name} answered HTTP {status_code}, expected {endpoint.expect_status} "
                f"({latency} ms)"
            ),
            observed=latency_ms,
            details=details,
            severity="P1" if prod else "P2",
        )
    if latency_ms > limits.latency_critical_ms:
        return CheckResult(
            **base,
            status=Status.CRITICAL,
            summary=(
                f"{endpoint.name} answered {status_code} in {latency} ms, above the "
                f"{limits.latency_critical_ms:g} ms critical latency"
            ),
            observed=latency_ms,
            details=details,
            severity="P3" if prod else "P4",
        )
    if latency_ms > limits.warning_ms:
        crossed = []
        if latency_ms > limits.slo_p95_ms:
            crossed.append(f"the {limits.slo_p95_ms:g} ms p95 SLO")
        if latency_ms > limits.latency_warning_ms:
            crossed.append(f"the {limits.latency_warning_ms:g} ms latency warning")
        return CheckResult(
            **base,
            status=Status.WARNING,
            summary=f"{endpoint.name} answered {status_code} in {latency} ms, above {' and '.join(crossed)}",
            observed=latency_ms,
            details=details,
        )
    return CheckResult(
        **base,
        status=Status.OK,
        summary=f"{endpoint.name} answered {status_code} in {latency} ms (SLO p95 {limits.slo_p95_ms:g} ms)",
        observed=latency_ms,
        details=details,
    )


def _no_answer(endpoint: EndpointLike, limits: _Limits, summary: str, **extra: Any) -> CheckResult:
    return CheckResult(
        **_base(endpoint, limits),
        status=Status.CRITICAL,
        summary=summary,
        details=_details(endpoint, limits, **extra),
        severity="P1" if _is_production(endpoint) else "P2",
    )


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    """The most specific reason in the exception chain ("connection refused", not "All
    connection attempts failed", which is all anyio says at the top)."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ConnectionError) and cause.errno:
            return os.strerror(cause.errno)  # "Connection refused", "Connection reset by peer"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror  # e.g. socket.gaierror: "Name or service not known"
        cause = cause.__cause__ or cause.__context__
    return str(exc).strip() or type(exc).__name__


async def _probe(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, endpoint: EndpointLike, limits: _Limits
) -> CheckResult:
    timeout_s = float(endpoint.timeout_seconds)
    async with gate:
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(
                client.get(str(endpoint.url), timeout=httpx.Timeout(timeout_s)), timeout=timeout_s
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            return _no_answer(
                endpoint,
                limits,
                f"{endpoint.name} did not answer within {timeout_s:g} s",
                error=type(exc).__name__,
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return CheckResult(
                **_base(endpoint, limits),
                status=Status.ERROR,
                summary=f"{endpoint.name}: cannot probe {redact_url(str(endpoint.url))!r}: {exc}",
                details=_details(endpoint, limits, error=type(exc).__name__),
            )
        except httpx.HTTPError as exc:
            reason = _describe_transport_error(exc)
            return _no_answer(
                endpoint,
                limits,
                f"{endpoint.name} is unreachable: {reason}",
                error=type(exc).__name__,
                error_message=reason,
            )
        latency_ms = (time.perf_counter() - started) * 1000.0
    return _grade_answer(endpoint, limits, response.status_code, latency_ms)


async def _probe_all(
    endpoints: Sequence[EndpointLike], limits: _Limits, concurrency: int
) -> list[CheckResult]:
    size = max(1, min(len(endpoints), concurrency))
    gate = asyncio.Semaphore(size)
    pool = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with httpx.AsyncClient(
        limits=pool, follow_redirects=False, headers={"User-Agent": USER_AGENT}
    ) as client:
        return list(await asyncio.gather(*(_probe(client, gate, ep, limits) for ep in endpoints)))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, also when the caller already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sanvi-http-probe") as pool:
        return pool.submit(asyncio.run, coro).result()


def check_endpoints(
    endpoints: Sequence[EndpointLike],
    slo_p95_ms: float,
    latency_warning_ms: float,
    latency_critical_ms: float,
    concurrency: int = 50,
) -> list[CheckResult]:
    """Probe every endpoint concurrently; one result per endpoint, in the given order.

    :param endpoints: objects with ``name, url, environment, component, expect_status,
        timeout_seconds`` (e.g. ``cfg.tasks.system_health_check.settings.endpoints``). Names must be unique: they
        become the check names ``http.<name>``.
    :param slo_p95_ms: the response-time SLO (guide: 300 ms); above it → ``warning``.
    :param latency_warning_ms: the guide's latency warning (500 ms); above it → ``warning`` too.
    :param latency_critical_ms: the guide's latency critical (1000 ms); above it → ``critical``.
    :param concurrency: at most this many requests in flight (and pooled connections).
    :raises ValueError: on duplicate endpoint names, bad limits or ``concurrency < 1``.
    """
    if concurrency < 1:
        raise ValueError(f"check_endpoints: concurrency must be >= 1, got {concurrency}")
    if not (0 < slo_p95_ms and 0 < latency_warning_ms < latency_critical_ms):
        raise ValueError(
            "check_endpoints: need 0 < slo_p95_ms and 0 < latency_warning_ms < latency_critical_ms, "
            f"got {slo_p95_ms}, {latency_warning_ms}, {latency_critical_ms}"
        )
    if not endpoints:
        return [
            CheckResult(
                check="http",
                status=Status.SKIPPED,
                summary="No HTTP endpoints configured (tasks.system_health_check.settings.endpoints is empty)",
                component="http",
            )
        ]
    names = [ep.name for ep in endpoints]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"check_endpoints: endpoint names must be unique, duplicated: {', '.join(duplicates)}"
        )
    for ep in endpoints:
        if not ep.timeout_seconds > 0:
            raise ValueError(f"check_endpoints: endpoint {ep.name!r}: timeout_seconds must be > 0")
    limits = _Limits(slo_p95_ms, latency_warning_ms, latency_critical_ms)
    return _run(_probe_all(endpoints, limits, concurrency))
