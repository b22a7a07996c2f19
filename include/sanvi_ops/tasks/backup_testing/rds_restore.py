"""RDS mode: restore tests and DR drills on temporary RDS instances.

``database_backups.mode: rds`` means AWS takes the backups; we prove they restore:

- the weekly restore test (:func:`restore_snapshot`): the newest *automated* snapshot of the
  source instance → ``restore_db_instance_from_db_snapshot``;
- the monthly DR drill (:func:`restore_latest_time`): point-in-time restore to the latest
  restorable time (``restore_db_instance_to_point_in_time``, ``UseLatestRestorableTime``) in the
  DR region. In another region than the source, the source's automated backups must be
  replicated there (``start_db_instance_automated_backups_replication``); the restore then names
  the replicated backup's ARN (``SourceDBInstanceAutomatedBackupsArn``).

Each temporary instance is tagged ``sanvi-ops:purpose`` (``restore-test`` / ``dr-test``) and
``sanvi-ops:created-by`` (the run id); a run first deletes every instance carrying its purpose
tag (an orphan of a killed run or of an earlier try; one run per DAG at a time). It waits for ``available`` (a waiter bounded
by ``tasks.backup_testing.settings.rds_restore.timeout_minutes``), validates over SQL — the configured smoke queries, the
tables and rows present, the measured RPO (newest ``rpo_column`` against the snapshot time or
the drill start) — and is **always** deleted (``SkipFinalSnapshot``, automated backups too).

Guards, checked before ``RestoreDBInstance*`` creates anything (:func:`refuse_before_restore`):
the temporary identifier never names a production instance (the source or
``tasks.system_health_check.settings.rds_instances``); the SQL target is refused when it is on the application
database's server (same host and port, whatever the database name) or an entry of
``tasks.backup_testing.settings.production_targets`` — decided up front when the ``scratch_db`` connection fixes
the host, and again on the new instance's endpoint. Only instances carrying our purpose tag are
ever deleted. The SQL login is the ``scratch_db``
connection's (never logged); its host/port replace the endpoint when set (a tunnel/proxy).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sanvi_ops.core.backups import PgTarget, row_counts
from sanvi_ops.core.results import CheckResult, Status, grade
from sanvi_ops.core.rto_forecast import PhaseTimer, phases_line
from sanvi_ops.tasks.backup_testing.restore import (
    RestoreOutcome,
    RestoreRefused,
    _parse_target,
    _same_server,
    _smoke,
    rpo_check,
)

log = logging.getLogger(__name__)

PURPOSE_TAG = "sanvi-ops:purpose"
RUN_TAG = "sanvi-ops:created-by"
RESTORE_TEST = "restore-test"
DR_TEST = "dr-test"
KIND_RDS = "restore_test_rds"

__all__ = [
    "DR_TEST",
    "KIND_RDS",
    "PURPOSE_TAG",
    "RESTORE_TEST",
    "RUN_TAG",
    "RdsSettings",
    "SqlLogin",
    "delete_orphans",
    "latest_automated_snapshot",
    "restore_latest_time",
    "restore_snapshot",
]


@dataclass
class SqlLogin:
    """How to log in to a restored instance: the ``scratch_db`` connection's fields.

    ``host``/``port`` replace the endpoint's when set (tunnel/proxy; tests: a local server).
    """

    user: str
    password: str = field(repr=False)
    dbname: str | None = None
    host: str | None = None
    port: int | None = None
    # The connection's libpq extras (sslmode, options, keepalives, ...), as PostgresHook forwards them.
    params: dict[str, Any] = field(default_factory=dict)

    def dsn(self, endpoint_host: str, endpoint_port: int, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return str(
            make_conninfo(
                **self.params,
                host=self.host or endpoint_host,
                port=self.port or endpoint_port,
                dbname=dbname,
                user=self.user,
                password=self.password,
                connect_timeout=10,
                application_name="sanvi_ops.tasks.backup_testing.rds_restore",
            )
        )


@dataclass
class RdsSettings:
    """``rds_restore`` + the validation settings of ``backup_testing`` / ``dr_testing``."""

    source_instance: str
    production_instances: list[str] = field(default_factory=list)
    production_targets: list[str] = field(default_factory=list)
    instance_class: str = "db.t3.micro"
    subnet_group: str | None = None
    security_group_ids: list[str] = field(default_factory=list)
    timeout_s: float = 5400
    poll_s: int = 30
    smoke_queries: list[tuple[str, str]] = field(default_factory=list)
    rpo_column: str | None = None
    rpo_warning_min: float = 75
    rpo_critical_min: float = 120
    rto_warning_min: float = 45
    rto_critical_min: float = 60


def _result(prefix: str, check: str, status: Status, summary: str, **kw: Any) -> CheckResult:
    return CheckResult(f"{prefix}.{check}", status, summary, component="backups", **kw)


def _aws_error(exc: Exception) -> str:
    from sanvi_ops.core.aws_errors import aws_error_text

    operation = getattr(exc, "operation_name", None)
    return f"{operation}: {aws_error_text(exc)}" if operation else aws_error_text(exc)


def _denied(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


def temp_identifier(purpose: str, when: dt.datetime) -> str:
    """``sanvi-<purpose>-<yyyymmddhhmmss>``: a valid, recognisable DB instance identifier."""
    return f"sanvi-{purpose}-{when.astimezone(dt.UTC):%Y%m%d%H%M%S}"


def _tags(instance: dict[str, Any], rds: Any) -> dict[str, str]:
    tags = instance.get("TagList")
    if tags is None:
        tags = rds.list_tags_for_resource(ResourceName=instance["DBInstanceArn"]).get("TagList", [])
    return {t["Key"]: t["Value"] for t in tags}


def _refuse_identifier(identifier: str, settings: RdsSettings) -> None:
    production = {settings.source_instance, *settings.production_instances}
    if identifier in production:
        raise RestoreRefused(f"temporary RDS instance {identifier!r} is a production instance: refused")


def refuse_sql_target(
    host: str, port: int, dbname: str, app: PgTarget | None, production_targets: list[str]
) -> None:
    """A validation target on the application database's server (same host and port, whatever
    the database name) or on a server listed as production is refused."""
    if app is not None and _same_server(host, port, app.host, app.port):
        raise RestoreRefused(
            f"validation target {host}:{port}/{dbname} is on the application database's server "
            f"({app.host}:{app.port}, database {app.dbname}): same server, whatever the database: refused "
            "(check the scratch_db connection's host/port)"
        )
    for entry in production_targets:
        p_host, p_port, _db = _parse_target(entry)
        if _same_server(host, port, p_host, p_port):
            raise RestoreRefused(
                f"validation target {host}:{port}/{dbname} is listed as production ({entry}): refused"
            )


def refuse_before_restore(
    ident: str, login: SqlLogin, settings: RdsSettings, app: PgTarget | None, expected_port: int
) -> None:
    """Every refusal that can be decided before ``RestoreDBInstance*`` creates anything: the
    temporary identifier, and the SQL target when the ``scratch_db`` connection fixes its host
    (a tunnel/proxy; its port, else the port the restored instance will have). Without a host
    override the target is the new instance's own endpoint, checked again once it exists."""
    _refuse_identifier(ident, settings)
    if login.host:
        refuse_sql_target(
            login.host,
            login.port or expected_port,
            login.dbname or "postgres",
            app,
            settings.production_targets,
        )


