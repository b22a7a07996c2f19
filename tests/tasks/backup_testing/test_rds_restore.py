"""RDS mode restore test and DR drill against moto server (RDS) and a real PostgreSQL 18.

moto server implements ``restore_db_instance_from_db_snapshot``,
``restore_db_instance_to_point_in_time`` (same region, by source identifier), the waiters'
``describe_db_instances``, tags and ``delete_db_instance``; its instances are "available" at once
but have no server behind them, so SQL validation goes where the ``scratch_db`` connection's
host/port point (the documented tunnel/proxy override): a local database seeded as the restore.

moto does NOT implement cross-region PITR from replicated automated backups
(``SourceDBInstanceAutomatedBackupsArn``; ``describe_db_instance_automated_backups`` in the DR
region lists nothing): that path is tested with botocore's ``Stubber`` fed responses shaped as in
the AWS API reference (RestoreDBInstanceToPointInTime, DescribeDBInstanceAutomatedBackups).
"""

from __future__ import annotations

import datetime as dt

import boto3
import psycopg
import pytest
from botocore.stub import ANY, Stubber

from sanvi_ops.core.backups import PgTarget
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_testing import rds_restore
from sanvi_ops.tasks.backup_testing.restore import RestoreRefused
from sanvi_ops.tasks.dr_testing.dr import DrSettings, run_drill

pytestmark = pytest.mark.integration

SOURCE = "sanvi-production-db"


@pytest.fixture
def rds(boto_client):
    client = boto_client("rds")
    client.create_db_instance(
        DBInstanceIdentifier=SOURCE,
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        DBName="sanvi",
        MasterUsername="sanvi",
        MasterUserPassword="never-used-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=30,
        StorageEncrypted=True,
    )
    return client


@pytest.fixture
def restored_db(make_db):
    """The database SQL validation reaches through the override (stands for the restored instance)."""
    dsn = make_db("restored")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        conn.execute("INSERT INTO orders SELECT generate_series(1, 50)")
        conn.execute("CREATE TABLE audit_log (created_at timestamptz NOT NULL)")
        conn.execute("INSERT INTO audit_log VALUES (now() - interval '10 minutes')")
    return dsn


def _login(dsn: str) -> rds_restore.SqlLogin:
    t = PgTarget.from_dsn(dsn)
    return rds_restore.SqlLogin(user=t.user, password=t.password, dbname=t.dbname, host=t.host, port=t.port)


def _settings(**kw) -> rds_restore.RdsSettings:
    base = {
        "source_instance": SOURCE,
        "production_instances": [SOURCE],
        "timeout_s": 30,
        "poll_s": 1,
        "smoke_queries": [("orders", "SELECT count(*) FROM orders")],
        "rpo_column": "public.audit_log.created_at",
    }
    base.update(kw)
    return rds_restore.RdsSettings(**base)


def _by_check(outcome):
    return {r.check: r for r in outcome.results}


def _instances(rds) -> set[str]:
    return {i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]}


def test_snapshot_restore_test_validates_over_sql_and_deletes_the_instance(rds, restored_db, make_db):
    sent: list[dict] = []
    rds.meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceFromDBSnapshot",
        lambda params, **_: sent.append(dict(params)),
    )
    snap = rds_restore.latest_automated_snapshot(rds, SOURCE)
    assert snap is not None and snap["SnapshotType"] == "automated"
    # The application database lives on another server than the one validation reaches.
    app = PgTarget(host="192.0.2.10", port=5432, user="app", password="x", dbname="sanvi")
    outcome = rds_restore.restore_snapshot(
        rds, _settings(), _login(restored_db), run_id="scheduled__1", app=app
    )
    checks = _by_check(outcome)
    for name in ("restore.duration", "restore.smoke", "restore.rows", "restore.rpo", "restore.cleanup"):
        assert checks[name].status == Status.OK, (name, checks[name].summary)
    assert checks["restore.rows"].observed == 51
    assert outcome.backup_id == snap["DBSnapshotIdentifier"] and outcome.rto_seconds is not None
    assert "snapshot time" in checks["restore.rpo"].summary
    # issue 18: the RDS restore's phases, stored and reported like the self-managed ones
    phases = outcome.details["phases"]
    assert [p["name"] for p in phases] == [
        "prepare",
        "create",
        "wait_available",
        "smoke",
        "row_counts",
        "rpo",
        "delete",
    ]
    assert [p["in_rto"] for p in phases] == [True] * 4 + [False] * 3
    assert checks["restore.phases"].summary.startswith("phases: prepare ")
    assert checks["restore.duration"].details["phases"] == checks["restore.phases"].details["phases"]
    (params,) = sent
    tags = {t["Key"]: t["Value"] for t in params["Tags"]}
    assert tags == {rds_restore.PURPOSE_TAG: "restore-test", rds_restore.RUN_TAG: "scheduled__1"}
    assert (
        params["DBSnapshotIdentifier"] == snap["DBSnapshotIdentifier"]
        and params["PubliclyAccessible"] is False
    )
    assert _instances(rds) == {SOURCE}, "the temporary instance is always deleted"


