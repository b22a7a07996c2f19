"""The results store down during a P1 run: nothing lost, the P1 announced once, in time.

``dag.test()`` of the System Health Check (Airflow's health endpoint says the scheduler is
unhealthy: a P1) with its results store on a PostgreSQL cluster of its own, stopped for the run.
``record`` keeps the run in the spool (an Airflow Variable in the metadata DB) and posts the P1
straight to Slack, marked "not recorded: store down". The store is started again, the watchdog
(or the next run of any DAG) replays the spool: results and incident carry the original
detection time, and the direct post stands for the ``[INCIDENT]`` in the outbox, so nothing is
announced twice.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import LocalPostgres
from tests.fixtures.connections import conn_env
from tests.fixtures.e2e import load_dag
from tests.fixtures.ops_monitor import airflow_health_body
from tests.tasks.system_health_check.test_e2e import health_env  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e

CHECKS = {"checks": ["check_airflow"]}  # the trigger form's pick: only Airflow's own health


@pytest.fixture(scope="module")
def stoppable_pg() -> Iterator[LocalPostgres]:
    # Its own cluster, not tests.fixtures.postgres.start_cluster's template copy: that one's restart
    # after an immediate stop left the second test's replay unable to reach the store (to find out).
    server = LocalPostgres(Path(tempfile.mkdtemp(prefix="sanvi-test-pg-")), password=secrets.token_hex(12))
    server.start()
    yield server
    server.destroy()


def _use_store(server: LocalPostgres, name: str, monkeypatch) -> str:  # type: ignore[no-untyped-def]
    """Point ``sanvi_ops_store`` at database ``name`` of ``server``; returns its DSN. Called again
    after a restart: LocalPostgres picks another port when the old one is still in TIME_WAIT."""
    dsn = server.dsn(name)
    d = psycopg.conninfo.conninfo_to_dict(dsn)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SANVI_OPS_STORE",
        conn_env("postgres", host=d["host"], port=int(d["port"]), login=d["user"], password=d["password"],
                 schema=d["dbname"], extra={"connect_timeout": 2}),
    )  # fmt: skip
    return dsn


@pytest.fixture
def outage_store(health_env, stoppable_pg: LocalPostgres, monkeypatch) -> Iterator[str]:  # noqa: F811
    """The name of a fresh, migrated store database on the stoppable cluster."""
    name = f"store_{secrets.token_hex(3)}"
    stoppable_pg.start()
    stoppable_pg.create_database(name)
    from sanvi_ops.core.store import ResultStore

    ResultStore(_use_store(stoppable_pg, name, monkeypatch)).migrate()
    _clear_spool()  # the metadata DB lives for the session: no entry from another test
    yield name
    _clear_spool()  # nor left for the other DAGs' record tasks to replay into their stores
    stoppable_pg.start()  # whatever the test did, leave it running for the next one


def _clear_spool() -> None:
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(VariableModel).filter(VariableModel.key.like("sanvi_ops_spool.%")).delete(
            synchronize_session=False
        )


def _spool() -> dict[str, dict]:
    from airflow.models.variable import Variable as VariableModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(VariableModel).filter(VariableModel.key.like("sanvi_ops_spool.%")).all()
        return {row.key: json.loads(row.val) for row in rows}


def _p1_posts(slack_api) -> list[dict]:  # type: ignore[no-untyped-def]
    return [m for m in slack_api.messages if "Severity: P1" in m.get("text", "")]


@pytest.mark.parametrize("replayed_by", ["watchdog", "next_run"])
def test_p1_during_a_store_outage_is_announced_once_and_recorded_with_its_time(
    outage_store: str, stoppable_pg: LocalPostgres, slack_api, ops_monitor, replayed_by: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    ops_monitor.health_body = airflow_health_body(scheduler="unhealthy")
    stoppable_pg.stop("immediate")
    before = datetime.now(UTC)
    dr = load_dag("system_health_check").test(
        logical_date=datetime(2026, 12, 2, 9, 0, tzinfo=UTC), run_conf=CHECKS
    )
    after = datetime.now(UTC)
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["record"] == "success" and states["notify"] == "failed", states

    # Announced at once, straight to Slack, saying it is not recorded.
    (p1,) = _p1_posts(slack_api)
    assert p1["text"].startswith("[INCIDENT] (not recorded: store down) - Severity: P1 - Service: airflow")
    assert p1["channel"] == "#sanvi-incidents" and "On-call:" in p1["text"]
    summary = next(m for m in slack_api.messages if m is not p1)
    assert "Not recorded: store down" in json.dumps(summary) and "scheduler" in json.dumps(summary)
    assert len(slack_api.messages) == 2
    (entry,) = _spool().values()
    assert entry["run_id"] == dr.run_id and {p["state"] for p in entry["posts"]} == {"sent"}
    detected = datetime.fromisoformat(entry["detected_at"])
    assert before <= detected <= after

    stoppable_pg.start()
    store_dsn = _use_store(stoppable_pg, outage_store, monkeypatch)
    if replayed_by == "watchdog":
        wd = load_dag("sanvi_ops_watchdog").test()
        assert {ti.task_id: str(ti.state) for ti in wd.get_task_instances()}["flush_outbox"] == "success"
    else:  # the next run of the DAG (any DAG's record replays first), Airflow healthy again
        ops_monitor.health_body = airflow_health_body()
        load_dag("system_health_check").test(
            logical_date=datetime(2026, 12, 3, 9, 0, tzinfo=UTC), run_conf=CHECKS
        )
    assert _spool() == {}

    with psycopg.connect(store_dsn) as conn:
        results = conn.execute(
            "SELECT check_name, status, recorded_at FROM check_results WHERE run_id = %s", (dr.run_id,)
        ).fetchall()
        incident = conn.execute(
            "SELECT id, severity, opened_at, opened_run_id, resolved_run_id FROM incidents "
            "WHERE check_name = 'airflow.scheduler'"
        ).fetchone()
        outbox = dict(
            conn.execute(
                "SELECT dedupe_key, slack_ts FROM notifications WHERE run_id = %s AND sent_at IS NOT NULL",
                (dr.run_id,),
            ).fetchall()
        )
    statuses = {name: status for name, status, _at in results}
    assert statuses["airflow.scheduler"] == "critical"
    assert {at for _n, _s, at in results} == {detected}  # the run keeps its place in time
    incident_id, severity, opened_at, opened_run, resolved_run = incident
    assert severity == "P1" and opened_run == dr.run_id and opened_at == detected  # the original time
    assert outbox[f"incident:{incident_id}"] == p1["ts"]  # the direct post stands for the [INCIDENT]
    assert outbox[f"summary:system_health_check:{dr.run_id}"] == summary["ts"]

    incidents_posted = [m for m in slack_api.messages if m.get("text", "").startswith("[INCIDENT]")]
    assert incidents_posted == [p1], [m["text"][:80] for m in slack_api.messages]
    if replayed_by == "next_run":  # green again: [RESOLVED] in the thread of the direct post
        assert resolved_run is not None
        (resolved,) = [m for m in slack_api.messages if m.get("text", "").startswith("[RESOLVED]")]
        assert resolved["thread_ts"] == p1["ts"] and resolved["channel"] == p1["channel_id"]
