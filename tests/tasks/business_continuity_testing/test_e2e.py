"""Business Continuity Testing end to end: ``dag.test()`` against servers on 127.0.0.1.

The results store holds a year of recovery tests (the DR-site activation never ran, one database
drill over the 60-minute objective). The approvals and the two drills' triggers are marked done
(HITL answers and a triggered DR Testing run do not happen in ``dag.test()``: the DR Testing
DAG has its own e2e test); the drills' outcomes are put in the store under the run ids the game
day gives them, as the DR Testing runs would record them. ``record_game_day`` reads them back.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import ResultStore
from sanvi_ops.tasks.business_continuity_testing import continuity
from tests.fixtures.e2e import load_dag, task_states

pytestmark = pytest.mark.e2e

DAG_ID = "business_continuity_testing"
LOGICAL = datetime(2027, 5, 27, 11, tzinfo=UTC)  # May, 4th Thursday
BUCKET = "sanvi-machinery-audit"


def _test(conn, run_id: str, kind: str, at: datetime, rto_min: float, status: str = "ok") -> None:
    conn.execute(
        "INSERT INTO recovery_tests (dag_id, run_id, kind, started_at, status, rto_seconds) VALUES (%s, %s, %s, %s, %s, %s)",
        (
            "dr_testing" if kind.startswith("dr_") else "backup_testing",
            run_id,
            kind,
            at,
            status,
            rto_min * 60,
        ),
    )


def game_day_run_id(_run_id: str, scope: str) -> str:
    """``dag.test()`` names its run after the wall clock: the drills get a fixed name instead."""
    return f"game-day__{scope}"


def test_year_of_drills_and_the_game_day(e2e, boto_client, slack_api, monkeypatch) -> None:
    monkeypatch.setattr(continuity, "game_day_run_id", game_day_run_id)
    env = e2e.connect(aws=True)
    s3 = boto_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    store = ResultStore(env["store_dsn"])
    store.migrate()
    start = datetime(2026, 6, 5, 10, 30, tzinfo=UTC)
    with psycopg.connect(env["store_dsn"]) as conn:
        for week in range(50):
            _test(conn, f"restore-{week}", "restore_test", start + timedelta(weeks=week), 12)
        for month in range(11):
            _test(
                conn,
                f"db-{month}",
                "dr_database",
                start + timedelta(days=30 * month),
                75 if month == 3 else 30,
            )
        _test(conn, "full-1", "dr_full_system", datetime(2026, 10, 6, 11, tzinfo=UTC), 45)
        # the game day's drills, as the triggered DR Testing runs record them
        _test(conn, game_day_run_id("", "full_system"), "dr_full_system", LOGICAL + timedelta(hours=1), 41)
        _test(
            conn,
            game_day_run_id("", "dr_site_activation"),
            "dr_site_activation",
            LOGICAL + timedelta(hours=2),
            52,
        )
    store.save_results(
        "dr_testing",
        game_day_run_id("", "full_system"),
        LOGICAL,
        [CheckResult("dr.rto", Status.OK, "41 min"), CheckResult("dr.rpo", Status.OK, "5 min")],
    )
    store.save_results(
        "dr_testing",
        game_day_run_id("", "dr_site_activation"),
        LOGICAL,
        [CheckResult("dr.rto", Status.OK, "52 min"), CheckResult("dr.dns", Status.WARNING, "TTL 300 s")],
    )

    dr = load_dag(DAG_ID).test(
        logical_date=LOGICAL, mark_success_pattern="approve_.*|check_approval|run_drill_.*|sign_off"
    )
    assert all(s == "success" for s in task_states(dr).values()), task_states(dr)

    with psycopg.connect(env["store_dsn"]) as conn:
        rows = {
            name: (status, summary)
            for name, status, summary in conn.execute(
                "SELECT check_name, status, summary FROM check_results WHERE dag_id = %s", (DAG_ID,)
            ).fetchall()
        }
    assert rows["continuity.drills[restore_test]"][0] == "ok"
    assert rows["continuity.drills[dr_database]"][0] == "warning"  # 75 min > 60
    assert rows["continuity.drills[dr_site_activation]"][0] == "warning"  # none before the game day
    assert rows["continuity.game_day[full_system]"][0] == "ok"
    assert "recovery time 41.0 min" in rows["continuity.game_day[full_system]"][1]
    assert rows["continuity.game_day[dr_site_activation]"][0] == "warning"  # its DNS warning carries over
    assert rows["review.report"][0] == "ok"
    report = json.loads(
        s3.get_object(Bucket=BUCKET, Key="annual-reviews/business_continuity_testing/2027/report.json")[
            "Body"
        ].read()
    )
    assert {r["task_id"] for r in report["results"]} == {"review_drills", "record_game_day"}
