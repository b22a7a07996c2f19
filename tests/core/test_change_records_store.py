"""The ``change_records`` table (store migration 020) against the real PostgreSQL fixture."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from sanvi_ops.core.change_records import ApprovalEntry, ChangeRecord, ChangeStore, quarter_evidence
from sanvi_ops.core.results import Status
from sanvi_ops.core.store import StoreError

pytestmark = pytest.mark.integration

T0 = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def _record(run_id: str, kind: str = "normal", ended: dt.datetime = T0) -> ChangeRecord:
    emergency = kind == "emergency"
    return ChangeRecord(
        dag_id="database_maintenance",
        run_id=run_id,
        environment="production",
        change_type=kind,  # type: ignore[arg-type]
        requested_by="dana",
        reason="bloat",
        decision="approved outside the window by Pat (product_owner)",
        plan=("vacuum.run: vacuumed 2 tables",),
        approvals=(ApprovalEntry("product_owner", "approved", "Pat", T0.isoformat(), "go"),)
        if kind == "normal"
        else (),
        window="outside the production deployment window",
        in_window=kind == "standard",
        started_at=ended - dt.timedelta(minutes=5),
        ended_at=ended,
        status=Status.OK,
        counts={"ok": 3},
        url=f"http://airflow.local/dags/database_maintenance/runs/{run_id}",
        pir_due_at=ended + dt.timedelta(days=5) if emergency else None,
        pir_outcome="pending" if emergency else None,
    )


def test_records_round_trip_once_per_run_and_reviews_are_answered_once(make_db) -> None:
    store = ChangeStore(make_db("change_records"))
    store.migrate()
    normal = _record("r1")
    store.save(normal)
    store.save(normal)  # a retried task: still one row
    assert store.get("database_maintenance", "r1") == normal

    emergency = _record("r2", "emergency", T0 + dt.timedelta(hours=1))
    store.save(emergency)
    store.save(_record("r0", "standard", T0 - dt.timedelta(days=100)))  # last quarter
    assert [r.run_id for r in store.changes(since=T0 - dt.timedelta(days=1))] == ["r2", "r1"]

    answered = T0 + dt.timedelta(days=2)
    store.review_answered(
        "database_maintenance", "r2", "done", at=answered, by="Dana", form={"what_happened": "bloat"}
    )
    stored = store.get("database_maintenance", "r2")
    assert stored is not None
    assert (stored.pir_outcome, stored.pir_by, stored.pir_at, dict(stored.pir_form)) == (
        "done",
        "Dana",
        answered,
        {"what_happened": "bloat"},
    )
    # A late retry of the run's record_change never re-opens an answered review.
    store.save(emergency)
    stored = store.get("database_maintenance", "r2")
    assert stored is not None and stored.pir_outcome == "done"

    pack = quarter_evidence(
        store.dsn, T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=9)
    )
    assert pack["counts"] == {"standard": 0, "normal": 1, "emergency": 1} and pack["reviews_late"] == 0
    assert [(r["run_id"], r["pir_state"]) for r in pack["records"]] == [
        ("r2", "done"),
        ("r1", "not required"),
    ]

    with pytest.raises(KeyError, match="no emergency change recorded"):
        store.review_answered("database_maintenance", "r1", "done", at=answered)


def test_the_table_refuses_a_review_on_a_non_emergency_change(make_db) -> None:
    dsn = make_db("change_records_check")
    store = ChangeStore(dsn)
    store.migrate()
    store.save(_record("r1", "standard"))
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE change_records SET pir_due_at = now(), pir_outcome = 'pending'")
    with pytest.raises(StoreError, match="results store \\('x'\\): cannot connect"):
        ChangeStore("postgresql://127.0.0.1:1/none", name="results store ('x')", connect_timeout=1).changes()


class _TI:
    """The two XComs record_change reads: the work task's results, and no approval gate."""

    def __init__(self, results: list[dict]) -> None:
        self.results = results

    def xcom_pull(self, task_ids: str, default: object = None) -> object:
        return self.results if task_ids == "drill" else default


class _Run:
    dag_id, run_id, run_type = "dr_testing", "manual__dr1", "manual"
    triggering_user_name, note, start_date = "dana", "semi-annual DR-site game day", T0


def test_a_dr_site_activation_without_a_gate_is_a_standard_change(make_db, monkeypatch) -> None:
    """record_change in a DAG without an approval gate (dr_testing): the predicate says whether the
    run changed production; a DR-site activation is recorded as a standard (pre-approved) change."""
    from sanvi_ops.airflow_kit import changes, publish
    from sanvi_ops.core.results import CheckResult

    store = ChangeStore(make_db("store_dr_changes"))
    monkeypatch.setattr(publish, "results_store", lambda cfg: store)
    monkeypatch.setattr(publish, "run_url", lambda dag_id, run_id: f"http://airflow.local/{dag_id}/{run_id}")
    when = changes.when_result("dr.scope", scope="dr_site_activation", dry_run=False)

    def scope(name: str, dry_run: bool = False) -> list[dict]:
        details = {"scope": name, "dry_run": dry_run}
        return [CheckResult("dr.scope", Status.OK, f"scope {name}", details=details).to_dict()]

    def run(results: list[dict]) -> dict:
        context = {"ti": _TI(results), "dag_run": _Run(), "params": {}}
        return changes.record_change(["drill"], context, when)

    assert run(scope("database")) == {}  # a database drill restores to scratch: no production change
    assert run(scope("dr_site_activation", dry_run=True)) == {}
    assert store.changes() == []
    recorded = run(scope("dr_site_activation"))
    assert recorded["change_type"] == "standard" and recorded["request"] == {
        "requested_by": "dana",
        "reason": "semi-annual DR-site game day",
    }
    (stored,) = store.changes()
    assert (stored.dag_id, stored.in_window, stored.url) == (
        "dr_testing",
        True,
        "http://airflow.local/dr_testing/manual__dr1",
    )
