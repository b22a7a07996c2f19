"""``make run`` creates the Airflow pool the vacuum task runs in (``airflow pools set``)."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.integration


def test_create_pools_sets_the_vacuum_pool(airflow_db, tmp_path):
    from airflow.models.pool import Pool

    from sanvi_ops.config import DEFAULT_CONFIG_PATH, load_config
    from sanvi_ops.localstack.run import create_pools

    create_pools(os.environ.copy(), tmp_path, DEFAULT_CONFIG_PATH)
    create_pools(os.environ.copy(), tmp_path, DEFAULT_CONFIG_PATH)  # idempotent
    pool = Pool.get_pool(load_config().vacuum.pool)
    assert pool is not None and pool.slots == 1
