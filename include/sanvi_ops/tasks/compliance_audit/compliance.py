"""Quarterly Compliance Audit: the guide's audit requirements as checks, and an evidence pack.

Plain functions taking ready clients (or rows of the results store) and returning
:class:`CheckResult` objects:

- :func:`log_retention`: every CloudWatch Logs group of each audit category exists and keeps
  its records at least as long as ``audit_retention`` says (system access 1 year, data access and
  changes 3 years). A group with no retention set is flagged too: the policy must be explicit.
- :func:`backup_encryption` (and :func:`sanvi_ops.core.backups.ensure_lifecycle`, called by the glue):
  the backup bucket encrypts by default with a key of its own (SSE-KMS).
- :func:`iam_review`: access reviews (IAM users and roles unused for 90 days) and credential
  rotation (active access keys older than 90 days).
- :func:`session_timeout`: Airflow's own session timeout against the guide's 12 hours, read from
  the effective Airflow configuration of the auth manager in use.
- :func:`vendor_availability`: each critical vendor's availability this quarter, measured from
  the stored health check history, against its SLA.
- :func:`build_evidence_pack` / :func:`write_evidence_pack`: every result (with dag id, run id
  and timestamps) plus the quarter's stored results, as JSON in a versioned S3 bucket; the
  object's version id and SHA-256 are recorded in a result.

A call the credentials may not make (``AccessDenied``) becomes an ``error`` result naming the
missing IAM action (:mod:`sanvi_ops.core.aws_errors`); the other checks still run.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_result
from sanvi_ops.core.queries import query_loader
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.cost_optimization.cost import Quarter, as_utc

__all__ = [
    "EVIDENCE_NAME",
    "HealthSample",
    "Vendor",
    "backup_encryption",
    "build_evidence_pack",
    "current_quarter",
    "health_history",
    "iam_review",
    "log_retention",
    "quarter_summary",
    "session_timeout",
    "vendor_availability",
    "write_evidence_pack",
]

SQL_DIR = Path(__file__).resolve().parent / "sql"
ROLE = "the audit's role"
EVIDENCE_NAME = "evidence-pack.json"
#: CloudWatch Logs ``retentionInDays`` is one of these; a year is 365 days.
DAYS_PER_YEAR = 365

Getter = Callable[[str, str], "str | None"]


_sql = query_loader(SQL_DIR)


def _aws_error(check: str, component: str, client: Any, what: str, exc: Exception) -> CheckResult:
    """A refused call → :func:`denied_result`; any other AWS failure → ``error`` naming it."""
    return aws_error_result(
        check,
        exc,
        client=client,
        component=component,
        role=ROLE,
        failed=f"{what}: could not be checked ({{reason}})",
    )


def _finding(check: str, component: str, text: str, action: str, **details: Any) -> CheckResult:
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=f"{text} — Action: {action}",
        details=details,
        component=component,
    )


def current_quarter(day: dt.date | dt.datetime) -> Quarter:
    """The calendar quarter ``day`` falls in (the audit reviews the quarter it runs in)."""
    d = day.date() if isinstance(day, dt.datetime) else day
    start = dt.date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    end = dt.date(start.year + 1, 1, 1) if start.month == 10 else dt.date(start.year, start.month + 3, 1)
    return Quarter(start, end)


# --------------------------------------------------------------------------------------------
# Log retention per audit category
# --------------------------------------------------------------------------------------------


def log_retention(
    logs: Any, groups: Mapping[str, Sequence[str]], required_years: Mapping[str, int]
) -> list[CheckResult]:
    """Each log group of each category: exists, and ``retentionInDays`` ≥ the category's years.

    :param groups: category (``system_access``, ``data_access``, ``changes``) → log group names.
    :param required_years: category → years (``audit_retention.<category>.retention_years``).

    A group listed under several categories is checked once, against the longest of them.
    """
    strictest: dict[str, str] = {}
    for category, names in groups.items():
        for name in names:
            held = strictest.get(name)
            if held is None or required_years[category] > required_years[held]:
                strictest[name] = category
    return [
        _log_group(logs, name, category, required_years[category]) for name, category in strictest.items()
    ]


def _log_group(logs: Any, name: str, category: str, years: int) -> CheckResult:
    check = f"compliance.log_retention[{name}]"
    need = years * DAYS_PER_YEAR
    label = category.replace("_", " ")
    try:
        found = [
            g
            for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
            for g in page.get("logGroups", [])
            if g.get("logGroupName") == name
        ]
    except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
        return _aws_error(check, "cloudwatch_logs", logs, f"log group {name}", exc)
    base = {"log_group": name, "category": category, "required_days": need}
    fix = f"aws logs put-retention-policy --log-group-name {name} --retention-in-days {need}"
    if not found:
        return _finding(
            check,
            "cloudwatch_logs",
            f"{label} audit log group {name} does not exist: its records are not kept",
            f"create it with retention {need} days and send the {label} records to it",
            **base,
        )
    days = found[0].get("retentionInDays")
    if days is None:
        return _finding(
            check,
            "cloudwatch_logs",
            f"{label} log group {name} has no retention set (kept forever, the policy is {years} y)",
            fix,
            **base,
            retention_days=None,
        )
    short = int(days) < need
    return CheckResult(
        check=check,
        status=Status.WARNING if short else Status.OK,
        summary=(
            f"{label} log group {name} keeps records {days} days, the guide requires {years} y ({need} d) "
            f"— Action: {fix}"
            if short
            else f"{label} log group {name}: retention {days} d ≥ {need} d"
        ),
        metric="retention_days",
        observed=float(days),
        unit="d",
        thresholds={"warning": float(need)},
        details={**base, "retention_days": int(days)},
        component="cloudwatch_logs",
    )


# --------------------------------------------------------------------------------------------
# Backup encryption (the lifecycle is sanvi_ops.core.backups.ensure_lifecycle's)
# --------------------------------------------------------------------------------------------


def backup_encryption(s3: Any, bucket: str) -> CheckResult:
    """The backup bucket's default encryption is SSE-KMS (the guide: "Backup encryption with
    separate key management"); SSE-S3 (AES256) or none is a finding."""
    check = "compliance.backup_encryption"
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"].get("Rules", [])
    except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == (
            "ServerSideEncryptionConfigurationNotFoundError"
        ):
            rules = []
        else:
            return _aws_error(check, "backups", s3, f"s3://{bucket} encryption", exc)
    defaults = [r.get("ApplyServerSideEncryptionByDefault") or {} for r in rules]
    algorithms = [str(d.get("SSEAlgorithm", "")) for d in defaults]
    key = next((d.get("KMSMasterKeyID") for d in defaults if d.get("KMSMasterKeyID")), None)
    details = {"bucket": bucket, "algorithms": algorithms, "kms_key": key, "control": "S3.4"}
    if any(a.startswith("aws:kms") for a in algorithms):
        return CheckResult(
            check=check,
            status=Status.OK,
            summary=f"s3://{bucket}: default encryption SSE-KMS" + (f" with key {key}" if key else ""),
            details=details,
            component="backups",
        )
    what = "SSE-S3 (AES256), not a key of its own" if algorithms else "no default encryption"
    return _finding(
        check,
        "backups",
        f"[S3.4] backup bucket s3://{bucket}: {what} (the guide: backup encryption with separate key management)",
        "set default encryption to SSE-KMS with the backup key (database_backups.kms_key_alias)",
        **details,
    )


