"""The Vendor Security Assessment end to end: ``dag.test()`` against servers on 127.0.0.1.

The results store holds the year's quarterly SLA reviews (the Compliance Audit's
``compliance.vendor_sla[...]`` results): AWS in all four quarters, the authentication provider
in none. The report is read back from the versioned moto evidence bucket; the sign-off form is
marked done (see tests/e2e/test_signoff_api.py for answering one through the API).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

DAG_ID = "vendor_security_assessment"
LOGICAL = datetime(2027, 4, 22, 11, tzinfo=UTC)  # April, 4th Thursday
BUCKET = "sanvi-machinery-audit"


def test_vendor_year_report_and_findings(e2e, boto_client, slack_api) -> None:
    env = e2e.connect(aws=True)
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    store = ResultStore(env["store_dsn"])
    store.migrate()
    for at in (datetime(2026, m, 9, 11, tzinfo=UTC) for m in (6, 9, 12)):
        store.save_results(
            "compliance_audit",
            f"scheduled__{at:%Y-%m-%d}",
            at,
            [CheckResult("compliance.vendor_sla[aws]", Status.OK, "AWS", observed=99.99, unit="%")],
        )
    at = datetime(2027, 3, 10, 11, tzinfo=UTC)
    store.save_results(
        "compliance_audit",
        f"scheduled__{at:%Y-%m-%d}",
        at,
        [CheckResult("compliance.vendor_sla[aws]", Status.OK, "AWS", observed=99.97, unit="%")],
    )

    dr = load_dag(DAG_ID).test(logical_date=LOGICAL, mark_success_pattern="sign_off")
    assert all(s == "success" for s in task_states(dr).values()), task_states(dr)

    with psycopg.connect(env["store_dsn"]) as conn:
        rows = dict(
            conn.execute(
                "SELECT check_name, status FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        )
    assert rows == {
        "vendor_assessment.sla[aws]": "ok",  # four quarters, each above 99.95 %
        "vendor_assessment.sla[auth_provider]": "warning",  # never measured
        "review.report": "ok",
    }
    report = json.loads(
        s3.get_object(Bucket=BUCKET, Key="annual-reviews/vendor_security_assessment/2027/report.json")[
            "Body"
        ].read()
    )
    aws = next(r for r in report["results"] if r["check"] == "vendor_assessment.sla[aws]")
    assert len(aws["details"]["reviews"]) == 4 and aws["observed"] == 99.97
    assert [f["check"] for f in report["findings"]] == ["vendor_assessment.sla[auth_provider]"]
