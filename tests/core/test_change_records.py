"""Change records (sanvi_ops.core.change_records): how a run is typed and documented. Pure logic."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from sanvi_ops.core.change_records import (
    ChangeRecord,
    build_record,
    change_type,
    evidence,
    pir_state,
    requested_by,
)
from sanvi_ops.core.config import DeploymentPolicy, DeploymentWindow, load_config
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.run_policy import RunPolicy, decide

UTC = dt.UTC
PRODUCTION = load_config().deployment_windows["production"]  # Tue & Thu 22:00-02:00, PO & CTO
ANYTIME = DeploymentPolicy(
    regular=DeploymentWindow(days=("monday",), start=dt.time(10), end=dt.time(16)),
    emergency="anytime",
    approvers=["tech_lead"],
)
VACUUM = DeploymentWindow(days=("wednesday",), start=dt.time(3), end=dt.time(6))
FRIDAY_NOON = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WEDNESDAY_0400 = dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
ANSWERS = {
    "product_owner": {
        "outcome": "approved",
        "by": "Pat",
        "comment": "go",
        "responded_at": "2026-11-27T12:05:00+00:00",
    },
    "cto": {"outcome": "approved", "by": "Chris", "comment": "", "responded_at": "2026-11-27T12:06:00+00:00"},
}


def _decide(now: dt.datetime, dry_run: str = "auto", scheduled: bool = False, policy=PRODUCTION) -> RunPolicy:
    return decide(
        dry_run=dry_run,
        scheduled=scheduled,
        now=now,
        timezone="UTC",
        environment="production",
        policy=policy,
        maintenance_window=VACUUM,
    )


def test_scheduled_and_in_window_runs_are_standard_changes() -> None:
    assert change_type(_decide(WEDNESDAY_0400, scheduled=True)) == "standard"
    assert change_type(_decide(WEDNESDAY_0400, dry_run="no")) == "standard"  # by hand, window open
    # Declaring an emergency inside a window changes nothing: the routine path needs no review.
    assert change_type(_decide(WEDNESDAY_0400, dry_run="no"), emergency=True) == "standard"


def test_an_approved_run_outside_the_window_is_normal_and_a_declared_emergency_is_emergency() -> None:
    asked = _decide(FRIDAY_NOON, dry_run="no")
    assert asked.needs_approval and change_type(asked) is None  # still waiting: nothing changed yet
    approved = asked.answered(ANSWERS)
    assert change_type(approved) == "normal"
    assert change_type(approved, emergency=True) == "emergency"


def test_the_environments_emergency_path_without_approval_is_emergency() -> None:
    assert change_type(_decide(FRIDAY_NOON, dry_run="no", policy=ANYTIME)) == "emergency"


@pytest.mark.parametrize(
    "policy",
    [
        _decide(FRIDAY_NOON),  # dry run by default
        _decide(FRIDAY_NOON, dry_run="yes"),
        _decide(FRIDAY_NOON, dry_run="no").answered(
            {**ANSWERS, "cto": {"outcome": "rejected", "by": "Chris"}}
        ),
    ],
)
def test_runs_that_change_nothing_have_no_type(policy: RunPolicy) -> None:
    assert change_type(policy) is None


def _results(status: Status = Status.OK) -> list[CheckResult]:
    return [
        CheckResult(check="vacuum.table[public.orders]", status=Status.OK, summary="2000 → 0 dead tuples"),
        CheckResult(check="vacuum.run", status=status, summary="vacuumed 1 table; worst: public.orders"),
    ]


def _build(policy: RunPolicy, **kw) -> ChangeRecord | None:
    args = {
        "dag_id": "database_maintenance",
        "run_id": "manual__1",
        "environment": "production",
        "policy": policy,
        "results": _results(),
        "run_type": "manual",
        "triggering_user": "dana",
        "reason": "",
        "window": "outside the production deployment window (Tue & Thu 22:00–02:00 UTC)",
        "started_at": FRIDAY_NOON,
        "ended_at": FRIDAY_NOON + dt.timedelta(minutes=3),
        "url": "http://airflow.local/dags/database_maintenance/runs/manual__1",
        "answers": ANSWERS,
        **kw,
    }
    return build_record(**args)


def test_a_normal_record_fills_every_step_of_the_process() -> None:
    record = _build(_decide(FRIDAY_NOON, dry_run="no").answered(ANSWERS), reason="bloat on orders")
    assert record is not None
    d = record.as_dict()
    assert d["change_type"] == "normal"
    assert d["request"] == {"requested_by": "dana", "reason": "bloat on orders"}
    assert d["assessment"]["decision"].startswith("approved outside the window by Pat (product_owner)")
    assert d["assessment"]["plan"] == ["vacuum.run: vacuumed 1 table; worst: public.orders"]
    assert [(a["approver"], a["outcome"], a["by"]) for a in d["approval"]] == [
        ("product_owner", "approved", "Pat"),
        ("cto", "approved", "Chris"),
    ]
    assert d["schedule"] == {"window": record.window, "in_window": False}
    assert d["implement"]["started_at"] == FRIDAY_NOON.isoformat()
    assert d["verify"] == {"status": "ok", "counts": {"ok": 2}}
    assert d["document"]["url"].endswith("/runs/manual__1")
    assert d["post_implementation_review"] is None and record.pir_state(FRIDAY_NOON) == "not required"


def test_an_emergency_record_is_due_for_review_and_goes_late() -> None:
    record = _build(
        _decide(FRIDAY_NOON, dry_run="no", policy=ANYTIME), answers={}, pir_due=dt.timedelta(days=5)
    )
    assert record is not None and record.change_type == "emergency" and record.approvals == ()
    assert record.reason.startswith("manual run at")  # no reason given: the policy's own
    assert record.pir_due_at == record.ended_at + dt.timedelta(days=5)
    assert record.pir_state(record.ended_at + dt.timedelta(days=4)) == "pending"
    assert record.pir_state(record.ended_at + dt.timedelta(days=5)) == "late"
    assert pir_state(record.pir_due_at, "done", record.ended_at + dt.timedelta(days=9)) == "done"


def test_a_scheduled_record_is_requested_by_the_scheduler_and_a_refused_one_is_not_recorded() -> None:
    scheduled = _decide(WEDNESDAY_0400, scheduled=True)
    record = _build(scheduled, run_type="scheduled", triggering_user=None, answers={})
    assert record is not None and record.requested_by == "scheduler" and record.in_window
    refused = CheckResult(
        check="vacuum.run",
        status=Status.SKIPPED,
        summary="refused: outside the maintenance window",
        details={"run_policy": {"action": "refused"}},
    )
    assert _build(scheduled, results=[refused], run_type="scheduled") is None
    assert requested_by("DagRunType.MANUAL", None) == "manual"


def test_a_record_refuses_inconsistent_review_fields() -> None:
    record = _build(_decide(WEDNESDAY_0400, scheduled=True), answers={})
    assert record is not None
    with pytest.raises(ValueError, match="post-implementation review"):
        dataclasses.replace(record, pir_due_at=FRIDAY_NOON)
    with pytest.raises(ValueError, match="change_type"):
        dataclasses.replace(record, change_type="urgent")  # type: ignore[arg-type]


def test_the_evidence_counts_types_and_late_reviews() -> None:
    normal = _build(_decide(FRIDAY_NOON, dry_run="no").answered(ANSWERS))
    emergency = _build(_decide(FRIDAY_NOON, dry_run="no", policy=ANYTIME), answers={})
    assert normal and emergency
    pack = evidence([normal, emergency], emergency.ended_at + dt.timedelta(days=6))
    assert pack["counts"] == {"standard": 0, "normal": 1, "emergency": 1}
    assert pack["reviews_late"] == 1
    assert [r["pir_state"] for r in pack["records"]] == ["not required", "late"]


def test_the_review_dag_is_declared_triggered_only_and_its_team_is_checked() -> None:
    from sanvi_ops.core.calendar import CHANGE_REVIEW_DAG_ID, non_guide_dags

    cfg = load_config()
    job = non_guide_dags(cfg)[CHANGE_REVIEW_DAG_ID]
    assert (job.cron, job.folder, job.team) == (None, "meta", "devops") and job.max_active_runs > 1
    wrong = cfg.model_copy(
        update={"change_management": cfg.change_management.model_copy(update={"team": "nobody"})}
    )
    with pytest.raises(ValueError, match=r"change_management\.team: 'nobody' is not a key of teams"):
        non_guide_dags(wrong)