# --------------------------------------------------------------------------------------------
# Access reviews and credential rotation
# --------------------------------------------------------------------------------------------


def _age(when: Any, now: dt.datetime) -> float | None:
    if not isinstance(when, dt.datetime):
        return None
    return (now - as_utc(when)).total_seconds() / 86400


def _newest(*values: Any) -> dt.datetime | None:
    stamps = [as_utc(v) for v in values if isinstance(v, dt.datetime)]
    return max(stamps) if stamps else None


def iam_review(iam: Any, *, now: dt.datetime, unused_days: int, key_max_age_days: int) -> list[CheckResult]:
    """Users and roles unused for ``unused_days`` (access review) and active access keys older
    than ``key_max_age_days`` (credential rotation); one summary result each.

    A user's last use is its newest console sign-in or access-key use; a role's is
    ``RoleLastUsed``. One never used counts from its creation (a new one is not "unused" yet).
    Service-linked roles (path ``/aws-service-role/``) belong to AWS and are left out.
    """
    now = as_utc(now)
    return [*_review_users(iam, now, unused_days, key_max_age_days), *_review_roles(iam, now, unused_days)]


def _review_users(iam: Any, now: dt.datetime, unused_days: int, key_max_age_days: int) -> list[CheckResult]:
    try:
        users = [u for page in iam.get_paginator("list_users").paginate() for u in page.get("Users", [])]
        keys: dict[str, list[dict[str, Any]]] = {}
        for user in users:
            name = user["UserName"]
            keys[name] = []
            for page in iam.get_paginator("list_access_keys").paginate(UserName=name):
                for key in page.get("AccessKeyMetadata", []):
                    last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get(
                        "AccessKeyLastUsed", {}
                    )
                    keys[name].append({**key, "LastUsedDate": last.get("LastUsedDate")})
    except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
        failed = _aws_error("compliance.access_review[users]", "iam", iam, "IAM users", exc)
        return [failed, CheckResult(**{**failed.to_dict(), "check": "compliance.credential_rotation"})]
    out: list[CheckResult] = []
    unused = old = active = 0
    for user in users:
        name = user["UserName"]
        last = _newest(user.get("PasswordLastUsed"), *(k.get("LastUsedDate") for k in keys[name]))
        idle = _age(last or user.get("CreateDate"), now) or 0.0
        if idle > unused_days:
            unused += 1
            when = f"last used {last:%Y-%m-%d}" if last else "never used"
            out.append(
                _finding(
                    f"compliance.unused_user[{name}]",
                    "iam",
                    f"[IAM.8] IAM user {name}: {when}, idle {int(idle)} days (> {unused_days})",
                    "remove the user, or record why it stays in the access review",
                    user=name,
                    idle_days=round(idle, 1),
                    last_used=last.isoformat() if last else None,
                    control="IAM.8",
                )
            )
        for key in keys[name]:
            if key.get("Status") != "Active":
                continue
            active += 1
            age = _age(key.get("CreateDate"), now) or 0.0
            if age > key_max_age_days:
                old += 1
                masked = f"…{str(key['AccessKeyId'])[-4:]}"
                out.append(
                    CheckResult(
                        check=f"compliance.key_rotation[{name}:{masked}]",
                        status=Status.WARNING,
                        summary=(
                            f"[IAM.3] IAM user {name}: access key {masked} is {int(age)} days old (> {key_max_age_days}, "
                            "the guide's credential rotation) — Action: create a new key, switch to it, delete this one"
                        ),
                        metric="key_age_days",
                        observed=round(age, 1),
                        unit="d",
                        thresholds={"warning": float(key_max_age_days)},
                        details={"user": name, "key": masked, "control": "IAM.3"},
                        component="iam",
                    )
                )
    out.append(
        CheckResult(
            check="compliance.access_review[users]",
            status=Status.OK,
            summary=f"{len(users)} IAM users reviewed: {unused} unused for > {unused_days} days",
            observed=float(unused),
            unit="count",
            details={"users": sorted(u["UserName"] for u in users), "unused": unused},
            component="iam",
        )
    )
    out.append(
        CheckResult(
            check="compliance.credential_rotation",
            status=Status.OK,
            summary=f"{active} active access keys: {old} older than {key_max_age_days} days",
            observed=float(old),
            unit="count",
            details={"active_keys": active, "overdue": old, "max_age_days": key_max_age_days},
            component="iam",
        )
    )
    return out


