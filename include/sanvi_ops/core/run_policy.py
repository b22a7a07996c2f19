"""When may a destructive DAG change things? The guide's deployment-window rules as one function.

The guide's "Deployment Windows" table says when changes to an environment may be made and who
approves one outside that window (Production: Tue & Thu 22:00–02:00; otherwise "with approval"
of the Product Owner & CTO). For a DAG that changes an environment (VACUUM on the production
database) that becomes, per run:

====================================  ==========================================================
run                                   what happens
====================================  ==========================================================
``dry_run: yes``                      dry run, any time, no approval
scheduled run                         changes (the calendar put it in its maintenance window;
                                      the DAG still refuses if it starts outside it)
manual, a window open                 changes: the DAG's own maintenance window or the
                                      environment's regular deployment window is open
manual, outside, ``dry_run: auto``    **dry run** (the default: nothing changes by accident)
manual, outside, ``dry_run: no``      waits for approval by every approver of the environment
                                      (``emergency: with_approval``); with ``emergency:
                                      anytime`` it changes without waiting
====================================  ==========================================================

After the approvals: all approved → the run changes things (outside the windows, as approved);
any rejected or unanswered by the deadline → refused cleanly: a ``skipped`` result saying who
rejected (or that time ran out) and nothing changed.

Pure: no Airflow, no database, the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from sanvi_ops.core.config import DeploymentPolicy, DeploymentWindow, Weekday

DryRun = Literal["auto", "yes", "no"]
DRY_RUN_CHOICES: Final[tuple[DryRun, ...]] = ("auto", "yes", "no")
Action = Literal["change", "dry_run", "approval"]


@dataclass(frozen=True)
class Decision:
    """What a run may do, decided before it does anything (travels by XCom as a dict)."""

    action: Action
    reason: str
    scheduled: bool
    #: Names of the windows open when the decision was made (empty: outside every window).
    open_windows: tuple[str, ...] = ()
    #: Keys of ``contacts`` whose approval is needed (only when ``action == "approval"``).
    approvers: tuple[str, ...] = ()

    @property
    def needs_approval(self) -> bool:
        return self.action == "approval"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["open_windows"] = list(self.open_windows)
        data["approvers"] = list(self.approvers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            action=data["action"],
            reason=str(data["reason"]),
            scheduled=bool(data["scheduled"]),
            open_windows=tuple(data.get("open_windows") or ()),
            approvers=tuple(data.get("approvers") or ()),
        )


@dataclass(frozen=True)
class Verdict:
    """The decision after the approvals were answered: what the work task does."""

    change: bool  # False: dry run or refused
    dry_run: bool
    refused: bool
    reason: str
    scheduled: bool
    #: The run may change things although its maintenance window is closed (a person approved, or
    #: the environment's deployment window is open).
    outside_window_ok: bool = False
    answers: Mapping[str, str] = field(default_factory=dict)


def window_text(window: DeploymentWindow, timezone: str) -> str:
    """``Tue & Thu 22:00–02:00 UTC`` / ``anytime``."""
    if window.anytime:
        return "anytime"
    assert window.start is not None and window.end is not None
    days = " & ".join(Weekday(d).label[:3] for d in window.days)
    return f"{days} {window.start:%H:%M}–{window.end:%H:%M} {timezone}"


def decide(
    *,
    dry_run: str,
    scheduled: bool,
    now: dt.datetime,
    timezone: str,
    environment: str,
    policy: DeploymentPolicy,
    maintenance_window: DeploymentWindow | None = None,
) -> Decision:
    """Decide a run before it starts (see the module docstring for the table).

    :param dry_run: the run's ``dry_run`` Param: ``auto``, ``yes`` or ``no``.
    :param scheduled: the scheduler started the run (run type ``scheduled``).
    :param now: when the run starts its work (timezone-aware).
    :param environment: key of ``deployment_windows`` the run changes (for the messages).
    :param policy: that environment's row of the deployment-window table.
    :param maintenance_window: the DAG's own window (``tasks.database_maintenance.settings.window``), if it has one.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if dry_run not in DRY_RUN_CHOICES:
        raise ValueError(f"dry_run must be one of {', '.join(DRY_RUN_CHOICES)}, got {dry_run!r}")
    windows = {f"{environment} deployment window ({window_text(policy.regular, timezone)})": policy.regular}
    if maintenance_window is not None:
        windows[f"maintenance window ({window_text(maintenance_window, timezone)})"] = maintenance_window
    open_now = tuple(name for name, w in windows.items() if w.is_open(now, timezone))
    local = now.astimezone(ZoneInfo(timezone))
    when = f"{local:%A %H:%M} {timezone}"
    if dry_run == "yes":
        return Decision("dry_run", "dry run asked for (dry_run: yes)", scheduled, open_now)
    if scheduled:
        return Decision("change", "scheduled run (the calendar's maintenance slot)", scheduled, open_now)
    if open_now:
        return Decision("change", f"manual run inside the {open_now[0]}", scheduled, open_now)
    closed = " and ".join(windows)
    if dry_run == "auto":
        return Decision(
            "dry_run",
            f"manual run at {when}, outside the {closed}: dry run by default "
            "(trigger with dry_run: no to ask for approval to change)",
            scheduled,
        )
    if policy.emergency == "anytime":
        return Decision(
            "change",
            f"manual run at {when} outside the {closed}; {environment} allows changes any time",
            scheduled,
        )
    return Decision(
        "approval",
        f"manual run at {when} outside the {closed} asks to change {environment}: "
        f"needs the approval of {', '.join(policy.approvers)}",
        scheduled,
        (),
        tuple(policy.approvers),
    )


