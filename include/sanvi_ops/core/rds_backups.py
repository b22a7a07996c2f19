"""RDS mode: the guide's backup row — "Daily full, hourly incremental, 30 days, S3 + Glacier".

With ``database_backups.mode: rds`` AWS takes the backups; the backup DAGs make sure the row
holds for each of ``tasks.system_health_check.settings.rds_instances``:

* **Hourly half** (``database_backup_incremental``): automated backups with point-in-time
  restore. ``LatestRestorableTime`` must be within the RPO (``backups.database.incremental_every``,
  1 h): AWS uploads transaction logs every 5 minutes, so a later one means log shipping stalled.
* **Retention** (``database_backup_full``): ``BackupRetentionPeriod`` ≥
  ``backups.database.retention_days`` (30). Lower is a finding; it is *set* (``modify_db_instance``)
  only by a run started with the Param ``set_retention`` while
  ``database_backups.rds.allow_set_retention`` is true — two keys, a person's and the config's.
  From a non-zero period the change applies at once (no outage); from 0 (backups off) it is
  left to the maintenance window, since AWS restarts the instance for it.
* **Daily full** (``database_backup_full``): a manual snapshot per instance and day,
  ``<snapshot_prefix>-<instance>-<YYYY-MM-DD>`` (UTC), tagged ``sanvi-ops:purpose=daily-backup``;
  taking it twice the same day is a no-op. Tagged daily snapshots older than the retention are
  deleted; a snapshot without our tag is never touched.
* **Glacier half** (``database_backups.rds.glacier: export``): the newest available daily
  snapshot not yet exported goes to ``s3://<export bucket>/<export_prefix><instance>/`` with
  ``start_export_task`` (Parquet, KMS-encrypted with the backup key); the lifecycle rule on that
  prefix moves it to Glacier after ``glacier_after_days`` and expires it at the retention. Why
  not AWS Backup cold storage: it keeps a recovery point at least 90 days in cold storage (the
  guide keeps 30), and does not move RDS snapshots to cold storage at all. The price of the
  export: Parquet tables are data for analytics and audits, not a snapshot ``restore`` can use;
  the restorable copies are the automated backups and the daily snapshots (warm, 30 days).

Everything reads one set of facts, :func:`read_facts`: the backup DAGs, ``backup_verification``
in rds mode (:func:`check_facts`) and the weekly RDS restore test (which restores
:attr:`RdsBackupFacts.newest_automated`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sanvi_ops.core.results import CheckResult, Status

log = logging.getLogger(__name__)

PURPOSE_TAG = "sanvi-ops:purpose"
DATE_TAG = "sanvi-ops:date"
DAILY = "daily-backup"
COMPONENT = "rds"
SEVERITY = "P2"
EXPORT_RULE_ID = "sanvi-rds-exports-retention"

__all__ = [
    "RdsBackupFacts",
    "check_facts",
    "check_restorable",
    "daily_backup",
    "read_facts",
    "snapshot_id_for",
]


@dataclass
class RdsBackupFacts:
    """What AWS says about one instance's backups, read once (:func:`read_facts`)."""

    instance: str
    exists: bool
    retention_days: int = 0
    latest_restorable: dt.datetime | None = None
    instance_status: str | None = None
    automated: list[dict[str, Any]] = field(default_factory=list)  # available, oldest first
    daily: list[dict[str, Any]] = field(default_factory=list)  # ours (tagged), oldest first
    other_manual: list[dict[str, Any]] = field(default_factory=list)  # never touched
    exports: list[dict[str, Any]] | None = None  # export tasks of our daily snapshots; None: not read

    @property
    def snapshots(self) -> list[dict[str, Any]]:
        return [*self.automated, *self.daily, *self.other_manual]

    @property
    def newest_automated(self) -> dict[str, Any] | None:
        """The snapshot the weekly restore test restores."""
        return self.automated[-1] if self.automated else None

    @property
    def newest_daily(self) -> dict[str, Any] | None:
        available = [s for s in self.daily if s.get("Status") == "available"]
        return available[-1] if available else None


def snapshot_id_for(prefix: str, instance: str, day: dt.date) -> str:
    """``<prefix>-<instance>-<YYYY-MM-DD>``: one a day, found again by name."""
    return f"{prefix}-{instance}-{day:%Y-%m-%d}"


def _tags(snapshot: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in snapshot.get("TagList") or []}


