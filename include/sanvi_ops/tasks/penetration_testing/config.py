"""The Penetration Testing's settings (``tasks.penetration_testing.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sanvi_ops.core.config import (
    HttpUrl,
    NonEmpty,
    _Model,
)

# fmt: off
#: The Penetration Testing's default scan list: web, remote administration, databases, caches,
#: container/orchestration and monitoring consoles.
_PENTEST_PORTS = (
    21, 22, 23, 25, 80, 443, 445, 1433, 1521, 2375, 2376, 3000, 3306, 3389, 5432, 5601,
    5900, 6379, 6443, 8000, 8080, 8443, 8793, 9090, 9093, 9100, 9200, 10250, 11211, 15672, 27017,
)
# fmt: on


class PenetrationTestingConfig(_Model):
    """The quarterly Penetration Testing's automated exposure checks (``sanvi_ops.tasks.penetration_testing.exposure``).

    ``urls`` (frontend URLs for the header check) default to the URLs of ``environments`` (the
    production and staging entries); ``hosts`` (port scan) default to those URLs' host names;
    ``tls_endpoints`` (cipher check) default to the https ones among ``urls``.
    """

    environments: list[NonEmpty] = Field(default_factory=lambda: ["production", "staging"])
    urls: list[HttpUrl] = Field(default_factory=list)
    hosts: list[NonEmpty] = Field(default_factory=list)
    tls_endpoints: list[HttpUrl] = Field(default_factory=list)
    #: TCP ports to try on each host (a bounded list, not a full sweep).
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: list(_PENTEST_PORTS), min_length=1, max_length=1024
    )
    #: Open without a finding.
    expected_open_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [80, 443]
    )
    connect_timeout_seconds: float = Field(default=2, gt=0, le=30)
    concurrency: int = Field(default=32, ge=1, le=256)
    #: The minimum HSTS max-age (one year).
    hsts_min_age_seconds: int = Field(default=31_536_000, ge=0)
    timeout_seconds: float = Field(default=10, gt=0)
