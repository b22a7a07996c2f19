"""Security Scan logic without servers: permission errors, policy parsing, key ages, config.

AccessDenied responses and per-key timestamps cannot be produced by moto (it grants every call
and stamps every key "now"), so these tests feed botocore's ``Stubber`` with responses shaped as
in the AWS API reference (IAM ListUsers/ListAccessKeys/GetAccessKeyLastUsed, S3 errors).
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, ConfigError, parse_config
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.security_scan.airflow_tasks import _strip_account_label, tls_targets
from sanvi_ops.tasks.security_scan.security import (
    _denies_insecure_transport,
    check_iam,
    check_rds,
    check_s3_buckets,
)

NOW = dt.datetime(2026, 11, 10, 11, 0, tzinfo=dt.UTC)


def _client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_access_denied_names_the_missing_action_and_other_buckets_still_run():
    s3 = _client("s3")
    with Stubber(s3) as stub:
        stub.add_response("list_buckets", {"Buckets": [{"Name": "a"}, {"Name": "b"}]})
        stub.add_client_error("get_public_access_block", "AccessDenied", "Access Denied", 403)
        stub.add_client_error(
            "get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError", "none", 404
        )
        stub.add_client_error("get_bucket_policy", "NoSuchBucketPolicy", "none", 404)
        stub.add_response(
            "get_public_access_block",
            {
                "PublicAccessBlockConfiguration": dict.fromkeys(
                    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
                    True,
                )
            },
        )
        stub.add_response(
            "get_bucket_encryption",
            {
                "ServerSideEncryptionConfiguration": {
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                }
            },
        )
        stub.add_response(
            "get_bucket_policy",
            {
                "Policy": json.dumps(
                    {
                        "Statement": [
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        ]
                    }
                )
            },
        )
        results = check_s3_buckets(s3)
    by = {r.check: r for r in results}
    denied = by["s3.public_access_block[a]"]
    assert denied.status is Status.ERROR
    assert denied.details == {"control": "S3.8", "missing_action": "s3:GetBucketPublicAccessBlock"}
    assert "s3:GetBucketPublicAccessBlock" in denied.summary
    assert by["s3.encryption[a]"].status is Status.WARNING
    assert not [c for c in by if c.endswith("[b]")]  # b is compliant: no finding


def test_access_denied_on_listing_is_one_error():
    rds = _client("rds")
    with Stubber(rds) as stub:
        stub.add_client_error("describe_db_instances", "AccessDenied", "not authorized", 403)
        stub.add_response("describe_db_snapshots", {"DBSnapshots": []})
        results = check_rds(rds)
    assert [(r.check, r.status) for r in results] == [
        ("rds.instances", Status.ERROR),
        ("rds.snapshots", Status.OK),
    ]
    assert results[0].details["missing_action"] == "rds:DescribeDBInstances"


def test_iam_key_ages_against_the_rotation_rule():
    iam = _client("iam")
    old, fresh = "AKIAOLDOLDOLDOLD1111", "AKIAFRESHFRESHFR2222"
    with Stubber(iam) as stub:
        stub.add_response(
            "list_users",
            {
                "Users": [
                    {
                        "Path": "/",
                        "UserName": "dave",
                        "UserId": "AIDAEXAMPLE0000000001",
                        "Arn": "arn:aws:iam::123456789012:user/dave",
                        "CreateDate": NOW - dt.timedelta(days=400),
                    }
                ]
            },
        )
        stub.add_client_error("get_login_profile", "NoSuchEntity", "no login profile", 404)
        stub.add_response(
            "list_access_keys",
            {
                "AccessKeyMetadata": [
                    {
                        "UserName": "dave",
                        "AccessKeyId": old,
                        "Status": "Active",
                        "CreateDate": NOW - dt.timedelta(days=91),
                    },
                    {
                        "UserName": "dave",
                        "AccessKeyId": fresh,
                        "Status": "Active",
                        "CreateDate": NOW - dt.timedelta(days=10),
                    },
                ]
            },
        )
        stub.add_response(
            "get_access_key_last_used",
            {
                "UserName": "dave",
                "AccessKeyLastUsed": {
                    "LastUsedDate": NOW - dt.timedelta(days=1),
                    "ServiceName": "s3",
                    "Region": "us-east-1",
                },
            },
        )
        stub.add_response(
            "get_access_key_last_used",
            {"UserName": "dave", "AccessKeyLastUsed": {"ServiceName": "N/A", "Region": "N/A"}},
        )
        results = check_iam(iam, key_max_age_days=90, unused_days=90, now=NOW)
    assert [(r.check, r.details["control"]) for r in results] == [("iam.key_age[dave:…1111]", "IAM.3")]
    assert "91 days old" in results[0].summary and old not in results[0].summary


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"Statement": [{"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}, True),
        ({"Statement": {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": False}}}}, True),
        (
            {"Statement": [{"Effect": "Allow", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
            False,
        ),
        ({"Statement": [{"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}, False),
        ({"Statement": []}, False),
    ],
)
def test_tls_only_policy(policy, expected):
    assert _denies_insecure_transport(json.dumps(policy)) is expected


def test_tls_only_policy_garbage():
    assert _denies_insecure_transport(None) is False
    assert _denies_insecure_transport("{not json") is False


def test_s3control_account_label_is_dropped_for_ip_endpoints_only():
    for url, expected in [
        ("http://123456789012.127.0.0.1:5000/v20180820/x", "http://127.0.0.1:5000/v20180820/x"),
        ("http://123456789012.localhost:5000/x", "http://localhost:5000/x"),
        (
            "https://123456789012.s3-control.us-east-1.amazonaws.com/x",
            "https://123456789012.s3-control.us-east-1.amazonaws.com/x",
        ),
    ]:
        req = SimpleNamespace(url=url)
        _strip_account_label(req)
        assert req.url == expected


def _cfg(**section):
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["tasks"]["security_scan"]["settings"] = {**data["tasks"]["security_scan"]["settings"], **section}
    return parse_config(data)


def test_tls_targets_default_to_the_environments():
    targets = tls_targets(_cfg())
    assert ("production", "app.sanvi-machinery.com", 443) in targets
    assert len(targets) == 4


def test_tls_targets_override_list():
    cfg = _cfg(tls_endpoints=["https://127.0.0.1:8443/", "http://plain.example/"])
    assert tls_targets(cfg) == [("127.0.0.1", "127.0.0.1", 8443)]


def test_config_defaults_are_the_guides():
    sc = _cfg().tasks.security_scan.settings
    assert sc.key_max_age_days == 90 and sc.allowed_open_ports == [80, 443]
    assert (sc.cert_warning_days, sc.cert_critical_days) == (30, 7)


def test_config_rejects_critical_days_above_warning_days():
    with pytest.raises(ConfigError) as err:
        _cfg(cert_warning_days=5, cert_critical_days=7)
    assert any(
        p.startswith("tasks.security_scan.settings") and "cert_critical_days" in p for p in err.value.problems
    )


def test_config_rejects_bad_port():
    with pytest.raises(ConfigError) as err:
        _cfg(allowed_open_ports=[443, 70000])
    assert any(p.startswith("tasks.security_scan.settings.allowed_open_ports") for p in err.value.problems)


def test_tls_task_without_https_endpoints_is_skipped(tmp_path, monkeypatch):
    from sanvi_ops.tasks.security_scan import airflow_tasks as security_tasks

    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    for env in data["environments"].values():
        env["url"] = env["url"].replace("https://", "http://")
    path = tmp_path / "maintenance.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))
    [result] = security_tasks.tls_endpoints()
    assert (result["check"], result["status"]) == ("tls.endpoints", "skipped")
