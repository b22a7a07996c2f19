"""The External Security Assessment end to end: ``dag.test()`` against servers on 127.0.0.1.

The results store holds the year's penetration-test forms (three recorded, one timed out, one
with a critical finding) and twelve Security Scan runs; the report is read back from the
versioned moto evidence bucket. The sign-off form is marked done.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

DAG_ID = "external_security_assessment"
LOGICAL = datetime(2027, 9, 23, 11, tzinfo=UTC)  # September, 4th Thursday
BUCKET = "sanvi-machinery-audit"


def _pentest(conn, at: datetime, outcome: str, form: dict) -> None:
    conn.execute(
        """INSERT INTO signoffs (dag_id, run_id, task_id, kind, team, subject, requested_at, deadline,
                                 outcome, responded_at, form)
           VALUES ('penetration_testing', %s, 'record_pentest_outcome', 'form', 'security', 'Pen test',
                   %s, %s, %s, %s, %s)""",
        (
            f"scheduled__{at:%Y-%m-%d}",
            at,
            at + timedelta(days=14),
            outcome,
            None if outcome == "pending" else at + timedelta(days=3),
            Jsonb(form),
        ),
    )


def test_security_record_of_the_year(e2e, boto_client, slack_api) -> None:
    env = e2e.connect(aws=True)
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    store = ResultStore(env["store_dsn"])
    store.migrate()
    clean = {
        "outcome": "pass",
        "tester": "Acme",
        "findings_critical": 0,
        "findings_high": 0,
        "findings_low": 2,
    }
    with psycopg.connect(env["store_dsn"]) as conn:
        _pentest(conn, datetime(2026, 11, 17, 11, tzinfo=UTC), "approved", clean)
        _pentest(conn, datetime(2027, 2, 16, 11, tzinfo=UTC), "timed_out", {})
        _pentest(
            conn,
            datetime(2027, 5, 18, 11, tzinfo=UTC),
            "approved",
            {**clean, "findings_critical": 1, "outcome": "fail"},
        )
        _pentest(conn, datetime(2027, 8, 17, 11, tzinfo=UTC), "approved", clean)
    for n in range(12):
        at = datetime(2026, 10, 13, 11, tzinfo=UTC) + timedelta(days=28 * n)
        store.save_results(
            "security_scan",
            f"scheduled__{at:%Y-%m-%d}",
            at,
            [
                CheckResult("iam.mfa[ops]", Status.WARNING if n % 2 else Status.OK, "mfa"),
                CheckResult("s3.public_access[x]", Status.OK, "ok"),
            ],
        )

    dr = load_dag(DAG_ID).test(logical_date=LOGICAL, mark_success_pattern="sign_off")
    assert all(s == "success" for s in task_states(dr).values()), task_states(dr)

    with psycopg.connect(env["store_dsn"]) as conn:
        rows = {
            name: (status, summary)
            for name, status, summary in conn.execute(
                "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        }
    assert rows["assessment.pentests"][0] == "warning"  # 3 of 4 recorded
    assert "1 not recorded (timed_out)" in rows["assessment.pentests"][1]
    assert rows["assessment.pentest_findings"][0] == "warning"  # one failed test
    assert "1 critical" in rows["assessment.pentest_findings"][1]
    assert rows["assessment.security_scans"][0] == "ok"  # 12 runs
    assert "6 findings, most frequent: iam.mfa" in rows["assessment.security_scans"][1]
    assert rows["review.report"][0] == "ok"
    md = s3.get_object(Bucket=BUCKET, Key="annual-reviews/external_security_assessment/2027/report.md")[
        "Body"
    ]
    text = md.read().decode()
    assert "## Findings" in text and "assessment.pentests" in text
    assert json.dumps(slack_api.messages).count("External Security Assessment") >= 1