def verdict(decision: Decision, answers: Mapping[str, Mapping[str, Any] | None]) -> Verdict:
    """Combine the decision with the approvals' outcomes.

    :param answers: per approver key, the stored outcome (``{"outcome": "approved", "by": ...,
        "comment": ...}``) or ``None`` when the approval task produced nothing (it failed).
    """
    if decision.action == "dry_run":
        return Verdict(False, True, False, decision.reason, decision.scheduled)
    if decision.action == "change":
        return Verdict(
            True,
            False,
            False,
            decision.reason,
            decision.scheduled,
            outside_window_ok=not decision.scheduled,
        )
    outcomes: dict[str, str] = {}
    problems: list[str] = []
    for approver in decision.approvers:
        answer = answers.get(approver)
        if not answer:
            outcomes[approver] = "missing"
            problems.append(f"{approver}: no answer recorded (the approval task failed)")
            continue
        outcome = str(answer.get("outcome"))
        outcomes[approver] = outcome
        if outcome == "approved":
            continue
        by = answer.get("by") or approver
        comment = str(answer.get("comment") or "").strip()
        if outcome == "rejected":
            problems.append(f"rejected by {by} ({approver})" + (f': "{comment}"' if comment else ""))
        elif outcome == "timed_out":
            problems.append(f"{approver} did not answer by the deadline")
        else:
            problems.append(f"{approver}: {outcome}")
    if problems:
        return Verdict(
            False,
            False,
            True,
            f"refused: {'; '.join(problems)}. Nothing was changed.",
            decision.scheduled,
            answers=outcomes,
        )
    names = ", ".join(f"{(answers.get(a) or {}).get('by') or a} ({a})" for a in decision.approvers)
    return Verdict(
        True,
        False,
        False,
        f"approved outside the window by {names}",
        decision.scheduled,
        outside_window_ok=True,
        answers=outcomes,
    )


def approver_task_id(contact_key: str) -> str:
    """``approve_cto``: the approval task of one approver."""
    return f"approve_{contact_key}"


def approver_tasks(approvers: Sequence[str]) -> list[str]:
    return [approver_task_id(a) for a in approvers]
