"""Database Maintenance end to end: ``dag.test()`` against the real PostgreSQL fixture (app DB and
results store) and the Slack-compatible server. Kept small: three tables, one run each."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.fixtures.config import shipped_config
from tests.fixtures.e2e import load_dag

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
DAG_ID = "database_maintenance"


@pytest.fixture
def maint_env(e2e, tmp_path, monkeypatch):
    env = e2e.connect(app_db=True)
    app_dsn, store_dsn = env["app_dsn"], env["store_dsn"]
    with psycopg.connect(app_dsn, autocommit=True) as conn:
        for name in ("orders", "line items"):
            conn.execute(
                psycopg.sql.SQL(
                    "CREATE TABLE {} (id int, pad text) WITH (autovacuum_enabled = false)"
                ).format(psycopg.sql.Identifier(name))
            )
            conn.execute(
                psycopg.sql.SQL("INSERT INTO {} SELECT g, 'x' FROM generate_series(1, 3000) g").format(
                    psycopg.sql.Identifier(name)
                )
            )
            conn.execute(
                psycopg.sql.SQL("DELETE FROM {} WHERE id <= 2000").format(psycopg.sql.Identifier(name))
            )
        conn.execute("CREATE TABLE quiet (id int)")
    _wait_dead(app_dsn, "orders", 2000)

    def use_window(window: dict) -> None:
        cfg = shipped_config()
        cfg["tasks"]["database_maintenance"]["settings"]["window"] = window
        if window.get("days"):  # the schedule must fall inside the window (checked at load)
            cfg["tasks"]["database_maintenance"].update(weekday=window["days"][0], time=window["start"])
        path = tmp_path / "maintenance.yaml"
        path.write_text(yaml.safe_dump(cfg))
        monkeypatch.setenv("SANVI_OPS_CONFIG", str(path))

    _ensure_pool()
    return {"app_dsn": app_dsn, "store_dsn": store_dsn, "use_window": use_window}


def _ensure_pool() -> None:
    from airflow.models.pool import Pool

    from sanvi_ops.core.config import load_config

    Pool.create_or_update_pool(
        load_config().tasks.database_maintenance.settings.pool,
        slots=1,
        description="heavy DB work",
        include_deferred=False,
    )


def _wait_dead(dsn: str, table: str, at_least: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = %s", (table,)
            ).fetchone()
        if row and row[0] >= at_least:
            return
        assert time.monotonic() < deadline, "dead tuples never showed in pg_stat_user_tables"
        time.sleep(0.1)


def _stored(store_dsn: str, run_id: str) -> dict[str, tuple[str, str]]:
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute(
            "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s AND run_id = %s",
            (DAG_ID, run_id),
        ).fetchall()
    return {name: (status, summary) for name, status, summary in rows}


def test_vacuum_run_stores_results_and_posts_the_summary(maint_env, slack_api):
    maint_env["use_window"]({"anytime": True})
    dag = load_dag(DAG_ID)
    assert dag.task_dict["vacuum_analyze"].pool == "sanvi_db_heavy"
    dr = dag.test(logical_date=datetime(2026, 11, 25, 4, 0, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    stored = _stored(maint_env["store_dsn"], dr.run_id)
    assert states == {
        "decide_run": "success",  # a manual run inside the (anytime) maintenance window: vacuum
        "approve_product_owner": "skipped",
        "approve_cto": "skipped",
        "vacuum_analyze": "success",
        "record": "success",
        "record_change": "success",  # a standard change (tests/core/test_change_records_e2e.py)
        "request_review": "skipped",  # only emergencies are reviewed (in change_review)
        "notify": "success",
    }, stored

    assert stored["vacuum.table[public.orders]"][0] == "ok"
    assert "→ 0 dead tuples" in stored["vacuum.table[public.orders]"][1]
    assert stored["vacuum.table[public.line items]"][0] == "ok"
    assert "vacuum.table[public.quiet]" not in stored  # needed mode: nothing to do there
    assert (
        "worst: public.orders" in stored["vacuum.run"][1]
        or "worst: public.line items" in stored["vacuum.run"][1]
    )
    with psycopg.connect(maint_env["app_dsn"]) as conn:
        (dead,) = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'"
        ).fetchone()
    assert dead == 0

    posted = [m for m in slack_api.messages if "Database Maintenance" in json.dumps(m)]
    assert len(posted) == 1
    body = json.dumps(posted[0], ensure_ascii=False)
    assert "vacuum.run" in body and "public.orders" in body and "near wraparound: none" in body
    assert psycopg.conninfo.conninfo_to_dict(maint_env["app_dsn"])["password"] not in body


def test_a_manual_run_outside_the_windows_is_a_dry_run_by_default(maint_env, slack_api):
    """Outside the maintenance window and the production deployment window, a run started by hand
    with the default ``dry_run: auto`` changes nothing and asks nobody (the approvals are skipped);
    ``tests/e2e/test_signoff_api.py`` covers ``dry_run: no`` and its approvals."""
    today = datetime.now(UTC).weekday()
    other = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][(today + 3) % 7]
    maint_env["use_window"]({"days": [other], "start": "03:00", "end": "06:00"})
    from sanvi_ops.core.config import clear_config_cache

    path = Path(os.environ["SANVI_OPS_CONFIG"])
    cfg = yaml.safe_load(path.read_text())
    cfg["deployment_windows"]["production"]["regular"] = {"days": [other], "start": "22:00", "end": "23:00"}
    path.write_text(yaml.safe_dump(cfg))
    clear_config_cache()

    dr = load_dag(DAG_ID).test(logical_date=datetime(2026, 11, 26, 4, 0, tzinfo=UTC))
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["approve_cto"] == states["approve_product_owner"] == "skipped", states
    stored = _stored(maint_env["store_dsn"], dr.run_id)
    status, summary = stored["vacuum.run"]
    assert status == "ok" and summary.startswith("dry run:") and "dry run by default" in summary, summary
    assert "dry_run: no" in summary  # says how to ask for a real run
    assert stored["vacuum.table[public.orders]"][0] == "skipped"  # planned, not vacuumed
    with psycopg.connect(maint_env["app_dsn"]) as conn:
        (dead,) = conn.execute(
            "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'"
        ).fetchone()
    assert dead >= 2000  # nothing was vacuumed
    assert any("dry run by default" in json.dumps(m) for m in slack_api.messages)
