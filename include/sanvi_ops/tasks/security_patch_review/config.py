"""The Security Patch Review's settings (``tasks.security_patch_review.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from pydantic import Field

from sanvi_ops.core.config import (
    NonEmpty,
    _Model,
)


class SecurityPatchReviewConfig(_Model):
    """What the weekly Security Patch Review looks at (RDS/ElastiCache come from ``tasks.system_health_check.settings``)."""

    #: ECR repositories holding the service images; the newest pushed image of each is reviewed.
    ecr_repositories: list[NonEmpty] = Field(default_factory=list)
    #: Newest PostgreSQL minor release per major (``{16: 11}`` = 16.11). A major not listed is
    #: looked up in RDS (``describe_db_engine_versions``) when ``postgres_newest_from_aws``.
    postgres_newest_minor: dict[int, int] = Field(default_factory=dict)
    postgres_newest_from_aws: bool = True
