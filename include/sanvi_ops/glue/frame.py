"""The DAG frame: everything a maintenance DAG takes from the guide's calendar, in one place.

A DAG file says only what it does::

    @maintenance_dag(__file__, __doc__)
    def system_health_check() -> None:
        ...

    system_health_check()

and this module fills in, from ``include/config/maintenance.yaml``: the schedule (a
time-zone-aware cron timetable), the owner (the responsible team), tags (cadence, team), retries
with exponential backoff, execution timeouts, ``max_active_runs=1``, ``catchup=False``, the
failure callback and the runbook (the module docstring). Parsing reads one local YAML file and
nothing else: no network, no database.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sanvi_ops.calendar import timetable_for
from sanvi_ops.config import MaintenanceConfig, TaskSpec, load_config

F = TypeVar("F", bound=Callable[..., Any])

#: First date any maintenance DAG may run; with catchup off it only anchors the timetable.
START_DATE = datetime(2026, 1, 1)

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
    from sanvi_ops.glue.callbacks import on_task_failure

    try:
        spec: TaskSpec = cfg.tasks[dag_id]
    except KeyError:
        known = ", ".join(sorted(cfg.tasks))
        raise KeyError(
            f"DAG {dag_id!r} has no entry under 'tasks' in the maintenance calendar (known: {known})"
        ) from None
    team = cfg.teams[spec.team]
    timeout = timedelta(minutes=spec.execution_timeout_minutes)
    return {
        "dag_id": dag_id,
        "description": f"{spec.title}: {spec.description}",
        "schedule": timetable_for(spec, cfg.timezone),
        "start_date": START_DATE.replace(tzinfo=_tz(cfg.timezone)),
        "catchup": False,
        "max_active_runs": 1,
        "dagrun_timeout": timeout,
        "doc_md": doc,
        "tags": [spec.cadence, team_tag(team.name)],
        "default_args": {
            "owner": team.name,
            "retries": DEFAULT_RETRIES,
            "retry_delay": RETRY_DELAY,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": MAX_RETRY_DELAY,
            "execution_timeout": timeout,
            "on_failure_callback": on_task_failure,
        },
    }


def _tz(name: str) -> Any:
    import pendulum

    return pendulum.timezone(name)


def maintenance_dag(file: str, doc: str | None, **overrides: Any) -> Callable[[F], F]:
    """Decorate a DAG function; ``dag_id`` is the file's stem, everything else the calendar's.

    :param file: the DAG file's ``__file__``.
    :param doc: the DAG file's ``__doc__`` (the runbook shown in the UI).
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

    def decorate(fn: F) -> F:
        if fn.__name__ != dag_id:
            raise ValueError(f"DAG function {fn.__name__!r} must be named after its file ({dag_id!r})")
        return dag(schedule=schedule, **kwargs)(fn)  # type: ignore[return-value]

    return decorate
