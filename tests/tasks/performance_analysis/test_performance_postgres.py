"""The PostgreSQL half of the Performance Analysis against a real PostgreSQL 18 with
pg_stat_statements (the ``pg`` fixture preloads it; each test database runs CREATE EXTENSION)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sanvi_ops.core.results import Status
from sanvi_ops.core.store import ResultStore
from sanvi_ops.tasks.performance_analysis.performance import (
    ENABLE_PG_STAT_STATEMENTS,
    check_database,
    latest_snapshot,
    save_chart,
    save_snapshot,
)

pytestmark = pytest.mark.integration

SLOW = "SELECT count(*) FROM orders WHERE note LIKE %s"


def _by_check(results):
    return {r.check: r for r in results}


@pytest.fixture
def app_db(make_db):
    dsn = make_db("perf")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE orders (id bigint PRIMARY KEY, customer int, note text)")
        conn.execute("CREATE INDEX orders_customer_idx ON orders (customer)")  # never used
        conn.execute("CREATE UNIQUE INDEX orders_note_key ON orders (note)")  # unique: never listed
        conn.execute("INSERT INTO orders SELECT g, g % 100, 'order ' || g FROM generate_series(1, 2000) g")
    return dsn


def _workload(dsn: str, calls: int) -> None:
    # A separate session; its statistics are flushed when it ends.
    with psycopg.connect(dsn) as conn:
        for _ in range(calls):
            conn.execute(SLOW, ["%7%"]).fetchone()


def test_not_installed_is_skipped_with_the_command_that_enables_it(make_db):
    results, snapshot = check_database(make_db("nostats"), None)
    checks = _by_check(results)
    skipped = checks["postgres.pg_stat_statements"]
    assert skipped.status is Status.SKIPPED
    assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in skipped.summary
    assert "shared_preload_libraries" in skipped.summary
    assert skipped.details["enable"] == ENABLE_PG_STAT_STATEMENTS
    assert snapshot is None
    # The rest of the analysis does not depend on it.
    assert {"postgres.cache_hit_ratio", "postgres.connection_pool", "postgres.unused_indexes"} <= set(checks)


def test_findings_on_a_real_database(app_db):
    _workload(app_db, 120)
    results, snapshot = check_database(app_db, None, seq_scan_min_rows=1000, seq_scan_min_scans=50)
    checks = _by_check(results)
    assert all(r.status is not Status.ERROR for r in results), [r.summary for r in results]

    top = checks["postgres.top_queries"]
    assert top.status is Status.OK and top.details["baseline"] == "none"
    ours = [q for q in top.details["by_calls"] if "FROM orders WHERE note LIKE" in q["query"]]
    assert ours and ours[0]["calls"] == 120 and ours[0]["baseline"] == "none"
    assert {"by_total_time", "by_mean_time", "by_calls"} <= set(top.details)
    assert snapshot is not None and any(s.queryid == ours[0]["queryid"] for s in snapshot)

    unused = checks["postgres.unused_indexes"]
    names = [i["index"] for i in unused.details["indexes"]]
    assert unused.status is Status.WARNING and "orders_customer_idx" in names
    assert "orders_note_key" not in names and "orders_pkey" not in names

    seq = checks["postgres.seq_scans"]
    assert seq.status is Status.WARNING
    assert [t["table"] for t in seq.details["tables"]] == ["orders"]
    assert seq.details["tables"][0]["seq_scan"] >= 120

    pool = checks["postgres.connection_pool"]
    assert pool.status is Status.OK and pool.unit == "%" and pool.details["in_use"] >= 1
    assert (
        pool.details["usable"]
        == pool.details["max_connections"] - pool.details["superuser_reserved"] - (pool.details["reserved"])
    )

    hit = checks["postgres.cache_hit_ratio"]
    assert hit.status in (Status.OK, Status.WARNING, Status.CRITICAL) and 0 < hit.observed <= 100


def test_weekly_snapshot_shows_a_regression(app_db, make_db):
    store_dsn = make_db("store")
    ResultStore(store_dsn).migrate()
    week1 = datetime(2026, 11, 17, 10, 30, tzinfo=UTC)
    week2 = week1 + timedelta(days=7)

    _workload(app_db, 100)
    _, snap1 = check_database(app_db, None)
    assert snap1 is not None
    save_snapshot(store_dsn, "sanvi_app_db", "run-1", week1, snap1)
    save_snapshot(store_dsn, "sanvi_app_db", "run-1", week1, snap1)  # a retry UPSERTs

    # The table grows 100-fold during the week: the same statement gets much slower.
    with psycopg.connect(app_db) as conn:
        conn.execute(
            "INSERT INTO orders SELECT g, g % 100, 'order ' || g FROM generate_series(2001, 200000) g"
        )
    _workload(app_db, 100)

    previous = latest_snapshot(store_dsn, "sanvi_app_db", week2, exclude_run_id="run-2")
    assert previous is not None and set(previous) == {s.queryid for s in snap1}
    results, snap2 = check_database(app_db, previous, regression_pct=50, regression_min_calls=50)
    top = _by_check(results)["postgres.top_queries"]
    assert top.status is Status.WARNING, top.summary
    regressed = [q for q in top.details["regressions"] if "FROM orders WHERE note LIKE" in q["query"]]
    assert regressed, top.details["regressions"]
    assert regressed[0]["week_calls"] == 100 and regressed[0]["mean_change_pct"] > 50
    assert "slower than last week" in top.summary

    save_snapshot(store_dsn, "sanvi_app_db", "run-2", week2, snap2 or [])
    # Next week's run sees week 2's snapshot; a re-run of week 2 still sees week 1's.
    assert latest_snapshot(store_dsn, "sanvi_app_db", week2 + timedelta(days=7)) is not None
    again = latest_snapshot(store_dsn, "sanvi_app_db", week2 + timedelta(seconds=1), exclude_run_id="run-2")
    assert again is not None and set(again) == set(previous)
    with psycopg.connect(store_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_statement_snapshots").fetchone()[0] == 2


def test_unreachable_database_is_an_error_without_the_password(pg):
    dsn = pg.dsn("postgres").replace(f"port={pg.port}", "port=1")
    results, snapshot = check_database(dsn, None, timeout_s=2)
    assert [r.status for r in results] == [Status.ERROR]
    assert snapshot is None
    assert pg.password not in results[0].summary


def test_chart_is_kept_per_run(make_db):
    store_dsn = make_db("store")
    ResultStore(store_dsn).migrate()
    save_chart(store_dsn, "performance_analysis", "run-1", b"\x89PNG one")
    save_chart(store_dsn, "performance_analysis", "run-1", b"\x89PNG two")
    with psycopg.connect(store_dsn) as conn:
        rows = conn.execute("SELECT run_id, png FROM performance_charts").fetchall()
    assert rows == [("run-1", b"\x89PNG two")]