def _review_roles(iam: Any, now: dt.datetime, unused_days: int) -> list[CheckResult]:
    try:
        roles = [
            r
            for page in iam.get_paginator("list_roles").paginate()
            for r in page.get("Roles", [])
            if not str(r.get("Path", "/")).startswith("/aws-service-role/")
        ]
        # ListRoles leaves RoleLastUsed out: GetRole has it
        last_used = {
            r["RoleName"]: iam.get_role(RoleName=r["RoleName"])["Role"]
            .get("RoleLastUsed", {})
            .get("LastUsedDate")
            for r in roles
        }
    except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
        return [_aws_error("compliance.access_review[roles]", "iam", iam, "IAM roles", exc)]
    out: list[CheckResult] = []
    for role in roles:
        name = role["RoleName"]
        last = _newest(last_used.get(name))
        idle = _age(last or role.get("CreateDate"), now) or 0.0
        if idle > unused_days:
            when = f"last used {last:%Y-%m-%d}" if last else "never used"
            out.append(
                _finding(
                    f"compliance.unused_role[{name}]",
                    "iam",
                    f"IAM role {name}: {when}, idle {int(idle)} days (> {unused_days})",
                    "delete the role, or record why it stays in the access review",
                    role=name,
                    idle_days=round(idle, 1),
                    last_used=last.isoformat() if last else None,
                )
            )
    out.append(
        CheckResult(
            check="compliance.access_review[roles]",
            status=Status.OK,
            summary=f"{len(roles)} IAM roles reviewed: {len(out)} unused for > {unused_days} days",
            observed=float(len(out)),
            unit="count",
            details={"roles": sorted(r["RoleName"] for r in roles), "unused": len(out)},
            component="iam",
        )
    )
    return out


