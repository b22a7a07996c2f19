"""``make run`` imports the Airflow pools of deploy/pools.json (``airflow pools import``): the one pool
definition that airflow-init and the Helm migration hook import too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def test_create_pools_imports_the_pools_file(airflow_db, tmp_path):
    from airflow.models.pool import Pool

    from devstack.run import create_pools
    from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, load_config

    create_pools(os.environ.copy(), tmp_path, DEFAULT_CONFIG_PATH)
    create_pools(os.environ.copy(), tmp_path, DEFAULT_CONFIG_PATH)  # idempotent
    name = load_config().tasks.database_maintenance.settings.pool
    wanted = json.loads((REPO / "deploy" / "pools.json").read_text())[name]
    pool = Pool.get_pool(name)
    assert pool is not None
    assert (pool.slots, pool.description) == (wanted["slots"], wanted["description"])


def test_a_config_naming_an_undefined_pool_is_refused_before_airflow_runs(tmp_path):
    from devstack.run import StartupError, create_pools

    cfg = yaml.safe_load((REPO / "include" / "config" / "maintenance.yaml").read_text())
    cfg["tasks"]["database_maintenance"]["settings"]["pool"] = "no_such_pool"
    path = tmp_path / "maintenance.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        StartupError,
        match=r"tasks.database_maintenance.settings.pool 'no_such_pool' .* not defined in .*pools.json",
    ):
        create_pools({}, tmp_path, path)
    assert not (tmp_path / "airflow-pools.log").exists()  # nothing was started
