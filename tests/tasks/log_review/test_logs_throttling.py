"""CloudWatch throttling through botocore's real retry path.

moto cannot throttle, and under a ``Stubber`` botocore does not retry, so this test puts a tiny
CloudWatch-Logs-shaped HTTP endpoint on 127.0.0.1 that answers ``ThrottlingException`` (HTTP
400, ``{"__type": "ThrottlingException"}`` as the CloudWatch Logs JSON protocol does) for the
first N requests. It checks that the adaptive retry mode retries and recovers, and that a
throttle that outlasts the attempts becomes a clear ``error`` result. Only request counts are
asserted, never timings.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from sanvi_ops.core.config import Threshold
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.log_review.logs import RateLimits, logs_client_config, review_group

pytestmark = pytest.mark.integration

LIMITS = RateLimits(Threshold(warning=1, critical=5, unit="%"), Threshold(warning=1, critical=10, unit="x"))


class _Throttler:
    def __init__(self) -> None:
        self.throttle_first = 0
        self.requests = 0


@pytest.fixture
def throttling_logs() -> Iterator[tuple[str, _Throttler]]:
    state = _Throttler()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests += 1
            if state.requests <= state.throttle_first:
                status, body = 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
            else:
                status, body = 200, {"events": [], "searchedLogStreams": []}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("x-amzn-RequestId", f"req-{state.requests}")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def _review(endpoint: str, attempts: int):
    client = boto3.client(
        "logs",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url=endpoint,
        config=logs_client_config(attempts),
    )
    return review_group(
        client,
        "/ecs/backend",
        end=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        window=timedelta(hours=24),
        pattern="?ERROR",
        max_events=10,
        max_total_events=0,
        limits=LIMITS,
        store=None,
        run_id="r",
        new_window=timedelta(days=7),
        top=5,
        attempts=attempts,
    )


def test_throttling_is_retried_and_recovers(throttling_logs) -> None:
    endpoint, state = throttling_logs
    state.throttle_first = 2
    results = _review(endpoint, attempts=3)
    assert state.requests == 3  # two throttled, the third answered
    assert [r.status for r in results] == [Status.OK, Status.OK]


def test_persistent_throttling_is_a_clear_error_after_all_attempts(throttling_logs) -> None:
    endpoint, state = throttling_logs
    state.throttle_first = 1000
    (r,) = _review(endpoint, attempts=3)
    assert state.requests == 3
    assert r.status is Status.ERROR and "throttled" in r.summary and "after 3 attempt(s)" in r.summary
