"""Redis health: PING, memory used vs ``maxmemory``, connected clients.

Works the same against ElastiCache, which disables ``CONFIG``: everything is read from ``INFO``.
Three results, always all three (the run's list of checks keeps its shape when Redis is down):

- ``redis.availability``: PING round trip (ms). Unreachable → ``critical`` P1 (sessions and
  cache are gone: "service down"); password rejected → ``critical`` P2 naming the reason.
- ``redis.memory``: ``used_memory`` as % of ``maxmemory``, graded against the guide's memory
  thresholds (80 % / 90 %). With ``maxmemory`` 0 Redis has no limit of its own: ``ok`` with a
  note, since only the host's memory (the Prometheus memory check) bounds it then. At the limit
  Redis either evicts keys (sessions lost) or refuses writes, depending on its policy, which is
  kept in the details.
- ``redis.clients``: ``connected_clients`` (and ``maxclients`` when the server reports it), for
  the record; informational.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sanvi_ops.core.results import CheckResult, Status, grade

__all__ = ["check_redis"]


def _target(url: str) -> str:
    try:
        parts = urlsplit(url)
        return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return "<unparseable redis URL>"


def _password(url: str) -> str:
    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def _clean(exc: BaseException, url: str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    secret = _password(url)
    if secret:
        text = text.replace(secret, "***")
    return text.rstrip(". ")


def _skipped(
    check: str, metric: str, unit: str, reason: str, thresholds: dict[str, float] | None = None
) -> CheckResult:
    return CheckResult(
        check=check,
        status=Status.SKIPPED,
        summary=f"Not measured: {reason}",
        metric=metric,
        unit=unit,
        thresholds=thresholds or {},
        component="redis",
    )


def _down(url: str, exc: BaseException, memory_thresholds: dict[str, float]) -> list[CheckResult]:
    where = f"Redis at {_target(url)}"
    reason = _clean(exc, url)
    details: dict[str, Any] = {"target": _target(url), "error": type(exc).__name__, "reason": reason}
    if isinstance(exc, redis.AuthenticationError) or "NOAUTH" in reason or "WRONGPASS" in reason:
        if not _password(url):
            reason = "it requires a password and the connection has none"
            details["reason"] = reason
        availability = CheckResult(
            check="redis.availability",
            status=Status.CRITICAL,
            summary=f"{where} rejected our credentials: {reason}; check the connection's password",
            details=details,
            severity="P2",
            component="redis",
        )
    else:
        availability = CheckResult(
            check="redis.availability",
            status=Status.CRITICAL,
            summary=f"{where} is unreachable: {reason}",
            details=details,
            severity="P1",
            component="redis",
        )
    why = "Redis could not be reached (see redis.availability)"
    return [
        availability,
        _skipped("redis.memory", "memory_used_pct", "%", why, memory_thresholds),
        _skipped("redis.clients", "connected_clients", "count", why),
    ]


def _memory(info: dict[str, Any], warning_pct: float, critical_pct: float) -> CheckResult:
    used = int(info.get("used_memory", 0))
    limit = int(info.get("maxmemory", 0))
    policy = str(info.get("maxmemory_policy", "unknown"))
    thresholds = {"warning": warning_pct, "critical": critical_pct}
    details: dict[str, Any] = {
        "used_memory_bytes": used,
        "used_memory_human": info.get("used_memory_human"),
        "maxmemory_bytes": limit,
        "maxmemory_policy": policy,
    }
    if limit <= 0:
        return CheckResult(
            check="redis.memory",
            status=Status.OK,
            summary=(
                f"{used / 1048576:.1f} MiB used; maxmemory is 0 (no limit): only the host's memory bounds "
                "Redis, see the host memory check"
            ),
            metric="memory_used_pct",
            unit="%",
            thresholds=thresholds,
            details={**details, "note": "maxmemory 0 = no limit; percentage not applicable"},
            component="redis",
        )
    pct = 100.0 * used / limit
    status = grade(pct, warning_pct, critical_pct)
    tail = {
        Status.OK: "",
        Status.WARNING: f", above {warning_pct:g} %",
        Status.CRITICAL: f", above {critical_pct:g} %; at the limit policy {policy} applies",
    }[status]
    return CheckResult(
        check="redis.memory",
        status=status,
        summary=f"{used / 1048576:.1f} of {limit / 1048576:.1f} MiB maxmemory used ({pct:.0f} %{tail})",
        metric="memory_used_pct",
        observed=round(pct, 2),
        unit="%",
        thresholds=thresholds,
        details=details,
        severity="P2" if status is Status.CRITICAL else None,
        component="redis",
    )


def _clients(info: dict[str, Any]) -> CheckResult:
    connected = int(info.get("connected_clients", 0))
    details: dict[str, Any] = {
        "connected_clients": connected,
        "blocked_clients": int(info.get("blocked_clients", 0)),
    }
    summary = f"{connected} clients connected"
    if "maxclients" in info:  # INFO reports it from Redis 7
        details["maxclients"] = int(info["maxclients"])
        summary += f" (maxclients {int(info['maxclients'])})"
    return CheckResult(
        check="redis.clients",
        status=Status.OK,
        summary=summary,
        metric="connected_clients",
        observed=float(connected),
        unit="count",
        details=details,
        component="redis",
    )


def check_redis(
    url: str,
    timeout_s: float,
    memory_warning_pct: float,
    memory_critical_pct: float,
    *,
    latency_warning_ms: float = 500.0,
    latency_critical_ms: float = 1000.0,
) -> list[CheckResult]:
    """Check one Redis server; returns ``redis.availability``, ``redis.memory``, ``redis.clients``.

    :param url: ``redis://[:password@]host:port/db`` or ``rediss://`` (TLS). Never logged.
    :param timeout_s: socket connect and read timeout. No retries: a health check reports what
        it saw, and retrying would multiply the time a dead server costs.
    :param memory_warning_pct: used_memory as % of maxmemory above which → warning (guide: 80).
    :param memory_critical_pct: ... → critical (guide: 90).
    :param latency_warning_ms: PING round trip above this → warning (guide latency 500 ms).
    :param latency_critical_ms: ... → critical, P3 "performance degraded" (guide 1 s).
    """
    if not 0 < memory_warning_pct < memory_critical_pct:
        raise ValueError(
            "check_redis: need 0 < memory_warning_pct < memory_critical_pct, "
            f"got {memory_warning_pct}, {memory_critical_pct}"
        )
    if not timeout_s > 0:
        raise ValueError(f"check_redis: timeout_s must be > 0, got {timeout_s}")
    memory_thresholds = {"warning": memory_warning_pct, "critical": memory_critical_pct}
    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
    try:
        started = time.perf_counter()
        client.ping()  # connects and authenticates
        connect_ms = (time.perf_counter() - started) * 1000.0
        started = time.perf_counter()
        client.ping()  # the round trip alone
        ping_ms = (time.perf_counter() - started) * 1000.0
        info: dict[str, Any] = dict(client.info("memory"))
        info.update(client.info("clients"))
        info.update(
            {k: v for k, v in client.info("server").items() if k in {"redis_version", "uptime_in_seconds"}}
        )
    except redis.RedisError as exc:
        return _down(url, exc, memory_thresholds)
    finally:
        client.close()
    status = grade(ping_ms, latency_warning_ms, latency_critical_ms)
    where = f"Redis at {_target(url)}"
    summary = f"{where} answered PING in {ping_ms:.1f} ms"
    if status is not Status.OK:
        limit = latency_critical_ms if status is Status.CRITICAL else latency_warning_ms
        summary += f", above {limit:g} ms"
    availability = CheckResult(
        check="redis.availability",
        status=status,
        summary=summary,
        metric="ping_latency_ms",
        observed=round(ping_ms, 3),
        unit="ms",
        thresholds={"warning": latency_warning_ms, "critical": latency_critical_ms},
        details={
            "target": _target(url),
            "connect_ms": round(connect_ms, 3),
            "redis_version": info.get("redis_version"),
            "uptime_s": info.get("uptime_in_seconds"),
        },
        severity="P3" if status is Status.CRITICAL else None,
        component="redis",
    )
    return [availability, _memory(info, memory_warning_pct, memory_critical_pct), _clients(info)]