def _created(snapshot: dict[str, Any]) -> dt.datetime:
    return snapshot.get("SnapshotCreateTime") or dt.datetime.max.replace(tzinfo=dt.UTC)


def read_facts(
    rds: Any,
    instance: str,
    *,
    snapshot_prefix: str | None = None,
    exports: bool = False,
    describe_instance: bool = True,
    snapshot_type: str | None = None,
) -> RdsBackupFacts:
    """The instance's backup settings, its snapshots (automated, ours, others) and — with
    ``exports`` — the export tasks of our daily snapshots. A missing instance is a fact
    (``exists`` false), its snapshots are still listed (restoring a deleted instance is DR).

    The restore test needs only the automated snapshots (``describe_instance=False,
    snapshot_type="automated"``: one call, the IAM actions it already has); verification and
    the backup DAGs read everything.

    :raises botocore.exceptions.ClientError: any other AWS error (callers grade it).
    """
    inst: dict[str, Any] | None = None
    if describe_instance:
        try:
            inst = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            inst = None
    # Without describe_instance, existence is not asked: ``exists`` stays true (unknown).
    facts = RdsBackupFacts(instance=instance, exists=inst is not None or not describe_instance)
    if inst is not None:
        facts.retention_days = int(inst.get("BackupRetentionPeriod") or 0)
        facts.latest_restorable = inst.get("LatestRestorableTime")
        facts.instance_status = inst.get("DBInstanceStatus")
    listing: dict[str, str] = {"DBInstanceIdentifier": instance}
    if snapshot_type:
        listing["SnapshotType"] = snapshot_type
    for page in rds.get_paginator("describe_db_snapshots").paginate(**listing):
        for snap in page.get("DBSnapshots", []):
            _file_snapshot(facts, snap, snapshot_prefix)
    for group in (facts.automated, facts.daily, facts.other_manual):
        group.sort(key=_created)
    if exports:
        facts.exports = _export_tasks(rds, {s.get("DBSnapshotArn") for s in facts.daily})
    return facts


def _file_snapshot(facts: RdsBackupFacts, snap: dict[str, Any], prefix: str | None) -> None:
    """Automated (available ones only), ours (tagged daily, named with our prefix), or other."""
    if snap.get("SnapshotType") == "automated":
        if snap.get("Status") == "available":
            facts.automated.append(snap)
    elif _tags(snap).get(PURPOSE_TAG) == DAILY and (
        prefix is None or snap["DBSnapshotIdentifier"].startswith(f"{prefix}-")
    ):
        facts.daily.append(snap)
    else:
        facts.other_manual.append(snap)


def _export_tasks(rds: Any, sources: set[Any]) -> list[dict[str, Any]]:
    """Export tasks whose source is one of ``sources`` (snapshot ARNs), oldest first."""
    tasks: list[dict[str, Any]] = []
    marker: str | None = None
    while True:
        resp = rds.describe_export_tasks(**({"Marker": marker} if marker else {}))
        tasks += [t for t in resp.get("ExportTasks", []) if t.get("SourceArn") in sources]
        marker = resp.get("Marker")
        if not marker:
            break
    return sorted(tasks, key=lambda t: t.get("TaskStartTime") or dt.datetime.min.replace(tzinfo=dt.UTC))


# --------------------------------------------------------------------------------------------
# Grading the facts (verification, and the backup DAGs' own results)
# --------------------------------------------------------------------------------------------


def _check(name: str, instance: str, part: str) -> str:
    return f"{name}[{instance}].{part}"


def check_retention(facts: RdsBackupFacts, retention_days: int, *, prefix: str = "rds_backup") -> CheckResult:
    period = facts.retention_days
    return CheckResult(
        _check(prefix, facts.instance, "automated"),
        Status.CRITICAL if period == 0 else (Status.WARNING if period < retention_days else Status.OK),
        (
            f"{facts.instance}: automated backups are OFF"
            if period == 0
            else f"{facts.instance}: automated backups kept {period} d (policy {retention_days} d)"
        ),
        metric="backup_retention_days",
        observed=float(period),
        unit="d",
        thresholds={"warning": float(retention_days)},
        component=COMPONENT,
        severity=SEVERITY if period == 0 else None,
    )


