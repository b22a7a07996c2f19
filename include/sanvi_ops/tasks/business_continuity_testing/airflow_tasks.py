"""Bodies of Business Continuity Testing's tasks, and the game day's wiring.

:func:`game_day` adds, in the DAG being defined:

1. ``approve_<contact>``: one :class:`~sanvi_ops.airflow_kit.signoff.RecordedApproval` per
   approver of ``settings.approval_environment``'s deployment window (Product Owner and CTO for
   production), always asked (a game day activates the DR site), stored and posted to Slack;
2. ``check_approval``: skips the drills unless every approver approved (rejected or unanswered:
   nothing runs, and the game day's results say who refused);
3. ``run_drill_<scope>``: one ``TriggerDagRunOperator`` per ``settings.game_day_scopes`` entry,
   in order, triggering the DR Testing DAG with ``conf={"scope": <scope>}`` (its ``scope``
   Param) under a fixed run id, waiting (deferred) for it to finish: a retry never starts a second
   drill (the existing run is refused), the next one only after the previous succeeded;
4. ``record_game_day`` (however they ended): each drill's outcome from the DR Testing run's
   stored results and recovery time (``continuity.game_day[<scope>]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sanvi_ops.airflow_kit.annual_review import from_store, review_period, store_dsn
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

CHECK_APPROVAL_TASK = "check_approval"


def settings(cfg: MaintenanceConfig) -> Any:
    return cfg.tasks.business_continuity_testing.settings


def approvers(cfg: MaintenanceConfig) -> list[str]:
    """Keys of ``contacts`` who approve the game day, with an error naming a bad environment."""
    from sanvi_ops.airflow_kit.approval import window_approvers

    return window_approvers(
        cfg,
        settings(cfg).approval_environment,
        "tasks.business_continuity_testing.settings.approval_environment",
    )


def drills(context: Mapping[str, Any]) -> ResultDicts:
    """The year's recovery tests per kind, against the recovery time objective."""
    from sanvi_ops.core.annual_review import recovery_tests
    from sanvi_ops.tasks.business_continuity_testing.continuity import drill_record

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        tests = recovery_tests(store_dsn(cfg), review_period(context, s))
        return drill_record(
            tests, required_kinds=s.required_kinds, objective_minutes=cfg.slos.recovery_time_minutes
        )

    return from_store("continuity.drills", run)


def check_approval(context: Mapping[str, Any]) -> str:
    """Raise ``AirflowSkipException`` (skipping the drills) unless every approver approved."""
    from airflow.sdk.exceptions import AirflowSkipException

    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.run_policy import all_approved, approver_task_id

    ti = context["ti"]
    answers = {a: ti.xcom_pull(task_ids=approver_task_id(a), default=None) for a in approvers(load_config())}
    go, why = all_approved(answers)
    if not go:
        raise AirflowSkipException(f"game day not run: {why}")
    return why


def record(context: Mapping[str, Any]) -> ResultDicts:
    """Each drill's outcome from the store (the DR Testing run's results and recovery tests)."""
    from sanvi_ops.core.annual_review import jsonable
    from sanvi_ops.core.store import ResultStore
    from sanvi_ops.tasks.business_continuity_testing.continuity import game_day_result, game_day_run_id

    ti, dag_run = context["ti"], context["dag_run"]
    why_not = _skipped_because(ti)

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        s = settings(cfg)
        if why_not is not None:
            return [
                CheckResult(
                    check=f"continuity.game_day[{scope}]",
                    status=Status.WARNING,
                    summary=f"game day {scope} NOT run: {why_not} — Action: agree a date with the "
                    "approvers and trigger this DAG again (the year's evidence above stands)",
                    component="game_day",
                )
                for scope in s.game_day_scopes
            ]
        dsn = store_dsn(cfg)
        store = ResultStore(dsn)
        out = []
        for scope in s.game_day_scopes:
            run_id = game_day_run_id(dag_run.run_id, scope)
            results = store.results_for_run(s.dr_dag_id, run_id)
            with store.connection(f"read recovery_tests of {s.dr_dag_id}/{run_id}") as conn:
                tests = conn.execute(
                    "SELECT kind, started_at, status, rto_seconds, rpo_seconds FROM recovery_tests "
                    "WHERE dag_id = %s AND run_id = %s ORDER BY started_at",
                    [s.dr_dag_id, run_id],
                ).fetchall()
            out.append(
                game_day_result(
                    scope,
                    run_id=run_id,
                    state=_run_state(ti, s.dr_dag_id, run_id),
                    results=results,
                    tests=[jsonable(t) for t in tests],
                    objective_minutes=cfg.slos.recovery_time_minutes,
                )
            )
        return out

    return from_store("continuity.game_day", run)


