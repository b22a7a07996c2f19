"""Scale-out end to end: `make run EXECUTOR=celery`, driven like an operator drives it.

The stack (``local_stack``, tests/fixtures/stack.py; the session's one stack, shared with the
first-start test, which has seen the first runs before this module drives anything) is what
``make run EXECUTOR=celery`` starts: PostgreSQL, Redis (the Celery broker), moto, Prometheus when installed, the demo HTTP
server with its Slack sink, and Airflow's api-server, scheduler, dag-processor and triggerer
with CeleryExecutor and two Celery workers, each in its own working and temp directory. No
``dag.test()``: runs are triggered through the REST API (``/api/v2``, a JWT from
``/auth/token`` with the stack's admin login), the scheduler schedules them, the workers run
them (every task parsed again in a worker's own process), approvals and sign-offs are answered
through the API (``PATCH .../hitlDetails``, what the UI's *Required actions* page does).

Driven: system_health_check, database_backup_full, then backup_testing on that backup (it finds
it in S3: the restore runs on whichever worker takes it), database_maintenance started with
``dry_run: no`` (outside its windows it waits for the Product Owner's and the CTO's approval; in
a window it vacuums straight away) on two tables, cost_optimization's sign-off, and the first
start's business continuity game day: approved, it triggers the full-system drill and the DR-site
activation and waits for them. Checked: the
results store, the Slack sink, the vacuum in PostgreSQL's own statistics, that task instances ran
on both workers, and that nothing of the stack listens beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest

from sanvi_ops.tasks.business_continuity_testing.continuity import game_day_run_id
from tests.fixtures.stack import STACK_BUDGET_S, FirstStart, RunningStack

# The first test may also wait for the stack's start and the first runs (session fixtures).
pytestmark = [pytest.mark.e2e, pytest.mark.scaleout, pytest.mark.timeout(STACK_BUDGET_S + 900)]

DRIVEN = [
    "system_health_check",
    "database_backup_full",
    "backup_testing",
    "database_maintenance",
    "cost_optimization",
]
VACUUMED = ["public.warehouses", "public.machine_models"]
WORKERS = {"sanvi-worker-1", "sanvi-worker-2"}
FINISHED = {"success", "failed"}
GAME_DAY = "business_continuity_testing"
GAME_DAY_DONE = {"success", "failed", "upstream_failed", "skipped"}
SIGN_OFF_REACHED = {"awaiting_input", "deferred", "success", "failed", "upstream_failed", "skipped"}


def _trigger(http: httpx.Client, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    resp = http.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["dag_run_id"])


def _task_instances(http: httpx.Client, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    resp = http.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    resp.raise_for_status()
    return list(resp.json()["task_instances"])


def _answer_waiting(
    http: httpx.Client, dag_id: str, run_id: str, answered: list[str], *, forms: bool = True
) -> None:
    """Approve every request of the run that waits for input (a person, through the API);
    ``forms=False`` leaves a findings form (no Approve option) waiting."""
    resp = http.get(f"/dags/{dag_id}/dagRuns/{run_id}/hitlDetails")
    resp.raise_for_status()
    for detail in resp.json()["hitl_details"]:
        ti = detail["task_instance"]
        if ti["state"] != "awaiting_input" or detail["response_received"]:
            continue
        if not forms and "Approve" not in detail["options"]:
            continue
        assert "Approve" in detail["options"], detail
        answer = http.patch(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/-1/hitlDetails",
            json={
                "chosen_options": ["Approve"],
                "params_input": {"comment": "approved by the scale-out test"},
            },
        )
        assert answer.status_code == 200, answer.text
        answered.append(f"{dag_id}.{ti['task_id']}")


def _results(stack: RunningStack, dag_id: str, run_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(stack.store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def _signoffs(stack: RunningStack, dag_id: str, run_id: str) -> dict[str, tuple[str, Any]]:
    with psycopg.connect(stack.store_dsn) as conn:
        rows = conn.execute(
            "SELECT task_id, outcome, responder FROM signoffs WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        ).fetchall()
    return {task_id: (outcome, responder) for task_id, outcome, responder in rows}


def _vacuumed_at(stack: RunningStack, tables: list[str]) -> dict[str, Any]:
    names = [t.split(".", 1)[1] for t in tables]
    with psycopg.connect(stack.dsn("sanvi_app")) as conn:
        rows = conn.execute(
            "SELECT relname, last_vacuum FROM pg_stat_user_tables WHERE relname = ANY(%s)", (names,)
        ).fetchall()
    return dict(rows)


def _posted(stack: RunningStack, *needles: str) -> list[str]:
    texts = [json.dumps(m, ensure_ascii=False) for m in stack.slack_messages()]
    return [t for t in texts if all(n in t for n in needles)]


@dataclass
class Driven:
    """What the module's one drive through the stack left: runs, final states, who answered."""

    stack: RunningStack
    http: httpx.Client
    runs: dict[str, str] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: When PostgreSQL last vacuumed the tables of VACUUMED before this drive (None: never).
    vacuumed_before: dict[str, Any] = field(default_factory=dict)
    #: The first start's business continuity game day run (waiting for its approvals), and the
    #: state of its record task once the drills it triggered are over.
    game_day: str | None = None
    game_day_recorded: str | None = None

    def tis(self, dag_id: str) -> dict[str, dict[str, Any]]:
        return {ti["task_id"]: ti for ti in _task_instances(self.http, dag_id, self.runs[dag_id])}

    def summary(self) -> dict[str, dict[str, tuple[str, str]]]:
        return {d: {t: (ti["state"], ti["hostname"]) for t, ti in self.tis(d).items()} for d in self.runs}

    def results(self, dag_id: str) -> dict[str, tuple[str, str]]:
        return _results(self.stack, dag_id, self.runs[dag_id])