def delete_orphans(rds: Any, purpose: str, run_id: str, settings: RdsSettings) -> list[str]:
    """Delete every instance carrying our ``purpose`` tag before this run creates its own.

    Each DAG runs one at a time (``max_active_runs=1``) and each purpose belongs to one DAG, so
    any such instance is a leftover — of a killed run, or of an earlier try of this very run
    (``run_id`` is only logged). Production instances are never touched, whatever their tags.
    """
    deleted: list[str] = []
    production = {settings.source_instance, *settings.production_instances}
    for page in rds.get_paginator("describe_db_instances").paginate():
        for inst in page.get("DBInstances", []):
            ident = inst["DBInstanceIdentifier"]
            tags = _tags(inst, rds)
            if tags.get(PURPOSE_TAG) != purpose or ident in production:
                continue
            if inst.get("DBInstanceStatus") == "deleting":
                continue
            log.info("%s: deleting %s (left by %s)", run_id, ident, tags.get(RUN_TAG, "?"))
            rds.delete_db_instance(
                DBInstanceIdentifier=ident, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
            )
            deleted.append(ident)
    return deleted


def latest_automated_snapshot(rds: Any, source: str) -> dict[str, Any] | None:
    """The newest ``available`` automated snapshot of ``source``: from the same facts
    ``backup_verification`` grades (:func:`sanvi_ops.core.rds_backups.read_facts`)."""
    from sanvi_ops.core.rds_backups import read_facts

    return read_facts(rds, source, describe_instance=False, snapshot_type="automated").newest_automated


