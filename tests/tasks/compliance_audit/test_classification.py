"""Data classification against the moto server: tagged and untagged buckets and RDS instances,
compliant and not side by side; each violation is one finding naming the resource and the rule.
(The test reads only its own resources: ``s3_buckets`` / ``rds_instances`` name them.)"""

from __future__ import annotations

import uuid

import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.tasks.compliance_audit.classification import check_classification
from sanvi_ops.tasks.compliance_audit.config import DataClassificationConfig

pytestmark = pytest.mark.integration

PAB_ON = {
    k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
}


def _bucket(s3, name, cls=None):
    s3.create_bucket(Bucket=name)
    if cls:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": "DataClassification", "Value": cls}]})


def _sse(s3, name, key):
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}
            ]
        },
    )


def _db(rds, name, cls, **extra):
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t4g.medium",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="u",
        MasterUserPassword="local-test-only",
        Tags=[{"Key": "DataClassification", "Value": cls}],
        **extra,
    )


def test_each_violation_names_the_resource_and_the_rule(boto_client) -> None:
    s3, rds, kms, logs = (boto_client(s) for s in ("s3", "rds", "kms", "logs"))
    t = uuid.uuid4().hex[:6]
    good, shared, open_, untagged, bad_tag, public = (
        f"{n}-{t}" for n in ("good", "shared", "open", "untagged", "badtag", "public")
    )
    logbucket = f"logs-{t}"
    own = kms.create_key()["KeyMetadata"]["KeyId"]
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    _bucket(s3, logbucket, "Internal")
    s3.put_bucket_acl(Bucket=logbucket, ACL="log-delivery-write")
    s3.put_bucket_lifecycle_configuration(
        Bucket=logbucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "keep",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "good/"},
                    "Expiration": {"Days": 1100},
                },
                {
                    "ID": "short",
                    "Status": "Enabled",
                    "Filter": {"Prefix": "short/"},
                    "Expiration": {"Days": 90},
                },
            ]
        },
    )
    _bucket(s3, good, "Confidential")
    _sse(s3, good, own)
    s3.put_public_access_block(Bucket=good, PublicAccessBlockConfiguration=PAB_ON)
    s3.put_bucket_logging(
        Bucket=good,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logbucket, "TargetPrefix": "good/"}},
    )
    _bucket(s3, shared, "restricted")  # case does not matter
    _sse(s3, shared, other)
    _bucket(s3, open_, "Confidential")
    _sse(s3, open_, other)  # shares the key with `shared`
    s3.put_bucket_logging(
        Bucket=open_,
        BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": logbucket, "TargetPrefix": "short/"}},
    )
    _bucket(s3, untagged)
    _bucket(s3, bad_tag, "Secret")
    _bucket(s3, public, "Public")  # no rules

    db_key = kms.create_key()["KeyMetadata"]["Arn"]
    db_good, db_bad = f"db-good-{t}", f"db-bad-{t}"
    _db(
        rds,
        db_good,
        "Restricted",
        StorageEncrypted=True,
        KmsKeyId=db_key,
        PubliclyAccessible=False,
        EnableCloudwatchLogsExports=["postgresql"],
    )
    logs.create_log_group(logGroupName=f"/aws/rds/instance/{db_good}/postgresql")
    logs.put_retention_policy(logGroupName=f"/aws/rds/instance/{db_good}/postgresql", retentionInDays=1096)
    _db(rds, db_bad, "Confidential", PubliclyAccessible=True)

    cfg = DataClassificationConfig(
        s3_buckets=[logbucket, good, shared, open_, untagged, bad_tag, public],
        rds_instances=[db_good, db_bad],
    )
    found = {r.check: r for r in check_classification(s3, rds, kms, logs, cfg)}
    assert {c: r.status for c, r in found.items()} == {
        f"classification.tag[s3:{untagged}]": Status.WARNING,
        f"classification.tag[s3:{bad_tag}]": Status.WARNING,
        f"classification.own_kms_key[s3:{shared}]": Status.WARNING,
        f"classification.no_public_access[s3:{shared}]": Status.WARNING,
        f"classification.access_logging[s3:{shared}]": Status.WARNING,
        f"classification.own_kms_key[s3:{open_}]": Status.WARNING,
        f"classification.no_public_access[s3:{open_}]": Status.WARNING,
        f"classification.access_log_retention[s3:{open_}]": Status.WARNING,
        f"classification.own_kms_key[rds:{db_bad}]": Status.WARNING,
        f"classification.no_public_access[rds:{db_bad}]": Status.WARNING,
        f"classification.access_logging[rds:{db_bad}]": Status.WARNING,
    }
    assert "shared with 1 other bucket" in found[f"classification.own_kms_key[s3:{shared}]"].summary
    assert "expire after 90 days" in found[f"classification.access_log_retention[s3:{open_}]"].summary
    assert "'Secret' is not a data class" in found[f"classification.tag[s3:{bad_tag}]"].summary

    fixed = DataClassificationConfig(s3_buckets=[logbucket, good, public], rds_instances=[db_good])
    (ok,) = check_classification(s3, rds, kms, logs, fixed)
    assert ok.check == "classification.resources" and ok.status is Status.OK
    assert ok.details == {"s3": {"total": 3, "strict": 1}, "rds": {"total": 1, "strict": 1}}


def test_aws_managed_key_is_not_a_key_of_its_own() -> None:
    import boto3
    from botocore.stub import Stubber

    # moto has no AWS-managed keys: DescribeKey shaped as the KMS reference answers for aws/rds.
    kms = boto3.client("kms", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    db = {
        "DBInstanceIdentifier": "prod",
        "DBInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:prod",
        "StorageEncrypted": True,
        "KmsKeyId": key,
        "PubliclyAccessible": False,
        "EnabledCloudwatchLogsExports": [],
        "TagList": [{"Key": "DataClassification", "Value": "Restricted"}],
    }
    with Stubber(rds) as rstub, Stubber(kms) as kstub:
        rstub.add_response("describe_db_instances", {"DBInstances": [db]})
        kstub.add_response(
            "describe_key", {"KeyMetadata": {"KeyId": key.rsplit("/", 1)[1], "Arn": key, "KeyManager": "AWS"}}
        )
        cfg = DataClassificationConfig(s3_buckets=[], rds_instances=["prod"])
        from sanvi_ops.tasks.compliance_audit.classification import _Kms, _rds

        found, total, strict = _rds(rds, _Kms(kms), None, cfg)
    assert (total, strict) == (1, 1)
    assert {r.check for r in found} == {
        "classification.own_kms_key[rds:prod]",
        "classification.access_logging[rds:prod]",
    }
    assert "default AWS-managed key" in next(r for r in found if "own_kms_key" in r.check).summary
