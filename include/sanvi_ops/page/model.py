"""What the page shows: one dataclass per table row, and :class:`PageData` for the whole page.

:mod:`~sanvi_ops.page.queries` fills them from the results store; the templates show them. The
plugin's JSON route (``api/page``) is ``dataclasses.asdict`` of a :class:`PageData`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sanvi_ops.core.incidents import ResponseSummary
from sanvi_ops.core.silences import MAX_SILENCE
from sanvi_ops.page.changes import ChangeRow

#: The guide's four tables, in its order, then the jobs the config adds (database backups).
CADENCE_TITLES: Final[Mapping[str, str]] = {
    "daily": "Daily Tasks",
    "weekly": "Weekly Tasks",
    "monthly": "Monthly Tasks",
    "quarterly": "Quarterly Tasks",
    "annually": "Annual Reviews",
    "backups": "Other scheduled jobs (backups, meta-monitoring)",
}


@dataclass(frozen=True)
class CalendarRow:
    dag_id: str
    title: str
    team: str
    schedule: str
    next_run: dt.datetime | None
    last_run: dt.datetime | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    #: The summary of the run's worst result (what a person reads first).
    last_summary: str = ""
    checks: int = 0

    @property
    def worst_result(self) -> str:
        """An all-green run needs no detail; otherwise its worst result is what to read first."""
        if self.last_status == "ok":
            return f"{self.checks} check{'s' if self.checks != 1 else ''} ok"
        return self.last_summary


@dataclass(frozen=True)
class IncidentRow:
    id: int
    dag_id: str
    check: str
    severity: str
    summary: str
    opened_at: dt.datetime
    last_update_at: dt.datetime
    age: dt.timedelta
    #: Who acknowledged it (an Airflow user, or a Slack user id), when, and their note (migration 016).
    acknowledged_by: str | None = None
    acknowledged_at: dt.datetime | None = None
    ack_note: str = ""

    @property
    def ref(self) -> str:
        return f"#{self.id}"


@dataclass(frozen=True)
class SilenceRow:
    id: int
    dag_id: str | None
    check_pattern: str | None
    reason: str
    created_by: str
    source: str
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class SignoffRow:
    """A sign-off, findings form or approval still waiting for a person (table ``signoffs``, 009)."""

    id: int
    dag_id: str
    kind: str
    team: str
    subject: str
    requested_at: dt.datetime
    deadline: dt.datetime
    url: str

    @property
    def answer_url(self) -> str | None:
        """The link to answer it: Airflow paths and http(s) only (no ``javascript:``)."""
        return self.url if self.url.startswith(("/", "http://", "https://")) else None


@dataclass(frozen=True)
class SloRow:
    name: str
    target: str
    measured: str
    #: ``met``, ``missed`` or ``unknown`` (nothing measured yet).
    state: str
    source: str
    at: dt.datetime | None = None


@dataclass(frozen=True)
class RecoveryPoint:
    kind: str
    dag_id: str
    run_id: str
    started_at: dt.datetime
    rto_seconds: float
    status: str
    #: The test's phases (``recovery_tests.details.phases``): name, seconds, bytes, mb_per_s, in_rto.
    phases: tuple[Mapping[str, Any], ...] = ()
    #: The drill's components (``recovery_tests.details.components``, DR full system / DR site):
    #: name → status, seconds, rto_seconds (when it was recovered, since the drill's start).
    components: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationRow:
    id: int
    dag_id: str
    kind: str
    channel: str
    text: str
    created_at: dt.datetime
    #: ``sent``, ``pending`` or ``given up``.
    state: str
    attempts: int
    last_error: str | None

    @property
    def first_line(self) -> str:
        """What the page shows of the message: its first line, at most 200 characters."""
        text = self.text.strip()
        return text.splitlines()[0][:200] if text else ""


@dataclass
class PageData:
    now: dt.datetime
    timezone: str
    calendar: dict[str, list[CalendarRow]]
    incidents: list[IncidentRow] = field(default_factory=list)
    silences: list[SilenceRow] = field(default_factory=list)
    silences_available: bool = False
    signoffs: list[SignoffRow] = field(default_factory=list)
    slos: list[SloRow] = field(default_factory=list)
    recovery: list[RecoveryPoint] = field(default_factory=list)
    recovery_objective_s: float = 3600.0
    #: Capacity planning's newest ``rto_forecast`` result: (status, summary, recorded_at).
    rto_forecast: tuple[str, str, dt.datetime] | None = None
    notifications: list[NotificationRow] = field(default_factory=list)
    undelivered: list[NotificationRow] = field(default_factory=list)
    pending_count: int = 0
    given_up_count: int = 0
    #: Things a person should know about the page itself (store unreachable, schema missing).
    problems: list[str] = field(default_factory=list)
    #: Why the store could not be read at all (unreachable, connection missing): the page is then
    #: answered with HTTP 503 and this reason (it is also in :attr:`problems`).
    unavailable: str | None = None
    dag_ids: list[str] = field(default_factory=list)
    #: Longest a silence may last (config ``silence_max_duration``): the form's upper bound.
    max_silence: dt.timedelta = MAX_SILENCE
    #: Response time (detected → acknowledged) per severity against the guide's Response Time,
    #: over the last 90 days (:func:`sanvi_ops.core.incidents.response_summary`).
    responses: list[ResponseSummary] = field(default_factory=list)
    #: Whether the store can record acknowledgements yet (store migration 016).
    acks_available: bool = False
    #: Production changes of the last 90 days (store migration 020; page/changes.py).
    changes: list[ChangeRow] = field(default_factory=list)
