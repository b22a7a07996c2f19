"""The application-repository pieces against real servers on 127.0.0.1: verdaccio (packuments,
``npm install --package-lock-only``), the Docker Registry v2 stand-in (paged tag lists), the
GitHub-API stand-in (one pull request per branch) and git with a token that never leaks."""

from __future__ import annotations

import json
import subprocess

import pytest

from devstack.demo_app_repo import git_env
from sanvi_ops.tasks.dependency_updates.app_repository import Dep, apply_updates
from sanvi_ops.tasks.dependency_updates.images import ImageRegistry
from sanvi_ops.tasks.dependency_updates.npm import NpmRegistry
from sanvi_ops.tasks.dependency_updates.pull_requests import Git, GitError, GitHub, GitHubError

pytestmark = pytest.mark.integration


def test_packuments_from_verdaccio(verdaccio, demo_app_repo):
    with NpmRegistry(verdaccio.url, timeout_s=10) as npm:
        got = npm.packuments(["next", "@nestjs/core", "eslint", "no-such-package"])
    assert got["next"].dist_tags["latest"] == "15.0.3" and "14.2.35" in got["next"].versions
    assert "14.2.35" in got["next"].time
    assert set(got["@nestjs/core"].versions) == {"10.3.0", "10.4.15", "11.0.1"}
    assert got["eslint"].deprecated == {"8.56.0": "This version is no longer supported."}
    assert got["no-such-package"].found is False and got["no-such-package"].error is None


def test_an_update_that_does_not_resolve_is_reported_and_the_rest_applied(verdaccio, demo_app_repo, tmp_path):
    work = tmp_path / "app"
    subprocess.run(
        ["git", "clone", "--quiet", str(demo_app_repo), str(work)], check=True, env=git_env(tmp_path)
    )
    deps = [
        Dep(
            "npm",
            "backend/package.json",
            "@nestjs/core",
            "10.3.0",
            spec="^10.3.0",
            project="backend",
            ready="10.4.15",
        ),
        Dep("npm", "backend/package.json", "rxjs", "7.8.1", spec="^7.8.1", project="backend", ready="7.99.0"),
    ]
    applied = apply_updates(work, deps, verdaccio.url)
    assert [d.name for d in applied.done] == ["@nestjs/core"]
    assert [d.name for d, _err in applied.failed] == ["rxjs"] and applied.failed[0][1]
    manifest = json.loads((work / "backend/package.json").read_text())
    assert (
        manifest["dependencies"]["@nestjs/core"] == "^10.4.15"
        and manifest["dependencies"]["rxjs"] == "^7.8.1"
    )


def test_tag_lists_are_paged(image_registry):
    image_registry.tags["library/node"] = [f"20.{i}.0-alpine" for i in range(2500)]
    with ImageRegistry(image_registry.url) as reg:
        tags = reg.tags(None, "library/node")
    assert len(tags) == 2500 and len([r for r in image_registry.requests if "tags/list" in r]) == 3
    image_registry.fail_status = 503
    with ImageRegistry(image_registry.url) as reg, pytest.raises(Exception, match="503"):
        reg.tags(None, "library/node")


def test_one_pull_request_per_branch(github_api):
    with GitHub(github_api.url, "gh-test-token", "sanvi/demo-app") as gh:
        first = gh.upsert_pull(head="sanvi-ops/deps-2026-11", base="main", title="t1", body="b1")
        again = gh.upsert_pull(head="sanvi-ops/deps-2026-11", base="main", title="t2", body="b2")
    assert first.created and not again.created and first.number == again.number == 1
    assert github_api.pulls[1]["body"] == "b2"
    with (
        GitHub(github_api.url, "wrong", "sanvi/demo-app") as gh,
        pytest.raises(GitHubError, match="HTTP 401"),
    ):
        gh.upsert_pull(head="x", base="main", title="t", body="b")


def test_git_errors_never_carry_the_token(tmp_path):
    git = Git(tmp_path / "w", token="s3cr3t-token")
    with pytest.raises(GitError) as err:
        git.clone(f"file://{tmp_path}/missing.git", "main")
    assert "s3cr3t-token" not in str(err.value)
    assert "Authorization" in git.env()["GIT_CONFIG_VALUE_0"] and "HOME" in git.env()
    assert "SANVI_OPS_CONFIG" not in git.env()
