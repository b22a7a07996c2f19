"""HTTP endpoint probes against a real threaded HTTP server on 127.0.0.1.

Timing: delays are only ever asserted as lower bounds (a sleep guarantees the probe is at least
that slow); upper bounds are generous, so a loaded CI machine cannot flip a result.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from devstack.postgres import free_port
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.system_health_check.config import Endpoint
from sanvi_ops.tasks.system_health_check.health.http import check_endpoints

pytestmark = pytest.mark.integration

GUIDE = {"slo_p95_ms": 300, "latency_warning_ms": 500, "latency_critical_ms": 1000}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 50 probes connect at once; the default backlog of 5 would stall them
    release = threading.Event()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/hang":
            self.server.release.wait(30)
        time.sleep(float(query.get("delay", "0")))
        status = int(query.get("status", "200"))
        body = b"hello"
        self.send_response(status)
        if status in (301, 302):
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.release = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.release.set()
    server.shutdown()
    server.server_close()


def ep(name: str, url: str, environment: str = "production", **kw: object) -> Endpoint:
    return Endpoint(name=name, url=url, environment=environment, component="backend", **kw)


def one(endpoint: object, **limits: float) -> CheckResult:
    (result,) = check_endpoints([endpoint], **{**GUIDE, **limits})  # type: ignore[list-item]
    return result


def test_fast_200_is_ok(web):
    r = one(ep("prod-api", f"{web}/api/health"))
    assert r.status is Status.OK, r.summary
    assert r.check == "http.prod-api" and r.component == "backend"
    assert r.metric == "latency_ms" and r.unit == "ms"
    assert r.observed is not None and 0 < r.observed < 300
    assert r.thresholds == {"warning": 300, "critical": 1000}
    assert r.details["status_code"] == 200 and r.details["url"] == f"{web}/api/health"
    assert r.severity is None
    assert "answered 200" in r.summary


def test_slower_than_the_slo_is_a_warning(web):
    # critical raised out of reach so only the SLO decides (the sleep is a lower bound).
    r = one(ep("slow", f"{web}/?delay=0.35"), latency_critical_ms=30_000)
    assert r.status is Status.WARNING, r.summary
    assert r.observed is not None and r.observed >= 350
    assert "above the 300 ms p95 SLO" in r.summary
    assert r.severity is None


def test_slower_than_the_guide_warning_says_so_too(web):
    r = one(ep("slower", f"{web}/?delay=0.55"), latency_critical_ms=30_000)
    assert r.status is Status.WARNING
    assert "the 300 ms p95 SLO and the 500 ms latency warning" in r.summary


def test_slower_than_the_latency_critical_is_critical_p3(web):
    r = one(ep("crawl", f"{web}/?delay=0.6"), latency_warning_ms=400, latency_critical_ms=500)
    assert r.status is Status.CRITICAL, r.summary
    assert r.severity == "P3"
    assert "above the 500 ms critical latency" in r.summary
    staging = one(
        ep("crawl-stg", f"{web}/?delay=0.6", environment="staging"),
        latency_warning_ms=400,
        latency_critical_ms=500,
    )
    assert staging.severity == "P4"


def test_500_is_critical_p1_in_production_and_p2_elsewhere(web):
    prod = one(ep("prod", f"{web}/?status=500"))
    assert prod.status is Status.CRITICAL and prod.severity == "P1"
    assert prod.summary.startswith("prod answered HTTP 500, expected 200")
    assert prod.observed is not None  # latency is kept even for a wrong status
    stg = one(ep("stg", f"{web}/?status=500", environment="staging"))
    assert stg.status is Status.CRITICAL and stg.severity == "P2"


def test_expected_status_other_than_200_and_redirects_are_not_followed(web):
    assert one(ep("nocontent", f"{web}/?status=204", expect_status=204)).status is Status.OK
    redirected = one(ep("redir", f"{web}/?status=302"))
    assert redirected.status is Status.CRITICAL and redirected.details["status_code"] == 302


def test_connection_refused_is_critical():
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    r = one(ep("gone", url))
    assert r.status is Status.CRITICAL and r.severity == "P1"
    assert r.summary.startswith("gone is unreachable:")
    assert "refused" in r.summary.lower()
    assert r.observed is None


def test_no_answer_within_the_timeout_is_critical(web):
    started = time.monotonic()
    r = one(ep("stuck", f"{web}/hang", timeout_seconds=0.5))
    assert time.monotonic() - started < 10  # nowhere near the 30 s the handler would hang
    assert r.status is Status.CRITICAL and r.severity == "P1"
    assert r.summary == "stuck did not answer within 0.5 s"
    assert r.details["timeout_s"] == 0.5


def test_fifty_endpoints_concurrently_each_graded_on_its_own(web):
    endpoints = []
    for i in range(50):
        if i % 5 == 0:
            endpoints.append(ep(f"e{i:02d}", f"{web}/?delay=0.2&status=503", environment="staging"))
        else:
            endpoints.append(ep(f"e{i:02d}", f"{web}/?delay=0.2"))
    results = check_endpoints(endpoints, slo_p95_ms=300, latency_warning_ms=500, latency_critical_ms=30_000)
    assert [r.check for r in results] == [f"http.e{i:02d}" for i in range(50)]
    for i, r in enumerate(results):
        assert r.observed is not None and r.observed >= 200
        if i % 5 == 0:
            assert r.status is Status.CRITICAL and r.severity == "P2" and r.details["status_code"] == 503
        else:
            assert r.status in (Status.OK, Status.WARNING), r.summary  # 200 ms + scheduling
            assert r.details["status_code"] == 200


def test_one_dead_endpoint_does_not_hide_the_others(web):
    results = check_endpoints(
        [ep("a", f"{web}/"), ep("dead", f"http://127.0.0.1:{free_port()}/"), ep("c", f"{web}/")], **GUIDE
    )
    assert [r.status for r in results] == [Status.OK, Status.CRITICAL, Status.OK]


def test_credentials_in_urls_never_reach_the_result(web):
    host = web.removeprefix("http://")
    r = one(ep("basic", f"http://user:s3cret@{host}/"))
    assert "s3cret" not in str(r.to_dict())
    assert r.details["url"] == f"{web}/"


def test_works_when_called_from_inside_an_event_loop(web):
    async def caller() -> list[CheckResult]:
        return check_endpoints([ep("in-loop", f"{web}/")], **GUIDE)

    (r,) = asyncio.run(caller())
    assert r.status is Status.OK


@dataclass(frozen=True)
class PlainEndpoint:
    """Anything with the Endpoint attributes works; no dependency on the config model."""

    name: str
    url: str
    environment: str = "production"
    component: str = "frontend"
    expect_status: int = 200
    timeout_seconds: float = 2.0


def test_plain_objects_and_a_bad_scheme(web):
    ok, bad = check_endpoints(
        [PlainEndpoint("plain", f"{web}/"), PlainEndpoint("ftp", "ftp://127.0.0.1/x")], **GUIDE
    )
    assert ok.status is Status.OK and ok.component == "frontend"
    assert bad.status is Status.ERROR and "cannot probe" in bad.summary


def test_nothing_to_probe_and_bad_arguments(web):
    (skipped,) = check_endpoints([], **GUIDE)
    assert (
        skipped.status is Status.SKIPPED and "tasks.system_health_check.settings.endpoints" in skipped.summary
    )
    with pytest.raises(ValueError, match="unique, duplicated: x"):
        check_endpoints([ep("x", f"{web}/"), ep("x", f"{web}/")], **GUIDE)
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        check_endpoints([ep("x", f"{web}/")], concurrency=0, **GUIDE)
    with pytest.raises(ValueError, match="latency_warning_ms < latency_critical_ms"):
        check_endpoints(
            [ep("x", f"{web}/")], slo_p95_ms=300, latency_warning_ms=1000, latency_critical_ms=500
        )