def test_orphan_of_a_killed_run_is_deleted_and_nothing_else(rds, restored_db):
    snap = rds_restore.latest_automated_snapshot(rds, SOURCE)
    tags = [
        {"Key": rds_restore.PURPOSE_TAG, "Value": "restore-test"},
        {"Key": rds_restore.RUN_TAG, "Value": "old"},
    ]
    rds.restore_db_instance_from_db_snapshot(
        DBInstanceIdentifier="sanvi-restore-test-20260101000000",
        DBSnapshotIdentifier=snap["DBSnapshotIdentifier"],
        Tags=tags,
    )
    rds.restore_db_instance_from_db_snapshot(  # someone else's instance: no tag of ours
        DBInstanceIdentifier="analytics-copy", DBSnapshotIdentifier=snap["DBSnapshotIdentifier"]
    )
    outcome = rds_restore.restore_snapshot(
        rds, _settings(), _login(restored_db), run_id="scheduled__2", app=None
    )
    checks = _by_check(outcome)
    assert checks["restore.leftovers"].status == Status.WARNING
    assert "sanvi-restore-test-20260101000000" in checks["restore.leftovers"].summary
    assert _instances(rds) == {SOURCE, "analytics-copy"}


def test_no_snapshot_and_unknown_snapshot(boto_client, restored_db):
    rds = boto_client("rds")
    outcome = rds_restore.restore_snapshot(rds, _settings(), _login(restored_db), run_id="r", app=None)
    assert [(r.check, r.status) for r in outcome.results] == [("restore.run", Status.CRITICAL)]
    outcome = rds_restore.restore_snapshot(
        rds, _settings(), _login(restored_db), run_id="r", app=None, snapshot_id="rds:nope-2020-01-01-00-00"
    )
    (result,) = outcome.results
    assert result.status == Status.ERROR and "does not exist" in result.summary


@pytest.mark.parametrize("other_database", [False, True])
def test_validation_target_on_the_application_server_is_refused_before_any_restore(
    rds, restored_db, other_database
):
    """Same host and port as the application database — whatever the database name — is
    production: refused before RestoreDBInstanceFromDBSnapshot creates anything."""
    calls: list[str] = []
    rds.meta.events.register("before-call.rds.*", lambda model, **_: calls.append(model.name))
    app = PgTarget.from_dsn(restored_db)
    if other_database:
        app = PgTarget(
            host=app.host, port=app.port, user=app.user, password=app.password, dbname="production"
        )
    outcome = rds_restore.restore_snapshot(rds, _settings(), _login(restored_db), run_id="r", app=app)
    checks = _by_check(outcome)
    guard = checks["restore.guard"]
    assert guard.status == Status.CRITICAL and "application database's server" in guard.summary
    assert app.password not in guard.summary
    assert "restore.smoke" not in checks and "restore.cleanup" not in checks  # nothing was created
    assert not [c for c in calls if c.startswith("RestoreDBInstance")], calls
    assert _instances(rds) == {SOURCE}
    with pytest.raises(RestoreRefused, match="production instance"):
        rds_restore._refuse_identifier(SOURCE, _settings())


