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
- ``request_review``: for an emergency change only (skipped otherwise), triggers a run of the
  ``change_review`` DAG (``dags/meta/change_review.py``) with the change's ``dag_id`` and
  ``run_id`` as its conf, and finishes at once: the changing run never waits for the review
  (its ``dagrun_timeout``, deadline alert and next scheduled run are untouched).

The ``change_review`` run holds the review (:func:`review_task`): a form for the changed DAG's
responsible team under *Required actions*, due on the record's ``pir_due_at``
(``change_management.pir_due`` after the change); the answer (or the missed deadline, escalated
to ``on_call.team_lead`` by the sign-off path) is stored on the change record and as a
``signoff.post_implementation_review`` result of the review run.

``changes`` may be a callable of the run's Params and the work's results that says whether this
run changed production at all (a DR drill only in its DR-site scope: :func:`when_result`). A DAG
without an approval gate gets no review request (its changes are always standard).
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
REQUEST_TASK_ID = "request_review"

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


def review_run_id(dag_id: str, run_id: str) -> str:
    """The ``change_review`` run of one change: one per change, so a retried request opens no second one."""
    return f"review__{dag_id}__{run_id}"


def _request_operator() -> type:
    """``TriggerDagRunOperator`` that triggers ``change_review`` for an emergency change only
    (imported lazily: the operator comes from the standard provider)."""
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    class RequestReview(TriggerDagRunOperator):
        def execute(self, context: Any) -> Any:
            from airflow.sdk.exceptions import AirflowSkipException

            change = context["ti"].xcom_pull(task_ids=CHANGE_TASK_ID, default=None) or {}
            kind = change.get("change_type")
            if kind != "emergency":
                raise AirflowSkipException(
                    f"no review needed: {kind} change" if kind else "no review needed: nothing was changed"
                )
            dag_run = context["dag_run"]
            self.trigger_run_id = review_run_id(dag_run.dag_id, dag_run.run_id)
            self.conf = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id}
            return super().execute(context)

    return RequestReview


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


def _change_of(context: Mapping[str, Any]) -> tuple[str, str]:
    """The reviewed change's ``dag_id`` and ``run_id`` (the ``change_review`` run's conf)."""
    conf = getattr(context["dag_run"], "conf", None) or {}
    params = context.get("params") or {}
    dag_id = str(conf.get("dag_id") or params.get("dag_id") or "")
    run_id = str(conf.get("run_id") or params.get("run_id") or "")
    if not dag_id or not run_id:
        raise ValueError("change_review needs the changed run's dag_id and run_id in its conf")
    return dag_id, run_id


def _change_store() -> Any:
    from sanvi_ops.airflow_kit.publish import results_store
    from sanvi_ops.core.change_records import ChangeStore
    from sanvi_ops.core.config import load_config

    store = results_store(load_config())
    return ChangeStore(store.dsn, name=store.name)


def _review_operator() -> type:
    """:class:`~sanvi_ops.airflow_kit.signoff.RecordedEntry` for one change: it asks the changed
    DAG's team, waits until the record's due date, and stores the answer (or the missed deadline)
    on the change record (imported lazily: the HITL operators come from the standard provider)."""
    from sanvi_ops.airflow_kit.signoff import RecordedEntry

    class PostImplementationReview(RecordedEntry):
        def _bind(self, context: Mapping[str, Any]) -> tuple[str, str]:
            """Ask the changed DAG's team (the review DAG serves every DAG that changes production)."""
            from sanvi_ops.core.config import load_config

            dag_id, run_id = _change_of(context)
            cfg = load_config()
            team_key = _team_key(cfg, dag_id)
            team = cfg.teams[team_key]
            self.spec = {**self.spec, "team": team_key, "team_name": team.name, "mention": team.slack}
            return dag_id, run_id

        def execute(self, context: Any) -> Any:
            from airflow.sdk.exceptions import AirflowSkipException

            dag_id, run_id = self._bind(context)
            record = _change_store().get(dag_id, run_id)
            if record is None or not record.needs_review:
                raise ValueError(f"change_records: no emergency change recorded for {dag_id}/{run_id}")
            if record.pir_outcome != "pending":
                raise AirflowSkipException(f"the review of {dag_id}/{run_id} is already {record.pir_outcome}")
            # Due when the record says (ended_at + pir_due), however late this run started.
            now = dt.datetime.now(dt.UTC)
            self.response_timeout = max(record.pir_due_at - now, dt.timedelta(seconds=1))
            self.body = _review_body(record)
            return super().execute(context)

        def _answered(self, context: Mapping[str, Any], event: dict[str, Any]) -> dict[str, Any]:
            self._bind(context)
            try:
                out = super()._answered(context, event)
            except Exception:
                if event.get("error_type") == "timeout" or event.get("timedout"):
                    _store_review(context, {"outcome": "timed_out"})
                raise
            _store_review(context, out)
            return out

    return PostImplementationReview


