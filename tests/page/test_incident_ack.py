"""Acknowledging and resolving incidents through the real Airflow API server (see conftest.py):
the page's forms (role-checked, CSRF-safe, POST only) and the Slack app's interactivity URL
(signed with the app's signing secret; unsigned, stale and replayed requests refused with 401).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row
from slack_sdk.signature import SignatureVerifier

from sanvi_ops.core.config import load_config
from sanvi_ops.core.notify.pipeline import process_run
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from tests.page.conftest import SLACK_SIGNING_SECRET, AirflowUI

pytestmark = pytest.mark.integration

PAGE = "/sanvi-ops/maintenance/"
SLACK = "/sanvi-ops/slack/interactivity"
DAG = "system_health_check"


def _open_incident(ui: AirflowUI, severity: str = "P1", minutes_ago: int = 5) -> int:
    """A fresh announced incident of the health check, opened ``minutes_ago``."""
    store = ResultStore(ui.store_dsn)
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    check = f"ack_test.{secrets.token_hex(3)}"
    result = CheckResult(check, Status.CRITICAL, f"{check} is down", severity=severity, component="ack_test")
    out = process_run(
        store, load_config(ui.config_path), DAG, f"ack_{check}", at, [result], None, now=at, silences=[]
    )
    return int(out.opened[0].lstrip("#"))


def _row(ui: AirflowUI, incident_id: int) -> dict:
    with psycopg.connect(ui.store_dsn, row_factory=dict_row) as conn:
        row = conn.execute("SELECT * FROM incidents WHERE id = %s", [incident_id]).fetchone()
    assert row is not None
    return row


def _counts(ui: AirflowUI) -> tuple[int, int]:
    with psycopg.connect(ui.store_dsn) as conn:
        seen = conn.execute("SELECT count(*) FROM slack_requests_seen").fetchone()
        sent = conn.execute("SELECT count(*) FROM notifications").fetchone()
    assert seen is not None and sent is not None
    return int(seen[0]), int(sent[0])


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "the page carries the session's form token"
    return match.group(1)


def test_viewer_may_not_acknowledge_or_resolve(airflow_ui: AirflowUI) -> None:
    incident_id = _open_incident(airflow_ui)
    token = airflow_ui.token("viewer")
    with httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=30) as http:
        html = http.get(PAGE).text
        assert f'data-incident="{incident_id}"' in html
        assert f"incidents/{incident_id}/ack" not in html  # no form for a Viewer
    # A script with the Viewer's token (no cookie, so no form token is needed): the role refuses it.
    with httpx.Client(
        base_url=airflow_ui.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        for action in ("ack", "resolve"):
            refused = http.post(
                f"{PAGE}incidents/{incident_id}/{action}", data={"note": "viewer"}, follow_redirects=False
            )
            assert refused.status_code == 403, refused.text
            assert "may not edit DAG(s) system_health_check" in refused.json()["detail"]
    row = _row(airflow_ui, incident_id)
    assert row["acknowledged_at"] is None and row["resolved_at"] is None
    with httpx.Client(base_url=airflow_ui.url, timeout=30) as http:  # no session at all
        assert http.post(f"{PAGE}incidents/{incident_id}/ack", data={}).status_code == 401


def test_admin_acknowledges_with_a_note_and_the_response_is_graded(airflow_ui: AirflowUI) -> None:
    incident_id = _open_incident(airflow_ui, "P1", minutes_ago=20)  # over the P1 target of 15 min
    token = airflow_ui.token("admin")
    with httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=30) as http:
        html = http.get(PAGE).text
        assert f'action="incidents/{incident_id}/ack"' in html
        url = f"{PAGE}incidents/{incident_id}/ack"
        forged = http.post(url, data={"note": "x", "csrf": "0" * 64}, follow_redirects=False)
        assert forged.status_code == 403  # another site's form: the token does not match
        assert http.get(url).status_code == 405  # a link or an <img> cannot acknowledge
        assert _row(airflow_ui, incident_id)["acknowledged_at"] is None
        done = http.post(url, data={"note": "on it <b>now</b>", "csrf": _csrf(html)}, follow_redirects=False)
        assert done.status_code == 303 and "acknowledged" in done.headers["location"]
        row = _row(airflow_ui, incident_id)
        assert (row["acknowledged_by"], row["ack_source"], row["ack_note"]) == (
            "admin",
            "page",
            "on it <b>now</b>",
        )
        assert 20 * 60 <= row["response_seconds"] < 25 * 60 and row["response_target_seconds"] == 15 * 60
        page = http.get(PAGE).text
        assert "by <b>admin</b>" in page and "on it &lt;b&gt;now&lt;/b&gt;" in page
        assert f'action="incidents/{incident_id}/ack"' not in page  # acknowledged: only Resolve left
        data = http.get(PAGE + "api/page").json()
        p1 = next(r for r in data["responses"] if r["severity"] == "P1")
        assert p1["acknowledged"] >= 1 and p1["target_s"] == 900 and p1["worst_s"] >= 1200
        assert p1["within_target"] < p1["acknowledged"]
        assert re.search(r'<tr data-severity="P1">.*?<td>15 min</td>', page, re.DOTALL)

        resolved = http.post(
            f"{PAGE}incidents/{incident_id}/resolve",
            data={"note": "restarted the service", "csrf": _csrf(page)},
            follow_redirects=False,
        )
        assert resolved.status_code == 303 and "resolved" in resolved.headers["location"]
    row = _row(airflow_ui, incident_id)
    assert row["resolved_at"] is not None and row["resolved_by"] == "admin"
    msg = ResultStore(airflow_ui.store_dsn).get_notification(f"resolved:{incident_id}")
    assert msg is not None
    assert "Resolution: Resolved by hand by admin on the Maintenance page: restarted the service" in msg.text
    assert "Root cause: on it &lt;b&gt;now&lt;/b&gt; (note of admin, who acknowledged it)" in msg.text


def _slack_request(
    http: httpx.Client,
    incident_id: int,
    *,
    secret: str = SLACK_SIGNING_SECRET,
    age_s: int = 0,
    user: str = "U0ACKED01",
) -> tuple[httpx.Response, bytes, dict[str, str]]:
    payload = {
        "type": "block_actions",
        "user": {"id": user},
        "actions": [{"action_id": "ack_incident", "value": str(incident_id)}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) - age_s)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=ts, body=body),
    }
    return http.post(SLACK, content=body, headers=headers), body, headers


def test_slack_button_acknowledges_only_a_signed_fresh_first_request(airflow_ui: AirflowUI) -> None:
    incident_id = _open_incident(airflow_ui, "P2")
    with httpx.Client(base_url=airflow_ui.url, timeout=30) as http:
        before = _counts(airflow_ui)
        unsigned = http.post(
            SLACK, content=b"payload=%7B%7D", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert unsigned.status_code == 401
        wrong, _, _ = _slack_request(http, incident_id, secret="not-the-apps-secret")
        assert wrong.status_code == 401
        stale, _, _ = _slack_request(http, incident_id, age_s=6 * 60)
        assert stale.status_code == 401
        garbled = http.post(
            SLACK,
            content=b"payload=%7B%7D",
            headers={"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        )
        assert garbled.status_code == 401
        assert _row(airflow_ui, incident_id)["acknowledged_at"] is None and _counts(airflow_ui) == before

        ok, body, headers = _slack_request(http, incident_id)
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"ok": True, "incident": incident_id, "acknowledged_by": "U0ACKED01", "new": True}
        row = _row(airflow_ui, incident_id)
        assert (row["acknowledged_by"], row["ack_source"]) == ("U0ACKED01", "slack")
        assert row["response_target_seconds"] == 30 * 60 and row["response_seconds"] < 30 * 60
        reply = ResultStore(airflow_ui.store_dsn).get_notification(f"ack:{incident_id}")
        assert reply is not None and reply.thread_parent_key == f"incident:{incident_id}"
        assert "Status: Acknowledged by <@U0ACKED01> (Slack)" in reply.text

        after = _counts(airflow_ui)
        replayed = http.post(SLACK, content=body, headers=headers)  # the same signed request again
        assert replayed.status_code == 401 and "already received" in replayed.json()["detail"]
        assert _counts(airflow_ui) == after and _row(airflow_ui, incident_id) == row
    log = airflow_ui.log.read_text()
    assert SLACK_SIGNING_SECRET not in log
