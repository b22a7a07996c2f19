"""When a later run closes an open incident: by component and target, not by exact check name.

Check names are built the same way everywhere: ``<component>[.<part>…][.<target>|[<target>]]``
(``rds.sanvi-production-db``, ``rds.pending_maintenance[sanvi-production-db]``,
``restore.amcheck``, ``dr.database.rto``), and a check that could not look at its parts at all
reports one result for the whole unit: the bare component when a health component timed out
(``rds``), or the unit with a *whole-unit* suffix when a restore or drill could not even start
(``restore.run``, ``dr.database.run``, ``<task>.task``, ``<x>.connection``, ``<x>.guard``).
The healthy run that follows names the parts instead, so matching on the exact name left such
incidents open for ever.

Two definitions, used by the notifier and nothing else:

* the **component** of a result is its ``component`` field, else the first segment of its name;
* the **scope** of a check name is the name without a whole-unit suffix (``restore.run`` →
  ``restore``; ``rds`` → ``rds``); a name is *in* a scope when it is the scope or starts with
  ``<scope>.`` / ``<scope>[``.

An open incident (check ``C``, component ``K``) is closed by a later run of its DAG when:

1. the run has a result named ``C``: it closes when that result is ok or warning, as before;
2. else the run has results of component ``K`` in ``C``'s scope (``rds.sanvi-production-db`` for
   ``rds``; ``restore.amcheck``… for ``restore.run``): it closes when every one that ran (not
   skipped) is ok or warning, and none of them ran means "not checked this time";
3. else the check is gone from the run: it closes as **no longer checked** when the run was
   complete (no ``error`` result, no check left out by the ``checks`` Param) and no result whose
   scope covers ``C`` (``rds`` for ``rds.x``) is anything but ok or warning.

Anything else leaves the incident open: a check that did not run this time says nothing about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from sanvi_ops.core.results import CheckResult, Status

__all__ = [
    "HEALTHY",
    "WHOLE_UNIT_SUFFIXES",
    "Closure",
    "closure_for",
    "component_of",
    "in_scope",
    "scope_of",
]

#: Statuses that close an incident: the critical condition is gone (a warning is reported in the
#: summary, and a new incident opens if it turns critical again).
HEALTHY: Final = frozenset({Status.OK, Status.WARNING})

#: Last name segments that stand for "the whole unit could not be checked".
WHOLE_UNIT_SUFFIXES: Final = frozenset({"run", "task", "connection", "guard"})

_FIRST_SEGMENT = re.compile(r"[.\[]")
_LEFT_OUT = ".not_selected"


def component_of(check: str, component: str = "") -> str:
    """The component a result is about: its ``component`` field, else its name's first segment."""
    return component or _FIRST_SEGMENT.split(check, maxsplit=1)[0]


def scope_of(check: str) -> str:
    """``restore.run`` → ``restore``; ``dr.database.run`` → ``dr.database``; anything else itself."""
    head, _, last = check.rpartition(".")
    return head if head and last in WHOLE_UNIT_SUFFIXES else check


def in_scope(scope: str, check: str) -> bool:
    """Whether ``check`` is ``scope`` or one of its parts (``scope.x``, ``scope[x]``)."""
    return check == scope or check.startswith((scope + ".", scope + "["))


@dataclass(frozen=True)
class Closure:
    """Why a run closes an incident: ``healthy`` (with the results that say so) or
    ``no longer checked`` (the check is gone from a complete run)."""

    reason: Literal["healthy", "no longer checked"]
    evidence: tuple[CheckResult, ...] = ()

    def describe(self, check: str, run_id: str) -> str:
        """The ``Resolution:`` line of the ``[RESOLVED]`` message."""
        if self.reason == "no longer checked":
            return (
                f"{check} is no longer checked: run {run_id} completed without it "
                "(no check failed to run, none was left out)"
            )
        first = self.evidence[0]
        if len(self.evidence) == 1 and first.check == check:
            return f"{check} is {first.status.value} again in run {run_id}: {first.summary}"
        named = ", ".join(f"{r.check} {r.status.value}" for r in self.evidence[:3])
        more = f" and {len(self.evidence) - 3} more" if len(self.evidence) > 3 else ""
        return f"{check} is healthy again in run {run_id}: {named}{more} ({first.summary})"


def closure_for(check: str, component: str, results: Sequence[CheckResult]) -> Closure | None:
    """Whether ``results`` (one later run of the incident's DAG) close the incident on ``check``
    of ``component`` (see the module docstring); ``None`` leaves it open."""
    exact = [r for r in results if r.check == check]
    if exact:
        return Closure("healthy", (exact[0],)) if exact[0].status in HEALTHY else None
    component = component_of(check, component)
    scope = scope_of(check)
    related = [
        r for r in results if in_scope(scope, r.check) and component_of(r.check, r.component) == component
    ]
    if related:
        ran = [r for r in related if r.status is not Status.SKIPPED]
        if ran and all(r.status in HEALTHY for r in ran):
            return Closure("healthy", tuple(ran))
        return None
    covering = [r for r in results if in_scope(scope_of(r.check), check)]
    if any(r.status not in HEALTHY for r in covering):
        return None
    complete = all(r.status is not Status.ERROR and not r.check.endswith(_LEFT_OUT) for r in results)
    return Closure("no longer checked") if complete and results else None
