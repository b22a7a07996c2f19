"""The Vendor Contract Review's settings (``tasks.vendor_contract_review.settings``)."""

from __future__ import annotations

from pydantic import Field

from sanvi_ops.core.config import AnnualReviewConfig


class VendorContractReviewConfig(AnnualReviewConfig):
    """What the annual contract and pricing review gathers: the year's quarterly cost reviews
    (Cost Optimization results) and each critical vendor's delivered SLA (for service credits)."""

    #: Quarterly cost reviews expected in the year.
    min_cost_reviews: int = Field(default=4, ge=0)
    #: Quarterly SLA reviews expected per vendor in the year.
    min_sla_reviews: int = Field(default=4, ge=0)
