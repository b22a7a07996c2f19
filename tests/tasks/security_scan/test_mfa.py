"""MFA for all admin access (the Security Scan's ``scan_admin_mfa``).

IAM against the moto server: admins with and without MFA, through a policy attached to the user
or to a group, with and without a console password. moto keeps no root MFA and its Security Hub
ignores ``GetFindings`` filters, so the root-MFA-enabled answer and Security Hub's IAM.5/IAM.6
findings (and its "not subscribed" error) are tested with botocore's Stubber, fed responses
shaped as the AWS API reference documents them.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.stub import Stubber

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.security_scan.mfa import check_admin_mfa, check_security_hub_mfa


def _stubbed(service: str):
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


@pytest.mark.integration
def test_admins_without_mfa_are_critical_findings(boto_client) -> None:
    iam = boto_client("iam")
    tag = uuid.uuid4().hex[:6]
    direct, grouped, with_mfa, keys_only, plain = (
        f"{n}-{tag}" for n in ("direct", "grouped", "mfa", "keys", "plain")
    )
    group = f"admins-{tag}"
    # moto server loads no AWS-managed policies: a customer-managed full-admin policy ("*" on "*")
    doc = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    admin = iam.create_policy(PolicyName=f"FullAdmin-{tag}", PolicyDocument=doc)["Policy"]["Arn"]
    readonly = iam.create_policy(
        PolicyName=f"ReadOnly-{tag}",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}',
    )["Policy"]["Arn"]
    iam.create_group(GroupName=group)
    iam.attach_group_policy(GroupName=group, PolicyArn=admin)
    for user in (direct, grouped, with_mfa, keys_only, plain):
        iam.create_user(UserName=user)
        if user != keys_only:
            iam.create_login_profile(UserName=user, Password="Secret-123456!")
    iam.attach_user_policy(UserName=direct, PolicyArn=admin)
    iam.attach_user_policy(UserName=keys_only, PolicyArn=admin)
    iam.add_user_to_group(GroupName=group, UserName=grouped)
    iam.attach_user_policy(UserName=with_mfa, PolicyArn=admin)
    iam.attach_user_policy(UserName=plain, PolicyArn=readonly)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"mfa-{tag}")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName=with_mfa, SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )

    results = {r.check: r for r in check_admin_mfa(iam)}
    assert results["iam.root_mfa"].status is Status.CRITICAL  # moto's root has no MFA
    assert results[f"iam.admin_mfa[{direct}]"].status is Status.CRITICAL
    assert "via attached" in results[f"iam.admin_mfa[{direct}]"].summary
    assert results[f"iam.admin_mfa[{grouped}]"].details["via"] == f"group {group}"
    mine = {c for c in results if tag in c}
    assert mine == {f"iam.admin_mfa[{direct}]", f"iam.admin_mfa[{grouped}]"}  # MFA, keys-only, non-admin pass


def test_root_with_mfa_and_no_admins_is_green() -> None:
    iam, stub = _stubbed("iam")
    stub.add_response("get_account_summary", {"SummaryMap": {"AccountMFAEnabled": 1, "Users": 1}})
    stub.add_response("list_users", {"Users": [], "IsTruncated": False})
    with stub:
        results = check_admin_mfa(iam)
    assert [(r.check, r.status) for r in results] == [
        ("iam.root_mfa", Status.OK),
        ("iam.admin_mfa", Status.OK),
    ]


def test_refused_account_summary_names_the_action() -> None:
    iam, stub = _stubbed("iam")
    stub.add_client_error("get_account_summary", "AccessDenied", "not authorized", http_status_code=403)
    stub.add_response("list_users", {"Users": [], "IsTruncated": False})
    with stub:
        root = check_admin_mfa(iam)[0]
    assert root.status is Status.ERROR and "GetAccountSummary" in root.summary


def _finding(control: str, resource: str, status: str = "FAILED") -> dict:
    # Shaped as an AWS Security Finding Format (ASFF) finding of the GetFindings reference.
    return {
        "SchemaVersion": "2018-10-08",
        "Id": f"arn:aws:securityhub:us-east-1:123456789012:subscription/{control}/finding/{resource}",
        "ProductArn": "arn:aws:securityhub:us-east-1::product/aws/securityhub",
        "GeneratorId": f"security-control/{control}",
        "AwsAccountId": "123456789012",
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2026-11-01T00:00:00.000Z",
        "UpdatedAt": "2026-12-01T00:00:00.000Z",
        "Severity": {"Label": "CRITICAL" if control == "IAM.6" else "MEDIUM"},
        "Title": f"{control} MFA should be enabled",
        "Description": "MFA",
        "Resources": [{"Type": "AwsAccount" if control == "IAM.6" else "AwsIamUser", "Id": resource}],
        "Compliance": {"Status": status, "SecurityControlId": control},
        "RecordState": "ACTIVE",
    }


def test_security_hub_failed_mfa_controls_are_findings() -> None:
    hub, stub = _stubbed("securityhub")
    stub.add_response(
        "get_findings",
        {"Findings": [_finding("IAM.6", "AWS::::Account:123456789012")], "NextToken": "page2"},
    )
    stub.add_response(
        "get_findings",
        {
            "Findings": [
                _finding("IAM.5", "arn:aws:iam::123456789012:user/ops"),
                _finding("IAM.5", "x", "PASSED"),
            ]
        },
    )
    with stub:
        results = {r.check: r.status for r in check_security_hub_mfa(hub)}
    assert results == {
        "securityhub.IAM.6[AWS::::Account:123456789012]": Status.CRITICAL,
        "securityhub.IAM.5[arn:aws:iam::123456789012:user/ops]": Status.WARNING,
    }


def test_security_hub_not_enabled_is_skipped_and_says_so() -> None:
    hub, stub = _stubbed("securityhub")
    stub.add_client_error(
        "get_findings",
        "InvalidAccessException",
        "Account 123456789012 is not subscribed to AWS Security Hub",
        http_status_code=401,
    )
    with stub:
        (result,) = check_security_hub_mfa(hub)
    assert result.status is Status.SKIPPED and "not enabled" in result.summary