def check_restorable(
    facts: RdsBackupFacts, *, now: dt.datetime, within: dt.timedelta, prefix: str = "rds_backup"
) -> CheckResult:
    """The hourly half: ``LatestRestorableTime`` no older than ``within`` (the RPO)."""
    name = _check(prefix, facts.instance, "restorable")
    limit = within.total_seconds() / 60
    if not facts.retention_days or facts.latest_restorable is None:
        return CheckResult(
            name,
            Status.CRITICAL,
            f"{facts.instance}: no point-in-time restore (automated backups off or no restorable time)",
            component=COMPONENT,
            severity=SEVERITY,
        )
    lag = (now - facts.latest_restorable).total_seconds() / 60
    late = lag > limit
    return CheckResult(
        name,
        Status.CRITICAL if late else Status.OK,
        f"{facts.instance}: latest restorable time {facts.latest_restorable:%Y-%m-%d %H:%M} UTC, "
        f"{max(lag, 0.0):.0f} min ago (= RPO, limit {limit:.0f} min)",
        metric="rpo_minutes",
        observed=round(max(lag, 0.0), 1),
        unit="min",
        thresholds={"critical": limit},
        component=COMPONENT,
        severity=SEVERITY if late else None,
    )


def _missing(facts: RdsBackupFacts, prefix: str) -> CheckResult:
    return CheckResult(
        _check(prefix, facts.instance, "automated"),
        Status.CRITICAL,
        f"RDS instance {facts.instance} does not exist"
        + (f" ({len(facts.snapshots)} snapshots of it remain)" if facts.snapshots else ""),
        component=COMPONENT,
        severity=SEVERITY,
    )


def check_facts(
    facts: RdsBackupFacts,
    *,
    now: dt.datetime,
    retention_days: int,
    restorable_within: dt.timedelta,
    snapshot_within: dt.timedelta = dt.timedelta(hours=24),
    daily_within: dt.timedelta | None = None,
    export_within: dt.timedelta | None = None,
) -> list[CheckResult]:
    """``backup_verification`` in rds mode, per instance: retention, restorable time, a recent
    snapshot, every snapshot encrypted; with ``daily_within`` our daily snapshot recent and none
    kept beyond the retention; with ``export_within`` a completed export that recent (and no
    failed one since)."""
    prefix = "rds_backup"
    if not facts.exists:
        return [_missing(facts, prefix)]
    results = [check_retention(facts, retention_days)]
    if facts.retention_days:
        results.append(check_restorable(facts, now=now, within=restorable_within))
    created = [s["SnapshotCreateTime"] for s in facts.snapshots if s.get("SnapshotCreateTime")]
    recent = [t for t in created if now - t <= snapshot_within]
    results.append(
        CheckResult(
            _check(prefix, facts.instance, "snapshot"),
            Status.OK if recent else Status.CRITICAL,
            (
                f"{facts.instance}: newest snapshot {max(created):%Y-%m-%d %H:%M} UTC"
                if created
                else f"{facts.instance}: no snapshot at all"
            )
            + ("" if recent else f" — none in the last {snapshot_within.total_seconds() / 3600:.0f} h"),
            component=COMPONENT,
            severity=None if recent else SEVERITY,
        )
    )
    plain = [s["DBSnapshotIdentifier"] for s in facts.snapshots if not s.get("Encrypted")]
    results.append(
        CheckResult(
            _check(prefix, facts.instance, "encrypted"),
            Status.CRITICAL if plain else Status.OK,
            (
                f"{facts.instance}: unencrypted snapshots: {', '.join(plain[:5])}"
                if plain
                else f"{facts.instance}: all {len(facts.snapshots)} snapshots encrypted"
            ),
            component=COMPONENT,
            severity=SEVERITY if plain else None,
        )
    )
    if daily_within is not None:
        results.append(_daily_check(facts, now=now, within=daily_within, retention_days=retention_days))
    if export_within is not None:
        results.append(_export_check(facts, now=now, within=export_within))
    return results


