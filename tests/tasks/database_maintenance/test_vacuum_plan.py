"""Planning, ordering, the window, the results and the FULL-proof statement: pure logic."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from psycopg import sql

from sanvi_ops.core.calendar import cron_for
from sanvi_ops.core.config import ConfigError, DeploymentWindow, load_config, parse_config
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.database_maintenance import vacuum
from sanvi_ops.tasks.database_maintenance.vacuum import Outcome, RunReport, State, TableStats

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


def test_dry_run_plans_like_needed_or_like_the_list():
    stats = [_t(1, "dirty", n_dead_tup=500, vacuum_threshold=50), _t(2, "clean")]
    assert [t.name for t in vacuum.make_plan(stats, "dry_run").tables] == ["dirty"]
    assert [t.name for t in vacuum.make_plan(stats, "dry_run", ["clean"]).tables] == ["clean"]
    assert vacuum.make_plan(stats, "dry_run").dry_run


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


def test_unknown_tables_are_reported():
    plan = vacuum.make_plan([_t(1, "a")], "tables", ["a", "ghost"])
    res = vacuum.results(plan, RunReport([], 0.0, 10, 2), [])
    assert {r.check: r.status for r in res}["vacuum.table[ghost]"] == Status.WARNING


# ----------------------------------------------------------------------------------- window


def test_window_end_and_text():
    w = DeploymentWindow(days=["wednesday"], start="03:00", end="06:00")
    wed = dt.datetime(2026, 11, 25, 4, 0, tzinfo=dt.UTC)
    assert vacuum.window_end(w, wed, "UTC") == dt.datetime(2026, 11, 25, 6, 0, tzinfo=dt.UTC)
    assert vacuum.window_end(w, wed.replace(hour=7), "UTC") is None
    assert vacuum.window_text(w, "UTC") == "Wednesday 03:00–06:00 UTC"
    night = DeploymentWindow(days=["tuesday"], start="23:00", end="02:00")
    tue = dt.datetime(2026, 11, 24, 23, 30, tzinfo=dt.UTC)
    assert vacuum.window_end(night, tue, "UTC") == dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)
    assert vacuum.window_end(night, tue + dt.timedelta(hours=1), "UTC") == dt.datetime(
        2026, 11, 25, 2, 0, tzinfo=dt.UTC
    )
    berlin = vacuum.window_end(w, dt.datetime(2026, 11, 25, 3, 0, tzinfo=dt.UTC), "Europe/Berlin")
    assert berlin is not None and berlin.astimezone(dt.UTC).hour == 5
    assert vacuum.window_end(DeploymentWindow(anytime=True), wed, "UTC") is None


def test_refusal_is_a_skipped_result_that_says_how_to_override():
    w = DeploymentWindow(days=["wednesday"], start="03:00", end="06:00")
    r = vacuum.refusal(w, "UTC", dt.datetime(2026, 11, 27, 10, 15, tzinfo=dt.UTC))
    assert r.status == Status.SKIPPED and "Friday 10:15 UTC" in r.summary
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
    import yaml

    raw = yaml.safe_load((REPO / "include/config/maintenance.yaml").read_text())
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
