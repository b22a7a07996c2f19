"""Trigger-form Params shared by the maintenance DAGs, and how tasks read them.

A DAG a person may start by hand declares typed Params (JSON schema, with a title and a
description) that Airflow validates when the run is created — in the trigger form, the REST API
and ``dag.test(run_conf=...)`` alike — so a bad value is refused before anything runs, with a
message naming the param. Scheduled runs get the defaults, and every default here means "as
scheduled": all checks, the config's windows and limits.

The ``checks`` Param is a multi-select of the DAG's check tasks. A check task wrapped with
:func:`when_selected` that was left out does not run; it returns one ``skipped`` result
(``<task_id>.not_selected``) so the report says what was left out instead of it being silently
absent::

    CHECKS = ("check_rds_patches", "check_ecr_images")

    @maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
    def security_patch_review() -> None:
        @task
        @when_selected
        def check_rds_patches() -> list[dict[str, Any]]: ...

Optional values (a look-back window, a count, a filter) default to ``None`` = "the config's
value"; :func:`param_value` reads them, treating a missing Param (a run of an older DAG version)
the same way.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar, cast

from sanvi_ops.core.results import CheckResult, Status

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: The name of the check multi-select Param.
CHECKS = "checks"


def checks_param(task_ids: Sequence[str], *, description: str | None = None) -> Any:
    """A multi-select of ``task_ids`` (default: all of them): type ``array``, items one of them.

    ``examples`` makes the trigger form render a multi-select; ``items.enum`` makes Airflow's
    validation refuse a name that is not one of the DAG's checks; ``minItems`` refuses an empty
    selection (a run that checks nothing).
    """
    from airflow.sdk import Param

    ids = list(task_ids)
    if not ids:
        raise ValueError("checks_param needs at least one task id")
    if len(set(ids)) != len(ids):
        raise ValueError(f"checks_param: duplicate task ids in {ids}")
    return Param(
        ids,
        type="array",
        title="Checks",
        description=description
        or (
            "Which check tasks to run (default: all, as scheduled). A check left out does not run "
            "and reports a 'skipped' result, so the summary shows what was not checked."
        ),
        items={"type": "string", "enum": ids},
        uniqueItems=True,
        minItems=1,
        examples=ids,
    )


#: An ISO 8601 date or date and time, as :func:`datetime.fromisoformat` reads it (offset optional,
#: ``Z`` allowed); what the form refuses is never handed to a task.
ISO_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$"


def iso_time_param(*, title: str, description: str) -> Any:
    """An ISO time (UTC unless it says otherwise), or empty (``None``) for the run's own time."""
    from airflow.sdk import Param

    return Param(
        None,
        type=["null", "string"],
        title=title,
        description=description,
        pattern=ISO_TIME_PATTERN,
    )


def optional_int_param(
    *, title: str, description: str, minimum: int, maximum: int, default: int | None = None
) -> Any:
    """An integer within ``[minimum, maximum]``, or empty (``None``) for the config's value."""
    from airflow.sdk import Param

    return Param(
        default,
        type=["null", "integer"],
        title=title,
        description=description,
        minimum=minimum,
        maximum=maximum,
    )


def string_list_param(*, title: str, description: str, choices: Sequence[str] = ()) -> Any:
    """A list of non-empty strings (a filter), or empty (``None``) for "no filter".

    :param choices: when given, the only values allowed (``items.enum``), offered by the form as a
        multi-select; without them any non-empty strings (patterns, names) are accepted.
    """
    from airflow.sdk import Param

    items: dict[str, Any] = {"type": "string", "minLength": 1}
    schema: dict[str, Any] = {"type": ["null", "array"], "items": items, "uniqueItems": True}
    if choices:
        items["enum"] = list(choices)
        schema["examples"] = list(choices)  # the form's multi-select offers these
    return Param(None, title=title, description=description, **schema)


def _params(context: Mapping[str, Any]) -> Mapping[str, Any]:
    params = context.get("params")
    return params if isinstance(params, Mapping) else {}


def param_value(context: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """The run's value of Param ``name``; ``default`` when it is missing or empty (``None``)."""
    value = _params(context).get(name)
    return default if value is None else value


def selected_checks(context: Mapping[str, Any]) -> list[str] | None:
    """The run's ``checks`` selection; ``None`` when the DAG has no such Param (= everything)."""
    chosen = _params(context).get(CHECKS)
    if chosen is None:
        return None
    if isinstance(chosen, str):  # a single value given through the API as a bare string
        return [chosen]
    return [str(c) for c in chosen]


def selected(context: Mapping[str, Any], task_id: str) -> bool:
    """Whether the check task ``task_id`` is to run in this run."""
    chosen = selected_checks(context)
    return chosen is None or task_id in chosen


def not_selected_result(task_id: str, chosen: Sequence[str]) -> CheckResult:
    """The ``skipped`` result a check task reports when the run's ``checks`` left it out."""
    return CheckResult(
        check=f"{task_id}.not_selected",
        status=Status.SKIPPED,
        summary=(
            f"{task_id} not run: this run's '{CHECKS}' Param selected only {', '.join(chosen) or 'nothing'}"
        ),
        details={"param": CHECKS, "selected": list(chosen)},
        component=task_id,
    )


def when_selected(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap a check task's function (under ``@task``): run it only when the run's ``checks``
    selects the task, else return the one ``skipped`` result :func:`not_selected_result`.

    The task id is read from the running task instance, so the decorator works whatever the
    task is called; the function's signature is kept (Airflow still passes it its context).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from airflow.sdk import get_current_context

        context = get_current_context()
        task_id = str(context["ti"].task_id)
        if selected(context, task_id):
            return fn(*args, **kwargs)
        chosen = selected_checks(context) or []
        log.info("%s not selected (checks = %s): reporting it as skipped", task_id, chosen)
        return cast(R, [not_selected_result(task_id, chosen).to_dict()])

    return wrapper
