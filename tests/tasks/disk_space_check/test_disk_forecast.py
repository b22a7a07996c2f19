"""Disk grading and the days-until-full line (sanvi_ops.tasks.disk_space_check.disk), without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.disk_space_check.disk import GIB, Usage, days_until_full, grade_usage, growth_per_day

T0 = datetime(2026, 11, 5, 10, 30, tzinfo=UTC)


def _usage(used_gib: float, size_gib: float | None = 100, at: datetime = T0) -> Usage:
    return Usage(
        target="fs:db-1:/data",
        check="disk.filesystem[db-1:/data]",
        component="db-1",
        label="db-1 /data",
        used_bytes=used_gib * GIB,
        size_bytes=None if size_gib is None else size_gib * GIB,
        at=at,
    )


def test_growth_is_the_least_squares_slope_per_day():
    samples = [(T0 + timedelta(days=7 * i), (50 + 7 * i) * GIB) for i in range(4)]
    assert growth_per_day(samples) == pytest.approx(GIB)
    noisy = [(T0, 10.0), (T0 + timedelta(days=1), 14.0), (T0 + timedelta(days=2), 18.0)]
    assert growth_per_day(noisy) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "samples",
    [[], [(T0, 1.0)], [(T0, 1.0), (T0, 2.0)]],
    ids=["none", "one", "same-instant"],
)
def test_no_slope_without_two_distinct_instants(samples):
    assert growth_per_day(samples) is None
    assert days_until_full(samples, 100.0, 50.0) is None


def test_days_until_full_extrapolates_and_ignores_shrinking():
    growing = [(T0 - timedelta(days=14), 60 * GIB), (T0, 74 * GIB)]  # 1 GiB/day
    assert days_until_full(growing, 100 * GIB, 74 * GIB) == pytest.approx(26.0)
    shrinking = [(T0 - timedelta(days=7), 80 * GIB), (T0, 70 * GIB)]
    assert days_until_full(shrinking, 100 * GIB, 70 * GIB) is None


@pytest.mark.parametrize(
    ("used", "status"),
    [(80, Status.OK), (80.5, Status.WARNING), (90, Status.WARNING), (90.5, Status.CRITICAL)],
)
def test_thresholds_are_strictly_above(used, status):
    result = grade_usage(_usage(used), [], warning_pct=80, critical_pct=90)
    assert result.status is status
    assert result.observed == pytest.approx(used)
    assert result.thresholds["warning"] == 80 and result.thresholds["critical"] == 90
    assert "no growth trend yet" in result.summary
    if status is Status.CRITICAL:
        assert result.severity == "P2"


def test_forecast_full_within_the_horizon_is_a_warning_below_80_pct():
    history = [(T0 - timedelta(days=14), 36 * GIB), (T0 - timedelta(days=7), 53 * GIB)]
    result = grade_usage(_usage(70), history, warning_pct=80, critical_pct=90, full_within_days=30)
    assert result.status is Status.WARNING
    assert result.details["samples"] == 3
    assert result.details["days_until_full"] == pytest.approx(30 / 17 * 7, abs=0.2)
    assert "within 30 days" in result.summary


def test_samples_after_the_run_are_ignored_and_slow_growth_is_ok():
    history = [(T0 - timedelta(days=30), 49 * GIB), (T0 + timedelta(days=1), 99 * GIB)]
    result = grade_usage(_usage(50), history, warning_pct=80, critical_pct=90)
    assert result.status is Status.OK
    assert result.details["samples"] == 2
    assert result.details["days_until_full"] > 1000


def test_target_without_capacity_reports_growth_only():
    history = [(T0 - timedelta(days=7), 3 * GIB)]
    result = grade_usage(_usage(4, size_gib=None), history, warning_pct=80, critical_pct=90)
    assert result.status is Status.OK
    assert result.unit == "bytes"
    assert "growing 1.0 GiB per week" in result.summary
