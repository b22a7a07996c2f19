"""Planning, ordering, the window, the results and the FULL-proof statement: pure logic."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest
from psycopg import sql

from sanvi_ops.core.calendar import cron_for
from sanvi_ops.core.config import ConfigError, DeploymentWindow, load_config, parse_config
from sanvi_ops.core.results import Status
from sanvi_ops.core.run_policy import AS_SCHEDULED
from sanvi_ops.tasks.database_maintenance import vacuum
from sanvi_ops.tasks.database_maintenance.vacuum import Outcome, RunReport, State, TableStats
from tests.fixtures.config import shipped_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _t(oid: int, name: str, **kw) -> TableStats:
    return TableStats(oid=oid, schema=kw.pop("schema", "public"), name=name, **kw)


# ------------------------------------------------------------------------------- FULL never


def test_the_vacuum_statement_has_fixed_options_and_quotes_hostile_names():
    hostile = ('s"; VACUUM FULL x; --', "FULL) t; VACUUM (FULL")
    composed = vacuum.vacuum_statement(*hostile)
    # The structure, not a rendering: a constant prefix and one schema-qualified Identifier
    # (quoting itself is libpq's; the integration tests run such names for real).
    assert isinstance(composed, sql.Composed)
    parts = list(composed)
    assert parts[0] == sql.SQL("VACUUM (ANALYZE, SKIP_LOCKED) ")
    assert parts[1] == sql.Identifier(*hostile)
    assert len(parts) == 2


def test_full_is_impossible_by_construction():
    """The options are one constant; no code path adds an option or builds another VACUUM."""
    assert vacuum.VACUUM_OPTIONS == "ANALYZE, SKIP_LOCKED"
    assert "FULL" not in vacuum.VACUUM_OPTIONS.upper() and "FREEZE" not in vacuum.VACUUM_OPTIONS.upper()
    source = (REPO / "include/sanvi_ops/tasks/database_maintenance/vacuum.py").read_text()
    statements = re.findall(r'sql\.SQL\("VACUUM[^"]*"\)', source)
    assert statements == ['sql.SQL("VACUUM (ANALYZE, SKIP_LOCKED) {}")']
    # vacuum_statement takes names only: there is no way to pass an option.
    import inspect

    assert list(inspect.signature(vacuum.vacuum_statement).parameters) == ["schema", "table"]
    for path in (REPO / "include/sanvi_ops/tasks/database_maintenance/sql").glob("*.sql"):
        body = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("--"))
        assert not re.search(r"\bVACUUM\b", body.upper()), path


# -------------------------------------------------------------------------------- planning


def test_need_follows_the_autovacuum_thresholds():
    over = _t(1, "over", n_dead_tup=251, vacuum_threshold=250)
    at = _t(2, "at", n_dead_tup=250, vacuum_threshold=250)
    analyze = _t(3, "analyze", n_mod_since_analyze=1000, analyze_threshold=150)
    old = _t(4, "old", xid_age=120_000_000, freeze_max_age=200_000_000)
    assert over.need(50)[0] > 1 and "251 dead tuples > threshold 250" in over.need(50)[1][0]
    assert at.need(50)[0] == 1 and at.need(50)[1] == []  # equal is not over (autovacuum uses >)
    assert "changes since ANALYZE" in analyze.need(50)[1][0]
    assert old.wraparound_pct == 60 and "xid age 60%" in old.need(50)[1][0]


def test_needed_mode_orders_by_need_then_oldest_maintenance():
    stats = [
        _t(1, "clean", n_dead_tup=10, vacuum_threshold=100),
        _t(2, "bad", n_dead_tup=1000, vacuum_threshold=100),
        _t(3, "worse", n_dead_tup=5000, vacuum_threshold=100),
        _t(4, "tie_recent", n_dead_tup=1000, vacuum_threshold=100, last_vacuum=T0, last_analyze=T0),
        _t(5, "tie_never", n_dead_tup=1000, vacuum_threshold=100, last_analyze=T0),
    ]
    plan = vacuum.make_plan(stats, "needed")
    assert [t.name for t in plan.tables] == ["worse", "bad", "tie_never", "tie_recent"]
    assert plan.considered == 5 and plan.unknown == ()


def test_all_and_tables_modes():
    stats = [_t(1, "a"), _t(2, "b", schema="app"), _t(3, "b", schema="audit")]
    assert len(vacuum.make_plan(stats, "all").tables) == 3
    plan = vacuum.make_plan(stats, "tables", ["a", "app.b", "b", "nope.x"])
    assert sorted(t.qualified for t in plan.tables) == ["app.b", "public.a"]
    assert plan.unknown == ("b", "nope.x")  # a bare name in two schemas is ambiguous
    with pytest.raises(ValueError, match="needs a list"):
        vacuum.make_plan(stats, "tables", [])
    with pytest.raises(ValueError, match="mode must be"):
        vacuum.make_plan(stats, "full")  # type: ignore[arg-type]


def test_a_dry_run_is_a_plan_and_nothing_else():
    """A dry run is the run policy's, not a mode: the plan of the mode, reported as planned."""
    stats = [_t(1, "dirty", n_dead_tup=500, vacuum_threshold=50), _t(2, "clean")]
    plan = vacuum.make_plan(stats)
    assert [t.name for t in plan.tables] == ["dirty"]
    assert [t.name for t in vacuum.make_plan(stats, "tables", ["clean"]).tables] == ["clean"]
    res = vacuum.results(plan, None, stats)
    assert res[0].summary.startswith("dry run: 1 of 2 tables would be vacuumed")
    assert res[1].status == Status.SKIPPED and res[1].details["state"] == "planned"
    with pytest.raises(ValueError, match="mode must be"):
        vacuum.make_plan(stats, "dry_run")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- results


