"""Change records end to end: ``dag.test()`` runs of Database Maintenance and of the Change
Review DAG against the real PostgreSQL fixture (application database and results store) and the
Slack-compatible server.

- a scheduled run inside its window → a ``standard`` record;
- a manual run outside every window with ``dry_run: no``, approved by the Product Owner and the
  CTO → a ``normal`` record carrying their answers;
- the same, declared an emergency → an ``emergency`` record; the VACUUM run finishes at once and
  has triggered a ``change_review`` run (conf: the change). That review, run with its conf and
  answered by nobody, goes late, is stored ``timed_out`` and escalated to the team lead;
- a review that the team answers → ``done``, with who and the form.

``dag.test()`` never resolves a task parked in ``awaiting_input``; a background "responder" does
what the Airflow API does for an answer (and the scheduler's sweep for a missed deadline).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "database_maintenance"
REVIEW_DAG_ID = "change_review"
REVIEW_TASK = "post_implementation_review"
REVIEW_FORM = {"what_happened": "orders bloated", "outcome": "successful", "follow_up": "OPS-42"}
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class _Responder(threading.Thread):
    """Answers the run's approvals (Approve, with a comment) and sweeps missed HITL deadlines."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.review_form: dict[str, Any] | None = None  # set: the team answers reviews with it

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self._tick()

    def _tick(self) -> None:
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance as TI
        from airflow.models.trigger import handle_event_submit
        from airflow.triggers.base import TriggerEvent
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload

        with create_session() as session:
            waiting = session.scalars(
                select(TI)
                .where(TI.state == TaskInstanceState.AWAITING_INPUT)
                .options(joinedload(TI.hitl_detail))
            ).all()
            for ti in waiting:
                detail = ti.hitl_detail
                if ti.task_id.startswith("approve_"):
                    detail.chosen_options = ["Approve"]
                    detail.params_input = {"comment": f"ok from {ti.task_id}"}
                    detail.responded_by = {"id": ti.task_id, "name": ti.task_id.removeprefix("approve_")}
                elif self.review_form is not None:
                    detail.chosen_options = ["OK"]
                    detail.params_input = dict(self.review_form)
                    detail.responded_by = {"id": "dana", "name": "Dana (DBA)"}
                else:
                    continue
                detail.responded_at = datetime.now(UTC)
                session.add(detail)
                handle_event_submit(
                    TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session
                )
        # The scheduler's own sweep of answers that are overdue (the review's deadline).
        SchedulerJobRunner.check_awaiting_input_timeouts(_SweepOwner())  # type: ignore[arg-type]


class _SweepOwner:
    import logging

    log = logging.getLogger("hitl-sweep")


@pytest.fixture
def changes_env(e2e, tmp_path, monkeypatch):
    env = e2e.connect(app_db=True)
    with psycopg.connect(env["app_dsn"], autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int) WITH (autovacuum_enabled = false)")
        conn.execute("INSERT INTO orders SELECT g FROM generate_series(1, 500) g")
        conn.execute("DELETE FROM orders WHERE id <= 400")

    from airflow.models.pool import Pool

    from sanvi_ops.core.config import clear_config_cache

    def configure(*, inside: bool, pir_due: str = "1s") -> None:
        cfg = shipped_config()
        task = cfg["tasks"][DAG_ID]
        if inside:
            task["settings"]["window"] = {"anytime": True}
        else:  # both windows on a day three days away: every manual run is outside them
            other = DAYS[(datetime.now(UTC).weekday() + 3) % 7]
            task["settings"]["window"] = {"days": [other], "start": "03:00", "end": "06:00"}
            task.update(weekday=other, time="03:00")
            cfg["deployment_windows"]["production"]["regular"] = {
                "days": [other],
                "start": "22:00",
                "end": "23:00",
            }
        cfg["change_management"] = {"pir_due": pir_due, "pir_on_timeout": "warning", "team": "devops"}
        path = tmp_path / "maintenance.yaml"
        path.write_text(yaml.safe_dump(cfg))
        monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))
        clear_config_cache()

    configure(inside=True)
    Pool.create_or_update_pool("sanvi_db_heavy", slots=1, description="heavy DB work", include_deferred=False)
    responder = _Responder()
    responder.start()
    yield {**env, "configure": configure, "responder": responder}
    responder.stop.set()
    responder.join(5)


