"""Where a run waits while the results store is down: Airflow Variables (the metadata DB).

Why Variables, and not a local file or the run's XCom:

- A local file lives on one worker. With CeleryExecutor or KubernetesExecutor the replay runs on
  another worker (or the pod is gone), so a file spool would be lost or never replayed.
- XCom is durable in the metadata DB too, but a task can only list XComs of a DAG whose run id it
  knows (the Task SDK has no "all XComs with this key" call), so the watchdog could not find the
  runs other DAGs spooled; clearing the task also deletes its XCom, and ``airflow db clean``
  prunes it with the run.
- Variables are in the same metadata DB (every worker reaches it through the Task SDK's execution
  API, so it works across Celery and Kubernetes workers), can be listed by prefix
  (``Variable.keys``, Airflow >= 3.3) from any task of any DAG, and are deleted only when the
  replay has recorded the run. An operator sees what waits in Admin → Variables
  (``sanvi_ops_spool.<dag>.<hash>``).

The metadata DB being down too means Airflow itself cannot run tasks; that case is the outside
monitor's (the watchdog's dead man's switch), not this spool's.

Inside a task the Task SDK's ``Variable`` is used (through the execution API, as Airflow 3
requires of workers). Code running with direct metadata-DB access instead (a CLI or a test
calling :func:`~sanvi_ops.airflow_kit.publish.record_run` outside a task) uses the ORM model.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Final

log = logging.getLogger(__name__)

#: Prefix of every spool Variable (dots and underscores only: Airflow's key rule).
PREFIX: Final = "sanvi_ops_spool."


class AirflowVariableSpool:
    """:class:`sanvi_ops.core.notify.store_down.Spool` on Airflow Variables."""

    def __init__(self, prefix: str = PREFIX) -> None:
        self.prefix = prefix

    def save(self, key: str, entry: dict[str, Any]) -> None:
        description = (
            "Sanvi Ops: a run the results store could not take; replayed and deleted when it is back"
        )
        value = json.dumps(entry, sort_keys=True)
        if _in_task():
            from airflow.sdk import Variable

            Variable.set(self.prefix + key, value, description=description)
        else:
            from airflow.models.variable import Variable as VariableModel

            VariableModel.set(self.prefix + key, value, description=description)

    def load(self, key: str) -> dict[str, Any] | None:
        return _parse(self.prefix + key, _get(self.prefix + key))

    def load_all(self) -> dict[str, dict[str, Any]]:
        entries: dict[str, dict[str, Any]] = {}
        for name in _keys(self.prefix):
            entry = _parse(name, _get(name))
            if entry is not None:
                entries[name.removeprefix(self.prefix)] = entry
        return entries

    def delete(self, key: str) -> None:
        try:
            if _in_task():
                from airflow.sdk import Variable

                Variable.delete(self.prefix + key)
            else:
                from airflow.models.variable import Variable as VariableModel

                VariableModel.delete(self.prefix + key)
        except Exception:  # noqa: BLE001 - already deleted by a concurrent replay
            log.info("spool entry %s was already gone", self.prefix + key)


def _in_task() -> bool:
    """Whether this process runs a task (the Task SDK's channel to the supervisor is set up)."""
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _get(name: str) -> Any:
    if _in_task():
        from airflow.sdk import Variable

        return Variable.get(name, default=None)
    from airflow.models.variable import Variable as VariableModel

    return VariableModel.get(name, default_var=None)


def _keys(prefix: str) -> list[str]:
    if _in_task():
        from airflow.sdk import Variable

        return list(Variable.keys(prefix=prefix))
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(VariableModel.key).filter(VariableModel.key.startswith(prefix, autoescape=True))
        return [str(row[0]) for row in rows]


def _parse(name: str, raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        log.error("spool Variable %s is not JSON: left in place for a person to look at", name)
        return None
    if not isinstance(value, dict):
        log.error("spool Variable %s is not a JSON object: left in place", name)
        return None
    return value
