"""Change records in a DAG: one keyword of ``publish`` for a DAG that changes production.

::

    publish(vacuumed, changes=True)                       # gated: the approval gate's policy
    publish(drill(), changes=when_result("dr.scope", scope="dr_site_activation", dry_run=False))

adds, after ``record`` (so the run's results are stored first):

- ``record_change``: builds the run's :class:`~sanvi_ops.core.change_records.ChangeRecord`
  (standard / normal / emergency, from the run's :class:`~sanvi_ops.core.run_policy.RunPolicy`,
  the approvers' answers, the ``emergency`` and ``reason`` Params, the work task's results) and
  stores it in ``change_records``. A run that changed nothing (dry run, refused) stores nothing.
  A DAG without an approval gate is a pre-approved procedure: its runs are standard changes.
- ``post_implementation_review``: for an emergency change only (skipped otherwise), a form for
  the DAG's responsible team under *Required actions*, due ``change_management.pir_due`` after
  the change; the answer (or the missed deadline, escalated to ``on_call.team_lead`` by the
  sign-off path) is stored on the change record and as a ``signoff.post_implementation_review``
  result of the run.

``changes`` may be a callable of the run's Params and the work's results that says whether this
run changed production at all (a DR drill only in its DR-site scope: :func:`when_result`). A DAG
without an approval gate gets no review task (its changes are always standard).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sanvi_ops.core.results import CheckResult

log = logging.getLogger(__name__)

CHANGE_TASK_ID = "record_change"
REVIEW_TASK_ID = "post_implementation_review"

#: ``True``, or a function of the run's Params and the work's results: does this run change production?
ChangesWhen = bool | Callable[[Mapping[str, Any], "list[CheckResult]"], bool]


def when_result(check: str, **details: Any) -> Callable[[Mapping[str, Any], list[CheckResult]], bool]:
    """``changes=`` for a DAG whose result ``check`` says whether it changed production:
    ``when_result("dr.scope", scope="dr_site_activation", dry_run=False)``."""

    def changed(_params: Mapping[str, Any], results: list[CheckResult]) -> bool:
        return any(
            r.check == check and all((r.details or {}).get(k) == v for k, v in details.items())
            for r in results
        )

    return changed


def change_params() -> dict[str, Any]:
    """The ``emergency`` and ``reason`` trigger-form fields of a DAG that changes production
    (``params={..., **change_params()}``)."""
    from airflow.sdk import Param

    return {
        "emergency": Param(
            False,
            type="boolean",
            title="Emergency change",
            description="An urgent fix outside the windows (with dry_run: no): recorded as an "
            "emergency change, which opens a post-implementation review for the responsible team.",
        ),
        "reason": Param(
            "",
            type="string",
            title="Reason",
            description="Why this run changes production (stored on its change record).",
        ),
    }


def _environment(cfg: Any, dag_id: str) -> str:
    spec = cfg.tasks[dag_id] if dag_id in cfg.tasks else None
    gate = getattr(spec, "approval", None)
    return gate.environment if gate is not None else "production"


def _team_key(cfg: Any, dag_id: str) -> str:
    from sanvi_ops.core.calendar import non_guide_dags

    if dag_id in cfg.tasks:
        return str(cfg.tasks[dag_id].team)
    return str(non_guide_dags(cfg)[dag_id].team)


def _policy_and_answers(context: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The run's policy: the approval gate's when the DAG has one, else a pre-approved procedure."""
    from sanvi_ops.airflow_kit.approval import DECIDE_TASK_ID, run_policy
    from sanvi_ops.core.run_policy import RunPolicy, approver_task_id

    ti = context["ti"]
    if ti.xcom_pull(task_ids=DECIDE_TASK_ID, default=None) is not None:
        policy = run_policy(context)
        answers = {a: ti.xcom_pull(task_ids=approver_task_id(a), default=None) for a in policy.approvers}
        return policy, answers
    scheduled = str(context["dag_run"].run_type).lower().endswith("scheduled")
    return (
        RunPolicy(
            "change",
            "scheduled run" if scheduled else "manual run of a pre-approved procedure",
            scheduled=scheduled,
            outside_window_ok=True,
            open_windows=("any time (a pre-approved procedure)",),
        ),
        {},
    )


