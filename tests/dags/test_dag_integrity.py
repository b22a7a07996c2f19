"""Every DAG file parses cleanly, cheaply and offline, and carries what the frame promises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from sanvi_ops.core.config import load_config

REPO = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((REPO / "dags").rglob("*.py"))
CADENCES = {"daily", "weekly", "monthly", "quarterly", "annual"}
#: Folder of a cadence under dags/ where the two differ (the annual reviews live in dags/annual/).
FOLDER_OF = {"annually": "annual"}

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as mp:  # the shipped retries, not the suite's (tests/conftest.py)
        mp.delenv("SANVI_OPS_TASK_RETRIES", raising=False)
        return DagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags")


@pytest.fixture(scope="module")
def parse_probe() -> dict:
    """Parse every DAG file in a fresh process with sockets blocked and no connections defined."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.parse_probe"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PARSE_PROBE ")), None)
    assert line, f"parse probe failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return json.loads(line.removeprefix("PARSE_PROBE "))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert dagbag.dags, "no DAGs found"


def test_parsing_is_offline_and_queries_no_database(parse_probe):
    for path, info in parse_probe.items():
        assert info["import_errors"] == {}, path
        assert info["network_attempts"] == [], f"{path} opened a network connection while parsing"
        assert info["db_queries"] == 0, f"{path} queried the metadata database while parsing"
        assert info["dag_ids"], f"{path} defines no DAG"


def _non_guide(cfg):
    """DAGs that are not guide tasks but are declared by a config section (the backup jobs)."""
    from sanvi_ops.core.calendar import non_guide_dags

    return non_guide_dags(cfg)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_dag_file_layout_matches_calendar(path: Path, dagbag):
    cfg = load_config()
    dag_id = path.stem
    if dag_id not in cfg.tasks and dag_id in _non_guide(cfg):
        assert path.parent.name == _non_guide(cfg)[dag_id].folder, f"{path} is filed in the wrong folder"
        assert dag_id in dagbag.dags, f"{path} must define the DAG {dag_id!r} (dag_id = file stem)"
        return
    assert path.parent.name in CADENCES, f"{path} must live under dags/<cadence>/"
    assert dag_id in cfg.tasks, f"{dag_id} is not a task of the guide's calendar"
    cadence = cfg.tasks[dag_id].cadence
    assert FOLDER_OF.get(cadence, cadence) == path.parent.name, f"{path} is filed under the wrong cadence"
    assert dag_id in dagbag.dags, f"{path} must define the DAG {dag_id!r} (dag_id = file stem)"


@pytest.mark.parametrize("dag_id", sorted({p.stem for p in DAG_FILES}))
def test_dag_carries_the_frame(dag_id: str, dagbag):
    cfg = load_config()
    spec = cfg.tasks[dag_id] if dag_id in cfg.tasks else _non_guide(cfg)[dag_id]
    dag = dagbag.dags[dag_id]
    team = cfg.teams[spec.team]
    assert dag.doc_md and dag.doc_md.strip().startswith("#"), "doc_md must be the runbook (module docstring)"
    assert getattr(spec, "cadence", getattr(spec, "tag", None)) in dag.tags
    assert any(t.startswith("team:") for t in dag.tags)
    assert dag.catchup is False
    # One run at a time, except a triggered job whose runs each wait for a person (change_review).
    assert dag.max_active_runs == getattr(spec, "max_active_runs", 1)
    timetable = getattr(dag.timetable, "timetable", dag.timetable)  # AssetOrTimeSchedule: its calendar
    if getattr(spec, "cron", "") is not None:  # a triggered-only job has no timetable summary
        assert timetable.summary == timetable.summary  # serialisable summary exists
    for t in dag.tasks:
        assert t.owner == team.name, f"{dag_id}.{t.task_id} owner"
        assert t.retries >= 2, f"{dag_id}.{t.task_id} needs retries >= 2"
        assert t.retry_exponential_backoff, f"{dag_id}.{t.task_id} needs exponential backoff"
        assert t.execution_timeout is not None and t.execution_timeout <= timedelta(hours=12)
        assert t.on_failure_callback, f"{dag_id}.{t.task_id} has no failure callback"
        assert t.doc_md or t.doc or t.task_id in {"record", "notify"}, f"{dag_id}.{t.task_id} has no doc"


