"""npm: ``package.json`` ranges and ``package-lock.json`` versions against a registry's packuments.

* :func:`read_npm_project` reads a project folder: its ``package.json`` and lockfile v2/v3
  (``packages`` map; workspaces: each workspace's declared dependencies, resolved from
  ``<workspace>/node_modules/<name>`` first, then the hoisted ``node_modules/<name>``).
  Lockfile v1 (npm 6) has no ``packages`` map and is reported, not guessed.
* :class:`NpmRegistry` fetches packuments (``GET <registry>/<name>``, scoped names as
  ``@scope%2fname``): versions, ``dist-tags``, ``deprecated``, ``time``, ``repository``.
* :func:`npm_install_command` is the one ``npm install --package-lock-only`` we run: against the
  configured registry, no lifecycle scripts, no audit.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import total_ordering
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
@dataclass(frozen=True)
class SemVer:
    """A semantic version (``1.2.3``, ``1.2.3-rc.1``; build metadata is ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        m = _SEMVER.match(text.strip())
        if not m:
            return None
        pre = tuple(int(p) if p.isdigit() else p for p in (m.group("pre") or "").split(".") if p)
        return cls(int(m.group("major")), int(m.group("minor")), int(m.group("patch")), pre)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.pre)

    def _key(self) -> tuple[Any, ...]:
        # A release sorts above its pre-releases; numeric identifiers below alphanumeric ones.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return base + ("-" + ".".join(str(p) for p in self.pre) if self.pre else "")


def semver_kind(current: SemVer, newer: SemVer) -> str:
    if newer.major != current.major:
        return "major"
    if newer.minor != current.minor:
        return "minor"
    return "patch"


# --------------------------------------------------------------------------------------------
# package.json + package-lock.json
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NpmDependency:
    """A dependency a ``package.json`` declares, with the version its lockfile resolved."""

    name: str
    spec: str  # the range as written (``^14.2.3``)
    locked: str | None  # the lockfile's version, None when not locked (or not a registry package)
    manifest: str  # the package.json declaring it, relative to the project folder
    workspace: str  # "" for the project root, else the workspace folder
    dev: bool


@dataclass
class NpmProject:
    folder: str  # relative to the checkout
    lockfile_version: int | None = None
    dependencies: list[NpmDependency] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


_SECTIONS = (("dependencies", False), ("devDependencies", True), ("optionalDependencies", False))


def _is_registry_spec(spec: str) -> bool:
    """A range the registry resolves (not ``file:``, ``git+…``, ``workspace:``, a URL or an alias)."""
    return not re.match(r"^(file:|link:|git|github:|https?:|workspace:|npm:|[\w.-]+/[\w.-]+$)", spec)


