"""The Compliance Audit's settings (``tasks.compliance_audit.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sanvi_ops.core.config import (
    NonEmpty,
    _Model,
)

AuditCategoryName = Literal["system_access", "data_access", "changes"]


class VendorSpec(_Model):
    """A critical vendor of the guide's "Vendor Management": its SLA and the health checks whose
    history measures it (fnmatch patterns on check names of ``dag_id``'s stored results)."""

    name: NonEmpty
    sla_pct: float = Field(gt=0, le=100)
    dag_id: NonEmpty = "system_health_check"
    checks: list[NonEmpty] = Field(default_factory=list)


def _default_vendors() -> dict[str, VendorSpec]:
    return {
        "aws": VendorSpec(name="AWS", sla_pct=99.95, checks=["s3.*", "rds.*", "elasticache.*"]),
        "auth_provider": VendorSpec(name="Authentication provider", sla_pct=99.9, checks=["http.*auth*"]),
    }


class EvidencePackConfig(_Model):
    """Where the Compliance Audit writes its evidence pack: a versioned bucket (required), one
    object per quarter (``<prefix><YYYY-Qn>/evidence-pack.json``; a rerun adds a version)."""

    bucket: NonEmpty = "sanvi-machinery-audit"
    prefix: NonEmpty = "compliance-audit/"
    sse: Literal["aws:kms", "AES256"] = "aws:kms"
    #: KMS key (id, ARN or alias) for ``sse: aws:kms``; ``null`` = the account's S3 key.
    kms_key_id: str | None = None

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value


def _default_audit_log_groups() -> dict[AuditCategoryName, list[str]]:
    return {
        "system_access": ["/sanvi/production/audit/system-access"],
        "data_access": ["/sanvi/production/audit/data-access"],
        "changes": ["/sanvi/production/audit/changes"],
    }


class ComplianceAuditConfig(_Model):
    """What the quarterly Compliance Audit (``sanvi_ops.tasks.compliance_audit.compliance``) holds the estate to.

    Retention per category is ``audit_retention``; credential ages ``null`` = the Security Scan's
    (``tasks.security_scan.settings.key_max_age_days`` / ``unused_credentials_days``, the guide's 90 days).
    """

    #: CloudWatch Logs groups holding each audit category's records.
    log_groups: dict[AuditCategoryName, list[NonEmpty]] = Field(default_factory=_default_audit_log_groups)
    key_max_age_days: int | None = Field(default=None, gt=0)
    unused_days: int | None = Field(default=None, gt=0)
    #: The guide: "Session timeout after 12 hours of inactivity" (Airflow's own UI and API).
    session_timeout_hours: float = Field(default=12, gt=0)
    vendors: dict[NonEmpty, VendorSpec] = Field(default_factory=_default_vendors)
    evidence: EvidencePackConfig = Field(default_factory=EvidencePackConfig)
    #: Non-ok results of the quarter listed one by one in the evidence pack (the rest are counted).
    evidence_max_findings: int = Field(default=5000, gt=0)
    #: The guide's data classes and what each requires (the audit's ``check_data_classification``).
    data_classification: DataClassificationConfig = Field(default_factory=lambda: DataClassificationConfig())


class ClassRules(_Model):
    """What a data class requires of a resource holding it (``data_classification.classes.<class>``)."""

    #: S3: default encryption SSE-KMS with a customer-managed key no other bucket uses; RDS:
    #: storage encrypted with a customer-managed key (not the default ``aws/rds``).
    own_kms_key: bool = False
    #: S3: all four Block Public Access settings on; RDS: not publicly accessible.
    no_public_access: bool = False
    #: S3: server access logging on; RDS: CloudWatch Logs exports enabled.
    access_logging: bool = False
    #: Days the data-access logs are kept at least (the access-log bucket's lifecycle expiration,
    #: the RDS log groups' retention); ``null`` = no requirement.
    access_log_retention_days: int | None = Field(default=None, gt=0)


def _default_classes() -> dict[str, ClassRules]:
    strict = ClassRules(
        own_kms_key=True, no_public_access=True, access_logging=True, access_log_retention_days=1095
    )
    return {"public": ClassRules(), "internal": ClassRules(), "confidential": strict, "restricted": strict}


class DataClassificationConfig(_Model):
    """The guide's "Data Classification" (Public / Internal / Confidential / Restricted): every S3
    bucket and RDS instance carries the tag ``tag_key`` with one of ``classes`` (matched without
    regard to case), and meets that class's rules. Checked by the Compliance Audit."""

    tag_key: NonEmpty = "DataClassification"
    classes: dict[NonEmpty, ClassRules] = Field(default_factory=_default_classes, min_length=1)
    #: Buckets / RDS instances to check; empty = every one the account lists.
    s3_buckets: list[NonEmpty] = Field(default_factory=list)
    rds_instances: list[NonEmpty] = Field(default_factory=list)

    @field_validator("classes")
    @classmethod
    def _lower_case_names(cls, value: dict[str, ClassRules]) -> dict[str, ClassRules]:
        return {k.lower(): v for k, v in value.items()}
