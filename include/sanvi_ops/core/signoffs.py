"""Human sign-offs and approvals: the record (table ``signoffs``), the outcome and the Slack texts.

A sign-off is a question put to a person through Airflow's human-in-the-loop operators (the
glue is :mod:`sanvi_ops.airflow_kit.signoff`): a quarterly review's team signs off the evidence, the
Security team enters a penetration test's findings, the Product Owner and the CTO approve a
production change outside the deployment window. Each request is stored when it is made
(``pending``) and updated once with its outcome:

- ``approved``: the person approved (or submitted the form);
- ``rejected``: the person rejected it; a review's run turns red with the reason;
- ``timed_out``: nobody answered before the deadline; stored as a ``signoff.*`` result of the
  configured severity and escalated to the team lead.

Pure except for :class:`SignoffStore` (the results store's database): no Airflow here, so the
rules and texts are unit-tested without a scheduler.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from psycopg.types.json import Jsonb

from sanvi_ops.core.notify import render
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore

Kind = Literal["signoff", "form", "approval"]

#: Slack's limit for one section's text, less room for the headline.
_BODY_LIMIT: Final = 2500


class Outcome(enum.StrEnum):
    """What became of a request (the ``signoffs.outcome`` column)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class Request:
    """A question put to a team or role through a human-in-the-loop task."""

    dag_id: str
    run_id: str
    task_id: str
    kind: Kind
    team: str  # key of ``teams`` (sign-offs) or ``contacts`` (approvals)
    team_name: str
    mention: str  # Slack handle(s) of whoever must answer
    subject: str
    requested_at: datetime
    deadline: datetime
    url: str = ""

    def __post_init__(self) -> None:
        for name in ("requested_at", "deadline"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")

    @property
    def check(self) -> str:
        """The name of the result this request's outcome is stored as."""
        return f"signoff.{self.task_id}"


@dataclass(frozen=True)
class Answer:
    """The outcome of a request as read from the human-in-the-loop event."""

    outcome: Outcome
    responder: Mapping[str, str] | None = None  # {"id": ..., "name": ...}
    responded_at: datetime | None = None
    form: Mapping[str, Any] = field(default_factory=dict)

    @property
    def by(self) -> str:
        """Who answered, for people."""
        if not self.responder:
            return "nobody"
        return str(self.responder.get("name") or self.responder.get("id") or "unknown user")

    @property
    def comment(self) -> str:
        return str(self.form.get("comment") or "").strip()


def answer_from_event(event: Mapping[str, Any], *, approve_option: str | None, now: datetime) -> Answer:
    """Read the operator's resume event: a response, a timeout default, or a timeout error.

    :param approve_option: the option that means "approved" (``"Approve"``); ``None`` for a form,
        where any submission counts as approved.
    """
    if event.get("error_type") == "timeout" or event.get("timedout"):
        return Answer(Outcome.TIMED_OUT, None, now, dict(event.get("params_input") or {}))
    if "error" in event:
        raise ValueError(f"human-in-the-loop event error: {event.get('error')} ({event.get('error_type')})")
    chosen = list(event.get("chosen_options") or [])
    if approve_option is None:
        outcome = Outcome.APPROVED
    else:
        outcome = Outcome.APPROVED if approve_option in chosen else Outcome.REJECTED
    responded_at = event.get("responded_at")
    if isinstance(responded_at, str):
        responded_at = datetime.fromisoformat(responded_at)
    user = event.get("responded_by_user")
    responder = {"id": str(user.get("id", "")), "name": str(user.get("name", ""))} if user else None
    return Answer(outcome, responder, responded_at or now, dict(event.get("params_input") or {}))


def outcome_result(
    request: Request, answer: Answer, *, on_timeout: Literal["warning", "critical"] = "warning"
) -> CheckResult:
    """The ``signoff.<task>`` result stored with the run's other results."""
    who = request.team_name or request.team
    details: dict[str, Any] = {
        "outcome": answer.outcome.value,
        "team": request.team,
        "deadline": request.deadline.isoformat(),
        "form": dict(answer.form),
    }
    if answer.responder:
        details["responder"] = dict(answer.responder)
    said = f' ("{answer.comment}")' if answer.comment else ""
    if answer.outcome is Outcome.APPROVED:
        status = Status.OK
        summary = f"{request.subject}: approved by {answer.by} for {who}{said}"
    elif answer.outcome is Outcome.REJECTED:
        status = Status.CRITICAL
        summary = f"{request.subject}: rejected by {answer.by} for {who}{said}"
    elif answer.outcome is Outcome.TIMED_OUT:
        status = Status(on_timeout)
        summary = (
            f"{request.subject}: no answer from {who} by the deadline "
            f"({request.deadline:%Y-%m-%d %H:%M %Z}); escalated to the team lead"
        )
    else:
        raise ValueError("a pending request has no outcome result")
    return CheckResult(
        check=request.check,
        status=status,
        summary=summary,
        details=details,
        component="signoff",
    )


# ------------------------------------------------------------------------------ Slack texts


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[: render.MAX_SECTION_CHARS]}}


