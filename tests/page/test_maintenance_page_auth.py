"""The Maintenance page respects Airflow's authentication (real API server, see conftest.py).

No logged-in user, no data: the JSON route answers 401, a browser is sent to the login page, a
forged token gets 403, and nothing can be written. Logged in, the rows come back; silences need
edit access (the Viewer role has none) and the form token of the session.
"""

from __future__ import annotations

import re

import httpx
import psycopg
import pytest

from tests.page.conftest import AirflowUI

pytestmark = pytest.mark.integration

PAGE = "/sanvi-ops/maintenance/"


def _silences(dsn: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(dsn) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT reason, created_by, source FROM silences WHERE lifted_at IS NULL ORDER BY id"
            ).fetchall()
        ]


def test_the_server_listens_on_loopback_only(airflow_ui: AirflowUI) -> None:
    import psutil

    server = psutil.Process(airflow_ui.pid)
    listening = {
        (c.laddr.ip, c.laddr.port)
        for p in [server, *server.children(recursive=True)]
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    }
    assert listening and {ip for ip, _port in listening} == {"127.0.0.1"}, listening


def test_no_token_no_data(airflow_ui: AirflowUI) -> None:
    with httpx.Client(base_url=airflow_ui.url, follow_redirects=False, timeout=30) as http:
        api = http.get(PAGE + "api/page")
        assert api.status_code == 401 and "calendar" not in api.text
        page = http.get(PAGE, headers={"Accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"].startswith("/auth/login?next=")
        assert "Maintenance" not in page.text
        forged = http.get(PAGE + "api/page", cookies={"_token": "not-a-jwt"})
        assert forged.status_code == 403 and "calendar" not in forged.text
        before = _silences(airflow_ui.store_dsn)
        post = http.post(PAGE + "silences", data={"reason": "sneaky", "hours": "1"})
        assert post.status_code == 401
        assert _silences(airflow_ui.store_dsn) == before


def test_logged_in_user_gets_the_rows(airflow_ui: AirflowUI) -> None:
    token = airflow_ui.token("viewer")
    with httpx.Client(base_url=airflow_ui.url, timeout=30) as http:
        data = http.get(PAGE + "api/page", headers={"Authorization": f"Bearer {token}"}).json()
        daily = {r["dag_id"]: r for r in data["calendar"]["daily"]}
        assert daily["system_health_check"]["last_status"] in {"ok", "warning", "error", "critical"}
        assert daily["system_health_check"]["next_run"] > data["now"]
        assert data["recovery"] and data["notifications"] and data["problems"] == []
        # The Viewer may read but not silence: no form on the page, and a post is refused.
        html = http.get(PAGE, cookies={"_token": token}).text
        assert 'data-dag="system_health_check"' in html and "Add silence" not in html
        csrf = re.search(r'name="csrf" value="([0-9a-f]*)"', html)
        refused = http.post(
            PAGE + "silences",
            cookies={"_token": token},
            data={"reason": "viewer try", "hours": "1", "csrf": csrf.group(1) if csrf else ""},
            follow_redirects=False,
        )
        assert refused.status_code == 403
        assert ("viewer try", "viewer", "ui") not in _silences(airflow_ui.store_dsn)


def test_admin_adds_and_lifts_a_silence_with_the_session_form_token(airflow_ui: AirflowUI) -> None:
    token = airflow_ui.token("admin")
    with httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=30) as http:
        html = http.get(PAGE).text
        match = re.search(
            r'<form class="silence"[^>]*><input type="hidden" name="csrf" value="([0-9a-f]+)"', html
        )
        assert match, "the admin sees the silence form"
        form = {
            "reason": "failover drill tonight",
            "hours": "2",
            "dag_id": "system_health_check",
            "csrf": "0" * 64,
        }
        assert http.post(PAGE + "silences", data=form, follow_redirects=False).status_code == 403
        form["csrf"] = match.group(1)
        added = http.post(PAGE + "silences", data=form, follow_redirects=False)
        assert added.status_code == 303 and "added" in added.headers["location"]
        assert ("failover drill tonight", "admin", "ui") in _silences(airflow_ui.store_dsn)
        page = http.get(PAGE).text
        sid = re.search(r'failover drill tonight</td>.*?action="silences/(\d+)/lift"', page, re.DOTALL)
        assert sid and "failover drill tonight" in page
        lifted = http.post(
            f"{PAGE}silences/{sid.group(1)}/lift", data={"csrf": match.group(1)}, follow_redirects=False
        )
        assert lifted.status_code == 303 and "lifted" in lifted.headers["location"]
        assert ("failover drill tonight", "admin", "ui") not in _silences(airflow_ui.store_dsn)
        # Required fields: a silence without a reason is not stored, the page says why.
        empty = http.post(
            PAGE + "silences",
            data={"reason": "", "hours": "1", "csrf": match.group(1)},
            follow_redirects=True,
        )
        assert "silence.reason: required" in empty.text