def _wait(rds: Any, waiter: str, ident: str, settings: RdsSettings) -> None:
    rds.get_waiter(waiter).wait(
        DBInstanceIdentifier=ident,
        WaiterConfig={
            "Delay": settings.poll_s,
            "MaxAttempts": max(1, math.ceil(settings.timeout_s / settings.poll_s)),
        },
    )


def _common_args(ident: str, purpose: str, run_id: str, settings: RdsSettings) -> dict[str, Any]:
    args: dict[str, Any] = {
        "DBInstanceClass": settings.instance_class,
        "PubliclyAccessible": False,
        "MultiAZ": False,
        "DeletionProtection": False,
        "Tags": [{"Key": PURPOSE_TAG, "Value": purpose}, {"Key": RUN_TAG, "Value": _tag_value(run_id)}],
    }
    if settings.subnet_group:
        args["DBSubnetGroupName"] = settings.subnet_group
    if settings.security_group_ids:
        args["VpcSecurityGroupIds"] = list(settings.security_group_ids)
    return args


def _tag_value(text: str) -> str:
    """Tag values allow letters, digits, spaces and ``_.:/=+-@``, at most 256 characters."""
    return re.sub(r"[^\w .:/=+\-@]", "_", text)[:256]


def _launch_validate_delete(
    rds: Any,
    *,
    prefix: str,
    purpose: str,
    run_id: str,
    settings: RdsSettings,
    login: SqlLogin,
    app: PgTarget | None,
    create: Callable[[str], dict[str, Any]],
    describe_source: str,
    rpo_point: Callable[[dict[str, Any]], tuple[dt.datetime, str]],
    clock: tuple[dt.datetime, float] | None,
    backup_id: str,
    expected_port: int = 5432,
    while_up: Callable[[str], None] | None = None,
) -> RestoreOutcome:
    started, t0 = clock or (dt.datetime.now(dt.UTC), time.monotonic())
    ident = temp_identifier(purpose, started)
    results: list[CheckResult] = []
    outcome = RestoreOutcome(results=results, started_at=started, backup_id=backup_id)
    outcome.details = {"instance": ident, "source": describe_source, "region": rds.meta.region_name}
    timer = PhaseTimer()  # issue 18: the RDS restore's phases, stored like the self-managed ones
    outcome.details["phases"] = timer.phases
    try:
        refuse_before_restore(ident, login, settings, app, expected_port)
    except RestoreRefused as exc:  # nothing was created
        results.append(_result(prefix, "guard", Status.CRITICAL, str(exc), severity="P3"))
        return outcome
    try:
        orphans = delete_orphans(rds, purpose, run_id, settings)
    except Exception as exc:  # noqa: BLE001 - an AWS failure is a result; the test goes on
        results.append(
            _result(prefix, "leftovers", Status.ERROR, f"looking for orphans failed: {_aws_error(exc)}")
        )
        orphans = []
    if orphans:
        results.append(
            _result(
                prefix,
                "leftovers",
                Status.WARNING,
                f"deleted {len(orphans)} temporary instance(s) left by an earlier run: {', '.join(orphans)}",
                details={"deleted": orphans},
            )
        )
    created = False
    timer.add("prepare", time.monotonic() - t0)  # guards and orphans
    try:
        try:
            with timer.phase("create"):  # the RestoreDBInstance* call
                create(ident)
            created = True
            with timer.phase("wait_available"):  # RDS restores the snapshot and starts the instance
                _wait(rds, "db_instance_available", ident, settings)
                inst = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
            outcome.restore_seconds = round(time.monotonic() - t0, 3)
        except Exception as exc:  # noqa: BLE001 - every failure is a result; deletion follows
            denied = _denied(exc)
            results.append(
                _result(
                    prefix,
                    "run",
                    Status.ERROR if denied else Status.CRITICAL,
                    f"restore of {describe_source} to {ident} failed: {_aws_error(exc)}"
                    + (" — the worker's IAM role lacks this action" if denied else ""),
                    severity=None if denied else "P2",
                )
            )
            return outcome
        endpoint = inst.get("Endpoint") or {}
        dbname = login.dbname or inst.get("DBName") or "postgres"
        host, port = (
            login.host or endpoint.get("Address", ""),
            login.port or int(endpoint.get("Port") or 5432),
        )
        refuse_sql_target(host, port, dbname, app, settings.production_targets)
        dsn = login.dsn(endpoint.get("Address", ""), int(endpoint.get("Port") or 5432), dbname)
        outcome.details.update(
            {
                "endpoint": f"{endpoint.get('Address')}:{endpoint.get('Port')}",
                "validated_at": f"{host}:{port}/{dbname}",
            }
        )
        try:
            with timer.phase("smoke"):
                smoke = _smoke(dsn, settings.smoke_queries)
            outcome.rto_seconds = round(time.monotonic() - t0, 3)
            if while_up is not None:  # the DR drill's application and cache (never raises)
                while_up(dsn)
            timer.in_rto = False  # validation after the instance answers: reported, not in the RTO
            with timer.phase("row_counts"):
                counts = row_counts(dsn)
        except Exception as exc:  # noqa: BLE001 - the instance does not answer SQL
            results.append(
                _result(
                    prefix,
                    "run",
                    Status.CRITICAL,
                    f"{ident} is available but does not answer SQL at {host}:{port}/{dbname}: "
                    f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}",
                    severity="P2",
                )
            )
            return outcome
        smoke = CheckResult(
            f"{prefix}.smoke",
            smoke.status,
            smoke.summary,
            details=smoke.details,
            component="backups",
            severity=smoke.severity,
        )
        results.append(smoke)
        total = sum(counts.values())
        if counts:
            results.append(
                _result(
                    prefix,
                    "rows",
                    Status.OK,
                    f"{len(counts)} tables, {total} rows restored",
                    metric="rows",
                    observed=float(total),
                    unit="rows",
                    details={"tables": len(counts)},
                )
            )
        else:
            results.append(
                _result(prefix, "rows", Status.CRITICAL, f"{ident}/{dbname} holds no tables", severity="P2")
            )
        point, against = rpo_point(inst)
        with timer.phase("rpo"):
            rpo, outcome.rpo_seconds = rpo_check(
                dsn,
                settings.rpo_column,
                point,
                settings.rpo_warning_min,
                settings.rpo_critical_min,
                against=against,
            )
        results.append(
            CheckResult(
                f"{prefix}.rpo",
                rpo.status,
                rpo.summary,
                metric=rpo.metric,
                observed=rpo.observed,
                unit=rpo.unit,
                thresholds=rpo.thresholds,
                severity=rpo.severity,
                component="backups",
            )
        )
    except RestoreRefused as exc:
        results.append(_result(prefix, "guard", Status.CRITICAL, str(exc), severity="P3"))
    finally:
        if created:
            timer.in_rto = False
            with timer.phase("delete"):
                results.append(_delete(rds, ident, prefix, settings))
    phases = [dict(p) for p in timer.phases]
    results.insert(
        1 if orphans else 0,
        _result(
            prefix,
            "phases",
            Status.OK,
            phases_line(phases),
            details={"phases": phases, "in_rto_seconds": timer.rto_seconds()},
        ),
    )
    if outcome.rto_seconds is not None:
        rto_min = outcome.rto_seconds / 60
        results.insert(
            1 if orphans else 0,
            _result(
                prefix,
                "duration",
                grade(rto_min, settings.rto_warning_min, settings.rto_critical_min),
                f"{describe_source} restored to {ident} in {outcome.restore_seconds:.1f} s; RTO {rto_min:.1f} min",
                metric="rto_minutes",
                observed=round(rto_min, 2),
                unit="min",
                thresholds={"warning": settings.rto_warning_min, "critical": settings.rto_critical_min},
                details={
                    "restore_seconds": outcome.restore_seconds,
                    "rto_seconds": outcome.rto_seconds,
                    "rpo_seconds": outcome.rpo_seconds,
                    "phases": phases,
                },
            ),
        )
    return outcome


