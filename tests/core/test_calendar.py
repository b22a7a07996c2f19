"""Schedules, exactly as the guide says: two years of every task's real Airflow timetable.

The expected dates are computed here from the guide's rules with the standard library only, and
compared with what ``CronTriggerTimetable.next_dagrun_info_v2`` (the scheduler's call) produces.
"""

from __future__ import annotations

import calendar as stdlib_calendar
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from sanvi_ops.core.calendar import cron_for, describe, next_runs, runs_between, timetable_for
from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, GUIDE_TASKS, MaintenanceConfig, TaskSpec, load_config

pytestmark = pytest.mark.unit

UTC = dt.UTC
# Two whole calendar years: 24 months, 8 quarters, and both DST changes of each year for the
# non-UTC cases.
START = dt.datetime(2026, 1, 1, tzinfo=UTC)
END = dt.datetime(2027, 12, 31, 23, 59, tzinfo=UTC)
DAYS = (END.date() - START.date()).days + 1  # 730


@pytest.fixture(scope="module")
def cfg() -> MaintenanceConfig:
    return load_config(DEFAULT_CONFIG_PATH)


def _task(cfg: MaintenanceConfig, task_id: str) -> TaskSpec:
    return cfg.tasks[task_id]


def expected_runs(task: TaskSpec, tz: ZoneInfo, first: dt.date, last: dt.date) -> list[dt.datetime]:
    """The guide's rule, computed without cron or Airflow: local dates at the task's local time."""
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    if task.cadence != "daily":
        assert task.weekday is not None
        days = [d for d in days if d.weekday() == task.weekday.number]
    if task.cadence in {"monthly", "quarterly", "annually"}:
        assert task.week is not None
        days = [d for d in days if 7 * (task.week - 1) < d.day <= 7 * task.week and d.month in task.months]
    return [dt.datetime.combine(d, task.time, tzinfo=tz).astimezone(UTC) for d in days]


