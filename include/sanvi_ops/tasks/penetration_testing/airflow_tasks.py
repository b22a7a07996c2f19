"""Bodies of the Penetration Testing's automated exposure tasks: config in, result dicts out.

One task per area (open ports, TLS ciphers, security headers) so a failure in one is reported
for that area alone and the others still run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status


def frontend_urls(cfg: MaintenanceConfig) -> list[tuple[str, str]]:
    """``(name, url)`` per frontend: ``tasks.penetration_testing.settings.urls`` (named by host) or the URLs of
    the listed environments (named by environment). An unknown environment raises ValueError."""
    pt = cfg.tasks.penetration_testing.settings
    if pt.urls:
        return [(urlsplit(str(u)).hostname or str(u), str(u)) for u in pt.urls]
    unknown = [e for e in pt.environments if e not in cfg.environments]
    if unknown:
        raise ValueError(f"tasks.penetration_testing.settings.environments: unknown environment(s) {unknown}")
    return [(env, str(cfg.environments[env].url)) for env in pt.environments]


def scan_hosts(cfg: MaintenanceConfig) -> list[str]:
    """``tasks.penetration_testing.settings.hosts`` or the frontend URLs' host names (each once, in order)."""
    if cfg.tasks.penetration_testing.settings.hosts:
        return list(dict.fromkeys(cfg.tasks.penetration_testing.settings.hosts))
    return list(dict.fromkeys(h for _, u in frontend_urls(cfg) if (h := urlsplit(u).hostname)))


def tls_targets(cfg: MaintenanceConfig) -> list[tuple[str, str, int]]:
    """``(name, host, port)``: ``tasks.penetration_testing.settings.tls_endpoints`` or the https frontend URLs."""
    pt = cfg.tasks.penetration_testing.settings
    urls = (
        [(urlsplit(str(u)).hostname or str(u), str(u)) for u in pt.tls_endpoints]
        if pt.tls_endpoints
        else frontend_urls(cfg)
    )
    targets: dict[tuple[str, int], str] = {}
    for name, url in urls:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            targets.setdefault((parts.hostname, parts.port or 443), name)
    return [(name, host, port) for (host, port), name in targets.items()]


def _skipped(check: str, component: str, text: str) -> list[CheckResult]:
    return [CheckResult(check=check, status=Status.SKIPPED, summary=text, component=component)]


def ports() -> ResultDicts:
    from sanvi_ops.tasks.penetration_testing.exposure import scan_ports

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        pt = cfg.tasks.penetration_testing.settings
        hosts = scan_hosts(cfg)
        if not hosts:
            return _skipped(
                "ports", "ports", "no host to scan (tasks.penetration_testing.settings.hosts / urls)"
            )
        results: list[CheckResult] = []
        for host in hosts:
            results += scan_ports(
                host,
                pt.ports,
                expected=pt.expected_open_ports,
                timeout_s=pt.connect_timeout_seconds,
                concurrency=pt.concurrency,
            )
        return results

    return guard("ports", Status.ERROR, run)


def tls_ciphers() -> ResultDicts:
    from sanvi_ops.tasks.penetration_testing.exposure import check_tls_ciphers
    from sanvi_ops.tasks.security_scan.security import check_tls_endpoint

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        pt, sc = cfg.tasks.penetration_testing.settings, cfg.tasks.security_scan.settings
        targets = tls_targets(cfg)
        if not targets:
            return _skipped(
                "tls", "tls", "no https endpoint (tasks.penetration_testing.settings.tls_endpoints / urls)"
            )
        results: list[CheckResult] = []
        for name, host, port in targets:
            results += check_tls_endpoint(
                name,
                host,
                port,
                ca_file=sc.tls_ca_file,
                warning_days=sc.cert_warning_days,
                critical_days=sc.cert_critical_days,
                timeout_s=pt.timeout_seconds,
            )
            results += check_tls_ciphers(name, host, port, timeout_s=pt.timeout_seconds)
        return results

    return guard("tls", Status.ERROR, run)


def security_headers() -> ResultDicts:
    from sanvi_ops.tasks.penetration_testing.exposure import check_security_headers

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        pt = cfg.tasks.penetration_testing.settings
        urls = frontend_urls(cfg)
        if not urls:
            return _skipped("headers", "headers", "no frontend URL (tasks.penetration_testing.settings.urls)")
        verify: bool | str = cfg.tasks.security_scan.settings.tls_ca_file or True
        results: list[CheckResult] = []
        for name, url in urls:
            results += check_security_headers(
                name, url, hsts_min_age_s=pt.hsts_min_age_seconds, timeout_s=pt.timeout_seconds, verify=verify
            )
        return results

    return guard("headers", Status.ERROR, run)


# ------------------------------------------------------------------ the human test's record


def pentest_form() -> dict[str, Any]:
    """The form the Security team fills in after the test (typed, validated by Airflow)."""

    from airflow.sdk import Param

    def count(severity: str) -> Any:
        return Param(
            0,
            type="integer",
            minimum=0,
            title=f"{severity.capitalize()} findings",
            description=f"How many {severity} findings the test reported",
        )

    return {
        # No value until someone enters one: Airflow validates a task's Params when the task
        # starts, so a required field is typed "null or ..." and checked when the form comes back.
        "outcome": Param(
            None,
            type=["null", "string"],
            enum=[None, "pass", "fail", "partial"],
            title="Outcome",
            description="pass: no critical/high finding; fail: critical findings or the test failed; "
            "partial: not all of the scope was tested",
        ),
        "tester": Param(
            None, type=["null", "string"], title="Tester", description="Who ran the test (person or firm)"
        ),
        "report_url": Param(
            "",
            type="string",
            title="Report URL",
            description="Where the full report is kept (ticket, document store)",
        ),
        "findings_critical": count("critical"),
        "findings_high": count("high"),
        "findings_medium": count("medium"),
        "findings_low": count("low"),
        "notes": Param(
            "",
            type="string",
            title="Notes",
            description="Scope, exclusions, anything the next test should know",
        ),
    }


def pentest_findings(task_id: str, form: Mapping[str, Any]) -> list[CheckResult]:
    """The Security team's entry as a result (see :func:`sanvi_ops.core.signoffs.form_findings_result`)."""
    from sanvi_ops.core.signoffs import form_findings_result

    return [form_findings_result(task_id, form)]
