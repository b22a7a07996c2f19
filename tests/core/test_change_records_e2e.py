"""Change records end to end: three ``dag.test()`` runs of Database Maintenance against the real
PostgreSQL fixture (application database and results store) and the Slack-compatible server.

- a scheduled run inside its window → a ``standard`` record;
- a manual run outside every window with ``dry_run: no``, approved by the Product Owner and the
  CTO → a ``normal`` record carrying their answers;
- the same, declared an emergency → an ``emergency`` record and a post-implementation review that
  nobody answers: it goes late, is stored ``timed_out`` and escalated to the team lead.

``dag.test()`` never resolves a task parked in ``awaiting_input``; a background "responder" does
what the Airflow API does for an answer (and the scheduler's sweep for a missed deadline).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.fixtures.e2e import load_dag

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "database_maintenance"
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class _Responder(threading.Thread):
    """Answers the run's approvals (Approve, with a comment) and sweeps missed HITL deadlines."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()

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
                .where(TI.state == TaskInstanceState.AWAITING_INPUT, TI.task_id.like("approve_%"))
                .options(joinedload(TI.hitl_detail))
            ).all()
            for ti in waiting:
                detail = ti.hitl_detail
                detail.chosen_options = ["Approve"]
                detail.params_input = {"comment": f"ok from {ti.task_id}"}
                detail.responded_by = {"id": ti.task_id, "name": ti.task_id.removeprefix("approve_")}
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

    def configure(*, inside: bool) -> None:
        cfg = yaml.safe_load((REPO / "include/config/maintenance.yaml").read_text())
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
        cfg["change_management"] = {"pir_due": "1s", "pir_on_timeout": "warning"}
        path = tmp_path / "maintenance.yaml"
        path.write_text(yaml.safe_dump(cfg))
        monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))
        clear_config_cache()

    configure(inside=True)
    Pool.create_or_update_pool("sanvi_db_heavy", slots=1, description="heavy DB work", include_deferred=False)
    responder = _Responder()
    responder.start()
    yield {**env, "configure": configure}
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


def _record(store_dsn: str, run_id: str) -> dict[str, Any] | None:
    with psycopg.connect(store_dsn, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT * FROM change_records WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id)
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
    assert states["record_change"] == "success" and states["post_implementation_review"] == "skipped", states
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
    assert states["vacuum_analyze"] == "success" and states["post_implementation_review"] == "skipped", states
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

    # 3. The same, declared an emergency: a record and a review that goes late and escalates.
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
        run_conf={"dry_run": "no", "emergency": True, "reason": "wraparound risk"},
    )
    states = _states(dr)
    assert states["post_implementation_review"] == "success", states  # timed out: a warning, not red
    emergency = _record(store, dr.run_id)
    assert emergency is not None, states
    assert emergency["change_type"] == "emergency" and emergency["pir_outcome"] == "timed_out", emergency
    assert emergency["pir_due_at"] is not None and emergency["pir_by"] is None
    with psycopg.connect(store) as conn:
        (status, summary) = conn.execute(
            "SELECT status, summary FROM check_results WHERE dag_id = %s AND run_id = %s "
            "AND check_name = 'signoff.post_implementation_review'",
            (DAG_ID, dr.run_id),
        ).fetchone()
    assert status == "warning" and "escalated to the team lead" in summary
    posted = [json.dumps(m, ensure_ascii=False) for m in slack_api.messages]
    assert any("[SIGN-OFF] Post-implementation review" in p for p in posted)
    assert any("[ESCALATION] Post-implementation review" in p for p in posted)
