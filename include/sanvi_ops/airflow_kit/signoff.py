"""Human sign-offs as one call in a DAG file, on the standard provider's HITL operators.

::

    checks = publish(check_spend(), find_idle_resources())
    sign_off(checks, subject="Quarterly cost review")

adds a task ``sign_off`` after the ``publish`` tail that, even when the evidence run is red
(``trigger_rule=all_done``):

1. stores a ``pending`` request (table ``signoffs``) and posts ``[SIGN-OFF]`` to Slack through
   the outbox, mentioning the responsible team (``signoffs.dags.<dag_id>.team`` in the config,
   the guide's "Responsible" column) with a link to the task's *Required actions* page;
2. waits in Airflow's ``awaiting_input`` state (``ApprovalOperator``: Approve/Reject and a
   comment; or ``HITLEntryOperator`` with a typed form when ``form=`` is given) for at most the
   configured ``deadline``; ``assigned_users`` limit who may answer;
3. stores the outcome (``approved`` / ``rejected`` / ``timed_out``, who answered, when, the form)
   in ``signoffs`` and as a ``signoff.<task_id>`` result of the run, and posts it to Slack (in
   the request's thread) — stored before sent;
4. rejected: the task fails with the reason, so the run is red. Timed out: the result has the
   configured severity (``on_timeout``: warning or critical; critical fails the task) and
   ``[ESCALATION]`` goes to ``on_call.team_lead``.

Retries (the frame's 2) only repeat a request whose outcome could not be stored (the store was
down): a rejection or a missed deadline fails with ``AirflowFailException``, which never retries,
and an answered request is never re-opened in the store.

The DAG's ``dagrun_timeout`` (and its overdue-run deadline alert) is lengthened by the deadline, so the run is not killed while the
team has time to answer. :class:`RecordedApproval` is also the approval step of
:mod:`sanvi_ops.airflow_kit.approval` (there a rejection refuses the change instead of failing).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.standard.operators.hitl import ApprovalOperator, HITLEntryOperator, HITLOperator

if TYPE_CHECKING:
    from sanvi_ops.core.results import CheckResult
    from sanvi_ops.core.signoffs import Answer, Request

log = logging.getLogger(__name__)

#: How long the request phase (store, Slack) and the resume phase may take; the wait itself is
#: bounded by the response timeout (the deadline), not by this.
TASK_TIMEOUT = dt.timedelta(minutes=10)

#: Form-level Param of every approval: why the person decided as they did.
COMMENT_PARAM = "comment"

FormResults = Callable[[str, Mapping[str, Any]], "list[CheckResult]"]
Precheck = Callable[[Mapping[str, Any]], "str | None"]


def _comment_param() -> Any:
    from airflow.sdk import Param

    return Param(
        "",
        type="string",
        title="Comment",
        description="Why you approve or reject (stored with your answer and posted to Slack)",
    )


class _Recording:
    """What the sign-off and approval operators share: request, wait, record, report.

    ``spec`` (plain data, so the operator stays a plain attribute bag) holds: ``kind``
    (signoff | form | approval), ``team`` / ``team_name`` / ``mention`` (who answers),
    ``on_timeout`` (warning | critical), ``escalate`` (bool: tell the team lead on timeout),
    ``as_result`` (store the outcome as a ``signoff.*`` result), ``fail_on_reject`` (bool),
    ``approve_option`` (``"Approve"``, or ``None`` for a form).
    """

    spec: dict[str, Any]
    precheck: Precheck | None
    form_results: FormResults | None

    # Provided by HITLOperator.
    task_id: str
    response_timeout: dt.timedelta | None
    body: str | None

    def execute(self, context: Any) -> Any:
        self._ask(context)
        return super().execute(context)  # type: ignore[misc]

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        return self._answered(context, event)

    def _request(self, context: Mapping[str, Any]) -> Request:
        from sanvi_ops.airflow_kit.publish import run_url
        from sanvi_ops.core.signoffs import Request

        dag_run = context["dag_run"]
        now = dt.datetime.now(dt.UTC)
        base = run_url(dag_run.dag_id, dag_run.run_id).split("/dags/")[0]
        try:
            url = HITLOperator.generate_link_to_ui(
                self,  # type: ignore[arg-type]
                task_instance=context["task_instance"],
                base_url=base,
            )
        except ValueError:
            url = ""
        return Request(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            task_id=self.task_id,
            kind=self.spec["kind"],
            team=self.spec["team"],
            team_name=self.spec["team_name"],
            mention=self.spec["mention"],
            subject=str(getattr(self, "subject", "")),
            requested_at=now,
            deadline=now + (self.response_timeout or dt.timedelta(days=3650)),
            url=url,
        )

    def _ask(self, context: Mapping[str, Any]) -> None:
        """Before waiting: store the request, put it in the outbox, deliver it."""
        from sanvi_ops.airflow_kit.connections import postgres_dsn
        from sanvi_ops.airflow_kit.publish import deliver
        from sanvi_ops.core.config import load_config
        from sanvi_ops.core.signoffs import SignoffStore, request_message

        if self.precheck is not None:
            why_not = self.precheck(context)
            if why_not:
                from airflow.sdk.exceptions import AirflowSkipException

                raise AirflowSkipException(why_not)
        cfg = load_config()
        store = SignoffStore(
            postgres_dsn(cfg.connections.store), name=f"results store ({cfg.connections.store!r})"
        )
        store.require_current()
        request = self._request(context)
        evidence = _evidence(store, request) if self.spec["kind"] != "approval" else ""
        self.body = "\n\n".join(part for part in (self.body or "", evidence) if part)
        store.save_request(request)
        text, blocks = request_message(request, self.body or "", _tz(cfg.timezone))
        store.enqueue(
            _key(request), request.dag_id, request.run_id, "signoff", cfg.slack.channel, text, blocks
        )
        deliver(request.dag_id)
        log.info("Asked %s: %s (deadline %s)", request.team_name, request.subject, request.deadline)

    def _answered(self, context: Mapping[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        """After the answer (or the deadline): validate, store, report, then pass or fail."""
        from sanvi_ops.core.signoffs import Outcome, answer_from_event

        now = dt.datetime.now(dt.UTC)
        timed_out = event.get("error_type") == "timeout" or bool(event.get("timedout"))
        if not timed_out:
            # The provider's validation of options and form fields (and its summary), without
            # ApprovalOperator's skipping of downstream tasks: our outcome is reported, not skipped.
            HITLOperator.execute_complete(self, context, event)  # type: ignore[arg-type]
        answer = answer_from_event(event, approve_option=self.spec["approve_option"], now=now)
        request = self._request(context)
        request = _with_stored_times(request)
        stored = self._record(context, request, answer, now)
        out = {
            "outcome": answer.outcome.value,
            "by": answer.by if answer.responder else None,
            "comment": answer.comment,
            "form": dict(answer.form),
            "responded_at": answer.responded_at.isoformat() if answer.responded_at else None,
        }
        from airflow.sdk.exceptions import AirflowFailException

        from sanvi_ops.airflow_kit.publish import FindingsReported

        # The FindingsReported marker tells the failure callback the outcome is already reported.
        if answer.outcome is Outcome.REJECTED and self.spec["fail_on_reject"]:
            raise AirflowFailException(f"{FindingsReported.__name__}: sign-off {stored[0].summary}")
        red = [r for r in stored if r.status.value in ("critical", "error")]
        if red and self.spec["kind"] != "approval":
            raise AirflowFailException(f"{FindingsReported.__name__}: " + "; ".join(r.summary for r in red))
        return out

    def _record(
        self, context: Mapping[str, Any], request: Request, answer: Answer, now: dt.datetime
    ) -> list[CheckResult]:
        from sanvi_ops.airflow_kit.connections import postgres_dsn
        from sanvi_ops.airflow_kit.publish import deliver
        from sanvi_ops.core.config import load_config
        from sanvi_ops.core.signoffs import (
            Outcome,
            SignoffStore,
            escalation_message,
            outcome_message,
            outcome_result,
        )

        cfg = load_config()
        store = SignoffStore(
            postgres_dsn(cfg.connections.store), name=f"results store ({cfg.connections.store!r})"
        )
        store.save_answer(request, answer)
        result = outcome_result(request, answer, on_timeout=self.spec["on_timeout"])
        results = [result]
        if self.form_results is not None and answer.outcome is Outcome.APPROVED:
            results += self.form_results(request.task_id, answer.form)
        if self.spec["as_result"]:
            store.save_results(request.dag_id, request.run_id, context.get("logical_date"), results)
        text, blocks = outcome_message(request, answer, result)
        for extra in results[1:]:
            text += f"\n{extra.summary}"
        store.enqueue(
            f"{_key(request)}:outcome",
            request.dag_id,
            request.run_id,
            "signoff",
            cfg.slack.channel,
            text,
            blocks,
            _key(request),
        )
        if answer.outcome is Outcome.TIMED_OUT and self.spec["escalate"]:
            text, blocks = escalation_message(request, cfg.on_call.team_lead, result.status.value, now)
            store.enqueue(
                f"{_key(request)}:escalation",
                request.dag_id,
                request.run_id,
                "escalation",
                cfg.slack.channel,
                text,
                blocks,
            )
        deliver(request.dag_id)
        return results


def _key(request: Request) -> str:
    return f"signoff:{request.dag_id}:{request.run_id}:{request.task_id}"


def _tz(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _with_stored_times(request: Request) -> Request:
    """The request as stored when it was asked (its real deadline), if the row is there."""
    from dataclasses import replace

    from sanvi_ops.airflow_kit.connections import postgres_dsn
    from sanvi_ops.core.config import load_config
    from sanvi_ops.core.signoffs import SignoffStore

    cfg = load_config()
    store = SignoffStore(
        postgres_dsn(cfg.connections.store), name=f"results store ({cfg.connections.store!r})"
    )
    for row in store.signoffs(request.dag_id):
        if row.run_id == request.run_id and row.task_id == request.task_id:
            return replace(
                request, requested_at=row.requested_at, deadline=row.deadline, url=row.url or request.url
            )
    return request


def _evidence(store: Any, request: Request) -> str:
    """The run's results (worst first) as Markdown for the request's body."""
    from sanvi_ops.core.results import SEVERITY_ORDER

    results = store.results_for_run(request.dag_id, request.run_id)
    if not results:
        return ""
    ordered = sorted(results, key=lambda r: -SEVERITY_ORDER[r.status])[:25]
    lines = [f"- **{r.status.value}** `{r.check}`: {r.summary}" for r in ordered]
    more = len(results) - len(ordered)
    if more > 0:
        lines.append(f"- … and {more} more (see the run's `record` task)")
    return "**Evidence from this run**\n\n" + "\n".join(lines)


class RecordedApproval(_Recording, ApprovalOperator):
    """``ApprovalOperator`` (Approve / Reject + a comment) that stores and reports its outcome."""

    def __init__(
        self,
        *,
        spec: dict[str, Any],
        precheck: Precheck | None = None,
        form_results: FormResults | None = None,
        **kwargs: Any,
    ) -> None:
        self.spec = {**spec, "approve_option": ApprovalOperator.APPROVE}
        self.precheck = precheck
        self.form_results = form_results
        kwargs.setdefault("params", {COMMENT_PARAM: _comment_param()})
        super().__init__(**kwargs)


class RecordedEntry(_Recording, HITLEntryOperator):
    """``HITLEntryOperator`` (a typed form, one OK button) that stores and reports the entry."""

    def __init__(
        self,
        *,
        spec: dict[str, Any],
        precheck: Precheck | None = None,
        form_results: FormResults | None = None,
        **kwargs: Any,
    ) -> None:
        self.spec = {**spec, "approve_option": None}
        self.precheck = precheck
        self.form_results = form_results
        # No defaults: an unanswered form times out (the scheduler's sweep) instead of being
        # "submitted" with its default values.
        kwargs.setdefault("options", [HITLEntryOperator.OK])
        super().__init__(**kwargs)


def hitl_users(users: Any) -> list[dict[str, str]] | None:
    """Config ``AirflowUser`` list → the operators' ``assigned_users`` (``None``: anyone allowed)."""
    return [{"id": u.id, "name": u.name} for u in users] or None


