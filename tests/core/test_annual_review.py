"""The annual reviews' shared pieces: the period, the sign-off form's findings, the report."""

from __future__ import annotations

import datetime as dt

import pytest

from sanvi_ops.core.annual_review import (
    build_report,
    count_result,
    render_markdown,
    report_keys,
    review_findings,
    review_period,
)
from sanvi_ops.core.results import CheckResult, Status

pytestmark = pytest.mark.unit

END = dt.datetime(2027, 5, 27, 11, tzinfo=dt.UTC)


def test_period_is_the_year_before_the_logical_date() -> None:
    p = review_period(END, 365)
    assert (p.start, p.end, p.label) == (END - dt.timedelta(days=365), END, "2027")
    assert report_keys("annual-reviews/", "x", p) == (
        "annual-reviews/x/2027/report.json",
        "annual-reviews/x/2027/report.md",
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        review_period(END.replace(tzinfo=None), 365)


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"verdict": "accepted"}, Status.OK),
        ({"verdict": "accepted", "findings_high": 1}, Status.WARNING),
        ({"verdict": "accepted_with_actions"}, Status.WARNING),
        ({"verdict": "accepted", "findings_critical": 2}, Status.CRITICAL),
        ({"verdict": "not_accepted"}, Status.CRITICAL),
        ({}, Status.WARNING),  # nothing entered
    ],
)
def test_review_findings_grade_the_form(form, status) -> None:
    r = review_findings("sign_off", form, what="Annual review")
    assert r.check == "sign_off.findings" and r.status is status


def test_report_lists_findings_worst_first_and_renders_markdown() -> None:
    results = [
        ("a", CheckResult("x.ok", Status.OK, "fine")),
        ("a", CheckResult("x.warn", Status.WARNING, "a | pipe")),
        ("b", CheckResult("y.crit", Status.CRITICAL, "bad")),
    ]
    report = build_report(
        dag_id="d",
        title="Annual Thing",
        run_id="r",
        period=review_period(END, 365),
        generated_at=END,
        results=results,
    )
    assert [f["check"] for f in report["findings"]] == ["y.crit", "x.warn"]
    assert report["counts"]["ok"] == 1
    md = render_markdown(report)
    assert md.startswith("# Annual Thing (2027)") and "a \\| pipe" in md


def test_count_result_is_a_finding_below_expected() -> None:
    r = count_result("c", what="tests", found=[{"at": END}], expected=2, action="run one", component="x")
    assert r.status is Status.WARNING and "Action: run one" in r.summary
    assert r.details["items"] == [{"at": END.isoformat()}]