def _button(url: str, label: str) -> list[dict[str, Any]]:
    return render.link_button(label, url, "open_required_action")


def request_message(request: Request, body: str, tz: Any) -> tuple[str, list[dict[str, Any]]]:
    """``[SIGN-OFF]`` / ``[APPROVAL]``: ask the team, with the deadline and the link to answer."""
    tag = "[APPROVAL]" if request.kind == "approval" else "[SIGN-OFF]"
    deadline = request.deadline.astimezone(tz)
    headline = f"{tag} {request.subject}"
    lines = [
        f"{render.mention(request.mention)}: {'your approval' if request.kind == 'approval' else 'your sign-off'} "
        f"is needed ({request.team_name or request.team}).",
        f"Answer in Airflow under *Required actions* by {deadline:%a %d %b %Y %H:%M %Z}.",
    ]
    if request.url:
        lines.append(f"Link: {request.url}")
    text = "\n".join([headline, *lines])
    blocks = [
        _section(f"*{render.escape(headline)}*\n" + "\n".join(lines)),
        *([_section(render.clean(body, _BODY_LIMIT))] if body.strip() else []),
        *_button(request.url, "Answer in Airflow"),
    ]
    return text, blocks


def outcome_message(
    request: Request, answer: Answer, result: CheckResult
) -> tuple[str, list[dict[str, Any]]]:
    """The outcome, posted in the run's Slack thread."""
    emoji = render.STATUS_EMOJI[result.status]
    text = f"{emoji} {render.clean(result.summary)}"
    fields = [
        f"• {render.escape(str(k))}: {render.clean(str(v), 300)}"
        for k, v in answer.form.items()
        if k != "comment" and v not in (None, "")
    ]
    blocks = [
        _section(text + ("\n" + "\n".join(fields) if fields else "")),
        *_button(request.url, "Open in Airflow"),
    ]
    return text, blocks


def escalation_message(
    request: Request, team_lead: str, severity: str, now: datetime
) -> tuple[str, list[dict[str, Any]]]:
    """The missed deadline, to the team lead (the guide's path: on-call → team lead → CTO)."""
    overdue = render.format_duration(max(now - request.deadline, timedelta(0)))
    text = (
        f"[ESCALATION] {request.subject}: {request.team_name or request.team} did not answer by "
        f"{request.deadline:%Y-%m-%d %H:%M %Z} (overdue {overdue}). "
        f"{render.mention(team_lead)}: please follow up; the run is marked {severity}."
    )
    return text, [_section(render.clean(text, _BODY_LIMIT)), *_button(request.url, "Open in Airflow")]


# ------------------------------------------------------------------------------------ store


@dataclass(frozen=True)
class StoredSignoff:
    """One row of ``signoffs``."""

    dag_id: str
    run_id: str
    task_id: str
    kind: str
    team: str
    team_name: str
    subject: str
    requested_at: datetime
    deadline: datetime
    outcome: Outcome
    responded_at: datetime | None
    responder: Mapping[str, str] | None
    form: Mapping[str, Any]
    url: str


