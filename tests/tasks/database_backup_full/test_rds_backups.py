"""RDS mode's backup row (``sanvi_ops.core.rds_backups``): retention, the daily snapshot kept 30 days,
the Glacier export, the restorable time — and verification and the restore test reading the
same facts.

Which server answers, per test:

* moto server (127.0.0.1, the session fixture): ``describe_db_instances``,
  ``modify_db_instance``, ``create_db_snapshot`` (with tags), ``describe_db_snapshots``,
  ``delete_db_snapshot``, ``start_export_task`` and ``describe_export_tasks`` (moto has them;
  its exports complete at once and write nothing to S3).
* botocore ``Stubber``, answers shaped like the RDS API reference, where moto cannot say it: an
  export task that FAILED (moto's always complete) and a ``LatestRestorableTime`` that lags
  (moto's is always "now").
"""

from __future__ import annotations

import datetime as dt

import boto3
import pytest

from sanvi_ops.core import rds_backups
from sanvi_ops.core.rds_backups import DailySettings, daily_backup, read_facts
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import rds_restore
from sanvi_ops.tasks.backup_verification.verify import check_rds_backups

pytestmark = pytest.mark.integration

ROLE = "arn:aws:iam::123456789012:role/sanvi-rds-export"


def _instance(rds, name="prod-db", retention=7):
    rds.create_db_instance(
        DBInstanceIdentifier=name,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=retention,
        StorageEncrypted=True,
    )


def _settings(**kw) -> DailySettings:
    base = {"retention_days": 30, "glacier": "none", "run_id": "scheduled__2026-12-03T01:00:00+00:00"}
    base.update(kw)
    return DailySettings(**base)


def _by_check(results):
    return {r.check: r for r in results}


def test_retention_is_reported_and_set_only_when_both_keys_allow_it(boto_client):
    """moto server: describe_db_instances / modify_db_instance."""
    rds = boto_client("rds")
    _instance(rds, retention=7)
    now = dt.datetime.now(dt.UTC)

    plain = _by_check(daily_backup(rds, "prod-db", _settings(), now=now))["rds_backup[prod-db].automated"]
    assert plain.status == Status.WARNING and "kept 7 d (policy 30 d)" in plain.summary
    assert "Param set_retention" in plain.summary
    asked = _by_check(daily_backup(rds, "prod-db", _settings(set_retention_asked=True), now=now))
    assert "allow_set_retention is false" in asked["rds_backup[prod-db].automated"].summary
    assert (
        rds.describe_db_instances(DBInstanceIdentifier="prod-db")["DBInstances"][0]["BackupRetentionPeriod"]
        == 7
    )

    calls: list[dict] = []
    rds.meta.events.register(
        "provide-client-params.rds.ModifyDBInstance", lambda params, **_: calls.append(params)
    )
    done = _by_check(
        daily_backup(rds, "prod-db", _settings(set_retention=True, set_retention_asked=True), now=now)
    )["rds_backup[prod-db].automated"]
    assert done.status == Status.OK and "raised from 7 to 30 d, applied now" in done.summary
    assert calls == [
        {"DBInstanceIdentifier": "prod-db", "BackupRetentionPeriod": 30, "ApplyImmediately": True}
    ]
    assert (
        rds.describe_db_instances(DBInstanceIdentifier="prod-db")["DBInstances"][0]["BackupRetentionPeriod"]
        == 30
    )


def test_enabling_backups_from_zero_waits_for_the_maintenance_window(boto_client):
    """moto server. 0 → 30 restarts the instance on AWS: not applied immediately."""
    rds = boto_client("rds")
    _instance(rds, retention=0)
    calls: list[dict] = []
    rds.meta.events.register(
        "provide-client-params.rds.ModifyDBInstance", lambda params, **_: calls.append(params)
    )
    result = _by_check(
        daily_backup(rds, "prod-db", _settings(set_retention=True), now=dt.datetime.now(dt.UTC))
    )
    assert calls[0]["ApplyImmediately"] is False
    assert result["rds_backup[prod-db].automated"].status == Status.WARNING
    assert "next maintenance window" in result["rds_backup[prod-db].automated"].summary


