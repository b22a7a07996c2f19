"""Bodies of the Security Scan's tasks: config + connections in, result dicts out.

One task per area (EC2 security groups, S3, RDS, IAM, ElastiCache, TLS endpoints) so a missing
permission or a failing API is reported for that area alone and the others still run.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.aws_errors import aws_error_types
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def _client(cfg: MaintenanceConfig, service: str) -> Any:
    from sanvi_ops.airflow_kit.connections import aws_client

    return aws_client(cfg.connections.aws, service)


def security_groups() -> ResultDicts:
    from sanvi_ops.tasks.security_scan.security import check_security_groups

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        return check_security_groups(
            _client(cfg, "ec2"),
            allowed_ports=cfg.tasks.security_scan.settings.allowed_open_ports,
            check_default_groups=cfg.tasks.security_scan.settings.check_default_security_groups,
        )

    return guard("ec2", Status.ERROR, run)


def _strip_account_label(request: Any, **_: Any) -> None:
    """s3control puts the account id in front of the host name; a local endpoint given as an IP
    address (or ``localhost``) has no such names, so the label is dropped for those only."""
    request.url = re.sub(r"^(https?://)\d{12}\.((?:\d+\.){3}\d+|localhost)([:/])", r"\1\2\3", request.url)


def s3() -> ResultDicts:
    from sanvi_ops.tasks.security_scan.security import check_s3_account, check_s3_buckets

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        results: list[CheckResult] = []
        try:
            account = _client(cfg, "sts").get_caller_identity()["Account"]
        except aws_error_types() as exc:
            results.append(
                CheckResult(
                    check="s3.account_public_access_block",
                    status=Status.ERROR,
                    summary=f"[S3.1] could not read the account id (sts:GetCallerIdentity): {exc}",
                    details={"control": "S3.1", "missing_action": "sts:GetCallerIdentity"},
                    component="s3",
                )
            )
        else:
            s3control = _client(cfg, "s3control")
            s3control.meta.events.register("before-send.s3-control", _strip_account_label)
            results += check_s3_account(s3control, account)
        return results + check_s3_buckets(_client(cfg, "s3"))

    return guard("s3", Status.ERROR, run)


def rds() -> ResultDicts:
    from sanvi_ops.tasks.security_scan.security import check_rds

    return guard("rds", Status.ERROR, lambda cfg: check_rds(_client(cfg, "rds")))


def iam() -> ResultDicts:
    from sanvi_ops.tasks.security_scan.security import check_iam

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        sc = cfg.tasks.security_scan.settings
        return check_iam(
            _client(cfg, "iam"),
            key_max_age_days=sc.key_max_age_days,
            unused_days=sc.unused_credentials_days,
        )

    return guard("iam", Status.ERROR, run)


def admin_mfa() -> ResultDicts:
    """MFA for admin access: root, admin users with console access, Security Hub IAM.5/IAM.6."""
    from sanvi_ops.tasks.security_scan.mfa import check_admin_mfa, check_security_hub_mfa

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        return [*check_admin_mfa(_client(cfg, "iam")), *check_security_hub_mfa(_client(cfg, "securityhub"))]

    return guard("iam", Status.ERROR, run)


def elasticache() -> ResultDicts:
    from sanvi_ops.tasks.security_scan.security import check_elasticache

    return guard("elasticache", Status.ERROR, lambda cfg: check_elasticache(_client(cfg, "elasticache")))


def tls_targets(cfg: MaintenanceConfig) -> list[tuple[str, str, int]]:
    """``(name, host, port)`` per endpoint: ``tasks.security_scan.settings.tls_endpoints`` or the environments'
    https URLs (named by environment)."""
    if cfg.tasks.security_scan.settings.tls_endpoints:
        urls = [(urlsplit(u).hostname or u, u) for u in cfg.tasks.security_scan.settings.tls_endpoints]
    else:
        urls = [(key, env.url) for key, env in cfg.environments.items()]
    targets = []
    for name, url in urls:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            continue
        targets.append((name, parts.hostname, parts.port or 443))
    return targets


def tls_endpoints() -> ResultDicts:
    from sanvi_ops.tasks.security_scan.security import check_tls_endpoint

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        sc = cfg.tasks.security_scan.settings
        targets = tls_targets(cfg)
        if not targets:
            return [
                CheckResult(
                    check="tls.endpoints",
                    status=Status.SKIPPED,
                    summary="no https endpoint in environments or tasks.security_scan.settings.tls_endpoints",
                    component="tls",
                )
            ]
        results: list[CheckResult] = []
        for name, host, port in targets:
            results += check_tls_endpoint(
                name,
                host,
                port,
                ca_file=sc.tls_ca_file,
                warning_days=sc.cert_warning_days,
                critical_days=sc.cert_critical_days,
                timeout_s=sc.tls_timeout_seconds,
            )
        return results

    return guard("tls", Status.ERROR, run)
