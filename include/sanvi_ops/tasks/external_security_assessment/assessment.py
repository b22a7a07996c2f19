"""Annual External Security Assessment: the year's security record, for the assessors.

Plain functions over rows of the results store (:mod:`sanvi_ops.core.annual_review`):

- :func:`pentest_record`: the quarterly penetration tests' forms (outcome, tester, findings by
  severity, report URL) as the Security team entered them; too few recorded tests, or tests
  that failed or found critical/high issues, are findings;
- :func:`scan_record`: the monthly Security Scans of the year, each run with its findings;
  too few runs is a finding, the most frequent findings are named.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from sanvi_ops.core.annual_review import count_result, jsonable
from sanvi_ops.core.results import CheckResult, Status

#: The penetration test's form task (dags/quarterly/penetration_testing.py).
PENTEST_FORM_TASK = "record_pentest_outcome"


def pentest_record(forms: Sequence[Mapping[str, Any]], *, expected: int) -> list[CheckResult]:
    """``forms``: ``signoffs`` rows of ``penetration_testing`` in the year."""
    mine = [f for f in forms if f.get("task_id") == PENTEST_FORM_TASK]
    recorded = [f for f in mine if f.get("outcome") == "approved" and (f.get("form") or {}).get("outcome")]
    missing = [f for f in mine if f not in recorded]
    extra = (
        f"; {len(missing)} not recorded ({', '.join(str(f['outcome']) for f in missing)})" if missing else ""
    )
    tests = count_result(
        "assessment.pentests",
        what="penetration tests with a recorded outcome",
        found=recorded,
        expected=expected,
        action="hand the assessors the reason for each missing quarter, or record it in "
        "Penetration Testing's record_pentest_outcome form",
        component="penetration_test",
        extra=extra,
    )
    serious = []
    for f in recorded:
        form = f.get("form") or {}
        crit, high = int(form.get("findings_critical") or 0), int(form.get("findings_high") or 0)
        if form.get("outcome") == "fail" or crit or high:
            serious.append(
                {
                    "run_id": f["run_id"],
                    "outcome": form.get("outcome"),
                    "critical": crit,
                    "high": high,
                    "report_url": form.get("report_url") or "",
                }
            )
    totals: Counter[str] = Counter()
    for f in recorded:
        for sev in ("critical", "high", "medium", "low"):
            totals[sev] += int((f.get("form") or {}).get(f"findings_{sev}") or 0)
    listed = ", ".join(f"{totals[s]} {s}" for s in ("critical", "high", "medium", "low"))
    findings = CheckResult(
        check="assessment.pentest_findings",
        status=Status.WARNING if serious else Status.OK,
        summary=(
            f"penetration test findings this year: {listed}"
            + (
                f"; {len(serious)} test(s) failed or found critical/high issues "
                f"({', '.join(s['run_id'] for s in serious)}) — Action: give the assessors each fix "
                "and its re-test"
                if serious
                else ""
            )
        ),
        metric="findings",
        observed=float(sum(totals.values())),
        details={"totals": dict(totals), "serious": serious, "forms": [jsonable(f) for f in recorded]},
        component="penetration_test",
    )
    return [tests, findings]


def scan_record(rows: Sequence[Mapping[str, Any]], *, expected: int) -> CheckResult:
    """``rows``: ``check_results`` of ``security_scan`` in the year."""
    runs: dict[str, dict[str, Any]] = {}
    frequent: Counter[str] = Counter()
    for r in rows:
        run = runs.setdefault(
            r["run_id"], {"run_id": r["run_id"], "at": r["at"], "checks": 0, "findings": []}
        )
        run["checks"] += 1
        if r["status"] not in ("ok", "skipped"):
            run["findings"].append({"check": r["check_name"], "status": r["status"], "summary": r["summary"]})
            frequent[r["check_name"].split("[", 1)[0]] += 1
    total = sum(len(run["findings"]) for run in runs.values())
    top = ", ".join(f"{name} ×{n}" for name, n in frequent.most_common(3))
    return count_result(
        "assessment.security_scans",
        what="Security Scan runs",
        found=list(runs.values()),
        expected=expected,
        action="find why the monthly Security Scan did not run (Airflow's run history) and say so "
        "to the assessors",
        component="security_scan",
        extra=f"; {total} findings" + (f", most frequent: {top}" if top else ""),
    )
