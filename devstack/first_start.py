"""The start order of ``make run``: the first full backup before the DAGs that need one.

On a start with no complete full backup in S3 (the first start, or a ``.local/`` whose AWS state
was lost), the DAGs that read backups would run for their latest slot at once and report "no
restorable backup" (a P1 from the DR drill). So the stack starts the scheduler with those DAGs
paused (:data:`NEEDS_A_FULL_BACKUP`), lets ``database_backup_full`` take its scheduled run, and
unpauses them when it has succeeded (:class:`BackupGate`). When a full backup exists, nothing
is held.

Also here: the small client of Airflow's REST API the stack uses (:class:`AirflowAPI`), and
:func:`first_runs`, the state of each DAG's first run (what a newcomer sees).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

#: DAGs that read the backups: held until the first full backup has succeeded.
NEEDS_A_FULL_BACKUP: tuple[str, ...] = (
    "database_backup_incremental",  # chains to a full; without one it takes a full itself
    "backup_verification",
    "backup_testing",
    "dr_testing",
)
FULL_BACKUP_DAG = "database_backup_full"
#: Airflow run states after which a run does no more work.
FINISHED = frozenset({"success", "failed"})


class AirflowAPI:
    """Airflow's REST API (``/api/v2``) as the UI's admin user of the simple auth manager."""

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._timeout = timeout
        self._token: str | None = None

    def _request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        if self._token is None:
            self._token = str(
                self._call("POST", "/auth/token", self._credentials, auth=False)["access_token"]
            )
        return self._call(method, path, body)

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None, auth: bool = True) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        with urllib.request.urlopen(request, timeout=self._timeout) as resp:  # noqa: S310 - loopback
            raw = resp.read()
        return json.loads(raw) if raw else None

    def _all(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a list endpoint, page by page: the API returns at most
        ``[api] maximum_page_limit`` (100) items per request, whatever ``limit`` asks for."""
        items: list[dict[str, Any]] = []
        sep = "&" if "?" in path else "?"
        while True:
            data = self._request("GET", f"{path}{sep}limit=100&offset={len(items)}")
            page = list(data[key])
            items += page
            if not page or len(items) >= int(data.get("total_entries", len(items))):
                return items

    def dag_ids(self, *, scheduled_only: bool = False) -> set[str]:
        """Every DAG the API lists; ``scheduled_only``: those with a schedule (a triggered-only DAG
        such as change_review never takes a first run of its own)."""
        return {
            d["dag_id"]
            for d in self._all("/api/v2/dags", "dags")
            if not scheduled_only or d.get("timetable_summary") not in (None, "", "None")
        }

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._request("PATCH", f"/api/v2/dags/{quote(dag_id)}?update_mask=is_paused", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A manual run of ``dag_id`` now (as ▶ in the UI); returns the created run."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        return dict(self._request("POST", f"/api/v2/dags/{quote(dag_id)}/dagRuns", body))

    def dag_runs(self, dag_id: str = "~") -> list[dict[str, Any]]:
        return self._all(f"/api/v2/dags/{quote(dag_id)}/dagRuns?order_by=start_date", "dag_runs")

    def task_instances(self, dag_id: str = "~", run_id: str = "~") -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='~')}/taskInstances"
        return self._all(path, "task_instances")


def wait_for_dags(
    api: AirflowAPI, dag_ids: Iterable[str], timeout: float, alive: Callable[[], str | None]
) -> set[str]:
    """Wait until the DAG processor has registered ``dag_ids``; returns those that are missing
    at ``timeout`` (the caller says so). ``alive()`` returns an error text when a process died."""
    wanted = set(dag_ids)
    deadline = time.monotonic() + timeout
    while True:
        if (problem := alive()) is not None:
            raise RuntimeError(problem)
        try:
            missing = wanted - api.dag_ids()
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            missing = wanted
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(1.0)


