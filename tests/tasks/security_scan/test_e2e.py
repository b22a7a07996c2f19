"""The Security Scan end to end: ``dag.test()`` against servers on 127.0.0.1.

AWS is the moto server (every call of the scan, s3control included), the TLS endpoint is a
local TLS server whose certificate a test CA signed (``tasks.security_scan.settings.tls_ca_file``), the results
store is real PostgreSQL, Slack is the Slack-compatible test server.
"""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag
from tests.tasks.security_scan.test_security_tls import _leaf, _TLSServer, ca  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "security_scan"


@pytest.fixture
def scan_env(e2e, tmp_path, monkeypatch, ca):  # noqa: F811
    cert, key = _leaf(ca, tmp_path, days_left=200)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server = _TLSServer(ctx)

    cfg = shipped_config()
    cfg["tasks"]["security_scan"]["settings"] = {
        **cfg["tasks"]["security_scan"]["settings"],
        "tls_endpoints": [f"https://127.0.0.1:{server.port}/"],
        "tls_ca_file": str(ca[2]),
        "tls_timeout_seconds": 5,
    }
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))

    env = e2e.connect(aws=True)
    yield {"store_dsn": env["store_dsn"], "endpoint": env["aws_endpoint"]}
    server.close()


def _stored(store_dsn: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s", (DAG_ID,)
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def test_open_ssh_port_is_critical_and_opens_a_p2_incident(scan_env, boto_client, slack_api):
    ec2 = boto_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    gid = ec2.create_security_group(GroupName="bastion", Description="bastion", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        ],
    )
    s3 = boto_client("s3")
    s3.create_bucket(Bucket="sanvi-open-bucket")

    dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 10, 11, 0, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["notify"] == "failed", states  # a critical finding turns the run red
    assert all(s == "success" for t, s in states.items() if t != "notify"), states

    rows = _stored(scan_env["store_dsn"])
    status, summary = rows[f"ec2.sg_open[{gid}:port_22]"]
    assert status == "critical" and summary.startswith("[EC2.19] security group ")
    assert rows["s3.account_public_access_block"][0] == "warning"  # s3control through moto
    assert rows["s3.public_access_block[sanvi-open-bucket]"][1].startswith("[S3.8] bucket sanvi-open-bucket")
    assert rows["s3.tls_only[sanvi-open-bucket]"][0] == "warning"
    assert rows["tls[127.0.0.1]"][0] == "ok", rows
    for check in ("rds.instances", "rds.snapshots", "iam.users", "elasticache.encryption"):
        assert rows[check][0] == "ok", (check, rows[check])

    assert rows["iam.root_mfa"][0] == "critical"  # moto has no API to give its root account MFA

    incidents = [m.get("text", "") for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
    assert len(incidents) == 2 and all("Severity: P2" in i for i in incidents), incidents
    assert any(gid in i for i in incidents) and any("root account has no MFA" in i for i in incidents), (
        incidents
    )
    assert any("Security Scan" in json.dumps(m) for m in slack_api.messages)
    assert "testing" not in json.dumps(slack_api.messages)
