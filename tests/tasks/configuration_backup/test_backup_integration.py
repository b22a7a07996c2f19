"""Integration: the configuration backup against the moto server (SSM, Secrets Manager, ECS, S3)
and a temporary bare git repository."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from devstack.aws_seed import DEMO_PARAMETERS, DEMO_SECRET_VALUE, DemoNames, seed_configuration, seed_demo
from sanvi_ops.tasks.configuration_backup.backup import BackupPlan, run_backup
from sanvi_ops.tasks.configuration_backup.snapshot import latest_snapshot

pytestmark = pytest.mark.integration

BUCKET = "sanvi-machinery-backups"
PREFIX = "configuration/"
SECURE_VALUE = next(v for _, kind, v in DEMO_PARAMETERS if kind == "SecureString")
SECRET_PASSWORD = json.loads(DEMO_SECRET_VALUE)["password"]


def bare_repo(path: Path) -> Path:
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def commits(repo: Path) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "rev-list", "--all"], capture_output=True, text=True).stdout
    return out.split()


def everything_in_git(repo: Path) -> str:
    """Every object of the repository, as text (blobs, trees, commits)."""
    shas = git(repo, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
    return "\n".join(git(repo, "cat-file", "-p", sha) for sha in shas)


def everything_in_s3(s3) -> str:
    out = []
    for v in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        out.append(
            s3.get_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Body"].read().decode()
        )
        out.append(
            json.dumps(s3.head_object(Bucket=BUCKET, Key=v["Key"], VersionId=v["VersionId"])["Metadata"])
        )
    return "\n".join(out)


@pytest.fixture
def stack(aws_endpoint, boto_client, tmp_path):
    names = DemoNames(buckets={"backups": BUCKET}, ecs_cluster="sanvi-prod", ecs_services=("frontend", "backend"),
                      rds_instances=(), elasticache_clusters=())  # fmt: skip
    seed_demo(aws_endpoint, names=names, governance=False)
    seed_configuration(aws_endpoint, bucket=BUCKET)
    config = tmp_path / "maintenance.yaml"
    config.write_text("timezone: UTC\n")
    plan = BackupPlan(
        bucket=BUCKET, prefix=PREFIX, retention_days=90, ssm_paths=("/sanvi/",), secret_prefixes=("sanvi/",),
        ecs_cluster="sanvi-prod", ecs_services=("frontend", "backend"), maintenance_yaml=config,
        repository=str(bare_repo(tmp_path / "config.git")),
    )  # fmt: skip
    return {"plan": plan, "clients": boto_client, "repo": tmp_path / "config.git", "config": config}


def statuses(outcome) -> dict[str, str]:
    return {r.check: r.status.value for r in outcome.results}


def test_first_run_keeps_unchanged_skips_change_keeps_again(stack):
    plan, clients, repo = stack["plan"], stack["clients"], stack["repo"]
    s3 = clients("s3")

    first = run_backup(clients, plan, run_id="r1")
    assert set(statuses(first).values()) == {"ok"}, [r.summary for r in first.results]
    assert first.changed and first.commit and first.version_id
    assert commits(repo) == [first.commit]
    files = set(git(repo, "ls-tree", "--name-only", "main").split())
    assert files == {"DIGEST", "ecs.json", "maintenance.yaml", "secretsmanager.json", "ssm.json"}
    rules = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)["Rules"]
    assert any(
        r["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
        for r in rules
        if r["Filter"]["Prefix"] == PREFIX
    )

    snapshot = latest_snapshot(s3, BUCKET, PREFIX)
    params = {p["Name"]: p for p in snapshot["sources"]["ssm"]["parameters"]}
    assert params["/sanvi/production/app/log_level"]["Value"] == "info"
    assert "Value" not in params["/sanvi/production/app/session_signing_key"]
    assert params["/sanvi/production/app/session_signing_key"]["Type"] == "SecureString"
    (secret,) = snapshot["sources"]["secretsmanager"]["secrets"]
    assert secret["Name"] == "sanvi/production/app-db" and secret["ARN"] and secret["Versions"]
    ecs = snapshot["sources"]["ecs"]
    assert {s["serviceName"]: s["desiredCount"] for s in ecs["services"]} == {"frontend": 2, "backend": 2}
    assert {t["family"] for t in ecs["task_definitions"]} == {"sanvi-prod-frontend", "sanvi-prod-backend"}

    second = run_backup(clients, plan, run_id="r2")
    assert not second.changed and second.commit is None
    assert "no change" in next(r.summary for r in second.results if r.check == "configuration.snapshot")
    assert commits(repo) == [first.commit]
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix=PREFIX)["Versions"]) == 1

    clients("ssm").put_parameter(
        Name="/sanvi/production/app/log_level", Value="debug", Type="String", Overwrite=True
    )
    clients("ecs").update_service(cluster="sanvi-prod", service="backend", desiredCount=3)
    third = run_backup(clients, plan, run_id="r3")
    assert third.changed and third.commit and third.version_id != first.version_id
    assert len(commits(repo)) == 2
    message = git(repo, "log", "-1", "--format=%B", "main")
    assert "ssm: 1 changed (parameters//sanvi/production/app/log_level)" in message
    assert "ecs: 1 changed (services/backend)" in message and "Run: r3" in message
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix=PREFIX)["Versions"]) == 2

    # The secret values are nowhere: not in any S3 version, not in any git object.
    for blob in (everything_in_s3(s3), everything_in_git(repo)):
        assert SECURE_VALUE not in blob and SECRET_PASSWORD not in blob
        assert "demo-secret-value" not in blob and "demo-securestring-value" not in blob


def test_git_failure_is_retried_by_the_next_run_with_the_same_digest(stack, tmp_path):
    plan, clients = stack["plan"], stack["clients"]
    broken = BackupPlan(**{**plan.__dict__, "repository": str(tmp_path / "missing.git")})
    first = run_backup(clients, broken)
    assert statuses(first)["configuration.git"] == "error"
    assert "retried next run" in next(r.summary for r in first.results if r.check == "configuration.git")
    assert first.version_id  # S3 still has it
    head = clients("s3").head_object(Bucket=BUCKET, Key=f"{PREFIX}snapshot.json")
    assert head["Metadata"]["git-commit"] == "pending"

    again = run_backup(clients, plan)  # same configuration, repository fixed
    assert statuses(again)["configuration.git"] == "ok" and again.commit
    assert commits(stack["repo"]) == [again.commit]
    third = run_backup(clients, plan)
    assert "no change" in next(r.summary for r in third.results if r.check == "configuration.snapshot")


def test_no_repository_is_a_named_warning(stack):
    plan, clients = stack["plan"], stack["clients"]
    outcome = run_backup(clients, BackupPlan(**{**plan.__dict__, "repository": None}))
    git_result = next(r for r in outcome.results if r.check == "configuration.git")
    assert git_result.status.value == "warning"
    assert "configuration_backups.git.repository is not set" in git_result.summary
    assert outcome.version_id


def test_an_unreadable_source_writes_nothing(stack):
    plan, clients = stack["plan"], stack["clients"]
    outcome = run_backup(clients, BackupPlan(**{**plan.__dict__, "ecs_services": ("frontend", "nope")}))
    (result,) = outcome.results
    assert result.check == "configuration.sources" and result.status.value == "error"
    assert "nope" in result.summary and "no snapshot taken" in result.summary
    assert "Contents" not in clients("s3").list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    assert commits(stack["repo"]) == []


def test_unversioned_bucket_is_critical(stack):
    plan, clients = stack["plan"], stack["clients"]
    clients("s3").create_bucket(Bucket="plain-bucket")
    outcome = run_backup(clients, BackupPlan(**{**plan.__dict__, "bucket": "plain-bucket"}))
    retention = next(r for r in outcome.results if r.check == "configuration.retention")
    assert retention.status.value == "critical" and "versioning is off" in retention.summary


def test_latest_snapshot_refuses_a_tampered_object(stack):
    plan, clients = stack["plan"], stack["clients"]
    s3 = clients("s3")
    with pytest.raises(LookupError):
        latest_snapshot(s3, BUCKET, PREFIX)
    run_backup(clients, plan)
    data = latest_snapshot(s3, BUCKET, PREFIX)
    data["sources"]["ssm"]["parameters"][0]["Value"] = "tampered"
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}snapshot.json", Body=json.dumps(data).encode())
    with pytest.raises(ValueError, match="digest mismatch"):
        latest_snapshot(s3, BUCKET, PREFIX)
