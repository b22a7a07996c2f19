"""Bodies of the Dependency Updates tasks: config in, result dicts out.

One task per set of requirement files — the managed application's (``app``) and this project's
(``ops``) — so an unreadable checkout of one does not hide the other.
"""

from __future__ import annotations

import os
from pathlib import Path

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
