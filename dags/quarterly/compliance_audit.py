"""
# Compliance Audit (quarterly, 3rd month, 2nd Wednesday, 11:00)

*The guide: "Review system for regulatory compliance" — Legal & Security ("Quarterly internal
compliance reviews", "Quarterly review of SLA performance").*

The guide's audit requirements as checks, then an evidence pack of every result.

| task | what | a finding (warning) when |
|---|---|---|
| `check_log_retention` | the CloudWatch Logs groups of each audit category (`tasks.compliance_audit.settings.log_groups`) against `audit_retention` | a group is missing, has no retention set, or keeps less than its category's years (system access 1 y = 365 d; data access and changes 3 y = 1095 d) |
| `check_backups` | the backup bucket's lifecycle rule (`backups.ensure_lifecycle`, never created here: Glacier after `database_backups.glacier_after_days`, expiry after `backups.database.retention_days` = 30) and default encryption; in `rds` mode the automated backups instead | no or another lifecycle rule (no rule: critical), encryption not SSE-KMS |
| `review_access` | IAM users and roles (access review) and active access keys (credential rotation) | a user or role unused for 90 days (`tasks.security_scan.settings.unused_credentials_days`), a key older than 90 days (`tasks.security_scan.settings.key_max_age_days`) |
| `check_session_timeout` | Airflow's own effective config: `[fab] session_lifetime_minutes` (FAB auth manager) and `[api_auth] jwt_expiration_time` | longer than the guide's 12 hours (`tasks.compliance_audit.settings.session_timeout_hours`) |
| `review_vendor_slas` | each vendor in `tasks.compliance_audit.settings.vendors`: availability this quarter from the stored `system_health_check` results of its checks | below its SLA (AWS 99.95 %, authentication provider 99.9 %), or no history to measure it |
| `check_data_classification` | every S3 bucket and RDS instance carries the tag `data_classification.tag_key` (`DataClassification`) with one of the guide's classes (Public, Internal, Confidential, Restricted); Confidential and Restricted ones: a customer-managed KMS key of their own (S3: not shared with another bucket; RDS: not `aws/rds`), no public access (all four Block Public Access settings; RDS not publicly accessible), access logging (S3 server access logging; RDS CloudWatch Logs exports) kept ≥ 1095 days (the log bucket's lifecycle; the RDS log groups' retention) | one finding per resource and rule: `classification.<rule>[s3:<bucket>]` / `[rds:<instance>]` (`tag`, `own_kms_key`, `no_public_access`, `access_logging`, `access_log_retention`) |
| `write_evidence_pack` | JSON of every result above (dag id, run id, task, timestamps) plus the quarter's stored results (every run of every DAG with counts, every non-ok result) to `s3://<evidence.bucket>/<prefix><YYYY-Qn>/evidence-pack.json`, SSE, only into a versioned bucket; read back | `compliance.evidence_pack` records the S3 version id and SHA-256; `error` when the bucket is not versioned or the write fails |

Then `record` stores the results and `notify` posts the report to Slack.

Then `sign_off` asks **Legal & Security** to sign the audit off (even when the evidence run is
red): they are mentioned in Slack with a link, and answer in the Airflow UI under **Required
actions** (Approve / Reject with a comment) within `signoffs.dags.compliance_audit.deadline`
(7 days). The answer is stored and posted in Slack. Rejected: the run turns red with the comment
as the reason. No answer by the deadline: a **critical** `signoff.sign_off` result (an unsigned
audit is a compliance gap) and an `[ESCALATION]` to the team lead.

## When it is red
- `compliance.evidence_pack` in `error`: the evidence was not kept. Enable versioning on the
  evidence bucket (the summary gives the command) or grant `s3:PutObject`, and rerun.
- `compliance.backup_lifecycle` critical: the backup bucket has no lifecycle rule, backups are
  never moved to Glacier nor expired. Run a full backup (it creates the rule) or add it.
- Any other `error`: a check could not run; its summary names the missing IAM action (e.g.
  `logs:DescribeLogGroups`, `iam:ListUsers`) or the store/config problem. The other checks ran.

## Acting on the report
Each warning ends with **Action:**. Fix what can be fixed before the quarter closes; Legal &
Security review the rest with the evidence pack's version id as the record.

Trigger form: `checks` picks which automated checks run (the evidence pack then records the others as `skipped`); the ones left out are
recorded as `skipped` (`<task>.not_selected`). Scheduled runs check everything.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import TriggerRule, get_current_context, task

from sanvi_ops.airflow_kit.frame import maintenance_dag
from sanvi_ops.airflow_kit.params import checks_param, when_selected
from sanvi_ops.airflow_kit.publish import publish
from sanvi_ops.airflow_kit.signoff import sign_off
from sanvi_ops.tasks.compliance_audit import airflow_tasks as compliance_tasks

CHECKS = (
    "check_log_retention",
    "check_backups",
    "review_access",
    "check_session_timeout",
    "review_vendor_slas",
    "check_data_classification",
)


@maintenance_dag(__file__, __doc__, params={"checks": checks_param(CHECKS)})
def compliance_audit() -> None:
    @task
    @when_selected
    def check_log_retention() -> list[dict[str, Any]]:
        """Audit log groups per category exist and keep their records long enough."""
        return compliance_tasks.log_retention()

    @task
    @when_selected
    def check_backups() -> list[dict[str, Any]]:
        """Backup lifecycle (30 days, Glacier) and encryption."""
        return compliance_tasks.backups(dict(get_current_context()))

    @task
    @when_selected
    def review_access() -> list[dict[str, Any]]:
        """IAM users and roles unused for 90 days; access keys older than 90 days."""
        return compliance_tasks.access(dict(get_current_context()))

    @task
    @when_selected
    def check_session_timeout() -> list[dict[str, Any]]:
        """Airflow's session and API token lifetime against the guide's 12 hours."""
        return compliance_tasks.session()

    @task
    @when_selected
    def review_vendor_slas() -> list[dict[str, Any]]:
        """Each critical vendor's measured availability this quarter against its SLA."""
        return compliance_tasks.vendors(dict(get_current_context()))

    @task
    @when_selected
    def check_data_classification() -> list[dict[str, Any]]:
        """Every bucket and RDS instance tagged with a data class and meeting its rules."""
        return compliance_tasks.classification()

    checks = [
        check_log_retention(),
        check_backups(),
        review_access(),
        check_session_timeout(),
        review_vendor_slas(),
        check_data_classification(),
    ]

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def write_evidence_pack(task_ids: list[str]) -> list[dict[str, Any]]:
        """Every result above plus the quarter's stored results, to the versioned evidence bucket."""
        return compliance_tasks.evidence_pack(task_ids, dict(get_current_context()))

    pack = write_evidence_pack([c.operator.task_id for c in checks])
    for c in checks:
        c >> pack
    reported = publish(*checks, pack)
    sign_off(
        reported,
        subject="Quarterly compliance audit: sign-off by Legal & Security",
        body="Review the audit results and the evidence pack (its S3 version id is in the "
        "`compliance.evidence_pack` result); approve when the findings are accepted or have owners, "
        "reject with the reason otherwise.",
    )


compliance_audit()