def _poll_game_day(d: Driven) -> None:
    """The game day: its approvals answered (its findings form left waiting, its normal state),
    then the state of ``record_game_day``, which runs once both drills are over (held at
    ``publishing`` until its sign-off asks: the results are stored by then)."""
    if d.game_day is None or d.game_day_recorded in GAME_DAY_DONE:
        return
    try:
        _answer_waiting(d.http, GAME_DAY, d.game_day, d.answered, forms=False)
        tis = {ti["task_id"]: ti for ti in _task_instances(d.http, GAME_DAY, d.game_day)}
    except httpx.TimeoutException:
        return
    d.game_day_recorded = (tis.get("record_game_day") or {}).get("state")
    if d.game_day_recorded == "success" and (tis.get("sign_off") or {}).get("state") not in SIGN_OFF_REACHED:
        d.game_day_recorded = "publishing"  # the results are stored by publish, before the sign-off asks


def _poll(d: Driven) -> None:
    """One round: each unfinished run's state; requests waiting for a person are approved."""
    _poll_game_day(d)
    for dag_id, run_id in list(d.runs.items()):
        if d.states.get(dag_id) in FINISHED:
            continue
        try:
            resp = d.http.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            resp.raise_for_status()
            d.states[dag_id] = resp.json()["state"]
            if d.states[dag_id] not in FINISHED:
                _answer_waiting(d.http, dag_id, run_id, d.answered)
        except httpx.TimeoutException:
            continue  # a busy api-server; the next round asks again (the overall deadline holds)


def _clear_first_runs(stack: RunningStack, http: httpx.Client, first: FirstStart) -> None:
    """A DAG runs one run at a time: a driven DAG's first run still waiting for a person (the
    quarterly sign-off) is signed off through the API first, and waited for."""
    waiting = {
        d: first.runs[d]["run_id"]
        for d in DRIVEN
        if d in first.runs and first.runs[d]["state"] not in FINISHED
    }
    deadline = time.monotonic() + 300
    while waiting:
        for dag_id, run_id in list(waiting.items()):
            resp = http.get(f"/dags/{dag_id}/dagRuns/{run_id}")
            resp.raise_for_status()
            if resp.json()["state"] in FINISHED:
                del waiting[dag_id]
            else:
                _answer_waiting(http, dag_id, run_id, [])
        assert time.monotonic() < deadline, f"first runs not cleared in 5 min: {waiting}\n{stack.logs()}"
        time.sleep(2)


