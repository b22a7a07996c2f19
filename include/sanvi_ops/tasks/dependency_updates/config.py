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


def _check_relative(value: str) -> str:
    parts = value.replace("\\", "/").split("/")
    if value.startswith("/") or ".." in parts:
        raise ValueError(f"{value!r} must be a path inside the repository (relative, no '..')")
    return value.strip("/") or "."


RepoPath = Annotated[str, AfterValidator(_check_relative)]


class AppRepositoryConfig(_Model):
    """The managed application's git repository: what the monthly run reads and updates.

    ``url``: what ``git clone`` takes (``https://github.com/org/app.git``, a path to a bare
    repository); never credentials in it: an HTTPS push uses the pull-request connection's token.
    """

    url: NonEmpty
    branch: NonEmpty = "main"
    npm_projects: list[RepoPath] = Field(default_factory=list)
    dockerfiles: list[RepoPath] = Field(default_factory=list)
    requirements: list[RepoPath] = Field(default_factory=list)


class PullRequestConfig(_Model):
    """Where the update's pull requests go (GitHub REST API; GitHub Enterprise compatible).

    ``connection_id``: an HTTP connection whose host is the API base URL (``https://api.github.com``
    or ``https://github.example.com/api/v3``) and whose password is the token (``contents:write``,
    ``pull_requests:write``). ``repository``: ``owner/name``. Missing either: the branch is still
    pushed and the run says "PR step not configured".
    """

    connection_id: NonEmpty = "github_default"
    repository: str | None = Field(default=None, pattern=r"^[\w.-]+/[\w.-]+$")
    branch_prefix: NonEmpty = "sanvi-ops/deps"


class DependencyUpdatesConfig(_Model):
    """Monthly Dependency Updates: pinned requirements against a package index (and advisories).

    ``index_api: simple`` reads a PEP 503/691 simple index at ``index_url``
    (``https://pypi.org/simple/``); ``json`` the PyPI JSON API at ``index_url``
    (``https://pypi.org/pypi``). ``advisory_url``: an OSV-compatible API root
    (``https://api.osv.dev``), none = no vulnerability check. ``app_requirements``: absolute
    paths of the managed application's requirement files on the worker; ``project_requirements``:
    this project's own, relative to the repository root. ``app_repository``: the application's
    git repository (npm projects, Dockerfiles, requirement files in it), reviewed against
    ``npm_registry_url``, ``image_registry_url`` (Docker Registry HTTP API v2, for image names
    without a registry host) and ``index_url``, and updated through a pull request
    (``pull_requests``).
    """

    index_url: HttpUrl = "https://pypi.org/simple/"
    index_api: Literal["simple", "json"] = "simple"
    advisory_url: HttpUrl | None = None
    app_requirements: list[Annotated[str, AfterValidator(_check_absolute)]] = Field(default_factory=list)
    project_requirements: list[NonEmpty] = Field(
        default_factory=lambda: ["requirements.txt", "requirements-dev.txt"]
    )
    app_repository: AppRepositoryConfig | None = None
    npm_registry_url: HttpUrl = "https://registry.npmjs.org/"
    image_registry_url: HttpUrl = "https://registry-1.docker.io"
    pull_requests: PullRequestConfig = Field(default_factory=PullRequestConfig)
    timeout_seconds: float = Field(default=10, gt=0)
    concurrency: int = Field(default=8, ge=1, le=32)