def test_daily_snapshot_once_a_day_tagged_and_pruned_after_30_days_never_untagged(boto_client):
    """moto server: create_db_snapshot (tags), describe_db_snapshots, delete_db_snapshot."""
    rds = boto_client("rds")
    _instance(rds, retention=30)
    rds.create_db_snapshot(DBInstanceIdentifier="prod-db", DBSnapshotIdentifier="before-upgrade-by-hand")
    # 09:00 today, so that three hours later is still today whenever the test runs (at 21:00 UTC
    # or later, "now + 3 h" was tomorrow and took a second daily snapshot)
    today = dt.datetime.now(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0)

    first = _by_check(daily_backup(rds, "prod-db", _settings(), now=today))
    sid = rds_backups.snapshot_id_for("sanvi-daily", "prod-db", today.date())
    assert first["rds_backup[prod-db].daily_snapshot"].details == {"snapshot": sid, "created": True}
    again = _by_check(daily_backup(rds, "prod-db", _settings(), now=today + dt.timedelta(hours=3)))
    assert again["rds_backup[prod-db].daily_snapshot"].details == {"snapshot": sid, "created": False}
    (snap,) = rds.describe_db_snapshots(DBSnapshotIdentifier=sid)["DBSnapshots"]
    tags = {t["Key"]: t["Value"] for t in snap["TagList"]}
    assert tags["sanvi-ops:purpose"] == "daily-backup" and tags["sanvi-ops:date"] == f"{today:%Y-%m-%d}"

    later = today + dt.timedelta(days=31)
    pruned = _by_check(daily_backup(rds, "prod-db", _settings(), now=later))
    assert pruned["rds_backup[prod-db].daily_retention"].details["deleted"] == [sid]
    assert "without our tag left alone" in pruned["rds_backup[prod-db].daily_retention"].summary
    left = {
        s["DBSnapshotIdentifier"]
        for s in rds.describe_db_snapshots(DBInstanceIdentifier="prod-db")["DBSnapshots"]
    }
    assert "before-upgrade-by-hand" in left and sid not in left
    assert rds_backups.snapshot_id_for("sanvi-daily", "prod-db", later.date()) in left


def test_glacier_export_of_the_newest_daily_snapshot_and_its_verification(boto_client):
    """moto server: start_export_task / describe_export_tasks (moto has both)."""
    rds = boto_client("rds")
    _instance(rds, retention=30)
    s = _settings(glacier="export", export_bucket="backups", export_iam_role_arn=ROLE, kms_key_id="key-1")
    day1 = dt.datetime.now(dt.UTC)
    first = _by_check(daily_backup(rds, "prod-db", s, now=day1))
    assert first["rds_backup[prod-db].glacier_export"].status == Status.OK  # nothing available yet
    # Verification on day 1: the first export is pending, not missing.
    pending = _by_check(
        check_rds_backups(
            rds,
            ["prod-db"],
            now=day1,
            retention_days=30,
            restorable_within=dt.timedelta(hours=1),
            snapshot_prefix="sanvi-daily",
            daily_within=dt.timedelta(hours=27),
            export_within=dt.timedelta(hours=51),
        )
    )
    assert pending["rds_backup[prod-db].glacier_export"].status == Status.OK
    assert "first export pending" in pending["rds_backup[prod-db].glacier_export"].summary

    day2 = day1 + dt.timedelta(days=1)
    second = _by_check(daily_backup(rds, "prod-db", s, now=day2))
    export = second["rds_backup[prod-db].glacier_export"]
    assert export.status == Status.OK and "started" in export.summary, export.summary
    (task,) = rds.describe_export_tasks()["ExportTasks"]
    assert task["S3Bucket"] == "backups" and task["S3Prefix"] == "rds-exports/prod-db"
    assert task["IamRoleArn"] == ROLE and task["KmsKeyId"] == "key-1"
    third = _by_check(daily_backup(rds, "prod-db", s, now=day2 + dt.timedelta(hours=1)))
    assert (
        "already" in third["rds_backup[prod-db].glacier_export"].summary
        or len(rds.describe_export_tasks()["ExportTasks"]) == 2
    ), "each daily snapshot is exported once"

    verified = _by_check(
        check_rds_backups(
            rds,
            ["prod-db"],
            now=day2,
            retention_days=30,
            restorable_within=dt.timedelta(hours=1),
            snapshot_prefix="sanvi-daily",
            daily_within=dt.timedelta(hours=27),
            export_within=dt.timedelta(hours=51),
        )
    )
    # (not "restorable": moto's LatestRestorableTime is the real now, a day before day2)
    for part in ("automated", "snapshot", "encrypted", "daily", "glacier_export"):
        assert verified[f"rds_backup[prod-db].{part}"].status == Status.OK, (
            part,
            verified[f"rds_backup[prod-db].{part}"].summary,
        )


def test_export_not_configured_says_which_key(boto_client):
    rds = boto_client("rds")
    _instance(rds, retention=30)
    results = _by_check(
        daily_backup(rds, "prod-db", _settings(glacier="export"), now=dt.datetime.now(dt.UTC))
    )
    result = results["rds_backup[prod-db].glacier_export"]
    assert result.status == Status.WARNING and "database_backups.rds.export_iam_role_arn" in result.summary


