"""Bodies of the Dependency Updates tasks: config in, result dicts out.

One task per set of requirement files — the managed application's (``app``) and this project's
(``ops``) — so an unreadable checkout of one does not hide the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sanvi_ops.airflow_kit.guard import guard
from sanvi_ops.core.config import MaintenanceConfig
from sanvi_ops.core.results import CheckResult, ResultDicts, Status

#: This project's repository (include/sanvi_ops/tasks/dependency_updates/ → four levels up).
REPO_ROOT = Path(__file__).resolve().parents[4]


def _review(
    cfg: MaintenanceConfig, label: str, component: str, files: list[Path], root: Path | None
) -> list[CheckResult]:
    from sanvi_ops.tasks.dependency_updates.dependencies import PackageIndex, Source, review_requirements

    du = cfg.tasks.dependency_updates.settings
    with PackageIndex(
        du.index_url, du.index_api, timeout_s=du.timeout_seconds, concurrency=du.concurrency
    ) as index:
        return review_requirements(
            Source(label=label, component=component, files=tuple(files), root=root),
            index,
            advisory_url=du.advisory_url,
            timeout_s=du.timeout_seconds,
        )


def app_requirements() -> ResultDicts:
    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        paths = [Path(p) for p in cfg.tasks.dependency_updates.settings.app_requirements]
        if not paths:
            return [
                CheckResult(
                    check="app.requirements",
                    status=Status.SKIPPED,
                    summary="nothing to review: tasks.dependency_updates.settings.app_requirements is empty in the maintenance config",
                    component="application",
                )
            ]
        # Check names show the files relative to the folder they share (the app's checkout).
        root = Path(os.path.commonpath([p.parent for p in paths]))
        return _review(cfg, "app", "application", paths, root)

    return guard("application", Status.ERROR, run)


def project_requirements() -> ResultDicts:
    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        paths = [REPO_ROOT / p for p in cfg.tasks.dependency_updates.settings.project_requirements]
        return _review(cfg, "ops", "sanvi-ops", paths, REPO_ROOT)

    return guard("sanvi-ops", Status.ERROR, run)


# --------------------------------------------------------------------------------------------
# The application's repository: review, then update through pull requests
# --------------------------------------------------------------------------------------------

_REPO_KEY = "tasks.dependency_updates.settings.app_repository"


def _not_configured(check: str) -> list[CheckResult]:
    from sanvi_ops.core.results import CONFIG_KEY

    return [
        CheckResult(
            check=check,
            status=Status.SKIPPED,
            summary=f"no application repository: {_REPO_KEY} is not set in the maintenance config",
            component="application",
            details={CONFIG_KEY: _REPO_KEY},
        )
    ]


def app_repository() -> ResultDicts:
    """Clone the application's repository and review its npm, Python and image dependencies."""

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        import tempfile

        from sanvi_ops.tasks.dependency_updates.app_repository import (
            Review,
            advisory_queries,
            attach_advisories,
            dep_result,
            plan,
            review_images,
            review_npm,
            review_python,
            summary_result,
        )
        from sanvi_ops.tasks.dependency_updates.dependencies import PackageIndex, _redact, query_osv
        from sanvi_ops.tasks.dependency_updates.images import ImageRegistry
        from sanvi_ops.tasks.dependency_updates.npm import NpmRegistry
        from sanvi_ops.tasks.dependency_updates.pull_requests import Git, GitError

        du = cfg.tasks.dependency_updates.settings
        repo = du.app_repository
        if repo is None:
            return _not_configured("app.repository")
        with tempfile.TemporaryDirectory(prefix="sanvi-deps-") as tmp:
            git = Git(Path(tmp) / "checkout")
            try:
                git.clone(repo.url, repo.branch)
            except GitError as exc:
                return [
                    CheckResult(
                        "app.repository",
                        Status.ERROR,
                        f"cannot clone {_redact(repo.url)} (branch {repo.branch}): {exc}",
                        component="application",
                    )
                ]
            checkout = git.work
            review = Review()
            with NpmRegistry(
                du.npm_registry_url, timeout_s=du.timeout_seconds, concurrency=du.concurrency
            ) as npm:
                review_npm(checkout, repo.npm_projects, npm, review)
            with PackageIndex(
                du.index_url, du.index_api, timeout_s=du.timeout_seconds, concurrency=du.concurrency
            ) as index:
                review_python(checkout, repo.requirements, index, review)
            with ImageRegistry(du.image_registry_url, timeout_s=du.timeout_seconds) as images:
                review_images(checkout, repo.dockerfiles, images, review)
        results: list[CheckResult] = []
        if du.advisory_url:
            try:
                attach_advisories(
                    review, query_osv(du.advisory_url, advisory_queries(review), timeout_s=du.timeout_seconds)
                )
            except Exception as exc:  # noqa: BLE001 - httpx errors and a wrong shape: the source is unreadable
                results.append(
                    CheckResult(
                        "app.advisories",
                        Status.ERROR,
                        f"advisory source {_redact(du.advisory_url)} could not be read: {exc}",
                        component="application",
                    )
                )
        results.extend(dep_result(d) for d in review.deps)
        results.append(summary_result(review, plan(review.deps), _redact(repo.url)))
        return results

    return guard("application", Status.ERROR, run)


