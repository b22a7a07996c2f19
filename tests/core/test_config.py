"""The maintenance config: the shipped file says what the guide says, and a bad file fails with
the key path and the reason (every problem at once), never silently."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from sanvi_ops.core import config
from sanvi_ops.core.config import (
    DEFAULT_CONFIG_PATH,
    GUIDE_TASKS,
    ConfigError,
    MaintenanceConfig,
    OnCall,
    TaskSpec,
    Weekday,
    format_duration,
    load_config,
    parse_config,
)

pytestmark = pytest.mark.unit

UTC = dt.UTC


@pytest.fixture(scope="module")
def shipped() -> MaintenanceConfig:
    return load_config(DEFAULT_CONFIG_PATH)


@pytest.fixture(scope="module")
def raw_text() -> str:
    return DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")


@pytest.fixture
def raw(raw_text: str) -> dict[str, Any]:
    """A fresh, mutable copy of the shipped file's data."""
    data = yaml.safe_load(raw_text)
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def write(tmp_path: Path, data: object, name: str = "maintenance.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, data: object) -> list[str]:
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, data))
    return excinfo.value.problems


# ---------------------------------------------------------------------------------------------
# The shipped file is the guide
# ---------------------------------------------------------------------------------------------


def test_shipped_file_loads_with_every_guide_task(shipped: MaintenanceConfig) -> None:
    assert shipped.timezone == "UTC"
    assert list(shipped.tasks) == list(GUIDE_TASKS)
    assert len(shipped.tasks) == 20  # the guide's 16 tasks and its 4 annual reviews
    for task_id, task in shipped.tasks.items():
        assert task.cadence == GUIDE_TASKS[task_id]
        assert task.team in shipped.teams


def test_shipped_calendar_matches_the_guide_tables(shipped: MaintenanceConfig) -> None:
    tasks = shipped.tasks
    daily = {t: tasks[t].time for t in ("system_health_check", "log_review", "backup_verification")}
    assert daily == {
        "system_health_check": dt.time(9, 0),
        "log_review": dt.time(9, 30),
        "backup_verification": dt.time(10, 0),
    }
    weekly = {
        "security_patch_review": Weekday.MONDAY,
        "performance_analysis": Weekday.TUESDAY,
        "database_maintenance": Weekday.WEDNESDAY,
        "disk_space_check": Weekday.THURSDAY,
        "backup_testing": Weekday.FRIDAY,
    }
    assert {t: tasks[t].weekday for t in weekly} == weekly
    monthly = {"dr_testing": 1, "security_scan": 2, "capacity_planning": 3, "dependency_updates": 4}
    assert {t: tasks[t].week for t in monthly} == monthly
    for task_id in ("penetration_testing", "architecture_review", "cost_optimization", "compliance_audit"):
        assert tasks[task_id].month_of_quarter in {1, 2, 3}
    owners = {task_id: shipped.team_of(task_id).name for task_id in tasks}
    assert owners["system_health_check"] == "DevOps"
    assert owners["security_patch_review"] == "Security"
    assert owners["database_maintenance"] == "DBA"
    assert owners["dr_testing"] == "DevOps & DBA"
    assert owners["capacity_planning"] == "DevOps & Product"
    assert owners["dependency_updates"] == "Development"
    assert owners["architecture_review"] == "Architecture Team"
    assert owners["cost_optimization"] == "Finance & DevOps"
    assert owners["compliance_audit"] == "Legal & Security"


def test_shipped_execution_timeouts_default_per_cadence(shipped: MaintenanceConfig) -> None:
    for task in shipped.tasks.values():
        assert task.execution_timeout_minutes == config.DEFAULT_TIMEOUT_MINUTES[task.cadence]
        assert task.execution_timeout == dt.timedelta(minutes=task.execution_timeout_minutes)


