"""
# Penetration Testing (quarterly, month 2, 3rd Tuesday, 11:00)

*The guide: "Conduct security penetration testing" — Security.*

The automated exposure checks that run before the human penetration test, so the testers start
from a fresh picture of what the public hosts expose. Settings: `tasks.penetration_testing.settings` in
`include/config/maintenance.yaml` (hosts, port list, timeouts, HSTS minimum).

| task | what | findings |
|---|---|---|
| `scan_open_ports` | TCP connect scan of `ports` (a bounded list) on each public host (default: the production and staging URLs' hosts), `concurrency` connects at once, `connect_timeout_seconds` each | open beyond `expected_open_ports` (80/443): SSH/RDP/database/admin/monitoring ports (22, 3389, 5432, 6379, 9090, …) **critical** (P2), others warning |
| `check_tls` | per https endpoint: protocol ≥ TLS 1.2 and the certificate (the Security Scan's check), the cipher a default client negotiates, and whether weak ciphers are accepted (NULL, EXPORT, RC4 **critical**; 3DES, CBC with SHA-1 on TLS 1.2 warning) | a family this machine's OpenSSL cannot offer is named as "not tested" in the summary line |
| `check_security_headers` | GET each frontend URL: Strict-Transport-Security with max-age ≥ `hsts_min_age_seconds` (1 year), Content-Security-Policy present, X-Frame-Options DENY/SAMEORIGIN or CSP `frame-ancestors`, X-Content-Type-Options nosniff | each missing one a warning |

`record` stores every result and `notify` posts the summary to Slack (the run turns red on a
critical finding).

Then `record_pentest_outcome` waits for the **Security** team to record the human test: they are
mentioned in Slack with a link and fill in a form in the Airflow UI under **Required actions**:
outcome (pass / fail / partial), tester, report URL, findings by severity, notes. The deadline is
`signoffs.dags.penetration_testing.deadline` (14 days, the time a test takes). The entry is
stored (table `signoffs`, and a `record_pentest_outcome.findings` result: fail or any critical
finding **critical**, partial or any high finding warning) and posted to Slack. No entry by the
deadline: a warning result (`on_timeout`) and an `[ESCALATION]` to the team lead.

## Acting on the report
1. Hand the report to the testers as the starting scope; an open admin or database port is fixed
   the same day (close it in the security group), not left for the test.
2. Weak ciphers / old protocols: switch the load balancer listener to an
   `ELBSecurityPolicy-TLS13-1-2-*` policy.
3. Missing headers: add them in the frontend's web server / CDN response-headers policy.
4. A critical/failed test outcome: fix the critical findings first, then re-test; the report URL
   is in the stored result.
5. Only scan hosts you own: the scan is a plain TCP connect to each listed port.

Trigger form: `checks` picks which automated checks run; the ones left out are
recorded as `skipped` (`<task>.not_selected`). Scheduled runs check everything.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.airflow_kit.signoff import sign_off
from sanvi_ops.tasks.penetration_testing import airflow_tasks as exposure_tasks

CHECKS = ("scan_open_ports", "check_tls", "check_security_headers")


@maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
def penetration_testing() -> None:
    @task
    @when_selected
    def scan_open_ports() -> list[dict[str, Any]]:
        """TCP connect scan of the configured ports on the public hosts."""
        return exposure_tasks.ports()

    @task
    @when_selected
    def check_tls() -> list[dict[str, Any]]:
        """TLS protocol, certificate, negotiated cipher and weak ciphers on each https endpoint."""
        return exposure_tasks.tls_ciphers()

    @task
    @when_selected
    def check_security_headers() -> list[dict[str, Any]]:
        """HSTS, CSP, X-Frame-Options and X-Content-Type-Options on each frontend URL."""
        return exposure_tasks.security_headers()

    reported = publish(scan_open_ports(), check_tls(), check_security_headers())
    sign_off(
        reported,
        task_id="record_pentest_outcome",
        subject="Penetration test: record the outcome and findings",
        body="Run the penetration test from the automated exposure picture below, then record its "
        "outcome here. Findings are counted by severity (CVSS: critical 9.0+, high 7.0-8.9, "
        "medium 4.0-6.9, low below 4).",
        form=exposure_tasks.pentest_form(),
        form_results=exposure_tasks.pentest_findings,
    )


penetration_testing()
