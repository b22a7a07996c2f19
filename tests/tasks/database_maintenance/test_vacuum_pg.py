"""VACUUM ANALYZE against the real PostgreSQL fixture: dead tuples drop, and every fault is a
clear per-table result (locked → skipped promptly, statement timeout, dropped after planning,
hostile names, time box), and a dry run changes nothing."""

from __future__ import annotations

import datetime as dt
import time

import psycopg
import pytest
from psycopg import sql

from sanvi_ops.core.config import DeploymentWindow, load_config
from sanvi_ops.core.results import Status
from sanvi_ops.core.run_policy import RunPolicy
from sanvi_ops.tasks.database_maintenance import vacuum
from sanvi_ops.tasks.database_maintenance.airflow_tasks import plan_and_vacuum

pytestmark = pytest.mark.integration

DRY_RUN = RunPolicy("dry_run", "dry run asked for (dry_run: yes)", scheduled=False)
#: A manual run the approvers let change things outside the window.
APPROVED = RunPolicy("change", "approved outside the window", scheduled=False, outside_window_ok=True)

HOSTILE = [
    ("public", "Robert'); DROP TABLE students;--"),
    ('we"ird sch', "ta ble ✓ ünï"),
    ("public", "FULL"),
]


def _ident(schema: str, table: str) -> sql.Identifier:
    return sql.Identifier(schema, table)