def read_npm_project(checkout: Path, folder: str) -> NpmProject:
    """The declared dependencies of ``<checkout>/<folder>`` (and its workspaces) with their locked versions."""
    project = NpmProject(folder=folder)
    root = checkout / folder
    try:
        manifest = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        project.problems.append(f"{folder}/package.json: cannot read: {exc}")
        return project
    try:
        lock = json.loads((root / "package-lock.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        project.problems.append(f"{folder}/package-lock.json: cannot read: {exc}")
        lock = {}
    version = lock.get("lockfileVersion")
    project.lockfile_version = version if isinstance(version, int) else None
    packages: dict[str, Any] = lock.get("packages") or {}
    if lock and not packages:
        project.problems.append(
            f"{folder}/package-lock.json: lockfile v{version} has no 'packages' map (npm 6); "
            "regenerate it with npm >= 7"
        )

    manifests: list[tuple[str, dict[str, Any]]] = [("", manifest)]
    for ws in _workspace_folders(root, manifest):
        try:
            manifests.append((ws, json.loads((root / ws / "package.json").read_text(encoding="utf-8"))))
        except (OSError, ValueError) as exc:
            project.problems.append(f"{folder}/{ws}/package.json: cannot read: {exc}")
    ws_names = {str(m.get("name")) for w, m in manifests if w}
    for ws, data in manifests:
        for section, dev in _SECTIONS:
            for name, spec in (data.get(section) or {}).items():
                if not isinstance(spec, str) or name in ws_names or not _is_registry_spec(spec):
                    continue
                project.dependencies.append(
                    NpmDependency(
                        name=name,
                        spec=spec,
                        locked=_locked(packages, ws, name),
                        manifest=f"{ws}/package.json" if ws else "package.json",
                        workspace=ws,
                        dev=dev,
                    )
                )
    return project


def _locked(packages: dict[str, Any], workspace: str, name: str) -> str | None:
    """A workspace's own ``node_modules`` first, then the hoisted one (a link is a workspace, not a version)."""
    keys = [f"{workspace}/node_modules/{name}"] if workspace else []
    keys.append(f"node_modules/{name}")
    for key in keys:
        entry = packages.get(key)
        if isinstance(entry, dict) and not entry.get("link") and isinstance(entry.get("version"), str):
            return str(entry["version"])
    return None


def _workspace_folders(root: Path, manifest: dict[str, Any]) -> list[str]:
    spec = manifest.get("workspaces") or []
    if isinstance(spec, dict):  # {"packages": [...]} (yarn's form, which npm also reads)
        spec = spec.get("packages") or []
    out: list[str] = []
    for pattern in spec if isinstance(spec, list) else []:
        for path in sorted(root.glob(str(pattern))):
            if (path / "package.json").is_file() and root in path.resolve().parents:
                out.append(str(path.relative_to(root)))
    return out


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packument:
    name: str
    versions: tuple[str, ...] = ()
    deprecated: dict[str, str] = field(default_factory=dict)
    dist_tags: dict[str, str] = field(default_factory=dict)
    time: dict[str, str] = field(default_factory=dict)
    repository: str | None = None
    error: str | None = None
    found: bool = True


def changelog_url(repository: str | None, name: str, version: str | None) -> str:
    """The release notes of a GitHub-hosted package, else its npm page."""
    if repository:
        m = re.search(r"github\.com[/:]([\w.-]+)/([\w.-]+?)(?:\.git)?(?:[/#].*)?$", repository)
        if m:
            owner, repo = m.groups()
            return f"https://github.com/{owner}/{repo}/releases" + (f"/tag/v{version}" if version else "")
    return f"https://www.npmjs.com/package/{name}" + (f"/v/{version}" if version else "")


class NpmRegistry:
    """An npm registry's packuments, ``concurrency`` requests at a time."""

    def __init__(
        self, url: str, *, timeout_s: float = 10.0, concurrency: int = 8, token: str | None = None
    ) -> None:
        self.url = url.rstrip("/") + "/"
        headers = {"Accept": "application/json", "User-Agent": "sanvi-ops-dependency-updates"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.concurrency = concurrency
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s), headers=headers, follow_redirects=True)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> NpmRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def packument(self, name: str) -> Packument:
        url = self.url + quote(name, safe="@")
        try:
            resp = self._client.get(url)
        except httpx.HTTPError as exc:
            return Packument(name, error=f"{type(exc).__name__}: {exc}".rstrip(": "), found=False)
        if resp.status_code == 404:
            return Packument(name, found=False)
        if resp.status_code != 200:
            return Packument(name, error=f"HTTP {resp.status_code}", found=False)
        try:
            data = resp.json()
            versions = data.get("versions") or {}
            deprecated = {
                v: str(m["deprecated"])
                for v, m in versions.items()
                if isinstance(m, dict) and m.get("deprecated")
            }
            repo = data.get("repository")
            repository = (
                repo.get("url") if isinstance(repo, dict) else repo if isinstance(repo, str) else None
            )
            return Packument(
                name=name,
                versions=tuple(str(v) for v in versions),
                deprecated=deprecated,
                dist_tags={str(k): str(v) for k, v in (data.get("dist-tags") or {}).items()},
                time={str(k): str(v) for k, v in (data.get("time") or {}).items()},
                repository=repository,
            )
        except (ValueError, AttributeError, TypeError) as exc:
            return Packument(name, error=f"unreadable packument: {exc}", found=False)

    def packuments(self, names: list[str]) -> dict[str, Packument]:
        unique = sorted(set(names))
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="npm") as pool:
            return dict(zip(unique, pool.map(self.packument, unique), strict=True))


@dataclass(frozen=True)
class NpmUpdate:
    latest: str | None  # dist-tags.latest (or the newest release when it has none)
    ready: str | None  # newest non-deprecated release in the current major above the locked version
    kind: str | None  # latest vs locked: patch/minor/major, None = up to date


def npm_candidates(locked: str, packument: Packument) -> NpmUpdate:
    """What the registry offers beyond ``locked`` (pre-releases only for a pre-release lock;
    deprecated versions are never a target)."""
    current = SemVer.parse(locked)
    if current is None:
        return NpmUpdate(None, None, None)
    usable = []
    for raw in packument.versions:
        v = SemVer.parse(raw)
        if (
            v is not None
            and (current.is_prerelease or not v.is_prerelease)
            and raw not in packument.deprecated
        ):
            usable.append(v)
    tagged = SemVer.parse(packument.dist_tags.get("latest", ""))
    latest = tagged if tagged is not None else (max(usable) if usable else None)
    same_major = [v for v in usable if v.major == current.major and v > current]
    ready = max(same_major) if same_major else None
    kind = semver_kind(current, latest) if latest is not None and latest > current else None
    return NpmUpdate(str(latest) if latest else None, str(ready) if ready else None, kind)


def new_range(spec: str, version: str) -> str:
    """The ``package.json`` range for ``version`` in the style of ``spec``: ``^`` and ``~`` kept, an
    exact pin stays exact; anything else (``>=1``, ``1.x``, ``*``) becomes ``^version``."""
    if spec.startswith(("^", "~")) and SemVer.parse(spec[1:]) is not None:
        return spec[0] + version
    if SemVer.parse(spec) is not None:
        return version
    return "^" + version


def npm_install_command(
    registry: str, specs: list[str], workspace: str = "", flags: list[str] | None = None
) -> list[str]:
    """``npm install --package-lock-only`` (for ``specs``, ``name@version``, when given; else what
    ``package.json`` now asks for): the configured registry, no lifecycle scripts, no audit or
    funding calls."""
    cmd = [
        "npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund",
        f"--registry={registry}",
    ]  # fmt: skip
    if workspace:
        cmd.append(f"--workspace={workspace}")
    cmd += list(flags or [])
    return cmd + ["--", *specs] if specs else cmd


def locked_version(project_dir: Path, workspace: str, name: str) -> str | None:
    """The version the lockfile now resolves ``name`` to (for checking what npm did)."""
    try:
        packages = (
            json.loads((project_dir / "package-lock.json").read_text(encoding="utf-8")).get("packages") or {}
        )
    except (OSError, ValueError):
        return None
    return _locked(packages, workspace, name)
