"""Retry rules of the Slack sender that need no server: ``Retry-After`` parsing and which failures
the ``slack_sdk`` retry handlers may repeat (only those Slack cannot have accepted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime
from http.client import RemoteDisconnected
from urllib.error import HTTPError, URLError

import pytest
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from sanvi_ops.core.notify.slack import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    BoundedRateLimitRetryHandler,
    RetryPolicy,
    SlackSender,
    make_client,
    parse_retry_after,
    retry_after_seconds,
    retry_handlers,
)

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        (" 2 ", 2.0),
        ("0", 0.0),
        (["7"], 7.0),
        (b"3", 3.0),
        ("-1", DEFAULT_RETRY_AFTER),
        ("-0.5", DEFAULT_RETRY_AFTER),
        ("nan", DEFAULT_RETRY_AFTER),
        ("inf", MAX_RETRY_AFTER),
        ("1e9", MAX_RETRY_AFTER),
        ("soon", DEFAULT_RETRY_AFTER),
        ("", DEFAULT_RETRY_AFTER),
        (None, DEFAULT_RETRY_AFTER),
        ([], DEFAULT_RETRY_AFTER),
        ("Wed, 99 Foo 2026 99:99:99 GMT", DEFAULT_RETRY_AFTER),
        ("x" * 10_000, DEFAULT_RETRY_AFTER),
        ("Thu, 03 Dec 2026 10:00:45 GMT", 45.0),  # an HTTP date, counted from now
        ("Thu, 03 Dec 2026 09:00:00 GMT", 0.0),  # a date in the past: go now
        ("Fri, 04 Dec 2026 10:00:00 GMT", MAX_RETRY_AFTER),  # a day away: clamped
    ],
)
def test_parse_retry_after_never_raises(raw: object, expected: float) -> None:
    assert parse_retry_after(raw, now=NOW) == pytest.approx(expected)


def test_retry_after_from_headers() -> None:
    assert retry_after_seconds({"retry-after": ["1.5"]}) == 1.5
    assert retry_after_seconds({"Retry-After": "garbage"}) is None
    assert retry_after_seconds({"Retry-After": "-1"}, default=4.0) == 4.0
    assert retry_after_seconds({}) is None and retry_after_seconds(None) is None
    date = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    assert 15 <= (retry_after_seconds({"Retry-After": date}) or 0) <= 20


def _state() -> RetryState:
    return RetryState()


def _request() -> HttpRequest:
    return HttpRequest(
        method="POST", url="https://slack.test/api/chat.postMessage", headers={}, body_params={}
    )


def _response(status: int, retry_after: str | None = None) -> HttpResponse:
    headers = {"Retry-After": [retry_after]} if retry_after is not None else {}
    return HttpResponse(status_code=status, headers=headers)


@pytest.mark.parametrize("value", ["1.5", "-1", "Thu, 03 Dec 2026 10:00:00 GMT", "soon", None])
def test_rate_limit_handler_sleeps_what_it_can_read(value: str | None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    slept: list[float] = []
    monkeypatch.setattr("sanvi_ops.core.notify.slack.time.sleep", slept.append)
    handler = BoundedRateLimitRetryHandler(3, max_retry_after=5)
    state, response = _state(), _response(429, value)
    assert handler.can_retry(state=state, request=_request(), response=response)
    handler.prepare_for_next_attempt(state=state, request=_request(), response=response)  # no ValueError
    assert len(slept) == 1 and 0 <= slept[0] <= 5.1
    if value == "1.5":
        assert 1.5 <= slept[0] <= 1.6


def test_rate_limit_longer_than_the_cap_is_not_retried_in_the_task() -> None:
    handler = BoundedRateLimitRetryHandler(3, max_retry_after=5)
    assert not handler.can_retry(state=_state(), request=_request(), response=_response(429, "120"))
    assert not handler.can_retry(state=_state(), request=_request(), response=_response(503))


def test_no_handler_repeats_a_request_slack_may_have_accepted() -> None:
    """Only 429 and errors raised before the request was written are retried by the client."""
    handlers = retry_handlers(3)
    assert not any(type(h) in (ServerErrorRetryHandler, ConnectionErrorRetryHandler) for h in handlers)

    def retried(response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return any(
            h.can_retry(state=_state(), request=_request(), response=response, error=error) for h in handlers
        )

    for status in (500, 502, 503, 504):
        assert not retried(response=_response(status))
    assert not retried(error=TimeoutError("The read operation timed out"))  # after sending
    assert not retried(error=RemoteDisconnected("Remote end closed connection without response"))
    assert not retried(error=ConnectionResetError(104, "Connection reset by peer"))
    http_error = HTTPError("https://slack.test", 504, "Gateway Timeout", Message(), None)
    assert not retried(error=http_error)
    assert retried(response=_response(429, "1"))
    assert retried(error=URLError(ConnectionRefusedError(111, "Connection refused")))  # never sent
    assert retried(error=URLError(TimeoutError("connect timed out")))  # connect timeout: never sent


def test_sender_replaces_unsafe_handlers_of_any_client() -> None:
    """A ``SlackHook`` client or a bare ``WebClient`` may carry slack_sdk's own handlers (which
    retry resets and, with the 5xx one, server errors): the sender installs the safe ones."""
    from slack_sdk import WebClient

    client = WebClient(
        token="xoxb-t", retry_handlers=[ServerErrorRetryHandler(), ConnectionErrorRetryHandler()]
    )
    sender = SlackSender(client)
    assert [type(h).__name__ for h in client.retry_handlers] == [
        "BoundedRateLimitRetryHandler",
        "NotSentConnectionErrorRetryHandler",
    ]
    assert sender.policy == RetryPolicy()
    fast = RetryPolicy(max_retries=1, backoff_factor=0.01, max_retry_after=2)
    assert SlackSender(make_client("xoxb-t", policy=fast)).policy == fast  # make_client's policy is kept
