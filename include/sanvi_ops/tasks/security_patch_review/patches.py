"""The weekly Security Patch Review: what is waiting to be patched, and what a person should do.

Four sources, each turned into results that name the resource, what was found and the action:

* RDS: pending maintenance actions (``describe_pending_maintenance_actions``) and the engine
  version against the newest minor of its major (``describe_db_engine_versions`` →
  ``ValidUpgradeTarget`` without a major upgrade);
* ElastiCache: the engine version against the newest of its major
  (``describe_cache_engine_versions``) and service updates not yet applied
  (``describe_update_actions``);
* ECR: the scan findings (CRITICAL/HIGH) of the newest image in each service repository
  (``describe_images`` + ``describe_image_scan_findings``);
* the application's PostgreSQL server: ``server_version_num`` against the newest minor of its
  major (from config, else from RDS).

Every function takes ready clients and never raises for an AWS or database error: the
affected check becomes an ``error`` result saying which call failed and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sanvi_ops.core.aws_errors import aws_error_text, aws_error_types, denied_result, error_code, is_denied
from sanvi_ops.core.results import CheckResult, Status

COMPONENT_RDS = "rds"
COMPONENT_ELASTICACHE = "elasticache"
COMPONENT_ECR = "ecr"
COMPONENT_POSTGRES = "postgres"

#: Incident level of an image with CRITICAL vulnerabilities in production: moderate impact
#: (nothing is down), but it must be handled within the escalation's response time.
CRITICAL_IMAGE_SEVERITY = "P3"

#: ElastiCache update action states that still need someone to act.
OPEN_UPDATE_STATUSES = [
    "not-applied",
    "waiting-to-start",
    "in-progress",
    "stopping",
    "scheduling",
    "scheduled",
]


def version_key(version: str) -> tuple[int, ...]:
    """``"16.11"`` → ``(16, 11)``; non-numeric parts (``"7.0.x"``) stop the key."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits or digits != piece:
            break
        parts.append(int(digits))
    return tuple(parts)


def newest_same_major(current: str, candidates: Iterable[str]) -> str | None:
    """The highest of ``candidates`` sharing ``current``'s major (first component), or ``None``."""
    key = version_key(current)
    if not key:
        return None
    same = [c for c in candidates if version_key(c)[:1] == key[:1]]
    return max(same, key=version_key) if same else None


def _aws_error(check: str, component: str, call: str, exc: Exception) -> CheckResult:
    if is_denied(exc):
        return denied_result(check, exc, action=call, component=component, details={"call": call})
    return CheckResult(
        check=check,
        status=Status.ERROR,
        summary=f"{call} failed: {aws_error_text(exc)}",
        component=component,
        details={"call": call, "aws_error": type(exc).__name__},
    )


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return None if value is None else str(value)


# --------------------------------------------------------------------------------------------
# RDS
# --------------------------------------------------------------------------------------------


def review_rds(client: Any, instances: Iterable[str]) -> list[CheckResult]:
    """Pending maintenance and engine version of each RDS instance."""

    results: list[CheckResult] = []
    pending_by_arn: dict[str, list[dict[str, Any]]] | None = None
    pending_error: Exception | None = None
    try:
        pending_by_arn = {}
        for page in client.get_paginator("describe_pending_maintenance_actions").paginate():
            for item in page.get("PendingMaintenanceActions", []):
                pending_by_arn.setdefault(item["ResourceIdentifier"], []).extend(
                    item.get("PendingMaintenanceActionDetails", [])
                )
    except aws_error_types() as exc:
        pending_by_arn, pending_error = None, exc

    for name in instances:
        try:
            db = client.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        except aws_error_types() as exc:
            results.append(_aws_error(f"rds.patches[{name}]", COMPONENT_RDS, "rds:DescribeDBInstances", exc))
            continue
        arn = db.get("DBInstanceArn", name)
        check = f"rds.pending_maintenance[{name}]"
        if pending_by_arn is None:
            assert pending_error is not None
            results.append(
                _aws_error(check, COMPONENT_RDS, "rds:DescribePendingMaintenanceActions", pending_error)
            )
        else:
            results.append(_rds_pending_result(name, arn, pending_by_arn.get(arn, [])))
        results.append(_rds_engine_result(client, name, db))
    return results


