"""The preflight against real servers: PostgreSQL 18 (with a role lacking rights), Redis, moto
(S3, KMS, IAM enforcement), the Slack stand-in, an HTTP stand-in for Prometheus/Airflow's API, and
Airflow's metadata database (the pool). Each missing piece must be a named finding with a fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import psycopg
import pytest
import yaml
from psycopg import sql

from sanvi_ops.airflow_kit.preflight import exit_code, render, run_preflight
from sanvi_ops.core.results import Status
from tests.fixtures.config import shipped_config
from tests.fixtures.connections import aws_conn, conn_env, pg_conn, slack_conn

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BASE_URL = "https://airflow.sanvi.example"


def _cfg():
    from sanvi_ops.core.config import load_config

    return load_config()


@pytest.fixture
def deployment(
    prometheus_server,
    pg,
    make_db,
    redis_server,
    aws_endpoint,
    boto_client,
    slack_api,
    ops_monitor,
    airflow_db,
    monkeypatch,
):
    """A complete deployment: every connection defined and reachable, the pool, the bucket and key."""
    from airflow.models.pool import Pool

    cfg = _cfg()
    app_dsn, store_dsn = make_db("pf_app"), make_db("pf_store")
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_APP_DB", pg_conn(app_dsn))
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_OPS_STORE", pg_conn(store_dsn))
    monkeypatch.delenv("AIRFLOW_CONN_SANVI_SCRATCH_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_conn(aws_endpoint))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_REDIS",
        conn_env("redis", host="127.0.0.1", port=redis_server.port, password=redis_server.password),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", slack_conn(slack_api))
    prom_host, prom_port = prometheus_server.url.removeprefix("http://").split(":")
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_PROMETHEUS", conn_env("http", host=prom_host, port=int(prom_port), schema="http")
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_AIRFLOW_API",
        conn_env("http", host="127.0.0.1", port=ops_monitor.server.port, schema="http"),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_HEARTBEAT", conn_env("http", host=ops_monitor.ping_url))

    s3 = boto_client("s3")
    s3.create_bucket(Bucket=cfg.database_backups.bucket)
    s3.create_bucket(Bucket=cfg.tasks.compliance_audit.settings.evidence.bucket)
    kms = boto_client("kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=cfg.database_backups.kms_key_alias, TargetKeyId=key)
    Pool.create_or_update_pool(
        cfg.tasks.database_maintenance.settings.pool, slots=1, description="test", include_deferred=False
    )
    return {"app_dsn": app_dsn, "pg": pg, "aws_endpoint": aws_endpoint, "kms_key": key}


def _by_name(results):
    return {r.check: r for r in results}


def test_complete_deployment_passes(deployment, slack_api):
    results = run_preflight(_cfg(), base_url=BASE_URL, timeout_s=5)
    failing = [(r.check, r.status.value, r.summary) for r in results if r.status is not Status.OK]
    assert not failing, failing
    found = _by_name(results)
    assert "connection.sanvi_app_db" in found and "connection.aws_default" in found
    assert found["connection.slack_api_default"].summary.startswith("Slack token works")
    assert any(r.path == "/api/auth.test" for r in slack_api.requests)
    assert found["pg_bin.version"].summary.endswith("all PostgreSQL 18 like the server")
    assert {
        "role.pg_monitor",
        "role.replication",
        "role.maintain",
        "airflow.pool",
        "airflow.base_url",
    } <= set(found)
    assert exit_code(results) == 0


def test_missing_pieces_are_named_findings(deployment, monkeypatch, tmp_path):
    """No Slack/Prometheus/Airflow API: warnings naming the connection; no pool, a loopback
    base_url, binaries missing or of another major, an absent bucket: errors with a fix."""
    from airflow.models.pool import Pool

    for var in (
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        "AIRFLOW_CONN_SANVI_PROMETHEUS",
        "AIRFLOW_CONN_SANVI_AIRFLOW_API",
    ):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_REDIS", "redis://:pw@127.0.0.1:notaport/0")
    cfg = _cfg()
    Pool.delete_pool(cfg.tasks.database_maintenance.settings.pool)
    # A bin dir with one binary of the wrong major version (a real program answering --version).
    bindir = tmp_path / "bin"
    bindir.mkdir()
    old = bindir / "pg_basebackup"
    old.write_text("#!/bin/sh\necho 'pg_basebackup (PostgreSQL) 16.4'\n")
    old.chmod(0o755)
    cfg = cfg.model_copy(
        update={"database_backups": cfg.database_backups.model_copy(update={"pg_bin_dir": str(bindir)})}
    )
    boto = deployment
    import boto3

    boto3.client("s3", region_name="us-east-1", endpoint_url=boto["aws_endpoint"]).delete_bucket(
        Bucket=cfg.tasks.compliance_audit.settings.evidence.bucket
    )

    results = run_preflight(cfg, base_url="http://localhost:8080", timeout_s=5)
    found = _by_name(results)
    text = render(results)

    for conn_id in ("slack_api_default", "sanvi_prometheus", "sanvi_airflow_api"):
        r = found[f"connection.{conn_id}"]
        assert r.status is Status.WARNING and r.summary.startswith("not configured"), r
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in r.details["fix"]
    redis = found["connection.sanvi_redis"]
    assert redis.status is Status.ERROR and redis.summary.startswith("cannot parse connection 'sanvi_redis'")
    assert "pw" not in redis.summary.replace("pwd", "")
    assert found["airflow.pool"].status is Status.ERROR and "does not exist" in found["airflow.pool"].summary
    assert "airflow pools set" in found["airflow.pool"].details["fix"]
    assert (
        found["airflow.base_url"].status is Status.ERROR and "localhost" in found["airflow.base_url"].summary
    )
    assert found["pg_bin.pg_combinebackup"].status is Status.ERROR
    assert "pg_bin_dir" in found["pg_bin.pg_combinebackup"].summary
    version = found["pg_bin.version"]
    assert (
        version.status is Status.ERROR
        and "pg_basebackup 16" in version.summary
        and "PostgreSQL 18" in version.summary
    )
    evidence = found[f"aws.s3.{cfg.tasks.compliance_audit.settings.evidence.bucket}"]
    assert evidence.status is Status.ERROR and "does not exist" in evidence.summary
    assert exit_code(results) == 1
    assert "fix: set AIRFLOW_CONN_SLACK_API_DEFAULT" in text


def test_role_without_rights_is_named(deployment, monkeypatch):
    """A login role with no pg_monitor, no REPLICATION and no MAINTAIN on a table it does not own."""
    pg = deployment["pg"]
    app = psycopg.conninfo.conninfo_to_dict(deployment["app_dsn"])
    with psycopg.connect(deployment["app_dsn"], autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS preflight_weak")
        admin.execute("CREATE ROLE preflight_weak LOGIN PASSWORD 'weak-pw-123'")
        admin.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO preflight_weak").format(sql.Identifier(app["dbname"]))
        )
        admin.execute('CREATE TABLE "Orders; x" (id int)')
        admin.execute("CREATE TABLE mine (id int)")
        admin.execute("ALTER TABLE mine OWNER TO preflight_weak")
    try:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SANVI_APP_DB",
            conn_env(
                "postgres",
                host=pg.host,
                port=pg.port,
                login="preflight_weak",
                password="weak-pw-123",
                schema=app["dbname"],
            ),
        )
        results = run_preflight(_cfg(), base_url=BASE_URL, timeout_s=5)
        found = _by_name(results)
        assert found["connection.sanvi_app_db"].status is Status.OK
        monitor, repl, maintain = found["role.pg_monitor"], found["role.replication"], found["role.maintain"]
        assert (
            monitor.status is Status.ERROR and monitor.details["fix"] == "GRANT pg_monitor TO preflight_weak"
        )
        assert repl.status is Status.ERROR and "REPLICATION" in repl.details["fix"]
        assert maintain.status is Status.ERROR
        assert maintain.details["tables"] == ['public."Orders; x"'], maintain.details
        assert "pg_maintain" in maintain.details["fix"]
        assert exit_code(results) == 1
    finally:
        with psycopg.connect(deployment["app_dsn"], autocommit=True) as admin:
            admin.execute('DROP TABLE IF EXISTS mine, "Orders; x"')
            admin.execute("DROP OWNED BY preflight_weak")
            admin.execute("DROP ROLE IF EXISTS preflight_weak")


@pytest.fixture
def moto_enforces_iam(aws_endpoint):
    """Turn on moto's IAM enforcement for one test (as tests/tasks/system_health_check/test_health_aws.py)."""

    def reset_auth(value: str) -> str:
        req = urllib.request.Request(
            f"{aws_endpoint}/moto-api/reset-auth",
            data=value.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback moto
            return str(json.loads(resp.read())["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    previous: list[str] = []
    yield lambda: previous.append(reset_auth("0"))
    if previous:
        reset_auth(previous[0])


def test_access_denied_names_the_iam_action(deployment, boto_client, moto_enforces_iam, monkeypatch):
    """An AWS role allowed S3 but not KMS: the KMS finding names kms:DescribeKey."""
    from sanvi_ops.airflow_kit.preflight import check_aws_access

    iam = boto_client("iam")
    iam.create_user(UserName="s3-only")
    iam.put_user_policy(
        UserName="s3-only",
        PolicyName="s3-only",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="s3-only")["AccessKey"]
    moto_enforces_iam()
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        conn_env(
            "aws",
            login=key["AccessKeyId"],
            password=key["SecretAccessKey"],
            extra={"endpoint_url": deployment["aws_endpoint"], "region_name": "us-east-1"},
        ),
    )
    cfg = _cfg()
    found = _by_name(check_aws_access(cfg))
    assert found[f"aws.s3.{cfg.database_backups.bucket}"].status is Status.OK
    kms = found[f"aws.kms.{cfg.database_backups.kms_key_alias}"]
    assert kms.status is Status.ERROR, kms
    assert kms.details["missing_action"] == "kms:DescribeKey"
    assert "permission missing: kms:DescribeKey" in kms.summary
    assert key["SecretAccessKey"] not in kms.summary


def test_cli_exit_code_and_json(deployment, monkeypatch):
    """``python -m sanvi_ops preflight``: non-zero with a failing finding, JSON on request, no secret."""
    from airflow.models.pool import Pool

    cfg = _cfg()
    Pool.delete_pool(cfg.tasks.database_maintenance.settings.pool)
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = f"{REPO / 'include'}:{REPO / 'plugins'}:{REPO}"
    env["AIRFLOW__API__BASE_URL"] = BASE_URL
    proc = subprocess.run(
        [sys.executable, "-m", "sanvi_ops", "preflight", "--json", "--timeout", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    findings = {f["check"]: f for f in json.loads(proc.stdout)}
    assert findings["airflow.pool"]["status"] == "error"
    assert findings["airflow.base_url"]["status"] == "ok"
    assert findings["connection.sanvi_app_db"]["status"] == "ok"
    secret = deployment["pg"].password
    assert secret not in proc.stdout and secret not in proc.stderr


def test_bad_config_is_exit_2(tmp_path, monkeypatch):
    bad = shipped_config()
    bad["database_backups"]["part_size_mb"] = 1
    path = tmp_path / "maintenance.yaml"
    path.write_text(yaml.safe_dump(bad))
    from sanvi_ops.__main__ import main

    monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))
    assert main(["preflight"]) == 2


def test_nothing_configured_is_a_list_of_named_findings_not_a_crash(monkeypatch, tmp_path):
    """A bare install: no connection at all, no base_url. Every piece is named; nothing raises."""
    for var in [v for v in os.environ if v.startswith("AIRFLOW_CONN_")]:
        monkeypatch.delenv(var)
    results = run_preflight(_cfg(), base_url="", timeout_s=2)
    found = _by_name(results)
    for conn_id in ("sanvi_app_db", "sanvi_ops_store", "aws_default", "sanvi_redis"):
        assert found[f"connection.{conn_id}"].status is Status.ERROR
        assert "is not defined" in found[f"connection.{conn_id}"].summary
    assert found["connection.sanvi_prometheus"].status is Status.WARNING
    assert found["airflow.base_url"].status is Status.ERROR
    assert found["role.rights"].status is Status.ERROR and found["aws.access"].status is Status.ERROR
    assert exit_code(results) == 1
