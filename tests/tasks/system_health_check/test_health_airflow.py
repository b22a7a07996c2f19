"""Airflow's own health endpoint, against a real HTTP server on 127.0.0.1 answering in the shape of
Airflow 3's ``GET /api/v2/monitor/health`` (healthy, unhealthy, stale, never started, broken)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.system_health_check.health.airflow import check_airflow_health
from tests.fixtures.ops_monitor import airflow_health_body

if TYPE_CHECKING:
    from tests.fixtures.ops_monitor import OpsMonitor

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _check(monitor: OpsMonitor) -> dict[str, tuple[Status, str | None, str]]:
    results = check_airflow_health(monitor.base_url, timeout_s=5, now=NOW)
    return {r.check: (r.status, r.severity, r.summary) for r in results}


def test_the_real_response_shape_matches_airflows_own() -> None:
    """Our fixture's body validates against Airflow's response model of the endpoint."""
    from airflow.api_fastapi.core_api.datamodels.monitor import HealthInfoResponse

    HealthInfoResponse.model_validate(airflow_health_body(NOW))
    HealthInfoResponse.model_validate(airflow_health_body(NOW, triggerer=None, scheduler="unhealthy"))


def test_healthy_airflow(ops_monitor: OpsMonitor) -> None:
    ops_monitor.health_body = airflow_health_body(NOW)
    got = _check(ops_monitor)
    assert list(got) == [
        "airflow.api",
        "airflow.metadatabase",
        "airflow.scheduler",
        "airflow.triggerer",
        "airflow.dag_processor",
    ]
    assert {s for s, _sev, _t in got.values()} == {Status.OK}
    assert got["airflow.scheduler"][2] == "Airflow scheduler healthy (last heartbeat 3 s ago)"


def test_unhealthy_scheduler_is_p1_and_dead_triggerer_p2(ops_monitor: OpsMonitor) -> None:
    ops_monitor.health_body = airflow_health_body(NOW, scheduler="unhealthy", triggerer="unhealthy",
                                                   heartbeat_age=timedelta(minutes=3))  # fmt: skip
    got = _check(ops_monitor)
    assert got["airflow.scheduler"][:2] == (Status.CRITICAL, "P1")
    assert "no new runs start" in got["airflow.scheduler"][2] and "3 min ago" in got["airflow.scheduler"][2]
    assert got["airflow.triggerer"][:2] == (Status.CRITICAL, "P2")
    assert got["airflow.metadatabase"][0] is Status.OK


def test_stale_heartbeats_and_a_component_that_never_ran(ops_monitor: OpsMonitor) -> None:
    body = airflow_health_body(NOW, heartbeat_age=timedelta(minutes=5), dag_processor=None)
    body["triggerer"]["latest_triggerer_heartbeat"] = (NOW - timedelta(minutes=30)).isoformat()
    ops_monitor.health_body = body
    got = _check(ops_monitor)
    assert got["airflow.scheduler"][0] is Status.WARNING  # 5 min > 2 min warning
    assert got["airflow.triggerer"][:2] == (Status.CRITICAL, "P2")  # "healthy" but 30 min stale
    assert "stale" in got["airflow.triggerer"][2]
    assert (
        got["airflow.dag_processor"][0] is Status.WARNING
        and "ever started" in got["airflow.dag_processor"][2]
    )


def test_down_or_broken_endpoint(ops_monitor: OpsMonitor) -> None:
    ops_monitor.health_status = 503
    assert _check(ops_monitor) == {
        "airflow.api": (Status.CRITICAL, "P2", f"Airflow health endpoint {ops_monitor.base_url}/api/v2/monitor/health answered HTTP 503")
    }  # fmt: skip
    ops_monitor.health_status, ops_monitor.health_body = 200, "<html>login</html>"
    assert _check(ops_monitor)["airflow.api"][0] is Status.ERROR
    ops_monitor.health_body = {"scheduler": {"status": "healthy"}}
    got = _check(ops_monitor)
    assert (
        got["airflow.metadatabase"][0] is Status.ERROR
        and "no 'metadatabase.status'" in got["airflow.metadatabase"][2]
    )
    from devstack.postgres import free_port

    down = check_airflow_health(f"http://127.0.0.1:{free_port()}", timeout_s=2, now=NOW)
    assert [(r.check, r.status) for r in down] == [("airflow.api", Status.CRITICAL)]
