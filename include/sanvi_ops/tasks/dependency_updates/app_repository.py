"""The application's repository: review its npm, Python and image dependencies, then update them.

One shape for the three ecosystems: a :class:`Dep` (what is declared, what is locked/pinned,
what the registry offers, known vulnerabilities), turned into one result each by
:func:`dep_result` (check ``app.dependency[<file>:<name>]``, ``details.ecosystem`` = ``npm``,
``PyPI`` or ``image``).

:func:`plan` sorts them: **routine** (patch/minor, the current version has no known vulnerability
and neither has the target: applied together on the month's branch, one pull request),
**security** (a known-vulnerable version with a clean patch/minor fix: one pull request each,
beside the P3 incident the critical result opens), **review** (majors, floating image tags,
vulnerable versions with no fix in their major, lookups that failed: listed, never applied).

:func:`apply_updates` edits a checkout: ``npm install --package-lock-only`` per npm project
(see :func:`~sanvi_ops.tasks.dependency_updates.npm.npm_install_command`), ``name==version``
pins rewritten in place, ``FROM image:tag`` lines bumped. What npm cannot resolve is reported
back as failed, not applied.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.tasks.dependency_updates.dependencies import (
    VULNERABLE_SEVERITY,
    PackageIndex,
    candidate_update,
    read_requirement_files,
)
from sanvi_ops.tasks.dependency_updates.images import (
    ImageRegistry,
    bump_from_line,
    image_candidates,
    read_dockerfile,
)
from sanvi_ops.tasks.dependency_updates.npm import (
    NpmRegistry,
    changelog_url,
    locked_version,
    new_range,
    npm_candidates,
    npm_install_command,
    read_npm_project,
)


@dataclass
class Dep:
    """One dependency of the application, whatever its ecosystem."""

    ecosystem: str  # npm | PyPI | image
    file: str  # where it is declared, relative to the checkout
    name: str
    current: str  # locked version, pinned version or image tag
    spec: str = ""  # package.json range, ``==version``, ``image:tag``
    project: str = ""  # npm project folder; for images the image as written
    workspace: str = ""
    line: int = 0
    dev: bool = False
    latest: str | None = None
    ready: str | None = None  # the patch/minor target
    kind: str | None = None  # latest vs current
    state: str = "up_to_date"  # up_to_date | ready | major | floating | unknown | failed
    vulnerabilities: list[str] = field(default_factory=list)
    ready_vulnerabilities: list[str] = field(default_factory=list)
    deprecated: str | None = None
    changelog: str | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.file}:{self.name}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dep:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Review:
    deps: list[Dep] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files that could not be read
    advisory_error: str | None = None


def _state(ready: str | None, kind: str | None) -> str:
    if kind == "major":
        return "major"
    return "ready" if ready else "up_to_date"


def review_npm(checkout: Path, folders: list[str], registry: NpmRegistry, out: Review) -> None:
    deps: list[Dep] = []
    for folder in folders:
        project = read_npm_project(checkout, folder)
        out.problems.extend(project.problems)
        for d in project.dependencies:
            if d.locked is None:
                if project.lockfile_version:  # declared but not in the lockfile: npm install was not run
                    out.problems.append(
                        f"{folder}/{d.manifest}: {d.name} {d.spec} is not in package-lock.json"
                    )
                continue
            deps.append(
                Dep("npm", f"{folder}/{d.manifest}".lstrip("./") if folder != "." else d.manifest, d.name,
                    d.locked, spec=d.spec, project=folder, workspace=d.workspace, dev=d.dev)
            )  # fmt: skip
    packuments = registry.packuments([d.name for d in deps])
    for dep in deps:
        pk = packuments[dep.name]
        if pk.error is not None or not pk.found:
            dep.state = "failed" if pk.error else "unknown"
            dep.error = pk.error or f"not on registry {registry.url}"
            continue
        upd = npm_candidates(dep.current, pk)
        dep.latest, dep.ready, dep.kind = upd.latest, upd.ready, upd.kind
        dep.state = _state(upd.ready, upd.kind)
        dep.deprecated = pk.deprecated.get(dep.current)
        dep.changelog = changelog_url(pk.repository, dep.name, dep.ready or dep.latest)
    out.deps.extend(deps)


def review_python(checkout: Path, files: list[str], index: PackageIndex, out: Review) -> None:
    parsed = read_requirement_files([checkout / f for f in files])
    deps: list[Dep] = []
    for rf in parsed:
        rel = os.path.relpath(rf.path, checkout)
        out.problems.extend(f"{rel}: {p}" for p in rf.problems)
        for pin in rf.pinned:
            assert pin.version is not None
            deps.append(Dep("PyPI", rel, pin.name, pin.version, spec=f"=={pin.version}", line=pin.line))
    lookups = index.lookup_many(d.name for d in deps)
    for dep in deps:
        lookup = lookups[dep.name]
        if lookup.error or not lookup.found:
            dep.state = "failed" if lookup.error else "unknown"
            dep.error = lookup.error or f"not on index {index.display_url}"
            continue
        upd = candidate_update(Version(dep.current), lookup.versions)
        dep.latest = str(upd.latest) if upd.latest else None
        dep.ready = str(upd.ready) if upd.ready else None
        dep.kind = upd.latest_kind
        dep.state = _state(dep.ready, dep.kind)
        dep.changelog = f"https://pypi.org/project/{dep.name}/{dep.ready or dep.latest or dep.current}/"
    out.deps.extend(deps)


def review_images(checkout: Path, files: list[str], registry: ImageRegistry, out: Review) -> None:
    tag_cache: dict[tuple[str | None, str], list[str] | str] = {}
    for rel in files:
        try:
            refs = read_dockerfile(checkout, rel)
        except OSError as exc:
            out.problems.append(f"{rel}: cannot read: {exc.strerror or exc}")
            continue
        for ref in refs:
            dep = Dep(
                "image",
                rel,
                ref.image,
                ref.tag,
                spec=f"{ref.image}:{ref.tag}",
                project=ref.image,
                line=ref.line,
            )
            key = (ref.registry, ref.repository)
            if key not in tag_cache:
                try:
                    tag_cache[key] = registry.tags(ref.registry, ref.repository)
                except Exception as exc:  # noqa: BLE001 - httpx errors, bad JSON: the registry is unreadable
                    tag_cache[key] = f"{registry.base_url(ref.registry)}/v2/{ref.repository}/tags/list: {exc}"
            tags = tag_cache[key]
            if isinstance(tags, str):
                dep.state, dep.error = "failed", tags
            else:
                upd = image_candidates(ref.tag, tags)
                dep.latest, dep.ready, dep.kind = upd.latest, upd.ready, upd.kind
                dep.state = "floating" if upd.floating else _state(upd.ready, upd.kind)
                if ref.registry is None:
                    dep.changelog = f"https://hub.docker.com/r/{ref.repository}/tags"
            out.deps.append(dep)


def attach_advisories(review: Review, found: dict[tuple[str, str, str], list[str]]) -> None:
    for dep in review.deps:
        if dep.ecosystem == "image":
            continue
        dep.vulnerabilities = found.get((dep.ecosystem, _osv_name(dep), dep.current), [])
        if dep.ready:
            dep.ready_vulnerabilities = found.get((dep.ecosystem, _osv_name(dep), dep.ready), [])


def _osv_name(dep: Dep) -> str:
    return str(canonicalize_name(dep.name)) if dep.ecosystem == "PyPI" else dep.name


def advisory_queries(review: Review) -> list[tuple[str, str, str]]:
    out = []
    for dep in review.deps:
        if dep.ecosystem != "image":
            out.append((dep.ecosystem, _osv_name(dep), dep.current))
            if dep.ready:
                out.append((dep.ecosystem, _osv_name(dep), dep.ready))
    return out


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


def dep_result(dep: Dep, component: str = "application") -> CheckResult:
    details = asdict(dep)
    what = f"{dep.name} {dep.current}" if dep.ecosystem != "image" else f"{dep.name}:{dep.current}"
    where = f" ({dep.file})"
    if dep.state == "failed":
        return CheckResult(f"app.dependency[{dep.label}]", Status.ERROR, f"{what}{where}: {dep.error}",
                           component=component, details=details)  # fmt: skip
    if dep.state == "unknown":
        summary, status = f"{what}{where}: {dep.error}", Status.WARNING
    elif dep.state == "floating":
        pin = dep.ready or dep.latest
        summary = f"{what}{where}: floating tag (moves under you); pin a version" + (
            f" such as {pin}" if pin else ""
        )
        status = Status.WARNING
    elif dep.state == "major":
        summary = f"{what} → {dep.latest}{where} (major: review the changelog before updating)"
        if dep.ready:
            summary += f"; {dep.ready} is ready in the current major"
        status = Status.WARNING
    elif dep.state == "ready":
        summary = f"{what} → {dep.ready}{where} ({dep.kind}: ready to update)"
        status = Status.WARNING
    else:
        summary, status = f"{what}{where} is up to date", Status.OK
    if dep.deprecated:
        summary += f"; {dep.current} is deprecated: {dep.deprecated}"
        status = Status.WARNING if status == Status.OK else status
    if dep.vulnerabilities:
        fix = (
            f"; fix: {dep.ready}"
            if dep.ready and not dep.ready_vulnerabilities
            else "; no clean version in its major"
        )
        return CheckResult(
            f"app.dependency[{dep.label}]", Status.CRITICAL,
            f"{what}{where} has known vulnerabilities: {', '.join(dep.vulnerabilities)}{fix}",
            severity=VULNERABLE_SEVERITY, component=component, details=details,
        )  # fmt: skip
    return CheckResult(f"app.dependency[{dep.label}]", status, summary, component=component, details=details)


@dataclass
class Plan:
    routine: list[Dep] = field(default_factory=list)
    security: list[Dep] = field(default_factory=list)
    review: list[Dep] = field(default_factory=list)


def plan(deps: list[Dep]) -> Plan:
    out = Plan()
    for dep in deps:
        if dep.vulnerabilities:
            if dep.ready and not dep.ready_vulnerabilities:
                out.security.append(dep)
            else:
                out.review.append(dep)
            continue
        if dep.state in ("failed", "unknown", "floating", "major"):
            out.review.append(dep)
        if dep.ready and dep.state in ("ready", "major") and not dep.ready_vulnerabilities:
            out.routine.append(dep)
    return out


def summary_result(review: Review, p: Plan, repo_url: str) -> CheckResult:
    counts: dict[str, int] = defaultdict(int)
    for dep in review.deps:
        counts[dep.ecosystem] += 1
    parts = [f"{n} {eco}" for eco, n in sorted(counts.items())]
    text = f"{repo_url}: {len(review.deps)} dependencies ({', '.join(parts) or 'none'}); "
    text += f"{len(p.routine)} routine updates, {len(p.security)} security fixes, {len(p.review)} for review"
    status = Status.OK
    if review.problems:
        text += f"; {len(review.problems)} problems: {'; '.join(review.problems[:3])}"
        status = Status.WARNING
    if p.routine or p.review or p.security:
        status = Status.WARNING
    return CheckResult(
        "app.repository", status, text, metric="outdated_dependencies",
        observed=float(len(p.routine) + len(p.review)), unit="count", component="application",
        details={"problems": review.problems, "deps": [asdict(d) for d in review.deps]},
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------------


@dataclass
class Applied:
    done: list[Dep] = field(default_factory=list)
    failed: list[tuple[Dep, str]] = field(default_factory=list)


def _node_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "npm_config_update_notifier": "false",
    }


def _npm(checkout: Path, project: str, cmd: list[str], timeout_s: float) -> str | None:
    with tempfile.TemporaryDirectory(prefix="sanvi-npm-home-") as home:
        try:
            proc = subprocess.run(  # noqa: S603 - npm with fixed flags, specs from the registry's versions
                cmd, cwd=checkout / project, env=_node_env(Path(home)), capture_output=True, text=True,
                timeout=timeout_s, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{cmd[0]}: {exc}"
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "ERR" in ln] or proc.stderr.splitlines()
        return " ".join(lines[-3:])[-400:] or f"exit {proc.returncode}"
    return None


def _set_range(checkout: Path, dep: Dep) -> None:
    """Write ``dep.ready`` into its ``package.json`` range, keeping ``^``/``~``/exact."""
    path = checkout / dep.file
    data = json.loads(path.read_text(encoding="utf-8"))
    for section in ("devDependencies",) if dep.dev else ("dependencies", "optionalDependencies"):
        if dep.name in (data.get(section) or {}):
            data[section][dep.name] = new_range(dep.spec, str(dep.ready))
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def apply_npm(checkout: Path, deps: list[Dep], registry: str, out: Applied, timeout_s: float) -> None:
    """Per npm project: write the new ranges, one ``npm install --package-lock-only``; when it
    fails, each update alone, keeping those that resolve."""
    by_project: dict[str, list[Dep]] = defaultdict(list)
    for dep in deps:
        by_project[dep.project].append(dep)
    for project, group in by_project.items():
        files = sorted({checkout / d.file for d in group} | {checkout / project / "package-lock.json"})
        saved = {f: f.read_bytes() for f in files if f.exists()}
        for dep in group:
            _set_range(checkout, dep)
        err = _npm(checkout, project, npm_install_command(registry, []), timeout_s)
        if err is None or len(group) == 1:
            for dep in group:
                _check_locked(checkout, dep, err, out)
            if err is not None:
                _restore(saved)
            continue
        _restore(saved)
        for dep in group:
            before = {f: f.read_bytes() for f in files if f.exists()}
            _set_range(checkout, dep)
            one = _npm(checkout, project, npm_install_command(registry, []), timeout_s)
            _check_locked(checkout, dep, one, out)
            if one is not None:
                _restore(before)


def _restore(saved: dict[Path, bytes]) -> None:
    for path, data in saved.items():
        path.write_bytes(data)


def _check_locked(checkout: Path, dep: Dep, err: str | None, out: Applied) -> None:
    if err is None and locked_version(checkout / dep.project, dep.workspace, dep.name) != dep.ready:
        err = f"npm did not lock {dep.name}@{dep.ready}"
    if err is None:
        out.done.append(dep)
    else:
        out.failed.append((dep, err))


def apply_python(checkout: Path, deps: list[Dep], out: Applied) -> None:
    for dep in deps:
        path = checkout / dep.file
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        name = re.sub(r"[-_.]+", "[-_.]+", re.escape(dep.name).replace("\\-", "-"))
        pattern = re.compile(
            rf"^(\s*{name}(?:\[[^\]]*\])?\s*===?\s*){re.escape(dep.current)}\b", re.IGNORECASE
        )
        idx = dep.line - 1
        if 0 <= idx < len(lines) and pattern.search(lines[idx]):
            m = pattern.search(lines[idx])
            assert m is not None
            lines[idx] = lines[idx][: m.start()] + m.group(1) + str(dep.ready) + lines[idx][m.end() :]
            path.write_text("".join(lines), encoding="utf-8")
            out.done.append(dep)
        else:
            out.failed.append((dep, f"{dep.file}:{dep.line} no longer pins {dep.name}=={dep.current}"))


def apply_images(checkout: Path, deps: list[Dep], out: Applied) -> None:
    for dep in deps:
        path = checkout / dep.file
        text = path.read_text(encoding="utf-8")
        new = bump_from_line(text, dep.line, dep.project, dep.current, str(dep.ready))
        if new == text:
            out.failed.append((dep, f"{dep.file}:{dep.line} no longer reads FROM {dep.spec}"))
            continue
        path.write_text(new, encoding="utf-8")
        out.done.append(dep)


def apply_updates(checkout: Path, deps: list[Dep], npm_registry: str, timeout_s: float = 300.0) -> Applied:
    out = Applied()
    apply_npm(checkout, [d for d in deps if d.ecosystem == "npm"], npm_registry, out, timeout_s)
    apply_python(checkout, [d for d in deps if d.ecosystem == "PyPI"], out)
    apply_images(checkout, [d for d in deps if d.ecosystem == "image"], out)
    return out


def _row(dep: Dep, target: str | None) -> str:
    link = f"[changelog]({dep.changelog})" if dep.changelog else "—"
    return f"| {dep.ecosystem} | `{dep.name}` | `{dep.file}` | {dep.current} → {target} | {dep.kind or ''} | {link} |"


def pr_body(applied: Applied, review: list[Dep], *, title: str, run_url: str | None = None) -> str:
    lines = [f"## {title}", "", "Opened by Sanvi Ops' monthly Dependency Updates.", ""]
    if applied.done:
        lines += [
            "### Applied",
            "",
            "| ecosystem | name | file | change | kind | changelog |",
            "|---|---|---|---|---|---|",
        ]
        lines += [_row(d, d.ready) for d in applied.done]
        lines.append("")
    if applied.failed:
        lines += ["### Could not be resolved (not applied)", ""]
        lines += [
            f"- {d.ecosystem} `{d.name}` {d.current} → {d.ready} (`{d.file}`): {err}"
            for d, err in applied.failed
        ]
        lines.append("")
    if review:
        lines += ["### For review (not applied)", ""]
        for d in review:
            why = {
                "major": f"major {d.current} → {d.latest}",
                "floating": f"floating tag `{d.current}`; pin {d.ready or d.latest or 'a version'}",
            }.get(d.state, d.error or d.state)
            if d.vulnerabilities:
                why = f"known vulnerabilities {', '.join(d.vulnerabilities)}, no clean version in its major"
            link = f" ([changelog]({d.changelog}))" if d.changelog else ""
            lines.append(f"- {d.ecosystem} `{d.name}` (`{d.file}`): {why}{link}")
        lines.append("")
    if run_url:
        lines.append(f"Run: {run_url}")
    return "\n".join(lines).rstrip() + "\n"


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-").lower()
