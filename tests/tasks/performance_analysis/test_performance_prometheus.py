"""The Prometheus half of the Performance Analysis on a real Prometheus with the demo series,
evaluated at ``prometheus_server.now`` (the demo's story: backend-1 fails 2.5 % of its requests
and is 3.5× slower for the last 10 minutes)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devstack.postgres import free_port
from sanvi_ops.core.prometheus import PrometheusClient
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.performance_analysis.performance import (
    ServiceLimits,
    ServiceQueries,
    check_service,
    week_series,
)

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


@pytest.fixture
def prom(prometheus_server):
    with PrometheusClient(prometheus_server.url) as client:
        yield client


def _by_check(results):
    return {r.check: r for r in results}


def test_demo_week_against_slos_and_alert_thresholds(prom, prometheus_server):
    checks = _by_check(check_service(prom, prometheus_server.now))
    assert set(checks) == {
        "service.request_rate",
        "service.latency_p95",
        "service.error_rate",
        "service.availability",
    }
    rate = checks["service.request_rate"]
    assert rate.status is Status.OK and rate.details["now"] > 10  # ~2 × 15.5 req/s

    # Errors: half the traffic fails at 2.5 % for 10 min → ~1.25 % held for 5 min: warning,
    # never 5 % (critical). Over the data's 6 hours the rate stays under the 0.1 % SLO.
    err = checks["service.error_rate"]
    assert err.status is Status.WARNING and err.details["alert"] == "warning"
    assert 1.0 < err.details["now_pct"] < 5.0
    assert err.details["slo_met"] is True and err.details["week_pct"] < 0.1
    assert "> 1 % for 5m" in err.summary

    # Latency: p95 now ~0.7 s (> 500 ms warning, < 1 s critical); the week's p95 meets 300 ms.
    lat = checks["service.latency_p95"]
    assert lat.status is Status.WARNING and lat.details["alert"] == "warning"
    assert 500 < lat.details["now_ms"] < 1000
    assert lat.details["slo_met"] is True and lat.details["week_ms"] < 300

    # Availability this month: ~99.91 %, above 99.9 % with little budget left → warning.
    avail = checks["service.availability"]
    assert avail.status is Status.WARNING
    assert 99.9 < avail.details["availability_pct"] < 100
    assert 0 < avail.details["budget_left_pct"] < 25
    assert "error budget left this month" in avail.summary


def test_tighter_limits_turn_critical(prom, prometheus_server):
    limits = ServiceLimits(error_critical_pct=1.1, latency_critical_ms=600, slo_availability_pct=99.95)
    checks = _by_check(check_service(prom, prometheus_server.now, limits=limits))
    assert checks["service.error_rate"].status is Status.CRITICAL
    assert checks["service.error_rate"].severity == "P2"
    assert checks["service.latency_p95"].status is Status.CRITICAL
    assert checks["service.availability"].status is Status.CRITICAL
    assert "exhausted" in checks["service.availability"].summary


def test_an_hour_earlier_everything_is_fine(prom, prometheus_server):
    checks = _by_check(check_service(prom, prometheus_server.now - timedelta(hours=1)))
    assert checks["service.error_rate"].status is Status.OK
    assert checks["service.latency_p95"].status is Status.OK


def test_query_without_series_is_named(prom, prometheus_server):
    queries = ServiceQueries(
        request_rate="sum(rate(no_such_requests_total[$window]))",
        error_rate="sum(rate(no_such_errors_total[$window])) / sum(rate(no_such_requests_total[$window]))",
        latency_p95="histogram_quantile(0.95, sum by (le) (rate(no_such_bucket[$window])))",
    )
    results = check_service(prom, prometheus_server.now, queries=queries)
    assert [r.status for r in results] == [Status.WARNING] * 4
    assert all("returned no series" in r.summary for r in results)
    assert "no_such_requests_total[1w]" in results[0].summary


def test_prometheus_down_is_one_error():
    with PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout_s=2) as down:
        from datetime import UTC, datetime

        results = check_service(down, datetime.now(UTC))
    assert [(r.check, r.status) for r in results] == [("service.prometheus", Status.ERROR)]
    assert "unreachable" in results[0].summary


def test_week_series_for_the_chart(prom, prometheus_server):
    latency, errors = week_series(prom, prometheus_server.now, step=timedelta(minutes=15))
    # The demo holds 6 hours of data: about 24 points at 15 minutes.
    assert 20 <= len(latency) <= 26 and 20 <= len(errors) <= 26
    assert latency[-1][1] > 500 and max(v for _, v in latency[:-2]) < 300
    assert errors[-1][1] > 0.5 and all(t <= prometheus_server.now for t, _ in errors)
