"""CloudWatch throttling with botocore's ``Stubber``: moto never throttles, so the
``ThrottlingException`` AWS returns (CloudWatch Logs API Reference, Common Errors) is fed in
by a Stubber. botocore's own retries do not run under a Stubber; that the client is built with
the adaptive retry mode is asserted separately.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from sanvi_ops.core.config import Threshold
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.log_review.logs import RateLimits, logs_client_config, review_group

pytestmark = pytest.mark.unit

END = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
LIMITS = RateLimits(Threshold(warning=1, critical=5, unit="%"), Threshold(warning=1, critical=10, unit="x"))


def _client():
    return boto3.client(
        "logs",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
        config=logs_client_config(4),
    )


def _review(client, **kw):
    return review_group(
        client,
        "/ecs/backend",
        end=END,
        window=timedelta(hours=24),
        pattern="?ERROR",
        max_events=100,
        max_total_events=100,
        limits=LIMITS,
        store=None,
        run_id="r",
        new_window=timedelta(days=7),
        top=5,
        attempts=4,
        **kw,
    )


def test_adaptive_retry_mode_is_configured() -> None:
    client = _client()
    assert client.meta.config.retries["mode"] == "adaptive"
    assert client.meta.config.retries["total_max_attempts"] == 4


def test_throttling_becomes_a_clear_error_result() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error("filter_log_events", "ThrottlingException", "Rate exceeded", 400)
        results = _review(client)
    assert len(results) == 1
    (r,) = results
    assert r.status is Status.ERROR and r.check == "logs.read[/ecs/backend]"
    assert "throttled" in r.summary and "after 4 attempt(s)" in r.summary and "Rerun" in r.summary
    assert r.details["error_code"] == "ThrottlingException"


def test_throttled_on_the_second_page_still_reports_error_not_partial_numbers() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "filter_log_events",
            {
                "events": [{"timestamp": 1795760000000, "message": "ERROR x 1", "eventId": "1"}],
                "nextToken": "t1",
            },
        )
        stub.add_client_error("filter_log_events", "ThrottlingException", "Rate exceeded", 400)
        (r,) = _review(client)
    assert r.status is Status.ERROR and "throttled" in r.summary


def test_missing_group_names_the_setting() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_client_error(
            "filter_log_events", "ResourceNotFoundException", "The specified log group does not exist.", 400
        )
        (r,) = _review(client)
    assert r.status is Status.ERROR and "tasks.log_review.settings.log_groups" in r.summary