def test_shipped_thresholds_slos_and_severities(shipped: MaintenanceConfig) -> None:
    th = shipped.thresholds
    assert (th.cpu.warning, th.cpu.critical, th.cpu.warning_for, th.cpu.critical_for) == (
        70,
        90,
        dt.timedelta(minutes=15),
        dt.timedelta(minutes=5),
    )
    assert (th.memory.warning, th.memory.critical) == (80, 90)
    assert (th.disk.warning, th.disk.critical, th.disk.warning_for) == (80, 90, None)
    assert (th.error_rate.warning, th.error_rate.critical, th.error_rate.critical_for) == (
        1,
        5,
        dt.timedelta(minutes=1),
    )
    assert (th.latency_p95.warning, th.latency_p95.critical, th.latency_p95.unit) == (500, 1000, "ms")
    assert (th.db_connections.warning, th.db_connections.critical) == (80, 90)
    assert th.cpu.as_dict() == {"warning": 70, "critical": 90}
    assert shipped.slos.model_dump() == {
        "availability_pct": 99.9,
        "response_time_p95_ms": 300,
        "error_rate_pct": 0.1,
        "recovery_time_minutes": 60,
    }
    assert list(shipped.severities) == ["P1", "P2", "P3", "P4"]
    assert [s.update_every for s in shipped.severities.values()] == [
        dt.timedelta(minutes=30),
        dt.timedelta(hours=2),
        dt.timedelta(days=1),
        dt.timedelta(days=7),
    ]
    assert shipped.escalation[shipped.severities["P1"].escalation].response_time == dt.timedelta(minutes=15)
    assert shipped.escalation["low"].escalate_after == dt.timedelta(hours=48)
    assert shipped.audit_retention.longest_years == 3
    assert shipped.backups.database.retention_days == 30
    assert shipped.backups.database.incremental_every == dt.timedelta(hours=1)
    assert shipped.backups.configuration.on_change and shipped.backups.configuration.retention_days == 90
    assert shipped.recovery_testing.dr_site_activation.cadence == "semi_annually"


def test_shipped_environments_connections_and_health_check(shipped: MaintenanceConfig) -> None:
    urls = {name: env.url for name, env in shipped.environments.items()}
    assert urls == {
        "production": "https://app.sanvi-machinery.com",
        "staging": "https://staging.sanvi-machinery.com",
        "development": "https://dev.sanvi-machinery.com",
        "dr_site": "https://dr.sanvi-machinery.com",
    }
    probes = {
        (e.environment, e.component): e.url for e in shipped.tasks.system_health_check.settings.endpoints
    }
    for env in ("production", "staging"):
        assert probes[(env, "frontend")] == urls[env] + "/"
        assert probes[(env, "backend")] == urls[env] + "/api/health"
    hc = shipped.tasks.system_health_check.settings
    assert set(hc.buckets) == {"backups", "files"}
    assert hc.ecs_services == ["frontend", "backend"]
    assert hc.rds_instances and hc.elasticache_clusters and hc.ecs_cluster
    assert "node_cpu_seconds_total" in hc.prometheus.cpu
    assert "node_memory_MemAvailable_bytes" in hc.prometheus.memory
    assert shipped.connections.model_dump() == {
        "app_db": "sanvi_app_db",
        "store": "sanvi_ops_store",
        "scratch_db": "sanvi_scratch_db",
        "aws": "aws_default",
        "redis": "sanvi_redis",
        "prometheus": "sanvi_prometheus",
        "slack": "slack_api_default",
    }
    assert shipped.slack.channel.startswith("#")
    assert shipped.deployment_windows["production"].approvers == ["product_owner", "cto"]
    assert shipped.on_call.cto == shipped.contacts["cto"].slack  # one value, via a YAML anchor


def test_models_are_frozen_and_hashable(shipped: MaintenanceConfig) -> None:
    task = shipped.tasks["dr_testing"]
    with pytest.raises(pydantic.ValidationError):
        task.week = 2  # type: ignore[misc]
    assert hash(task) == hash(task.model_copy())
    assert {task, shipped.tasks["dr_testing"]} == {task}
    assert hash(shipped) == hash(MaintenanceConfig.model_validate(shipped.model_dump()))
    assert hash(shipped.thresholds.cpu) == hash(shipped.thresholds.cpu.model_copy())


def test_json_dump_writes_durations_and_times_back(shipped: MaintenanceConfig) -> None:
    dumped = shipped.model_dump(mode="json")
    assert dumped["thresholds"]["cpu"]["warning_for"] == "15m"
    assert dumped["severities"]["P3"]["update_every"] == "1d"
    assert dumped["tasks"]["log_review"]["time"] == "09:30"
    assert parse_config(dumped) == shipped


# ---------------------------------------------------------------------------------------------
# Bad files: the key path and the reason
# ---------------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


