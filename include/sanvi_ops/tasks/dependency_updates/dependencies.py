"""Dependency Updates: pinned requirements against a package index and an advisory source.

Plain functions: requirement files in, :class:`~sanvi_ops.core.results.CheckResult` out.

* :func:`parse_requirements` reads a pip requirements file (comments, line continuations,
  ``-r``/``--requirement`` includes, extras, environment markers, ``--hash`` options). Only
  exact pins (``name==version``) are looked up; anything else is counted as "not pinned".
* :class:`PackageIndex` asks a PEP 503/691 simple index (HTML or
  ``application/vnd.pypi.simple.v1+json``) or the PyPI JSON API (``/pypi/<name>/json``) for a
  project's versions, with bounded concurrency and a timeout per request. A version counts when
  at least one of its files is not yanked; pre-releases count only for a pin that is one.
* :func:`query_advisories` asks an OSV-compatible API (``POST /v1/querybatch``) which pins have
  known vulnerabilities.
* :func:`review_requirements` turns all that into one result per file and one per pinned
  package: ``ok`` up to date, ``warning`` outdated (patch/minor "ready", major "for review"),
  ``critical`` with severity ``P3`` for a known-vulnerable pin, ``error`` when the index or
  advisory source could not be read (the summary names its URL).

Why a vulnerable pin is critical/P3: a published vulnerability in something we ship is a
security finding with an owner and a deadline, not a routine update — it must open an incident
(so it is tracked and resolved when the pin moves), like a CRITICAL image finding in the Security
Patch Review. P3 because nothing is down: it is fixed in working hours, not by paging someone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from sanvi_ops.core.results import CheckResult, Status

log = logging.getLogger(__name__)

IndexApi = Literal["simple", "json"]
UpdateKind = Literal["patch", "minor", "major"]

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
#: PEP 691 content negotiation: JSON preferred, HTML accepted.
SIMPLE_ACCEPT = f"{SIMPLE_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
VULNERABLE_SEVERITY = "P3"
_OSV_BATCH = 1000  # the OSV API's limit of queries per querybatch request


# --------------------------------------------------------------------------------------------
# Requirement files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """One requirement line of a file."""

    name: str  # PEP 503-normalised
    raw_name: str
    version: str | None  # the exact pin, None when the line is not ``name==version``
    line: int
    extras: tuple[str, ...] = ()
    marker: str | None = None
    specifier: str = ""


@dataclass
class RequirementFile:
    """What :func:`parse_requirements` read from one file (not its includes)."""

    path: Path
    pins: list[Pin] = field(default_factory=list)
    includes: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def pinned(self) -> list[Pin]:
        return [p for p in self.pins if p.version is not None]

    @property
    def unpinned(self) -> list[Pin]:
        return [p for p in self.pins if p.version is None]


_INCLUDE = re.compile(r"^(?:-r|--requirement)(?:\s*=\s*|\s+|(?=\S))(?P<path>\S+)")
_COMMENT = re.compile(r"(^|\s)#.*$")


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, line) with comments removed and ``\\`` continuations joined."""
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).rstrip()
        if not buf:
            start = number
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf).strip()
        buf = []
        if joined:
            yield start, joined
    if buf:
        joined = " ".join(part.strip() for part in buf).strip()
        if joined:
            yield start, joined


def parse_requirements(path: Path) -> RequirementFile:
    """Read one requirements file; ``-r`` includes are listed (resolved against its folder), not read.

    :raises OSError: the file cannot be read.
    """
    result = RequirementFile(path=path)
    for number, line in _logical_lines(path.read_text(encoding="utf-8")):
        include = _INCLUDE.match(line)
        if include:
            result.includes.append((path.parent / include.group("path")).resolve())
            continue
        if line.startswith("-"):
            continue  # -c, -e, -i/--index-url, --extra-index-url, --hash-only lines, ...
        # Per-requirement options (``--hash=sha256:...``) follow the requirement.
        spec = re.split(r"\s--?[a-zA-Z]", f" {line}", maxsplit=1)[0].strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            result.problems.append(f"line {number}: {exc}")
            continue
        version: str | None = None
        specs = list(req.specifier)
        if req.url is None and len(specs) == 1 and specs[0].operator in {"==", "==="}:
            candidate = specs[0].version
            if not candidate.endswith(".*"):
                try:
                    Version(candidate)
                    version = candidate
                except InvalidVersion:
                    result.problems.append(f"line {number}: {candidate!r} is not a PEP 440 version")
        result.pins.append(
            Pin(
                name=canonicalize_name(req.name),
                raw_name=req.name,
                version=version,
                line=number,
                extras=tuple(sorted(req.extras)),
                marker=str(req.marker) if req.marker is not None else None,
                specifier=str(req.specifier) if req.url is None else f"@ {req.url}",
            )
        )
    return result