# --------------------------------------------------------------------------------------------
# Airflow's own session timeout
# --------------------------------------------------------------------------------------------

#: ``[fab] session_lifetime_minutes`` when unset (the FAB provider's fallback: 30 days).
FAB_DEFAULT_MINUTES = 30 * 24 * 60
#: ``[api_auth] jwt_expiration_time`` default (Airflow's config.yml).
JWT_DEFAULT_SECONDS = 86400


def _number(get: Getter, section: str, key: str, default: float) -> float:
    raw = get(section, key)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"Airflow config [{section}] {key} = {raw!r} is not a number") from None


def session_timeout(get: Getter, *, max_hours: float) -> list[CheckResult]:
    """The UI session of the auth manager in use, and the API tokens, against ``max_hours``.

    - FAB auth manager: the session ends after ``[fab] session_lifetime_minutes`` of inactivity
      (unset: 30 days); the API tokens the UI and clients hold last ``[api_auth]
      jwt_expiration_time`` seconds, so a token outliving the session keeps an idle user in.
    - Simple (or another) auth manager: the session *is* the JWT, ``[api_auth]
      jwt_expiration_time``.

    :param get: ``get(section, key)`` → the effective value (env ``AIRFLOW__…`` included) or ``None``.
    """
    manager = get("core", "auth_manager") or ""
    limit_min = max_hours * 60
    jwt_s = _number(get, "api_auth", "jwt_expiration_time", JWT_DEFAULT_SECONDS)
    out: list[CheckResult] = []

    def result(check: str, key: str, minutes: float, what: str, fix: str) -> CheckResult:
        ok = minutes <= limit_min
        text = f"{what}: {minutes / 60:g} h ({key} = {minutes:g} min)"
        return CheckResult(
            check=check,
            status=Status.OK if ok else Status.WARNING,
            summary=(
                f"{text} ≤ the guide's {max_hours:g} h"
                if ok
                else f"{text}, longer than the guide's {max_hours:g} h — Action: {fix}"
            ),
            metric="timeout_minutes",
            observed=minutes,
            unit="min",
            thresholds={"warning": limit_min},
            details={"auth_manager": manager, "setting": key},
            component="airflow",
        )

    if "fab" in manager.lower():
        minutes = _number(get, "fab", "session_lifetime_minutes", FAB_DEFAULT_MINUTES)
        out.append(
            result(
                "compliance.session_timeout",
                "[fab] session_lifetime_minutes",
                minutes,
                "Airflow UI sessions (FAB) end after inactivity of",
                f"set AIRFLOW__FAB__SESSION_LIFETIME_MINUTES={int(limit_min)}",
            )
        )
        out.append(
            result(
                "compliance.api_token_lifetime",
                "[api_auth] jwt_expiration_time",
                jwt_s / 60,
                "Airflow API tokens last",
                f"set AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME={int(limit_min * 60)}",
            )
        )
    else:
        r = result(
            "compliance.session_timeout",
            "[api_auth] jwt_expiration_time",
            jwt_s / 60,
            f"Airflow sessions ({manager.rsplit('.', 1)[-1] or 'default auth manager'}: the JWT) last",
            f"set AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME={int(limit_min * 60)}",
        )
        out.append(r)
    return out


