"""The Security Patch Review end to end: ``dag.test()`` against servers on 127.0.0.1.

ECR is the moto server (scan findings set through moto's API), the application database and the
results store are real PostgreSQL, Slack is the Slack-compatible test server. moto does not
implement RDS ``DescribePendingMaintenanceActions``/``DescribeDBEngineVersions`` nor ElastiCache
``DescribeCacheEngineVersions``/``DescribeUpdateActions``, so the RDS and ElastiCache clients
are botocore ``Stubber``-backed here, fed responses shaped as in the AWS API references.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag
from tests.tasks.security_patch_review.test_patches_aws import _repo, _set_findings

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "security_patch_review"
ARN = "arn:aws:rds:us-east-1:123456789012:db:sanvi-production-db"


def _stubbed(service: str, endpoint: str):
    """A client whose every call is answered by a Stubber (the APIs moto lacks)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)
    stub = Stubber(client)
    if service == "rds":
        stub.add_response(
            "describe_pending_maintenance_actions",
            {
                "PendingMaintenanceActions": [
                    {
                        "ResourceIdentifier": ARN,
                        "PendingMaintenanceActionDetails": [
                            {
                                "Action": "system-update",
                                "Description": "New Operating System update is available",
                            }
                        ],
                    }
                ]
            },
        )
        stub.add_response(
            "describe_db_instances",
            {
                "DBInstances": [
                    {
                        "DBInstanceIdentifier": "sanvi-production-db",
                        "DBInstanceArn": ARN,
                        "Engine": "postgres",
                        "EngineVersion": "16.11",
                    }
                ]
            },
        )
        stub.add_response(
            "describe_db_engine_versions",
            {
                "DBEngineVersions": [
                    {"Engine": "postgres", "EngineVersion": "16.11", "ValidUpgradeTarget": []}
                ]
            },
        )
    else:
        stub.add_response(
            "describe_cache_clusters",
            {
                "CacheClusters": [
                    {"CacheClusterId": "sanvi-production-redis", "Engine": "redis", "EngineVersion": "7.1.0"}
                ]
            },
        )
        stub.add_response(
            "describe_cache_engine_versions",
            {"CacheEngineVersions": [{"Engine": "redis", "EngineVersion": "7.1.0"}]},
        )
        stub.add_response("describe_update_actions", {"UpdateActions": []})
    stub.activate()
    return client


@pytest.fixture
def patch_env(e2e, aws_endpoint, boto_client, tmp_path, monkeypatch):
    cfg = shipped_config()
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))

    ecr = boto_client("ecr")
    for name in cfg["tasks"]["security_patch_review"]["settings"]["ecr_repositories"]:
        _repo(ecr, name)
    _set_findings(
        aws_endpoint,
        "sanvi-backend",
        {"CRITICAL": 1},
        [
            {
                "name": "CVE-2026-1111",
                "severity": "CRITICAL",
                "attributes": [{"key": "package_name", "value": "openssl"}],
            }
        ],
    )
    _set_findings(aws_endpoint, "sanvi-frontend", {"LOW": 1}, [])

    from sanvi_ops.airflow_kit import connections

    real = connections.aws_client

    def aws_client(conn_id: str, service: str, region_name: str | None = None):
        if service in ("rds", "elasticache"):
            return _stubbed(service, aws_endpoint)
        return real(conn_id, service, region_name)

    monkeypatch.setattr(connections, "aws_client", aws_client)

    return {"store_dsn": e2e.connect(app_db=True, aws=True)["store_dsn"]}


def test_findings_stored_with_actions_and_critical_image_opens_incident(patch_env, slack_api) -> None:
    dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 30, 9, 0, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["notify"] == "failed", states  # a CRITICAL image finding makes the run red
    assert all(s == "success" for t, s in states.items() if t != "notify"), states

    with psycopg.connect(patch_env["store_dsn"]) as conn:
        rows = {
            name: (status, summary)
            for name, status, summary in conn.execute(
                "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        }
    assert rows["ecr.image_findings[sanvi-backend]"][0] == "critical"
    assert "CVE-2026-1111" in rows["ecr.image_findings[sanvi-backend]"][1]
    assert rows["ecr.image_findings[sanvi-frontend]"][0] == "ok"
    assert rows["rds.pending_maintenance[sanvi-production-db]"][0] == "warning"
    assert "Action:" in rows["rds.pending_maintenance[sanvi-production-db]"][1]
    assert rows["rds.engine_version[sanvi-production-db]"][0] == "ok"
    assert rows["elasticache.engine_version[sanvi-production-redis]"][0] == "ok"
    assert rows["elasticache.service_updates[sanvi-production-redis]"][0] == "ok"
    assert rows["postgres.server_version"][0] in ("ok", "warning")

    texts = [json.dumps(m) for m in slack_api.messages]
    assert any("Security Patch Review" in t for t in texts), texts
    incident = [m["text"] for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
    assert len(incident) == 1 and "sanvi-backend" in incident[0] and "P3" in incident[0]


def test_manual_run_with_a_checks_selection_reports_the_rest_as_skipped(patch_env, slack_api) -> None:
    """The trigger form's ``checks``: only the PostgreSQL version is reviewed; the three other
    sources do not run (no ECR finding, so no incident and a green run) and say so."""
    dr = load_dag(DAG_ID).test(
        logical_date=datetime(2026, 11, 30, 9, 0, tzinfo=UTC),
        run_conf={"checks": ["check_postgres_version"]},
    )
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert all(s == "success" for s in states.values()), states  # the critical image was not looked at

    with psycopg.connect(patch_env["store_dsn"]) as conn:
        rows = {
            name: (status, summary)
            for name, status, summary in conn.execute(
                "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
                (DAG_ID, dr.run_id),
            ).fetchall()
        }
    for task_id in ("check_rds_patches", "check_elasticache_patches", "check_ecr_images"):
        status, summary = rows[f"{task_id}.not_selected"]
        assert status == "skipped" and "selected only check_postgres_version" in summary
    assert rows["postgres.server_version"][0] in ("ok", "warning")
    assert not [name for name in rows if name.startswith(("ecr.", "rds.", "elasticache."))], rows
    assert not [m for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