def test_listed_production_target_is_refused_before_a_pitr_restore(rds, restored_db):
    calls: list[str] = []
    rds.meta.events.register("before-call.rds.*", lambda model, **_: calls.append(model.name))
    t = PgTarget.from_dsn(restored_db)
    outcome = rds_restore.restore_latest_time(
        rds,
        _settings(production_targets=[f"localhost:{t.port}/some_other_db"]),
        _login(restored_db),
        source_region="us-east-1",
        run_id="r",
        app=None,
    )
    (guard,) = outcome.results
    assert guard.check == "dr.database.guard" and "listed as production" in guard.summary
    assert "RestoreDBInstanceToPointInTime" not in calls and _instances(rds) == {SOURCE}


def test_instance_that_never_answers_sql_is_critical_and_deleted(rds, pg):
    login = rds_restore.SqlLogin(
        user="postgres", password="wrong", dbname="nope", host="127.0.0.1", port=pg.port + 7
    )
    outcome = rds_restore.restore_snapshot(rds, _settings(), login, run_id="r", app=None)
    checks = _by_check(outcome)
    assert (
        checks["restore.run"].status == Status.CRITICAL
        and "does not answer SQL" in checks["restore.run"].summary
    )
    assert "wrong" not in checks["restore.run"].summary
    assert checks["restore.cleanup"].status == Status.OK and _instances(rds) == {SOURCE}


def test_dr_drill_pitr_in_the_same_region_with_moto(rds, restored_db, tmp_path):
    sent: list[dict] = []
    rds.meta.events.register(
        "provide-client-params.rds.RestoreDBInstanceToPointInTime",
        lambda params, **_: sent.append(dict(params)),
    )

    def database(clock):
        return rds_restore.restore_latest_time(
            rds,
            _settings(),
            _login(restored_db),
            source_region="us-east-1",
            run_id="m1",
            app=None,
            clock=clock,
            prefix="restore",
        ), []

    out = run_drill(DrSettings(scope="database", root=tmp_path / "dr"), database=database)
    checks = _by_check(out)
    for name in ("dr.rto", "dr.database.smoke", "dr.database.rpo", "dr.database.cleanup"):
        assert checks[name].status == Status.OK, (name, checks[name].summary)
    assert "drill start" in checks["dr.database.rpo"].summary and 9 <= checks["dr.database.rpo"].observed < 12
    (params,) = sent
    assert params["SourceDBInstanceIdentifier"] == SOURCE and params["UseLatestRestorableTime"] is True
    assert {t["Value"] for t in params["Tags"]} == {"dr-test", "m1"}
    assert [k for k, _ in out.rows()] == ["dr_database"] and _instances(rds) == {SOURCE}


def _stubbed_dr_client():
    client = boto3.client(
        "rds",
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url="http://127.0.0.1:9",  # never contacted: the Stubber answers
    )
    return client, Stubber(client)


