"""The Security Scan's AWS checks against the moto server, seeded with compliant and
non-compliant resources side by side: each check flags exactly the bad ones."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.security_scan.airflow_tasks import _strip_account_label
from sanvi_ops.tasks.security_scan.security import (
    check_elasticache,
    check_iam,
    check_rds,
    check_s3_account,
    check_s3_buckets,
    check_security_groups,
)

pytestmark = pytest.mark.integration

PAB_ON = {
    k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
}


def _flagged(results):
    return {r.check: (r.status, r.details.get("control")) for r in results if r.status is not Status.OK}


def test_security_groups_flag_only_open_non_web_ports(boto_client):
    ec2 = boto_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]

    def group(name: str, perms: list[dict]) -> str:
        gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        return gid

    def tcp(port: int, cidr: str | None = None, cidr6: str | None = None) -> dict:
        perm: dict = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
        if cidr:
            perm["IpRanges"] = [{"CidrIp": cidr}]
        if cidr6:
            perm["Ipv6Ranges"] = [{"CidrIpv6": cidr6}]
        return perm

    group("web", [tcp(443, "0.0.0.0/0", "::/0"), tcp(80, "0.0.0.0/0")])
    group("internal-db", [tcp(5432, "10.0.0.0/8")])
    ssh = group("ssh-open", [tcp(22, "0.0.0.0/0")])
    alt = group("alt-https", [tcp(8443, cidr6="::/0")])
    pg = group(
        "db-open",
        [{"IpProtocol": "tcp", "FromPort": 5000, "ToPort": 5500, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )

    # AWS (and moto) create each VPC's default group with a self-referencing inbound rule and an
    # allow-all outbound rule: EC2.2 flags it until its rules are removed. Emptied: not flagged.
    defaults = {
        g["VpcId"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])[
            "SecurityGroups"
        ]
    }
    ours = defaults.pop(vpc)
    ec2.revoke_security_group_ingress(GroupId=ours["GroupId"], IpPermissions=ours["IpPermissions"])
    ec2.revoke_security_group_egress(GroupId=ours["GroupId"], IpPermissions=ours["IpPermissionsEgress"])

    results = check_security_groups(ec2, allowed_ports=[80, 443])
    assert _flagged(results) == {
        f"ec2.sg_open[{ssh}:port_22]": (Status.CRITICAL, "EC2.19"),
        f"ec2.sg_open[{alt}:port_8443]": (Status.WARNING, "EC2.18"),
        f"ec2.sg_open[{pg}:ports_5000-5500]": (Status.CRITICAL, "EC2.19"),
        **{f"ec2.default_sg[{g['GroupId']}]": (Status.WARNING, "EC2.2") for g in defaults.values()},
    }
    assert defaults, "moto's default VPC has a default group"
    without_defaults = check_security_groups(ec2, allowed_ports=[80, 443], check_default_groups=False)
    assert not [r for r in without_defaults if r.check.startswith("ec2.default_sg")]
    by_check = {r.check: r for r in results}
    ssh_result = by_check[f"ec2.sg_open[{ssh}:port_22]"]
    assert ssh_result.severity == "P2" and ssh_result.summary.startswith("[EC2.19] security group ")
    assert "Action:" in ssh_result.summary


def test_s3_account_and_buckets(boto_client, aws_endpoint):
    import boto3

    s3 = boto_client("s3")
    control = boto3.client("s3control", region_name="us-east-1", endpoint_url=aws_endpoint)
    control.meta.events.register("before-send.s3-control", _strip_account_label)
    account = boto_client("sts").get_caller_identity()["Account"]

    [off] = check_s3_account(control, account)
    assert (off.status, off.details["control"]) == (Status.WARNING, "S3.1")
    assert off.summary.startswith("[S3.1] account ")
    control.put_public_access_block(AccountId=account, PublicAccessBlockConfiguration=PAB_ON)
    [on] = check_s3_account(control, account)
    assert on.status is Status.OK

    s3.create_bucket(Bucket="sanvi-good")
    s3.put_public_access_block(Bucket="sanvi-good", PublicAccessBlockConfiguration=PAB_ON)
    s3.put_bucket_encryption(
        Bucket="sanvi-good",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    s3.put_bucket_policy(
        Bucket="sanvi-good",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TLSOnly",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": ["arn:aws:s3:::sanvi-good", "arn:aws:s3:::sanvi-good/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            }
        ),
    )
    assert [r.status for r in check_s3_buckets(s3)] == [Status.OK]

    s3.create_bucket(Bucket="sanvi-bad")
    s3.put_public_access_block(
        Bucket="sanvi-bad", PublicAccessBlockConfiguration={**PAB_ON, "RestrictPublicBuckets": False}
    )
    results = check_s3_buckets(s3)
    assert _flagged(results) == {
        "s3.public_access_block[sanvi-bad]": (Status.WARNING, "S3.8"),
        "s3.encryption[sanvi-bad]": (Status.WARNING, "S3.4"),
        "s3.tls_only[sanvi-bad]": (Status.WARNING, "S3.5"),
    }
    pab = next(r for r in results if r.check == "s3.public_access_block[sanvi-bad]")
    assert pab.summary.startswith("[S3.8] bucket sanvi-bad: public access block off (RestrictPublicBuckets)")


def test_rds_instances_and_snapshots(boto_client):
    rds = boto_client("rds")
    common = {
        "Engine": "postgres",
        "DBInstanceClass": "db.t3.micro",
        "MasterUsername": "sanvi",
        "MasterUserPassword": "not-a-real-password",
        "AllocatedStorage": 20,
    }
    rds.create_db_instance(
        DBInstanceIdentifier="good-db",
        PubliclyAccessible=False,
        StorageEncrypted=True,
        BackupRetentionPeriod=7,
        **common,
    )
    rds.create_db_instance(
        DBInstanceIdentifier="bad-db",
        PubliclyAccessible=True,
        StorageEncrypted=False,
        BackupRetentionPeriod=0,
        **common,
    )
    rds.create_db_snapshot(DBInstanceIdentifier="good-db", DBSnapshotIdentifier="good-snap")
    rds.create_db_snapshot(DBInstanceIdentifier="bad-db", DBSnapshotIdentifier="bad-snap")

    results = check_rds(rds)
    flagged = _flagged(results)
    snapshots = {c: v for c, v in flagged.items() if c.startswith("rds.snapshot_encrypted[")}
    assert {c: v for c, v in flagged.items() if c not in snapshots} == {
        "rds.public[bad-db]": (Status.CRITICAL, "RDS.2"),
        "rds.storage_encrypted[bad-db]": (Status.WARNING, "RDS.3"),
        "rds.backups[bad-db]": (Status.CRITICAL, "RDS.11"),
    }
    # the manual snapshot and any automated one moto took of bad-db; none of good-db's
    assert snapshots["rds.snapshot_encrypted[bad-snap]"] == (Status.WARNING, "RDS.4")
    assert all("bad" in c and "good" not in c for c in snapshots), snapshots
    assert all(r.severity == "P2" for r in results if r.status is Status.CRITICAL)


def test_iam_mfa_key_age_and_unused(boto_client):
    iam = boto_client("iam")
    for user in ("alice", "bob", "carol"):
        iam.create_user(UserName=user)
    for user in ("alice", "bob"):
        iam.create_login_profile(UserName=user, Password="Not-a-real-password-1")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="alice", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    key = iam.create_access_key(UserName="carol")["AccessKey"]["AccessKeyId"]
    inactive = iam.create_access_key(UserName="alice")["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName="alice", AccessKeyId=inactive, Status="Inactive")

    now = dt.datetime.now(dt.UTC)
    assert _flagged(check_iam(iam, now=now)) == {"iam.mfa[bob]": (Status.WARNING, "IAM.5")}

    # 100 days on (moto stamps every key "now"): carol's key is past the 90-day rotation and
    # never used; both passwords were never used; alice's inactive key is not reported.
    later = check_iam(iam, key_max_age_days=90, unused_days=90, now=now + dt.timedelta(days=100))
    masked = f"…{key[-4:]}"
    assert _flagged(later) == {
        "iam.mfa[bob]": (Status.WARNING, "IAM.5"),
        "iam.unused_password[alice]": (Status.WARNING, "IAM.8"),
        "iam.unused_password[bob]": (Status.WARNING, "IAM.8"),
        f"iam.key_age[carol:{masked}]": (Status.WARNING, "IAM.3"),
        f"iam.unused_key[carol:{masked}]": (Status.WARNING, "IAM.8"),
    }
    assert all(key not in r.summary and key not in json.dumps(r.details) for r in later)


def test_elasticache_encryption(boto_client):
    ec = boto_client("elasticache")
    common = {"Engine": "redis", "CacheNodeType": "cache.t3.micro"}
    ec.create_replication_group(
        ReplicationGroupId="good-rg",
        ReplicationGroupDescription="good",
        TransitEncryptionEnabled=True,
        AtRestEncryptionEnabled=True,
        **common,
    )
    ec.create_replication_group(
        ReplicationGroupId="bad-rg",
        ReplicationGroupDescription="bad",
        TransitEncryptionEnabled=False,
        AtRestEncryptionEnabled=False,
        **common,
    )
    assert _flagged(check_elasticache(ec)) == {
        "elasticache.at_rest[bad-rg]": (Status.WARNING, "ElastiCache.4"),
        "elasticache.in_transit[bad-rg]": (Status.WARNING, "ElastiCache.5"),
    }


def test_empty_account_reports_all_clear(boto_client):
    for results in (
        check_rds(boto_client("rds")),
        check_iam(boto_client("iam")),
        check_elasticache(boto_client("elasticache")),
        check_s3_buckets(boto_client("s3")),
    ):
        assert [r.status for r in results] and all(r.status is Status.OK for r in results), results
