"""Pure logic of the Prometheus client, the "held for" PromQL, grading and the demo series."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from devstack.prometheus import DEMO_INSTANCES, demo_series
from sanvi_ops.core.prometheus import (
    PrometheusClient,
    duration_ms,
    parse_matrix,
    parse_samples,
    promql_duration,
    redact_url,
    sustained_above,
    sustained_min,
    window_points,
)
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.system_health_check.health.metrics import ThresholdLike, assess, series_name

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class T:
    """Stands in for sanvi_ops.core.config.Threshold (same attributes)."""

    warning: float = 70
    critical: float = 90
    warning_for: timedelta | None = timedelta(minutes=15)
    critical_for: timedelta | None = timedelta(minutes=5)


def _threshold(t: ThresholdLike) -> ThresholdLike:
    return t  # mypy: T satisfies the protocol


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(minutes=15), "15m"),
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=1500), "1s500ms"),
        (timedelta(days=1), "1d"),
        (timedelta(days=8), "1w1d"),
        ("15m", "15m"),
        (" 1h30m ", "1h30m"),
    ],
)
def test_promql_duration(value: timedelta | str, expected: str) -> None:
    assert promql_duration(value) == expected


@pytest.mark.parametrize(
    "bad",
    [
        timedelta(0),
        timedelta(minutes=-5),
        timedelta(microseconds=1500),
        "15 minutes",
        "",
        "0m",
        "m15",
        "1.5h",
    ],
)
def test_promql_duration_rejects(bad: timedelta | str) -> None:
    with pytest.raises(ValueError, match="duration"):
        promql_duration(bad)


def test_duration_ms() -> None:
    assert duration_ms("1h30m") == 5_400_000
    assert duration_ms("250ms") == 250
    assert duration_ms(timedelta(minutes=15)) == 900_000


def test_window_points() -> None:
    assert window_points(timedelta(minutes=15), "1m") == 15
    assert window_points("5m", timedelta(minutes=1)) == 5
    assert window_points("5m", "30s") == 10
    with pytest.raises(ValueError, match="shorter than its step"):
        window_points("30s", "1m")


# -- "held for" PromQL ----------------------------------------------------------------------

CPU = '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))'


def test_sustained_min_is_min_over_a_subquery_with_full_coverage() -> None:
    expr = sustained_min(CPU, timedelta(minutes=15))
    window = f"({CPU})[15m:1m]"
    assert expr == f"(min_over_time({window}) and count_over_time({window}) >= 15)"


def test_sustained_above_compares_the_window_minimum() -> None:
    assert sustained_above("up", 70, "5m", step="30s") == (
        "(min_over_time((up)[5m:30s]) and count_over_time((up)[5m:30s]) >= 10) > 70.0"
    )


def test_a_comment_in_the_expression_cannot_swallow_the_parenthesis() -> None:
    expr = sustained_min("up # any target", "5m")
    assert "(up # any target\n)[5m:1m]" in expr


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_sustained_above_rejects_non_finite_thresholds(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        sustained_above("up", bad, "5m")


def test_empty_expression_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        sustained_min("  ", "5m")


# -- response parsing -----------------------------------------------------------------------


def test_parse_vector_and_special_values() -> None:
    data = {
        "resultType": "vector",
        "result": [
            {"metric": {"instance": "a"}, "value": [1700000000.5, "12.5"]},
            {"metric": {"instance": "b"}, "value": [1700000000.5, "NaN"]},
            {"metric": {"instance": "c"}, "value": [1700000000.5, "+Inf"]},
        ],
    }
    samples = parse_samples(data)
    assert [s.labels["instance"] for s in samples] == ["a", "b", "c"]
    assert samples[0].value == 12.5
    assert samples[0].timestamp == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    assert math.isnan(samples[1].value)
    assert samples[2].value == math.inf


def test_parse_scalar() -> None:
    [sample] = parse_samples({"resultType": "scalar", "result": [1700000000, "3"]})
    assert sample.labels == {} and sample.value == 3.0


def test_instant_matrix_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="range selector"):
        parse_samples({"resultType": "matrix", "result": []})


def test_parse_matrix() -> None:
    [series] = parse_matrix(
        {"resultType": "matrix", "result": [{"metric": {"job": "x"}, "values": [[60, "1"], [120, "2"]]}]}
    )
    assert series.labels == {"job": "x"}
    assert [v for _, v in series.points] == [1.0, 2.0]
    assert series.points[1][0] == datetime(1970, 1, 1, 0, 2, tzinfo=UTC)


def test_redact_url_drops_credentials() -> None:
    assert (
        redact_url("https://user:s3cret@prom.example.com/prometheus") == "https://prom.example.com/prometheus"
    )
    assert redact_url("http://127.0.0.1:9090") == "http://127.0.0.1:9090"


def test_client_validates_arguments_before_any_io() -> None:
    with pytest.raises(ValueError, match="base_url"):
        PrometheusClient(" ")
    with pytest.raises(ValueError, match="timeout_s"):
        PrometheusClient("http://127.0.0.1:9", timeout_s=0)
    with PrometheusClient("http://alice:pw@127.0.0.1:9") as prom:
        assert "pw" not in repr(prom) and "pw" not in prom.display_url
        with pytest.raises(ValueError, match="timezone-aware"):
            prom.query("up", at=datetime(2025, 1, 1))  # naive: ambiguous
        with pytest.raises(ValueError, match="before start"):
            prom.query_range("up", datetime(2025, 1, 2, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))


# -- grading --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "min_warn", "min_crit", "status", "reason"),
    [
        (96, 95, 94, Status.CRITICAL, "above 90% for 5m"),
        (85, 72, 60, Status.WARNING, "above 70% for 15m"),
        (95, 72, None, Status.WARNING, "above 70% for 15m; above 90% now but not yet for 5m"),
        (93, 60, 60, Status.OK, "above 90% now but not yet for 5m"),
        (75, 60, 60, Status.OK, "above 70% now but not yet for 15m"),
        (20, 18, 19, Status.OK, "below 70%"),
        (90, 90, 90, Status.WARNING, "above 70% for 15m"),  # 90 is not "> 90"
        (70, 70, 70, Status.OK, "below 70%"),  # 70 is not "> 70"
        (95, None, None, Status.OK, "above 90% now but not yet for 5m"),  # series younger than the windows
    ],
)
def test_assess(
    current: float, min_warn: float | None, min_crit: float | None, status: Status, reason: str
) -> None:
    verdict = assess(current, min_warn, min_crit, _threshold(T()))
    assert (verdict.status, verdict.reason) == (status, reason)


def test_assess_without_durations_uses_the_current_value() -> None:
    verdict = assess(91, None, None, _threshold(T(warning_for=None, critical_for=None)))
    assert verdict.status is Status.CRITICAL and verdict.reason == "above 90%"


def test_series_name_prefers_the_instance_unless_ambiguous() -> None:
    a = {"instance": "db-1", "job": "node"}
    b = {"instance": "db-1", "job": "postgres"}
    assert series_name(a, [a, {"instance": "x"}]) == "db-1"
    assert series_name(a, [a, b]) == "instance=db-1,job=node"
    assert series_name({}, [{}]) == "all"


# -- demo series ----------------------------------------------------------------------------

NOW = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+) (?P<ts>\d+)$")


def _parse(text: str) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, line
        series[m["name"] + (m["labels"] or "")].append((int(m["ts"]), float(m["value"])))
    return series


def test_demo_series_is_deterministic_openmetrics() -> None:
    text = demo_series(NOW, history=timedelta(hours=1))
    assert text == demo_series(NOW, history=timedelta(hours=1))
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    for line in text.splitlines():
        if line.startswith("# TYPE") and line.endswith(" counter"):
            assert not line.split()[2].endswith("_total"), (
                "an OpenMetrics counter family has no _total suffix"
            )


def test_demo_series_stays_in_its_window_and_counters_only_grow() -> None:
    series = _parse(demo_series(NOW, history=timedelta(hours=1)))
    end = int(NOW.timestamp())
    start = end - 3600
    for key, points in series.items():
        times = [t for t, _ in points]
        assert times == sorted(set(times)), f"{key}: timestamps must increase"
        assert start <= times[0] and times[-1] <= end, key
        if "_total" in key or "_bucket" in key or "_count" in key or "_sum" in key:
            values = [v for _, v in points]
            assert values == sorted(values), f"{key}: a counter went down"
    instances = {m for key in series for m in re.findall(r'instance="([^"]+)"', key)}
    assert instances == set(DEMO_INSTANCES)


def test_demo_series_horizon_writes_future_points() -> None:
    series = _parse(demo_series(NOW, history=timedelta(minutes=10), horizon=timedelta(minutes=10)))
    last = max(points[-1][0] for points in series.values())
    assert last == int((NOW + timedelta(minutes=10)).timestamp())


def test_demo_series_needs_an_aware_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        demo_series(datetime(2025, 1, 1))
