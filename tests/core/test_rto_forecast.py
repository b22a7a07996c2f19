"""Restore phases and the RTO forecast (issue 18): pure logic, no servers."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from sanvi_ops.core.notify.render import summary_message
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.rto_forecast import PhaseTimer, forecast, phases_line

NOW = datetime(2026, 12, 1, tzinfo=UTC)
GB = 1e9


def _phases(download: float, extract: float, start: float = 20.0) -> list[dict]:
    timer = PhaseTimer()
    timer.add("prepare", 1.0)
    timer.add("download", download, int(10 * GB))
    timer.add("extract", extract, int(10 * GB))
    timer.add("verify", 60.0)
    timer.add("start", start)
    timer.add("smoke", 1.0)
    timer.in_rto = False
    timer.add("amcheck", 300.0)
    return timer.phases


def _samples(start_gb: float, gb_per_day: float, days: int = 60) -> list[tuple[datetime, float]]:
    return [(NOW - timedelta(days=days - d), (start_gb + gb_per_day * d) * GB) for d in range(0, days + 1, 7)]


def test_timer_records_seconds_bytes_and_mb_per_s():
    timer = PhaseTimer()
    with timer.phase("download") as ctx:
        time.sleep(0.02)
        ctx["bytes"] = 2_000_000
    with timer.phase("start"):
        pass
    timer.in_rto = False
    with timer.phase("amcheck"):
        pass
    download, start, amcheck = timer.phases
    assert download["name"] == "download" and download["seconds"] >= 0.02 and download["bytes"] == 2_000_000
    assert download["mb_per_s"] == pytest.approx(2 / download["seconds"], rel=0.05)
    assert start["bytes"] is None and start["mb_per_s"] is None and start["in_rto"]
    assert not amcheck["in_rto"]
    assert timer.rto_seconds() == pytest.approx(download["seconds"] + start["seconds"], abs=0.002)


def test_timer_records_a_failed_phase_and_reraises():
    timer = PhaseTimer()
    with pytest.raises(RuntimeError), timer.phase("combine"):
        raise RuntimeError("pg_combinebackup exited 1")
    assert timer.phases[0]["name"] == "combine" and timer.phases[0]["failed"] is True
    assert "combine 0.0 s FAILED" in phases_line(timer.phases)


def test_phases_line_is_compact_and_renders_in_the_slack_summary():
    timer = PhaseTimer()
    timer.add("download", 12.1, 1_875_500_000)
    timer.add("extract", 3.0, 1_875_500_000)
    timer.add("amcheck", 40.25)
    line = phases_line(timer.phases)
    assert line == "phases: download 12.1 s (155 MB/s) · extract 3.0 s (625 MB/s) · amcheck 40.2 s"
    result = CheckResult("restore.phases", Status.OK, line, component="backups")
    _, blocks = summary_message("backup_testing", "r1", "Backup Testing", "DevOps", [result], None)
    text = "\n".join(str(b) for b in blocks)
    assert "phases: download 12.1 s (155 MB/s) · extract 3.0 s (625 MB/s) · amcheck 40.2 s" in text
    assert phases_line([]) == "phases: none recorded"


def test_growth_that_crosses_the_hour_in_month_n_warns_naming_month_and_phase():
    # 10 GB restores in 34.7 min now (download 1500 s dominates); +0.1 GB/day over 56 days of
    # samples: size(m) = 10 GB + 3.044 GB × m, total = 22 s fixed + 2060 s × size/10 GB,
    # which reaches 3600 s at m ≥ 2.42: month 3.
    phases = _phases(download=1500.0, extract=500.0, start=20.0)
    samples = _samples(start_gb=10 - 5.6, gb_per_day=0.1, days=56)
    assert samples[-1] == (NOW, pytest.approx(10 * GB))
    result = forecast(phases, 10 * GB, samples, objective_s=3600, now=NOW)
    assert result.status == Status.WARNING, result.summary
    month = result.details["crossing_month"]
    assert month == 3
    assert f"in month {month}" in result.summary and "largest phase: download" in result.summary
    assert result.details["top_phase"] == "download"
    assert len(result.details["projection"]) == 13
    assert "amcheck" not in result.details["projection"][0]["phases_s"]  # not in the RTO


def test_flat_growth_is_ok():
    result = forecast(_phases(400.0, 140.0), 10 * GB, _samples(10, 0.0), objective_s=3600, now=NOW)
    assert result.status == Status.OK, result.summary
    assert "under the 60 min objective" in result.summary


def test_already_over_the_objective_is_critical():
    result = forecast(_phases(3000.0, 900.0), 10 * GB, _samples(10, 0.0), objective_s=3600, now=NOW)
    assert result.status == Status.CRITICAL and "already over" in result.summary
    assert "largest phase: download" in result.summary


@pytest.mark.parametrize(
    "samples",
    [
        [],
        [(NOW, 10 * GB)],
        [(NOW - timedelta(days=2), 9 * GB), (NOW - timedelta(days=1), 9.5 * GB), (NOW, 10 * GB)],
    ],
)
def test_too_little_data_is_a_clear_warning_not_green(samples):
    result = forecast(_phases(400.0, 140.0), 10 * GB, samples, objective_s=3600, now=NOW)
    assert result.status == Status.WARNING and "not enough samples" in result.summary


def test_no_recorded_phases_is_a_warning():
    result = forecast([], 10 * GB, _samples(10, 1.0), objective_s=3600, now=NOW)
    assert result.status == Status.WARNING and "no recovery test with recorded phases" in result.summary


def test_hostile_phase_values_do_not_break_the_forecast():
    phases = [{"name": "download", "seconds": -5, "in_rto": True}, {"name": "<script>", "seconds": 10}]
    result = forecast(phases, 10 * GB, _samples(10, 0.0), objective_s=3600, now=NOW)
    assert result.status == Status.OK
