"""Business continuity testing's pure logic: the year's drills, the game day, the approval."""

from __future__ import annotations

import datetime as dt

import pytest

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.run_policy import all_approved as approved
from sanvi_ops.tasks.business_continuity_testing.continuity import drill_record, game_day_result

pytestmark = pytest.mark.unit

AT = dt.datetime(2027, 1, 5, tzinfo=dt.UTC)


def _t(kind, minutes, status="ok"):
    return {"kind": kind, "run_id": "r", "started_at": AT, "status": status, "rto_seconds": minutes * 60}


def test_drills_per_kind_against_the_objective() -> None:
    tests = [
        _t("restore_test", 10),
        _t("restore_test", 20),
        _t("dr_database", 70),
        _t("dr_full_system", 5, "critical"),
    ]
    out = {
        r.check: r
        for r in drill_record(
            tests,
            required_kinds=["restore_test", "dr_database", "dr_full_system", "dr_site_activation"],
            objective_minutes=60,
        )
    }
    assert out["continuity.drills[restore_test]"].status is Status.OK
    assert out["continuity.drills[restore_test]"].observed == 20
    assert "over the 60-minute" in out["continuity.drills[dr_database]"].summary
    assert "1 failed" in out["continuity.drills[dr_full_system]"].summary
    assert "no test in the year" in out["continuity.drills[dr_site_activation]"].summary


def test_game_day_outcomes() -> None:
    ok = [CheckResult("dr.rto", Status.OK, "ok")]
    assert (
        game_day_result(
            "full_system", run_id="x", state="success", results=ok, tests=[_t("k", 30)], objective_minutes=60
        ).status
        is Status.OK
    )
    assert (
        game_day_result(
            "full_system", run_id="x", state="success", results=ok, tests=[_t("k", 90)], objective_minutes=60
        ).status
        is Status.WARNING
    )
    assert (
        game_day_result(
            "full_system", run_id="x", state="failed", results=ok, tests=[], objective_minutes=60
        ).status
        is Status.CRITICAL
    )
    none = game_day_result("full_system", run_id="x", state=None, results=[], tests=[], objective_minutes=60)
    assert none.status is Status.ERROR and "no DR Testing run x" in none.summary


def test_every_approver_must_approve() -> None:
    yes = {"outcome": "approved", "by": "Chris"}
    assert approved({"cto": yes, "product_owner": yes})[0]
    go, why = approved({"cto": yes, "product_owner": {"outcome": "rejected"}})
    assert not go and "product_owner rejected" in why
    assert approved({"cto": None}) == (False, "not approved: cto no answer")
    assert not approved({})[0]


def test_the_drill_runs_state_is_read_as_its_value_on_a_worker():
    """On a worker the Task SDK answers with its DagRunState enum, whose str() is
    "DagRunState.SUCCESS": read as "success", or every green game day would be critical (found by
    the scale-out test on the real stack)."""
    from airflow.sdk.api.datamodels._generated import DagRunState

    from sanvi_ops.tasks.business_continuity_testing.airflow_tasks import _run_state

    class _Ti:
        def get_dagrun_state(self, dag_id, run_id):
            return DagRunState.SUCCESS

    assert _run_state(_Ti(), "dr_testing", "r1") == "success"
