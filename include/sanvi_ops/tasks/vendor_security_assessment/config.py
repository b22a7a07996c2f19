"""The Vendor Security Assessment's settings (``tasks.vendor_security_assessment.settings``)."""

from __future__ import annotations

from pydantic import Field

from sanvi_ops.core.config import AnnualReviewConfig


class VendorSecurityAssessmentConfig(AnnualReviewConfig):
    """What the annual security assessment of the critical vendors gathers: each vendor's SLA
    figures from the quarterly SLA reviews (the Compliance Audit's ``compliance.vendor_sla[<key>]``
    results; the vendors are ``tasks.compliance_audit.settings.vendors``)."""

    #: Quarterly SLA reviews expected per vendor in the year.
    min_sla_reviews: int = Field(default=4, ge=0)
