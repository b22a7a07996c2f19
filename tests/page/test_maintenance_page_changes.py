"""The Maintenance page's "Changes" section (sanvi_ops.page.changes) against a real results store:
the records of the last 90 days, the user's DAGs only, with the emergency reviews' due dates and
states, and their text escaped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from sanvi_ops.core.change_records import ChangeRecord, ChangeStore
from sanvi_ops.core.config import load_config
from sanvi_ops.core.results import Status
from sanvi_ops.page import load_page, render_page

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
HOSTILE = '"><script>alert(1)</script>'


def _record(dag_id: str, run_id: str, kind: str, ended: dt.datetime, **kw: object) -> ChangeRecord:
    emergency = kind == "emergency"
    fields: dict[str, object] = {
        "dag_id": dag_id,
        "run_id": run_id,
        "environment": "production",
        "change_type": kind,
        "requested_by": "scheduler" if kind == "standard" else "dana",
        "reason": "",
        "decision": "",
        "plan": (),
        "approvals": (),
        "window": "Wed 03:00–06:00 UTC",
        "in_window": kind == "standard",
        "started_at": ended - dt.timedelta(minutes=4),
        "ended_at": ended,
        "status": Status.OK,
        "counts": {"ok": 1},
        "url": f"http://airflow.local/dags/{dag_id}/runs/{run_id}",
        "pir_due_at": ended + dt.timedelta(days=5) if emergency else None,
        "pir_outcome": "pending" if emergency else None,
        **kw,
    }
    return ChangeRecord(**fields)  # type: ignore[arg-type]


def test_the_changes_section_lists_types_reviews_and_escapes_text(make_db: Callable[[str], str]) -> None:
    store = ChangeStore(make_db("store_changes"))
    store.save(_record("database_maintenance", "scheduled__1", "standard", NOW - dt.timedelta(days=1)))
    store.save(_record("database_maintenance", "manual__late", "emergency", NOW - dt.timedelta(days=6)))
    store.save(
        _record(
            "database_maintenance",
            "manual__2",
            "emergency",
            NOW - dt.timedelta(hours=2),
            reason=HOSTILE,
            url="javascript:alert(1)",
        )
    )
    store.save(_record("dr_testing", "manual__dr", "normal", NOW - dt.timedelta(days=2)))
    store.save(_record("database_maintenance", "old", "standard", NOW - dt.timedelta(days=120)))

    cfg = load_config()
    data = load_page(store.dsn, cfg, now=NOW)
    rows = {(c.run_id, c.change_type, c.pir_state) for c in data.changes}
    assert rows == {
        ("scheduled__1", "standard", "not required"),
        ("manual__late", "emergency", "late"),
        ("manual__2", "emergency", "pending"),
        ("manual__dr", "normal", "not required"),
    }  # the 120-day-old one is out of the 90 days
    assert [c.run_id for c in data.changes][0] == "manual__2"  # newest first

    html = render_page(data, user="u", csrf_token="t", may_silence=False)
    assert '<h2 id="changes">Changes (last 90 days: 4, 1 review overdue)</h2>' in html
    assert "1 change review overdue" in html  # the at-a-glance line
    assert "<script>alert(1)" not in html and "&#34;&gt;&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert 'href="http://airflow.local/dags/dr_testing/runs/manual__dr"' in html

    mine = load_page(store.dsn, cfg, now=NOW, readable_dag_ids={"dr_testing"}).changes
    assert [c.run_id for c in mine] == ["manual__dr"]


def test_a_store_without_the_table_shows_no_section_rows(make_db: Callable[[str], str]) -> None:
    from sanvi_ops.core.store import ResultStore

    store = ResultStore(make_db("store_nochanges"))
    with store.connection("drop") as conn:
        conn.execute("DROP TABLE change_records")
    data = load_page(store.dsn, load_config(), now=NOW)
    assert data.changes == [] and not data.problems
    assert "No production change recorded" in render_page(data, user="u", csrf_token="t", may_silence=False)