@pytest.fixture(scope="module")
def driven(first_start: FirstStart) -> Iterator[Driven]:
    stack = first_start.stack
    started = time.monotonic()
    stack.wait_for_dags(DRIVEN)
    with stack.api() as http:
        # The hourly incremental would put a backup between the full taken here and its restore test.
        paused = http.patch(
            "/dags/database_backup_incremental?update_mask=is_paused", json={"is_paused": True}
        )
        assert paused.status_code == 200, paused.text
        _clear_first_runs(stack, http, first_start)
        d = Driven(stack, http, vacuumed_before=_vacuumed_at(stack, VACUUMED))
        d.runs = {
            "system_health_check": _trigger(http, "system_health_check"),
            "database_backup_full": _trigger(http, "database_backup_full"),
            "database_maintenance": _trigger(
                http, "database_maintenance", {"dry_run": "no", "mode": "tables", "tables": VACUUMED}
            ),
            "cost_optimization": _trigger(http, "cost_optimization", {"checks": ["find_idle_resources"]}),
        }
        d.game_day = (first_start.runs.get(GAME_DAY) or {}).get("run_id")
        deadline = time.monotonic() + 900

        def over() -> bool:
            runs_over = len(d.runs) == len(DRIVEN) and all(d.states.get(x) in FINISHED for x in DRIVEN)
            return runs_over and (d.game_day is None or d.game_day_recorded in GAME_DAY_DONE)

        while not over():
            _poll(d)
            backup = d.states.get("database_backup_full")
            if backup == "failed":
                break
            # backup_testing restores the backup this test made: started once that run succeeded.
            if backup == "success" and "backup_testing" not in d.runs:
                d.runs["backup_testing"] = _trigger(http, "backup_testing")
            assert time.monotonic() < deadline, (
                f"runs not finished in 15 min: {d.states}, game day {d.game_day_recorded}\n{stack.logs()}"
            )
            time.sleep(2)
        d.seconds = time.monotonic() - started
        print(f"\n{len(d.runs)} runs driven in {d.seconds:.0f} s (after the first runs)")
        yield d


def test_every_driven_run_succeeds(driven: Driven) -> None:
    summary = driven.summary()
    for dag_id in ("database_backup_full", "backup_testing", "database_maintenance", "cost_optimization"):
        assert driven.states.get(dag_id) == "success", (dag_id, summary.get(dag_id), driven.stack.logs())


def test_health_check_results_are_stored(driven: Driven) -> None:
    """Health may be red: the demo's Prometheus series carry a CPU incident on purpose; then only
    ``notify`` fails, after storing and posting."""
    health = driven.results("system_health_check")
    assert {n.split("[")[0].split(".")[0] for n in health} >= {"postgres", "redis", "airflow"}, health
    tis = driven.tis("system_health_check")
    assert {t: ti["state"] for t, ti in tis.items() if t != "notify"} == dict.fromkeys(
        [t for t in tis if t != "notify"], "success"
    )
    if driven.states["system_health_check"] != "success":
        assert tis["notify"]["state"] == "failed" and driven.states["system_health_check"] == "failed"
        assert any(status == "critical" for status, _ in health.values()), health


def test_backup_testing_restores_the_backup_the_full_backup_made(driven: Driven) -> None:
    backup = driven.results("database_backup_full")
    assert backup["backup.full"][0] == "ok", backup
    backup_id = backup["backup.full"][1].split()[2].rstrip(":")
    assert backup_id.endswith("-full"), backup["backup.full"]
    restore = driven.results("backup_testing")
    assert restore["restore.duration"][0] == "ok" and backup_id in restore["restore.duration"][1], restore
    assert restore["restore.row_counts"][0] == "ok" and restore["restore.amcheck"][0] == "ok", restore


def test_maintenance_vacuums_after_the_approvals(driven: Driven) -> None:
    vacuum = driven.results("database_maintenance")
    assert vacuum["vacuum.run"][0] == "ok", vacuum
    for table in VACUUMED:
        assert vacuum[f"vacuum.table[{table}]"][0] == "ok", vacuum
    approvals = ("approve_product_owner", "approve_cto")
    tis = driven.tis("database_maintenance")
    if {tis[t]["state"] for t in approvals} == {"skipped"}:
        pass  # started inside a window: no approval needed, it vacuums straight away
    else:  # outside the windows: both asked, both approved through the API by admin
        signed = _signoffs(driven.stack, "database_maintenance", driven.runs["database_maintenance"])
        assert {t: signed[t][0] for t in approvals} == dict.fromkeys(approvals, "approved"), signed
        assert "approved outside the window by admin" in vacuum["vacuum.run"][1], vacuum["vacuum.run"]
    # PostgreSQL's own statistics saw this VACUUM (published within a second or so), after any
    # the first start's scheduled run may have done.
    before = driven.vacuumed_before

    def fresh(last: dict[str, Any]) -> bool:
        return all(last.get(t) is not None and (before.get(t) is None or last[t] > before[t]) for t in last)

    deadline = time.monotonic() + 15
    last = _vacuumed_at(driven.stack, VACUUMED)
    while not fresh(last):
        assert time.monotonic() < deadline, f"no VACUUM recorded by PostgreSQL: {last} (before: {before})"
        time.sleep(0.5)
        last = _vacuumed_at(driven.stack, VACUUMED)