# --------------------------------------------------------------------------------------------
# Vendor SLA review
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vendor:
    """A critical vendor: its SLA and the health checks (fnmatch on check names) measuring it."""

    key: str
    name: str
    sla_pct: float
    dag_id: str
    checks: Sequence[str]


@dataclass(frozen=True)
class HealthSample:
    """One stored result of the health history."""

    dag_id: str
    run_id: str
    check: str
    status: str
    at: dt.datetime


def health_history(
    store_dsn: str, dag_ids: Sequence[str], start: dt.datetime, end: dt.datetime
) -> list[HealthSample]:
    """Stored results of ``dag_ids`` in ``[start, end)`` from the results store."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(store_dsn, row_factory=dict_row) as conn:
        rows = conn.execute(
            _sql("health_history.sql"), {"dag_ids": list(dag_ids), "start": start, "end": end}
        ).fetchall()
    return [
        HealthSample(r["dag_id"], r["run_id"], r["check_name"], r["status"], as_utc(r["at"])) for r in rows
    ]


def vendor_availability(
    vendors: Sequence[Vendor], history: Sequence[HealthSample], *, start: dt.datetime, end: dt.datetime
) -> list[CheckResult]:
    """Each vendor's availability over ``[start, end)`` from its checks' history, against its SLA.

    A run of the health check is one sample: **down** when any of the vendor's checks was
    ``critical``, **up** when they were ok/warning, **unknown** when they could not run
    (error/skipped). Each sample stands for the time until the next one (at most twice the usual
    interval, so a gap in the history is not counted as up), and availability = up time /
    (up + down time). The result says how fine the sampling is: with daily samples one down day
    is ~1.1 % of a quarter.
    """
    out: list[CheckResult] = []
    for vendor in vendors:
        check = f"compliance.vendor_sla[{vendor.key}]"
        by_run: dict[str, list[HealthSample]] = {}
        for s in history:
            if s.dag_id == vendor.dag_id and any(fnmatch.fnmatchcase(s.check, p) for p in vendor.checks):
                by_run.setdefault(s.run_id, []).append(s)
        base = {
            "vendor": vendor.name,
            "sla_pct": vendor.sla_pct,
            "dag_id": vendor.dag_id,
            "checks": list(vendor.checks),
            "period": {"start": start.isoformat(), "end": end.isoformat()},
        }
        if not by_run:
            out.append(
                _finding(
                    check,
                    "vendors",
                    f"{vendor.name}: no {vendor.dag_id} results match {', '.join(vendor.checks)} this quarter; "
                    f"its {vendor.sla_pct:g} % SLA cannot be reviewed",
                    f"probe the vendor in {vendor.dag_id} and list its checks in tasks.compliance_audit.settings.vendors.{vendor.key}",
                    **base,
                )
            )
            continue
        samples = sorted(((min(x.at for x in xs), run, xs) for run, xs in by_run.items()), key=lambda t: t[0])
        times = [t for t, _, _ in samples]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        usual = statistics.median(gaps) if gaps else 86400.0
        up = down = unknown = 0.0
        outages: list[dict[str, Any]] = []
        for i, (at, run, xs) in enumerate(samples):
            nxt = times[i + 1] if i + 1 < len(times) else end
            weight = max(0.0, min((nxt - at).total_seconds(), 2 * usual))
            states = {x.status for x in xs}
            if "critical" in states:
                down += weight
                outages.append(
                    {
                        "run_id": run,
                        "at": at.isoformat(),
                        "checks": sorted(x.check for x in xs if x.status == "critical"),
                        "counted_hours": round(weight / 3600, 2),
                    }
                )
            elif states & {"ok", "warning"}:
                up += weight
            else:
                unknown += weight
        measured = up + down
        if measured <= 0:
            out.append(
                _finding(
                    check,
                    "vendors",
                    f"{vendor.name}: {len(samples)} samples, none could measure the vendor (all error/skipped)",
                    f"fix the {vendor.dag_id} checks {', '.join(vendor.checks)}",
                    **base,
                )
            )
            continue
        pct = 100.0 * up / measured
        resolution = 100.0 * min(usual, measured) / measured
        details = {
            **base,
            "availability_pct": round(pct, 4),
            "samples": len(samples),
            "up_hours": round(up / 3600, 2),
            "down_hours": round(down / 3600, 2),
            "unknown_hours": round(unknown / 3600, 2),
            "resolution_pct": round(resolution, 3),
            "outages": outages,
        }
        text = (
            f"{vendor.name}: {pct:.3f} % available this quarter ({len(samples)} {vendor.dag_id} runs, "
            f"{len(outages)} down) against its {vendor.sla_pct:g} % SLA"
        )
        ok = pct >= vendor.sla_pct
        if not ok:
            text += (
                " — Action: raise the breach with the vendor (service credits) and review the outages listed"
            )
        elif resolution > 100.0 - vendor.sla_pct:
            text += f" (one sample is {resolution:.2f} % of the period: the SLA is met, not resolved finer)"
        out.append(
            CheckResult(
                check=check,
                status=Status.OK if ok else Status.WARNING,
                summary=text,
                metric="availability_pct",
                observed=round(pct, 4),
                unit="%",
                thresholds={"warning": vendor.sla_pct},
                details=details,
                component="vendors",
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# Evidence pack
# --------------------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return as_utc(value).isoformat() if isinstance(value, dt.datetime) else None


def quarter_summary(
    store_dsn: str, start: dt.datetime, end: dt.datetime, *, max_findings: int
) -> dict[str, Any]:
    """The quarter's stored results: every run of every DAG with its counts by status, and every
    result that was not ok (up to ``max_findings``; the number left out is said)."""
    import psycopg
    from psycopg.rows import dict_row

    params = {"start": start, "end": end, "limit": max_findings + 1}
    with psycopg.connect(store_dsn, row_factory=dict_row) as conn:
        runs = conn.execute(_sql("quarter_runs.sql"), params).fetchall()
        findings = conn.execute(_sql("quarter_findings.sql"), params).fetchall()
    dags: dict[str, dict[str, Any]] = {}
    for r in runs:
        d = dags.setdefault(r["dag_id"], {"runs": [], "by_status": {}})
        counts = {k: int(r[k]) for k in ("ok", "skipped", "warning", "error", "critical") if r[k]}
        d["runs"].append(
            {
                "run_id": r["run_id"],
                "at": _iso(r["at"]),
                "recorded_at": _iso(r["recorded_at"]),
                "counts": counts,
            }
        )
        for k, n in counts.items():
            d["by_status"][k] = d["by_status"].get(k, 0) + n
    listed = [
        {
            "dag_id": f["dag_id"],
            "run_id": f["run_id"],
            "check": f["check_name"],
            "status": f["status"],
            "summary": f["summary"],
            "severity": f["severity"],
            "component": f["component"],
            "logical_date": _iso(f["logical_date"]),
            "recorded_at": _iso(f["recorded_at"]),
        }
        for f in findings[:max_findings]
    ]
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "dags": dags,
        "findings": listed,
        "findings_truncated": len(findings) > max_findings,
    }


def build_evidence_pack(
    *,
    dag_id: str,
    run_id: str,
    logical_date: dt.datetime,
    quarter: Quarter,
    generated_at: dt.datetime,
    results: Iterable[tuple[str, CheckResult]],
    stored: Mapping[str, Any] | None,
    stored_error: str | None = None,
) -> dict[str, Any]:
    """The evidence pack: the audit's own results (each with dag id, run id, task and time) and
    the quarter's stored results summary (:func:`quarter_summary`)."""
    stamp = {
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": _iso(logical_date),
        "collected_at": _iso(generated_at),
    }
    audit = [{**stamp, "task_id": task_id, **r.to_dict()} for task_id, r in results]
    return {
        "format": "sanvi-ops/evidence-pack/v1",
        "quarter": quarter.label,
        "generated_at": _iso(generated_at),
        "dag_id": dag_id,
        "run_id": run_id,
        "logical_date": _iso(logical_date),
        "audit_results": audit,
        "audit_counts": {s.value: sum(1 for x in audit if x["status"] == s.value) for s in Status},
        "quarter_results": stored,
        "quarter_results_error": stored_error,
    }


