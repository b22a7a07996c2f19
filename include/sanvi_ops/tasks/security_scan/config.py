"""The Security Scan's settings (``tasks.security_scan.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from sanvi_ops.core.config import (
    HttpUrl,
    _Model,
)


class SecurityScanConfig(_Model):
    """What the monthly Security Scan (``sanvi_ops.tasks.security_scan.security``) holds the estate to.

    TLS endpoints are the environments' URLs (``environments.*.url``) unless ``tls_endpoints``
    lists others; ``tls_ca_file`` is a CA bundle used instead of the system's (a private CA).
    """

    #: Ports that may be open to 0.0.0.0/0 or ::/0.
    allowed_open_ports: list[Annotated[int, Field(ge=0, le=65535)]] = Field(default_factory=lambda: [80, 443])
    #: Report a VPC's default security group that has rules (Security Hub EC2.2).
    check_default_security_groups: bool = True
    #: The guide's credential rotation ("Regular credential rotation (90 days)").
    key_max_age_days: int = Field(default=90, gt=0)
    unused_credentials_days: int = Field(default=90, gt=0)
    cert_warning_days: int = Field(default=30, gt=0)
    cert_critical_days: int = Field(default=7, ge=0)
    tls_endpoints: list[HttpUrl] = Field(default_factory=list)
    tls_ca_file: str | None = None
    tls_timeout_seconds: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _cert_days(self) -> SecurityScanConfig:
        if self.cert_critical_days >= self.cert_warning_days:
            raise ValueError(
                f"cert_critical_days ({self.cert_critical_days}) must be below cert_warning_days "
                f"({self.cert_warning_days})"
            )
        return self