def read_requirement_files(paths: Sequence[Path]) -> list[RequirementFile]:
    """Read ``paths`` in order and the files they include, each file once (the first time it is seen).

    A file that cannot be read becomes a :class:`RequirementFile` with a problem, never an exception.
    """
    seen: set[Path] = set()
    out: list[RequirementFile] = []

    def visit(path: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        try:
            parsed = parse_requirements(path)
        except OSError as exc:
            out.append(RequirementFile(path=path, problems=[f"cannot read: {exc.strerror or exc}"]))
            return
        out.append(parsed)
        for inc in parsed.includes:
            visit(inc)

    for p in paths:
        visit(p)
    return out


# --------------------------------------------------------------------------------------------
# The package index
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """The versions an index lists for one project, or why there are none."""

    name: str
    versions: tuple[Version, ...] = ()
    found: bool = True
    error: str | None = None


class _AnchorParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[tuple[str, bool]] = []
        self._yanked: bool | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            attributes = dict(attrs)
            self._yanked = "data-yanked" in attributes
            self._text = []
            href = attributes.get("href") or ""
            self._text.append(href.split("#", 1)[0].rsplit("/", 1)[-1])

    def handle_data(self, data: str) -> None:
        if self._yanked is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._yanked is not None:
            # The anchor's text is the filename (PEP 503); the href's last segment is the fallback.
            text = "".join(self._text[1:]).strip() or self._text[0]
            self.files.append((text, self._yanked))
            self._yanked = None


def _version_of_file(filename: str, project: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return version if name == project else None
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return None  # eggs, .exe, ... : not something pip installs from a pin


def _usable(files: Iterable[tuple[Version | None, bool]]) -> tuple[Version, ...]:
    """Versions with at least one file that is not yanked (PEP 592)."""
    state: dict[Version, bool] = {}
    for version, yanked in files:
        if version is not None:
            state[version] = state.get(version, False) or not yanked
    return tuple(sorted(v for v, ok in state.items() if ok))


def versions_from_simple_html(text: str, project: str) -> tuple[Version, ...]:
    parser = _AnchorParser()
    parser.feed(text)
    return _usable((_version_of_file(name, project), yanked) for name, yanked in parser.files)


def versions_from_simple_json(data: dict[str, Any], project: str) -> tuple[Version, ...]:
    files = data.get("files") or []
    return _usable(
        (_version_of_file(str(f.get("filename", "")), project), bool(f.get("yanked", False))) for f in files
    )


def versions_from_json_api(data: dict[str, Any]) -> tuple[Version, ...]:
    pairs: list[tuple[Version | None, bool]] = []
    for raw, files in (data.get("releases") or {}).items():
        try:
            version: Version | None = Version(raw)
        except InvalidVersion:
            continue
        pairs.extend((version, bool(f.get("yanked", False))) for f in files or [])
    return _usable(pairs)


def _redact(url: str) -> str:
    """The URL without credentials (an index URL may carry a token)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


class PackageIndex:
    """A package index, asked for many projects with at most ``concurrency`` requests at once.

    :param url: for ``api="simple"`` the simple index root (``https://pypi.org/simple/``); for
        ``api="json"`` the JSON API root (``https://pypi.org/pypi``).
    """

    def __init__(
        self,
        url: str,
        api: IndexApi = "simple",
        *,
        timeout_s: float = 10.0,
        concurrency: int = 8,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self.api = api
        self.display_url = _redact(url)
        self.concurrency = max(1, concurrency)
        self._own_client = client is None
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
            follow_redirects=True,
            headers={"User-Agent": "sanvi-ops-dependency-updates"},
        )

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> PackageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def project_url(self, name: str) -> str:
        norm = canonicalize_name(name)
        if self.api == "json":
            return urljoin(self.url, f"{norm}/json")
        return urljoin(self.url, f"{norm}/")

    def lookup(self, name: str) -> Lookup:
        """The project's usable versions; never raises for an index that is down."""
        norm = canonicalize_name(name)
        url = self.project_url(norm)
        headers = {"Accept": SIMPLE_ACCEPT if self.api == "simple" else "application/json"}
        try:
            resp = self._client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            return Lookup(norm, found=False, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        if resp.status_code == 404:
            return Lookup(norm, found=False)
        if resp.status_code != 200:
            return Lookup(norm, found=False, error=f"HTTP {resp.status_code}")
        try:
            ctype = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if self.api == "json":
                return Lookup(norm, versions_from_json_api(resp.json()))
            if ctype == SIMPLE_JSON or ctype == "application/json":
                return Lookup(norm, versions_from_simple_json(resp.json(), norm))
            return Lookup(norm, versions_from_simple_html(resp.text, norm))
        except (ValueError, AttributeError, TypeError) as exc:
            return Lookup(norm, found=False, error=f"unreadable response: {exc}")

    def lookup_many(self, names: Iterable[str]) -> dict[str, Lookup]:
        """Look up each distinct (normalised) name once, ``concurrency`` at a time."""
        unique = sorted({canonicalize_name(n) for n in names})
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="index") as pool:
            return dict(zip(unique, pool.map(self.lookup, unique), strict=True))


# --------------------------------------------------------------------------------------------
# Advisories (OSV)
# --------------------------------------------------------------------------------------------


def query_advisories(
    url: str, pins: Iterable[tuple[str, str]], *, timeout_s: float = 10.0, client: httpx.Client | None = None
) -> dict[tuple[str, str], list[str]]:
    """Known vulnerability ids per PyPI (normalised name, version), from ``POST <url>/v1/querybatch``.

    :raises httpx.HTTPError: the advisory source is down or answered with an error.
    :raises ValueError: its answer is not the OSV shape.
    """
    found = query_osv(
        url, [("PyPI", canonicalize_name(n), v) for n, v in pins], timeout_s=timeout_s, client=client
    )
    return {(n, v): ids for (_eco, n, v), ids in found.items()}


def query_osv(
    url: str,
    queries: Iterable[tuple[str, str, str]],
    *,
    timeout_s: float = 10.0,
    client: httpx.Client | None = None,
) -> dict[tuple[str, str, str], list[str]]:
    """Known vulnerability ids per (OSV ecosystem, name, version), e.g. ``("npm", "axios", "1.6.0")``,
    from ``POST <url>/v1/querybatch`` (at most 1000 queries a request).

    :raises httpx.HTTPError: the advisory source is down or answered with an error.
    :raises ValueError: its answer is not the OSV shape.
    """
    unique = sorted(set(queries))
    found: dict[tuple[str, str, str], list[str]] = {}
    endpoint = url.rstrip("/") + "/v1/querybatch"
    http = client or httpx.Client(timeout=httpx.Timeout(timeout_s))
    try:
        for start in range(0, len(unique), _OSV_BATCH):
            chunk = unique[start : start + _OSV_BATCH]
            body = {"queries": [{"package": {"name": n, "ecosystem": e}, "version": v} for e, n, v in chunk]}
            resp = http.post(endpoint, json=body)
            resp.raise_for_status()
            results = resp.json().get("results")
            if not isinstance(results, list) or len(results) != len(chunk):
                raise ValueError("querybatch answer does not have one result per query")
            for key, item in zip(chunk, results, strict=True):
                ids = [str(v["id"]) for v in (item or {}).get("vulns") or [] if "id" in v]
                if ids:
                    found[key] = sorted(set(ids))
    finally:
        if client is None:
            http.close()
    return found


# --------------------------------------------------------------------------------------------
# Classification and results
# --------------------------------------------------------------------------------------------


def classify(current: Version, newer: Version) -> UpdateKind:
    """``major`` when the first release number differs, ``minor`` the second, else ``patch``."""
    if newer.major != current.major:
        return "major"
    if newer.minor != current.minor:
        return "minor"
    return "patch"


@dataclass(frozen=True)
class Update:
    """What is available for one pin."""

    latest: Version | None  # newest usable version on the index (None: nothing usable)
    latest_kind: UpdateKind | None  # None: up to date
    ready: Version | None  # newest patch/minor (same major) newer than the pin


def candidate_update(current: Version, available: Sequence[Version]) -> Update:
    """Newest version overall and newest within the pin's major, pre-releases only for a pre-release pin."""
    usable = [v for v in available if current.is_prerelease or not v.is_prerelease]
    if not usable:
        return Update(None, None, None)
    latest = max(usable)
    same_major = [v for v in usable if v.major == current.major and v > current]
    ready = max(same_major) if same_major else None
    kind = classify(current, latest) if latest > current else None
    return Update(latest, kind, ready)


@dataclass(frozen=True)
class Source:
    """A set of requirement files to review (``label`` prefixes check names: ``ops``, ``app``)."""

    label: str
    component: str
    files: tuple[Path, ...]
    root: Path | None = None  # paths are shown relative to this when under it


def _display(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def review_requirements(
    source: Source,
    index: PackageIndex,
    *,
    advisory_url: str | None = None,
    timeout_s: float = 10.0,
    advisory_client: httpx.Client | None = None,
) -> list[CheckResult]:
    """One result per requirement file, one per pinned package (see the module docstring)."""
    files = read_requirement_files(source.files)
    pins = [(rf, pin) for rf in files for pin in rf.pinned]
    lookups = index.lookup_many(p.name for _rf, p in pins)

    results: list[CheckResult] = []
    vulns: dict[tuple[str, str], list[str]] = {}
    if advisory_url and pins:
        try:
            vulns = query_advisories(
                advisory_url,
                [(p.name, p.version or "") for _rf, p in pins],
                timeout_s=timeout_s,
                client=advisory_client,
            )
        except (httpx.HTTPError, ValueError) as exc:
            results.append(
                CheckResult(
                    check=f"{source.label}.advisories",
                    status=Status.ERROR,
                    summary=f"advisory source {_redact(advisory_url)} could not be read: {exc}",
                    component=source.component,
                    details={"advisory_url": _redact(advisory_url)},
                )
            )

    used_names: set[str] = set()
    for rf in files:
        shown = _display(rf.path, source.root)
        counts = {"up_to_date": 0, "ready": 0, "major": 0, "vulnerable": 0, "unknown": 0, "failed": 0}
        ready: list[str] = []
        review: list[str] = []
        vulnerable: list[str] = []
        failed: list[str] = []
        for pin in rf.pinned:
            assert pin.version is not None
            check = f"{source.label}.dependency[{shown}:{pin.name}]"
            if check in used_names:  # the same project pinned twice (under different markers)
                check = f"{source.label}.dependency[{shown}:{pin.name}=={pin.version}]"
            used_names.add(check)
            lookup = lookups[pin.name]
            if lookup.error is not None:
                # Reported once, on the file's result; a result per pin would bury it.
                counts["failed"] += 1
                failed.append(f"{pin.name} ({lookup.error})")
                ids = vulns.get((pin.name, pin.version))
                if ids:  # a known vulnerability is reported even when the index is down
                    counts["vulnerable"] += 1
                    vulnerable.append(f"{pin.name}=={pin.version} ({', '.join(ids)})")
                    results.append(
                        CheckResult(
                            check=check,
                            status=Status.CRITICAL,
                            severity=VULNERABLE_SEVERITY,
                            summary=f"{pin.name}=={pin.version} has known vulnerabilities: {', '.join(ids)}",
                            component=source.component,
                            details={
                                "file": shown,
                                "line": pin.line,
                                "pinned": pin.version,
                                "vulnerabilities": ids,
                            },
                        )
                    )
                continue
            result = _pin_result(check, source.component, shown, pin, lookup, vulns, index)
            results.append(result)
            kind = result.details.get("state")
            counts[str(kind)] = counts.get(str(kind), 0) + 1
            ids = vulns.get((pin.name, pin.version))
            if ids:
                counts["vulnerable"] += 1
                vulnerable.append(f"{pin.name}=={pin.version} ({', '.join(ids)})")
            if kind == "ready":
                ready.append(f"{pin.name} {pin.version} → {result.details['ready']}")
            elif kind == "major":
                review.append(f"{pin.name} {pin.version} → {result.details['latest']}")
                if result.details.get("ready"):
                    ready.append(f"{pin.name} {pin.version} → {result.details['ready']}")
        results.append(
            _file_result(source, rf, shown, counts, ready, review, vulnerable, failed, index, advisory_url)
        )
    return results


def _pin_result(
    check: str,
    component: str,
    shown: str,
    pin: Pin,
    lookup: Lookup,
    vulns: dict[tuple[str, str], list[str]],
    index: PackageIndex,
) -> CheckResult:
    assert pin.version is not None
    current = Version(pin.version)
    details: dict[str, Any] = {"file": shown, "line": pin.line, "pinned": pin.version, "project": pin.name}
    if pin.extras:
        details["extras"] = list(pin.extras)
    if pin.marker:
        details["marker"] = pin.marker
    ids = vulns.get((pin.name, pin.version), [])
    if ids:
        details["vulnerabilities"] = ids

    if not lookup.found:
        details["state"] = "unknown"
        status, summary = Status.WARNING, f"{pin.name}=={pin.version}: not on index {index.display_url}"
    else:
        upd = candidate_update(current, lookup.versions)
        if upd.latest is not None:
            details["latest"] = str(upd.latest)
        if upd.ready is not None:
            details["ready"] = str(upd.ready)
        if upd.latest_kind is None:
            details["state"] = "up_to_date" if upd.latest is not None else "unknown"
            status = Status.OK
            summary = f"{pin.name}=={pin.version} is up to date"
            if upd.latest is None:
                status = Status.WARNING
                summary = f"{pin.name}=={pin.version}: no usable release on {index.display_url}"
        elif upd.latest_kind == "major":
            details["state"] = "major"
            details["kind"] = "major"
            status = Status.WARNING
            summary = f"{pin.name} {pin.version} → {upd.latest} (major: review the changelog before updating)"
            if upd.ready is not None:
                summary += f"; {upd.ready} is ready in the current major"
        else:
            details["state"] = "ready"
            details["kind"] = upd.latest_kind
            status = Status.WARNING
            summary = f"{pin.name} {pin.version} → {upd.latest} ({upd.latest_kind}: ready to update)"
    if ids:
        return CheckResult(
            check=check,
            status=Status.CRITICAL,
            severity=VULNERABLE_SEVERITY,
            summary=f"{pin.name}=={pin.version} has known vulnerabilities: {', '.join(ids)}. {summary}",
            component=component,
            details=details,
        )
    return CheckResult(check=check, status=status, summary=summary, component=component, details=details)


def _file_result(
    source: Source,
    rf: RequirementFile,
    shown: str,
    counts: dict[str, int],
    ready: list[str],
    review: list[str],
    vulnerable: list[str],
    failed: list[str],
    index: PackageIndex,
    advisory_url: str | None,
) -> CheckResult:
    check = f"{source.label}.requirements[{shown}]"
    pinned = len(rf.pinned)
    details: dict[str, Any] = {
        "file": shown,
        "pinned": pinned,
        "not_pinned": [f"{p.raw_name}{p.specifier}" for p in rf.unpinned],
        "includes": [_display(p, source.root) for p in rf.includes],
        "ready": ready,
        "review": review,
        "vulnerable": vulnerable,
        "index_url": index.display_url,
        "advisories": _redact(advisory_url) if advisory_url else None,
        "counts": counts,
    }
    if rf.problems:
        details["problems"] = rf.problems
    if not rf.pins and rf.problems and not rf.includes:
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=f"{shown}: {'; '.join(rf.problems)}",
            component=source.component,
            details=details,
        )
    if failed:
        return CheckResult(
            check=check,
            status=Status.ERROR,
            summary=(
                f"{shown}: package index {index.display_url} could not be read for "
                f"{len(failed)} of {pinned} pins ({', '.join(failed[:5])}{', …' if len(failed) > 5 else ''})"
            ),
            component=source.component,
            details=details,
        )
    parts = [f"{pinned} pinned", f"{counts['up_to_date']} up to date"]
    if ready:
        parts.append(f"{len(ready)} ready (patch/minor)")
    if review:
        parts.append(f"{len(review)} major for review")
    if vulnerable:
        parts.append(f"{len(vulnerable)} known-vulnerable")
    if rf.unpinned:
        parts.append(f"{len(rf.unpinned)} not pinned (not checked)")
    if rf.problems:
        parts.append(f"{len(rf.problems)} unreadable lines")
    if not advisory_url:
        parts.append("no advisory source configured")
    # The vulnerable pins are critical on their own results (one incident each); the file
    # summary only points at them.
    if vulnerable or ready or review or rf.problems or counts.get("unknown"):
        status = Status.WARNING
    else:
        status = Status.OK
    return CheckResult(
        check=check,
        status=status,
        summary=f"{shown}: " + ", ".join(parts),
        metric="outdated_pins",
        observed=float(counts["ready"] + counts["major"]),
        unit="count",
        component=source.component,
        details=details,
    )


__all__ = [
    "IndexApi",
    "Lookup",
    "PackageIndex",
    "Pin",
    "RequirementFile",
    "Source",
    "Update",
    "UpdateKind",
    "candidate_update",
    "classify",
    "parse_requirements",
    "query_advisories",
    "query_osv",
    "read_requirement_files",
    "review_requirements",
    "versions_from_json_api",
    "versions_from_simple_html",
    "versions_from_simple_json",
]
