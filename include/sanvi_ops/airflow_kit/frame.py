"""The DAG frame: everything a maintenance DAG takes from the guide's calendar, in one place.

A DAG file says only what it does::

    @maintenance_dag(__file__, __doc__)
    def system_health_check() -> None:
        ...

    system_health_check()

and this module fills in, from ``include/config/maintenance.yaml``: the schedule (a
time-zone-aware cron timetable), the owner (the responsible team), tags (cadence, team), retries
with exponential backoff, execution timeouts, ``max_active_runs=1``, ``catchup=False``, the
failure callback, a deadline alert and the runbook (the module docstring). Parsing reads one
local YAML file and nothing else: no network, no database.

The deadline alert (Airflow's ``DeadlineAlert``, counted from when the run was queued) fires when
a run has not finished within its cadence's allowance (``meta_monitoring.deadlines``: a daily
task 1 h, weekly 3 h, ...; a declared job its execution timeout plus ``job_margin``). The
scheduler then hands :func:`sanvi_ops.airflow_kit.callbacks.on_deadline_missed` to the triggerer, which
writes a ``deadline`` message to the outbox and sends it. A dead scheduler evaluates no deadline:
that is what the watchdog's heartbeat is for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sanvi_ops.core.calendar import non_guide_dags, timetable_for
from sanvi_ops.core.config import MaintenanceConfig, TaskSpec, load_config

F = TypeVar("F", bound=Callable[..., Any])

#: First date any maintenance DAG may run; with catchup off it only anchors the timetable.
START_DATE = datetime(2026, 1, 1)

#: The backup jobs' tasks go before every other task when the workers are busy (a first start,
#: a worker back from an outage): a backup waiting behind reports stretches the RPO, and the drills
#: and restore tests wait for it. Absolute, above the "downstream" weights of every other task.
BACKUP_PRIORITY_WEIGHT = 100

#: Retries for every task: the guide's work talks to networked systems, which blink.
DEFAULT_RETRIES = 2
RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(minutes=15)


def team_tag(name: str) -> str:
    """``"DevOps & DBA"`` → ``"team:devops-dba"``: tags must be short and stable."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return f"team:{slug}"


def dag_kwargs(dag_id: str, cfg: MaintenanceConfig, doc: str | None = None) -> dict[str, Any]:
    """The keyword arguments every maintenance DAG gets from the calendar."""
    from sanvi_ops.airflow_kit.callbacks import on_task_failure

    jobs = non_guide_dags(cfg)
    priority: dict[str, Any] = {}
    if dag_id not in cfg.tasks and dag_id in jobs:
        job = jobs[dag_id]
        # Public (Airflow's Timetables interface); airflow.sdk's CronTriggerTimetable lacks next_dagrun_info_v2.
        from airflow.timetables.trigger import CronTriggerTimetable

        title, description, team_key = job.title, job.description, job.team
        max_active_runs = job.max_active_runs
        if job.folder == "backups":
            priority = {"priority_weight": BACKUP_PRIORITY_WEIGHT, "weight_rule": "absolute"}
        schedule: Any = None if job.cron is None else CronTriggerTimetable(job.cron, timezone=cfg.timezone)
        timeout_minutes, cadence_tag = job.execution_timeout_minutes, job.tag
        allowance = timedelta(minutes=timeout_minutes) + cfg.meta_monitoring.deadlines.job_margin
    else:
        try:
            spec: TaskSpec = cfg.tasks[dag_id]
        except KeyError:
            known = ", ".join(sorted([*cfg.tasks, *jobs]))
            raise KeyError(
                f"DAG {dag_id!r} has no entry under 'tasks' in the maintenance calendar (known: {known})"
            ) from None
        title, description, team_key = spec.title, spec.description, spec.team
        max_active_runs = 1
        schedule = timetable_for(spec, cfg.timezone)
        timeout_minutes, cadence_tag = spec.execution_timeout_minutes, spec.cadence
        allowance = cfg.meta_monitoring.deadlines.for_cadence(spec.cadence)
    team = cfg.teams[team_key]
    timeout = timedelta(minutes=timeout_minutes)
    return {
        "dag_id": dag_id,
        "description": f"{title}: {description}",
        "schedule": schedule,
        "start_date": START_DATE.replace(tzinfo=_tz(cfg.timezone)),
        "catchup": False,
        "max_active_runs": max_active_runs,
        "dagrun_timeout": timeout,
        "doc_md": doc,
        "deadline": deadline_alert(allowance) if deadline_alerts_enabled() else None,
        "tags": [cadence_tag, team_tag(team.name)],
        "default_args": {
            "owner": team.name,
            "retries": task_retries(),
            "retry_delay": RETRY_DELAY,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY,
            "execution_timeout": timeout,
            "on_failure_callback": on_task_failure,
            **priority,
        },
    }


