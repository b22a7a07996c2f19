"""The deadline alert through Airflow's own machinery (not ``dag.test()``, which cannot run one).

The DAG is parsed with its ``DeadlineAlert`` and written to the metadata database as the DAG
processor does; a run is created queued as the scheduler does (Airflow stores its ``Deadline``);
the deadline passes and Airflow's ``Deadline.handle_miss`` queues the callback with the context
it builds; the triggerer's ``CallbackTrigger`` runs it. Our callback must then have stored the
``deadline`` message and delivered it to the Slack server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sanvi_ops.core.store import ResultStore
from tests.fixtures.connections import pg_conn, slack_conn

if TYPE_CHECKING:
    from tests.fixtures.slack import SlackApi

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "sanvi_ops_watchdog"


async def _run_trigger(trigger) -> list:  # type: ignore[no-untyped-def]
    return [event async for event in trigger.run()]


def test_missed_deadline_runs_our_callback_through_airflow(
    airflow_db,
    make_db,
    slack_api: SlackApi,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.deadline import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.triggers.callback import CallbackTrigger
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    store = ResultStore(make_db("deadline"))
    store.migrate()
    monkeypatch.setenv("SANVI_OPS_DEADLINE_ALERTS", "on")
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_OPS_STORE", pg_conn(store.dsn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        slack_conn(slack_api),
    )

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    bundle = next(b for b in manager.get_all_dag_bundles())
    bag = BundleDagBag(
        dag_folder=str(REPO / "dags" / "meta"), bundle_path=REPO / "dags", bundle_name=bundle.name
    )
    assert not bag.import_errors and bag.dags[DAG_ID].deadline, bag.import_errors
    sync_bag_to_db(bag, bundle.name, None)

    run_id = f"manual__deadline_{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    with create_session() as session:
        dag = SerializedDagModel.get_dag(DAG_ID, session=session)
        now = datetime.now(UTC)
        dag_run = dag.create_dagrun(
            run_id=run_id, logical_date=now, data_interval=(now, now), run_after=now,
            run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST,
            state=DagRunState.QUEUED, session=session,
        )  # fmt: skip
        session.flush()
        deadline = session.scalars(select(Deadline).where(Deadline.dagrun_id == dag_run.id)).one()
        # queued_at + execution timeout (10 min) + job_margin (30 min)
        assert deadline.deadline_time - dag_run.queued_at == timedelta(minutes=40)
        deadline.deadline_time = now - timedelta(seconds=1)  # the run is overdue
        deadline.handle_miss(session)
        data = dict(deadline.callback.data)
        session.rollback()  # leave the shared metadata database as it was

    assert data["path"] == "sanvi_ops.airflow_kit.callbacks.on_deadline_missed"
    events = asyncio.run(_run_trigger(CallbackTrigger(data["path"], data["kwargs"])))
    assert events[-1].payload["state"] == "success", events[-1].payload

    (message,) = slack_api.messages
    assert message["text"].startswith(
        ":hourglass: Overdue: Sanvi Ops Watchdog (`sanvi_ops_watchdog`) @devops"
    )
    assert run_id in message["text"] and "has not finished after 40 min" in message["text"]
    (row,) = store.notifications()
    assert (row.kind, row.dedupe_key, row.sent_at is not None) == (
        "deadline",
        f"deadline:{DAG_ID}:{run_id}",
        True,
    )
