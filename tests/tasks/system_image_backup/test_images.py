"""The weekly system images: retention selection (pure), taking and pruning against the moto
server, and the already-encrypted path with botocore's Stubber (moto's images are never
encrypted: its CreateImage makes unencrypted snapshots and its CopyImage ignores ``Encrypted``)."""

from __future__ import annotations

import datetime as dt

import pytest

from sanvi_ops.tasks.system_image_backup.images import (
    ENCRYPTED_SUFFIX,
    PURPOSE,
    PURPOSE_TAG,
    ImageSettings,
    expired,
    image_name,
    prune_images,
    take_images,
)

NOW = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)
DAY = NOW.date()
OURS = [{"Key": PURPOSE_TAG, "Value": PURPOSE}]
SETTINGS = ImageSettings("Backup", "weekly", "sanvi-weekly", poll_seconds=1, wait_seconds=10)


def _img(image_id: str, days_old: float, tags=None):
    when = NOW - dt.timedelta(days=days_old)
    return {"ImageId": image_id, "CreationDate": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "Tags": tags or []}


# ---------------------------------------------------------------------------------------------
# Retention selection (pure)
# ---------------------------------------------------------------------------------------------


def test_expired_takes_only_our_old_images():
    images = [
        _img("ami-new", 3, OURS),
        _img("ami-old", 31, OURS),
        _img("ami-edge", 29.9, OURS),
        _img("ami-untagged-old", 400),
        _img("ami-other-tag-old", 90, [{"Key": PURPOSE_TAG, "Value": "something-else"}]),
    ]
    assert [i["ImageId"] for i in expired(images, now=NOW, retention_days=30)] == ["ami-old"]


def test_image_name_is_a_valid_ami_name():
    assert image_name("sanvi-weekly", "i-0abc", DAY) == "sanvi-weekly-i-0abc-2026-12-06"
    assert image_name("x{y}", "i-1", DAY) == "x_y_-i-1-2026-12-06"
    assert len(image_name("p" * 200, "i-1", DAY)) == 128


# ---------------------------------------------------------------------------------------------
# Against the moto server
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def ec2(boto_client):
    client = boto_client("ec2")
    tagged = [{"ResourceType": "instance", "Tags": [{"Key": "Backup", "Value": "weekly"}]}]
    client.run_instances(ImageId="ami-12c6146b", MinCount=2, MaxCount=2, TagSpecifications=tagged)
    client.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)  # not tagged: no image
    return client


def _age(image_id: str, days: int) -> None:
    """Make an image older in moto's own state (the server runs in this process)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    ami = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].amis[image_id]
    ami.creation_date -= dt.timedelta(days=days)


def _ours(ec2):
    return ec2.describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{PURPOSE_TAG}", "Values": [PURPOSE]}]
    )["Images"]


def test_takes_one_encrypted_copy_per_tagged_instance_once(ec2):
    results = take_images(ec2, SETTINGS, day=DAY)
    assert [r.status for r in results] == ["ok", "ok"], results
    assert all(r.details["created"] and r.details["encrypted_by_copy"] for r in results)
    images = _ours(ec2)
    assert len(images) == 2  # the unencrypted originals were removed after the copy
    assert all(i["Name"].endswith(ENCRYPTED_SUFFIX) for i in images)
    tags = {t["Key"]: t["Value"] for t in images[0]["Tags"]}
    assert tags["sanvi-ops:date"] == "2026-12-06" and tags["sanvi-ops:instance"].startswith("i-")
    snap = images[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snap_tags = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["Tags"]
    assert {"Key": PURPOSE_TAG, "Value": PURPOSE} in snap_tags
    # A re-run the same day takes nothing.
    again = take_images(ec2, SETTINGS, day=DAY)
    assert [r.details["created"] for r in again] == [False, False]
    assert len(_ours(ec2)) == 2


def test_dry_run_changes_nothing(ec2):
    results = take_images(ec2, SETTINGS, day=DAY, dry_run=True)
    assert results[0].details["dry_run"] and len(results[0].details["would_take"]) == 2
    assert _ours(ec2) == []


def test_no_tagged_instance_is_a_warning(boto_client):
    results = take_images(boto_client("ec2"), SETTINGS, day=DAY)
    assert [(r.check, r.status) for r in results] == [("system_images.instances", "warning")]


def test_prune_removes_our_old_images_and_snapshots_never_an_untagged_one(ec2):
    take_images(ec2, SETTINGS, day=DAY)
    old, young = _ours(ec2)
    instance = ec2.describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    untagged = ec2.create_image(InstanceId=instance, Name="hand-made-golden-image")["ImageId"]
    _age(old["ImageId"], 45)
    _age(untagged, 400)
    now = dt.datetime.now(dt.UTC)

    dry = prune_images(ec2, now=now, retention_days=30, dry_run=True)
    assert dry.details["would_deregister"] == [old["ImageId"]]

    result = prune_images(ec2, now=now, retention_days=30)
    assert result.status == "ok" and result.details["deregistered"] == [old["ImageId"]], result
    left = {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]}
    assert old["ImageId"] not in left
    assert young["ImageId"] in left and untagged in left  # the untagged 400-day-old AMI is kept
    snap = old["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert snap not in {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}


# ---------------------------------------------------------------------------------------------
# Stubber: an image whose snapshots AWS reports encrypted is not copied
# ---------------------------------------------------------------------------------------------


def test_already_encrypted_image_is_not_copied():
    import boto3
    from botocore.stub import ANY, Stubber

    ec2 = boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",  # noqa: S106
    )
    image = {
        "ImageId": "ami-0123456789abcdef0",
        "Name": "sanvi-weekly-i-0abc-2026-12-06",
        "State": "available",
        "CreationDate": "2026-12-06T03:00:00.000Z",
        "BlockDeviceMappings": [
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0", "Encrypted": True}}
        ],
    }
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [{"InstanceId": "i-0abc", "State": {"Name": "running"}}]}]},
        )
        stub.add_response("describe_images", {"Images": []})
        stub.add_response(
            "create_image",
            {"ImageId": image["ImageId"]},
            {
                "InstanceId": "i-0abc",
                "Name": image["Name"],
                "Description": ANY,
                "NoReboot": True,
                "TagSpecifications": ANY,
            },
        )
        stub.add_response("describe_images", {"Images": [image]})  # the waiter
        stub.add_response("describe_images", {"Images": [image]})
        stub.add_response(
            "describe_snapshots",
            {
                "Snapshots": [
                    {"SnapshotId": "snap-0123456789abcdef0", "Encrypted": True, "State": "completed"}
                ]
            },
        )
        stub.add_response("create_tags", {})  # the snapshot's tags; no copy_image call
        results = take_images(ec2, SETTINGS, day=DAY)
        stub.assert_no_pending_responses()
    assert results[0].status == "ok" and not results[0].details["encrypted_by_copy"]