def _window_text(cfg: Any, environment: str, policy: Any) -> str:
    if policy.open_windows:
        return " and ".join(policy.open_windows)
    regular = cfg.deployment_windows[environment].regular.in_zone(cfg.timezone)
    return f"outside the {environment} deployment window ({regular})"


def record_change(
    task_ids: list[str], context: Mapping[str, Any], when: ChangesWhen = True
) -> dict[str, Any]:
    """The ``record_change`` task body: build and store this run's change record.

    :param when: ``True``, or a function of the Params and the results: whether this run changed
        production at all.
    :returns: the record as a dict (``{}`` when the run changed nothing).
    """
    from sanvi_ops.airflow_kit.publish import collect_results, results_store, run_url
    from sanvi_ops.core.change_records import ChangeStore, build_record
    from sanvi_ops.core.config import load_config

    cfg = load_config()
    dag_run = context["dag_run"]
    params = context.get("params") or {}
    results = collect_results(context["ti"], task_ids)
    if callable(when) and not when(params, results):
        log.info("%s %s does not change production: no change record", dag_run.dag_id, dag_run.run_id)
        return {}
    policy, answers = _policy_and_answers(context)
    environment = _environment(cfg, dag_run.dag_id)
    now = dt.datetime.now(dt.UTC)
    started = getattr(dag_run, "start_date", None)
    record = build_record(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        environment=environment,
        policy=policy,
        results=results,
        run_type=str(dag_run.run_type),
        triggering_user=getattr(dag_run, "triggering_user_name", None),
        reason=str(params.get("reason") or getattr(dag_run, "note", None) or ""),
        window=_window_text(cfg, environment, policy),
        started_at=started if started is None or started.tzinfo else started.replace(tzinfo=dt.UTC),
        ended_at=now,
        url=run_url(dag_run.dag_id, dag_run.run_id),
        answers=answers,
        emergency=bool(params.get("emergency")),
        pir_due=cfg.change_management.pir_due,
    )
    if record is None:
        log.info(
            "%s %s changed nothing (%s): no change record", dag_run.dag_id, dag_run.run_id, policy.reason
        )
        return {}
    store = results_store(cfg)
    ChangeStore(store.dsn, name=store.name).save(record)
    log.info("%s change recorded for %s %s", record.change_type, record.dag_id, record.run_id)
    return record.as_dict()


def _needs_review(context: Mapping[str, Any]) -> str | None:
    change = context["ti"].xcom_pull(task_ids=CHANGE_TASK_ID, default=None) or {}
    if change.get("change_type") == "emergency":
        return None
    kind = change.get("change_type")
    return f"no review needed: {kind} change" if kind else "no review needed: nothing was changed"


def _review_form() -> dict[str, Any]:
    from airflow.sdk import Param

    # No value until someone enters one: Airflow validates a task's Params when the task starts,
    # so a field is typed "null or ..." (as the penetration test's form).
    return {
        "what_happened": Param(
            None, type=["null", "string"], title="What happened",
            description="Why the emergency change was needed, and what it did",
        ),
        "outcome": Param(
            None, type=["null", "string"],
            enum=[None, "successful", "partially successful", "failed", "rolled back"], title="Outcome",
        ),
        "follow_up": Param(
            None, type=["null", "string"], title="Follow-up",
            description="Actions to prevent the next emergency (tickets), or 'none'",
        ),
    }  # fmt: skip


