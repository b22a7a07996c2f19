"""When may a destructive DAG change things? The guide's deployment-window rules as one value.

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

The rules produce one :class:`RunPolicy` per run, in three steps that each return a new one:
:func:`decide` before the run does anything (the ``decide_run`` task; it travels by XCom as a
dict), :meth:`RunPolicy.answered` with the approvers' answers, and :meth:`RunPolicy.at_start`
when the work starts (a scheduled run that finds its maintenance window closed, queued too long,
is refused there: the one window refusal). The work task reads only the value: ``dry_run``,
``changes`` or ``refused`` (with the reason to report).

Pure: no Airflow, no database, the clock is an argument.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from sanvi_ops.core.config import DeploymentPolicy, DeploymentWindow
from sanvi_ops.core.windows import Window

DryRun = Literal["auto", "yes", "no"]
DRY_RUN_CHOICES: Final[tuple[DryRun, ...]] = ("auto", "yes", "no")
Action = Literal["change", "dry_run", "approval", "refused"]


@dataclass(frozen=True)
class RunPolicy:
    """What a run may do and why: one value, decided before the run, completed by the approvals
    and the clock, handed to the work task (JSON-shaped for XCom: :meth:`as_dict`)."""

    action: Action
    #: Said in the run's summary: why this run changes things, only reports, or was refused.
    reason: str
    #: The scheduler started the run (run type ``scheduled``).
    scheduled: bool
    #: The run may change things while its maintenance window is closed (a person started it
    #: inside a window, or it was approved). A scheduled run may not: the calendar put it in its
    #: window, and if it starts outside (queued too long) it is refused.
    outside_window_ok: bool = False
    #: Names of the windows open when the run was decided (empty: outside every window).
    open_windows: tuple[str, ...] = ()
    #: Keys of ``contacts`` whose approval is needed (only when ``action == "approval"``).
    approvers: tuple[str, ...] = ()
    #: Per approver, the outcome (``approved``, ``rejected``, ``timed_out``, ``missing``).
    answers: Mapping[str, str] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return self.action == "change"

    @property
    def dry_run(self) -> bool:
        return self.action == "dry_run"

    @property
    def refused(self) -> bool:
        return self.action == "refused"

    @property
    def needs_approval(self) -> bool:
        return self.action == "approval"

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["open_windows"] = list(self.open_windows)
        data["approvers"] = list(self.approvers)
        data["answers"] = dict(self.answers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunPolicy:
        return cls(
            action=data["action"],
            reason=str(data["reason"]),
            scheduled=bool(data["scheduled"]),
            outside_window_ok=bool(data.get("outside_window_ok", False)),
            open_windows=tuple(data.get("open_windows") or ()),
            approvers=tuple(data.get("approvers") or ()),
            answers=dict(data.get("answers") or {}),
        )

    def answered(self, answers: Mapping[str, Mapping[str, Any] | None]) -> RunPolicy:
        """The policy once the approvers answered: ``change`` (outside the window, as approved)
        or ``refused`` naming who rejected or did not answer. Any other policy is returned as is.

        :param answers: per approver key, the stored outcome (``{"outcome": "approved", "by": ...,
            "comment": ...}``) or ``None`` when the approval task produced nothing (it failed).
        """
        if not self.needs_approval:
            return self
        outcomes: dict[str, str] = {}
        problems: list[str] = []
        for approver in self.approvers:
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
            return dataclasses.replace(
                self,
                action="refused",
                reason=f"refused: {'; '.join(problems)}. Nothing was changed.",
                answers=outcomes,
            )
        names = ", ".join(f"{(answers.get(a) or {}).get('by') or a} ({a})" for a in self.approvers)
        return dataclasses.replace(
            self,
            action="change",
            reason=f"approved outside the window by {names}",
            outside_window_ok=True,
            answers=outcomes,
        )

    def at_start(self, now: dt.datetime, window: Window) -> RunPolicy:
        """The policy as the work starts at ``now`` in its maintenance ``window``: a run that may
        change things only inside the window and finds it closed is refused (the one window
        refusal, saying how to run anyway). Idempotent; a dry run or a refusal is returned as is.
        """
        if self.needs_approval:
            raise ValueError("the policy still waits for approvals: call answered() first")
        if not self.changes or self.outside_window_ok or window.is_open(now):
            return self
        late = "Queued too long in the pool? " if self.scheduled else ""
        return dataclasses.replace(
            self,
            action="refused",
            reason=(
                f"refused: outside the maintenance window ({window}); it is {window.clock(now)}. "
                f"Nothing was changed. {late}Trigger it by hand inside the window, or with "
                "dry_run: no (it then waits for the approvers of the deployment-window table), "
                "or dry_run: yes to see the plan."
            ),
        )


#: A run the scheduler started: it changes things inside its maintenance window, and only there.
AS_SCHEDULED: Final = RunPolicy("change", "scheduled run (the calendar's maintenance slot)", scheduled=True)


def decide(
    *,
    dry_run: str,
    scheduled: bool,
    now: dt.datetime,
    timezone: str,
    environment: str,
    policy: DeploymentPolicy,
    maintenance_window: DeploymentWindow | None = None,
) -> RunPolicy:
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
    regular = policy.regular.in_zone(timezone)
    windows = {f"{environment} deployment window ({regular})": regular}
    if maintenance_window is not None:
        own = maintenance_window.in_zone(timezone)
        windows[f"maintenance window ({own})"] = own
    open_now = tuple(name for name, w in windows.items() if w.is_open(now))

    def run(action: Action, reason: str, **kw: Any) -> RunPolicy:
        return RunPolicy(action, reason, scheduled, open_windows=open_now, **kw)

    if dry_run == "yes":
        return run("dry_run", "dry run asked for (dry_run: yes)")
    if scheduled:
        return dataclasses.replace(AS_SCHEDULED, open_windows=open_now)
    if open_now:
        return run("change", f"manual run inside the {open_now[0]}", outside_window_ok=True)
    when = regular.clock(now)
    closed = " and ".join(windows)
    if dry_run == "auto":
        return run(
            "dry_run",
            f"manual run at {when}, outside the {closed}: dry run by default "
            "(trigger with dry_run: no to ask for approval to change)",
        )
    if policy.emergency == "anytime":
        return run(
            "change",
            f"manual run at {when} outside the {closed}; {environment} allows changes any time",
            outside_window_ok=True,
        )
    return run(
        "approval",
        f"manual run at {when} outside the {closed} asks to change {environment}: "
        f"needs the approval of {', '.join(policy.approvers)}",
        approvers=tuple(policy.approvers),
    )


def approver_task_id(contact_key: str) -> str:
    """``approve_cto``: the approval task of one approver."""
    return f"approve_{contact_key}"


def all_approved(answers: Mapping[str, Mapping[str, Any] | None]) -> tuple[bool, str]:
    """``(go, why)``: every approver approved? From each approver's answer (``None``: no answer recorded)."""
    refused = {k: (a or {}).get("outcome") or "no answer" for k, a in answers.items()}
    refused = {k: v for k, v in refused.items() if v != "approved"}
    if not answers:
        return False, "no approver configured"
    if refused:
        return False, "not approved: " + ", ".join(f"{k} {v}" for k, v in refused.items())
    return True, "approved by " + ", ".join(f"{k} ({(a or {}).get('by') or '?'})" for k, a in answers.items())
