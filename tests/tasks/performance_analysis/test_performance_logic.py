"""Performance Analysis pieces that need no server: weekly change, PromQL templates, the run's
instant, the chart and the config section."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sanvi_ops.tasks.performance_analysis.performance import ServiceQueries, StatementStat, statement_changes


def _stat(qid: int, calls: int, total_ms: float) -> StatementStat:
    return StatementStat(qid, f"SELECT {qid}", calls, total_ms, total_ms / calls if calls else 0.0, calls)


def test_change_against_last_week_is_the_difference_of_cumulative_counters():
    previous = {1: _stat(1, 1000, 10_000.0), 2: _stat(2, 500, 500.0)}
    current = [_stat(1, 1500, 20_000.0), _stat(2, 100, 90.0), _stat(3, 10, 5.0)]
    changes = statement_changes(current, previous)
    # Statement 1: 500 calls this week taking 10 000 ms → mean 20 ms against 10 ms: +100 %.
    assert changes[1] == {
        "week_calls": 500,
        "week_total_ms": 10_000.0,
        "week_mean_ms": 20.0,
        "mean_change_pct": 100.0,
        "baseline": "last_week",
    }
    assert changes[2]["baseline"] == "reset" and changes[2]["week_calls"] == 100
    assert changes[3]["baseline"] == "new" and changes[3]["mean_change_pct"] is None


def test_first_run_has_no_baseline():
    changes = statement_changes([_stat(1, 10, 10.0)], None)
    assert changes[1]["baseline"] == "none" and changes[1]["week_calls"] == 10


def test_queries_render_the_window():
    q = ServiceQueries()
    assert "[1w]" in q.render("request_rate", timedelta(days=7))
    assert q.render("error_rate", "5m").count("[5m]") == 2
    assert "$window" not in q.render("latency_p95", timedelta(hours=1, minutes=30))
    with pytest.raises(ValueError):
        q.render("request_rate", "five minutes")


def test_evaluation_time_param_then_interval_end_then_now():
    from sanvi_ops.tasks.performance_analysis.airflow_tasks import evaluation_time

    end = datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert evaluation_time({"params": {"evaluate_at": "2026-11-20T08:00:00"}, "data_interval_end": end}) == (
        datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    )
    assert evaluation_time({"params": {"evaluate_at": None}, "data_interval_end": end}) == end
    before = datetime.now(UTC)
    assert evaluation_time({}) >= before


def test_chart_is_a_png_even_without_data():
    from sanvi_ops.tasks.performance_analysis.charts import latency_error_chart

    t0 = datetime(2026, 11, 24, tzinfo=UTC)
    kwargs = {
        "title": "week",
        "slo_p95_ms": 300,
        "latency_warning_ms": 500,
        "latency_critical_ms": 1000,
        "slo_error_pct": 0.1,
        "error_warning_pct": 1,
        "error_critical_pct": 5,
    }
    points = [(t0 + timedelta(hours=h), 200.0 + h) for h in range(48)]
    png = latency_error_chart(
        points,
        [(t, 0.05) for t, _ in points],
        start=t0 - timedelta(days=5),
        end=t0 + timedelta(days=2),
        **kwargs,
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert latency_error_chart([], [], **kwargs).startswith(b"\x89PNG")


def test_config_sections_have_defaults_and_validate():
    from sanvi_ops.core.config import load_config
    from sanvi_ops.tasks.disk_space_check.config import DiskSpaceConfig
    from sanvi_ops.tasks.performance_analysis.config import PerformanceAnalysisConfig

    cfg = load_config()
    assert cfg.tasks.performance_analysis.settings.top_queries == 10
    assert cfg.tasks.disk_space_check.settings.history == timedelta(days=90)
    with pytest.raises(ValueError, match=r"\$window"):
        PerformanceAnalysisConfig(request_rate_query="sum(rate(http_requests_total[5m]))")
    with pytest.raises(ValueError, match="floors"):
        PerformanceAnalysisConfig(cache_hit_warning_pct=90, cache_hit_critical_pct=95)
    with pytest.raises(ValueError):
        DiskSpaceConfig(full_within_days=0)
