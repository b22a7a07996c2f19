"""Dependency Updates end to end against the application's repository: ``dag.test()`` with
verdaccio (npm), the image registry stand-in, the PyPI/OSV stand-in, a bare git repository and a
GitHub-API stand-in, all on 127.0.0.1.

Done when (issue 17): the monthly run opens one pull request with the routine npm, Python and
image updates, lists the majors, the security fix gets its own pull request and a P3 incident,
the Slack summary links the pull request, the branch's lockfiles install (``npm ci``), and a
re-run in the same month updates the same pull request.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from devstack.demo_app_repo import DOCKERFILES, NPM_PROJECTS, REQUIREMENTS, git_env
from devstack.verdaccio import minimal_env
from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "dependency_updates"


@pytest.fixture
def app_env(package_index, e2e, verdaccio, demo_app_repo, image_registry, github_api, tmp_path, monkeypatch):
    package_index.state.ecosystem_vulns[("npm", "axios", "1.6.0")] = ["GHSA-demo-axios-ssrf"]
    ops = tmp_path / "ops-requirements.txt"
    ops.write_text("gamma==4.2.0\n")
    package_index.state.vulns.clear()
    # The app repository is modified by the run: each test works on its own copy.
    bare = tmp_path / "app.git"
    subprocess.run(
        ["git", "clone", "--quiet", "--bare", str(demo_app_repo), str(bare)],
        check=True,
        env=git_env(tmp_path),
    )
    cfg = shipped_config()
    cfg["tasks"]["dependency_updates"]["settings"] = {
        "index_url": package_index.simple_url,
        "advisory_url": package_index.osv_url,
        "project_requirements": [str(ops)],
        "npm_registry_url": verdaccio.url,
        "image_registry_url": image_registry.url,
        "app_repository": {
            "url": str(bare),
            "branch": "main",
            "npm_projects": NPM_PROJECTS,
            "dockerfiles": DOCKERFILES,
            "requirements": REQUIREMENTS,
        },
        "pull_requests": {"connection_id": "github_default", "repository": "sanvi/demo-app"},
        "timeout_seconds": 10,
        "concurrency": 4,
    }
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))
    monkeypatch.setenv(
        "AIRFLOW_CONN_GITHUB_DEFAULT",
        json.dumps({"conn_type": "http", "host": github_api.url, "password": "gh-test-token"}),
    )
    e2e.connect()
    return bare


def _results(dr, task_id):
    ti = next(t for t in dr.get_task_instances() if t.task_id == task_id)
    return {r["check"]: r for r in ti.xcom_pull(task_ids=task_id)}


def test_monthly_run_opens_one_pr_with_routine_updates_and_a_security_pr(
    app_env, github_api, verdaccio, slack_api, tmp_path
):
    dag = load_dag(DAG_ID)
    dr = dag.test(logical_date=datetime(2026, 11, 24, 11, 0, tzinfo=UTC))
    states = task_states(dr)
    assert states["check_app_repository"] == "success" and states["update_app_repository"] == "success", (
        states
    )
    assert states["notify"] == "failed"  # the vulnerable axios is critical: the run is red

    review = _results(dr, "check_app_repository")
    assert review["app.dependency[backend/package.json:axios]"]["status"] == "critical"
    assert review["app.dependency[backend/package.json:axios]"]["severity"] == "P3"
    nxt = review["app.dependency[frontend/package.json:next]"]
    assert nxt["details"]["ready"] == "14.2.35" and nxt["details"]["latest"] == "15.0.3"
    assert review["app.dependency[frontend/package.json:react-dom]"]["status"] == "ok"
    assert "deprecated" in review["app.dependency[frontend/package.json:eslint]"]["summary"]
    assert review["app.dependency[frontend/Dockerfile:nginx]"]["details"]["state"] == "floating"
    assert review["app.dependency[frontend/Dockerfile:node]"]["details"]["ready"] == "20.18.1-alpine"
    assert review["app.dependency[tools/requirements.txt:alpha]"]["details"]["ready"] == "1.2.0"

    # One routine PR and one security PR, through the GitHub-compatible API.
    assert [c[0] for c in github_api.calls].count("POST") == 2
    routine = next(p for p in github_api.pulls.values() if p["head"]["ref"] == "sanvi-ops/deps-2026-11")
    body = routine["body"]
    for line in ("`next` | `frontend/package.json` | 14.2.3 → 14.2.35", "`@nestjs/core` | `backend/package.json` | 10.3.0 → 10.4.15",
                 "`alpha` | `tools/requirements.txt` | 1.0.0 → 1.2.0", "`node` | `backend/Dockerfile` | 20.11.0-alpine → 20.18.1-alpine"):  # fmt: skip
        assert line in body, body
    assert "axios" not in body.split("### For review")[0]
    review_part = body.split("### For review")[1]
    assert "major 14.2.3 → 15.0.3" in review_part and "floating tag `latest`" in review_part
    assert "https://www.npmjs.com/package/next/v/14.2.35" in body
    security = next(p for p in github_api.pulls.values() if p["head"]["ref"].endswith("-security-axios"))
    assert "1.6.0 → 1.7.9" in security["body"]

    incidents = [m["text"] for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
    assert any("axios" in t and "P3" in t for t in incidents), incidents
    assert any("https://github.example/sanvi/demo-app/pull/1" in json.dumps(m) for m in slack_api.messages)

    # The PR branch's lockfiles install from the registry.
    work = tmp_path / "pr"
    env = git_env(tmp_path)
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", "sanvi-ops/deps-2026-11", str(app_env), str(work)],
        check=True,
        env=env,
    )
    for project in NPM_PROJECTS:
        proc = subprocess.run(["npm", "ci", "--ignore-scripts", f"--registry={verdaccio.url}"], cwd=work / project,
                              env=minimal_env(tmp_path), capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
    lock = json.loads((work / "frontend/package-lock.json").read_text())
    assert lock["packages"]["node_modules/next"]["version"] == "14.2.35"
    assert json.loads((work / "frontend/package.json").read_text())["devDependencies"]["eslint"] == "~8.57.0"
    assert "alpha==1.2.0" in (work / "tools/requirements.txt").read_text()

    # Re-run in the same month: the same pull requests are updated (PATCH), none opened.
    dr2 = dag.test(logical_date=datetime(2026, 11, 25, 11, 0, tzinfo=UTC))
    assert task_states(dr2)["update_app_repository"] == "success"
    assert [c[0] for c in github_api.calls].count("POST") == 2
    assert [c[0] for c in github_api.calls].count("PATCH") == 2
    assert len(github_api.pulls) == 2
