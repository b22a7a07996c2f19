"""Cross-region replication for the local stack's moto, which stores a bucket's replication
configuration but never copies an object.

Real S3 copies each new object version of a bucket with a replication rule to the rule's
destination bucket (another region: the DR site's copies), asynchronously, usually within
minutes; it does not replicate deletions unless asked. :func:`replicate_once` does the same for
moto: every enabled rule's objects (under its filter prefix) that the destination lacks or holds
with another ETag are copied there. :func:`run` repeats it every few seconds in the moto process
of ``make run`` (``devstack.moto_state --replicate-every``), so the DR-site activation drill
finds the backups, files and configuration snapshot in ``tasks.dr_testing.settings.dr_region``.

:func:`configure` seeds it: the replica buckets in the DR region (versioned, as S3 requires) and
one rule per source bucket. :func:`local_replicas` names them from the config, for the seed and
for the local config's ``tasks.dr_testing.settings.replica_buckets``.

Local-stack only: never imported by the runtime package, and the endpoint must be loopback.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

#: The fake replication role (moto checks nothing; real S3 needs one with s3:Replicate*).
ROLE_ARN = "arn:aws:iam::123456789012:role/sanvi-local-replication"
SUFFIX = "-dr"


def _pairs(cfg: Any) -> dict[str, tuple[str, str]]:
    """Per ``replica_buckets`` entry: (source bucket, its ``<bucket>-dr`` replica). The sources are
    the buckets the jobs use: the database backups', the configuration backup's and the file bucket
    (when one is configured)."""
    from sanvi_ops.tasks.configuration_backup.airflow_tasks import bucket_of
    from sanvi_ops.tasks.file_storage_backup.airflow_tasks import buckets

    sources = {"backups": cfg.database_backups.bucket, "configuration": bucket_of(cfg)}
    with contextlib.suppress(ValueError):  # no file bucket configured: nothing to replicate
        sources["files"] = buckets(cfg)[0]
    return {name: (bucket, bucket + SUFFIX) for name, bucket in sources.items()}


def local_replicas(cfg: Any) -> dict[str, str]:
    """``tasks.dr_testing.settings.replica_buckets`` of the local stack."""
    return {name: replica for name, (_, replica) in _pairs(cfg).items()}


def _versioned(s3: Any, bucket: str, create: dict[str, Any]) -> None:
    """``bucket`` exists (created when missing) with versioning on, as replication requires."""
    from botocore.exceptions import ClientError

    try:
        s3.create_bucket(Bucket=bucket, **create)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        }:
            raise
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def configure(session: Any, endpoint_url: str, cfg: Any, region: str, dr_region: str) -> dict[str, str]:
    """Replica buckets in ``dr_region`` and a replication rule on each source bucket (both
    versioned); idempotent. Returns source → replica."""
    s3 = session.client("s3", endpoint_url=endpoint_url, region_name=region)
    west = session.client("s3", endpoint_url=endpoint_url, region_name=dr_region)
    pairs = dict(_pairs(cfg).values())
    for source, replica in pairs.items():
        _versioned(west, replica, {"CreateBucketConfiguration": {"LocationConstraint": dr_region}})
        _versioned(s3, source, {})
        s3.put_bucket_replication(
            Bucket=source,
            ReplicationConfiguration={
                "Role": ROLE_ARN,
                "Rules": [
                    {
                        "ID": "sanvi-dr-site",
                        "Priority": 1,
                        "Status": "Enabled",
                        "Filter": {"Prefix": ""},
                        "Destination": {"Bucket": f"arn:aws:s3:::{replica}"},
                        "DeleteMarkerReplication": {"Status": "Disabled"},
                    }
                ],
            },
        )
    return pairs


def _listing(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = str(obj.get("ETag", ""))
    return out


def _rules(s3: Any, bucket: str) -> list[Mapping[str, Any]]:
    from botocore.exceptions import ClientError

    try:
        config = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"]
    except ClientError:
        return []
    return [r for r in config.get("Rules", []) if r.get("Status") == "Enabled"]


def replicate_once(clients: Mapping[str, Any], home: Any) -> int:
    """Copy what each enabled rule's destination lacks; returns the number of objects copied.

    :param clients: region → S3 client (the destination's region is looked up per bucket).
    :param home: an S3 client to list buckets and read their rules with.
    """
    copied = 0
    for bucket in (b["Name"] for b in home.list_buckets().get("Buckets", [])):
        for rule in _rules(home, bucket):
            dest = str(rule["Destination"]["Bucket"]).removeprefix("arn:aws:s3:::")
            prefix = str((rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", "")))
            region = home.get_bucket_location(Bucket=dest).get("LocationConstraint") or "us-east-1"
            target = clients[region] if region in clients else home
            have = _listing(target, dest, prefix)
            for key, etag in _listing(home, bucket, prefix).items():
                if have.get(key) != etag:
                    target.copy_object(Bucket=dest, Key=key, CopySource={"Bucket": bucket, "Key": key})
                    copied += 1
    return copied


def run(endpoint_url: str, every_s: float, stop: threading.Event, regions: tuple[str, ...]) -> None:
    """:func:`replicate_once` every ``every_s`` seconds until ``stop`` is set (errors are
    printed and retried: moto is this thread's own process)."""
    import boto3

    from devstack.aws import LOCAL_AWS_ENV

    session = boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    clients = {r: session.client("s3", endpoint_url=endpoint_url, region_name=r) for r in regions}
    home = clients[regions[0]]
    while not stop.wait(every_s):
        try:
            n = replicate_once(clients, home)
        except Exception as exc:  # noqa: BLE001 - a busy moto: try again next round
            print(f"s3 replication: {type(exc).__name__}: {exc}", flush=True)
            continue
        if n:
            print(f"s3 replication: copied {n} object(s) to the DR region", flush=True)
