"""The Dependency Updates task bodies with the config pointing at the local index.

This project's real requirements.txt / requirements-dev.txt are read (relative paths resolved
against the repository root); the fake index serves a few of their names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sanvi_ops.core.config import clear_config_cache
from sanvi_ops.tasks.dependency_updates import airflow_tasks as dependency_tasks
from tests.fixtures.config import shipped_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def config_at(package_index, tmp_path, monkeypatch):
    def write(**section: object) -> None:
        cfg = shipped_config()
        cfg["tasks"]["dependency_updates"]["settings"] = {
            "index_url": package_index.json_url,
            "index_api": "json",
            **section,
        }
        path = tmp_path / "maintenance.yaml"
        path.write_text(yaml.safe_dump(cfg))
        monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))
        clear_config_cache()

    yield write
    clear_config_cache()


def test_project_requirements_are_read_from_the_repository(config_at, package_index):
    package_index.state.packages["httpx"] = [("0.28.1", False), ("0.28.2", False), ("1.0.0", False)]
    package_index.state.packages["pyyaml"] = [("6.0.3", False)]
    config_at()
    results = {r["check"]: r for r in dependency_tasks.project_requirements()}

    assert {"ops.requirements[requirements.txt]", "ops.requirements[requirements-dev.txt]"} <= set(results)
    httpx = results["ops.dependency[requirements.txt:httpx]"]
    assert httpx["status"] == "warning" and httpx["details"]["ready"] == "0.28.2"
    assert httpx["details"]["latest"] == "1.0.0" and httpx["component"] == "sanvi-ops"
    assert results["ops.dependency[requirements.txt:pyyaml]"]["status"] == "ok"
    assert "not on index" in results["ops.dependency[requirements.txt:apache-airflow]"]["summary"]
    # requirements.txt is included by requirements-dev.txt and listed first: reported once.
    assert not [c for c in results if c.startswith("ops.dependency[requirements-dev.txt:httpx")]
    dev = results["ops.requirements[requirements-dev.txt]"]
    assert dev["details"]["includes"] == ["requirements.txt", "requirements-local.txt"]


def test_app_requirements_empty_is_skipped_and_missing_file_is_an_error(config_at, tmp_path):
    config_at()
    (r,) = dependency_tasks.app_requirements()
    assert r["status"] == "skipped" and "tasks.dependency_updates.settings.app_requirements" in r["summary"]

    config_at(app_requirements=[str(tmp_path / "srv" / "requirements.txt")])
    (r,) = dependency_tasks.app_requirements()
    assert r["status"] == "error" and "cannot read" in r["summary"]
    assert r["check"] == "app.requirements[requirements.txt]"


def test_app_repository_not_set_is_skipped_naming_the_key_and_unreachable_is_an_error(config_at, tmp_path):
    config_at()
    (r,) = dependency_tasks.app_repository()
    assert (
        r["status"] == "skipped"
        and r["details"]["config_key"] == "tasks.dependency_updates.settings.app_repository"
    )

    config_at(app_repository={"url": str(tmp_path / "missing.git"), "npm_projects": ["web"]})
    (r,) = dependency_tasks.app_repository()
    assert r["status"] == "error" and r["check"] == "app.repository" and "missing.git" in r["summary"]
    (u,) = dependency_tasks.app_repository_update([r], "2026-11")
    assert u["status"] == "skipped" and "did not run" in u["summary"]


def test_app_repository_paths_must_stay_inside_the_repository(config_at):
    from sanvi_ops.core.config import ConfigError, load_config

    config_at(app_repository={"url": "/srv/app.git", "dockerfiles": ["../etc/Dockerfile"]})
    with pytest.raises(ConfigError, match=r"app_repository\.dockerfiles"):
        load_config()
