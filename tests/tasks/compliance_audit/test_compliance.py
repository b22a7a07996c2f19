"""The Compliance Audit's checks against the moto server and a real results store.

The account is seeded by :func:`seed_governance` with compliant and non-compliant resources.
moto stamps IAM users, keys and roles with the current time and has no API to backdate them,
so the access-review test ages some of them in the moto server's own state (it runs in this
process); the checks then read them through the AWS API like any other. Refusals are real IAM
policy denials by moto (its IAM enforcement switched on).
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from devstack.aws_seed import CONTRACTOR_USER, DEPLOY_ROLE, DEPLOY_USER, seed_governance
from sanvi_ops.core.backups import ensure_lifecycle
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from sanvi_ops.tasks.compliance_audit import compliance as co
from tests.tasks.system_health_check.test_health_aws import moto_enforces_iam  # noqa: F401 — fixture

pytestmark = pytest.mark.integration

YEARS = {"system_access": 1, "data_access": 3, "changes": 3}
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def cfg():
    from sanvi_ops.core.config import load_config

    return load_config()


@pytest.fixture
def governed(aws_endpoint, cfg):
    return seed_governance(aws_endpoint, cfg=cfg)


def _flagged(results: list[CheckResult]) -> set[str]:
    return {r.check for r in results if r.status is not Status.OK}


def test_log_retention_flags_short_missing_and_unset_groups(governed, boto_client, cfg):
    logs = boto_client("logs")
    logs.create_log_group(logGroupName="/sanvi/production/audit/logins")  # no retention set
    groups = {k: list(v) for k, v in cfg.tasks.compliance_audit.settings.log_groups.items()}
    groups["system_access"].append("/sanvi/production/audit/logins")
    groups["system_access"].append("/sanvi/production/audit/changes")  # also under changes: once, 3 y
    results = co.log_retention(logs, groups, YEARS)
    assert len(results) == 4
    assert _flagged(results) == {
        "compliance.log_retention[/sanvi/production/audit/data-access]",  # 365 d < 3 y
        "compliance.log_retention[/sanvi/production/audit/changes]",  # missing
        "compliance.log_retention[/sanvi/production/audit/logins]",  # never expires: no policy
    }
    by = {r.check: r for r in results}
    assert by["compliance.log_retention[/sanvi/production/audit/system-access]"].observed == 400
    short = by["compliance.log_retention[/sanvi/production/audit/data-access]"]
    assert short.observed == 365 and short.thresholds == {"warning": 1095}
    assert "--retention-in-days 1095" in short.summary


def test_backup_bucket_lifecycle_and_encryption(governed, boto_client, cfg):
    s3 = boto_client("s3")
    db = cfg.database_backups
    assert co.backup_encryption(s3, db.bucket).status is Status.OK
    kept = ensure_lifecycle(s3, db.bucket, db.prefix, glacier_after_days=7, retention_days=30, create=False)
    assert kept.status is Status.OK
    # a bucket with S3's own key and no lifecycle rule
    s3.create_bucket(Bucket="plain-backups")
    s3.put_bucket_encryption(
        Bucket="plain-backups",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    weak = co.backup_encryption(s3, "plain-backups")
    assert weak.status is Status.WARNING and "SSE-S3" in weak.summary and weak.details["control"] == "S3.4"
    none = ensure_lifecycle(
        s3, "plain-backups", db.prefix, glacier_after_days=7, retention_days=30, create=False
    )
    assert none.status is Status.CRITICAL and "never moved to Glacier" in none.summary
    with pytest.raises(s3.exceptions.ClientError):  # the audit created nothing
        s3.get_bucket_lifecycle_configuration(Bucket="plain-backups")


def _age_in_moto(days: int) -> None:
    """Backdate the seeded IAM objects in moto's own state (no AWS API can)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for name in (DEPLOY_USER, CONTRACTOR_USER):
        user = iam.users[name]
        user.create_date -= dt.timedelta(days=days)
        for key in user.access_keys:
            key.create_date -= dt.timedelta(days=days)
    iam.get_role(DEPLOY_ROLE).create_date -= dt.timedelta(days=days)


