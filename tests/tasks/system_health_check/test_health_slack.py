"""Slack auth.test as a health result, against the Slack-Web-API stand-in (tests/fixtures/slack.py)."""

from __future__ import annotations

import socket

import pytest

from sanvi_ops.core.notify.slack import make_client
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.system_health_check.health.slack import check_slack_auth

pytestmark = pytest.mark.integration


def test_valid_token_is_ok(slack_api):
    result = check_slack_auth(make_client(slack_api.token, base_url=slack_api.base_url, timeout=5))
    assert result.status is Status.OK and "workspace Sanvi" in result.summary
    assert [r.path for r in slack_api.requests] == ["/api/auth.test"]


def test_refused_token_is_an_error_naming_slacks_reason(slack_api):
    token = "xoxb-revoked-0000"
    result = check_slack_auth(make_client(token, base_url=slack_api.base_url, timeout=5), conn_id="slack_x")
    assert result.status is Status.ERROR
    assert "invalid_auth" in result.summary and "'slack_x'" in result.summary
    assert token not in result.summary and token not in str(result.details)


def test_unreachable_slack_is_an_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    client = make_client("xoxb-t", base_url=f"http://127.0.0.1:{port}/api/", timeout=2)
    client.retry_handlers = []
    result = check_slack_auth(client)
    assert result.status is Status.ERROR and "could not be reached" in result.summary
