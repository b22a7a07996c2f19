"""The Penetration Testing's automated checks end to end: ``dag.test()`` against 127.0.0.1 only.

The "public host" is 127.0.0.1 with two listening sockets (one expected, one not) and a closed
port in the scan list; the TLS endpoint is the Security Scan's local TLS server with a test CA's
certificate; the frontend is a local HTTP server with missing headers. The results store is
real PostgreSQL, Slack the Slack-compatible test server. The Security team's HITL form
(``record_pentest_outcome``) is marked done here; tests/e2e/test_signoff_api.py answers it
through the Airflow API.
"""

from __future__ import annotations

import json
import socket
import ssl
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag
from tests.tasks.penetration_testing.test_exposure_probes import closed_ports, header_server  # noqa: F401 - fixture
from tests.tasks.security_scan.test_security_tls import _leaf, _TLSServer, ca  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "penetration_testing"


@pytest.fixture
def pentest_env(e2e, tmp_path, monkeypatch, ca, header_server):  # noqa: F811
    cert, key = _leaf(ca, tmp_path, days_left=200)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls = _TLSServer(ctx)
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    expected, unexpected = (s.getsockname()[1] for s in socks)
    [closed] = closed_ports(1)

    cfg = shipped_config()
    cfg["tasks"]["security_scan"]["settings"] = {
        **cfg["tasks"]["security_scan"]["settings"],
        "tls_ca_file": str(ca[2]),
    }
    cfg["tasks"]["penetration_testing"]["settings"] = {
        **cfg["tasks"]["penetration_testing"]["settings"],
        "hosts": ["127.0.0.1"],
        "ports": [expected, unexpected, closed],
        "expected_open_ports": [expected],
        "connect_timeout_seconds": 1,
        "concurrency": 4,
        "urls": [f"{header_server}/weak"],
        "tls_endpoints": [f"https://127.0.0.1:{tls.port}/"],
        "timeout_seconds": 5,
    }
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    store_dsn = e2e.connect()["store_dsn"]
    yield {"store_dsn": store_dsn, "unexpected": unexpected}
    tls.close()
    for s in socks:
        s.close()


def test_exposure_checks_are_stored_and_reported(pentest_env, slack_api):
    # The Security team's form is answered through the API in tests/e2e/test_signoff_api.py.
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 17, 11, 0, tzinfo=UTC), mark_success_pattern="record_pentest_outcome"
    )
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert all(s == "success" for s in states.values()), states  # warnings only: the run stays green

    with psycopg.connect(pentest_env["store_dsn"]) as conn:
        rows = dict(
            conn.execute(
                "SELECT check_name, status FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        )
    port_rows = {k: v for k, v in rows.items() if k.startswith("ports[")}
    assert port_rows == {f"ports[127.0.0.1].open[{pentest_env['unexpected']}]": "warning"}, rows
    assert rows["tls[127.0.0.1]"] == "ok", rows  # protocol and certificate (the Security Scan's check)
    assert rows["tls_ciphers[127.0.0.1]"] == "ok", rows
    assert rows["headers[127.0.0.1].hsts"] == "warning", rows  # /weak: max-age one day
    assert any("Penetration Testing" in json.dumps(m) for m in slack_api.messages)
