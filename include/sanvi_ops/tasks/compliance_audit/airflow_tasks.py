"""Bodies of the Compliance Audit's tasks: config + connections in, result dicts out.

One task per audit requirement, each guarded on its own (a missing permission is reported for
it alone), then the evidence pack: the other tasks' results plus the quarter's stored results,
written to the versioned evidence bucket.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.airflow_kit.publish import results_store
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status
from sanvi_ops.tasks.cost_optimization.airflow_tasks import run_date


def _client(cfg: MaintenanceConfig, service: str) -> Any:
    from sanvi_ops.airflow_kit.connections import aws_client

    return aws_client(cfg.connections.aws, service)


def _period(context: dict[str, Any]) -> tuple[Any, datetime, datetime]:
    """(quarter, its start, the run's date): the audit covers its quarter up to the run."""
    from sanvi_ops.tasks.compliance_audit.compliance import current_quarter

    end = run_date(context)
    quarter = current_quarter(end)
    start = datetime(quarter.start.year, quarter.start.month, 1, tzinfo=UTC)
    return quarter, start, end


def log_retention() -> ResultDicts:
    from sanvi_ops.tasks.compliance_audit.compliance import log_retention as check

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        ar = cfg.audit_retention
        years = {
            "system_access": ar.system_access.retention_years,
            "data_access": ar.data_access.retention_years,
            "changes": ar.changes.retention_years,
        }
        groups = {str(k): list(v) for k, v in cfg.tasks.compliance_audit.settings.log_groups.items()}
        return check(_client(cfg, "logs"), groups, years)

    return guard("cloudwatch_logs", Status.ERROR, run)


def backups(context: dict[str, Any]) -> ResultDicts:
    """Lifecycle (``backups.ensure_lifecycle``, never creating) and encryption of the backup
    bucket; in ``rds`` mode the automated backups' retention and encryption instead."""
    from sanvi_ops.core import backups as bk
    from sanvi_ops.core.aws_errors import denied_result, is_denied
    from sanvi_ops.tasks.backup_verification import verify as backups_verify
    from sanvi_ops.tasks.compliance_audit.compliance import backup_encryption

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        db = cfg.database_backups
        retention = cfg.backups.database.retention_days
        if db.mode == "rds":
            return backups_verify.check_rds_backups(
                _client(cfg, "rds"),
                list(cfg.tasks.system_health_check.settings.rds_instances),
                now=run_date(context),
                retention_days=retention,
                restorable_within=timedelta(minutes=cfg.tasks.backup_verification.settings.rpo.critical),
            )
        s3 = _client(cfg, "s3")
        check = "compliance.backup_lifecycle"
        try:
            found = bk.ensure_lifecycle(
                s3,
                db.bucket,
                db.prefix,
                glacier_after_days=db.glacier_after_days,
                retention_days=retention,
                create=False,
            )
            lifecycle = dataclasses.replace(found, check=check)
        except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
            lifecycle = (
                denied_result(check, exc, client=s3, component="backups", role="the audit's role")
                if is_denied(exc)
                else backups_verify.s3_failure(check, f"lifecycle of s3://{db.bucket}", exc)
            )
        return [lifecycle, backup_encryption(s3, db.bucket)]

    return guard("backups", Status.ERROR, run)


def access(context: dict[str, Any]) -> ResultDicts:
    from sanvi_ops.tasks.compliance_audit.compliance import iam_review

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        ca, scan = cfg.tasks.compliance_audit.settings, cfg.tasks.security_scan.settings
        return iam_review(
            _client(cfg, "iam"),
            now=run_date(context),
            unused_days=ca.unused_days or scan.unused_credentials_days,
            key_max_age_days=ca.key_max_age_days or scan.key_max_age_days,
        )

    return guard("iam", Status.ERROR, run)


def classification() -> ResultDicts:
    """Every S3 bucket and RDS instance classified, and its class's rules met."""
    from sanvi_ops.tasks.compliance_audit.classification import check_classification

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        return check_classification(
            _client(cfg, "s3"),
            _client(cfg, "rds"),
            _client(cfg, "kms"),
            _client(cfg, "logs"),
            cfg.tasks.compliance_audit.settings.data_classification,
        )

    return guard("classification", Status.ERROR, run)


def airflow_get(section: str, key: str) -> str | None:
    """The effective Airflow setting (``AIRFLOW__SECTION__KEY`` env, airflow.cfg, then defaults,
    providers' included), ``None`` when it has none."""
    from airflow.sdk import conf

    value = conf.get(section, key, fallback=None)
    return None if value is None else str(value)


def session() -> ResultDicts:
    from sanvi_ops.tasks.compliance_audit.compliance import session_timeout

    return guard(
        "airflow",
        Status.ERROR,
        lambda cfg: session_timeout(
            airflow_get, max_hours=cfg.tasks.compliance_audit.settings.session_timeout_hours
        ),
    )


def vendors(context: dict[str, Any]) -> ResultDicts:
    from sanvi_ops.tasks.compliance_audit.compliance import Vendor, health_history, vendor_availability

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        _quarter, start, end = _period(context)
        wanted = [
            Vendor(key, v.name, v.sla_pct, v.dag_id, tuple(v.checks))
            for key, v in cfg.tasks.compliance_audit.settings.vendors.items()
        ]
        dsn = results_store(cfg).dsn
        history = health_history(dsn, sorted({v.dag_id for v in wanted}), start, end)
        return vendor_availability(wanted, history, start=start, end=end)

    return guard("vendors", Status.ERROR, run)


def evidence_pack(task_ids: list[str], context: dict[str, Any]) -> ResultDicts:
    """Gather the audit tasks' results and the quarter's stored ones; write the pack."""
    from sanvi_ops.core.store import StoreError
    from sanvi_ops.tasks.compliance_audit import compliance

    ti, dag_run = context["ti"], context["dag_run"]

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        import psycopg

        from sanvi_ops.airflow_kit.publish import collect_results
        from sanvi_ops.core.annual_review import annual_evidence
        from sanvi_ops.core.change_records import quarter_evidence

        quarter, start, end = _period(context)
        ev = cfg.tasks.compliance_audit.settings.evidence
        results: list[tuple[str, CheckResult]] = []
        for task_id in task_ids:
            results += [(task_id, r) for r in collect_results(ti, [task_id])]
        stored: dict[str, Any] | None = None
        stored_error = None
        try:
            dsn = results_store(cfg).dsn
            stored = compliance.quarter_summary(
                dsn,
                start,
                end + timedelta(seconds=1),
                max_findings=cfg.tasks.compliance_audit.settings.evidence_max_findings,
            )
            # The guide's "Changes" audit records: the quarter's change records (standard/normal/emergency).
            stored["change_records"] = quarter_evidence(
                dsn, start, end + timedelta(seconds=1), datetime.now(UTC)
            )
            # The guide's Compliance Reviews and Vendor Assessment: the annual reviews of the year
            # to the quarter's end (report, sign-offs, findings), or the gap when one has not run.
            annual = sorted(t for t, spec in cfg.tasks.items() if spec.cadence == "annually")
            stored["annual_reviews"] = annual_evidence(dsn, annual, end)
        except (psycopg.Error, StoreError) as exc:
            stored_error = f"{type(exc).__name__}: {exc}"
        pack = compliance.build_evidence_pack(
            dag_id=dag_run.dag_id,
            run_id=dag_run.run_id,
            logical_date=end,
            quarter=quarter,
            generated_at=datetime.now(UTC),
            results=results,
            stored=stored,
            stored_error=stored_error,
        )
        written = compliance.write_evidence_pack(
            _client(cfg, "s3"),
            pack,
            bucket=ev.bucket,
            key=compliance.evidence_key(ev.prefix, quarter),
            sse=ev.sse,
            kms_key_id=ev.kms_key_id,
        )
        if stored_error:
            return [
                written,
                CheckResult(
                    check="compliance.evidence_store",
                    status=Status.ERROR,
                    summary=f"the quarter's stored results are missing from the pack: {stored_error}",
                    component="audit",
                ),
            ]
        return [written]

    return guard("audit", Status.ERROR, run)
