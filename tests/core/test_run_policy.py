"""The manual-run rules of a destructive DAG (sanvi_ops.core.run_policy) and the sign-off texts and
outcomes (sanvi_ops.core.signoffs): pure logic, no servers."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sanvi_ops.core.config import DeploymentPolicy, DeploymentWindow, load_config
from sanvi_ops.core.results import Status
from sanvi_ops.core.run_policy import AS_SCHEDULED, RunPolicy, decide
from sanvi_ops.core.signoffs import (
    Answer,
    Outcome,
    Request,
    answer_from_event,
    escalation_message,
    form_findings_result,
    outcome_result,
    request_message,
)

UTC = dt.UTC
PRODUCTION = load_config().deployment_windows["production"]  # Tue & Thu 22:00-02:00, PO & CTO
VACUUM = DeploymentWindow(days=("wednesday",), start=dt.time(3), end=dt.time(6))
FRIDAY_NOON = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TUESDAY_2300 = dt.datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
WEDNESDAY_0130 = dt.datetime(2026, 11, 25, 1, 30, tzinfo=UTC)  # production window past midnight
WEDNESDAY_0400 = dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC)  # the vacuum window


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


def test_guide_production_row_is_what_the_rules_read() -> None:
    assert PRODUCTION.approvers == ["product_owner", "cto"] and PRODUCTION.emergency == "with_approval"


@pytest.mark.parametrize("now", [FRIDAY_NOON, TUESDAY_2300, WEDNESDAY_0400])
def test_scheduled_runs_are_unaffected(now: dt.datetime) -> None:
    decision = _decide(now, scheduled=True)
    assert decision.action == "change" and not decision.needs_approval


@pytest.mark.parametrize(
    ("now", "window"),
    [
        (TUESDAY_2300, "production deployment window"),
        (WEDNESDAY_0130, "production deployment window"),
        (WEDNESDAY_0400, "maintenance window"),
    ],
)
def test_a_manual_run_inside_a_window_changes_without_approval(now: dt.datetime, window: str) -> None:
    decision = _decide(now)
    assert decision.action == "change" and window in decision.reason


def test_a_manual_run_outside_the_windows_defaults_to_a_dry_run() -> None:
    decision = _decide(FRIDAY_NOON)
    assert decision.action == "dry_run"
    assert "Friday 12:00 UTC" in decision.reason and "dry_run: no" in decision.reason
    assert "Tue & Thu 22:00–02:00 UTC" in decision.reason and "Wed 03:00–06:00 UTC" in decision.reason


def test_dry_run_yes_is_always_a_dry_run_even_scheduled_or_in_window() -> None:
    assert _decide(TUESDAY_2300, "yes").action == "dry_run"
    assert _decide(WEDNESDAY_0400, "yes", scheduled=True).action == "dry_run"


def test_asking_to_change_outside_the_window_needs_product_owner_and_cto() -> None:
    decision = _decide(FRIDAY_NOON, "no")
    assert decision.action == "approval" and decision.approvers == ("product_owner", "cto")
    assert RunPolicy.from_dict(json.loads(json.dumps(decision.as_dict()))) == decision  # travels by XCom


def test_an_environment_with_emergency_anytime_needs_no_approval() -> None:
    staging = DeploymentPolicy(
        regular=DeploymentWindow(days=("monday",), start=dt.time(10), end=dt.time(16)),
        emergency="anytime",
        approvers=["tech_lead"],
    )
    assert _decide(FRIDAY_NOON, "no", policy=staging).action == "change"


def test_bad_input_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="dry_run must be one of auto, yes, no"):
        _decide(FRIDAY_NOON, "maybe")
    with pytest.raises(ValueError, match="timezone-aware"):
        _decide(dt.datetime(2026, 11, 27, 12))


def test_verdict_all_approved_changes_outside_the_window() -> None:
    v = _decide(FRIDAY_NOON, "no").answered(
        {
            "product_owner": {"outcome": "approved", "by": "pat"},
            "cto": {"outcome": "approved", "by": "chris"},
        },
    )
    assert v.changes and v.outside_window_ok and not v.refused
    assert RunPolicy.from_dict(json.loads(json.dumps(v.as_dict()))) == v
    assert v.reason == "approved outside the window by pat (product_owner), chris (cto)"


@pytest.mark.parametrize(
    ("cto", "expected"),
    [
        (
            {"outcome": "rejected", "by": "chris", "comment": "sale today"},
            'rejected by chris (cto): "sale today"',
        ),
        ({"outcome": "timed_out", "by": None}, "cto did not answer by the deadline"),
        (None, "cto: no answer recorded"),
    ],
)
def test_verdict_one_refusal_refuses_cleanly(cto, expected: str) -> None:
    v = _decide(FRIDAY_NOON, "no").answered(
        {"product_owner": {"outcome": "approved", "by": "pat"}, "cto": cto}
    )
    assert v.refused and not v.changes and expected in v.reason and "Nothing was changed" in v.reason


def test_verdict_dry_run_and_scheduled() -> None:
    assert _decide(FRIDAY_NOON).answered({}).dry_run
    scheduled = _decide(FRIDAY_NOON, scheduled=True).answered({})
    assert scheduled.changes and not scheduled.outside_window_ok  # the DAG still keeps its window


def test_at_start_a_run_that_must_keep_its_window_is_refused_outside_it() -> None:
    """The one window refusal: a scheduled run that starts late (queued in the pool)."""
    window = VACUUM.in_zone("UTC")
    scheduled = _decide(WEDNESDAY_0400, scheduled=True)
    assert scheduled.at_start(WEDNESDAY_0400, window) == scheduled
    late = scheduled.at_start(FRIDAY_NOON, window)
    assert late.refused and late.at_start(FRIDAY_NOON, window) == late  # idempotent
    assert "outside the maintenance window (Wed 03:00–06:00 UTC)" in late.reason
    assert "it is Friday 12:00 UTC" in late.reason and "Queued too long" in late.reason
    assert (
        "dry_run: no" in late.reason and "approvers" in late.reason and "Nothing was changed" in late.reason
    )
    assert AS_SCHEDULED.at_start(FRIDAY_NOON, window).reason == late.reason
    # A person let these change outside the window; a dry run changes nothing anyway.
    inside_deployment_window = _decide(TUESDAY_2300)
    assert inside_deployment_window.at_start(FRIDAY_NOON, window).changes
    assert _decide(FRIDAY_NOON).at_start(FRIDAY_NOON, window).dry_run
    with pytest.raises(ValueError, match="answered"):
        _decide(FRIDAY_NOON, "no").at_start(FRIDAY_NOON, window)


# ------------------------------------------------------------------------------ sign-offs

REQUEST = Request(
    dag_id="cost_optimization",
    run_id="scheduled__2026-10-08",
    task_id="sign_off",
    kind="signoff",
    team="finance_devops",
    team_name="Finance & DevOps",
    mention="@finance @devops",
    subject="Quarterly cost review",
    requested_at=dt.datetime(2026, 10, 8, 11, 30, tzinfo=UTC),
    deadline=dt.datetime(2026, 10, 15, 11, 30, tzinfo=UTC),
    url="http://airflow.example/dags/cost_optimization/runs/r/tasks/sign_off/required_actions",
)
NOW = dt.datetime(2026, 10, 9, 9, 0, tzinfo=UTC)


def test_answers_are_read_from_the_operator_events() -> None:
    approved = answer_from_event(
        {
            "chosen_options": ["Approve"],
            "params_input": {"comment": "fine"},
            "responded_at": "2026-10-09T08:00:00+00:00",
            "responded_by_user": {"id": "7", "name": "Fin Lead"},
        },
        approve_option="Approve",
        now=NOW,
    )
    assert approved.outcome is Outcome.APPROVED and approved.by == "Fin Lead" and approved.comment == "fine"
    assert approved.responded_at == dt.datetime(2026, 10, 9, 8, tzinfo=UTC)
    rejected = answer_from_event(
        {"chosen_options": ["Reject"], "responded_by_user": None}, approve_option="Approve", now=NOW
    )
    assert rejected.outcome is Outcome.REJECTED
    timeout = {"error": "The Human-in-the-loop response timeout has passed", "error_type": "timeout"}
    assert answer_from_event(timeout, approve_option="Approve", now=NOW).outcome is Outcome.TIMED_OUT
    defaults_on_timeout = {"chosen_options": ["OK"], "params_input": {}, "timedout": True}
    assert answer_from_event(defaults_on_timeout, approve_option=None, now=NOW).outcome is Outcome.TIMED_OUT
    with pytest.raises(ValueError, match="event error"):
        answer_from_event({"error": "boom", "error_type": "unknown"}, approve_option=None, now=NOW)


def test_outcome_results_and_severity_on_timeout() -> None:
    ok = outcome_result(REQUEST, Answer(Outcome.APPROVED, {"id": "7", "name": "Fin"}, NOW))
    assert ok.status is Status.OK and ok.check == "signoff.sign_off"
    bad = outcome_result(
        REQUEST, Answer(Outcome.REJECTED, {"id": "7", "name": "Fin"}, NOW, {"comment": "no owner"})
    )
    assert (
        bad.status is Status.CRITICAL and 'rejected by Fin for Finance & DevOps ("no owner")' in bad.summary
    )
    late = Answer(Outcome.TIMED_OUT, None, NOW)
    assert outcome_result(REQUEST, late).status is Status.WARNING
    assert outcome_result(REQUEST, late, on_timeout="critical").status is Status.CRITICAL
    with pytest.raises(ValueError):
        outcome_result(REQUEST, Answer(Outcome.PENDING))


def test_request_and_escalation_messages_mention_who_must_act() -> None:
    text, blocks = request_message(REQUEST, "**Evidence** here", dt.UTC)
    assert text.startswith("[SIGN-OFF] Quarterly cost review") and "@finance @devops" in text
    assert "Thu 15 Oct 2026 11:30 UTC" in text and REQUEST.url in text
    assert blocks[-1]["elements"][0]["url"] == REQUEST.url
    text, _ = escalation_message(
        REQUEST, "@devops-lead", "warning", dt.datetime(2026, 10, 16, 11, 30, tzinfo=UTC)
    )
    assert text.startswith("[ESCALATION]") and "@devops-lead" in text and "overdue 1 d" in text


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"outcome": "pass", "tester": "Acme"}, Status.OK),
        ({"outcome": "pass", "findings_high": 1}, Status.WARNING),
        ({"outcome": "partial"}, Status.WARNING),
        ({"outcome": "pass", "findings_critical": 2}, Status.CRITICAL),
        ({"outcome": "fail"}, Status.CRITICAL),
        ({"outcome": None, "tester": None}, Status.WARNING),
    ],
)
def test_pentest_form_grading(form: dict, status: Status) -> None:
    result = form_findings_result("record_pentest_outcome", form)
    assert result.status is status and result.check == "record_pentest_outcome.findings"