def _delete(rds: Any, ident: str, prefix: str, settings: RdsSettings) -> CheckResult:
    try:
        rds.delete_db_instance(
            DBInstanceIdentifier=ident, SkipFinalSnapshot=True, DeleteAutomatedBackups=True
        )
    except Exception as exc:  # noqa: BLE001
        return _result(
            prefix,
            "cleanup",
            Status.CRITICAL,
            f"temporary instance {ident} NOT deleted ({_aws_error(exc)}); it is tagged and the next run "
            "deletes it — or delete it by hand",
            severity="P3",
        )
    try:
        _wait(rds, "db_instance_deleted", ident, settings)
    except Exception as exc:  # noqa: BLE001 - deletion was accepted; it finishes on its own
        return _result(
            prefix,
            "cleanup",
            Status.WARNING,
            f"{ident}: deletion accepted, not finished yet ({_aws_error(exc)})",
        )
    return _result(prefix, "cleanup", Status.OK, f"temporary instance {ident} deleted")


def restore_snapshot(
    rds: Any,
    settings: RdsSettings,
    login: SqlLogin,
    *,
    run_id: str,
    app: PgTarget | None,
    snapshot_id: str | None = None,
    dry_run: bool = False,
) -> RestoreOutcome:
    """The weekly RDS restore test: the newest automated snapshot (or ``snapshot_id``)."""
    prefix = "restore"
    started = dt.datetime.now(dt.UTC)
    try:
        if snapshot_id:
            found = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot_id)["DBSnapshots"]
            snap = found[0] if found else None
        else:
            snap = latest_automated_snapshot(rds, settings.source_instance)
    except Exception as exc:  # noqa: BLE001
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "DBSnapshotNotFound":
            snap = None
        else:
            return RestoreOutcome(
                results=[_result(prefix, "run", Status.ERROR, f"listing snapshots failed: {_aws_error(exc)}")]
            )
    if snap is None:
        status = Status.ERROR if snapshot_id else Status.CRITICAL
        what = (
            f"snapshot {snapshot_id!r} does not exist"
            if snapshot_id
            else f"no available automated snapshot of {settings.source_instance}"
        )
        return RestoreOutcome(
            results=[
                _result(prefix, "run", status, what, severity="P2" if status == Status.CRITICAL else None)
            ]
        )
    sid = snap["DBSnapshotIdentifier"]
    if dry_run:
        return RestoreOutcome(
            results=[
                _result(
                    prefix,
                    "run",
                    Status.SKIPPED,
                    f"dry run: would restore snapshot {sid} ({snap['SnapshotCreateTime']:%Y-%m-%d %H:%M}) to {temp_identifier(RESTORE_TEST, started)}",
                )
            ],
            backup_id=sid,
        )

    def create(ident: str) -> dict[str, Any]:
        resp: dict[str, Any] = rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=ident,
            DBSnapshotIdentifier=sid,
            **_common_args(ident, RESTORE_TEST, run_id, settings),
        )
        return resp

    return _launch_validate_delete(
        rds,
        prefix=prefix,
        purpose=RESTORE_TEST,
        run_id=run_id,
        settings=settings,
        login=login,
        app=app,
        create=create,
        describe_source=f"snapshot {sid}",
        rpo_point=lambda _inst: (snap["SnapshotCreateTime"], "the snapshot time"),
        clock=(started, time.monotonic()),
        backup_id=sid,
        expected_port=int(snap.get("Port") or 5432),
    )