def test_game_day_runs_both_drills_after_the_approvals(driven: Driven) -> None:
    """The annual business continuity test on the running stack: its approvals answered through
    the API, it triggers dr_testing with each scope (full system, then the DR-site activation from
    the replica buckets the local moto replicates to), waits for both, and records them; every
    drill scope is green on the demo data."""
    assert driven.game_day is not None, "the first start has no game day run"
    assert driven.game_day_recorded == "success", driven.game_day_recorded
    tis = {ti["task_id"]: ti["state"] for ti in _task_instances(driven.http, GAME_DAY, driven.game_day)}
    assert {t: tis[t] for t in ("approve_product_owner", "approve_cto")} == dict.fromkeys(
        ("approve_product_owner", "approve_cto"), "success"
    ), tis
    for scope in ("full_system", "dr_site_activation"):
        assert tis[f"run_drill_{scope}"] == "success", tis
        run_id = game_day_run_id(driven.game_day, scope)
        drill = _results(driven.stack, "dr_testing", run_id)
        assert drill["dr.scope"][1].startswith(f"scope {scope.replace('_', ' ')}"), drill["dr.scope"]
        bad = {k: v for k, v in drill.items() if v[0] in ("critical", "error")}
        assert not bad, bad
        for name in ("dr.rto", "dr.file_storage", "dr.configuration", "dr.configuration_snapshot",
                     "dr.cache", "dr.application"):  # fmt: skip
            assert drill[name][0] == "ok", (scope, name, drill[name])
        if scope == "dr_site_activation":
            assert drill["dr.site.region"][0] == "ok" and drill["dr.site.probe"][0] == "ok", drill
    recorded = _results(driven.stack, GAME_DAY, driven.game_day)
    for scope in ("full_system", "dr_site_activation"):
        game_day = recorded[f"continuity.game_day[{scope}]"]
        assert game_day[0] in ("ok", "warning") and " success, " in game_day[1], game_day


def test_sign_off_answered_through_the_api_is_stored(driven: Driven) -> None:
    assert "cost_optimization.sign_off" in driven.answered, driven.answered
    signed = _signoffs(driven.stack, "cost_optimization", driven.runs["cost_optimization"])
    assert signed["sign_off"][0] == "approved" and signed["sign_off"][1]["id"] == "admin", signed
    cost = driven.results("cost_optimization")
    assert cost["signoff.sign_off"][0] == "ok", cost


def test_every_run_reported_to_the_slack_sink(driven: Driven) -> None:
    assert _posted(driven.stack, "[SIGN-OFF]", "/dags/cost_optimization/"), driven.stack.slack_messages()[-3:]
    for dag_id, run_id in driven.runs.items():  # this run's link: the first runs posted too
        assert _posted(driven.stack, f"/dags/{dag_id}/runs/{quote(run_id, safe='')}"), (
            f"nothing posted for {dag_id}"
        )


def test_tasks_ran_on_both_workers(driven: Driven) -> None:
    summary = driven.summary()
    hosts = {host for tis in summary.values() for state, host in tis.values() if state != "skipped"}
    assert hosts == WORKERS, summary
    for worker in WORKERS:
        assert (driven.stack.state_dir / "workers" / worker / "work").is_dir()


def test_nothing_listens_beyond_loopback(driven: Driven) -> None:
    listening = driven.stack.listening_sockets()
    assert all(addr == "127.0.0.1" for _, addr, _ in listening), listening
    ports = {port for _, _, port in listening}
    addresses = driven.stack.addresses
    assert {addresses["postgres_port"], addresses["redis_port"], addresses["ui_port"]} <= ports, listening