def _review_body(record: Any) -> str:
    """The review request: the change as recorded (what, why, who, the plan, the verification)."""
    lines = [
        f"An emergency change to production was made by **{record.dag_id}** (run `{record.run_id}`), "
        f"requested by {record.requested_by}: {record.reason or 'no reason given'}. The guide requires "
        "a post-implementation review: what happened, the outcome, and the follow-up.",
        "",
        f"- verification: **{record.status.value}** "
        + ", ".join(f"{n} {s}" for s, n in sorted(record.counts.items())),
        *(f"- {line}" for line in record.plan),
    ]
    if record.url:
        lines.append(f"- the run: {record.url}")
    return "\n".join(lines)


def _store_review(context: Mapping[str, Any], out: Mapping[str, Any]) -> None:
    dag_id, run_id = _change_of(context)
    done = out.get("outcome") == "approved"
    at = (
        dt.datetime.fromisoformat(out["responded_at"]) if out.get("responded_at") else dt.datetime.now(dt.UTC)
    )
    _change_store().review_answered(
        dag_id,
        run_id,
        "done" if done else "timed_out",
        at=at,
        by=out.get("by") if done else None,
        form=out.get("form") if done else None,
    )


def review_task() -> Any:
    """The ``change_review`` DAG's one task: the post-implementation review of the change named by
    the run's conf (``dag_id``, ``run_id``), due on the record's ``pir_due_at``."""
    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.airflow_kit.signoff import TASK_TIMEOUT, extend_for_wait
    from sanvi_ops.core.config import format_duration, load_config

    cfg = load_config()
    due = cfg.change_management.pir_due
    team_key = cfg.change_management.team
    team = cfg.teams[team_key]
    review = _review_operator()(
        task_id=REVIEW_TASK_ID,
        subject="Post-implementation review of the emergency change {{ params.dag_id }} ({{ params.run_id }})",
        spec={
            "kind": "form",
            "team": team_key,  # replaced by the changed DAG's team when the run starts
            "team_name": team.name,
            "mention": team.slack,
            "on_timeout": cfg.change_management.pir_on_timeout,
            "escalate": True,
            "as_result": True,
            "fail_on_reject": False,
        },
        params=_review_form(),
        response_timeout=due,
        execution_timeout=TASK_TIMEOUT,
        doc_md=f"Post-implementation review of an emergency change by the changed DAG's team, due "
        f"{format_duration(due)} after the change; unanswered, it is escalated to the team lead.",
    )
    extend_for_wait(DagContext.get_current(), due)
    return review


def change_tasks(checks: tuple[Any, ...], recorded: Any, when: ChangesWhen) -> Any:
    """Add ``record_change`` and, in a DAG with an approval gate (the only ones whose changes can be
    emergencies), ``request_review`` after ``recorded`` (publish's ``record``); returns the last
    task added. The review itself waits in its own ``change_review`` run, never in this one."""
    from airflow.sdk import TriggerRule, get_current_context, task

    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.airflow_kit.approval import DECIDE_TASK_ID
    from sanvi_ops.core.calendar import CHANGE_REVIEW_DAG_ID

    current = DagContext.get_current()
    if current is None:
        raise ValueError("publish(changes=...) must be called inside a DAG definition")
    task_ids = [c.operator.task_id for c in checks]

    @task(task_id=CHANGE_TASK_ID, trigger_rule=TriggerRule.ALL_DONE)
    def record_change_task() -> dict[str, Any]:
        """Store this run's change record (standard / normal / emergency); nothing when it changed nothing."""
        return record_change(task_ids, get_current_context(), when)

    changed = record_change_task()
    recorded >> changed
    if DECIDE_TASK_ID not in current.task_dict:
        return changed  # no approval gate: a pre-approved procedure, always standard, never reviewed
    request = _request_operator()(
        task_id=REQUEST_TASK_ID,
        trigger_dag_id=CHANGE_REVIEW_DAG_ID,
        # A paused change_review would hold the review forever: fail loudly instead (unpause it
        # and clear this task).
        fail_when_dag_is_paused=True,
        skip_when_already_exists=True,
        wait_for_completion=False,
        openlineage_inject_parent_info=False,
        doc_md=f"For an emergency change only (skipped otherwise): triggers `{CHANGE_REVIEW_DAG_ID}`, "
        "whose run asks the responsible team for the post-implementation review. This run does "
        "not wait for it.",
    )
    changed >> request
    return request