def _as_scheduled(monkeypatch: pytest.MonkeyPatch) -> None:
    """``dag.test()`` always makes a manual run; this one is the scheduler's."""
    import airflow.models.dagrun as dagrun
    from airflow.utils.types import DagRunType

    def scheduled_run(**kw: Any) -> Any:
        from airflow.utils.state import DagRunState

        dag, session = kw["dag"], kw["session"]
        return dag.create_dagrun(
            run_id=dagrun.DagRun.generate_run_id(
                run_type=DagRunType.SCHEDULED, logical_date=kw["logical_date"], run_after=kw["run_after"]
            ),
            logical_date=kw["logical_date"],
            data_interval=kw["data_interval"],
            run_after=kw["run_after"],
            conf=kw["conf"],
            run_type=DagRunType.SCHEDULED,
            state=DagRunState.RUNNING,
            triggered_by=kw["triggered_by"],
            triggering_user_name=None,
            start_date=kw["start_date"],
            session=session,
        )

    monkeypatch.setattr(dagrun, "get_or_create_dagrun", scheduled_run)


def _record(store_dsn: str, run_id: str, dag_id: str = DAG_ID) -> dict[str, Any] | None:
    with psycopg.connect(store_dsn, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT * FROM change_records WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        ).fetchone()


def _unpause(dag_id: str) -> None:
    """The deployment unpauses every DAG; a bundle synced by ``dag.test()`` starts paused."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=False))


def _review_result(store_dsn: str, run_id: str) -> tuple[str, str]:
    with psycopg.connect(store_dsn) as conn:
        return conn.execute(
            "SELECT status, summary FROM check_results WHERE dag_id = %s AND run_id = %s "
            "AND check_name = 'signoff.post_implementation_review'",
            (REVIEW_DAG_ID, run_id),
        ).fetchone()


def _states(dr: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


def test_vacuum_runs_leave_standard_normal_and_emergency_records(changes_env, slack_api, monkeypatch):
    store = changes_env["store_dsn"]

    # 1. The scheduled run inside its window: a standard change, requested by the scheduler.
    with monkeypatch.context() as m:
        _as_scheduled(m)
        dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    states = _states(dr)
    assert states["record_change"] == "success" and states["request_review"] == "skipped", states
    standard = _record(store, dr.run_id)
    assert standard is not None, states
    assert (standard["change_type"], standard["requested_by"], standard["in_window"]) == (
        "standard",
        "scheduler",
        True,
    )
    assert standard["approvals"] == [] and standard["pir_due_at"] is None
    assert standard["status"] == "ok" and standard["url"].endswith(
        dr.run_id.replace(":", "%3A").replace("+", "%2B")
    )

    # 2. By hand outside every window, dry_run: no, both approvers approve: a normal change.
    changes_env["configure"](inside=False)
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 26, 4, 0, tzinfo=UTC),
        run_conf={"dry_run": "no", "reason": "orders bloated after the import"},
    )
    states = _states(dr)
    assert states["vacuum_analyze"] == "success" and states["request_review"] == "skipped", states
    normal = _record(store, dr.run_id)
    assert normal is not None, states
    assert normal["change_type"] == "normal" and normal["reason"] == "orders bloated after the import"
    assert normal["requested_by"] == "dag_test" and normal["in_window"] is False
    assert [(a["approver"], a["outcome"], a["comment"]) for a in normal["approvals"]] == [
        ("product_owner", "approved", "ok from approve_product_owner"),
        ("cto", "approved", "ok from approve_cto"),
    ]
    assert normal["assessment"]["decision"].startswith("approved outside the window")
    assert "outside the production deployment window" in normal["change_window"]

    # 3. The same, declared an emergency: a record, and a review requested in its own DAG; the
    #    VACUUM run does not wait for it (nor is its run timeout stretched by the review's days).
    _unpause(REVIEW_DAG_ID)
    dag = load_dag(DAG_ID)
    assert dag.dagrun_timeout < timedelta(days=1) and REVIEW_TASK not in dag.task_dict
    request = dag.task_dict["request_review"]
    assert request.trigger_dag_id == REVIEW_DAG_ID and request.fail_when_dag_is_paused
    assert not request.wait_for_completion and request.skip_when_already_exists
    started = time.monotonic()
    dr = dag.test(
        logical_date=datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
        run_conf={"dry_run": "no", "emergency": True, "reason": "wraparound risk"},
    )
    states = _states(dr)
    assert str(dr.state) == "success" and states["request_review"] == "success", states
    assert time.monotonic() - started < 120
    emergency = _record(store, dr.run_id)
    assert emergency is not None, states
    assert emergency["change_type"] == "emergency" and emergency["pir_outcome"] == "pending", emergency
    assert emergency["pir_due_at"] is not None
    triggered = _dag_run(REVIEW_DAG_ID, f"review__{DAG_ID}__{dr.run_id}")
    assert triggered is not None and triggered.conf == {"dag_id": DAG_ID, "run_id": dr.run_id}

    # 4. The review's run (as the scheduler would start it: its conf), answered by nobody: its due
    #    date (pir_due 1 s after the change) passes, it is stored timed_out and escalated.
    review = load_dag(REVIEW_DAG_ID).test(run_conf={"dag_id": DAG_ID, "run_id": dr.run_id})
    states = _states(review)
    assert states[REVIEW_TASK] == "success", states  # timed out: a warning, not red
    emergency = _record(store, dr.run_id)
    assert emergency["pir_outcome"] == "timed_out" and emergency["pir_by"] is None, emergency
    status, summary = _review_result(store, review.run_id)
    assert status == "warning" and "escalated to the team lead" in summary
    posted = [json.dumps(m, ensure_ascii=False) for m in slack_api.messages]
    assert any("[SIGN-OFF] Post-implementation review" in p and "@dba" in p for p in posted)
    assert any("[ESCALATION] Post-implementation review" in p for p in posted)


def _dag_run(dag_id: str, run_id: str) -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        found = DagRun.find(dag_id=dag_id, run_id=run_id, session=session)
        if found:
            session.expunge(found[0])
        return found[0] if found else None


def test_an_answered_review_marks_the_change_done(changes_env, slack_api):
    """The review's run, answered by the changed DAG's team: the record is ``done`` with the form."""
    from sanvi_ops.core.change_records import ChangeStore, build_record
    from sanvi_ops.core.results import CheckResult, Status
    from sanvi_ops.core.run_policy import RunPolicy

    store = changes_env["store_dsn"]
    changes_env["configure"](inside=False, pir_due="1h")
    policy = RunPolicy("change", "declared an emergency", scheduled=False, outside_window_ok=True)
    ended = datetime.now(UTC)
    record = build_record(
        dag_id=DAG_ID, run_id="manual__emergency", environment="production", policy=policy,
        results=[CheckResult(check="vacuum.run", status=Status.OK, summary="1 table vacuumed")], run_type="manual",
        triggering_user="sam", reason="wraparound risk", window="outside", started_at=ended,
        ended_at=ended, url="", emergency=True, pir_due=timedelta(hours=1),
    )  # fmt: skip
    assert record is not None and record.change_type == "emergency"
    ChangeStore(store).save(record)
    changes_env["responder"].review_form = REVIEW_FORM

    review = load_dag(REVIEW_DAG_ID).test(run_conf={"dag_id": DAG_ID, "run_id": "manual__emergency"})
    assert _states(review)[REVIEW_TASK] == "success"
    done = _record(store, "manual__emergency")
    assert (done["pir_outcome"], done["pir_by"], done["pir_form"]) == ("done", "Dana (DBA)", REVIEW_FORM)
    assert _review_result(store, review.run_id)[0] == "ok"