def test_dr_drill_cross_region_pitr_from_replicated_backups_stubbed(restored_db):
    """Stubber: moto lacks SourceDBInstanceAutomatedBackupsArn (cross-region replicated backups)."""
    rds, stub = _stubbed_dr_client()
    arn = "arn:aws:rds:us-west-2:123456789012:auto-backup:ab-abcdefghijklmnopqrstuvwxyz1"
    latest = dt.datetime(2026, 11, 27, 9, 55, tzinfo=dt.UTC)
    stub.add_response(
        "describe_db_instance_automated_backups",
        {
            "DBInstanceAutomatedBackups": [
                {
                    "DBInstanceArn": f"arn:aws:rds:us-east-1:123456789012:db:{SOURCE}",
                    "DbiResourceId": "db-ABCDEFGHIJKLMNOPQRSTUVWXY",
                    "Region": "us-east-1",
                    "DBInstanceIdentifier": SOURCE,
                    "RestoreWindow": {"EarliestTime": latest - dt.timedelta(days=7), "LatestTime": latest},
                    "Status": "replicating",
                    "Engine": "postgres",
                    "Encrypted": True,
                    "DBInstanceAutomatedBackupsArn": arn,
                }
            ]
        },
        {"DBInstanceIdentifier": SOURCE},
    )
    stub.add_response("describe_db_instances", {"DBInstances": []}, {})  # no orphans
    ident = ANY
    stub.add_response(
        "restore_db_instance_to_point_in_time",
        {"DBInstance": {"DBInstanceIdentifier": "sanvi-dr-test-x", "DBInstanceStatus": "creating"}},
        {
            "TargetDBInstanceIdentifier": ident,
            "UseLatestRestorableTime": True,
            "SourceDBInstanceAutomatedBackupsArn": arn,
            "DBInstanceClass": "db.t3.micro",
            "PubliclyAccessible": False,
            "MultiAZ": False,
            "DeletionProtection": False,
            "Tags": [
                {"Key": rds_restore.PURPOSE_TAG, "Value": "dr-test"},
                {"Key": rds_restore.RUN_TAG, "Value": "scheduled__2026-12-01"},
            ],
        },
    )
    available = {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "sanvi-dr-test-x",
                "DBInstanceStatus": "available",
                "DBName": "sanvi",
                "Endpoint": {"Address": "sanvi-dr-test-x.abc.us-west-2.rds.amazonaws.com", "Port": 5432},
            }
        ]
    }
    stub.add_response("describe_db_instances", available, {"DBInstanceIdentifier": ident})  # waiter
    stub.add_response("describe_db_instances", available, {"DBInstanceIdentifier": ident})  # endpoint
    stub.add_response(
        "delete_db_instance",
        {"DBInstance": {"DBInstanceIdentifier": "sanvi-dr-test-x", "DBInstanceStatus": "deleting"}},
        {"DBInstanceIdentifier": ident, "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True},
    )
    stub.add_client_error(
        "describe_db_instances",
        service_error_code="DBInstanceNotFound",
        http_status_code=404,
        expected_params={"DBInstanceIdentifier": ident},
    )
    with stub:
        outcome = rds_restore.restore_latest_time(
            rds,
            _settings(),
            _login(restored_db),
            source_region="us-east-1",
            run_id="scheduled__2026-12-01",
            app=None,
        )
        stub.assert_no_pending_responses()
    checks = _by_check(outcome)
    for name in ("dr.database.duration", "dr.database.smoke", "dr.database.rpo", "dr.database.cleanup"):
        assert checks[name].status == Status.OK, (name, checks[name].summary)
    assert outcome.details["restored_to"] == latest.isoformat() and outcome.details["region"] == "us-west-2"


def test_dr_region_without_replicated_backups_is_critical_stubbed(restored_db):
    rds, stub = _stubbed_dr_client()
    stub.add_response(
        "describe_db_instance_automated_backups",
        {"DBInstanceAutomatedBackups": []},
        {"DBInstanceIdentifier": SOURCE},
    )
    with stub:
        outcome = rds_restore.restore_latest_time(
            rds, _settings(), _login(restored_db), source_region="us-east-1", run_id="r", app=None
        )
    (result,) = outcome.results
    assert result.status == Status.CRITICAL and "replicated to us-west-2" in result.summary


def test_missing_permission_is_an_error_naming_the_action_stubbed(restored_db):
    """Stubber: moto server does not enforce IAM, so the AccessDenied answer is stubbed."""
    rds, stub = _stubbed_dr_client()
    snap = {
        "DBSnapshotIdentifier": "rds:sanvi-production-db-2026-11-27-03-10",
        "DBInstanceIdentifier": SOURCE,
        "SnapshotCreateTime": dt.datetime(2026, 11, 27, 3, 10, tzinfo=dt.UTC),
        "Status": "available",
        "SnapshotType": "automated",
    }
    stub.add_response(
        "describe_db_snapshots",
        {"DBSnapshots": [snap]},
        {"DBInstanceIdentifier": SOURCE, "SnapshotType": "automated"},
    )
    stub.add_response("describe_db_instances", {"DBInstances": []}, {})
    stub.add_client_error(
        "restore_db_instance_from_db_snapshot",
        service_error_code="AccessDenied",
        service_message="User is not authorized to perform: rds:RestoreDBInstanceFromDBSnapshot",
        http_status_code=403,
    )
    with stub:
        outcome = rds_restore.restore_snapshot(rds, _settings(), _login(restored_db), run_id="r", app=None)
    (result,) = outcome.results
    assert result.status == Status.ERROR and "RestoreDBInstanceFromDBSnapshot: AccessDenied" in result.summary
