"""The External Security Assessment's settings (``tasks.external_security_assessment.settings``)."""

from __future__ import annotations

from pydantic import Field

from sanvi_ops.core.config import AnnualReviewConfig


class ExternalSecurityAssessmentConfig(AnnualReviewConfig):
    """What the annual external security assessment gathers for the assessors: the year's
    penetration-test forms (the quarterly Penetration Testing's ``record_pentest_outcome``) and the
    monthly Security Scans' findings."""

    #: Penetration tests with a recorded outcome expected in the year (the guide: quarterly).
    min_pentests: int = Field(default=4, ge=0)
    #: Security Scan runs expected in the year (the guide: monthly).
    min_security_scans: int = Field(default=12, ge=0)
