"""The Celery workers' preload (sanvi_ops.airflow_kit.worker_preload, celery_config): what Celery
imports in each worker before it forks covers every import the DAG files make, and a module that
fails to import never stops a worker. The scale-out stack (tests/e2e/test_scaleout.py) runs its
workers with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sanvi_ops.airflow_kit import celery_config, preload

REPO = Path(__file__).resolve().parents[2]

# In a fresh interpreter, as a Celery worker: Airflow's task runtime loaded, then the preload, then
# every DAG file parsed in a forked child (as a task is); each child reports the project modules
# its parse imported that the preload had not.
_PARSE_AFTER_PRELOAD = r"""
import importlib.util, json, os, sys
from pathlib import Path
from airflow.sdk.execution_time import task_runner  # noqa: F401 - loaded in a worker before any task
from sanvi_ops.airflow_kit import worker_preload
out = {"failed": worker_preload.FAILED, "new": {}}
for path in sorted(Path("dags").rglob("*.py")):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = set(sys.modules)
        spec = importlib.util.spec_from_file_location("dag_file", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        new = sorted(m for m in set(sys.modules) - before if m.startswith("sanvi_ops"))
        os.write(write, json.dumps(new).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    out["new"][str(path)] = json.loads(os.read(read, 1 << 20) or b"null")
print(json.dumps(out))
"""


def test_celery_config_is_airflows_own_plus_the_preload() -> None:
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    config = celery_config.CELERY_CONFIG
    assert {k: v for k, v in config.items() if k != "imports"} == DEFAULT_CELERY_CONFIG
    assert config["imports"] == ("sanvi_ops.airflow_kit.worker_preload",)


def test_preloaded_worker_parses_every_dag_file_without_importing_more_of_the_project(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "PYTHONPATH": f"{REPO / 'include'}:{REPO / 'plugins'}:{REPO}",
    }
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_AFTER_PRELOAD],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["failed"] == []
    assert len(out["new"]) >= 19
    assert {path: new for path, new in out["new"].items() if new} == {}, "imported after the preload"


def test_a_module_that_fails_to_import_is_logged_and_the_worker_starts(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(preload, "project_imports", lambda files: ["sanvi_ops.no_such_module"])
    assert preload.preload([]) == ["sanvi_ops.no_such_module"]
    assert "sanvi_ops.no_such_module not imported" in caplog.text


def test_the_dag_files_project_imports_are_read_from_their_source(tmp_path: Path) -> None:
    dag = tmp_path / "dag.py"
    dag.write_text(
        "import os\n"
        "import sanvi_ops.core.results\n"
        "from airflow.sdk import task\n"
        "from sanvi_ops.core import windows\n"
        "from sanvi_ops.core.config import load_config\n"
        "from . import sibling\n"
        "def f():\n"
        "    from sanvi_ops.airflow_kit import publish\n"
    )
    (tmp_path / "broken.py").write_text("from sanvi_ops.core import (\n")
    assert preload.project_imports([dag, tmp_path / "broken.py"]) == [
        "sanvi_ops.core.results",
        "sanvi_ops.core",
        "sanvi_ops.core.windows",
        "sanvi_ops.core.config",
        "sanvi_ops.airflow_kit",
        "sanvi_ops.airflow_kit.publish",
    ]