def app_repository_update(review_results: ResultDicts, month: str, run_url: str | None = None) -> ResultDicts:
    """Apply the reviewed routine updates on the month's branch and open (or update) its pull
    request; each security fix on a branch and pull request of its own."""

    def run(cfg: MaintenanceConfig) -> list[CheckResult]:
        from sanvi_ops.tasks.dependency_updates.app_repository import Dep, plan, slug

        du = cfg.tasks.dependency_updates.settings
        if du.app_repository is None:
            return _not_configured("app.pull_request")
        summary = next((r for r in review_results or [] if r.get("check") == "app.repository"), None)
        if summary is None or summary.get("status") in ("error", "skipped"):
            return [
                CheckResult(
                    "app.pull_request",
                    Status.SKIPPED,
                    "nothing to update: the repository review did not run (see app.repository)",
                    component="application",
                )
            ]
        deps = [Dep.from_dict(d) for d in summary.get("details", {}).get("deps", [])]
        p = plan(deps)
        prefix = du.pull_requests.branch_prefix
        out = [_update_branch(cfg, f"{prefix}-{month}", p.routine, p.review, "routine", month, run_url)]
        for dep in p.security:
            out.append(
                _update_branch(
                    cfg,
                    f"{prefix}-{month}-security-{slug(dep.name)}",
                    [dep],
                    [],
                    f"security:{dep.name}",
                    month,
                    run_url,
                )
            )
        return out

    return guard("application", Status.ERROR, run)


def _github(cfg: MaintenanceConfig) -> tuple[str | None, str | None, str | None]:
    """(API base URL, token, why the PR step cannot run)."""
    from sanvi_ops.airflow_kit.connections import ConnectionMissing, get_connection, http_base_url

    pr = cfg.tasks.dependency_updates.settings.pull_requests
    try:
        api_url, _auth = http_base_url(pr.connection_id)
        token = get_connection(pr.connection_id).password or None
    except ConnectionMissing:
        return None, None, f"Airflow connection {pr.connection_id!r} is not defined"
    except ValueError as exc:
        return None, None, str(exc)
    if not pr.repository:
        return api_url, token, "tasks.dependency_updates.settings.pull_requests.repository is not set"
    return api_url, token, None


def _update_branch(
    cfg: MaintenanceConfig,
    branch: str,
    updates: list[Any],
    review: list[Any],
    label: str,
    month: str,
    run_url: str | None,
) -> CheckResult:
    import tempfile

    from sanvi_ops.tasks.dependency_updates.app_repository import apply_updates, pr_body
    from sanvi_ops.tasks.dependency_updates.dependencies import _redact
    from sanvi_ops.tasks.dependency_updates.pull_requests import Git, GitError, GitHub, GitHubError

    du = cfg.tasks.dependency_updates.settings
    repo = du.app_repository
    assert repo is not None
    check = f"app.pull_request[{label}]"
    if not updates:
        return CheckResult(check, Status.OK, f"nothing to update on {branch}", component="application",
                           details={"branch": branch, "review": len(review)})  # fmt: skip
    api_url, token, not_ready = _github(cfg)
    git_token = token if repo.url.startswith("https://") else None
    with tempfile.TemporaryDirectory(prefix="sanvi-deps-") as tmp:
        git = Git(Path(tmp) / "checkout", token=git_token)
        try:
            git.clone(repo.url, repo.branch)
            git.run("checkout", "--quiet", "-B", branch)
            applied = apply_updates(git.work, updates, du.npm_registry_url)
            title = (
                f"Dependency updates {month}"
                if label == "routine"
                else f"Security fix {month}: {updates[0].name} {updates[0].current} → {updates[0].ready}"
            )
            body = pr_body(applied, review, title=title, run_url=run_url)
            if not applied.done:
                return CheckResult(
                    check, Status.WARNING,
                    f"{branch}: none of {len(updates)} updates could be applied "
                    f"({'; '.join(f'{d.name}: {e}' for d, e in applied.failed[:3])})",
                    component="application", details={"branch": branch, "body": body},
                )  # fmt: skip
            git.commit_all(
                f"{title}\n\n"
                + "\n".join(f"{d.ecosystem} {d.name} {d.current} -> {d.ready}" for d in applied.done)
            )
            git.force_push(branch)
        except (GitError, OSError) as exc:
            return CheckResult(check, Status.ERROR, f"{_redact(repo.url)} {branch}: {exc}", component="application",
                               details={"branch": branch})  # fmt: skip
    counts = {eco: sum(1 for d in applied.done if d.ecosystem == eco) for eco in ("npm", "PyPI", "image")}
    what = ", ".join(f"{n} {eco}" for eco, n in counts.items() if n)
    tail = f"{len(applied.done)} updates ({what})"
    if review:
        tail += f"; {len(review)} listed for review"
    if applied.failed:
        tail += f"; {len(applied.failed)} could not be resolved"
    details: dict[str, Any] = {
        "branch": branch,
        "applied": [f"{d.ecosystem} {d.name} {d.current} → {d.ready}" for d in applied.done],
        "failed": [f"{d.name}: {e}" for d, e in applied.failed],
        "review": [f"{d.ecosystem} {d.name} ({d.state})" for d in review],
    }
    if not_ready is not None or api_url is None:
        details["pr_step"] = "not configured"
        return CheckResult(
            check, Status.WARNING,
            f"branch {branch} pushed with {tail}; PR step not configured: {not_ready}",
            component="application", details=details,
        )  # fmt: skip
    try:
        assert du.pull_requests.repository is not None
        with GitHub(api_url, token, du.pull_requests.repository, timeout_s=du.timeout_seconds) as gh:
            pr = gh.upsert_pull(head=branch, base=repo.branch, title=title, body=body)
    except (GitHubError, ValueError) as exc:
        return CheckResult(check, Status.ERROR, f"branch {branch} pushed, pull request failed: {exc}",
                           component="application", details=details)  # fmt: skip
    details.update({"pull_request": pr.url, "number": pr.number, "created": pr.created})
    verb = "opened" if pr.created else "updated"
    return CheckResult(
        check, Status.WARNING, f"pull request #{pr.number} {verb}: {pr.url} — {tail}",
        component="application", details=details,
    )  # fmt: skip
