"""The weekly system images: an AMI of each tagged instance, encrypted, and the old ones removed.

- **Which instances**: those tagged ``<instance_tag_key>=<instance_tag_value>`` (``Backup=weekly``),
  running or stopped.
- **Taking**: ``CreateImage`` with ``NoReboot=True`` (the instance keeps serving; the image is
  crash-consistent, like a power cut, which journaling file systems and PostgreSQL recover from),
  named ``<name_prefix>-<instance id>-<YYYY-MM-DD>`` and tagged :data:`PURPOSE_TAG` =
  :data:`PURPOSE` (plus the date and the instance), its snapshots tagged alike once the image is
  available. One image per instance and day: a re-run finds it and takes none.
- **Encrypted**: ``CreateImage`` keeps the volumes' encryption; when a snapshot of the new image
  is not encrypted, the image is copied with ``CopyImage(Encrypted=True, KmsKeyId=…)`` as
  ``<name>-enc`` and, once the copy is available, the plain image is deregistered and its
  snapshots deleted, so only the encrypted copy is kept.
- **Retention** (:func:`expired`): AMIs carrying our tag and created more than
  ``retention_days`` ago are deregistered, then their snapshots deleted. An AMI without our tag
  is never touched, whatever its name or age.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types
from sanvi_ops.core.results import CheckResult, Status

PURPOSE_TAG = "sanvi-ops:purpose"
PURPOSE = "weekly-system-image"
DATE_TAG = "sanvi-ops:date"
INSTANCE_TAG = "sanvi-ops:instance"
COMPONENT = "system_images"
SEVERITY = "P2"
#: Name suffix of the encrypted copy of an image whose snapshots were not encrypted.
ENCRYPTED_SUFFIX = "-enc"

__all__ = [
    "ImageSettings",
    "created_at",
    "expired",
    "image_name",
    "is_ours",
    "prune_images",
    "take_images",
    "tagged_instances",
]


@dataclass(frozen=True)
class ImageSettings:
    """What :func:`take_images` needs (from ``system_image_backups``)."""

    instance_tag_key: str
    instance_tag_value: str
    name_prefix: str
    encrypt: bool = True
    kms_key_id: str | None = None
    wait_seconds: int = 5400
    poll_seconds: int = 15
    run_id: str = ""


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in resource.get("Tags") or []}


def is_ours(image: dict[str, Any]) -> bool:
    """Whether ``image`` carries our tag (the only AMIs we ever deregister)."""
    return _tags(image).get(PURPOSE_TAG) == PURPOSE


def created_at(image: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(image["CreationDate"]).replace("Z", "+00:00"))


def image_name(prefix: str, instance_id: str, day: dt.date) -> str:
    """``sanvi-weekly-i-0abc…-2026-12-06`` (AMI names: 3–128 characters of ``[A-Za-z0-9()./_ -]``)."""
    name = re.sub(r"[^A-Za-z0-9()\[\]./_\- ]", "_", f"{prefix}-{instance_id}-{day:%Y-%m-%d}")
    return name[:128]


def expired(images: list[dict[str, Any]], *, now: dt.datetime, retention_days: int) -> list[dict[str, Any]]:
    """Our AMIs (by tag) created more than ``retention_days`` before ``now``; never an untagged one."""
    cutoff = now - dt.timedelta(days=retention_days)
    return [i for i in images if is_ours(i) and i.get("CreationDate") and created_at(i) < cutoff]


def _tag_value(text: str) -> str:
    return re.sub(r"[^\w .:/=+\-@]", "_", text)[:256]


def tagged_instances(ec2: Any, key: str, value: str) -> list[dict[str, Any]]:
    """Running or stopped instances tagged ``key=value``."""
    out: list[dict[str, Any]] = []
    filters = [
        {"Name": f"tag:{key}", "Values": [value]},
        {"Name": "instance-state-name", "Values": ["running", "stopped"]},
    ]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            out += reservation.get("Instances", [])
    return out


def _our_images(ec2: Any) -> list[dict[str, Any]]:
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{PURPOSE_TAG}", "Values": [PURPOSE]}]
    ).get("Images", [])
    return [i for i in images if is_ours(i)]  # belt and braces: the filter already says so


def _snapshot_ids(image: dict[str, Any]) -> list[str]:
    return [
        str(m["Ebs"]["SnapshotId"])
        for m in image.get("BlockDeviceMappings") or []
        if (m.get("Ebs") or {}).get("SnapshotId")
    ]


def _wait_available(ec2: Any, image_id: str, s: ImageSettings) -> dict[str, Any]:
    attempts = max(1, s.wait_seconds // max(1, s.poll_seconds))
    ec2.get_waiter("image_available").wait(
        ImageIds=[image_id], WaiterConfig={"Delay": s.poll_seconds, "MaxAttempts": attempts}
    )
    image: dict[str, Any] = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return image


def _unencrypted(ec2: Any, image: dict[str, Any]) -> list[str]:
    """Snapshots of ``image`` that are not encrypted (read from the snapshots themselves)."""
    ids = _snapshot_ids(image)
    if not ids:
        return []
    snaps = ec2.describe_snapshots(SnapshotIds=ids).get("Snapshots", [])
    return [str(x["SnapshotId"]) for x in snaps if not x.get("Encrypted")]


def _remove(ec2: Any, image: dict[str, Any]) -> list[str]:
    """Deregister ``image`` and delete its snapshots; returns the snapshots that stayed (and why)."""
    ec2.deregister_image(ImageId=image["ImageId"])
    left = []
    for sid in _snapshot_ids(image):
        try:
            ec2.delete_snapshot(SnapshotId=sid)
        except aws_error_types() as exc:
            left.append(f"{sid} ({aws_error_text(exc)})")
    return left


def _take_one(
    ec2: Any, instance: dict[str, Any], s: ImageSettings, day: dt.date, existing: dict[str, dict[str, Any]]
) -> CheckResult:
    iid = str(instance["InstanceId"])
    check = f"system_image[{iid}].image"
    name = image_name(s.name_prefix, iid, day)
    found = existing.get(f"{name}{ENCRYPTED_SUFFIX}") or existing.get(name)
    if found is not None:
        return CheckResult(
            check,
            Status.OK,
            f"{iid}: this week's image {found['ImageId']} ({found.get('Name')}) exists; not taken again",
            details={"image": found["ImageId"], "created": False},
            component=COMPONENT,
        )
    tags = [
        {"Key": PURPOSE_TAG, "Value": PURPOSE},
        {"Key": DATE_TAG, "Value": f"{day:%Y-%m-%d}"},
        {"Key": INSTANCE_TAG, "Value": iid},
        {"Key": "sanvi-ops:created-by", "Value": _tag_value(s.run_id or "manual")},
    ]
    try:
        image_id = ec2.create_image(
            InstanceId=iid,
            Name=name,
            Description=f"Sanvi Ops weekly system image of {iid} ({day:%Y-%m-%d})",
            NoReboot=True,
            TagSpecifications=[{"ResourceType": "image", "Tags": tags}],
        )["ImageId"]
        image = _wait_available(ec2, image_id, s)
        plain = _unencrypted(ec2, image) if s.encrypt else []
        encrypted_by_copy = False
        if plain:
            args: dict[str, Any] = {
                "SourceImageId": image_id,
                "SourceRegion": ec2.meta.region_name,  # the copy stays in the region
                "Name": name,
                "Description": image.get("Description") or name,
                "Encrypted": True,
                "TagSpecifications": [{"ResourceType": "image", "Tags": tags}],
            }
            if s.kms_key_id:
                args["KmsKeyId"] = s.kms_key_id
            # AMI names are unique per account and region: the copy is "<name>-enc"; the plain
            # image is removed once the copy is available.
            args["Name"] = f"{name}{ENCRYPTED_SUFFIX}"
            copy_id = ec2.copy_image(**args)["ImageId"]
            ec2.create_tags(Resources=[copy_id], Tags=tags)
            copied = _wait_available(ec2, copy_id, s)
            _remove(ec2, image)
            image, image_id, encrypted_by_copy = copied, copy_id, True
        snapshots = _snapshot_ids(image)
        if snapshots:
            ec2.create_tags(Resources=snapshots, Tags=tags)
    except aws_error_types() as exc:
        return CheckResult(
            check,
            Status.CRITICAL,
            f"{iid}: system image {name} not taken: {aws_error_text(exc)}",
            details={"image_name": name},
            component=COMPONENT,
            severity=SEVERITY,
        )
    return CheckResult(
        check,
        Status.OK,
        f"{iid}: image {image_id} ({name}) available, no reboot"
        + ("; encrypted by CopyImage" if encrypted_by_copy else ""),
        details={
            "image": image_id,
            "created": True,
            "snapshots": snapshots,
            "encrypted_by_copy": encrypted_by_copy,
        },
        component=COMPONENT,
    )


def take_images(ec2: Any, s: ImageSettings, *, day: dt.date, dry_run: bool = False) -> list[CheckResult]:
    """One image per tagged instance (see the module docstring); ``dry_run`` only says which."""
    try:
        instances = tagged_instances(ec2, s.instance_tag_key, s.instance_tag_value)
        existing = {str(i.get("Name")): i for i in _our_images(ec2)}
    except aws_error_types() as exc:
        return [
            CheckResult(
                "system_images.instances",
                Status.ERROR,
                f"ec2:DescribeInstances/DescribeImages failed: {aws_error_text(exc)}",
                component=COMPONENT,
            )
        ]
    if not instances:
        return [
            CheckResult(
                "system_images.instances",
                Status.WARNING,
                f"no running or stopped instance is tagged {s.instance_tag_key}={s.instance_tag_value}: "
                "no system image taken (tag the servers to back up, or set system_image_backups.instance_tag_*)",
                component=COMPONENT,
            )
        ]
    if dry_run:
        names = [image_name(s.name_prefix, str(i["InstanceId"]), day) for i in instances]
        todo = [n for n in names if n not in existing and f"{n}{ENCRYPTED_SUFFIX}" not in existing]
        return [
            CheckResult(
                "system_images.instances",
                Status.OK,
                f"dry run: {len(todo)} image(s) would be taken: {', '.join(todo[:5]) or 'none'}",
                details={"would_take": todo, "dry_run": True},
                component=COMPONENT,
            )
        ]
    return [_take_one(ec2, i, s, day, existing) for i in instances]


def prune_images(ec2: Any, *, now: dt.datetime, retention_days: int, dry_run: bool = False) -> CheckResult:
    """Deregister our AMIs older than the retention and delete their snapshots."""
    check = "system_images.retention"
    try:
        ours = _our_images(ec2)
    except aws_error_types() as exc:
        return CheckResult(
            check, Status.ERROR, f"ec2:DescribeImages failed: {aws_error_text(exc)}", component=COMPONENT
        )
    old = sorted(expired(ours, now=now, retention_days=retention_days), key=created_at)
    ids = [str(i["ImageId"]) for i in old]
    if dry_run:
        return CheckResult(
            check,
            Status.OK,
            f"dry run: {len(ids)} AMI(s) older than {retention_days} d would be deregistered: "
            + (", ".join(ids[:5]) or "none"),
            details={"would_deregister": ids, "dry_run": True},
            component=COMPONENT,
        )
    removed, failed, snapshots_left = [], [], []
    for image in old:
        if not is_ours(image):  # belt and braces: expired() keeps only ours
            continue
        try:
            snapshots_left += _remove(ec2, image)
            removed.append(str(image["ImageId"]))
        except aws_error_types() as exc:
            failed.append(f"{image['ImageId']} ({aws_error_text(exc)})")
    kept = len(ours) - len(removed)
    details = {"deregistered": removed, "failed": failed, "snapshots_left": snapshots_left, "kept": kept}
    if failed or snapshots_left:
        return CheckResult(
            check,
            Status.WARNING,
            "could not remove "
            + ", ".join([*failed, *(f"snapshot {x}" for x in snapshots_left)][:3])
            + f"; {len(removed)} AMI(s) deregistered",
            details=details,
            component=COMPONENT,
        )
    return CheckResult(
        check,
        Status.OK,
        f"{kept} AMI(s) of ours kept"
        + (
            f", {len(removed)} older than {retention_days} d deregistered with their snapshots: "
            + ", ".join(removed[:3])
            if removed
            else f", none older than {retention_days} d"
        ),
        observed=float(kept),
        unit="count",
        details=details,
        component=COMPONENT,
    )