def evidence_key(prefix: str, quarter: Quarter) -> str:
    return f"{prefix}{quarter.label}/{EVIDENCE_NAME}"


def write_evidence_pack(
    s3: Any,
    pack: Mapping[str, Any],
    *,
    bucket: str,
    key: str,
    sse: str = "aws:kms",
    kms_key_id: str | None = None,
    check: str = "compliance.evidence_pack",
) -> CheckResult:
    """Write ``pack`` (JSON) to ``s3://bucket/key`` with server-side encryption, only into a
    bucket whose versioning is enabled; read it back by version and check its SHA-256.

    The result (``check``; the annual reviews write their reports with it too) records the
    object's version id and SHA-256 (``details``); a bucket without versioning, a failed write or
    a read-back that differs is an ``error``.
    """
    where = f"s3://{bucket}/{key}"
    body = json.dumps(pack, indent=1, sort_keys=True, default=str).encode()
    sha = hashlib.sha256(body).hexdigest()
    try:
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
        return _aws_error(check, "audit", s3, f"evidence bucket {bucket}", exc)
    if versioning != "Enabled":
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=(
                f"evidence pack NOT written: bucket {bucket} has versioning {versioning or 'never enabled'}, an "
                f"audit record must not be overwritable — Action: aws s3api put-bucket-versioning --bucket {bucket} "
                "--versioning-configuration Status=Enabled (tasks.compliance_audit.settings.evidence.bucket)"
            ),
            details={"bucket": bucket, "key": key, "versioning": versioning, "sha256": sha},
            component="audit",
        )
    extra: dict[str, Any] = {"ServerSideEncryption": sse}
    if sse == "aws:kms" and kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    try:
        put = s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha)).decode(),
            Metadata={"sha256": sha, "run-id": str(pack.get("run_id", ""))[:200]},
            **extra,
        )
        version = put.get("VersionId")
        back = s3.get_object(Bucket=bucket, Key=key, VersionId=version) if version else None
        read = back["Body"].read() if back else b""
    except Exception as exc:  # noqa: BLE001 — AWS errors become results; others re-raised
        return _aws_error(check, "audit", s3, f"evidence pack {where}", exc)
    details = {
        "bucket": bucket,
        "key": key,
        "version_id": version,
        "sha256": sha,
        "bytes": len(body),
        "sse": (back or {}).get("ServerSideEncryption"),
        "results": len(pack.get("audit_results", pack.get("results", []))),
        "quarter": pack.get("quarter"),
    }
    if not version or hashlib.sha256(read).hexdigest() != sha:
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"evidence pack {where}: written but the read-back (version {version}) differs or has no version",
            details=details,
            component="audit",
        )
    return CheckResult(
        check=check,
        status=Status.OK,
        summary=(
            f"evidence pack {where} version {version}: {details['results']} results, sha256 {sha[:16]}…, "
            f"{details['sse'] or sse} encrypted"
        ),
        metric="bytes",
        observed=float(len(body)),
        unit="B",
        details=details,
        component="audit",
    )
