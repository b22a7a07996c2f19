"""The task body never crashes: bad Params and a missing or unreachable database are results."""

from __future__ import annotations

import json

import pytest

from sanvi_ops.tasks.database_maintenance.airflow_tasks import vacuum_analyze

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"mode": "full"}, "unknown mode 'full'"),
        ({"mode": "tables", "tables": []}, "needs the tables Param"),
    ],
)
def test_bad_params_are_an_error_result(params, expect):
    (result,) = vacuum_analyze(params)
    assert result["check"] == "vacuum.run" and result["status"] == "error" and expect in result["summary"]


def test_missing_connection_is_an_error_result(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SANVI_APP_DB", raising=False)
    (result,) = vacuum_analyze({"mode": "dry_run"})
    assert result["status"] == "error" and "sanvi_app_db" in result["summary"]


def test_unreachable_database_is_an_error_result(monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": port,
        "login": "u",
        "password": "s3cret-pw",
        "schema": "app",
        "extra": {"connect_timeout": 2},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_APP_DB", json.dumps(conn))
    (result,) = vacuum_analyze({"mode": "dry_run"})
    assert result["status"] == "error" and "could not read table statistics" in result["summary"]
    assert "s3cret-pw" not in json.dumps(result)