def _skipped_because(ti: Any) -> str | None:
    """Why the drills did not run (the approval check's reason), or ``None`` when they ran."""
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.run_policy import all_approved, approver_task_id

    keys = approvers(load_config())
    answers = {a: ti.xcom_pull(task_ids=approver_task_id(a), default=None) for a in keys}
    if ti.xcom_pull(task_ids=CHECK_APPROVAL_TASK, default=None) is not None:
        return None
    if all(a is None for a in answers.values()):
        return None  # the approvals were not asked through this run (marked done by hand)
    go, why = all_approved(answers)
    return None if go else why


def _run_state(ti: Any, dag_id: str, run_id: str) -> str | None:
    """The DR Testing run's state through the task SDK, ``None`` when it cannot be read."""
    try:
        state = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
        # A worker gets the SDK's DagRunState (a str Enum whose str() is "DagRunState.SUCCESS").
        return str(getattr(state, "value", state))
    except Exception:  # noqa: BLE001 — the stored results decide; the state only adds to them
        return None


def game_day() -> Any:
    """Add the approvals, the approval check, the drills and ``record_game_day`` to the DAG being
    defined; returns ``record_game_day``'s output (for the report)."""
    import datetime as dt

    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
    from airflow.sdk import TriggerRule, get_current_context, task

    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.airflow_kit.approval import approval_spec
    from sanvi_ops.airflow_kit.signoff import TASK_TIMEOUT, RecordedApproval, extend_for_wait, hitl_users
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.run_policy import approver_task_id
    from sanvi_ops.tasks.business_continuity_testing.continuity import game_day_run_id

    cfg = load_config()
    s = settings(cfg)
    keys = approvers(cfg)
    scopes = ", ".join(s.game_day_scopes)
    asks = []
    for key in keys:
        contact = cfg.contacts[key]
        asks.append(
            RecordedApproval(
                task_id=approver_task_id(key),
                subject="Approve the annual business continuity game day",
                body=(
                    f"The game day runs the DR Testing DAG ({s.dr_dag_id}) with the scopes **{scopes}**: a "
                    "full-system recovery and the DR-site activation, from backups alone, into the DR "
                    f"environment (never production). You answer as **{contact.role}**; every approver of "
                    f"{s.approval_environment}'s deployment window must approve. Reject (or leave unanswered) "
                    "and no drill runs."
                ),
                spec=approval_spec(key, contact),
                assigned_users=hitl_users(cfg.approvals.responders.get(key, [])),
                response_timeout=s.approval_deadline,
                execution_timeout=TASK_TIMEOUT,
                doc_md=f"Approval of the game day by the {contact.role}.",
            )
        )
    extend_for_wait(DagContext.get_current(), s.approval_deadline)

    @task(task_id=CHECK_APPROVAL_TASK)
    def check() -> str:
        """Go only when every approver approved; otherwise the drills are skipped."""
        return check_approval(get_current_context())

    gate = check()
    for ask in asks:
        ask >> gate
    previous: Any = gate
    for scope in s.game_day_scopes:
        drill = TriggerDagRunOperator(
            task_id=f"run_drill_{scope}",
            trigger_dag_id=s.dr_dag_id,
            trigger_run_id=game_day_run_id("{{ run_id }}", scope),
            conf={"scope": scope},
            wait_for_completion=True,
            poke_interval=15,  # the triggerer's cheap state query; the record follows the drill closely
            deferrable=True,
            allowed_states=["success"],
            failed_states=["failed"],
            execution_timeout=dt.timedelta(minutes=s.drill_timeout_minutes),
            doc_md=f"Trigger {s.dr_dag_id} with scope {scope} and wait for it (its run id is fixed: a retry "
            "never starts a second drill).",
        )
        previous >> drill
        previous = drill

    @task(task_id="record_game_day", trigger_rule=TriggerRule.ALL_DONE)
    def record_game_day() -> list[dict[str, Any]]:
        """Each drill's outcome: the DR Testing run's stored results and recovery time."""
        return record(get_current_context())

    recorded = record_game_day()
    previous >> recorded
    gate >> recorded
    return recorded