def _daily_check(
    facts: RdsBackupFacts, *, now: dt.datetime, within: dt.timedelta, retention_days: int
) -> CheckResult:
    newest = facts.newest_daily
    name = _check("rds_backup", facts.instance, "daily")
    expired = [
        s["DBSnapshotIdentifier"]
        for s in facts.daily
        if s.get("SnapshotCreateTime")
        and now - s["SnapshotCreateTime"] > dt.timedelta(days=retention_days + 1)
    ]
    if newest is None or now - newest["SnapshotCreateTime"] > within:
        return CheckResult(
            name,
            Status.CRITICAL,
            f"{facts.instance}: no daily snapshot of ours in the last {within.total_seconds() / 3600:.0f} h"
            + (f" (newest {newest['DBSnapshotIdentifier']})" if newest else ""),
            component=COMPONENT,
            severity=SEVERITY,
        )
    if expired:
        return CheckResult(
            name,
            Status.WARNING,
            f"{facts.instance}: {len(expired)} daily snapshot(s) kept beyond {retention_days} d "
            f"(pruning failed?): {', '.join(expired[:3])}",
            details={"expired": expired},
            component=COMPONENT,
        )
    return CheckResult(
        name,
        Status.OK,
        f"{facts.instance}: daily snapshot {newest['DBSnapshotIdentifier']}; {len(facts.daily)} kept (≤ {retention_days} d)",
        observed=float(len(facts.daily)),
        unit="count",
        component=COMPONENT,
    )


def _export_check(facts: RdsBackupFacts, *, now: dt.datetime, within: dt.timedelta) -> CheckResult:
    name = _check("rds_backup", facts.instance, "glacier_export")
    tasks = facts.exports or []
    done = [t for t in tasks if str(t.get("Status", "")).upper() == "COMPLETE"]
    failed = [t for t in tasks if str(t.get("Status", "")).upper() in {"FAILED", "CANCELED"}]
    taken = {x.get("DBSnapshotArn"): x.get("SnapshotCreateTime") for x in facts.daily}

    def data_time(task: dict[str, Any]) -> dt.datetime:
        """How old the exported data is: the snapshot's time (the task's own when given)."""
        when = task.get("SnapshotTime") or taken.get(task.get("SourceArn")) or task.get("TaskStartTime")
        return when or dt.datetime.min.replace(tzinfo=dt.UTC)

    newest_done = max((data_time(t) for t in done), default=None)
    later_failed = [t for t in failed if newest_done is None or data_time(t) > newest_done]
    if later_failed:
        t = later_failed[-1]
        return CheckResult(
            name,
            Status.CRITICAL,
            f"{facts.instance}: export {t['ExportTaskIdentifier']} {str(t.get('Status')).lower()}: "
            f"{t.get('FailureCause') or 'no cause given'}",
            component=COMPONENT,
            severity=SEVERITY,
        )
    first = min((x["SnapshotCreateTime"] for x in facts.daily if x.get("SnapshotCreateTime")), default=None)
    if newest_done is None and first is not None and now - first <= within:
        return CheckResult(
            name,
            Status.OK,
            f"{facts.instance}: first export pending (the oldest daily snapshot is from {first:%Y-%m-%d %H:%M} UTC)",
            component=COMPONENT,
        )
    if newest_done is None or now - newest_done > within:
        return CheckResult(
            name,
            Status.CRITICAL,
            f"{facts.instance}: no completed snapshot export to S3 (Glacier) in the last "
            f"{within.total_seconds() / 3600:.0f} h"
            + (f" (newest {newest_done:%Y-%m-%d %H:%M})" if newest_done else ""),
            component=COMPONENT,
            severity=SEVERITY,
        )
    return CheckResult(
        name,
        Status.OK,
        f"{facts.instance}: the snapshot of {newest_done:%Y-%m-%d %H:%M} UTC is exported to S3 (Glacier by lifecycle)",
        component=COMPONENT,
    )


# --------------------------------------------------------------------------------------------
# What database_backup_full does in rds mode
# --------------------------------------------------------------------------------------------


@dataclass
class DailySettings:
    """The ``database_backups.rds`` keys, resolved (bucket default, KMS key id)."""

    retention_days: int
    snapshot_prefix: str = "sanvi-daily"
    set_retention: bool = False  # allow_set_retention AND the run's Param
    set_retention_asked: bool = False  # the Param alone (to say which key is missing)
    glacier: str = "export"
    export_bucket: str | None = None
    export_prefix: str = "rds-exports/"
    export_iam_role_arn: str | None = None
    kms_key_id: str | None = None
    run_id: str = ""


def _aws_error(exc: Exception) -> str:
    err = getattr(exc, "response", {}).get("Error", {})
    return f"{err.get('Code', type(exc).__name__)}: {err.get('Message', str(exc))}"