def test_results_name_the_worst_tables_and_wraparound():
    stats = [
        _t(1, "orders", n_dead_tup=90_000, vacuum_threshold=50),
        _t(2, "events", n_dead_tup=40_000, vacuum_threshold=50, xid_age=170_000_000),
        _t(3, "users", n_dead_tup=600, vacuum_threshold=50),
        _t(4, "audit", xid_age=120_000_000),
    ]
    plan = vacuum.make_plan(stats, "needed")
    report = RunReport(
        [
            Outcome(stats[0], State.VACUUMED, dead_before=90_000, dead_after=0, duration_s=1.5),
            Outcome(stats[1], State.LOCKED, dead_before=40_000, error="lock not available"),
            Outcome(stats[2], State.TIMED_OUT, error="statement_timeout (1 s) reached"),
            Outcome(stats[3], State.NOT_RUN, error="did not fit in the run's time box"),
        ],
        elapsed_s=12.0,
        time_box_s=600,
        parallelism=2,
    )
    res = vacuum.results(plan, report, stats, wraparound_warning=50, wraparound_critical=80)
    run = res[0]
    assert run.check == "vacuum.run" and run.status == Status.WARNING  # a table did not fit
    assert "worst: public.orders 90000 → 0; public.events 40000 (locked)" in run.summary
    assert "near wraparound: public.events 85%, public.audit 60%" in run.summary
    by = {r.check: r for r in res}
    assert by["vacuum.wraparound[public.events]"].status == Status.CRITICAL
    assert by["vacuum.wraparound[public.events]"].severity == "P2"
    assert by["vacuum.wraparound[public.audit]"].status == Status.WARNING
    assert "vacuum.wraparound[public.orders]" not in by
    assert by["vacuum.table[public.orders]"].status == Status.OK
    assert by["vacuum.table[public.events]"].status == Status.SKIPPED
    assert by["vacuum.table[public.users]"].status == Status.WARNING
    assert by["vacuum.table[public.audit]"].details["state"] == "not_run"
    assert run.details["counts"] == {"vacuumed": 1, "locked": 1, "timed_out": 1, "not_run": 1}
    for r in res:
        r.to_dict()  # JSON-shaped for XCom and the store


def test_a_vacuumed_table_is_graded_on_its_own_read_after_it_finished():
    """No second read of every table: the worker's read as the table finished replaces the plan's."""
    old = _t(1, "old", n_dead_tup=900, vacuum_threshold=50, xid_age=170_000_000)
    other = _t(2, "other", xid_age=120_000_000)  # not vacuumed: graded on the planning read
    plan = vacuum.make_plan([old, other], "needed")
    assert [t.name for t in plan.tables] == ["old", "other"]
    frozen = dataclasses.replace(old, n_dead_tup=0, xid_age=1_000)
    report = RunReport(
        [
            Outcome(old, State.VACUUMED, dead_before=900, dead_after=0, after=frozen),
            Outcome(other, State.LOCKED, dead_before=0, error="lock not available"),
        ],
        elapsed_s=1.0,
        time_box_s=600,
        parallelism=2,
    )
    by = {r.check: r for r in vacuum.results(plan, report, [old, other])}
    assert "vacuum.wraparound[public.old]" not in by
    assert by["vacuum.wraparound[public.other]"].status == Status.WARNING
    assert "near wraparound: public.other 60%" in by["vacuum.run"].summary


def test_unknown_tables_are_reported():
    plan = vacuum.make_plan([_t(1, "a")], "tables", ["a", "ghost"])
    res = vacuum.results(plan, RunReport([], 0.0, 10, 2), [])
    assert {r.check: r.status for r in res}["vacuum.table[ghost]"] == Status.WARNING


# ----------------------------------------------------------------------------------- window


def test_refusal_is_a_skipped_result_that_says_how_to_override():
    w = DeploymentWindow(days=["wednesday"], start="03:00", end="06:00").in_zone("UTC")
    r = vacuum.refused(AS_SCHEDULED.at_start(dt.datetime(2026, 11, 27, 10, 15, tzinfo=dt.UTC), w))
    assert r.check == "vacuum.run" and r.status == Status.SKIPPED and "Friday 10:15 UTC" in r.summary
    assert "dry_run: no" in r.summary and "approvers" in r.summary


# ----------------------------------------------------------------------------------- config


def test_shipped_config_and_schedule_inside_the_window():
    cfg = load_config()
    vc = cfg.tasks.database_maintenance.settings
    assert vc.parallelism == 2 and vc.pool == "sanvi_db_heavy"
    assert vc.wraparound.warning == 50 and vc.wraparound.critical == 80
    spec = cfg.tasks["database_maintenance"]
    assert cron_for(spec) == "0 4 * * 3"
    scheduled = dt.datetime(2026, 11, 25, spec.time.hour, spec.time.minute, tzinfo=dt.UTC)
    assert vc.window.is_open(scheduled, cfg.timezone), "the scheduled run must fall inside settings.window"
    assert vc.time_box < spec.execution_timeout, "the time box must end before Airflow kills the task"


def test_vacuum_section_defaults_and_errors():

    raw = shipped_config()
    raw["tasks"]["database_maintenance"].pop("settings")
    cfg = parse_config(raw)
    assert (
        cfg.tasks.database_maintenance.settings.parallelism == 2
        and cfg.tasks.database_maintenance.settings.window.days == ("wednesday",)
    )
    raw["tasks"]["database_maintenance"]["settings"] = {
        "parallelism": 0,
        "lock_timeout": "soon",
        "window": {"days": ["wednesday"]},
    }
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    text = str(err.value)
    at = "tasks.database_maintenance.settings"
    assert f"{at}.parallelism" in text and f"{at}.lock_timeout" in text and f"{at}.window" in text
