"""Capacity planning logic without servers: growth, trends against the scale-up line, chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sanvi_ops.core.prometheus import RangeSeries
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.capacity_planning.capacity import (
    fit_trend,
    percentile,
    resource_trends,
    storage_growth,
    trend_chart,
)
from sanvi_ops.tasks.disk_space_check.disk import GIB

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def test_percentile_interpolates_like_numpy():
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile(list(range(101)), 95) == pytest.approx(95)
    assert percentile([10.0], 95) == 10.0


def test_fit_trend_slope_and_fitted_now():
    points = [(T0 + timedelta(days=d), 40 + 0.5 * d) for d in range(31)]
    trend = fit_trend(points)
    assert trend is not None
    assert trend.slope_per_day == pytest.approx(0.5)
    assert trend.fitted_now == pytest.approx(55)
    assert trend.average == pytest.approx(47.5)
    assert trend.span_days == pytest.approx(30)
    assert fit_trend([]) is None


class FakeProm:
    def __init__(self, series):
        self.series = series
        self.calls = []

    def query_range(self, expr, start, end, step):
        self.calls.append((expr, start, end, step))
        return self.series


def _series(instance, f, days=30):
    return RangeSeries(
        {"instance": instance}, [(T0 + timedelta(hours=h), f(h / 24)) for h in range(days * 24 + 1)]
    )


def test_trends_flag_crossing_within_horizon_and_p95_above_line():
    prom = FakeProm(
        [
            _series("flat", lambda d: 30.0),
            _series("rising", lambda d: 40 + 0.5 * d),  # 55 % now, crosses 70 % in ~30 days
            _series("slow", lambda d: 20 + 0.1 * d),  # 23 % now, 70 % in ~470 days
            _series("hot", lambda d: 80.0),
        ]
    )
    results, series = resource_trends(
        prom,
        "cpu",
        "q",
        T0,
        T0 + timedelta(days=30),
        step="15m",
        scale_up_pct=70,
        horizon_days=90,
        min_trend_days=7,
    )
    by = {r.check: r for r in results}
    assert by["capacity.cpu_trend[flat]"].status is Status.OK
    rising = by["capacity.cpu_trend[rising]"]
    assert rising.status is Status.WARNING and "crosses 70 %" in rising.summary
    assert rising.details["days_until_scale_up"] == pytest.approx(30, abs=0.5)
    assert by["capacity.cpu_trend[slow]"].status is Status.OK
    hot = by["capacity.cpu_trend[hot]"]
    assert hot.status is Status.WARNING and "scale up now" in hot.summary
    assert set(series) == {"flat", "rising", "slow", "hot"}


def test_short_history_is_not_extrapolated():
    prom = FakeProm([_series("new", lambda d: 10 + 50 * d, days=1)])
    results, _ = resource_trends(
        prom,
        "memory",
        "q",
        T0,
        T0 + timedelta(days=1),
        step="15m",
        scale_up_pct=70,
        horizon_days=90,
        min_trend_days=7,
    )
    (r,) = results
    assert r.status is Status.OK and "not extrapolated" in r.summary
    assert r.details["days_until_scale_up"] is None


def test_no_series_is_a_warning():
    results, series = resource_trends(
        FakeProm([]), "cpu", "q", T0, T0, step="15m", scale_up_pct=70, horizon_days=90, min_trend_days=7
    )
    assert [r.status for r in results] == [Status.WARNING] and series == {}


def test_storage_growth_days_until_full_and_growth_only_targets():
    samples = {
        # 100 GiB volume, last sample (day 28) at 48 GiB, +1 GiB/day: full in 52 days (< 90): warning
        "fs:db-1:/data": [(T0 + timedelta(days=d), (50 - 30 + d) * GIB, 100 * GIB) for d in range(0, 31, 7)],
        # +0.1 GiB/day on 500 GiB: far beyond the horizon
        "rds:prod": [(T0 + timedelta(days=d), (100 + 0.1 * d) * GIB, 500 * GIB) for d in range(0, 31, 7)],
        "table:app/public.orders": [(T0 + timedelta(days=d), (1 + d / 10) * GIB, None) for d in (0, 10, 20)],
        "postgres:app": [(T0, 5 * GIB, None)],
    }
    by = {r.check: r for r in storage_growth(samples, horizon_days=90)}
    fs = by["capacity.filesystem_growth[db-1:/data]"]
    assert fs.status is Status.WARNING and fs.details["days_until_full"] == pytest.approx(52)
    rds = by["capacity.rds_growth[prod]"]
    assert rds.status is Status.OK and rds.details["days_until_full"] > 90
    table = by["capacity.table_growth[app/public.orders]"]
    assert table.status is Status.OK and table.observed == pytest.approx(0.1 * GIB, rel=1e-6)
    db = by["capacity.database_growth[app]"]
    assert db.status is Status.OK and "no growth trend yet" in db.summary


def test_trend_chart_is_png_even_without_data():
    png = trend_chart(
        {"a": [(T0, 10.0), (T0 + timedelta(hours=1), 20.0)]},
        {},
        title="t",
        scale_up_pct=70,
        start=T0,
        end=T0 + timedelta(hours=1),
    )
    assert png.startswith(b"\x89PNG")


def test_config_defaults_and_bounds():
    from pydantic import ValidationError

    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.capacity_planning.config import CapacityPlanningConfig

    cfg = load_config()
    c = cfg.tasks.capacity_planning.settings
    assert (c.autoscaling_min, c.autoscaling_max, c.read_replica_ratio, c.horizon_days) == (2, 10, 4, 90)
    from sanvi_ops.tasks.capacity_planning.airflow_tasks import scale_up_pct

    assert scale_up_pct(cfg) == cfg.thresholds.cpu.warning == 70
    with pytest.raises(ValidationError, match="autoscaling_min"):
        CapacityPlanningConfig(autoscaling_min=5, autoscaling_max=3)