def _rds_pending_result(name: str, arn: str, actions: list[dict[str, Any]]) -> CheckResult:
    check = f"rds.pending_maintenance[{name}]"
    if not actions:
        return CheckResult(
            check=check,
            status=Status.OK,
            summary=f"RDS {name}: no pending maintenance",
            metric="pending_actions",
            observed=0,
            unit="count",
            component=COMPONENT_RDS,
        )
    items = [
        {
            "action": a.get("Action", "?"),
            "description": a.get("Description", ""),
            "auto_applied_after": _iso(a.get("AutoAppliedAfterDate")),
            "forced_apply_date": _iso(a.get("ForcedApplyDate")),
            "current_apply_date": _iso(a.get("CurrentApplyDate")),
            "opt_in_status": a.get("OptInStatus"),
            "next_step": (
                f"aws rds apply-pending-maintenance-action --resource-identifier {arn} "
                f"--apply-action {a.get('Action', '?')} --opt-in-type next-maintenance"
            ),
        }
        for a in actions
    ]
    first = items[0]
    forced = [i["forced_apply_date"] for i in items if i["forced_apply_date"]]
    when = f"; AWS applies it by force on {min(forced)[:10]}" if forced else ""
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=(
            f"RDS {name}: {len(items)} pending maintenance action(s) ({first['action']}: "
            f"{first['description'] or 'no description'}){when}. Action: opt in for the next maintenance "
            "window (or apply it in the production deployment window)"
        ),
        metric="pending_actions",
        observed=len(items),
        unit="count",
        component=COMPONENT_RDS,
        details={"resource": arn, "actions": items, "action": first["next_step"]},
    )


def _rds_engine_result(client: Any, name: str, db: Mapping[str, Any]) -> CheckResult:
    check = f"rds.engine_version[{name}]"
    engine, current = str(db.get("Engine", "")), str(db.get("EngineVersion", ""))
    try:
        versions = client.describe_db_engine_versions(Engine=engine, EngineVersion=current)[
            "DBEngineVersions"
        ]
    except aws_error_types() as exc:
        return _aws_error(check, COMPONENT_RDS, "rds:DescribeDBEngineVersions", exc)
    targets = [
        t["EngineVersion"]
        for v in versions
        for t in v.get("ValidUpgradeTarget", [])
        if not t.get("IsMajorVersionUpgrade") and t.get("EngineVersion")
    ]
    newest = newest_same_major(current, [current, *targets]) or current
    return _version_result(
        check,
        COMPONENT_RDS,
        f"RDS {name} ({engine})",
        current,
        newest,
        action=(
            f"aws rds modify-db-instance --db-instance-identifier {name} --engine-version {newest} "
            "--no-apply-immediately (applies in the maintenance window; test on staging first)"
        ),
        extra={"auto_minor_version_upgrade": db.get("AutoMinorVersionUpgrade")},
    )


def _version_result(
    check: str,
    component: str,
    what: str,
    current: str,
    newest: str,
    *,
    action: str,
    extra: Mapping[str, Any] | None = None,
) -> CheckResult:
    details: dict[str, Any] = {"current": current, "newest": newest, **(extra or {})}
    if version_key(newest) <= version_key(current):
        return CheckResult(
            check=check,
            status=Status.OK,
            summary=f"{what} {current} is the newest minor version of its major",
            component=component,
            details=details,
        )
    details["action"] = action
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=f"{what} runs {current}; {newest} is available. Action: {action}",
        component=component,
        details=details,
    )


# --------------------------------------------------------------------------------------------
# ElastiCache
# --------------------------------------------------------------------------------------------