def _replicated_backup(rds_dr: Any, source: str) -> dict[str, Any] | None:
    found = rds_dr.describe_db_instance_automated_backups(DBInstanceIdentifier=source).get(
        "DBInstanceAutomatedBackups", []
    )
    usable = [
        b
        for b in found
        if b.get("Status") in {"active", "replicating", "retained"}
        and b.get("Region") != rds_dr.meta.region_name
    ]
    return usable[0] if usable else None


def restore_latest_time(
    rds_dr: Any,
    settings: RdsSettings,
    login: SqlLogin,
    *,
    source_region: str,
    run_id: str,
    app: PgTarget | None,
    dry_run: bool = False,
    clock: tuple[dt.datetime, float] | None = None,
    prefix: str = "dr.database",
    while_up: Callable[[str], None] | None = None,
) -> RestoreOutcome:
    """The DR drill in RDS mode: PITR to the latest restorable time, in ``rds_dr``'s region.

    :param while_up: called with the restored instance's DSN once it answers SQL (the full-system
        drill's application and cache), before it is deleted."""
    started, t0 = clock or (dt.datetime.now(dt.UTC), time.monotonic())
    dr_region = rds_dr.meta.region_name
    source_args: dict[str, Any]
    restored_to: dt.datetime | None = None
    if dr_region == source_region:
        source_args = {"SourceDBInstanceIdentifier": settings.source_instance}
        describe = f"{settings.source_instance} (PITR, latest restorable time)"
    else:
        try:
            replicated = _replicated_backup(rds_dr, settings.source_instance)
        except Exception as exc:  # noqa: BLE001
            return RestoreOutcome(
                results=[_result(prefix, "run", Status.ERROR, f"{dr_region}: {_aws_error(exc)}")],
                started_at=started,
            )
        if replicated is None:
            return RestoreOutcome(
                results=[
                    _result(
                        prefix,
                        "run",
                        Status.CRITICAL,
                        f"no automated backups of {settings.source_instance} replicated to {dr_region}: the DR region "
                        "cannot recover the database (enable start_db_instance_automated_backups_replication)",
                        severity="P2",
                    )
                ],
                started_at=started,
            )
        source_args = {"SourceDBInstanceAutomatedBackupsArn": replicated["DBInstanceAutomatedBackupsArn"]}
        restored_to = (replicated.get("RestoreWindow") or {}).get("LatestTime")
        describe = (
            f"{settings.source_instance}'s backups replicated to {dr_region} (PITR, latest restorable time)"
        )
    if dry_run:
        return RestoreOutcome(
            results=[
                _result(
                    prefix,
                    "run",
                    Status.SKIPPED,
                    f"dry run: would restore {describe} to {temp_identifier(DR_TEST, started)} in {dr_region}",
                )
            ],
            started_at=started,
        )

    def create(ident: str) -> dict[str, Any]:
        resp: dict[str, Any] = rds_dr.restore_db_instance_to_point_in_time(
            TargetDBInstanceIdentifier=ident,
            UseLatestRestorableTime=True,
            **source_args,
            **_common_args(ident, DR_TEST, run_id, settings),
        )
        return resp

    outcome = _launch_validate_delete(
        rds_dr,
        prefix=prefix,
        purpose=DR_TEST,
        run_id=run_id,
        settings=settings,
        login=login,
        app=app,
        create=create,
        describe_source=describe,
        rpo_point=lambda _inst: (started, "the drill start"),
        clock=(started, t0),
        backup_id=f"pitr:{settings.source_instance}",
        while_up=while_up,
    )
    if restored_to is not None:
        outcome.details["restored_to"] = restored_to.isoformat()
    return outcome