class SignoffStore(ResultStore):
    """The results store's ``signoffs`` table (migration 009)."""

    def save_request(self, request: Request) -> None:
        """Record a request as ``pending``; a retried task re-opens nothing already answered."""
        with self._connect(
            f"record sign-off request {request.dag_id}/{request.run_id}/{request.task_id}"
        ) as conn:
            conn.execute(
                """
                INSERT INTO signoffs (dag_id, run_id, task_id, kind, team, team_name, subject,
                                      requested_at, deadline, url)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (dag_id, run_id, task_id) DO UPDATE SET
                    deadline = EXCLUDED.deadline, subject = EXCLUDED.subject, url = EXCLUDED.url
                WHERE signoffs.outcome = 'pending'
                """,
                [
                    request.dag_id,
                    request.run_id,
                    request.task_id,
                    request.kind,
                    request.team,
                    request.team_name,
                    request.subject,
                    request.requested_at,
                    request.deadline,
                    request.url,
                ],
            )

    def save_answer(self, request: Request, answer: Answer) -> None:
        """Record the outcome (the request row is created too if it was somehow missing)."""
        if answer.outcome is Outcome.PENDING:
            raise ValueError("an answer cannot be pending")
        self.save_request(request)
        with self._connect(
            f"record sign-off outcome {request.dag_id}/{request.run_id}/{request.task_id}"
        ) as conn:
            conn.execute(
                """
                UPDATE signoffs SET outcome = %s, responded_at = %s, responder = %s, form = %s
                WHERE dag_id = %s AND run_id = %s AND task_id = %s
                """,
                [
                    answer.outcome.value,
                    answer.responded_at,
                    Jsonb(dict(answer.responder)) if answer.responder else None,
                    Jsonb(dict(answer.form)),
                    request.dag_id,
                    request.run_id,
                    request.task_id,
                ],
            )

    def signoffs(self, dag_id: str | None = None, *, pending_only: bool = False) -> list[StoredSignoff]:
        """Requests, newest first (optionally one DAG's, optionally only those still pending)."""
        with self._connect("read sign-offs") as conn:
            rows = conn.execute(
                """
                SELECT * FROM signoffs
                WHERE (%(dag_id)s::text IS NULL OR dag_id = %(dag_id)s)
                  AND (NOT %(pending)s OR outcome = 'pending')
                ORDER BY requested_at DESC, id DESC
                """,
                {"dag_id": dag_id, "pending": pending_only},
            ).fetchall()
        return [_row(r) for r in rows]


def _row(row: Mapping[str, Any]) -> StoredSignoff:
    return StoredSignoff(
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        task_id=row["task_id"],
        kind=row["kind"],
        team=row["team"],
        team_name=row["team_name"],
        subject=row["subject"],
        requested_at=row["requested_at"],
        deadline=row["deadline"],
        outcome=Outcome(row["outcome"]),
        responded_at=row["responded_at"],
        responder=row["responder"],
        form=row["form"] or {},
        url=row["url"],
    )


def form_findings_result(task_id: str, form: Mapping[str, Any]) -> CheckResult:
    """A penetration test's entered outcome as a result: ``fail`` or any critical finding is
    critical, ``partial`` or any high finding a warning, else ok."""
    outcome = str(form.get("outcome") or "").lower()
    counts = {sev: int(form.get(f"findings_{sev}") or 0) for sev in ("critical", "high", "medium", "low")}
    tester = str(form.get("tester") or "").strip() or "not named"
    listed = ", ".join(f"{n} {sev}" for sev, n in counts.items()) or "none"
    if outcome == "fail" or counts["critical"] > 0:
        status = Status.CRITICAL
    elif outcome not in ("pass", "partial"):
        status = Status.WARNING
        outcome = "outcome not given (re-run the DAG to record it)"
    elif outcome == "partial" or counts["high"] > 0:
        status = Status.WARNING
    else:
        status = Status.OK
    report = str(form.get("report_url") or "").strip()
    summary = f"penetration test {outcome} (tester {tester}); findings: {listed}"
    if report:
        summary += f"; report {report}"
    return CheckResult(
        check=f"{task_id}.findings",
        status=status,
        summary=summary,
        metric="findings",
        observed=float(sum(counts.values())),
        details={"form": dict(form), "counts": counts},
        component="penetration_test",
    )


def requested_for(names: Sequence[str]) -> str:
    """``"Product Owner & CTO"`` for people."""
    return " & ".join(names)