def _ensure_retention(rds: Any, facts: RdsBackupFacts, s: DailySettings) -> CheckResult:
    found = check_retention(facts, s.retention_days)
    if facts.retention_days >= s.retention_days:
        return found
    if not s.set_retention:
        missing = (
            "database_backups.rds.allow_set_retention is false"
            if s.set_retention_asked
            else "start database_backup_full with the Param set_retention (and "
            "database_backups.rds.allow_set_retention: true) to raise it"
        )
        return dataclasses.replace(found, summary=f"{found.summary}; not changed: {missing}")
    immediately = facts.retention_days > 0  # 0 → n restarts the instance: maintenance window
    rds.modify_db_instance(
        DBInstanceIdentifier=facts.instance,
        BackupRetentionPeriod=s.retention_days,
        ApplyImmediately=immediately,
    )
    when = (
        "applied now"
        if immediately
        else "applied in the next maintenance window (enabling backups restarts the instance)"
    )
    return CheckResult(
        found.check,
        Status.OK if immediately else Status.WARNING,
        f"{facts.instance}: backup retention raised from {facts.retention_days} to {s.retention_days} d, {when}",
        metric=found.metric,
        observed=float(s.retention_days),
        unit="d",
        details={"before": facts.retention_days, "after": s.retention_days, "apply_immediately": immediately},
        component=COMPONENT,
    )


def _tag_value(text: str) -> str:
    return re.sub(r"[^\w .:/=+\-@]", "_", text)[:256]


def _take_snapshot(rds: Any, facts: RdsBackupFacts, s: DailySettings, now: dt.datetime) -> CheckResult:
    name = _check("rds_backup", facts.instance, "daily_snapshot")
    sid = snapshot_id_for(s.snapshot_prefix, facts.instance, now.date())
    known = {x["DBSnapshotIdentifier"]: x for x in facts.snapshots}
    if sid in known:
        return CheckResult(
            name,
            Status.OK,
            f"{facts.instance}: today's snapshot {sid} exists ({known[sid].get('Status')}); not taken again",
            component=COMPONENT,
            details={"snapshot": sid, "created": False},
        )
    try:
        rds.create_db_snapshot(
            DBSnapshotIdentifier=sid,
            DBInstanceIdentifier=facts.instance,
            Tags=[
                {"Key": PURPOSE_TAG, "Value": DAILY},
                {"Key": DATE_TAG, "Value": f"{now.date():%Y-%m-%d}"},
                {"Key": "sanvi-ops:created-by", "Value": _tag_value(s.run_id or "manual")},
            ],
        )
    except rds.exceptions.DBSnapshotAlreadyExistsFault:  # a concurrent run took it
        return CheckResult(
            name,
            Status.OK,
            f"{facts.instance}: today's snapshot {sid} exists",
            component=COMPONENT,
            details={"snapshot": sid, "created": False},
        )
    return CheckResult(
        name,
        Status.OK,
        f"{facts.instance}: snapshot {sid} started",
        component=COMPONENT,
        details={"snapshot": sid, "created": True},
    )


def _prune(rds: Any, facts: RdsBackupFacts, s: DailySettings, now: dt.datetime) -> CheckResult:
    """Delete our tagged daily snapshots older than the retention; never anything else."""
    name = _check("rds_backup", facts.instance, "daily_retention")
    cutoff = now - dt.timedelta(days=s.retention_days)
    old = [
        x
        for x in facts.daily
        if x.get("SnapshotCreateTime") and x["SnapshotCreateTime"] < cutoff and x.get("Status") == "available"
    ]
    deleted, failed = [], []
    for snap in old:
        if _tags(snap).get(PURPOSE_TAG) != DAILY:  # belt and braces: read_facts put it here by tag
            continue
        try:
            rds.delete_db_snapshot(DBSnapshotIdentifier=snap["DBSnapshotIdentifier"])
            deleted.append(snap["DBSnapshotIdentifier"])
        except Exception as exc:  # noqa: BLE001 - one refusal must not stop the others
            failed.append(f"{snap['DBSnapshotIdentifier']} ({_aws_error(exc)})")
    kept = len(facts.daily) - len(deleted)
    if failed:
        return CheckResult(
            name,
            Status.WARNING,
            f"{facts.instance}: could not delete {', '.join(failed[:3])}",
            component=COMPONENT,
            details={"deleted": deleted},
        )
    return CheckResult(
        name,
        Status.OK,
        f"{facts.instance}: {kept} daily snapshot(s) kept"
        + (
            f", {len(deleted)} older than {s.retention_days} d deleted: {', '.join(deleted[:3])}"
            if deleted
            else ""
        )
        + (
            f"; {len(facts.other_manual)} manual snapshot(s) without our tag left alone"
            if facts.other_manual
            else ""
        ),
        observed=float(kept),
        unit="count",
        details={"deleted": deleted},
        component=COMPONENT,
    )


