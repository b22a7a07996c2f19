"""Dependency Updates end to end: ``dag.test()`` against the local package index and OSV stand-in.

The index, the advisory source, the results store (PostgreSQL) and Slack are servers on
127.0.0.1; the config (``SANVI_OPS_CONFIG``) points the DAG at them and at requirement files in
a temporary folder. Never the internet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "dependency_updates"


@pytest.fixture
def deps_env(package_index, e2e, tmp_path, monkeypatch):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "base.txt").write_text("gamma==4.2.0\n")
    (app_dir / "requirements.txt").write_text("-r base.txt\nalpha==1.0.0\nBeta_Pkg==0.9.3\n")
    ops = tmp_path / "ops-requirements.txt"
    ops.write_text("epsilon==5.1.0\ndelta==1.0.0\n")

    cfg = shipped_config()
    cfg["tasks"]["dependency_updates"]["settings"] = {
        "index_url": package_index.simple_url,
        "index_api": "simple",
        "advisory_url": package_index.osv_url,
        "app_requirements": [str(app_dir / "requirements.txt")],
        "project_requirements": [str(ops)],
        "timeout_seconds": 5,
        "concurrency": 2,
    }
    cfg_path = tmp_path / "maintenance.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(cfg_path))

    store_dsn = e2e.connect()["store_dsn"]
    return {"store_dsn": store_dsn, "cfg_path": cfg_path, "cfg": cfg}


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def test_updates_listed_vulnerable_pin_opens_and_resolves_incident(deps_env, package_index, slack_api):
    dag = load_dag(DAG_ID)
    dr = dag.test(logical_date=datetime(2026, 11, 24, 11, 0, tzinfo=UTC))
    states = task_states(dr)
    assert states["check_app_requirements"] == "success" and states["check_project_requirements"] == "success"
    assert states["notify"] == "failed", states  # a vulnerable pin is critical: the run is red

    rows = _stored(deps_env["store_dsn"], dr.run_id)
    assert rows["app.dependency[base.txt:gamma]"][0] == "critical"
    assert rows["app.dependency[requirements.txt:alpha]"][0] == "warning"
    assert "major" in rows["app.dependency[requirements.txt:alpha]"][1]
    assert rows["app.dependency[requirements.txt:beta-pkg]"][0] == "ok"
    assert rows["app.requirements[requirements.txt]"][0] == "warning"
    assert rows["app.requirements[base.txt]"][0] == "warning"
    ops = [k for k in rows if k.startswith("ops.")]
    assert any(k.endswith(":delta]") for k in ops) and any(k.startswith("ops.requirements[") for k in ops)
    assert "ready" in next(s for k, (_st, s) in rows.items() if k.endswith(":delta]"))

    incidents = [m["text"] for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
    assert len(incidents) == 1 and "Severity: P3" in incidents[0] and "gamma" in incidents[0], incidents
    assert any("Dependency Updates" in json.dumps(m) for m in slack_api.messages)

    # The advisory is withdrawn (or the pin moved): the next run resolves the incident.
    package_index.state.vulns.clear()
    dr2 = dag.test(logical_date=datetime(2026, 12, 22, 11, 0, tzinfo=UTC))
    assert task_states(dr2)["notify"] == "success"
    assert _stored(deps_env["store_dsn"], dr2.run_id)["app.dependency[base.txt:gamma]"][0] == "ok"
    assert len([m for m in slack_api.messages if m.get("text", "").startswith("[RESOLVED]")]) == 1


def test_index_down_is_an_error_naming_the_index(deps_env, package_index, slack_api):
    package_index.state.fail_status = 503
    dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 24, 11, 0, tzinfo=UTC))
    assert task_states(dr)["notify"] == "failed"
    rows = _stored(deps_env["store_dsn"], dr.run_id)
    status, summary = rows["app.requirements[requirements.txt]"]
    assert status == "error" and package_index.simple_url in summary
    # No result per pin (the index could not be read) except the known-vulnerable one.
    assert [k for k in rows if ".dependency[" in k] == ["app.dependency[base.txt:gamma]"]
