"""Change records: every run that changes production, typed and documented from the run itself.

The guide's "Change Management" names three change types and a seven-step process. A DAG run
that changes production (a VACUUM that ran, an RDS restore to a new instance, a DR-site
activation) leaves one :class:`ChangeRecord` in the results store (table ``change_records``,
migration 020), typed by :func:`change_type` from the run's
:class:`~sanvi_ops.core.run_policy.RunPolicy`:

==========================================================  ============
the run                                                     type
==========================================================  ============
scheduled (the calendar's slot, held to its window)         standard
started by hand while a window was open                     standard
outside every window, approved by the approvers             normal
outside every window, declared an emergency (``emergency``  emergency
Param), or through the environment's emergency path
(``deployment_windows.<env>.emergency: anytime``, no
approval asked)
==========================================================  ============

A run that changed nothing (a dry run, a refusal) has no record. Each process step is a field
filled from the run: request (who or what started it and why), assess (the policy's decision and
the plan), approve (the approvers' answers), schedule (the window), implement (the run), verify
(its results' statuses), document (the link to the run). An emergency change opens a
post-implementation review (PIR), due ``change_management.pir_due`` after the change; the
review's state (:func:`pir_state`) is ``pending``, ``late``, ``done`` or ``timed_out``.

Pure except for :class:`ChangeStore` (the results store's database): no Airflow here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from psycopg.types.json import Jsonb

from sanvi_ops.core.results import CheckResult, Status, worst
from sanvi_ops.core.run_policy import RunPolicy
from sanvi_ops.core.store import ResultStore

ChangeType = Literal["standard", "normal", "emergency"]
CHANGE_TYPES: Final[tuple[ChangeType, ...]] = ("standard", "normal", "emergency")

#: Who requests a scheduled run.
SCHEDULER: Final = "scheduler"

PirOutcome = Literal["pending", "done", "timed_out"]
#: What the page shows for a review: stored outcomes, plus ``late`` (pending past its due date).
PirState = Literal["not required", "pending", "late", "done", "timed_out"]

#: At most this many result summaries are kept as the plan (the run's own results stay in the store).
_PLAN_LINES: Final = 10


def change_type(policy: RunPolicy, *, emergency: bool = False) -> ChangeType | None:
    """The guide's change type of a run under ``policy``; ``None`` when the run changes nothing.

    :param emergency: the person who started the run declared it an emergency (the ``emergency``
        Param). Only a change made outside every window can be one: inside a window the routine
        (standard) path applies, which needs no review.
    """
    if not policy.changes:
        return None
    if policy.scheduled:
        return "standard"
    if policy.open_windows and not policy.approvers:
        return "standard"  # a person started it inside a window: the routine, pre-approved slot
    if emergency:
        return "emergency"
    if policy.approvers:
        return "normal"
    # Outside every window with nobody asked: the environment lets emergency changes through.
    return "emergency"


@dataclass(frozen=True)
class ApprovalEntry:
    """One approver's answer (the Approve step)."""

    approver: str  # key of ``contacts``
    outcome: str  # approved | rejected | timed_out | missing
    by: str = ""
    at: str = ""  # ISO time of the answer
    comment: str = ""

    @classmethod
    def from_answer(cls, approver: str, answer: Mapping[str, Any] | None) -> ApprovalEntry:
        """From the approval task's XCom (``{"outcome", "by", "comment", "responded_at"}``)."""
        if not answer:
            return cls(approver, "missing")
        return cls(
            approver,
            str(answer.get("outcome") or "missing"),
            str(answer.get("by") or ""),
            str(answer.get("responded_at") or ""),
            str(answer.get("comment") or ""),
        )


@dataclass(frozen=True)
class ChangeRecord:
    """One production change, a field per step of the guide's process."""

    dag_id: str
    run_id: str
    environment: str
    change_type: ChangeType
    # Request
    requested_by: str
    reason: str
    # Assess
    decision: str
    plan: tuple[str, ...]
    # Approve
    approvals: tuple[ApprovalEntry, ...]
    # Schedule
    window: str
    in_window: bool
    # Implement
    started_at: dt.datetime | None
    ended_at: dt.datetime
    # Verify
    status: Status
    counts: Mapping[str, int]
    # Document
    url: str
    # Post-implementation review (emergency only)
    pir_due_at: dt.datetime | None = None
    pir_outcome: PirOutcome | None = None
    pir_at: dt.datetime | None = None
    pir_by: str | None = None
    pir_form: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.change_type not in CHANGE_TYPES:
            raise ValueError(
                f"change_type must be one of {', '.join(CHANGE_TYPES)}, got {self.change_type!r}"
            )
        if (self.change_type == "emergency") != (self.pir_due_at is not None):
            raise ValueError("an emergency change, and only one, has a post-implementation review due date")
        for name in ("started_at", "ended_at", "pir_due_at", "pir_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware")

    @property
    def needs_review(self) -> bool:
        return self.change_type == "emergency"

    def pir_state(self, now: dt.datetime) -> PirState:
        return pir_state(self.pir_due_at, self.pir_outcome, now)

    def as_dict(self) -> dict[str, Any]:
        """JSON-shaped (the evidence pack, XCom, the page's JSON)."""

        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "environment": self.environment,
            "change_type": self.change_type,
            "request": {"requested_by": self.requested_by, "reason": self.reason},
            "assessment": {"decision": self.decision, "plan": list(self.plan)},
            "approval": [a.__dict__ for a in self.approvals],
            "schedule": {"window": self.window, "in_window": self.in_window},
            "implement": {"started_at": iso(self.started_at), "ended_at": iso(self.ended_at)},
            "verify": {"status": self.status.value, "counts": dict(self.counts)},
            "document": {"url": self.url},
            "post_implementation_review": {
                "due_at": iso(self.pir_due_at),
                "outcome": self.pir_outcome,
                "at": iso(self.pir_at),
                "by": self.pir_by,
                "form": dict(self.pir_form),
            }
            if self.needs_review
            else None,
        }


