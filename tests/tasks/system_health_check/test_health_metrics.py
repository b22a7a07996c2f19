"""Host CPU/memory checks and the Prometheus client against a real Prometheus (demo series).

The server holds :func:`demo_series` around ``prometheus_server.now``; every query is evaluated at
that instant, so the outcome does not depend on when the test runs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from devstack.postgres import free_port
from devstack.prometheus import CPU_USED_PCT, MEMORY_USED_PCT, LocalPrometheus
from sanvi_ops.core.prometheus import (
    PrometheusClient,
    PrometheusError,
    PrometheusUnreachable,
    sustained_above,
)
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.system_health_check.health.metrics import (
    DEFAULT_CPU_QUERY,
    DEFAULT_MEMORY_QUERY,
    check_host_metrics,
)

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


@dataclass(frozen=True)
class Threshold:
    """The guide's numbers, shaped like sanvi_ops.core.config.Threshold."""

    warning: float
    critical: float
    warning_for: timedelta | None
    critical_for: timedelta | None


CPU = Threshold(70, 90, timedelta(minutes=15), timedelta(minutes=5))
MEMORY = Threshold(80, 90, timedelta(minutes=15), timedelta(minutes=5))


@pytest.fixture
def prom(prometheus_server: LocalPrometheus) -> Iterator[PrometheusClient]:  # noqa: F811
    with PrometheusClient(prometheus_server.url, timeout_s=5) as client:
        yield client


@pytest.fixture
def at(prometheus_server: LocalPrometheus) -> datetime:  # noqa: F811
    assert prometheus_server.now is not None
    return prometheus_server.now


def _by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def test_queries_match_the_config_defaults() -> None:
    # The demo's formulas, the check's defaults and include/config/maintenance.yaml agree.
    assert (DEFAULT_CPU_QUERY, DEFAULT_MEMORY_QUERY) == (CPU_USED_PCT, MEMORY_USED_PCT)


def test_host_metrics_grade_each_instance(prom: PrometheusClient, at: datetime) -> None:
    results = _by_check(check_host_metrics(prom, CPU, MEMORY, DEFAULT_CPU_QUERY, DEFAULT_MEMORY_QUERY, at=at))
    assert {name: r.status for name, r in results.items()} == {
        "host.cpu[backend-1]": Status.CRITICAL,
        "host.cpu[backend-2]": Status.OK,
        "host.cpu[db-1]": Status.OK,
        "host.cpu[frontend-1]": Status.OK,
        "host.memory[backend-1]": Status.OK,
        "host.memory[backend-2]": Status.OK,  # 93 % now, but only for 3 minutes
        "host.memory[db-1]": Status.WARNING,
        "host.memory[frontend-1]": Status.OK,
    }

    hot = results["host.cpu[backend-1]"]
    assert hot.observed is not None and hot.observed > 90
    assert hot.thresholds == {"warning": 70.0, "critical": 90.0}
    assert hot.metric == "cpu_used_pct" and hot.unit == "%" and hot.component == "backend-1"
    assert hot.summary.startswith("CPU on backend-1 at 9") and "above 90% for 5m" in hot.summary
    assert hot.details["min_over_critical_for"] > 90 and hot.details["critical_for"] == "5m"

    db = results["host.memory[db-1]"]
    assert db.observed is not None and 80 < db.observed < 90
    assert "above 80% for 15m" in db.summary

    spike = results["host.memory[backend-2]"]
    assert spike.observed is not None and spike.observed > 90
    assert spike.summary.endswith("above 90% now but not yet for 5m")
    assert spike.details["min_over_critical_for"] < 90

    calm = results["host.cpu[frontend-1]"]
    assert calm.observed is not None and calm.observed < 70 and calm.summary.endswith("below 70%")
    for result in results.values():
        CheckResult.from_dict(result.to_dict())  # travels by XCom


def test_the_window_is_real_promql(prom: PrometheusClient, at: datetime) -> None:
    """The spike is above 90 % now; the 5-minute window says it was not the whole time."""
    now_high = {s.labels["instance"] for s in prom.query(f"({DEFAULT_MEMORY_QUERY}) > 90", at)}
    held_high = {
        s.labels["instance"] for s in prom.query(sustained_above(DEFAULT_MEMORY_QUERY, 90, "5m"), at)
    }
    held_warning = {
        s.labels["instance"] for s in prom.query(sustained_above(DEFAULT_MEMORY_QUERY, 80, "15m"), at)
    }
    assert now_high == {"backend-2"}
    assert held_high == set()
    assert held_warning == {"db-1"}
    # Ten minutes earlier backend-1's CPU had been above 90 % for ~10 min: critical yes, 15 m warning no.
    earlier = at - timedelta(minutes=10)
    assert {
        s.labels["instance"] for s in prom.query(sustained_above(DEFAULT_CPU_QUERY, 90, "5m"), earlier)
    } == {"backend-1"}
    assert prom.query(sustained_above(DEFAULT_CPU_QUERY, 70, "15m"), earlier) == []