def review_elasticache(client: Any, clusters: Iterable[str]) -> list[CheckResult]:
    """Engine version and open service updates of each ElastiCache cluster."""

    results: list[CheckResult] = []
    versions_cache: dict[str, list[str] | Exception] = {}
    for name in clusters:
        try:
            cluster = client.describe_cache_clusters(CacheClusterId=name)["CacheClusters"][0]
        except aws_error_types() as exc:
            results.append(
                _aws_error(
                    f"elasticache.patches[{name}]",
                    COMPONENT_ELASTICACHE,
                    "elasticache:DescribeCacheClusters",
                    exc,
                )
            )
            continue
        engine, current = str(cluster.get("Engine", "")), str(cluster.get("EngineVersion", ""))
        if engine not in versions_cache:
            try:
                found: list[str] = []
                paginator = client.get_paginator("describe_cache_engine_versions")
                for page in paginator.paginate(Engine=engine):
                    found.extend(v["EngineVersion"] for v in page.get("CacheEngineVersions", []))
                versions_cache[engine] = found
            except aws_error_types() as exc:
                versions_cache[engine] = exc
        offered = versions_cache[engine]
        check = f"elasticache.engine_version[{name}]"
        if isinstance(offered, Exception):
            results.append(
                _aws_error(check, COMPONENT_ELASTICACHE, "elasticache:DescribeCacheEngineVersions", offered)
            )
        else:
            newest = newest_same_major(current, [current, *offered]) or current
            results.append(
                _version_result(
                    check,
                    COMPONENT_ELASTICACHE,
                    f"ElastiCache {name} ({engine})",
                    current,
                    newest,
                    action=(
                        f"aws elasticache modify-cache-cluster --cache-cluster-id {name} --engine-version {newest} "
                        "(in the maintenance window; test on staging first)"
                    ),
                )
            )
        results.append(_elasticache_updates(client, name))
    return results


def _elasticache_updates(client: Any, name: str) -> CheckResult:
    check = f"elasticache.service_updates[{name}]"
    try:
        actions: list[dict[str, Any]] = []
        paginator = client.get_paginator("describe_update_actions")
        for page in paginator.paginate(CacheClusterIds=[name], UpdateActionStatus=OPEN_UPDATE_STATUSES):
            actions.extend(page.get("UpdateActions", []))
    except aws_error_types() as exc:
        return _aws_error(check, COMPONENT_ELASTICACHE, "elasticache:DescribeUpdateActions", exc)
    if not actions:
        return CheckResult(
            check=check,
            status=Status.OK,
            summary=f"ElastiCache {name}: no service update waiting",
            metric="open_service_updates",
            observed=0,
            unit="count",
            component=COMPONENT_ELASTICACHE,
        )
    items = [
        {
            "service_update": a.get("ServiceUpdateName", "?"),
            "severity": a.get("ServiceUpdateSeverity"),
            "type": a.get("ServiceUpdateType"),
            "status": a.get("UpdateActionStatus"),
            "recommended_apply_by": _iso(a.get("ServiceUpdateRecommendedApplyByDate")),
            "sla_met": a.get("SlaMet"),
        }
        for a in actions
    ]
    names = " ".join(sorted({str(i["service_update"]) for i in items}))
    action = (
        f"aws elasticache batch-apply-update-action --service-update-name <name> --cache-cluster-ids {name} "
        f"(for: {names}), in the maintenance window"
    )
    ranks = {"low": 0, "medium": 1, "important": 2, "critical": 3}
    most = max(items, key=lambda i: ranks.get(str(i["severity"]), -1))
    return CheckResult(
        check=check,
        status=Status.WARNING,
        summary=(
            f"ElastiCache {name}: {len(items)} service update(s) not applied "
            f"(most severe: {most['service_update']}, {most['severity'] or 'unknown'} severity, "
            f"apply by {(most['recommended_apply_by'] or 'n/a')[:10]}). Action: {action}"
        ),
        metric="open_service_updates",
        observed=len(items),
        unit="count",
        component=COMPONENT_ELASTICACHE,
        details={"updates": items, "action": action},
    )


# --------------------------------------------------------------------------------------------
# ECR
# --------------------------------------------------------------------------------------------


def review_ecr(client: Any, repositories: Iterable[str], *, max_listed: int = 10) -> list[CheckResult]:
    """CRITICAL/HIGH scan findings of the newest image in each repository."""
    return [_review_repository(client, repo, max_listed) for repo in repositories]