BAD_CASES: list[tuple[str, Mutation, str]] = [
    ("unknown top-level key", _set("colour", "blue"), "colour: extra key not allowed"),
    (
        "unknown nested key",
        _set("tasks.security_patch_review.colour", "blue"),
        "tasks.security_patch_review.colour: extra key not allowed",
    ),
    ("unknown threshold key", _set("thresholds.cpu.warn", 1), "thresholds.cpu.warn: extra key not allowed"),
    ("missing task", _delete("tasks.log_review"), "tasks: missing guide task 'log_review'"),
    ("task not in the guide", _set("tasks.coffee_break", {}), "tasks.coffee_break: not a guide task"),
    (
        "warning >= critical",
        _set("thresholds.cpu.warning", 95),
        "thresholds.cpu: warning (95) must be below critical (90)",
    ),
    (
        "warning == critical",
        _set("thresholds.disk.warning", 90),
        "thresholds.disk: warning (90) must be below critical (90)",
    ),
    (
        "bad weekday",
        _set("tasks.backup_testing.weekday", "funday"),
        "tasks.backup_testing.weekday: 'funday' is not a weekday",
    ),
    ("bad time zone", _set("timezone", "Mars/Base"), "timezone: unknown time zone 'Mars/Base'"),
    ("week 5", _set("tasks.dr_testing.week", 5), "tasks.dr_testing.week: must be 1..4, got 5"),
    ("week 0", _set("tasks.security_scan.week", 0), "tasks.security_scan.week: must be 1..4, got 0"),
    ("bad time", _set("tasks.log_review.time", "25:00"), "tasks.log_review.time: '25:00' is not HH:MM"),
    ("bad minute", _set("tasks.log_review.time", "09:75"), "tasks.log_review.time: '09:75' is not HH:MM"),
    (
        "team not in teams",
        _set("tasks.security_scan.team", "ops"),
        "tasks.security_scan.team: 'ops' is not a key of teams",
    ),
    (
        "weekly task without weekday",
        _delete("tasks.disk_space_check.weekday"),
        "tasks.disk_space_check.weekday: required for a weekly task",
    ),
    (
        "monthly task without week",
        _delete("tasks.dr_testing.week"),
        "tasks.dr_testing.week: required for a monthly task",
    ),
    (
        "daily task with weekday",
        _set("tasks.log_review.weekday", "monday"),
        "tasks.log_review.weekday: not used by a daily task",
    ),
    (
        "quarterly without month",
        _delete("tasks.compliance_audit.month_of_quarter"),
        "tasks.compliance_audit.month_of_quarter: required",
    ),
    (
        "month of quarter 4",
        _set("tasks.compliance_audit.month_of_quarter", 4),
        "tasks.compliance_audit.month_of_quarter: must be 1..3, got 4",
    ),
    ("bad cadence", _set("tasks.log_review.cadence", "hourly"), "tasks.log_review.cadence: input should be"),
    (
        "cadence not the guide's",
        _set("tasks.log_review.cadence", "weekly"),
        "tasks.log_review.cadence: the guide makes log_review a daily task",
    ),
    (
        "bad duration",
        _set("thresholds.cpu.warning_for", "15 minutes"),
        "thresholds.cpu.warning_for: '15 minutes' is not a duration",
    ),
    (
        "percent above 100",
        _set("thresholds.memory.critical", 120),
        "thresholds.memory: critical (120) is a percentage",
    ),
    ("severity missing", _delete("severities.P4"), "severities: missing severity level 'P4'"),
    (
        "severity escalation unknown",
        _set("severities.P1.escalation", "urgent"),
        "severities.P1.escalation: 'urgent' is not a key of escalation",
    ),
    (
        "escalation order",
        _set("escalation.critical.response_time", "1h"),
        "escalation.critical: response_time (1h) must not be longer than escalate_after (30m)",
    ),
    ("environment missing", _delete("environments.dr_site"), "environments: missing environment 'dr_site'"),
    (
        "bad url",
        _set("environments.staging.url", "staging.sanvi"),
        "environments.staging.url: 'staging.sanvi' is not an http(s) URL",
    ),
    (
        "endpoint environment unknown",
        _set("tasks.system_health_check.settings.endpoints.1.environment", "qa"),
        "tasks.system_health_check.settings.endpoints[1].environment: 'qa' is not a key of environments",
    ),
    (
        "endpoint component",
        _set("tasks.system_health_check.settings.endpoints.0.component", "db"),
        "tasks.system_health_check.settings.endpoints[0].component: input should be 'frontend' or 'backend'",
    ),
    (
        "approver unknown",
        _set("deployment_windows.production.approvers", ["cfo"]),
        "deployment_windows.production.approvers[0]: 'cfo' is not a key of contacts",
    ),
    (
        "window incomplete",
        _set("deployment_windows.staging.regular", {"days": ["monday"]}),
        "deployment_windows.staging.regular: needs anytime: true, or days, start and end",
    ),
    (
        "on-call start not a handoff day",
        _set("on_call.start_date", dt.date(2025, 1, 7)),
        "on_call.start_date: 2025-01-07 is a tuesday; it must be a monday",
    ),
    (
        "on-call one member",
        _set("on_call.members", ["@solo"]),
        "on_call.members: list should have at least 2 items",
    ),
    ("missing section", _delete("slos"), "slos: required key missing"),
    (
        "section of wrong type",
        _set("tasks.system_health_check.settings.prometheus", "up"),
        "tasks.system_health_check.settings.prometheus: must be a mapping of keys, got str",
    ),
    (
        "unknown settings key",
        _set("tasks.log_review.settings.colour", "blue"),
        "tasks.log_review.settings.colour: extra key not allowed",
    ),
    (
        "VACUUM scheduled after its window",
        _set("tasks.database_maintenance.time", "07:00"),
        "tasks.database_maintenance.settings.window: Wednesday 03:00–06:00 must contain the scheduled "
        "run (Wednesday 07:00",
    ),
    (
        "VACUUM window on another day",
        _set("tasks.database_maintenance.settings.window.days", ["thursday"]),
        "tasks.database_maintenance.settings.window: Thursday 03:00–06:00 must contain the scheduled "
        "run (Wednesday 04:00",
    ),
    (
        "VACUUM time box past the task's timeout",
        _set("tasks.database_maintenance.settings.time_box", "2h"),
        "tasks.database_maintenance.settings.time_box: (2h) must be shorter than the task's execution "
        "timeout (120 min)",
    ),
    (
        "approval environment unknown",
        _set("tasks.database_maintenance.approval.environment", "qa"),
        "tasks.database_maintenance.approval.environment: 'qa' is not a key of deployment_windows",
    ),
    (
        "backup without schedule",
        _delete("backups.file_storage.full_every"),
        "backups.file_storage: needs either full_every",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in BAD_CASES], ids=[c[0] for c in BAD_CASES]
)
def test_bad_file_names_key_path_and_reason(
    tmp_path: Path, raw: dict[str, Any], mutate: Mutation, expected: str
) -> None:
    mutate(raw)
    problems = problems_of(tmp_path, raw)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path, raw: dict[str, Any]) -> None:
    # The bad cases together: field errors and cross-references in one report.
    together = {
        "unknown top-level key",
        "unknown nested key",
        "missing task",
        "warning >= critical",
        "bad weekday",
        "bad time zone",
        "week 5",
        "team not in teams",
        "weekly task without weekday",
        "endpoint environment unknown",
    }
    cases = [(mutate, expected) for name, mutate, expected in BAD_CASES if name in together]
    assert len(cases) == len(together)
    for mutate, _ in cases:
        mutate(raw)
    raw["tasks"]["backup_verification"]["time"] = "25:00"  # log_review is deleted by "missing task"
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, raw))
    message = str(excinfo.value)
    for _, expected in cases:
        assert expected in message
    assert "tasks.backup_verification.time: '25:00' is not HH:MM" in message
    assert len(excinfo.value.problems) == len(cases) + 1
    assert "invalid maintenance config" in message
    assert isinstance(excinfo.value, ValueError)
    assert str(tmp_path) in message


