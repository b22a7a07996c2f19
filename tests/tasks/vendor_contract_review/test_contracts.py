"""The contract review's and the vendor assessment's pure logic over stored rows."""

from __future__ import annotations

import datetime as dt

import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.vendor_contract_review.contracts import cost_year
from sanvi_ops.tasks.vendor_security_assessment.vendors import sla_year

pytestmark = pytest.mark.unit


def _row(run, check, observed=None, status="ok", summary="s", month=1):
    return {
        "run_id": run,
        "check_name": check,
        "observed": observed,
        "status": status,
        "summary": summary,
        "at": dt.datetime(2026, month, 9, tzinfo=dt.UTC),
    }


def test_cost_year_counts_reviews_with_spend() -> None:
    rows = [
        _row("q1", "cost.spend", 100.0, month=1),
        _row("q1", "cost.potential_savings", 5.0, month=1),
        _row("q2", "cost.spend", 200.0, month=4),
        _row("q2", "cost.spend_increase[EC2]", status="warning", month=4),
        _row("q2", "cost.potential_savings", 7.5, month=4),
        _row("q3", "cost.spend.error", status="error", month=7),  # a review that could not read spend
    ]
    r = cost_year(rows, expected=4)
    assert r.status is Status.WARNING and r.observed == 2
    assert "$300.00" in r.summary and "1 service increase" in r.summary and "$7.50/month" in r.summary


def test_sla_year_flags_low_and_missing_quarters() -> None:
    rows = [
        _row(f"q{n}", "compliance.vendor_sla[aws]", pct) for n, pct in enumerate((99.99, 99.9, 99.97, 99.96))
    ]
    out = {
        r.check: r
        for r in sla_year(rows, {"aws": ("AWS", 99.95), "auth": ("Auth", 99.9)}, expected=4, prefix="p")
    }
    assert out["p.sla[aws]"].status is Status.WARNING and out["p.sla[aws]"].observed == 99.9
    assert "1 quarter(s) below" in out["p.sla[aws]"].summary
    assert "0 of 4 quarterly SLA reviews" in out["p.sla[auth]"].summary