def _review_repository(client: Any, repo: str, max_listed: int) -> CheckResult:
    check = f"ecr.image_findings[{repo}]"
    try:
        images: list[dict[str, Any]] = []
        for page in client.get_paginator("describe_images").paginate(repositoryName=repo):
            images.extend(page.get("imageDetails", []))
    except aws_error_types() as exc:
        return _aws_error(check, COMPONENT_ECR, "ecr:DescribeImages", exc)
    if not images:
        return CheckResult(
            check=check,
            status=Status.SKIPPED,
            summary=f"ECR {repo}: no image pushed, nothing to review",
            component=COMPONENT_ECR,
        )
    newest = max(images, key=lambda i: i.get("imagePushedAt") or datetime.min.replace(tzinfo=UTC))
    digest = newest["imageDigest"]
    tags = newest.get("imageTags") or []
    label = f"{repo}:{tags[0]}" if tags else f"{repo}@{digest[:19]}"
    rescan = f"aws ecr start-image-scan --repository-name {repo} --image-id imageDigest={digest}"
    try:
        scan = client.describe_image_scan_findings(repositoryName=repo, imageId={"imageDigest": digest})
    except aws_error_types() as exc:
        if error_code(exc) == "ScanNotFoundException":
            return CheckResult(
                check=check,
                status=Status.WARNING,
                summary=(
                    f"ECR {label}: the image was never scanned. Action: {rescan}, and turn on scan on push "
                    "for the repository"
                ),
                component=COMPONENT_ECR,
                details={"image": label, "digest": digest, "action": rescan},
            )
        return _aws_error(check, COMPONENT_ECR, "ecr:DescribeImageScanFindings", exc)

    status_info = scan.get("imageScanStatus", {})
    scan_status = status_info.get("status", "UNKNOWN")
    if scan_status != "COMPLETE":
        bad = scan_status in ("FAILED", "UNSUPPORTED_IMAGE", "FINDINGS_UNAVAILABLE")
        return CheckResult(
            check=check,
            status=Status.WARNING if bad else Status.SKIPPED,
            summary=(
                f"ECR {label}: scan {scan_status} ({status_info.get('description', '')})"
                + (f". Action: {rescan}" if bad else "; reviewed next week")
            ),
            component=COMPONENT_ECR,
            details={"image": label, "digest": digest, "scan_status": scan_status},
        )
    findings = scan.get("imageScanFindings", {})
    counts = {k.upper(): int(v) for k, v in (findings.get("findingSeverityCounts") or {}).items()}
    critical, high = counts.get("CRITICAL", 0), counts.get("HIGH", 0)
    listed = _top_findings(findings, max_listed)
    details: dict[str, Any] = {
        "image": label,
        "digest": digest,
        "severity_counts": counts,
        "findings": listed,
        "scan_completed_at": _iso(findings.get("imageScanCompletedAt")),
    }
    if critical == 0 and high == 0:
        return CheckResult(
            check=check,
            status=Status.OK,
            summary=f"ECR {label}: no CRITICAL or HIGH findings",
            metric="critical_high_findings",
            observed=0,
            unit="count",
            component=COMPONENT_ECR,
            details=details,
        )
    packages = sorted({f["package"] for f in listed if f.get("package")})
    action = (
        f"rebuild {repo} on a patched base image"
        + (f" and upgrade {', '.join(packages)}" if packages else "")
        + ", push, redeploy and re-scan"
    )
    details["action"] = action
    names = ", ".join(f["name"] for f in listed[:3])
    return CheckResult(
        check=check,
        status=Status.CRITICAL if critical else Status.WARNING,
        summary=f"ECR {label}: {critical} CRITICAL, {high} HIGH finding(s) ({names}). Action: {action}",
        metric="critical_high_findings",
        observed=critical + high,
        unit="count",
        component=COMPONENT_ECR,
        details=details,
        severity=CRITICAL_IMAGE_SEVERITY if critical else None,
    )