@dataclass
class BackupGate:
    """Holds :data:`NEEDS_A_FULL_BACKUP` paused until ``database_backup_full`` has succeeded.

    :meth:`hold` pauses them (before the scheduler starts); :meth:`start` watches the full
    backup's runs in a daemon thread and unpauses them when one has succeeded, or when one has
    failed or ``timeout`` passed (then they report what is missing, which is the truth), saying
    which through ``say``. ``marker`` records the held DAGs until they are released, so a stack
    killed meanwhile does not leave them paused: the next start calls :func:`release_leftover`.
    """

    api: AirflowAPI
    say: Callable[[str], None]
    marker: Path | None = None
    timeout: float = 20 * 60
    poll: float = 5.0
    held: tuple[str, ...] = ()
    released: threading.Event = field(default_factory=threading.Event)

    def hold(self, dag_ids: Iterable[str] = NEEDS_A_FULL_BACKUP) -> None:
        self.held = tuple(dag_ids)
        if self.marker is not None:
            self.marker.write_text(json.dumps(list(self.held)))
        for dag_id in self.held:
            self.api.set_paused(dag_id, True)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._watch, name="first-backup-gate", daemon=True)
        thread.start()
        return thread

    def _watch(self) -> None:
        started = time.monotonic()
        outcome = "did not finish in time"
        while time.monotonic() - started < self.timeout:
            try:
                states = {r["state"] for r in self.api.dag_runs(FULL_BACKUP_DAG)}
            except (OSError, urllib.error.URLError, ValueError, KeyError):
                states = set()
            if "success" in states:
                outcome = "succeeded"
                break
            if "failed" in states:
                outcome = "failed (see its log in the UI)"
                break
            time.sleep(self.poll)
        self.release()
        self.say(
            f"first full backup {outcome} after {time.monotonic() - started:.0f} s; "
            f"unpaused {', '.join(self.held)}"
        )

    def release(self) -> None:
        for dag_id in self.held:
            try:
                self.api.set_paused(dag_id, False)
            except (OSError, urllib.error.URLError) as exc:
                self.say(f"could not unpause {dag_id} ({exc}); unpause it in the UI")
                return
        if self.marker is not None:
            self.marker.unlink(missing_ok=True)
        self.released.set()


def release_leftover(api: AirflowAPI, marker: Path, say: Callable[[str], None]) -> None:
    """Unpause the DAGs an earlier start held and never released (it was stopped first)."""
    held: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        held = [str(d) for d in json.loads(marker.read_text())]
    if held:
        gate = BackupGate(api, say, marker=marker, held=tuple(held))
        gate.release()
        say(f"unpaused {', '.join(held)} (held by an earlier start that was stopped before its first backup)")
    marker.unlink(missing_ok=True)


def first_runs(
    api: AirflowAPI, done_tasks: dict[tuple[str, str], dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Per DAG, its first run: ``state`` and the task states that are not ``success``.

    A run waiting for a person (``awaiting_input``: a sign-off, the pen-test form, the game day's
    approvals) counts as finished for this purpose when nothing else is left to do: every other
    unfinished task is one that has not started (it waits behind the person's answer).

    ``done_tasks``: the task states of the runs already finished, kept by a caller that asks again
    (they no longer change), so each later call asks only for the unfinished runs' tasks instead
    of every task instance of the stack (pages of them, serialized by the busy API server).
    """
    first: dict[str, dict[str, Any]] = {}
    for run in api.dag_runs():
        first.setdefault(run["dag_id"], run)
    known = {} if done_tasks is None else done_tasks
    out = {}
    for dag_id, run in first.items():
        key = (dag_id, run["dag_run_id"])
        tasks = known.get(key)
        if tasks is None:
            tasks = {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id, run["dag_run_id"])}
            if run["state"] in FINISHED:
                known[key] = tasks
        pending = {
            t: s for t, s in tasks.items() if s not in ("success", "failed", "skipped", "upstream_failed")
        }
        waiting = set(pending.values())
        finished = run["state"] in FINISHED or (
            "awaiting_input" in waiting and waiting <= {"awaiting_input", None}
        )
        failed_tasks = sorted(t for t, s in tasks.items() if s in ("failed", "upstream_failed"))
        out[dag_id] = {
            "run_id": run["dag_run_id"],
            "state": run["state"],
            "finished": finished,
            "failed_tasks": failed_tasks,
            "waiting_for": sorted(t for t, s in pending.items() if s == "awaiting_input"),
        }
    return out
