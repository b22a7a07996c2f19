"""
# Security Scan (monthly, 2nd Tuesday, 11:00)

*The guide: "Run comprehensive security scan" — Security.*

Reads the AWS account's configuration (connection `aws_default`) and shakes hands with the public
TLS endpoints; every finding names the AWS Security Hub control it corresponds to
(`[S3.8] bucket X: public access block off — Action: …`, and `details.control`).

| task | what | control |
|---|---|---|
| `scan_security_groups` | ingress open to 0.0.0.0/0 or ::/0 on anything but `allowed_open_ports` (80/443): SSH/RDP/database ports or all traffic **critical**, other ports warning; a VPC's default group with any rule (`check_default_security_groups`) warning | EC2.19 / EC2.18, EC2.2 |
| `scan_s3` | account Block Public Access; per bucket Block Public Access, default encryption, a policy denying `aws:SecureTransport = false` | S3.1, S3.8, S3.4, S3.5 |
| `scan_rds` | instances publicly accessible (**critical**), storage not encrypted, automated backups off (**critical**); unencrypted snapshots | RDS.2, RDS.3, RDS.11, RDS.4 |
| `scan_iam` | console users without MFA; active access keys older than `key_max_age_days` (the guide's 90-day rotation); passwords/keys unused for `unused_credentials_days` | IAM.5, IAM.3, IAM.8 |
| `scan_admin_mfa` | MFA for all admin access: the root account (`iam:GetAccountSummary` `AccountMFAEnabled`) **critical** without; each IAM user with `AdministratorAccess` (attached or through a group) and a console password but no MFA device **critical**; when Security Hub is enabled, its failed active IAM.5/IAM.6 findings (IAM.6 critical, IAM.5 warning; not enabled: `skipped`, said so) | IAM.9/IAM.6, IAM.5 |
| `scan_elasticache` | encryption at rest and in transit | ElastiCache.4, ElastiCache.5 |
| `scan_tls_endpoints` | the environments' URLs (or `tls_endpoints`): negotiated protocol ≥ TLS 1.2 (**critical** below), TLS 1.0/1.1 refused, certificate verifies and matches the host (**critical**), expiry < 30 days warning, < 7 days or expired **critical** | ACM.1 for expiry |

Critical findings open a P2 incident (significant impact); `record` stores every result and
`notify` posts the summary to Slack. A permission the scan's role lacks (`AccessDenied`) is an
`error` result naming the missing IAM action; the other areas still run.

Started by hand (trigger form): Param `checks` picks the areas to scan (default all); an area
left out reports `<task>.not_selected` as skipped. See the README, "Starting a DAG by hand".

## Acting on the report
1. Each finding ends with `Action:`; the control id leads to the AWS remediation page
   (docs.aws.amazon.com/securityhub → controls reference).
2. Critical exposure (open SSH/RDP/database port, public database, expired certificate): fix
   the same day and record the incident's outcome.
3. Warnings: ticket them for the Security team's Monday patch review.
4. An `error`: grant the named action to the scan's IAM role (read-only: `SecurityAudit`
   managed policy covers all of them) or fix the connection.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.tasks.security_scan import airflow_tasks as security_tasks

#: The check tasks a manual run may choose from (the trigger form's `checks`).
CHECKS = (
    "scan_security_groups",
    "scan_s3",
    "scan_rds",
    "scan_iam",
    "scan_admin_mfa",
    "scan_elasticache",
    "scan_tls_endpoints",
)


@maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
def security_scan() -> None:
    @task
    @when_selected
    def scan_security_groups() -> list[dict[str, Any]]:
        """Security group ingress open to the internet beyond the allowed ports."""
        return security_tasks.security_groups()

    @task
    @when_selected
    def scan_s3() -> list[dict[str, Any]]:
        """S3 Block Public Access (account and buckets), default encryption, TLS-only policies."""
        return security_tasks.s3()

    @task
    @when_selected
    def scan_rds() -> list[dict[str, Any]]:
        """RDS public access, storage and snapshot encryption, automated backups."""
        return security_tasks.rds()

    @task
    @when_selected
    def scan_iam() -> list[dict[str, Any]]:
        """IAM users: MFA, access key age, unused credentials."""
        return security_tasks.iam()

    @task
    @when_selected
    def scan_admin_mfa() -> list[dict[str, Any]]:
        """MFA for all admin access: root account, admin users with console access, Security Hub."""
        return security_tasks.admin_mfa()

    @task
    @when_selected
    def scan_elasticache() -> list[dict[str, Any]]:
        """ElastiCache encryption at rest and in transit."""
        return security_tasks.elasticache()

    @task
    @when_selected
    def scan_tls_endpoints() -> list[dict[str, Any]]:
        """TLS handshake with each public endpoint: protocol, certificate, expiry."""
        return security_tasks.tls_endpoints()

    publish(
        scan_security_groups(),
        scan_s3(),
        scan_rds(),
        scan_iam(),
        scan_admin_mfa(),
        scan_elasticache(),
        scan_tls_endpoints(),
    )


security_scan()