def test_access_review_and_rotation_flag_exactly_the_stale(governed, boto_client):
    iam = boto_client("iam")
    iam.create_user(UserName="new-hire")  # never used, but only just created
    iam.create_access_key(UserName="new-hire")
    iam.create_role(RoleName="fresh-role", AssumeRolePolicyDocument="{}")
    iam.create_service_linked_role(AWSServiceName="elasticache.amazonaws.com")  # AWS's own: left out
    _age_in_moto(200)
    results = co.iam_review(iam, now=NOW, unused_days=90, key_max_age_days=90)
    flagged = _flagged(results)
    assert {f.split("[")[0] for f in flagged} == {
        "compliance.unused_user",
        "compliance.key_rotation",
        "compliance.unused_role",
    }
    assert {f for f in flagged if not f.startswith("compliance.key_rotation")} == {
        f"compliance.unused_user[{CONTRACTOR_USER}]",  # its key was never used
        f"compliance.unused_role[{DEPLOY_ROLE}]",
    }
    rotated = sorted(
        f.split("[")[1].split(":")[0] for f in flagged if f.startswith("compliance.key_rotation")
    )
    assert rotated == sorted(
        [CONTRACTOR_USER, DEPLOY_USER]
    )  # ci-deployer is in use, but its key is 200 days old
    by = {r.check: r for r in results}
    assert by["compliance.credential_rotation"].details == {
        "active_keys": 3,
        "overdue": 2,
        "max_age_days": 90,
    }
    roles = by["compliance.access_review[roles]"].details["roles"]
    assert "fresh-role" in roles and not [r for r in roles if r.startswith("AWSServiceRole")]


def test_session_timeout_reads_the_effective_airflow_config(monkeypatch):
    from sanvi_ops.tasks.compliance_audit.airflow_tasks import airflow_get

    monkeypatch.setenv(
        "AIRFLOW__CORE__AUTH_MANAGER", "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    )
    monkeypatch.setenv("AIRFLOW__FAB__SESSION_LIFETIME_MINUTES", "720")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME", "86400")
    by = {r.check: r for r in co.session_timeout(airflow_get, max_hours=12)}
    assert by["compliance.session_timeout"].status is Status.OK
    token = by["compliance.api_token_lifetime"]
    assert token.status is Status.WARNING and "AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME=43200" in token.summary

    monkeypatch.delenv("AIRFLOW__FAB__SESSION_LIFETIME_MINUTES")  # unset: FAB's own 30 days
    (session, _) = co.session_timeout(
        lambda s, k: {("core", "auth_manager"): "x.FabAuthManager"}.get((s, k)), max_hours=12
    )
    assert session.status is Status.WARNING and session.observed == 43200

    monkeypatch.delenv("AIRFLOW__CORE__AUTH_MANAGER")  # the simple auth manager: the session is the JWT
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME", "43200")
    (only,) = co.session_timeout(airflow_get, max_hours=12)
    assert only.status is Status.OK and only.details["setting"] == "[api_auth] jwt_expiration_time"


def _health_runs(store: ResultStore, start: dt.datetime, days: int, down_day: int) -> None:
    for day in range(days):
        at = start + dt.timedelta(days=day, hours=9)
        rds = Status.CRITICAL if day == down_day else Status.OK
        store.save_results(
            "system_health_check",
            f"scheduled__{at:%Y-%m-%d}",
            at,
            [
                CheckResult("s3.backups", Status.OK, "ok"),
                CheckResult("rds.sanvi-production-db", rds, "rds"),
                CheckResult("http.production-auth", Status.OK, "ok"),
                CheckResult("postgres.availability", Status.CRITICAL, "not a vendor"),
            ],
        )


def test_vendor_availability_from_the_stored_health_history(make_db):
    dsn = make_db("vendors")
    store = ResultStore(dsn)
    store.migrate()
    start = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=70, hours=9)  # the last run stands for its day
    _health_runs(store, start, 70, down_day=30)
    store.save_results(
        "log_review", "x", start + dt.timedelta(days=3), [CheckResult("s3.backups", Status.CRITICAL, "")]
    )
    vendors = [
        co.Vendor("aws", "AWS", 99.95, "system_health_check", ("s3.*", "rds.*")),
        co.Vendor("auth_provider", "Auth", 99.9, "system_health_check", ("http.*auth*",)),
        co.Vendor("payments", "Payments", 99.9, "system_health_check", ("http.*payments*",)),
    ]
    history = co.health_history(dsn, ["system_health_check"], start, end)
    assert len(history) == 70 * 4
    by = {r.check: r for r in co.vendor_availability(vendors, history, start=start, end=end)}
    aws = by["compliance.vendor_sla[aws]"]
    assert aws.status is Status.WARNING and aws.observed == pytest.approx(100 * 69 / 70, abs=0.01)
    assert [o["run_id"] for o in aws.details["outages"]] == ["scheduled__2026-07-31"]
    assert aws.details["outages"][0]["checks"] == ["rds.sanvi-production-db"]
    auth = by["compliance.vendor_sla[auth_provider]"]
    assert auth.status is Status.OK and auth.observed == 100.0 and "not resolved finer" in auth.summary
    nothing = by["compliance.vendor_sla[payments]"]
    assert nothing.status is Status.WARNING and "cannot be reviewed" in nothing.summary


