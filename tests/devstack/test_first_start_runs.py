"""devstack.first_start.first_runs: what a newcomer sees of each DAG's first run, asked of the API
without re-reading the task instances of runs that have finished (pure logic: a recorded API)."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.first_start import first_runs

pytestmark = pytest.mark.unit


class RecordedAPI:
    """The two calls first_runs makes, answered from fixed runs and task states; it records them."""

    def __init__(self, runs: list[dict[str, Any]], tasks: dict[str, dict[str, str | None]]) -> None:
        self.runs, self.tasks, self.asked = runs, tasks, []

    def dag_runs(self, dag_id: str = "~") -> list[dict[str, Any]]:
        return self.runs

    def task_instances(self, dag_id: str = "~", run_id: str = "~") -> list[dict[str, Any]]:
        self.asked.append(run_id)
        return [{"task_id": t, "state": s} for t, s in self.tasks[run_id].items()]


def _run(dag_id: str, run_id: str, state: str) -> dict[str, Any]:
    return {"dag_id": dag_id, "dag_run_id": run_id, "state": state}


def test_finished_runs_tasks_are_read_once_and_the_waiting_ones_each_time() -> None:
    api = RecordedAPI(
        [
            _run("backup", "b1", "success"),
            _run("health", "h1", "failed"),
            _run("review", "r1", "running"),
            _run("backup", "b2", "running"),  # a later run: not the first
        ],
        {
            "b1": {"take": "success"},
            "h1": {"probe": "failed", "notify": "upstream_failed"},
            "r1": {"report": "success", "sign_off": "awaiting_input", "close": None},
        },
    )
    done_tasks: dict[tuple[str, str], dict[str, Any]] = {}
    runs = first_runs(api, done_tasks)
    assert sorted(api.asked) == ["b1", "h1", "r1"]
    assert runs["health"]["failed_tasks"] == ["notify", "probe"]
    assert runs["review"]["finished"] and runs["review"]["waiting_for"] == ["sign_off"]
    assert runs["backup"]["run_id"] == "b1" and runs["backup"]["finished"]

    api.asked.clear()
    assert first_runs(api, done_tasks) == runs
    assert api.asked == ["r1"]  # only the run still going
