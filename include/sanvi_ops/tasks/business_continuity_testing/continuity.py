"""Annual Business Continuity Testing: a year of drills, then a game day.

- :func:`drill_record`: every recovery test of the year (``recovery_tests``: the weekly restore
  test, the DR Testing's drills of each scope) per kind: how many, how many failed, the worst
  recovery time against the guide's objective (``slos.recovery_time_minutes``). A required kind
  with no test, a failed test or a recovery time over the objective is a finding.
- :func:`game_day_result`: one drill the game day ran (a DR Testing run with a given scope): the
  run's state and its stored results and recovery time.
- :func:`game_day_run_id`: the run id the game day gives each drill, so its results can be
  found in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sanvi_ops.core.annual_review import jsonable
from sanvi_ops.core.results import SEVERITY_ORDER, CheckResult, Status


def game_day_run_id(run_id: str, scope: str) -> str:
    """``business_continuity__<this run>__<scope>``: the DR Testing run of one drill, found again
    by the game day's record task (and the template its trigger renders, with ``{{ run_id }}``)."""
    return f"business_continuity__{run_id}__{scope}"


def drill_record(
    tests: Sequence[Mapping[str, Any]], *, required_kinds: Sequence[str], objective_minutes: float
) -> list[CheckResult]:
    """One result per kind (``continuity.drills[<kind>]``), required kinds first."""
    kinds = list(dict.fromkeys([*required_kinds, *(t["kind"] for t in tests)]))
    out = []
    for kind in kinds:
        mine = [t for t in tests if t["kind"] == kind]
        rtos = [float(t["rto_seconds"]) / 60 for t in mine if t.get("rto_seconds") is not None]
        failed = [t for t in mine if t["status"] in ("critical", "error")]
        over = [r for r in rtos if r > objective_minutes]
        worst = max(rtos, default=None)
        problems = []
        if not mine and kind in required_kinds:
            problems.append("no test in the year")
        if failed:
            problems.append(f"{len(failed)} failed")
        if over:
            problems.append(f"{len(over)} over the {objective_minutes:g}-minute recovery objective")
        median = sorted(rtos)[len(rtos) // 2] if rtos else None
        summary = f"{kind}: {len(mine)} test(s) in the year"
        if rtos:
            summary += f", recovery time median {median:.1f} min, worst {worst:.1f} min"
        if problems:
            summary += f"; {', '.join(problems)} — Action: " + (
                "find why it did not run (its DAG's history) and run it before sign-off"
                if not mine
                else "read the failed or slow runs' results and fix the cause; the game day re-tests it"
            )
        out.append(
            CheckResult(
                check=f"continuity.drills[{kind}]",
                status=Status.WARNING if problems else Status.OK,
                summary=summary,
                metric="rto_minutes_worst",
                observed=round(worst, 2) if worst is not None else None,
                unit="min",
                thresholds={"objective_minutes": objective_minutes},
                details={"tests": [jsonable(t) for t in mine]},
                component="recovery",
            )
        )
    return out


def game_day_result(
    scope: str,
    *,
    run_id: str,
    state: str | None,
    results: Sequence[CheckResult],
    tests: Sequence[Mapping[str, Any]],
    objective_minutes: float,
) -> CheckResult:
    """How one drill of the game day went, from its stored results; ``state`` is the DR Testing
    run's (``None``: not readable). No results and no state: the drill did not run."""
    check = f"continuity.game_day[{scope}]"
    if state is None and not results:
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"game day {scope}: no DR Testing run {run_id} found — Action: read the trigger "
            "task's log; trigger dr_testing with this scope by hand and re-run the sign-off",
            details={"run_id": run_id},
            component="game_day",
        )
    worst = max((r.status for r in results), key=lambda s: SEVERITY_ORDER[s], default=Status.ERROR)
    if state not in (None, "success") and SEVERITY_ORDER[worst] < SEVERITY_ORDER[Status.ERROR]:
        worst = Status.ERROR
    rtos = [float(t["rto_seconds"]) / 60 for t in tests if t.get("rto_seconds") is not None]
    rto = max(rtos, default=None)
    status = Status.CRITICAL if worst in (Status.CRITICAL, Status.ERROR) else worst
    if rto is not None and rto > objective_minutes and status is Status.OK:
        status = Status.WARNING
    bad = [r for r in results if r.status not in (Status.OK, Status.SKIPPED)]
    summary = f"game day {scope}: DR Testing run {run_id} {state or 'recorded'}, {len(results)} result(s)"
    if rto is not None:
        summary += f", recovery time {rto:.1f} min (objective {objective_minutes:g})"
    else:
        summary += ", no recovery time recorded"
    if bad:
        summary += "; " + "; ".join(f"{r.check}: {r.summary}" for r in bad[:3])
    return CheckResult(
        check=check,
        status=status,
        summary=summary[:1000],
        metric="rto_minutes",
        observed=round(rto, 2) if rto is not None else None,
        unit="min",
        thresholds={"objective_minutes": objective_minutes},
        details={
            "run_id": run_id,
            "state": state,
            "results": [r.to_dict() for r in results],
            "tests": [jsonable(t) for t in tests],
        },
        component="game_day",
    )