def test_unquoted_times_are_times_not_base_60_numbers(tmp_path: Path, raw_text: str) -> None:
    # YAML 1.1 reads an unquoted 10:30 as the integer 630; the loader must not.
    text = raw_text.replace('time: "10:30"', "time: 10:30").replace('time: "11:00"', "time: 11:00")
    assert "time: 10:30" in text
    path = tmp_path / "unquoted.yaml"
    path.write_text(text, encoding="utf-8")
    cfg = load_config(path)
    assert cfg.tasks["backup_testing"].time == dt.time(10, 30)
    assert cfg.tasks["dr_testing"].time == dt.time(11, 0)


def test_duplicate_key_is_an_error_with_its_line(tmp_path: Path, raw_text: str) -> None:
    text = raw_text.replace("  log_review:\n", "  log_review:\n    title: Again\n", 1)
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"line \d+, column \d+: not valid YAML: found duplicate key 'title'"
    ):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "(top level): must be a mapping of settings, the file is empty"),
        ("- a\n- b\n", "(top level): must be a mapping of settings, the file is a list"),
        ("tasks: [unclosed\n", "not valid YAML"),
    ],
    ids=["empty", "list", "syntax"],
)
def test_unusable_files(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert expected in str(excinfo.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"(?s)nope\.yaml: invalid maintenance config .*\(file\): not found"
    ):
        load_config(tmp_path / "nope.yaml")


def test_direct_model_validation_also_checks_references(raw: dict[str, Any]) -> None:
    raw["tasks"]["log_review"]["team"] = "nobody"
    with pytest.raises(
        pydantic.ValidationError, match="tasks.log_review.team: 'nobody' is not a key of teams"
    ):
        MaintenanceConfig.model_validate(raw)


def test_task_lookup_names_the_unknown_id(shipped: MaintenanceConfig) -> None:
    assert shipped.task("dr_testing").week == 1
    with pytest.raises(KeyError, match="'coffee' is not a guide task"):
        shipped.task("coffee")


# ---------------------------------------------------------------------------------------------
# Loading: default path, env override, cache
# ---------------------------------------------------------------------------------------------


def test_default_path_and_env_override(
    tmp_path: Path, raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    assert load_config() is load_config(DEFAULT_CONFIG_PATH)
    raw["timezone"] = "Europe/Berlin"
    monkeypatch.setenv(config.ENV_VAR, str(write(tmp_path, raw)))
    assert load_config().timezone == "Europe/Berlin"
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"not found \(from \$SANVI_OPS_CONFIG\)"):
        load_config()


def test_cache_returns_same_object_until_the_file_changes(tmp_path: Path, raw: dict[str, Any]) -> None:
    path = write(tmp_path, raw)
    first = load_config(path)
    assert load_config(str(path)) is first
    raw["slack"]["channel"] = "#elsewhere-and-longer"  # a different size, so a coarse mtime cannot hide it
    write(tmp_path, raw)
    second = load_config(path)
    assert second is not first
    assert second.slack.channel == "#elsewhere-and-longer"
    config.clear_config_cache()
    assert load_config(path) == second


# ---------------------------------------------------------------------------------------------
# Durations and deployment windows
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30s", dt.timedelta(seconds=30)),
        ("15m", dt.timedelta(minutes=15)),
        ("2h", dt.timedelta(hours=2)),
        ("1d", dt.timedelta(days=1)),
        ("1w", dt.timedelta(days=7)),
        ("1h30m", dt.timedelta(minutes=90)),
    ],
)
def test_durations_round_trip(text: str, delta: dt.timedelta) -> None:
    assert config._parse_duration(text) == delta
    assert config._parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("bad", ["0m", "15", "m15", "1.5h", 15])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        config._parse_duration(bad)