def _top_findings(findings: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """CRITICAL then HIGH findings (basic and enhanced scanning shapes), at most ``limit``."""
    rows: list[dict[str, Any]] = []
    for f in findings.get("findings") or []:
        attrs = {a.get("key"): a.get("value") for a in f.get("attributes") or []}
        rows.append(
            {
                "name": f.get("name", "?"),
                "severity": str(f.get("severity", "")).upper(),
                "package": attrs.get("package_name"),
                "version": attrs.get("package_version"),
                "uri": f.get("uri"),
            }
        )
    for f in findings.get("enhancedFindings") or []:
        vuln = f.get("packageVulnerabilityDetails") or {}
        pkgs = vuln.get("vulnerablePackages") or [{}]
        rows.append(
            {
                "name": vuln.get("vulnerabilityId") or f.get("title", "?"),
                "severity": str(f.get("severity", "")).upper(),
                "package": pkgs[0].get("name"),
                "version": pkgs[0].get("version"),
                "fixed_in": pkgs[0].get("fixedInVersion"),
                "uri": vuln.get("sourceUrl"),
            }
        )
    order = {"CRITICAL": 0, "HIGH": 1}
    rows = [r for r in rows if r["severity"] in order]
    rows.sort(key=lambda r: (order[r["severity"]], r["name"]))
    return rows[:limit]


# --------------------------------------------------------------------------------------------
# PostgreSQL server
# --------------------------------------------------------------------------------------------


def server_version(version_num: int) -> tuple[int, int]:
    """``server_version_num`` → (major, minor): ``160003`` → (16, 3) (PostgreSQL ≥ 10)."""
    return version_num // 10000, version_num % 10000


def newest_postgres_minor_from_rds(client: Any, major: int) -> int | None:
    """The newest ``postgres`` minor of ``major`` that RDS offers, or ``None``."""
    newest: int | None = None
    for page in client.get_paginator("describe_db_engine_versions").paginate(Engine="postgres"):
        for v in page.get("DBEngineVersions", []):
            key = version_key(str(v.get("EngineVersion", "")))
            if len(key) >= 2 and key[0] == major and (newest is None or key[1] > newest):
                newest = key[1]
    return newest


def review_postgres_server(
    dsn: str,
    newest_minor: Mapping[int, int],
    *,
    rds_lookup: Callable[[int], int | None] | None = None,
    timeout_s: float = 10,
) -> CheckResult:
    """The application database server's minor version against the newest of its major.

    :param newest_minor: ``{major: minor}`` from config, consulted first.
    :param rds_lookup: asked for a major that config does not list (e.g.
        :func:`newest_postgres_minor_from_rds` bound to an RDS client); ``None`` = don't ask.
    """
    import psycopg

    check = "postgres.server_version"
    try:
        with psycopg.connect(dsn, connect_timeout=max(1, int(timeout_s))) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
    except psycopg.Error as exc:
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"cannot read the PostgreSQL server version: {type(exc).__name__}: {str(exc).strip()[:300]}",
            component=COMPONENT_POSTGRES,
        )
    assert row is not None
    major, minor = server_version(int(row[0]))
    source = "config"
    newest = newest_minor.get(major)
    if newest is None and rds_lookup is not None:
        source = "rds"
        try:
            newest = rds_lookup(major)
        except aws_error_types() as exc:  # the lookup's AWS failure becomes the result's reason
            return CheckResult(
                check=check,
                status=Status.ERROR,
                summary=(
                    f"PostgreSQL {major}.{minor}: the newest minor of {major} is not in config and the RDS "
                    f"lookup failed (rds:DescribeDBEngineVersions: {aws_error_text(exc)})"
                ),
                component=COMPONENT_POSTGRES,
            )
    if newest is None:
        return CheckResult(
            check=check,
            status=Status.SKIPPED,
            summary=(
                f"PostgreSQL {major}.{minor}: newest minor of {major} unknown; add it to "
                "tasks.security_patch_review.settings.postgres_newest_minor"
            ),
            component=COMPONENT_POSTGRES,
            details={
                "current": f"{major}.{minor}",
                "config_key": "tasks.security_patch_review.settings.postgres_newest_minor",
            },
        )
    result = _version_result(
        check,
        COMPONENT_POSTGRES,
        "PostgreSQL server",
        f"{major}.{minor}",
        f"{major}.{max(newest, minor)}",
        action=(
            f"upgrade the server packages to {major}.{newest} and restart in the maintenance window "
            "(minor releases need no dump/restore; read the release notes for post-upgrade steps)"
        ),
        extra={"source": source},
    )
    return result
