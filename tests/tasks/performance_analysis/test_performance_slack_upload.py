"""Sharing the Performance Analysis chart: ``SlackSender.upload_file`` against the
Slack-compatible server (files.getUploadURLExternal → upload → files.completeUploadExternal)."""

from __future__ import annotations

import pytest

from sanvi_ops.core.notify.slack import RetryPolicy, SlackDeliveryError, SlackSender, make_client

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def _sender(slack_api, token=None):
    client = make_client(token or slack_api.token, base_url=slack_api.base_url, timeout=5)
    return SlackSender(client, policy=RetryPolicy(max_retries=1, backoff_factor=0.01))


def test_upload_into_a_thread(slack_api):
    sender = _sender(slack_api)
    posted = sender.post("#sanvi-ops", "summary", None)
    file_id = sender.upload_file(posted.channel, "chart.png", PNG, title="week", thread_ts=posted.ts)
    assert [f["id"] for f in slack_api.files] == [file_id]
    shared = slack_api.files[0]
    assert shared["content"] == PNG and shared["title"] == "week"
    assert shared["channel_id"] == posted.channel and shared["thread_ts"] == posted.ts
    assert slack_api.outcomes()[-2:] == ["upload_url", "file_shared"]


def test_rejected_channel_is_final_and_bad_token_is_not(slack_api):
    slack_api.reject_channel("C000000000")
    with pytest.raises(SlackDeliveryError) as final:
        _sender(slack_api).upload_file("C000000000", "chart.png", PNG, title="week")
    assert final.value.final and final.value.code == "channel_not_found"
    with pytest.raises(SlackDeliveryError) as auth:
        _sender(slack_api, token="xoxb-wrong").upload_file("C123456789", "chart.png", PNG, title="week")
    assert not auth.value.final and auth.value.code == "invalid_auth"
    assert "xoxb-wrong" not in str(auth.value)
    assert slack_api.files == []