@pytest.mark.parametrize(
    ("environment", "local", "expected"),
    [
        ("production", dt.datetime(2026, 3, 3, 22, 0), True),  # Tuesday 22:00 opens
        ("production", dt.datetime(2026, 3, 4, 1, 59), True),  # ... and runs past midnight
        ("production", dt.datetime(2026, 3, 4, 2, 0), False),  # Wednesday 02:00 closes
        ("production", dt.datetime(2026, 3, 3, 21, 59), False),
        ("production", dt.datetime(2026, 3, 6, 0, 30), True),  # Thursday night into Friday
        ("production", dt.datetime(2026, 3, 2, 23, 0), False),  # Monday night
        ("staging", dt.datetime(2026, 3, 2, 10, 0), True),
        ("staging", dt.datetime(2026, 3, 5, 15, 59), True),
        ("staging", dt.datetime(2026, 3, 5, 16, 0), False),
        ("staging", dt.datetime(2026, 3, 6, 11, 0), False),  # Friday
        ("development", dt.datetime(2026, 3, 7, 3, 0), True),
    ],
)
def test_deployment_windows(
    shipped: MaintenanceConfig, environment: str, local: dt.datetime, expected: bool
) -> None:
    window = shipped.deployment_windows[environment].regular
    assert window.is_open(local.replace(tzinfo=UTC), "UTC") is expected


def test_deployment_window_reads_the_config_time_zone(shipped: MaintenanceConfig) -> None:
    window = shipped.deployment_windows["production"].regular
    # Tuesday 22:30 in New York (EST, UTC-5) is Wednesday 03:30 UTC.
    when = dt.datetime(2026, 3, 4, 3, 30, tzinfo=UTC)
    assert window.is_open(when, "America/New_York")
    assert not window.is_open(when, "UTC")


# ---------------------------------------------------------------------------------------------
# On-call rotation
# ---------------------------------------------------------------------------------------------