def pir_state(due_at: dt.datetime | None, outcome: str | None, now: dt.datetime) -> PirState:
    """The review's state at ``now``: ``late`` is a pending review past its due date."""
    if due_at is None or outcome is None:
        return "not required"
    if outcome == "pending":
        return "late" if now >= due_at else "pending"
    if outcome in ("done", "timed_out"):
        return outcome  # type: ignore[return-value]
    raise ValueError(f"unknown post-implementation review outcome {outcome!r}")


def requested_by(run_type: str, triggering_user: str | None) -> str:
    """``scheduler`` for a scheduled run, else the Airflow user who triggered it (or what did)."""
    kind = str(run_type).lower()
    if kind.endswith("scheduled"):
        return SCHEDULER
    if triggering_user:
        return triggering_user
    return kind.rsplit(".", 1)[-1] or "unknown"


def build_record(
    *,
    dag_id: str,
    run_id: str,
    environment: str,
    policy: RunPolicy,
    results: Sequence[CheckResult],
    run_type: str,
    triggering_user: str | None,
    reason: str,
    window: str,
    started_at: dt.datetime | None,
    ended_at: dt.datetime,
    url: str,
    answers: Mapping[str, Mapping[str, Any] | None] | None = None,
    emergency: bool = False,
    pir_due: dt.timedelta = dt.timedelta(days=5),
) -> ChangeRecord | None:
    """The change record of one run, or ``None`` when the run changed nothing.

    :param policy: the run's policy as the work task applied it (approvals answered).
    :param results: the work task's results (the plan, and the verification).
    :param reason: why, as the person said it (the ``reason`` Param or the run's note); empty
        means the policy's own reason is used.
    :param window: the window the change was held to, as text (``str(Window)``).
    :param answers: per approver key, the approval task's answer.
    :param pir_due: how long after ``ended_at`` an emergency change's review is due.
    """
    kind = change_type(policy, emergency=emergency)
    if kind is None:
        return None
    if any((r.details or {}).get("run_policy", {}).get("action") == "refused" for r in results):
        return None  # the work refused at its start (its window had closed): nothing changed
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status.value] = counts.get(r.status.value, 0) + 1
    headline = [r for r in results if r.check.endswith(".run")] or list(results)
    plan = tuple(f"{r.check}: {r.summary}" for r in headline[:_PLAN_LINES])
    approvals = tuple(ApprovalEntry.from_answer(a, (answers or {}).get(a)) for a in policy.approvers)
    return ChangeRecord(
        dag_id=dag_id,
        run_id=run_id,
        environment=environment,
        change_type=kind,
        requested_by=requested_by(run_type, triggering_user),
        reason=reason.strip() or policy.reason,
        decision=policy.reason,
        plan=plan,
        approvals=approvals,
        window=window,
        in_window=bool(policy.open_windows) or policy.scheduled,
        started_at=started_at,
        ended_at=ended_at,
        status=worst(list(results)) if results else Status.OK,
        counts=counts,
        url=url,
        pir_due_at=ended_at + pir_due if kind == "emergency" else None,
        pir_outcome="pending" if kind == "emergency" else None,
    )


def review_subject(record: ChangeRecord) -> str:
    """The PIR's headline (the HITL form's subject and the Slack request)."""
    return f"Post-implementation review of the emergency change {record.dag_id} ({record.run_id})"


# ------------------------------------------------------------------------------------ store