def test_two_years_of_each_dags_real_timetable(dagbag):
    """Walk the scheduler's view of each DAG (its own timetable object) for two years."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from airflow.timetables.base import TimeRestriction

    from tests.core.test_calendar import expected_runs

    cfg = load_config()
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, 23, 59, tzinfo=UTC)
    for dag_id, dag in dagbag.dags.items():
        restriction = TimeRestriction(earliest=start, latest=end, catchup=True)
        # The watchdog (every 15 min), the configuration backup and the incrementals (hourly): two
        # weeks say all (two years of hourly runs are 17,520 timetable calls, most of this test);
        if dag_id in {"sanvi_ops_watchdog", "configuration_backup", "database_backup_incremental"}:
            # its cron covers every hour, a path of Airflow's that needs pendulum times, as the scheduler passes
            import pendulum

            stop = pendulum.instance(start) + timedelta(days=14)
            restriction = TimeRestriction(earliest=pendulum.instance(start), latest=stop, catchup=True)
        runs, last = [], None
        if dag_id not in cfg.tasks and _non_guide(cfg)[dag_id].cron is None:
            assert type(dag.timetable).__name__ == "NullTimetable", dag_id  # triggered only (change_review)
            continue
        # A DAG also triggered by assets (AssetOrTimeSchedule) keeps its calendar in .timetable.
        timetable = getattr(dag.timetable, "timetable", dag.timetable)
        while info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction):
            runs.append(info.run_after)
            last = info.data_interval
        if dag_id not in cfg.tasks:
            from croniter import croniter

            job = _non_guide(cfg)[dag_id]
            it = croniter(job.cron, start.astimezone(ZoneInfo(cfg.timezone)) - timedelta(seconds=1))
            expected = []
            while (nxt := it.get_next(datetime)) <= (restriction.latest or end):
                expected.append(nxt)
            assert [r.timestamp() for r in runs] == [e.timestamp() for e in expected], dag_id
            continue
        spec = cfg.tasks[dag_id]
        assert runs == expected_runs(spec, ZoneInfo(cfg.timezone), start.date(), end.date()), dag_id


#: Every task that puts heavy load on a database (VACUUM, pg_basebackup) or restores a backup into
#: a scratch server; they share the pool of deploy/pools.json (``tasks.database_maintenance.settings.pool``), one at a time.
HEAVY_DB_TASKS = {
    ("database_maintenance", "vacuum_analyze"),
    ("database_backup_full", "take_full_backup"),
    ("database_backup_incremental", "take_incremental_backup"),
    ("backup_testing", "restore_backup"),
    ("dr_testing", "drill"),
}
POOLS_FILE = REPO / "deploy" / "pools.json"


def test_pools_file_is_valid_and_defines_the_pool_the_code_uses():
    pools = json.loads(POOLS_FILE.read_text())
    assert isinstance(pools, dict) and pools, "deploy/pools.json must be a non-empty object"
    for name, pool in pools.items():
        # The fields `airflow pools import` requires (it rejects an entry without them).
        assert isinstance(pool.get("slots"), int) and pool["slots"] >= 1, f"{name}.slots"
        assert isinstance(pool.get("description"), str) and pool["description"].strip(), f"{name}.description"
        assert pool.get("include_deferred", False) is False, f"{name}: a deferred task holds no database"
    assert load_config().tasks.database_maintenance.settings.pool in pools


def test_every_heavy_database_task_runs_in_the_pool(dagbag):
    pool = load_config().tasks.database_maintenance.settings.pool
    for dag_id, task_id in sorted(HEAVY_DB_TASKS):
        task = dagbag.dags[dag_id].get_task(task_id)
        assert task.pool == pool, f"{dag_id}.{task_id} runs in pool {task.pool!r}, not {pool!r}"
        assert task.pool_slots == 1, f"{dag_id}.{task_id}"
    # ...and the list above is complete: nothing else is queued behind them.
    in_pool = {(d.dag_id, t.task_id) for d in dagbag.dags.values() for t in d.tasks if t.pool == pool}
    assert in_pool == HEAVY_DB_TASKS


def test_every_pool_a_task_names_is_defined(dagbag):
    """A task whose pool does not exist is never scheduled: it waits silently."""
    defined = set(json.loads(POOLS_FILE.read_text())) | {"default_pool"}
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert t.pool in defined, f"{dag.dag_id}.{t.task_id}: pool {t.pool!r} is not in deploy/pools.json"


def test_backup_tasks_go_first_when_the_workers_are_busy(dagbag):
    """Every task of the backup jobs outranks every other task (the scheduler queues by priority
    weight): on a first start or after an outage, the backups are not queued behind the reports."""
    from sanvi_ops.airflow_kit.frame import BACKUP_PRIORITY_WEIGHT
    from sanvi_ops.core.calendar import non_guide_dags

    backups = {d for d, job in non_guide_dags(load_config()).items() if job.folder == "backups"}
    assert backups >= {"database_backup_full", "database_backup_incremental", "file_storage_backup"}
    for dag_id in backups:
        for t in dagbag.dags[dag_id].tasks:
            assert (t.priority_weight, _rule(t)) == (BACKUP_PRIORITY_WEIGHT, "absolute"), t
    # the others keep Airflow's default rule: their weight and their downstream tasks' weights
    rest = {
        (dag.dag_id, t.task_id): t.priority_weight
        + sum(d.priority_weight for d in t.get_flat_relatives(upstream=False))
        for dag in dagbag.dags.values()
        if dag.dag_id not in backups
        for t in dag.tasks
    }
    assert {_rule(t) for d in dagbag.dags.values() if d.dag_id not in backups for t in d.tasks} == {
        "downstream"
    }
    assert max(rest.values()) < BACKUP_PRIORITY_WEIGHT, max(rest.items(), key=lambda kv: kv[1])


def _rule(task) -> str:
    return str(getattr(task.weight_rule, "value", task.weight_rule))