#: Set to ``off`` to build DAGs without deadline alerts (the test suite does: Airflow 3.3's
#: ``dag.test()`` cannot run a DAG that has one; see tests/conftest.py).
DEADLINE_ALERTS_ENV = "SANVI_OPS_DEADLINE_ALERTS"


#: Tests only: ``0`` builds DAGs whose tasks never retry, so a failing task fails its run at once
#: instead of after minutes of backoff (tests/conftest.py sets it; the test stack gets it too).
#: Unset, every task retries :data:`DEFAULT_RETRIES` times.
TASK_RETRIES_ENV = "SANVI_OPS_TASK_RETRIES"


def task_retries(default: int = DEFAULT_RETRIES) -> int:
    """``default`` (:data:`DEFAULT_RETRIES`), or the test flag :data:`TASK_RETRIES_ENV` when it is set."""
    import os

    raw = os.environ.get(TASK_RETRIES_ENV, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"{TASK_RETRIES_ENV}={raw!r}: expected a whole number of retries (0 or more)")
    return int(raw)


def deadline_alerts_enabled() -> bool:
    import os

    return os.environ.get(DEADLINE_ALERTS_ENV, "on").strip().lower() not in {"off", "0", "false", "no"}


def deadline_alert(allowance: timedelta) -> Any:
    """Airflow's ``DeadlineAlert``: a run not finished ``allowance`` after it was queued is reported
    by :func:`sanvi_ops.airflow_kit.callbacks.on_deadline_missed` (in the triggerer) through the outbox."""
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    from sanvi_ops.airflow_kit.callbacks import on_deadline_missed

    if allowance <= timedelta(0):
        raise ValueError(f"deadline allowance must be positive, got {allowance}")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=allowance,
        callback=AsyncCallback(
            on_deadline_missed, kwargs={"allowed_seconds": int(allowance.total_seconds())}
        ),
        name="sanvi-ops-overdue-run",
    )


def _tz(name: str) -> Any:
    import pendulum

    return pendulum.timezone(name)


def maintenance_dag(
    file: str, doc: str | None, *, also_on_assets: Sequence[Any] = (), **overrides: Any
) -> Callable[[F], F]:
    """Decorate a DAG function; ``dag_id`` is the file's stem, everything else the calendar's.

    :param file: the DAG file's ``__file__``.
    :param doc: the DAG file's ``__doc__`` (the runbook shown in the UI).
    :param also_on_assets: Airflow Assets whose update also triggers a run (the calendar's time
        schedule still applies: ``AssetOrTimeSchedule``, any of the assets).
    :param overrides: extra ``@dag`` arguments (``params``, ...); calendar keys may not be overridden.
    """
    from airflow.sdk import dag

    dag_id = Path(file).stem
    kwargs = dag_kwargs(dag_id, load_config(), doc)
    clash = sorted(set(overrides) & {"schedule", "dag_id", "catchup", "max_active_runs", "start_date"})
    if clash:
        raise ValueError(
            f"DAG {dag_id!r}: {', '.join(clash)} come from the maintenance calendar, not the DAG file"
        )
    kwargs.update(overrides)
    schedule = kwargs.pop("schedule")
    if also_on_assets:
        from airflow.sdk import AssetAny, AssetOrTimeSchedule

        schedule = AssetOrTimeSchedule(timetable=schedule, assets=AssetAny(*also_on_assets))

    def decorate(fn: F) -> F:
        if fn.__name__ != dag_id:
            raise ValueError(f"DAG function {fn.__name__!r} must be named after its file ({dag_id!r})")
        return dag(schedule=schedule, **kwargs)(fn)  # type: ignore[return-value]

    return decorate