@pytest.mark.parametrize("task_id", list(GUIDE_TASKS))
def test_two_years_of_real_timetable_match_the_guide(cfg: MaintenanceConfig, task_id: str) -> None:
    task = _task(cfg, task_id)
    runs = runs_between(task, cfg.timezone, START, END)
    assert runs == expected_runs(task, ZoneInfo(cfg.timezone), START.date(), END.date())
    assert all(r.tzinfo is not None and r.time().replace(tzinfo=None) == task.time for r in runs)

    if task.cadence == "daily":
        assert len(runs) == DAYS
        assert len({r.date() for r in runs}) == DAYS  # every day, once
    elif task.cadence == "weekly":
        assert task.weekday is not None
        assert {r.weekday() for r in runs} == {task.weekday.number}
        per_week = Counter(r.isocalendar()[:2] for r in runs)
        assert set(per_week.values()) == {1}
        assert all(b - a == dt.timedelta(weeks=1) for a, b in zip(runs, runs[1:], strict=False))
        assert len(runs) in {104, 105}
    elif task.cadence == "monthly":
        assert task.week is not None and task.weekday is not None
        assert Counter((r.year, r.month) for r in runs) == {
            (y, m): 1 for y in (2026, 2027) for m in range(1, 13)
        }
        lo, hi = 7 * task.week - 6, 7 * task.week
        assert all(lo <= r.day <= hi and r.weekday() == task.weekday.number for r in runs)
    elif task.cadence == "annually":
        assert task.month is not None and task.week is not None
        assert [(r.year, r.month) for r in runs] == [(2026, task.month), (2027, task.month)]
        assert all(7 * task.week - 6 <= r.day <= 7 * task.week for r in runs)
    else:
        assert task.month_of_quarter is not None and task.week is not None
        assert Counter((r.year, (r.month - 1) // 3) for r in runs) == {
            (y, q): 1 for y in (2026, 2027) for q in range(4)
        }
        assert {(r.month - 1) % 3 + 1 for r in runs} == {task.month_of_quarter}
        assert all(7 * task.week - 6 <= r.day <= 7 * task.week for r in runs)


def test_monthly_quarterly_and_annual_tasks_never_share_a_day(cfg: MaintenanceConfig) -> None:
    """The config's comments promise the heavier reviews are spread out; hold them to it."""
    days: Counter[dt.date] = Counter()
    for task in cfg.tasks.values():
        if task.cadence in {"monthly", "quarterly", "annually"}:
            days.update(r.date() for r in runs_between(task, cfg.timezone, START, END))
    assert days and max(days.values()) == 1


def test_daily_times_are_the_guides(cfg: MaintenanceConfig) -> None:
    first = {t: next_runs(_task(cfg, t), "UTC", START, 1)[0] for t in list(GUIDE_TASKS)[:3]}
    assert {t: r.strftime("%H:%M") for t, r in first.items()} == {
        "system_health_check": "09:00",
        "log_review": "09:30",
        "backup_verification": "10:00",
    }


def test_next_runs_walks_like_the_scheduler(cfg: MaintenanceConfig) -> None:
    """Cross-check against the v1 call the docs describe, driven by hand."""
    from airflow.timetables.base import TimeRestriction

    task = _task(cfg, "security_scan")
    timetable = timetable_for(task, cfg.timezone)
    restriction = TimeRestriction(earliest=START, latest=None, catchup=True)  # type: ignore[arg-type]
    interval = None
    by_hand = []
    for _ in range(12):
        info = timetable.next_dagrun_info(last_automated_data_interval=interval, restriction=restriction)
        assert info is not None and info.data_interval is not None
        by_hand.append(info.run_after)
        interval = info.data_interval
    assert next_runs(task, cfg.timezone, START, 12) == by_hand


def test_start_is_inclusive_and_count_is_honoured(cfg: MaintenanceConfig) -> None:
    task = _task(cfg, "system_health_check")
    at_run = dt.datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    assert next_runs(task, "UTC", at_run, 2) == [at_run, at_run + dt.timedelta(days=1)]
    assert next_runs(task, "UTC", at_run + dt.timedelta(seconds=1), 1) == [at_run + dt.timedelta(days=1)]
    assert next_runs(task, "UTC", at_run, 0) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        next_runs(task, "UTC", dt.datetime(2026, 5, 4), 1)
    with pytest.raises(ValueError, match="count"):
        next_runs(task, "UTC", at_run, -1)


@pytest.mark.parametrize(
    ("task_id", "cron"),
    [
        ("system_health_check", "0 9 * * *"),
        ("log_review", "30 9 * * *"),
        ("backup_verification", "0 10 * * *"),
        ("security_patch_review", "30 10 * * 1"),
        ("database_maintenance", "0 4 * * 3"),
        ("backup_testing", "30 10 * * 5"),
        ("dr_testing", "0 11 * * 2#1"),
        ("capacity_planning", "0 11 * * 3#3"),
        ("dependency_updates", "0 11 * * 2#4"),
        ("penetration_testing", "0 11 * 2,5,8,11 2#3"),
        ("cost_optimization", "0 11 * 1,4,7,10 4#2"),
        ("compliance_audit", "0 11 * 3,6,9,12 3#2"),
    ],
)
def test_cron_expressions(cfg: MaintenanceConfig, task_id: str, cron: str) -> None:
    assert cron_for(_task(cfg, task_id)) == cron


def test_no_cron_restricts_day_of_month(cfg: MaintenanceConfig) -> None:
    # cron ORs day-of-month with day-of-week: restricting both would fire far too often.
    for task in cfg.tasks.values():
        assert cron_for(task).split()[2] == "*"


def test_timetable_is_the_airflow_cron_trigger(cfg: MaintenanceConfig) -> None:
    from airflow.timetables.trigger import CronTriggerTimetable

    timetable = timetable_for(_task(cfg, "compliance_audit"), "Europe/Berlin")
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.summary == "0 11 * 3,6,9,12 3#2"
    assert timetable.serialize()["timezone"] == "Europe/Berlin"
    assert "second Wednesday" in timetable.description


@pytest.mark.parametrize(
    ("task_id", "text"),
    [
        ("system_health_check", "Daily 09:00 UTC"),
        ("security_patch_review", "Weekly on Monday 10:30 UTC"),
        ("dr_testing", "Monthly, 1st week (first Tuesday) 11:00 UTC"),
        ("penetration_testing", "Quarterly (Feb, May, Aug, Nov), 3rd week (third Tuesday) 11:00 UTC"),
    ],
)
def test_describe(cfg: MaintenanceConfig, task_id: str, text: str) -> None:
    assert describe(_task(cfg, task_id), cfg.timezone) == text
    assert describe(_task(cfg, task_id)) == text.removesuffix(" UTC")


# ---------------------------------------------------------------------------------------------
# Non-UTC time zones: local times hold across daylight saving
# ---------------------------------------------------------------------------------------------


def test_new_york_09_00_holds_across_dst(cfg: MaintenanceConfig) -> None:
    tz = ZoneInfo("America/New_York")
    task = _task(cfg, "system_health_check")
    runs = runs_between(task, "America/New_York", START, END)
    assert len(runs) == DAYS
    local = [r.astimezone(tz) for r in runs]
    assert all(t.time() == dt.time(9, 0) for t in local)
    assert len({t.date() for t in local}) == DAYS
    # EST (UTC-5) in winter, EDT (UTC-4) in summer: the UTC hour moves, the local one does not.
    assert {r.hour for r in runs} == {13, 14}
    by_date = {t.date(): r for t, r in zip(local, runs, strict=True)}
    assert by_date[dt.date(2026, 3, 7)].hour == 14  # Saturday before DST starts (Mar 8)
    assert by_date[dt.date(2026, 3, 8)].hour == 13  # DST day
    assert by_date[dt.date(2026, 11, 1)].hour == 14  # DST ends
    assert runs == expected_runs(task, tz, dt.date(2026, 1, 1), dt.date(2027, 12, 31))


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo", "Pacific/Auckland"])
@pytest.mark.parametrize(
    "task_id", ["database_maintenance", "dr_testing", "dependency_updates", "compliance_audit"]
)
def test_local_days_hold_in_other_time_zones(cfg: MaintenanceConfig, zone: str, task_id: str) -> None:
    """Weekday and week-of-month are judged on the local calendar, not UTC's: Tokyo 04:00 on a
    Wednesday is 19:00 UTC on Tuesday."""
    tz = ZoneInfo(zone)
    task = _task(cfg, task_id)
    start_local = dt.datetime(2026, 1, 1, tzinfo=tz)
    end_local = dt.datetime(2027, 12, 31, 23, 59, tzinfo=tz)
    runs = runs_between(task, zone, start_local, end_local)
    assert runs == expected_runs(task, tz, dt.date(2026, 1, 1), dt.date(2027, 12, 31))
    local = [r.astimezone(tz) for r in runs]
    assert all(t.time() == task.time for t in local)
    assert task.weekday is not None
    assert {t.weekday() for t in local} == {task.weekday.number}


def test_expected_rule_agrees_with_stdlib_calendar() -> None:
    """Sanity check of the test's own rule: the Nth weekday is the one stdlib's month matrix shows."""
    for year in (2026, 2027):
        for month in range(1, 13):
            tuesdays = [week[stdlib_calendar.TUESDAY] for week in stdlib_calendar.monthcalendar(year, month)]
            tuesdays = [d for d in tuesdays if d]
            for n in range(1, 5):
                assert 7 * (n - 1) < tuesdays[n - 1] <= 7 * n