def test_a_query_without_series_is_a_warning_not_ok(prom: PrometheusClient, at: datetime) -> None:
    query = 'node_load1{instance="nowhere"}'
    cpu = _by_check(check_host_metrics(prom, CPU, MEMORY, query, DEFAULT_MEMORY_QUERY, at=at))["host.cpu"]
    assert cpu.check == "host.cpu" and cpu.status is Status.WARNING
    assert (
        cpu.summary.startswith("no data for CPU") and query in cpu.summary and prom.display_url in cpu.summary
    )


def test_bad_promql_is_an_error_with_prometheus_message(prom: PrometheusClient, at: datetime) -> None:
    with pytest.raises(PrometheusError) as info:
        prom.query("100 * (1 - avg by (instance) (rate(node_cpu_seconds_total[5m])", at)
    err = info.value
    assert err.status_code == 400 and err.error_type == "bad_data" and err.path == "/api/v1/query"
    assert "/api/v1/query" in str(err) and "parse error" in str(err) and "node_cpu_seconds_total" in str(err)
    assert not isinstance(err, PrometheusUnreachable)

    results = check_host_metrics(prom, CPU, MEMORY, "rate(", DEFAULT_MEMORY_QUERY, at=at)
    cpu = _by_check(results)["host.cpu"]
    assert cpu.status is Status.ERROR and "parse error" in cpu.summary and "rate(" in cpu.summary
    assert _by_check(results)["host.memory[db-1]"].status is Status.WARNING  # the other metric still ran


def test_an_http_error_names_path_and_status(prometheus_server: LocalPrometheus, at: datetime) -> None:  # noqa: F811
    with PrometheusClient(prometheus_server.url + "/no-such-prefix") as prom:
        with pytest.raises(PrometheusError, match=r"/no-such-prefix/api/v1/query: HTTP 404") as info:
            prom.query("up", at)
        assert info.value.status_code == 404
        assert prom.ready() is False


def test_unreachable_prometheus_is_an_error_result() -> None:
    port = free_port()  # nothing listens there: a stopped Prometheus
    with PrometheusClient(f"http://127.0.0.1:{port}", timeout_s=2) as prom:
        assert prom.ready() is False
        with pytest.raises(PrometheusUnreachable, match=rf"127.0.0.1:{port}/api/v1/query: unreachable"):
            prom.query("up")
        results = check_host_metrics(prom, CPU, MEMORY)
    assert [(r.check, r.status) for r in results] == [
        ("host.cpu", Status.ERROR),
        ("host.memory", Status.ERROR),
    ]
    assert all("could not run" in r.summary and f"127.0.0.1:{port}" in r.summary for r in results)


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel accepts connections; nobody ever reads or answers
        port = listener.getsockname()[1]
        with PrometheusClient(f"http://127.0.0.1:{port}", timeout_s=0.3) as prom:
            with pytest.raises(PrometheusUnreachable, match=r"no answer within 0.3s"):
                prom.query("up")


def test_query_range_and_ready(prom: PrometheusClient, at: datetime) -> None:
    assert prom.ready() is True
    series = prom.query_range(DEFAULT_CPU_QUERY, at - timedelta(minutes=30), at, step="5m")
    by_instance = {s.labels["instance"]: s for s in series}
    assert set(by_instance) == {"frontend-1", "backend-1", "backend-2", "db-1"}
    hot = [v for _, v in by_instance["backend-1"].points]
    assert len(hot) == 7 and hot[0] < 70 < 90 < hot[-1]  # the CPU climbed during the window
    assert by_instance["backend-1"].points[-1][0] == at


def test_range_query_of_a_matrix_instant_is_refused(prom: PrometheusClient, at: datetime) -> None:
    with pytest.raises(PrometheusError, match="range selector"):
        prom.query("node_memory_MemTotal_bytes[5m]", at)


def test_local_prometheus_restarts_with_fresh_data(
    prometheus_server: LocalPrometheus,  # noqa: F811  (skips/fails like the others without the binaries)
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A stopped server answers nothing (error results); a restart backfills around the new now."""
    server = LocalPrometheus(tmp_path_factory.mktemp("prom"), history=timedelta(minutes=30))
    try:
        server.start()
        url = server.url
        with PrometheusClient(url, timeout_s=2) as prom:
            assert prom.ready()
            server.stop()
            assert not prom.ready()
            assert {r.status for r in check_host_metrics(prom, CPU, MEMORY, at=server.now)} == {Status.ERROR}
        server.start()
        with PrometheusClient(server.url, timeout_s=2) as prom:
            assert {s.labels["instance"] for s in prom.query(DEFAULT_MEMORY_QUERY, server.now)} == {
                "frontend-1",
                "backend-1",
                "backend-2",
                "db-1",
            }
    finally:
        server.destroy()
