"""Pure logic of the application-repository review: npm lockfiles and semver, Dockerfile tags,
the plan (routine / security / review) and the pull request's body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sanvi_ops.tasks.dependency_updates.app_repository import (
    Applied,
    Dep,
    apply_python,
    dep_result,
    plan,
    pr_body,
)
from sanvi_ops.tasks.dependency_updates.images import (
    bump_from_line,
    image_candidates,
    read_dockerfile,
    split_image,
)
from sanvi_ops.tasks.dependency_updates.npm import (
    Packument,
    SemVer,
    changelog_url,
    new_range,
    npm_candidates,
    npm_install_command,
    read_npm_project,
)


def test_semver_orders_prereleases_below_their_release():
    parse = SemVer.parse
    assert parse("1.0.0-rc.1") < parse("1.0.0-rc.2") < parse("1.0.0") < parse("1.0.1")  # type: ignore[operator]
    assert parse("1.0.0-alpha.9") < parse("1.0.0-alpha.beta")  # type: ignore[operator]
    assert parse("1.2") is None and parse("v2.0.0") == SemVer(2, 0, 0)


def _write(root: Path, rel: str, data: object) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_workspaces_are_read_from_a_v3_lockfile(tmp_path):
    _write(
        tmp_path,
        "app/package.json",
        {"name": "root", "workspaces": ["packages/*"], "devDependencies": {"typescript": "^5.4.0"}},
    )
    _write(
        tmp_path,
        "app/packages/web/package.json",
        {"name": "web", "dependencies": {"next": "^14.2.3", "api": "*", "local": "file:../x"}},
    )
    _write(tmp_path, "app/packages/api/package.json", {"name": "api", "dependencies": {"next": "^13.0.0"}})
    _write(tmp_path, "app/package-lock.json", {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "root"},
            "node_modules/typescript": {"version": "5.4.5"},
            "node_modules/next": {"version": "14.2.3"},
            "node_modules/web": {"resolved": "packages/web", "link": True},
            "node_modules/api": {"resolved": "packages/api", "link": True},
            "packages/api/node_modules/next": {"version": "13.5.6"},
        },
    })  # fmt: skip
    project = read_npm_project(tmp_path, "app")
    got = {(d.manifest, d.name): (d.spec, d.locked, d.dev) for d in project.dependencies}
    assert got == {
        ("package.json", "typescript"): ("^5.4.0", "5.4.5", True),
        ("packages/web/package.json", "next"): ("^14.2.3", "14.2.3", False),  # hoisted
        ("packages/api/package.json", "next"): ("^13.0.0", "13.5.6", False),  # its own node_modules
    }
    assert project.lockfile_version == 3 and not project.problems


def test_lockfile_v1_is_reported_not_guessed(tmp_path):
    _write(tmp_path, "package.json", {"name": "x", "dependencies": {"a": "^1.0.0"}})
    _write(tmp_path, "package-lock.json", {"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0"}}})
    project = read_npm_project(tmp_path, ".")
    assert "lockfile v1" in project.problems[0] and project.dependencies[0].locked is None


def test_npm_candidates_skip_deprecated_and_prereleases():
    pk = Packument(
        "next",
        versions=("14.2.3", "14.2.4", "14.2.5", "15.0.0-rc.1", "15.0.3"),
        deprecated={"14.2.5": "broken"},
        dist_tags={"latest": "15.0.3", "canary": "15.0.0-rc.1"},
    )
    upd = npm_candidates("14.2.3", pk)
    assert (upd.latest, upd.ready, upd.kind) == ("15.0.3", "14.2.4", "major")
    assert npm_candidates("15.0.3", pk).kind is None


def test_ranges_keep_their_style_and_npm_runs_offline_of_scripts():
    assert new_range("^14.2.3", "14.2.35") == "^14.2.35"
    assert new_range("~8.56.0", "8.57.0") == "~8.57.0"
    assert new_range("18.3.1", "18.3.2") == "18.3.2"
    assert new_range(">=1 <2", "1.5.0") == "^1.5.0"
    cmd = npm_install_command("http://127.0.0.1:4873/", [])
    assert (
        "--ignore-scripts" in cmd
        and "--package-lock-only" in cmd
        and "--registry=http://127.0.0.1:4873/" in cmd
    )
    assert changelog_url("git+https://github.com/vercel/next.js.git", "next", "14.2.35").endswith(
        "vercel/next.js/releases/tag/v14.2.35"
    )


def test_dockerfile_from_lines(tmp_path):
    (tmp_path / "Dockerfile").write_text(
        "ARG BASE=node:20\nFROM --platform=$BUILDPLATFORM node:20.11.0-alpine AS build\nFROM build AS test\n"
        "FROM ${BASE}\nFROM ghcr.io/org/base:1.2.3\nFROM nginx\nFROM node@sha256:abc\nFROM scratch\n"
    )
    refs = read_dockerfile(tmp_path, "Dockerfile")
    assert [(r.line, r.image, r.tag, r.registry, r.repository) for r in refs] == [
        (2, "node", "20.11.0-alpine", None, "library/node"),
        (5, "ghcr.io/org/base", "1.2.3", "ghcr.io", "org/base"),
        (6, "nginx", "latest", None, "library/nginx"),
    ]
    assert split_image("localhost:5000/app:7") == ("localhost:5000", "app", "7")


@pytest.mark.parametrize(
    ("tag", "floating", "ready", "kind"),
    [
        ("20.11.0-alpine", False, "20.18.1-alpine", "major"),
        ("22.12.0-alpine", False, None, None),
        ("20", True, "20.18.1", None),
        ("20.11-alpine", True, "20.11.1-alpine", None),
        ("latest", True, None, None),
    ],
)
def test_image_tags(tag, floating, ready, kind):
    tags = [
        "latest",
        "20",
        "20.11.0-alpine",
        "20.11.1-alpine",
        "20.18.1-alpine",
        "22.12.0-alpine",
        "20.18.1",
        "20.11-alpine",
    ]
    upd = image_candidates(tag, tags)
    assert (upd.floating, upd.ready, upd.kind) == (floating, ready, kind)


def test_bump_from_line_changes_only_that_line():
    text = "FROM node:20.11.0-alpine AS build\nRUN echo node:20.11.0-alpine\nFROM nginx\n"
    assert bump_from_line(text, 1, "node", "20.11.0-alpine", "20.18.1-alpine").splitlines()[:2] == [
        "FROM node:20.18.1-alpine AS build",
        "RUN echo node:20.11.0-alpine",
    ]
    assert bump_from_line(text, 3, "nginx", "latest", "1.27.3").endswith("FROM nginx:1.27.3\n")


def _dep(**kw):
    base = {"ecosystem": "npm", "file": "web/package.json", "name": "x", "current": "1.0.0", "ready": "1.1.0",
            "latest": "1.1.0", "kind": "minor", "state": "ready"}  # fmt: skip
    return Dep(**{**base, **kw})


def test_plan_routine_security_review():
    routine = _dep(name="a")
    major = _dep(name="b", latest="2.0.0", kind="major", state="major")
    vulnerable = _dep(name="c", vulnerabilities=["GHSA-1"])
    no_fix = _dep(name="d", vulnerabilities=["GHSA-2"], ready_vulnerabilities=["GHSA-2"])
    target_vulnerable = _dep(name="e", ready_vulnerabilities=["GHSA-3"])
    floating = _dep(
        ecosystem="image", name="node", current="20", ready="20.18.1", state="floating", kind=None
    )
    p = plan([routine, major, vulnerable, no_fix, target_vulnerable, floating])
    assert [d.name for d in p.routine] == ["a", "b"]  # a major's newest in its current major is routine
    assert [d.name for d in p.security] == ["c"]
    assert [d.name for d in p.review] == ["b", "d", "node"]
    r = dep_result(vulnerable)
    assert r.status == "critical" and r.severity == "P3" and "fix: 1.1.0" in r.summary
    assert dep_result(floating).status == "warning" and "floating" in dep_result(floating).summary


def test_pr_body_lists_changes_with_changelogs_failures_and_review():
    a = _dep(name="a", changelog="https://example.invalid/a")
    body = pr_body(
        Applied(done=[a], failed=[(_dep(name="z"), "ETARGET")]),
        [_dep(name="b", latest="2.0.0", state="major", kind="major")],
        title="Dependency updates 2026-11",
    )
    assert (
        "| npm | `a` | `web/package.json` | 1.0.0 → 1.1.0 | minor | [changelog](https://example.invalid/a) |"
        in body
    )
    assert "Could not be resolved" in body and "ETARGET" in body
    assert "major 1.0.0 → 2.0.0" in body


def test_python_pin_is_rewritten_on_its_line(tmp_path):
    (tmp_path / "requirements.txt").write_text("Alpha_Pkg[x]==1.0.0  # pinned\nother==1.0.0\n")
    out = Applied()
    apply_python(
        tmp_path,
        [_dep(ecosystem="PyPI", file="requirements.txt", name="alpha-pkg", line=1, ready="1.2.0")],
        out,
    )
    assert (tmp_path / "requirements.txt").read_text() == "Alpha_Pkg[x]==1.2.0  # pinned\nother==1.0.0\n"
    apply_python(
        tmp_path, [_dep(ecosystem="PyPI", file="requirements.txt", name="other", line=1, ready="2")], out
    )
    assert "no longer pins other==1.0.0" in out.failed[0][1]
