"""When each guide task runs: cron expressions, Airflow timetables, and plain-English schedules.

Why cron ``D#N`` and not a day-of-month range: cron ORs day-of-month with day-of-week, so
``0 10 1-7 * 2`` fires on *every* day 1–7 *and* every Tuesday. ``0 10 * * 2#1`` ("the first
Tuesday") is exactly one day a month and always falls in days 1–7, which is what "1st week"
means in the guide. Quarterly tasks add the months (``0 11 * 2,5,8,11 2#3``), annual ones their
one month (``0 11 * 5 4#4``: the fourth Thursday of May).

Schedules are :class:`~airflow.timetables.trigger.CronTriggerTimetable` in the config's time zone:
a run fires *at* the scheduled time (not at the end of an interval), and 09:00 stays 09:00 local
across daylight-saving changes. :func:`next_runs` walks that timetable the way the scheduler does,
so tests and the UI show the dates Airflow will really use.

Everything but :func:`timetable_for` and the walkers is pure; Airflow is imported lazily.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sanvi_ops.core.config import MaintenanceConfig, TaskSpec

if TYPE_CHECKING:
    # Public (Airflow's Timetables interface); airflow.sdk's CronTriggerTimetable lacks next_dagrun_info_v2.
    from airflow.timetables.trigger import CronTriggerTimetable

__all__ = [
    "CHANGE_REVIEW_DAG_ID",
    "WATCHDOG_DAG_ID",
    "JobSchedule",
    "cron_for",
    "describe",
    "next_runs",
    "non_guide_dags",
    "runs_between",
    "timetable_for",
]

_ORDINALS = {1: ("1st", "first"), 2: ("2nd", "second"), 3: ("3rd", "third"), 4: ("4th", "fourth")}
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def cron_for(task: TaskSpec) -> str:
    """The 5-field cron expression of ``task`` (minute hour day-of-month month day-of-week).

    >>> cron_for(TaskSpec(title="t", cadence="monthly", time="10:00", weekday="tuesday", week=1,
    ...                   team="devops", description="d"))
    '0 10 * * 2#1'
    """
    minute, hour = task.time.minute, task.time.hour
    if task.cadence == "daily":
        return f"{minute} {hour} * * *"
    if task.weekday is None:  # guaranteed by TaskSpec validation; keeps mypy and readers honest
        raise ValueError(f"{task.title}: a {task.cadence} task needs a weekday")
    if task.cadence == "weekly":
        return f"{minute} {hour} * * {task.weekday.cron}"
    if task.week is None:
        raise ValueError(f"{task.title}: a {task.cadence} task needs a week")
    day_of_week = f"{task.weekday.cron}#{task.week}"
    if task.cadence == "monthly":
        return f"{minute} {hour} * * {day_of_week}"
    months = ",".join(str(m) for m in task.months)
    return f"{minute} {hour} * {months} {day_of_week}"


def timetable_for(task: TaskSpec, timezone: str) -> CronTriggerTimetable:
    """The Airflow timetable for ``task`` in ``timezone`` (an IANA name, e.g. the config's)."""
    # Public (Airflow's Timetables interface); airflow.sdk's CronTriggerTimetable lacks next_dagrun_info_v2.
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(cron_for(task), timezone=timezone)


def describe(task: TaskSpec, timezone: str | None = None) -> str:
    """A schedule a person reads: ``Daily 09:00``, ``Weekly on Monday 10:30``,
    ``Monthly, 1st week (first Tuesday) 11:00``,
    ``Quarterly (Feb, May, Aug, Nov), 3rd week (third Tuesday) 11:00``,
    ``Annually (May), 4th week (fourth Thursday) 11:00``; ``timezone`` is appended."""
    at = task.time.strftime("%H:%M") + (f" {timezone}" if timezone else "")
    if task.cadence == "daily":
        return f"Daily {at}"
    weekday = task.weekday.label if task.weekday is not None else "?"
    if task.cadence == "weekly":
        return f"Weekly on {weekday} {at}"
    short, long = _ORDINALS.get(task.week or 0, ("?", "?"))
    which = f"{short} week ({long} {weekday})"
    if task.cadence == "monthly":
        return f"Monthly, {which} {at}"
    months = ", ".join(_MONTH_ABBR[m - 1] for m in task.months)
    return f"{task.cadence.capitalize()} ({months}), {which} {at}"


def _walk(
    task: TaskSpec, timezone: str, start: dt.datetime, end: dt.datetime | None, count: int | None
) -> list[dt.datetime]:
    """Ask the real timetable for run after run, exactly as the scheduler does
    (``next_dagrun_info_v2`` fed with the previous run's info, catchup on)."""
    import pendulum
    from airflow.timetables.base import TimeRestriction

    if start.tzinfo is None or (end is not None and end.tzinfo is None):
        raise ValueError("start and end must be timezone-aware")
    timetable = timetable_for(task, timezone)
    restriction = TimeRestriction(
        earliest=pendulum.instance(start),
        latest=pendulum.instance(end) if end is not None else None,
        catchup=True,
    )
    runs: list[dt.datetime] = []
    info = None
    while count is None or len(runs) < count:
        info = timetable.next_dagrun_info_v2(last_dagrun_info=info, restriction=restriction)
        if info is None:
            break
        runs.append(dt.datetime.fromtimestamp(info.run_after.timestamp(), tz=dt.UTC))
    return runs


def next_runs(task: TaskSpec, timezone: str, start: dt.datetime, count: int) -> list[dt.datetime]:
    """The next ``count`` run times of ``task`` at or after ``start`` (aware datetimes in UTC)."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return _walk(task, timezone, start, None, count)


def runs_between(task: TaskSpec, timezone: str, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every run time of ``task`` in ``[start, end]`` (aware datetimes in UTC)."""
    return _walk(task, timezone, start, end, None)


@dataclass(frozen=True)
class JobSchedule:
    """A DAG that is not one of the guide's 16 tasks but is declared in the config (the backup
    jobs): its schedule (``cron``; ``None``: only triggered, never scheduled), team and folder
    under ``dags/``."""

    dag_id: str
    title: str
    description: str
    team: str
    cron: str | None
    folder: str
    tag: str
    execution_timeout_minutes: int
    #: Runs at once: 1, except a triggered job whose runs each wait for a person (the reviews).
    max_active_runs: int = 1


#: The meta-monitoring DAG (``dags/meta/sanvi_ops_watchdog.py``), declared by ``meta_monitoring.watchdog``.
WATCHDOG_DAG_ID = "sanvi_ops_watchdog"

#: The post-implementation review of an emergency change (``dags/meta/change_review.py``), declared
#: by ``change_management``: triggered by the change's ``request_review`` task, never scheduled.
CHANGE_REVIEW_DAG_ID = "change_review"

#: Reviews that may wait at once (one per emergency change still unreviewed).
CHANGE_REVIEW_MAX_ACTIVE_RUNS = 16


def non_guide_dags(cfg: MaintenanceConfig) -> dict[str, JobSchedule]:
    """DAGs declared by config sections other than ``tasks`` (``database_backups``,
    ``configuration_backups``, ``file_storage_backups``, ``system_image_backups``, ``meta_monitoring.watchdog``)."""
    b = cfg.database_backups
    full_hour, minute = b.full_at.hour, b.full_at.minute
    every = cfg.backups.database.incremental_every
    jobs = {
        "database_backup_full": JobSchedule(
            "database_backup_full",
            "Database Backup (full)",
            "Physical full backup of the application database streamed to S3",
            b.team,
            f"{minute} {full_hour} * * *",
            "backups",
            "daily",
            b.full_timeout_minutes,
        )
    }
    if every is not None:
        step, rest = divmod(int(every.total_seconds()), 3600)
        if rest or step < 1 or 24 % step:
            raise ValueError(
                f"backups.database.incremental_every ({every}) must be whole hours dividing a day"
            )
        hours = [h for h in range(24) if (h - full_hour) % step == 0 and h != full_hour]
        jobs["database_backup_incremental"] = JobSchedule(
            "database_backup_incremental",
            "Database Backup (incremental)",
            "Incremental backup chained to the last one (RPO at most the interval)",
            b.team,
            f"{minute} {_cron_list(hours)} * * *",
            "backups",
            "hourly" if step == 1 else f"every-{step}h",
            b.incremental_timeout_minutes,
        )
    c = cfg.configuration_backups
    jobs["configuration_backup"] = JobSchedule(
        "configuration_backup",
        "Configuration Backup",
        "Snapshot of SSM, Secrets Manager metadata, ECS and maintenance.yaml, kept when it changed",
        c.team,
        c.fallback_cron,
        "backups",
        "on-change",
        c.timeout_minutes,
    )
    files = cfg.file_storage_backups
    jobs["file_storage_backup"] = JobSchedule(
        "file_storage_backup",
        "File Storage Backup",
        "Daily server-side copy of the file bucket into the backup bucket, verified",
        files.team,
        f"{files.at.minute} {files.at.hour} * * *",
        "backups",
        "daily",
        files.execution_timeout_minutes,
    )
    images = cfg.system_image_backups
    jobs["system_image_backup"] = JobSchedule(
        "system_image_backup",
        "System Image Backup",
        "Weekly AMI of each tagged instance (no reboot, encrypted); AMIs past the retention removed",
        images.team,
        f"{images.at.minute} {images.at.hour} * * {images.weekday.cron}",
        "backups",
        "weekly",
        images.execution_timeout_minutes,
    )
    watchdog = cfg.meta_monitoring.watchdog
    step = watchdog.every_minutes
    jobs[WATCHDOG_DAG_ID] = JobSchedule(
        WATCHDOG_DAG_ID,
        "Sanvi Ops Watchdog",
        "Heartbeat for an outside monitor, incident escalations and outbox retries",
        watchdog.team,
        "0 * * * *" if step == 60 else f"*/{step} * * * *",
        "meta",
        "hourly" if step == 60 else f"every-{step}m",
        watchdog.execution_timeout_minutes,
    )
    review_team = cfg.change_management.team
    if review_team not in cfg.teams:
        raise ValueError(
            f"change_management.team: {review_team!r} is not a key of teams ({', '.join(cfg.teams)})"
        )
    jobs[CHANGE_REVIEW_DAG_ID] = JobSchedule(
        CHANGE_REVIEW_DAG_ID,
        "Change Review",
        "Post-implementation review of an emergency change (triggered by the change's run)",
        review_team,
        None,
        "meta",
        "on-demand",
        10,  # the request and the answer's recording; the wait itself is the review's due date
        CHANGE_REVIEW_MAX_ACTIVE_RUNS,
    )
    return jobs


def _cron_list(values: list[int]) -> str:
    """``[0, 2, 3, 4]`` → ``"0,2-4"``."""
    runs: list[list[int]] = []
    for v in values:
        if runs and runs[-1][1] == v - 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