def test_missing_instance_is_critical_and_nothing_is_created(boto_client):
    rds = boto_client("rds")
    (result,) = daily_backup(rds, "gone-db", _settings(), now=dt.datetime.now(dt.UTC))
    assert result.status == Status.CRITICAL and "does not exist" in result.summary
    assert rds.describe_db_snapshots()["DBSnapshots"] == []


def test_verification_and_the_restore_test_read_the_same_facts(boto_client):
    """moto server. The restore test's snapshot is read_facts().newest_automated."""
    rds = boto_client("rds")
    _instance(rds, retention=30)
    daily_backup(rds, "prod-db", _settings(), now=dt.datetime.now(dt.UTC))
    facts = read_facts(rds, "prod-db", snapshot_prefix="sanvi-daily")
    assert [s["DBSnapshotIdentifier"] for s in facts.daily] == [
        rds_backups.snapshot_id_for("sanvi-daily", "prod-db", dt.datetime.now(dt.UTC).date())
    ]
    newest = rds_restore.latest_automated_snapshot(rds, "prod-db")
    assert (newest or {}).get("DBSnapshotIdentifier") == (facts.newest_automated or {}).get(
        "DBSnapshotIdentifier"
    )
    assert all(s["SnapshotType"] == "automated" for s in facts.automated)


def _stubbed_export(status: str, *, failure: str | None = None):
    """Stubber: DescribeDBInstances, DescribeDBSnapshots and DescribeExportTasks answers shaped
    like the RDS API reference (moto's exports never fail)."""
    from botocore.stub import Stubber

    rds = boto3.client("rds", region_name="us-east-1")
    now = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
    arn = "arn:aws:rds:us-east-1:123456789012:snapshot:sanvi-daily-prod-db-2026-12-02"
    stub = Stubber(rds)
    stub.add_response(
        "describe_db_instances",
        {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": "prod-db",
                    "DBInstanceStatus": "available",
                    "BackupRetentionPeriod": 30,
                    "LatestRestorableTime": now - dt.timedelta(minutes=95),
                }
            ]
        },
        {"DBInstanceIdentifier": "prod-db"},
    )
    stub.add_response(
        "describe_db_snapshots",
        {
            "DBSnapshots": [
                {
                    "DBSnapshotIdentifier": "sanvi-daily-prod-db-2026-12-02",
                    "DBInstanceIdentifier": "prod-db",
                    "DBSnapshotArn": arn,
                    "SnapshotCreateTime": now - dt.timedelta(hours=33),
                    "SnapshotType": "manual",
                    "Status": "available",
                    "Encrypted": True,
                    "TagList": [{"Key": "sanvi-ops:purpose", "Value": "daily-backup"}],
                }
            ]
        },
        {"DBInstanceIdentifier": "prod-db"},
    )
    task = {
        "ExportTaskIdentifier": "sanvi-daily-prod-db-2026-12-02",
        "SourceArn": arn,
        "SnapshotTime": now - dt.timedelta(hours=33),
        "TaskStartTime": now - dt.timedelta(hours=32),
        "S3Bucket": "backups",
        "S3Prefix": "rds-exports/prod-db",
        "IamRoleArn": ROLE,
        "KmsKeyId": "key-1",
        "Status": status,
        "PercentProgress": 40,
        "SourceType": "SNAPSHOT",
    }
    if failure:
        task["FailureCause"] = failure
    stub.add_response("describe_export_tasks", {"ExportTasks": [task]}, {})
    return rds, stub, now


def test_failed_export_and_lagging_restorable_time_are_critical_stubbed():
    rds, stub, now = _stubbed_export("FAILED", failure="The IAM role cannot write to the bucket")
    with stub:
        results = _by_check(
            check_rds_backups(
                rds,
                ["prod-db"],
                now=now,
                retention_days=30,
                restorable_within=dt.timedelta(hours=1),
                snapshot_prefix="sanvi-daily",
                daily_within=dt.timedelta(hours=27),
                export_within=dt.timedelta(hours=51),
            )
        )
    export = results["rds_backup[prod-db].glacier_export"]
    assert export.status == Status.CRITICAL and "IAM role cannot write" in export.summary
    assert results["rds_backup[prod-db].restorable"].status == Status.CRITICAL
    assert results["rds_backup[prod-db].restorable"].observed == 95.0
    assert results["rds_backup[prod-db].daily"].status == Status.CRITICAL  # 33 h > 27 h