def extend_for_wait(dag: Any, wait: dt.timedelta) -> None:
    """Give a DAG room for a human wait: its ``dagrun_timeout`` and its overdue-run deadline
    alerts (``DeadlineAlert.interval``) grow by ``wait``, so a run waiting for an answer is
    neither killed nor reported overdue before the answer's own deadline."""
    if dag is None:
        return
    if dag.dagrun_timeout is not None:
        dag.dagrun_timeout = dag.dagrun_timeout + wait
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline] if dag.deadline else []
    for alert in alerts:
        if isinstance(getattr(alert, "interval", None), dt.timedelta):
            alert.interval = alert.interval + wait


def _extend_run_timeout(deadline: dt.timedelta) -> None:
    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    extend_for_wait(DagContext.get_current(), deadline)


def sign_off(
    after: Any,
    *,
    subject: str,
    body: str = "",
    dag_id: str | None = None,
    team_key: str | None = None,
    deadline: dt.timedelta | None = None,
    on_timeout: Literal["warning", "critical"] | None = None,
    form: Mapping[str, Any] | None = None,
    form_results: FormResults | None = None,
    task_id: str = "sign_off",
) -> Any:
    """Wait for the responsible team's sign-off after ``after`` (the ``publish(...)`` tail).

    :param after: task(s)/XComArg the sign-off comes after; it runs however they ended.
    :param subject: the question's headline in the UI and in Slack (Jinja-templated).
    :param body: Markdown shown above the run's evidence (which is added automatically).
    :param dag_id: whose ``signoffs.dags`` entry to use; default the DAG being defined.
    :param team_key: overrides the entry's team (a key of ``teams``).
    :param deadline: overrides the entry's deadline; ``on_timeout`` overrides its severity.
    :param form: typed ``Param``s: the team fills in a form (``HITLEntryOperator``) instead of
        Approve/Reject; submitting it counts as ``approved``.
    :param form_results: turns a submitted form into more results (e.g. the findings).
    :returns: the sign-off operator (so more can be chained after it).
    """
    # No public API names the DAG being defined (Airflow 3.3); the SDK's own @task reads this too.
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from sanvi_ops.core.config import load_config

    cfg = load_config()
    current = DagContext.get_current()
    dag_id = dag_id or (current.dag_id if current is not None else None)
    if not dag_id:
        raise ValueError("sign_off() needs dag_id= when called outside a DAG definition")
    entry = cfg.signoffs.spec(dag_id)
    team_key = team_key or entry.team
    if team_key not in cfg.teams:
        raise KeyError(
            f"signoffs.dags.{dag_id}.team: {team_key!r} is not a key of teams ({', '.join(cfg.teams)})"
        )
    team = cfg.teams[team_key]
    wait = deadline or entry.deadline
    spec = {
        "kind": "form" if form else "signoff",
        "team": team_key,
        "team_name": team.name,
        "mention": team.slack,
        "on_timeout": on_timeout or entry.on_timeout,
        "escalate": True,
        "as_result": True,
        "fail_on_reject": True,
    }
    common: dict[str, Any] = {
        "task_id": task_id,
        "subject": subject,
        "body": body or None,
        "spec": spec,
        "form_results": form_results,
        "assigned_users": hitl_users(entry.assigned_users),
        "response_timeout": wait,
        "execution_timeout": TASK_TIMEOUT,
        "trigger_rule": "all_done",
        "doc_md": f"Sign-off by {team.name}: answer under *Required actions* within "
        f"{_duration(wait)}; unanswered, it is escalated to the team lead.",
    }
    operator: Any = RecordedEntry(params=dict(form), **common) if form else RecordedApproval(**common)
    _extend_run_timeout(wait)
    after >> operator
    return operator


def _duration(delta: dt.timedelta) -> str:
    from sanvi_ops.core.config import format_duration

    return format_duration(delta)