class ChangeStore(ResultStore):
    """The results store's ``change_records`` table (migration 020)."""

    def save(self, record: ChangeRecord) -> None:
        """Insert the run's record; a retried task updates it, never touching an answered review."""
        a = record.as_dict()
        with self._connect(f"record change {record.dag_id}/{record.run_id}") as conn:
            conn.execute(
                """
                INSERT INTO change_records (dag_id, run_id, environment, change_type, requested_by,
                    reason, assessment, approvals, change_window, in_window, started_at, ended_at,
                    status, counts, url, pir_due_at, pir_outcome)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (dag_id, run_id) DO UPDATE SET
                    change_type = EXCLUDED.change_type, requested_by = EXCLUDED.requested_by,
                    reason = EXCLUDED.reason, assessment = EXCLUDED.assessment,
                    approvals = EXCLUDED.approvals, change_window = EXCLUDED.change_window,
                    in_window = EXCLUDED.in_window, started_at = EXCLUDED.started_at,
                    ended_at = EXCLUDED.ended_at, status = EXCLUDED.status, counts = EXCLUDED.counts,
                    url = EXCLUDED.url,
                    pir_due_at = COALESCE(change_records.pir_due_at, EXCLUDED.pir_due_at),
                    pir_outcome = COALESCE(change_records.pir_outcome, EXCLUDED.pir_outcome)
                WHERE change_records.pir_outcome IS DISTINCT FROM 'done'
                """,
                [
                    record.dag_id,
                    record.run_id,
                    record.environment,
                    record.change_type,
                    record.requested_by,
                    record.reason,
                    Jsonb(a["assessment"]),
                    Jsonb(a["approval"]),
                    record.window,
                    record.in_window,
                    record.started_at,
                    record.ended_at,
                    record.status.value,
                    Jsonb(dict(record.counts)),
                    record.url,
                    record.pir_due_at,
                    record.pir_outcome,
                ],
            )

    def review_answered(
        self,
        dag_id: str,
        run_id: str,
        outcome: PirOutcome,
        *,
        at: dt.datetime,
        by: str | None = None,
        form: Mapping[str, Any] | None = None,
    ) -> None:
        """Store the review's outcome (``done`` with who and the form, or ``timed_out``)."""
        if outcome == "pending":
            raise ValueError("a review's answer cannot be pending")
        with self._connect(f"record the post-implementation review of {dag_id}/{run_id}") as conn:
            cur = conn.execute(
                """
                UPDATE change_records SET pir_outcome = %s, pir_at = %s, pir_by = %s, pir_form = %s
                WHERE dag_id = %s AND run_id = %s AND pir_due_at IS NOT NULL
                """,
                [outcome, at, by, Jsonb(dict(form or {})), dag_id, run_id],
            )
            if cur.rowcount != 1:
                raise KeyError(f"change_records: no emergency change recorded for {dag_id}/{run_id}")

    def get(self, dag_id: str, run_id: str) -> ChangeRecord | None:
        with self._connect(f"read change {dag_id}/{run_id}") as conn:
            row = conn.execute(
                "SELECT * FROM change_records WHERE dag_id = %s AND run_id = %s", [dag_id, run_id]
            ).fetchone()
        return _record(row) if row else None

    def changes(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 1000,
    ) -> list[ChangeRecord]:
        """Records whose change ended in ``[since, until)``, newest first."""
        with self._connect("read change records") as conn:
            rows = conn.execute(
                """
                SELECT * FROM change_records
                WHERE (%(since)s::timestamptz IS NULL OR ended_at >= %(since)s)
                  AND (%(until)s::timestamptz IS NULL OR ended_at < %(until)s)
                ORDER BY ended_at DESC, id DESC
                LIMIT %(limit)s
                """,
                {"since": since, "until": until, "limit": limit},
            ).fetchall()
        return [_record(r) for r in rows]


def _record(row: Mapping[str, Any]) -> ChangeRecord:
    assessment = row["assessment"] or {}
    return ChangeRecord(
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        environment=row["environment"],
        change_type=row["change_type"],
        requested_by=row["requested_by"],
        reason=row["reason"],
        decision=str(assessment.get("decision") or ""),
        plan=tuple(assessment.get("plan") or ()),
        approvals=tuple(ApprovalEntry(**a) for a in row["approvals"] or ()),
        window=row["change_window"],
        in_window=row["in_window"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=Status(row["status"]),
        counts=row["counts"] or {},
        url=row["url"],
        pir_due_at=row["pir_due_at"],
        pir_outcome=row["pir_outcome"],
        pir_at=row["pir_at"],
        pir_by=row["pir_by"],
        pir_form=row["pir_form"] or {},
    )


def evidence(records: Iterable[ChangeRecord], now: dt.datetime) -> dict[str, Any]:
    """The quarter's changes for the compliance evidence pack: counts per type and each record."""
    items = list(records)
    return {
        "counts": {t: sum(1 for r in items if r.change_type == t) for t in CHANGE_TYPES},
        "reviews_late": sum(1 for r in items if r.pir_state(now) in ("late", "timed_out")),
        "records": [{**r.as_dict(), "pir_state": r.pir_state(now)} for r in items],
    }


def quarter_evidence(dsn: str, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    """:func:`evidence` of the changes that ended in ``[since, until)``, read from the store at ``dsn``
    (the compliance audit's evidence pack)."""
    return evidence(ChangeStore(dsn).changes(since=since, until=until, limit=100_000), now)