def test_on_call_rotation_math(shipped: MaintenanceConfig) -> None:
    members = shipped.on_call.members
    assert len(members) == 4
    start = dt.datetime(2025, 1, 6, 9, 0, tzinfo=UTC)  # start_date at the handoff time
    week = dt.timedelta(days=7)
    assert shipped.on_call_at(start) == (members[0], members[1])
    assert shipped.on_call_at(start + dt.timedelta(days=6, hours=23, minutes=59)) == (members[0], members[1])
    assert shipped.on_call_at(start + week) == (members[1], members[2])
    assert shipped.on_call_at(start + 3 * week) == (members[3], members[0])  # secondary wraps around
    assert shipped.on_call_at(start + 4 * week) == (members[0], members[1])  # the cycle repeats
    assert shipped.on_call_at(start + 53 * week) == (members[1], members[2])
    # Monday 08:59 is still last week's shift; before start_date the rotation extends backwards.
    assert shipped.on_call_at(start - dt.timedelta(minutes=1)) == (members[3], members[0])
    assert shipped.on_call.week_index(start - dt.timedelta(minutes=1)) == -1


def test_on_call_pairs_devops_with_development_every_week(shipped: MaintenanceConfig) -> None:
    start = dt.datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    for n in range(8):
        primary, secondary = shipped.on_call_at(start + dt.timedelta(weeks=n))
        assert primary != secondary
        assert {primary.split("-")[0], secondary.split("-")[0]} == {"@devops", "@dev"}


def test_on_call_handoff_is_local_time_across_dst(raw: dict[str, Any]) -> None:
    raw["timezone"] = "Europe/Berlin"
    cfg = parse_config(raw)
    members = cfg.on_call.members
    # Week 0 starts Monday 2025-01-06 09:00 CET (08:00 UTC).
    assert cfg.on_call_at(dt.datetime(2025, 1, 6, 7, 59, tzinfo=UTC))[0] == members[3]
    assert cfg.on_call_at(dt.datetime(2025, 1, 6, 8, 0, tzinfo=UTC))[0] == members[0]
    # Summer time (CEST, UTC+2): Monday 2025-07-07 is week 26 and hands off at 07:00 UTC.
    assert cfg.on_call.week_index(dt.datetime(2025, 7, 7, 6, 59, tzinfo=UTC)) == 25
    assert cfg.on_call.week_index(dt.datetime(2025, 7, 7, 7, 0, tzinfo=UTC)) == 26


def test_on_call_refuses_naive_datetimes(shipped: MaintenanceConfig) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        shipped.on_call_at(dt.datetime(2025, 1, 6, 9, 0))


def test_standalone_on_call_uses_utc() -> None:
    on_call = OnCall(
        handoff_weekday="monday",  # type: ignore[arg-type]
        handoff_time="09:00",  # type: ignore[arg-type]
        start_date=dt.date(2025, 1, 6),
        members=["@a", "@b"],
        team_lead="@lead",
        cto="@cto",
    )
    assert on_call.on_call_at(dt.datetime(2025, 1, 13, 9, 0, tzinfo=UTC)) == ("@b", "@a")


def test_task_spec_accepts_friendly_spellings() -> None:
    task = TaskSpec(
        title="T",
        cadence="weekly",
        time="7:05",  # type: ignore[arg-type]
        weekday="Friday",  # type: ignore[arg-type]
        team="devops",
        description="d",
    )
    assert (task.time, task.weekday, task.execution_timeout_minutes) == (dt.time(7, 5), Weekday.FRIDAY, 120)


def test_tasks_are_typed_per_task_and_read_as_a_mapping(shipped: MaintenanceConfig) -> None:
    tasks = shipped.tasks
    assert tasks.database_maintenance.settings.parallelism == 2
    assert tasks.backup_testing.settings.rds_restore.instance_class == "db.t3.micro"
    assert tasks["database_maintenance"] is tasks.database_maintenance
    assert list(tasks) == list(GUIDE_TASKS) and len(tasks) == len(GUIDE_TASKS)
    assert "log_review" in tasks and "coffee_break" not in tasks
    assert dict(tasks.items())["dr_testing"] is shipped.task("dr_testing")
    assert tasks.database_maintenance.approval is not None and tasks.log_review.approval is None
    changed = shipped.with_settings("database_maintenance", parallelism=4)
    assert changed.tasks.database_maintenance.settings.parallelism == 4
    assert shipped.tasks.database_maintenance.settings.parallelism == 2
