"""The configuration backup end to end with ``dag.test()``: the shipped config with ``make run``'s
local layer (a bare git repository made by devstack), moto seeded as ``make run`` seeds it, a
real results store and the Slack stand-in.

First run commits and writes S3; a second, unchanged run writes nothing; a change makes a new
commit and a new S3 version. No secret value reaches S3, git or Slack.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import psycopg
import pytest

from devstack import run as devrun
from devstack.aws_seed import DEMO_PARAMETERS, DEMO_SECRET_VALUE, DemoNames, seed_configuration, seed_demo
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

DAG_ID = "configuration_backup"
SECRETS = (
    next(v for _, kind, v in DEMO_PARAMETERS if kind == "SecureString"),
    json.loads(DEMO_SECRET_VALUE)["password"],
)


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def _commits(repo) -> list[str]:
    out = subprocess.run(["git", "-C", str(repo), "rev-list", "--all"], capture_output=True, text=True)
    return out.stdout.split()


def test_commits_on_change_only(e2e, boto_client, tmp_path, monkeypatch, slack_api):
    from sanvi_ops.core.config import load_config

    repo = devrun.ensure_config_repo(tmp_path / devrun.CONFIG_REPO_DIR)
    config = devrun.write_local_config(
        devrun.SHIPPED_CONFIG, tmp_path / "maintenance.yaml", "http://127.0.0.1:9", config_repo=repo
    )
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(config))
    cfg = load_config(config)
    assert cfg.configuration_backups.git.repository == str(repo)
    env = e2e.connect(aws=True)
    health = cfg.tasks.system_health_check.settings
    names = DemoNames(dict(health.buckets), health.ecs_cluster, tuple(health.ecs_services), (), ())
    seed_demo(env["aws_endpoint"], names=names, governance=False)
    seed_configuration(env["aws_endpoint"], bucket=cfg.database_backups.bucket)
    s3 = boto_client("s3")
    bucket, key = cfg.database_backups.bucket, "configuration/snapshot.json"

    dag = load_dag(DAG_ID)
    first = dag.test(logical_date=datetime(2026, 12, 1, 10, 20, tzinfo=UTC))
    assert set(task_states(first).values()) == {"success"}, task_states(first)
    stored = _stored(env["store_dsn"], first.run_id)
    assert {k: v[0] for k, v in stored.items()} == {
        "configuration.sources": "ok",
        "configuration.retention": "ok",
        "configuration.snapshot": "ok",
        "configuration.git": "ok",
    }, stored
    assert "first snapshot" in stored["configuration.snapshot"][1]
    assert len(_commits(repo)) == 1

    second = dag.test(logical_date=datetime(2026, 12, 1, 11, 20, tzinfo=UTC))
    assert set(task_states(second).values()) == {"success"}
    assert "no change" in _stored(env["store_dsn"], second.run_id)["configuration.snapshot"][1]
    assert len(_commits(repo)) == 1
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 1

    boto_client("ssm").put_parameter(
        Name="/sanvi/production/app/log_level", Value="warning", Type="String", Overwrite=True
    )
    third = dag.test(logical_date=datetime(2026, 12, 1, 12, 20, tzinfo=UTC))
    assert set(task_states(third).values()) == {"success"}
    summary = _stored(env["store_dsn"], third.run_id)["configuration.snapshot"][1]
    assert "ssm: 1 changed (parameters//sanvi/production/app/log_level)" in summary
    assert len(_commits(repo)) == 2
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]) == 2

    posted = json.dumps(slack_api.messages)
    assert "log_level" in posted  # the diff summary reached the Slack report
    for secret in SECRETS:
        assert secret not in posted
