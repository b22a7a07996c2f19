"""The Vendor Contract Review end to end: ``dag.test()`` against servers on 127.0.0.1.

The results store (real PostgreSQL) holds a year of quarterly Cost Optimization and Compliance
Audit results, one quarter missing; the evidence bucket is a versioned moto bucket; the report
is read back from it by the version id the run recorded. The sign-off form is marked done (it is
answered through the API in tests/e2e/test_signoff_api.py's way).
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

DAG_ID = "vendor_contract_review"
LOGICAL = datetime(2027, 1, 28, 11, tzinfo=UTC)  # January, 4th Thursday
BUCKET = "sanvi-machinery-audit"


def seed_year(store: ResultStore) -> None:
    """Cost reviews in 3 of 4 quarters; SLA reviews: AWS 4 (one below 99.95 %), auth none."""
    quarters = [datetime(2025, 10, 9, 11, tzinfo=UTC)]  # before the year reviewed: not counted
    quarters += [datetime(2026, 4, 9, 11, tzinfo=UTC), datetime(2026, 10, 8, 11, tzinfo=UTC)]
    quarters += [datetime(2027, 1, 14, 11, tzinfo=UTC)]  # July's is missing
    for n, at in enumerate(quarters):
        store.save_results(
            "cost_optimization",
            f"scheduled__{at:%Y-%m-%d}",
            at,
            [
                CheckResult("cost.spend", Status.OK, "spend", observed=1000.0 + n, unit="USD"),
                CheckResult("cost.potential_savings", Status.OK, "idle", observed=42.5, unit="USD"),
                CheckResult("cost.spend_increase[Amazon RDS]", Status.WARNING, "RDS up 30 %"),
            ],
        )
    for n, at in enumerate(datetime(2026, m, 9, 11, tzinfo=UTC) for m in (3, 6, 9, 12)):
        pct = 99.9 if n == 1 else 99.99
        status = Status.WARNING if n == 1 else Status.OK
        store.save_results(
            "compliance_audit",
            f"scheduled__{at:%Y-%m-%d}",
            at,
            [CheckResult("compliance.vendor_sla[aws]", status, f"AWS {pct} %", observed=pct, unit="%")],
        )


def test_year_of_cost_and_sla_reviews_into_the_report(e2e, boto_client, slack_api) -> None:
    env = e2e.connect(aws=True)
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    store = ResultStore(env["store_dsn"])
    store.migrate()
    seed_year(store)

    dr = load_dag(DAG_ID).test(logical_date=LOGICAL, mark_success_pattern="sign_off")
    states = task_states(dr)
    assert all(s == "success" for s in states.values()), states

    with psycopg.connect(env["store_dsn"]) as conn:
        rows = {
            name: (status, summary, details)
            for name, status, summary, details in conn.execute(
                "SELECT check_name, status, summary, details FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        }
    assert rows["contract_review.cost_reviews"][0] == "warning"  # 3 of 4 quarters
    assert "3 quarterly cost reviews" in rows["contract_review.cost_reviews"][1]
    assert rows["contract_review.sla[aws]"][0] == "warning"  # one quarter below the SLA
    assert "99.900 %" in rows["contract_review.sla[aws]"][1]
    assert rows["contract_review.sla[auth_provider]"][0] == "warning"  # no review at all

    status, _summary, details = rows["review.report"]
    assert status == "ok", rows["review.report"]
    assert details["key"] == "annual-reviews/vendor_contract_review/2027/report.json"
    report = json.loads(
        s3.get_object(Bucket=BUCKET, Key=details["key"], VersionId=details["version_id"])["Body"].read()
    )
    assert report["run_id"] == dr.run_id and report["period"]["label"] == "2027"
    assert {r["check"] for r in report["results"]} == set(rows) - {"review.report"}
    markdown = s3.get_object(Bucket=BUCKET, Key=details["markdown_key"])["Body"].read().decode()
    assert markdown.startswith("# Vendor Contract Review (2027)") and "contract_review.sla[aws]" in markdown
    assert any("Vendor Contract Review" in json.dumps(m) for m in slack_api.messages)

    # The compliance audit's evidence pack carries the year's annual reviews: this one's run and
    # report (by version), and the gap of a review that has not run in the year.
    from sanvi_ops.core.annual_review import annual_evidence

    evidence = annual_evidence(env["store_dsn"], [DAG_ID, "external_security_assessment"], LOGICAL)
    mine = evidence[DAG_ID]
    assert mine["reviewed"] and mine["run_id"] == dr.run_id
    assert mine["report"]["key"] == details["key"] and mine["report"]["version_id"] == details["version_id"]
    assert mine["counts"]["warning"] == 3 and mine["report"]["sha256"] == details["sha256"]
    assert evidence["external_security_assessment"]["reviewed"] is False
