"""The local stack's S3 replication (``devstack.s3_replication``) against the session's moto.

moto keeps a bucket's replication rule but copies nothing; the local stack's moto process copies
for it, so the DR-site activation finds its copies in the DR region. Seeded from the shipped
config: one replica per source bucket, versioned, in the DR region.
"""

from __future__ import annotations

import boto3

from devstack.s3_replication import configure, local_replicas, replicate_once
from sanvi_ops.core.config import load_config
from sanvi_ops.tasks.dr_testing.dr import check_bucket_region


def test_rules_replicate_new_and_changed_objects_to_the_dr_region(aws_endpoint: str) -> None:
    cfg = load_config()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    pairs = configure(session, aws_endpoint, cfg, "us-east-1", "us-west-2")
    replicas = local_replicas(cfg)
    assert set(pairs.values()) == set(replicas.values())
    assert replicas["configuration"] == replicas["backups"]  # the configuration backup shares the bucket
    east = session.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    west = session.client("s3", endpoint_url=aws_endpoint, region_name="us-west-2")
    for replica in pairs.values():
        assert check_bucket_region(west, replica, "us-west-2") is None
        assert west.get_bucket_versioning(Bucket=replica)["Status"] == "Enabled"
    backups = cfg.database_backups.bucket
    east.put_object(Bucket=backups, Key="postgres/x/manifest.json", Body=b"{}")
    east.put_object(Bucket=backups, Key="configuration/snapshot.json", Body=b'{"v": 1}')
    clients = {"us-east-1": east, "us-west-2": west}
    assert replicate_once(clients, east) >= 2
    dest = replicas["backups"]
    assert west.get_object(Bucket=dest, Key="configuration/snapshot.json")["Body"].read() == b'{"v": 1}'
    assert replicate_once(clients, east) == 0, "nothing new: nothing copied"
    east.put_object(Bucket=backups, Key="configuration/snapshot.json", Body=b'{"v": 2}')
    assert replicate_once(clients, east) == 1
    assert west.get_object(Bucket=dest, Key="configuration/snapshot.json")["Body"].read() == b'{"v": 2}'
    east.delete_object(Bucket=backups, Key="postgres/x/manifest.json")
    replicate_once(clients, east)
    assert west.head_object(Bucket=dest, Key="postgres/x/manifest.json"), "deletions are not replicated"