def _review_operator() -> type:
    """:class:`~sanvi_ops.airflow_kit.signoff.RecordedEntry` that also stores the answer on the
    change record (imported lazily: the HITL operators come from the standard provider)."""
    from sanvi_ops.airflow_kit.signoff import RecordedEntry

    class PostImplementationReview(RecordedEntry):
        def _answered(self, context: Mapping[str, Any], event: dict[str, Any]) -> dict[str, Any]:
            try:
                out = super()._answered(context, event)
            except Exception:
                if event.get("error_type") == "timeout" or event.get("timedout"):
                    _store_review(context, {"outcome": "timed_out"})
                raise
            _store_review(context, out)
            return out

    return PostImplementationReview


def _store_review(context: Mapping[str, Any], out: Mapping[str, Any]) -> None:
    from sanvi_ops.airflow_kit.publish import results_store
    from sanvi_ops.core.change_records import ChangeStore
    from sanvi_ops.core.config import load_config

    store = results_store(load_config())
    dag_run = context["dag_run"]
    done = out.get("outcome") == "approved"
    at = (
        dt.datetime.fromisoformat(out["responded_at"]) if out.get("responded_at") else dt.datetime.now(dt.UTC)
    )
    ChangeStore(store.dsn, name=store.name).review_answered(
        dag_run.dag_id,
        dag_run.run_id,
        "done" if done else "timed_out",
        at=at,
        by=out.get("by") if done else None,
        form=out.get("form") if done else None,
    )


def change_tasks(checks: tuple[Any, ...], recorded: Any, when: ChangesWhen) -> Any:
    """Add ``record_change`` and, in a DAG with an approval gate (the only ones whose changes can be
    emergencies), ``post_implementation_review`` after ``recorded`` (publish's ``record``); returns
    the last task added."""
    from airflow.sdk import TriggerRule, get_current_context, task

    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.airflow_kit.approval import DECIDE_TASK_ID
    from sanvi_ops.airflow_kit.signoff import TASK_TIMEOUT, extend_for_wait
    from sanvi_ops.core.config import format_duration, load_config

    cfg = load_config()
    current = DagContext.get_current()
    if current is None:
        raise ValueError("publish(changes=...) must be called inside a DAG definition")
    dag_id = current.dag_id
    task_ids = [c.operator.task_id for c in checks]
    due = cfg.change_management.pir_due
    team_key = _team_key(cfg, dag_id)
    team = cfg.teams[team_key]

    @task(task_id=CHANGE_TASK_ID, trigger_rule=TriggerRule.ALL_DONE)
    def record_change_task() -> dict[str, Any]:
        """Store this run's change record (standard / normal / emergency); nothing when it changed nothing."""
        return record_change(task_ids, get_current_context(), when)

    changed = record_change_task()
    recorded >> changed
    if DECIDE_TASK_ID not in current.task_dict:
        return changed  # no approval gate: a pre-approved procedure, always standard, never reviewed
    review = _review_operator()(
        task_id=REVIEW_TASK_ID,
        subject=f"Post-implementation review of an emergency change: {dag_id}",
        body=(
            f"An emergency change to production was made by **{dag_id}** (run `{{{{ run_id }}}}`, "
            f"reason: {{{{ params.get('reason') or 'not given' }}}}). The guide requires a "
            f"post-implementation review: what happened, the outcome, and the follow-up."
        ),
        spec={
            "kind": "form",
            "team": team_key,
            "team_name": team.name,
            "mention": team.slack,
            "on_timeout": cfg.change_management.pir_on_timeout,
            "escalate": True,
            "as_result": True,
            "fail_on_reject": False,
        },
        precheck=_needs_review,
        params=_review_form(),
        response_timeout=due,
        execution_timeout=TASK_TIMEOUT,
        doc_md=f"Post-implementation review of an emergency change by {team.name}, due within "
        f"{format_duration(due)}; skipped for standard and normal changes. Unanswered, it is "
        "escalated to the team lead.",
    )
    changed >> review
    extend_for_wait(current, due)
    return review
