"""The Dependency Updates' settings (``tasks.dependency_updates.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from sanvi_ops.core.config import (
    HttpUrl,
    NonEmpty,
    _Model,
)


def _check_absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


class DependencyUpdatesConfig(_Model):
    """Monthly Dependency Updates: pinned requirements against a package index (and advisories).

    ``index_api: simple`` reads a PEP 503/691 simple index at ``index_url``
    (``https://pypi.org/simple/``); ``json`` the PyPI JSON API at ``index_url``
    (``https://pypi.org/pypi``). ``advisory_url``: an OSV-compatible API root
    (``https://api.osv.dev``), none = no vulnerability check. ``app_requirements``: absolute
    paths of the managed application's requirement files on the worker; ``project_requirements``:
    this project's own, relative to the repository root.
    """

    index_url: HttpUrl = "https://pypi.org/simple/"
    index_api: Literal["simple", "json"] = "simple"
    advisory_url: HttpUrl | None = None
    app_requirements: list[Annotated[str, AfterValidator(_check_absolute)]] = Field(default_factory=list)
    project_requirements: list[NonEmpty] = Field(
        default_factory=lambda: ["requirements.txt", "requirements-dev.txt"]
    )
    timeout_seconds: float = Field(default=10, gt=0)
    concurrency: int = Field(default=8, ge=1, le=32)