def _export(rds: Any, facts: RdsBackupFacts, s: DailySettings) -> CheckResult:
    name = _check("rds_backup", facts.instance, "glacier_export")
    if s.glacier != "export":
        return CheckResult(
            name,
            Status.SKIPPED,
            "database_backups.rds.glacier is none: no export to S3/Glacier",
            component=COMPONENT,
        )
    if not s.export_iam_role_arn or not s.export_bucket or not s.kms_key_id:
        return CheckResult(
            name,
            Status.WARNING,
            "not configured: database_backups.rds.export_iam_role_arn (the role RDS uses to write the "
            "export to S3) is not set; no copy reaches Glacier",
            component=COMPONENT,
        )
    exported = {
        t.get("SourceArn") for t in facts.exports or [] if str(t.get("Status", "")).upper() != "FAILED"
    }
    todo = [
        x for x in facts.daily if x.get("Status") == "available" and x.get("DBSnapshotArn") not in exported
    ]
    if not todo:
        return CheckResult(
            name,
            Status.OK,
            f"{facts.instance}: every available daily snapshot is exported (or none is available yet)",
            component=COMPONENT,
        )
    snap = todo[-1]
    task_id = snap["DBSnapshotIdentifier"][-60:].lstrip("-")  # ExportTaskIdentifier: ≤ 60 characters
    try:
        rds.start_export_task(
            ExportTaskIdentifier=task_id,
            SourceArn=snap["DBSnapshotArn"],
            S3BucketName=s.export_bucket,
            S3Prefix=f"{s.export_prefix}{facts.instance}",
            IamRoleArn=s.export_iam_role_arn,
            KmsKeyId=s.kms_key_id,
        )
    except rds.exceptions.ExportTaskAlreadyExistsFault:
        return CheckResult(
            name, Status.OK, f"{facts.instance}: export {task_id} already started", component=COMPONENT
        )
    return CheckResult(
        name,
        Status.OK,
        f"{facts.instance}: export of {snap['DBSnapshotIdentifier']} to "
        f"s3://{s.export_bucket}/{s.export_prefix}{facts.instance}/ started (Glacier by lifecycle)",
        details={"export_task": task_id},
        component=COMPONENT,
    )


def daily_backup(rds: Any, instance: str, settings: DailySettings, *, now: dt.datetime) -> list[CheckResult]:
    """One instance's daily run: retention (checked, set when allowed), today's snapshot,
    pruning of ours beyond the retention, the export of the newest one not yet exported."""
    try:
        facts = read_facts(
            rds, instance, snapshot_prefix=settings.snapshot_prefix, exports=settings.glacier == "export"
        )
    except Exception as exc:  # noqa: BLE001 - AWS errors are results
        return [
            CheckResult(
                _check("rds_backup", instance, "read"),
                Status.ERROR,
                f"{instance}: reading its backups failed: {_aws_error(exc)}",
                component=COMPONENT,
            )
        ]
    if not facts.exists:
        return [_missing(facts, "rds_backup")]
    results: list[CheckResult] = []
    steps: list[tuple[str, Callable[[], CheckResult]]] = [
        ("automated", lambda: _ensure_retention(rds, facts, settings)),
        ("daily_snapshot", lambda: _take_snapshot(rds, facts, settings, now)),
        ("daily_retention", lambda: _prune(rds, facts, settings, now)),
        ("glacier_export", lambda: _export(rds, facts, settings)),
    ]
    for part, step in steps:
        try:
            results.append(step())
        except Exception as exc:  # noqa: BLE001 - each step is a result of its own
            results.append(
                CheckResult(
                    _check("rds_backup", instance, part),
                    Status.ERROR,
                    f"{instance}: {part.replace('_', ' ')} failed: {_aws_error(exc)}",
                    component=COMPONENT,
                )
            )
    return results
