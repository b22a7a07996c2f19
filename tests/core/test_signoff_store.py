"""The ``signoffs`` table (store migration 009) against the real PostgreSQL fixture."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from sanvi_ops.core.signoffs import Answer, Outcome, Request, SignoffStore

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 10, 8, 11, 30, tzinfo=dt.UTC)


def _request(task_id: str = "sign_off", run_id: str = "r1") -> Request:
    return Request(
        dag_id="cost_optimization",
        run_id=run_id,
        task_id=task_id,
        kind="signoff",
        team="finance_devops",
        team_name="Finance & DevOps",
        mention="@finance @devops",
        subject="Quarterly cost review",
        requested_at=T0,
        deadline=T0 + dt.timedelta(days=7),
        url="http://airflow.local/required_actions",
    )


def test_requests_are_stored_pending_then_answered_once(make_db) -> None:
    store = SignoffStore(make_db("signoffs"))
    store.migrate()
    store.save_request(_request())
    store.save_request(_request())  # a retried task: still one row
    store.save_request(_request("approve_cto", "r2"))
    pending = store.signoffs("cost_optimization", pending_only=True)
    assert {(p.task_id, p.outcome) for p in pending} == {
        ("sign_off", Outcome.PENDING),
        ("approve_cto", Outcome.PENDING),
    }

    answer = Answer(
        Outcome.REJECTED, {"id": "7", "name": "Fin Lead"}, T0 + dt.timedelta(hours=3), {"comment": "no owner"}
    )
    store.save_answer(_request(), answer)
    store.save_request(_request())  # a late retry of the request does not re-open an answered one
    (row,) = [r for r in store.signoffs("cost_optimization") if r.task_id == "sign_off"]
    assert row.outcome is Outcome.REJECTED and row.responder == {"id": "7", "name": "Fin Lead"}
    assert row.form == {"comment": "no owner"} and row.deadline == T0 + dt.timedelta(days=7)
    assert [p.task_id for p in store.signoffs(pending_only=True)] == ["approve_cto"]

    with pytest.raises(ValueError, match="cannot be pending"):
        store.save_answer(_request(), Answer(Outcome.PENDING))
    with psycopg.connect(store._dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "UPDATE signoffs SET outcome = 'approved' WHERE task_id = 'approve_cto'"
        )  # an answer needs its time
