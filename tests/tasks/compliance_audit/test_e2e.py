"""The Compliance Audit end to end: ``dag.test()`` against servers on 127.0.0.1.

AWS is the moto server seeded with the governance resources (audit log groups with one short
and one missing, the backup bucket encrypted and with its lifecycle rule, the versioned
evidence bucket, IAM users and a role); the results store is real PostgreSQL holding a
quarter of System Health Check history; Slack is the Slack-compatible test server. The evidence
pack is read back from the versioned moto bucket by the version id the run recorded.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from devstack.aws_seed import seed_governance
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from tests.fixtures.e2e import load_dag

pytestmark = pytest.mark.e2e

DAG_ID = "compliance_audit"
LOGICAL = datetime(2026, 9, 9, 11, tzinfo=UTC)  # Q3, 3rd month, 2nd Wednesday


@pytest.fixture
def audit_env(e2e, monkeypatch):
    env = e2e.connect(aws=True)
    seed_governance(env["aws_endpoint"])
    store_dsn = env["store_dsn"]
    store = ResultStore(store_dsn)
    store.migrate()
    start = datetime(2026, 7, 1, 9, tzinfo=UTC)
    for day in range(70):  # daily health checks this quarter; RDS down once
        at = start + timedelta(days=day)
        rds = Status.CRITICAL if day == 40 else Status.OK
        store.save_results(
            "system_health_check",
            f"scheduled__{at:%Y-%m-%d}",
            at,
            [CheckResult("s3.backups", Status.OK, "ok"), CheckResult("rds.sanvi-production-db", rds, "rds")],
        )
    # the simple auth manager's session is its JWT: 12 h meets the guide
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME", "43200")
    return store_dsn


def test_audit_findings_and_evidence_pack(audit_env, boto_client, slack_api) -> None:
    dr = load_dag(DAG_ID).test(logical_date=LOGICAL, mark_success_pattern="sign_off")
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert all(s == "success" for s in states.values()), states  # warnings only: the run stays green

    with psycopg.connect(audit_env) as conn:
        rows = {
            name: (status, details)
            for name, status, details in conn.execute(
                "SELECT check_name, status, details FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        }
    assert {n for n, (s, _) in rows.items() if s != "ok"} == {
        "compliance.log_retention[/sanvi/production/audit/data-access]",
        "compliance.log_retention[/sanvi/production/audit/changes]",
        "compliance.vendor_sla[aws]",  # one day of 70 down: far below 99.95 %
        "compliance.vendor_sla[auth_provider]",  # no probe of it in the history
    }
    assert rows["compliance.backup_lifecycle"][0] == "ok" and rows["compliance.backup_encryption"][0] == "ok"
    assert rows["compliance.session_timeout"][0] == "ok"
    assert rows["compliance.credential_rotation"][0] == "ok"

    pack = rows["compliance.evidence_pack"]
    assert pack[0] == "ok"
    details = pack[1]
    assert details["key"] == "compliance-audit/2026-Q3/evidence-pack.json"
    obj = boto_client("s3").get_object(
        Bucket=details["bucket"], Key=details["key"], VersionId=details["version_id"]
    )
    raw = obj["Body"].read()
    assert hashlib.sha256(raw).hexdigest() == details["sha256"]
    evidence = json.loads(raw)
    assert evidence["run_id"] == dr.run_id and evidence["quarter"] == "2026-Q3"
    in_pack = {r["check"] for r in evidence["audit_results"]}
    assert in_pack == set(rows) - {"compliance.evidence_pack"}  # every other result of the run
    assert all(r["run_id"] == dr.run_id and r["collected_at"] for r in evidence["audit_results"])
    health = evidence["quarter_results"]["dags"]["system_health_check"]
    assert len(health["runs"]) == 70 and health["by_status"]["critical"] == 1
    changes = evidence["quarter_results"]["change_records"]  # none this quarter, but the section is there
    assert changes["counts"] == {"standard": 0, "normal": 0, "emergency": 0} and changes["records"] == []

    texts = [json.dumps(m) for m in slack_api.messages]
    assert any("Compliance Audit" in t for t in texts), texts
