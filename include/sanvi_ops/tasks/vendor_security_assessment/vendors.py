"""Annual Vendor Security Assessment: each critical vendor's year, from the quarterly SLA reviews.

:func:`sla_year` reads the Compliance Audit's stored ``compliance.vendor_sla[<vendor>]`` results
(availability measured each quarter against the vendor's SLA): a quarter below the SLA, or
fewer reviews than expected, is a finding. The human part (the vendor's SOC 2 / ISO 27001
report, its incidents, its sub-processors) is the sign-off form's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sanvi_ops.core.annual_review import jsonable
from sanvi_ops.core.results import CheckResult, Status

SLA_CHECK = "compliance.vendor_sla[{key}]"


def sla_year(
    rows: Sequence[Mapping[str, Any]],
    vendors: Mapping[str, tuple[str, float]],
    *,
    expected: int,
    prefix: str,
) -> list[CheckResult]:
    """One result per vendor (``<prefix>.sla[<key>]``).

    :param rows: ``check_results`` of ``compliance_audit`` named ``compliance.vendor_sla[...]``.
    :param vendors: key → (name, SLA %) (``tasks.compliance_audit.settings.vendors``).
    """
    out = []
    for key, (name, sla) in vendors.items():
        reviews = [r for r in rows if r["check_name"] == SLA_CHECK.format(key=key)]
        measured = [r for r in reviews if r.get("observed") is not None]
        below = [r for r in measured if float(r["observed"]) < sla]
        unmeasured = len(reviews) - len(measured)
        figures = ", ".join(f"{float(r['observed']):.3f} %" for r in measured) or "none"
        problems = []
        if len(reviews) < expected:
            problems.append(f"{len(reviews)} of {expected} quarterly SLA reviews found")
        if below:
            problems.append(f"{len(below)} quarter(s) below the SLA")
        if unmeasured:
            problems.append(f"{unmeasured} review(s) could not measure it")
        worst = min((float(r["observed"]) for r in measured), default=None)
        summary = f"{name}: SLA {sla:g} %, quarterly availability {figures}"
        if problems:
            summary += (
                f"; {'; '.join(problems)} — Action: raise it with the vendor (service credits, "
                "their incident reports) and record the answer in the sign-off"
            )
        out.append(
            CheckResult(
                check=f"{prefix}.sla[{key}]",
                status=Status.WARNING if problems else Status.OK,
                summary=summary,
                metric="availability_pct_worst_quarter",
                observed=worst,
                unit="%",
                thresholds={"sla_pct": sla, "min_reviews": expected},
                details={"vendor": name, "reviews": [jsonable(r) for r in reviews]},
                component="vendors",
            )
        )
    return out
