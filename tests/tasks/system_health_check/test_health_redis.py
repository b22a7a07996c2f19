"""Redis health check against real redis-server processes on 127.0.0.1."""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devstack.postgres import free_port
from devstack.redis import LocalRedis
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.system_health_check.health.redis import check_redis

pytestmark = pytest.mark.integration

GUIDE = {"timeout_s": 5, "memory_warning_pct": 80, "memory_critical_pct": 90}


def by_check(results):
    return {r.check: r for r in results}


def test_up_is_ok(redis_server):
    results = check_redis(redis_server.url, **GUIDE)
    assert [r.check for r in results] == ["redis.availability", "redis.memory", "redis.clients"]
    avail, memory, clients = results
    assert avail.status is Status.OK, avail.summary
    assert avail.summary.startswith(f"Redis at 127.0.0.1:{redis_server.port} answered PING in")
    assert avail.metric == "ping_latency_ms" and avail.observed is not None
    assert memory.status is Status.OK, memory.summary
    assert memory.details["maxmemory_bytes"] == 64 * 1024 * 1024
    assert memory.observed is not None and 0 < memory.observed < 80
    assert memory.thresholds == {"warning": 80, "critical": 90}
    assert clients.status is Status.OK and clients.observed is not None and clients.observed >= 1
    assert "clients connected" in clients.summary


def test_wrong_password_is_critical_and_never_shows_a_password(redis_server):
    wrong = "Wr0ng-" + secrets.token_hex(6)
    url = f"redis://:{wrong}@127.0.0.1:{redis_server.port}/0"
    results = check_redis(url, **GUIDE)
    avail = by_check(results)["redis.availability"]
    assert avail.status is Status.CRITICAL and avail.severity == "P2"
    assert "rejected our credentials" in avail.summary
    dumped = json.dumps([r.to_dict() for r in results])
    assert wrong not in dumped and redis_server.password not in dumped
    assert by_check(results)["redis.memory"].status is Status.SKIPPED


def test_no_password_where_one_is_required_is_critical(redis_server):
    avail = check_redis(f"redis://127.0.0.1:{redis_server.port}/0", **GUIDE)[0]
    assert avail.status is Status.CRITICAL
    assert "rejected our credentials" in avail.summary


def test_down_is_critical_p1():
    port = free_port()  # nothing listens there
    avail, memory, clients = check_redis(f"redis://:pw@127.0.0.1:{port}/0", **GUIDE)
    assert avail.status is Status.CRITICAL and avail.severity == "P1"
    assert avail.summary.startswith(f"Redis at 127.0.0.1:{port} is unreachable:")
    assert "refused" in avail.summary.lower()
    assert memory.status is Status.SKIPPED and clients.status is Status.SKIPPED


def test_bad_arguments_are_refused(redis_server):
    with pytest.raises(ValueError, match="memory_warning_pct < memory_critical_pct"):
        check_redis(redis_server.url, timeout_s=5, memory_warning_pct=95, memory_critical_pct=90)


# --- memory near maxmemory, on a small server of its own -----------------------------------------


@pytest.fixture(scope="module")
def small_redis() -> Iterator[LocalRedis]:
    server = LocalRedis(
        Path(tempfile.mkdtemp(prefix="sanvi-test-redis-small-")),
        password=secrets.token_hex(12),
        maxmemory="4mb",
    )
    server.start()
    client = redis.Redis.from_url(server.url)
    # Refuse writes at the limit instead of evicting, so memory stays where we put it.
    client.config_set("maxmemory-policy", "noeviction")
    yield server
    client.close()
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


def fill_to(client: redis.Redis, low: float, high: float) -> float:
    """Write 8 KiB values until used_memory is at least ``low`` % of maxmemory (and below ``high``)."""
    chunk = b"x" * 8192
    i = client.dbsize()
    while True:
        info = client.info("memory")
        pct = 100.0 * info["used_memory"] / info["maxmemory"]
        if pct >= low:
            assert pct < high, f"overshot: {pct:.1f} %"
            return pct
        client.set(f"fill:{i}", chunk)
        i += 1


def test_memory_near_maxmemory_warns_then_goes_critical(small_redis):
    client = redis.Redis.from_url(small_redis.url)
    try:
        memory = by_check(check_redis(small_redis.url, **GUIDE))["redis.memory"]
        assert memory.status is Status.OK, memory.summary

        fill_to(client, 84, 87)
        memory = by_check(check_redis(small_redis.url, **GUIDE))["redis.memory"]
        assert memory.status is Status.WARNING, memory.summary
        assert 80 < memory.observed <= 90
        assert "above 80 %" in memory.summary and "of 4.0 MiB maxmemory used" in memory.summary

        fill_to(client, 94, 98)
        memory = by_check(check_redis(small_redis.url, **GUIDE))["redis.memory"]
        assert memory.status is Status.CRITICAL, memory.summary
        assert memory.observed > 90 and memory.severity == "P2"
        assert memory.details["maxmemory_policy"] == "noeviction"
        assert "policy noeviction applies" in memory.summary
    finally:
        client.flushall()
        client.close()


def test_no_maxmemory_means_no_limit(small_redis):
    client = redis.Redis.from_url(small_redis.url)
    try:
        client.config_set("maxmemory", "0")
        memory = by_check(check_redis(small_redis.url, **GUIDE))["redis.memory"]
        assert memory.status is Status.OK
        assert memory.observed is None
        assert "maxmemory is 0 (no limit)" in memory.summary
        assert "no limit" in memory.details["note"]
    finally:
        client.config_set("maxmemory", "4mb")
        client.close()