def test_evidence_pack_goes_to_a_versioned_bucket_and_reads_back(governed, boto_client, make_db, cfg):
    dsn = make_db("evidence")
    store = ResultStore(dsn)
    store.migrate()
    quarter = co.current_quarter(dt.date(2026, 9, 9))
    start = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    _health_runs(store, start, 5, down_day=2)
    stored = co.quarter_summary(dsn, start, dt.datetime(2026, 9, 9, tzinfo=dt.UTC), max_findings=3)
    assert len(stored["dags"]["system_health_check"]["runs"]) == 5
    assert stored["dags"]["system_health_check"]["by_status"] == {"ok": 14, "critical": 6}
    assert len(stored["findings"]) == 3 and stored["findings_truncated"] is True

    own = [("check_log_retention", CheckResult("compliance.log_retention[x]", Status.WARNING, "short"))]
    pack = co.build_evidence_pack(
        dag_id="compliance_audit",
        run_id="scheduled__2026-09-09",
        logical_date=dt.datetime(2026, 9, 9, 11, tzinfo=dt.UTC),
        quarter=quarter,
        generated_at=NOW,
        results=own,
        stored=stored,
    )
    s3 = boto_client("s3")
    bucket, key = (
        cfg.tasks.compliance_audit.settings.evidence.bucket,
        co.evidence_key("compliance-audit/", quarter),
    )
    assert key == "compliance-audit/2026-Q3/evidence-pack.json"
    first = co.write_evidence_pack(s3, pack, bucket=bucket, key=key)
    second = co.write_evidence_pack(s3, {**pack, "run_id": "manual__rerun"}, bucket=bucket, key=key)
    assert first.status is Status.OK and second.status is Status.OK, (first.summary, second.summary)
    assert first.details["version_id"] != second.details["version_id"]
    body = s3.get_object(Bucket=bucket, Key=key, VersionId=first.details["version_id"])
    assert body["ServerSideEncryption"] == "aws:kms"
    raw = body["Body"].read()
    import hashlib

    assert hashlib.sha256(raw).hexdigest() == first.details["sha256"]
    read = json.loads(raw)
    assert read["quarter"] == "2026-Q3" and read["run_id"] == "scheduled__2026-09-09"
    (item,) = read["audit_results"]
    assert item["check"] == "compliance.log_retention[x]" and item["task_id"] == "check_log_retention"
    assert item["dag_id"] == "compliance_audit" and item["collected_at"]
    versions = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    assert len(versions) == 2  # the first pack is kept

    refused = co.write_evidence_pack(s3, pack, bucket=governed["legacy_bucket"], key=key)
    assert refused.status is Status.ERROR and "versioning" in refused.summary
    assert "Contents" not in s3.list_objects_v2(Bucket=governed["legacy_bucket"])


def test_denied_checks_name_the_action_and_the_others_run(
    governed,
    aws_endpoint,
    boto_client,
    cfg,
    moto_enforces_iam,  # noqa: F811 — the fixture imported above
):
    import boto3

    iam = boto_client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(
        UserName="auditor",
        PolicyName="no-logs-no-iam-no-put",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "*", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": ["logs:DescribeLogGroups", "iam:ListRoles", "s3:PutObject"],
                        "Resource": "*",
                    },
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    moto_enforces_iam()

    def client(service: str):
        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=aws_endpoint,
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )

    logs = co.log_retention(client("logs"), {"system_access": ["/a"], "changes": ["/b"]}, YEARS)
    assert [(r.status, r.details["missing_action"]) for r in logs] == [
        (Status.ERROR, "logs:DescribeLogGroups")
    ] * 2
    access = {r.check: r for r in co.iam_review(client("iam"), now=NOW, unused_days=90, key_max_age_days=90)}
    assert access["compliance.access_review[roles]"].details["missing_action"] == "iam:ListRoles"
    assert access["compliance.access_review[users]"].status is Status.OK  # users were readable
    written = co.write_evidence_pack(
        client("s3"),
        {"run_id": "r"},
        bucket=cfg.tasks.compliance_audit.settings.evidence.bucket,
        key="compliance-audit/x.json",
    )
    assert written.status is Status.ERROR and written.details["missing_action"] == "s3:PutObject"
    assert co.backup_encryption(client("s3"), cfg.database_backups.bucket).status is Status.OK