def _make_table(dsn: str, schema: str, table: str, rows: int, delete: int) -> None:
    """A table with ``rows`` rows of which ``delete`` are deleted (dead); autovacuum off for it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id int PRIMARY KEY, pad text) WITH (autovacuum_enabled = false)"
            ).format(_ident(schema, table))
        )
        conn.execute(
            sql.SQL("INSERT INTO {} SELECT g, repeat('x', 50) FROM generate_series(1, %s) g").format(
                _ident(schema, table)
            ),
            (rows,),
        )
        if delete:
            conn.execute(sql.SQL("DELETE FROM {} WHERE id <= %s").format(_ident(schema, table)), (delete,))


def _stat(dsn: str, schema: str, table: str) -> dict:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT n_dead_tup, last_vacuum, last_analyze, vacuum_count, analyze_count, n_mod_since_analyze "
            "FROM pg_stat_all_tables WHERE schemaname = %s AND relname = %s",
            (schema, table),
        ).fetchone()
    assert row is not None, (schema, table)
    return dict(
        zip(
            (
                "n_dead_tup",
                "last_vacuum",
                "last_analyze",
                "vacuum_count",
                "analyze_count",
                "n_mod_since_analyze",
            ),
            row,
            strict=True,
        )
    )


def _wait_dead(dsn: str, schema: str, table: str, at_least: int, column: str = "n_dead_tup") -> None:
    """Backends flush their table counters when they exit; wait for that, boundedly."""
    deadline = time.monotonic() + 15
    while _stat(dsn, schema, table)[column] < at_least:
        assert time.monotonic() < deadline, f"{schema}.{table}: dead tuples never showed in pg_stat"
        time.sleep(0.1)


def _stats(dsn: str) -> list[vacuum.TableStats]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return vacuum.read_stats(conn)


def _by_name(items, name):
    return next(i for i in items if (i.table.name if hasattr(i, "table") else i.name) == name)


def test_needed_tables_are_vacuumed_and_dead_tuples_drop(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "dirty", 2000, 1500)
    _make_table(dsn, "public", "clean", 2000, 0)
    _wait_dead(dsn, "public", "clean", 2000, column="n_mod_since_analyze")  # counted before ANALYZE resets it
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE public.clean")
    _wait_dead(dsn, "public", "dirty", 1500)

    stats = _stats(dsn)
    plan = vacuum.make_plan(stats, "needed")
    assert [t.name for t in plan.tables] == ["dirty"]
    assert any("dead tuples" in r for r in plan.reasons[plan.tables[0].oid])

    report = vacuum.vacuum_tables(dsn, plan.tables, parallelism=2, lock_timeout_s=2, time_box_s=60)
    (outcome,) = report.outcomes
    assert outcome.state == vacuum.State.VACUUMED
    assert outcome.dead_before is not None and outcome.dead_before >= 1500
    assert outcome.dead_after == 0
    assert outcome.after is not None and outcome.after.last_vacuum is not None  # read as it finished
    after = _stat(dsn, "public", "dirty")
    assert after["n_dead_tup"] == 0 and after["vacuum_count"] == 1 and after["analyze_count"] == 1

    res = vacuum.results(plan, report, _stats(dsn))
    assert res[0].check == "vacuum.run" and res[0].status == Status.OK
    assert "public.dirty" in res[0].summary
    table = next(r for r in res if r.check == "vacuum.table[public.dirty]")
    assert table.status == Status.OK and table.details["dead_after"] == 0


def test_all_mode_runs_every_table_in_parallel(make_db):
    dsn = make_db("vac")
    for i in range(5):
        _make_table(dsn, "public", f"t{i}", 200, 100)
    plan = vacuum.make_plan(_stats(dsn), "all")
    assert len(plan.tables) == 5
    report = vacuum.vacuum_tables(dsn, plan.tables, parallelism=3, time_box_s=60)
    assert {o.state for o in report.outcomes} == {vacuum.State.VACUUMED}
    assert [o.table.name for o in report.outcomes] == [t.name for t in plan.tables]
    assert [o.dead_after for o in report.outcomes] == [0] * 5  # every table's read after it


def test_locked_table_is_skipped_not_waited_on(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "busy", 500, 400)
    _make_table(dsn, "public", "free", 500, 400)
    plan = vacuum.make_plan(_stats(dsn), "all")
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE public.busy IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        started = time.monotonic()
        report = vacuum.vacuum_tables(dsn, plan.tables, parallelism=1, lock_timeout_s=30, time_box_s=120)
        took = time.monotonic() - started
        holder.rollback()
    assert took < 15, f"the run waited on the lock ({took:.1f} s)"
    busy, free = _by_name(report.outcomes, "busy"), _by_name(report.outcomes, "free")
    assert busy.state == vacuum.State.LOCKED and "lock not available" in busy.error
    assert free.state == vacuum.State.VACUUMED
    res = {r.check: r for r in vacuum.results(plan, report, [])}
    assert res["vacuum.table[public.busy]"].status == Status.SKIPPED
    assert "not waited on" in res["vacuum.table[public.busy]"].summary


def test_statement_timeout_is_a_timed_out_result(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "big", 200_000, 200_000)
    plan = vacuum.make_plan(_stats(dsn), "all")
    report = vacuum.vacuum_tables(dsn, plan.tables, statement_timeout_s=0.001, time_box_s=120)
    (outcome,) = report.outcomes
    assert outcome.state == vacuum.State.TIMED_OUT, outcome
    assert "statement_timeout" in outcome.error
    res = {r.check: r for r in vacuum.results(plan, report, [])}
    assert res["vacuum.table[public.big]"].status == Status.WARNING


def test_table_dropped_after_planning(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "doomed", 100, 50)
    _make_table(dsn, "public", "stays", 100, 50)
    plan = vacuum.make_plan(_stats(dsn), "all")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE public.doomed")
    report = vacuum.vacuum_tables(dsn, plan.tables, time_box_s=60)
    doomed = _by_name(report.outcomes, "doomed")
    assert doomed.state == vacuum.State.DROPPED and "dropped" in doomed.error
    assert _by_name(report.outcomes, "stays").state == vacuum.State.VACUUMED
    res = {r.check: r for r in vacuum.results(plan, report, [])}
    assert res["vacuum.table[public.doomed]"].status == Status.SKIPPED


def test_dropped_while_running_is_reported_too(make_db):
    """Dropped after the dead-tuple read but before VACUUM: VACUUM itself says undefined table."""
    dsn = make_db("vac")
    _make_table(dsn, "public", "gone", 100, 50)
    (table,) = vacuum.make_plan(_stats(dsn), "all").tables
    renamed = vacuum.TableStats(oid=table.oid, schema="public", name="no such table")
    report = vacuum.vacuum_tables(dsn, [renamed], time_box_s=60)
    assert report.outcomes[0].state == vacuum.State.DROPPED


def test_hostile_names_are_quoted_never_injected(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "students", 10, 0)
    for schema, table in HOSTILE:
        _make_table(dsn, schema, table, 300, 200)
    for schema, table in HOSTILE:
        _wait_dead(dsn, schema, table, 200)
    plan = vacuum.make_plan(_stats(dsn), "tables", [f"{s}.{t}" for s, t in HOSTILE])
    assert plan.unknown == () and len(plan.tables) == 3
    report = vacuum.vacuum_tables(dsn, plan.tables, time_box_s=60)
    assert {o.state for o in report.outcomes} == {vacuum.State.VACUUMED}, report.outcomes
    for schema, table in HOSTILE:
        assert _stat(dsn, schema, table)["n_dead_tup"] == 0
    assert _stat(dsn, "public", "students")["vacuum_count"] == 0  # untouched, and still there
    checks = {r.check for r in vacuum.results(plan, report, [])}
    assert 'vacuum.table[we"ird sch.ta ble ✓ ünï]' in checks


def _cfg(window: DeploymentWindow, **vacuum_overrides):
    return load_config().with_settings("database_maintenance", window=window, **vacuum_overrides)


def test_dry_run_changes_nothing(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "dirty", 1000, 800)
    _wait_dead(dsn, "public", "dirty", 800)
    before = _stat(dsn, "public", "dirty")
    closed = DeploymentWindow(days=["monday"], start="00:00", end="00:01")
    now = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)  # a Wednesday noon: outside; a dry run may
    res = plan_and_vacuum(_cfg(closed), dsn, {"mode": "needed"}, now, DRY_RUN)
    time.sleep(0.5)
    assert _stat(dsn, "public", "dirty") == before
    run = res[0]
    assert run.check == "vacuum.run" and "dry run" in run.summary and "nothing was changed" in run.summary
    table = next(r for r in res if r.check == "vacuum.table[public.dirty]")
    assert table.status == Status.SKIPPED and "would VACUUM ANALYZE" in table.summary


def test_outside_the_window_refuses_unless_forced(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "dirty", 1000, 800)
    _wait_dead(dsn, "public", "dirty", 800)
    before = _stat(dsn, "public", "dirty")
    cfg = _cfg(DeploymentWindow(days=["wednesday"], start="03:00", end="06:00"))
    friday = dt.datetime(2026, 11, 27, 4, 30, tzinfo=dt.UTC)
    (refused,) = plan_and_vacuum(cfg, dsn, {"mode": "needed"}, friday)
    assert refused.status == Status.SKIPPED and "outside the maintenance window" in refused.summary
    assert "Wed 03:00–06:00 UTC" in refused.summary and "dry_run: no" in refused.summary
    assert _stat(dsn, "public", "dirty") == before

    forced = plan_and_vacuum(cfg, dsn, {"mode": "needed"}, friday, APPROVED)
    assert next(r for r in forced if r.check == "vacuum.table[public.dirty]").status == Status.OK
    assert _stat(dsn, "public", "dirty")["n_dead_tup"] == 0


def test_time_box_reports_tables_that_did_not_fit(make_db):
    dsn = make_db("vac")
    for i in range(3):
        _make_table(dsn, "public", f"t{i}", 100, 50)
    plan = vacuum.make_plan(_stats(dsn), "all")
    report = vacuum.vacuum_tables(dsn, plan.tables, time_box_s=0)
    assert {o.state for o in report.outcomes} == {vacuum.State.NOT_RUN}
    res = vacuum.results(plan, report, [])
    assert res[0].status == Status.WARNING and "3 not run" in res[0].summary
    assert sum(1 for r in res if r.check.startswith("vacuum.table[") and r.status == Status.WARNING) == 3


def test_inside_the_window_the_time_box_ends_with_the_window(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "t", 100, 50)
    cfg = _cfg(DeploymentWindow(days=["wednesday"], start="03:00", end="06:00"))
    almost_closed = dt.datetime(2026, 11, 25, 5, 59, 59, 900000, tzinfo=dt.UTC)
    res = plan_and_vacuum(cfg, dsn, {"mode": "all"}, almost_closed)
    assert next(r for r in res if r.check == "vacuum.table[public.t]").details["state"] == "not_run"


def test_wraparound_age_is_graded_from_the_table_setting(make_db):
    """age(relfrozenxid) against a per-table autovacuum_freeze_max_age of 100000: burn 60000 xids."""
    dsn = make_db("vac")
    _make_table(dsn, "public", "old", 10, 0)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE public.old SET (autovacuum_freeze_max_age = 100000)")
        conn.execute("SET synchronous_commit = off")
        conn.execute(
            "CREATE PROCEDURE burn(n int) LANGUAGE plpgsql AS $$ BEGIN "
            "FOR i IN 1..n LOOP PERFORM pg_current_xact_id(); COMMIT; END LOOP; END $$"
        )
        conn.execute("CALL burn(60000)")
    stats = _stats(dsn)
    old = next(t for t in stats if t.name == "old")
    assert old.freeze_max_age == 100000 and 55 < old.wraparound_pct < 80
    plan = vacuum.make_plan(stats)
    assert "old" in [t.name for t in plan.tables]  # xid age alone makes it needed
    res = {r.check: r for r in vacuum.results(plan, None, stats)}
    wrap = res["vacuum.wraparound[public.old]"]
    assert wrap.status == Status.WARNING and wrap.thresholds == {"warning": 50.0, "critical": 80.0}
    assert "near wraparound: public.old" in res["vacuum.run"].summary


def test_every_vacuum_the_server_saw_was_plain(make_db):
    """pg_stat_statements records every statement the run sent: none is VACUUM FULL."""
    dsn = make_db("vac")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
    for schema, table in HOSTILE:
        _make_table(dsn, schema, table, 50, 10)
    cfg = _cfg(DeploymentWindow(anytime=True))
    res = plan_and_vacuum(cfg, dsn, {"mode": "all"}, dt.datetime.now(dt.UTC))
    assert sum(1 for r in res if r.check.startswith("vacuum.table[") and r.status == Status.OK) == 3
    with psycopg.connect(dsn, autocommit=True) as conn:
        seen = [
            q
            for (q,) in conn.execute(
                "SELECT query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = current_database() AND query ~* '^\\s*vacuum'"
            )
        ]
    assert len(seen) == 3, seen
    for q in seen:
        assert q.startswith('VACUUM (ANALYZE, SKIP_LOCKED) "'), q


def test_a_role_without_the_right_to_vacuum_gets_a_clear_error(make_db, pg):
    """The server skips such a table with a WARNING and succeeds: that must not read as vacuumed."""
    dsn = make_db("vac")
    _make_table(dsn, "public", "owned_by_postgres", 100, 50)
    role, password = f"h6_weak_{time.monotonic_ns()}", "weak-pw-123"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
    weak = pg.dsn(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"], user=role, password=password)
    plan = vacuum.make_plan(_stats(weak), "all")
    assert [t.name for t in plan.tables] == ["owned_by_postgres"]
    (outcome,) = vacuum.vacuum_tables(weak, plan.tables, time_box_s=60).outcomes
    assert outcome.state == vacuum.State.FAILED and "pg_maintain" in outcome.error, outcome
    assert _stat(dsn, "public", "owned_by_postgres")["vacuum_count"] == 0


def test_after_a_timeout_the_next_table_gets_a_fresh_session(make_db):
    dsn = make_db("vac")
    _make_table(dsn, "public", "big", 200_000, 200_000)
    _make_table(dsn, "public", "small", 100, 50)
    tables = {t.name: t for t in _stats(dsn)}
    worker = vacuum._Worker(dsn, lock_timeout_s=5)
    try:
        assert worker.vacuum(tables["big"], statement_timeout_s=0.001).state == vacuum.State.TIMED_OUT
        assert worker.vacuum(tables["small"], statement_timeout_s=30).state == vacuum.State.VACUUMED
    finally:
        worker.close()
