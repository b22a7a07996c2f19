"""The Maintenance page degrades instead of failing (real API server, see conftest.py).

With the results store down (the config names a connection to a closed port on 127.0.0.1) or the
maintenance config broken (the file ``$SANVI_OPS_CONFIG`` points at), every route — the page, its
JSON API, adding and lifting a silence — answers HTTP 503 with the page's own error panel naming
the reason: never a 500, never a dropped connection, never a password. Each test puts the config
back, and the page answers 200 again without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.page.conftest import DOWN_STORE_CONN, AirflowUI

pytestmark = pytest.mark.integration

PAGE = "/sanvi-ops/maintenance/"


@contextmanager
def _config_text(path: Path, text: str) -> Iterator[None]:
    """The server's config file holds ``text`` inside the block, the shipped contents after."""
    original = path.read_bytes()
    try:
        path.write_text(text)
        yield
    finally:
        path.write_bytes(original)


def _csrf(token: str) -> str:
    """The form token of a session (the plugin's rule: an HMAC of the session cookie)."""
    from sanvi_ops_plugin import _CSRF_CONTEXT

    return hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _every_route(http: httpx.Client, token: str) -> dict[str, httpx.Response]:
    form = {"reason": "disk swap", "hours": "1", "dag_id": "system_health_check", "csrf": _csrf(token)}
    return {
        "page": http.get(PAGE, headers={"Accept": "text/html"}),
        "api": http.get(PAGE + "api/page", headers={"Accept": "application/json"}),
        "add": http.post(PAGE + "silences", data=form, follow_redirects=False),
        "lift": http.post(PAGE + "silences/1/lift", data={"csrf": form["csrf"]}, follow_redirects=False),
    }


def _assert_panel(responses: dict[str, httpx.Response], reason: str) -> None:
    for route, response in responses.items():
        assert response.status_code == 503, (route, response.status_code, response.text[:500])
        if route == "api":
            assert reason in response.json()["detail"], response.text[:500]
        else:
            assert response.headers["content-type"].startswith("text/html")
            panel = re.search(r'<div class="problem" role="alert">(.*?)</div>', response.text, re.DOTALL)
            assert panel and reason in html.unescape(panel.group(1)), (route, response.text[:800])
        assert "Traceback" not in response.text and "down-s3cret" not in response.text


def test_store_down_is_a_503_panel_on_every_route(airflow_ui: AirflowUI) -> None:
    token = airflow_ui.token("admin")
    shipped = airflow_ui.config_path.read_text()
    down = shipped.replace("  store: sanvi_ops_store ", f"  store: {DOWN_STORE_CONN} ", 1)
    assert down != shipped
    with (
        _config_text(airflow_ui.config_path, down),
        httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=60) as http,
    ):
        responses = _every_route(http, token)
        _assert_panel(responses, f"connection {DOWN_STORE_CONN!r}")
        # the page itself still shows the calendar under the panel; the writes say what failed
        assert 'data-dag="system_health_check"' in responses["page"].text
        assert "could not add the silence" in html.unescape(responses["add"].text)
        assert "could not lift silence #1" in html.unescape(responses["lift"].text)
        assert "Connection refused" in responses["api"].json()["detail"]
    with httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=60) as http:
        assert http.get(PAGE).status_code == 200  # back as soon as the store is


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("timezone: [unclosed\n", "not valid YAML"),
        ("timezone: Mars/Olympus_Mons\n", "timezone"),
    ],
    ids=["not-yaml", "bad-value"],
)
def test_broken_config_is_a_503_panel_on_every_route(airflow_ui: AirflowUI, broken: str, reason: str) -> None:
    token = airflow_ui.token("admin")
    with (
        _config_text(airflow_ui.config_path, airflow_ui.config_path.read_text() + "\n" + broken),
        httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=60) as http,
    ):
        responses = _every_route(http, token)
        _assert_panel(responses, "the maintenance config cannot be used")
        assert reason in responses["api"].json()["detail"]
    with httpx.Client(base_url=airflow_ui.url, cookies={"_token": token}, timeout=60) as http:
        assert http.get(PAGE).status_code == 200
