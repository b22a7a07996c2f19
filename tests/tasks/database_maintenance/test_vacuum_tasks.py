"""The task body never crashes: bad Params and a missing or unreachable database are results."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sanvi_ops.core.run_policy import RunPolicy
from sanvi_ops.tasks.database_maintenance.airflow_tasks import vacuum_analyze

pytestmark = pytest.mark.unit

DRY_RUN = RunPolicy("dry_run", "dry run asked for (dry_run: yes)", scheduled=False)


@pytest.mark.parametrize(
    ("params", "expect"),
    [
        ({"mode": "full"}, "unknown mode 'full'"),
        ({"mode": "dry_run"}, "unknown mode 'dry_run'"),  # a dry run is the run policy's, not a mode
        ({"mode": "tables", "tables": []}, "needs the tables Param"),
    ],
)
def test_bad_params_are_an_error_result(params, expect):
    (result,) = vacuum_analyze(params)
    assert result["check"] == "vacuum.run" and result["status"] == "error" and expect in result["summary"]


def test_missing_connection_is_an_error_result(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SANVI_APP_DB", raising=False)
    (result,) = vacuum_analyze({}, policy=DRY_RUN)
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
    (result,) = vacuum_analyze({}, policy=DRY_RUN)
    assert result["status"] == "error" and "could not read table statistics" in result["summary"]
    assert "s3cret-pw" not in json.dumps(result)


def test_a_refused_run_is_one_skipped_result_before_any_connection(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SANVI_APP_DB", raising=False)
    friday = dt.datetime(2026, 11, 27, 10, 15, tzinfo=dt.UTC)
    (late,) = vacuum_analyze({}, now=friday)  # as scheduled, outside Wed 03:00–06:00
    assert late["check"] == "vacuum.run" and late["status"] == "skipped"
    assert "outside the maintenance window (Wed 03:00–06:00 UTC)" in late["summary"]
    rejected = RunPolicy("refused", "refused: rejected by chris (cto). Nothing was changed.", scheduled=False)
    (result,) = vacuum_analyze({}, now=friday, policy=rejected)
    assert result["status"] == "skipped" and result["summary"] == rejected.reason
