"""Pure logic of incident hygiene and meta-monitoring: silence scope and validation, the
escalation schedule, per-cadence deadline allowances, and the messages they produce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from sanvi_ops.core.escalation import due_levels, escalate_after_for, escalation_schedule
from sanvi_ops.core.notify import render
from sanvi_ops.core.silences import Silence, SilenceError, find_silence, matches, validate

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _silence(
    dag: str | None, pattern: str | None, expires: datetime, lifted: datetime | None = None
) -> Silence:
    return Silence(1, dag, pattern, "disk swap tonight", "@alice", "ui", NOW, expires, lifted)


@pytest.mark.parametrize(
    ("dag", "pattern", "check", "expected"),
    [
        (None, "http.staging-*", "http.staging-backend", True),
        (None, "http.staging-*", "http.production-backend", False),
        ("system_health_check", None, "redis.ping", True),
        ("system_health_check", None, "redis.ping", True),
        ("log_review", None, "redis.ping", False),
        ("system_health_check", "redis.*", "postgres.connect", False),
        (None, "host.cpu[[]backend-1]", "host.cpu[backend-1]", True),  # fnmatch escapes brackets
        (None, "Redis.*", "redis.ping", False),  # case-sensitive
    ],
)
def test_silence_scope(dag, pattern, check, expected) -> None:  # type: ignore[no-untyped-def]
    assert matches(dag, pattern, "system_health_check", check) is expected


def test_expired_or_lifted_silences_stop_silencing_and_the_longest_wins() -> None:
    short = _silence(None, "redis.*", NOW + timedelta(hours=1))
    long = Silence(
        2, "system_health_check", None, "migration", "@bob", "config", NOW, NOW + timedelta(days=2)
    )
    expired = _silence(None, "redis.*", NOW - timedelta(seconds=1))
    lifted = _silence(None, "redis.*", NOW + timedelta(days=3), lifted=NOW - timedelta(minutes=5))
    assert find_silence([short, long, expired, lifted], "system_health_check", "redis.ping", NOW) == long
    assert find_silence([expired, lifted], "system_health_check", "redis.ping", NOW) is None
    # the moment it expires, it no longer silences
    assert find_silence([short], "system_health_check", "redis.ping", short.expires_at) is None
    assert "silenced until 10:00 27/11/2026 UTC (disk swap tonight)" == short.describe("UTC")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reason": " "}, "silences[3].reason: required"),
        ({"created_by": ""}, "silences[3].created_by: required"),
        (
            {"expires_at": NOW - timedelta(minutes=1)},
            "silences[3].expires: 2026-11-27T08:59:00+00:00 is not in the future",
        ),
        ({"expires_at": NOW + timedelta(days=31)}, "is more than 30 days away"),
        ({"expires_at": datetime(2026, 12, 1)}, "silences[3].expires: must include a time zone"),
        ({"dag_id": None, "check_pattern": None}, "silences[3]: name a dag_id or a check pattern"),
        ({"source": "api"}, "silences[3].source: must be one of config, ui"),
    ],
)
def test_validation_names_the_key_path(changes, message) -> None:  # type: ignore[no-untyped-def]
    args = {
        "dag_id": "system_health_check",
        "check_pattern": "redis.*",
        "reason": "Redis failover test",
        "created_by": "@alice",
        "expires_at": NOW + timedelta(hours=4),
        "source": "config",
    } | changes
    with pytest.raises(
        SilenceError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")
    ):
        validate(**args, now=NOW, where="silences[3]")


def test_config_silence_needs_a_scope_and_a_reason() -> None:
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["silences"] = [
        {"check": "http.staging-*", "reason": "staging rebuild", "expires": "2026-12-01T18:00:00+00:00", "created_by": "@a"},
        {"reason": "everything", "expires": "2026-12-01T18:00:00+00:00", "created_by": "@a"},
        {"dag_id": "log_review", "expires": "2026-12-01T18:00:00+00:00", "created_by": "@a"},
    ]  # fmt: skip
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    problems = err.value.problems
    assert any(p.startswith("silences[1]: name a dag_id or a check pattern") for p in problems), problems
    assert "silences[2].reason: required key missing" in problems
    assert not any(p.startswith("silences[0]") for p in problems)


def test_escalation_follows_the_guides_escalate_after_column() -> None:
    cfg = load_config()
    assert [escalate_after_for(cfg, p) for p in ("P1", "P2", "P3", "P4")] == [
        timedelta(minutes=30), timedelta(hours=2), timedelta(hours=8), timedelta(hours=48),
    ]  # fmt: skip
    opened = NOW
    p1 = timedelta(minutes=30)
    assert due_levels(opened, opened + timedelta(minutes=29, seconds=59), p1) == []
    assert due_levels(opened, opened + p1, p1) == [1]  # on-call → team lead
    assert due_levels(opened, opened + timedelta(minutes=59), p1) == [1]
    assert due_levels(opened, opened + timedelta(hours=1), p1) == [1, 2]  # → CTO
    assert escalation_schedule(opened, p1) == [
        (1, "Team Lead", opened + p1), (2, "CTO", opened + 2 * p1),
    ]  # fmt: skip
    with pytest.raises(ValueError, match="timezone-aware"):
        due_levels(datetime(2026, 1, 1), NOW, p1)


def test_update_cadence_is_the_guides_communication_column() -> None:
    cfg = load_config()
    assert {p: s.update_every for p, s in cfg.severities.items()} == {
        "P1": timedelta(minutes=30),  # "Every 30 min"
        "P2": timedelta(hours=2),  # "Every 2 hours"
        "P3": timedelta(days=1),  # "Daily"
        "P4": timedelta(days=7),  # "Weekly summary"
    }


def test_deadline_allowance_per_cadence_and_for_declared_jobs(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from sanvi_ops.airflow_kit.frame import dag_kwargs
    from sanvi_ops.core.calendar import non_guide_dags

    monkeypatch.setenv("SANVI_OPS_DEADLINE_ALERTS", "on")
    cfg = load_config()
    for dag_id in [*cfg.tasks, *non_guide_dags(cfg)]:  # every DAG gets one from the frame
        assert dag_kwargs(dag_id, cfg)["deadline"] is not None, dag_id
    expected = {"system_health_check": 1, "security_patch_review": 3, "dr_testing": 5, "cost_optimization": 5}
    for dag_id, hours in expected.items():
        (alert,) = [dag_kwargs(dag_id, cfg)["deadline"]]
        assert alert.interval == timedelta(hours=hours), dag_id
        assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
        assert alert.callback.path == "sanvi_ops.airflow_kit.callbacks.on_deadline_missed"
        assert alert.callback.kwargs == {"allowed_seconds": hours * 3600}
    watchdog = dag_kwargs("sanvi_ops_watchdog", cfg)["deadline"]
    assert watchdog.interval == timedelta(minutes=10 + 30)  # execution timeout + job_margin
    monkeypatch.setenv("SANVI_OPS_DEADLINE_ALERTS", "off")
    assert dag_kwargs("system_health_check", cfg)["deadline"] is None


def test_deadline_allowance_must_be_shorter_than_the_cadence() -> None:
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    data["meta_monitoring"] = {"deadlines": {"daily": "1d"}, "watchdog": {"every_minutes": 7}}
    with pytest.raises(ConfigError) as err:
        parse_config(data)
    text = str(err.value)
    assert "meta_monitoring.deadlines: daily (1d) must be shorter than 1 day(s)" in text
    assert "meta_monitoring.watchdog.every_minutes: 7 must divide 60" in text


def test_watchdog_is_a_declared_job() -> None:
    from sanvi_ops.core.calendar import non_guide_dags

    job = non_guide_dags(load_config())["sanvi_ops_watchdog"]
    assert (job.cron, job.folder, job.tag, job.team) == ("*/15 * * * *", "meta", "every-15m", "devops")


def test_escalation_and_deadline_messages() -> None:
    text, blocks = render.escalation_message(
        "#12", "P1", "redis", level_role="Team Lead", level_handle="@devops-lead",
        open_for=timedelta(minutes=35), escalate_after=timedelta(minutes=30),
        summary="Redis did not answer PING <@U123>", on_call=("@alice", "@bob"),
    )  # fmt: skip
    assert text.splitlines() == [
        "[ESCALATION] #12 - Severity: P1 - Service: redis",
        "Open for 35 min, longer than the 30 min after which a P1 is escalated",
        "Escalated to: Team Lead @devops-lead",
        "Issue: Redis did not answer PING &lt;@U123&gt;",
        "On-call: @alice (secondary: @bob)",
    ]
    text, _ = render.deadline_message(
        "system_health_check", "scheduled__x", "System Health Check",
        queued_at=NOW, deadline_at=NOW + timedelta(hours=1), allowed=timedelta(hours=1),
        state="running", team_handle="@devops",
    )  # fmt: skip
    assert text.splitlines()[0] == ":hourglass: Overdue: System Health Check (`system_health_check`) @devops"
    assert "queued at 09:00 27/11/2026 has not finished after 1 h (deadline 10:00 27/11/2026 UTC)" in text


def test_summary_line_says_silenced_until() -> None:
    from sanvi_ops.core.results import CheckResult, Status

    results = [CheckResult("redis.ping", Status.CRITICAL, "no PONG", component="redis")]
    note = "silenced until 18:00 27/11/2026 UTC (failover drill)"
    text, blocks = render.summary_message("d", "r", "T", "DevOps", results, None, {"redis.ping": note})
    assert note in text and note in str(blocks)


# ------------------------------------------------------------ closing incidents by component


def _r(check: str, status: str, component: str = "", summary: str = "s") -> object:
    from sanvi_ops.core.results import CheckResult

    return CheckResult(check, status, summary, component=component)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("check", "component", "later", "expected"),
    [
        # a timed-out health component (`rds`) is closed by its instance's healthy result
        ("rds", "rds", [("rds.sanvi-production-db", "ok", "rds")], "healthy"),
        ("rds", "rds", [("rds.sanvi-production-db", "critical", "rds")], None),
        # a restore that could not start is closed by a restore whose parts ran green (skipped
        # optional parts don't count), not by one whose parts were all skipped
        (
            "restore.run",
            "backups",
            [("restore.amcheck", "ok", "backups"), ("restore.smoke", "skipped", "backups")],
            "healthy",
        ),
        ("restore.run", "backups", [("restore.smoke", "skipped", "backups")], None),
        (
            "dr.database.run",
            "dr",
            [("dr.scope", "ok", "dr"), ("dr.database.rto", "warning", "dr")],
            "healthy",
        ),
        (
            "dr.database.run",
            "dr",
            [("dr.database.rto", "ok", "dr"), ("dr.database.amcheck", "critical", "dr")],
            None,
        ),
        # same scope name, another component: not its counterpart, so only "gone from a complete run"
        ("restore.run", "backups", [("restore.amcheck", "ok", "other")], "no longer checked"),
        ("http.old-site", "http", [("http.api", "ok", "http")], "no longer checked"),
        # gone, but the run was not complete: a check failed to run, or one was left out
        (
            "http.old-site",
            "http",
            [("http.api", "ok", "http"), ("check_aws.task", "error", "check_aws")],
            None,
        ),
        ("http.old-site", "http", [("check_http.not_selected", "skipped", "check_http")], None),
        # gone because the whole component timed out this time: still open
        ("rds.sanvi-production-db", "rds", [("rds", "critical", "rds")], None),
        # the exact check decides when it is there
        ("redis.ping", "redis", [("redis.ping", "warning", "redis")], "healthy"),
        ("redis.ping", "redis", [("redis.ping", "skipped", "redis"), ("redis.memory", "ok", "redis")], None),
        ("redis.ping", "redis", [], None),
    ],
)
def test_an_incident_closes_by_component_and_target(check, component, later, expected) -> None:  # type: ignore[no-untyped-def]
    from sanvi_ops.core.notify.closing import closure_for

    closure = closure_for(check, component, [_r(*spec) for spec in later])  # type: ignore[misc]
    assert (closure.reason if closure else None) == expected


def test_component_and_scope_are_derived_from_the_name_when_not_given() -> None:
    from sanvi_ops.core.notify.closing import component_of, in_scope, scope_of

    assert component_of("rds.pending_maintenance[db-1]") == "rds"
    assert (
        component_of("host.cpu[backend-1]") == "host" and component_of("restore.run", "backups") == "backups"
    )
    assert scope_of("restore.run") == "restore" and scope_of("dr.database.run") == "dr.database"
    assert scope_of("rds") == "rds" and scope_of("run") == "run" and scope_of("http.api") == "http.api"
    assert in_scope("rds", "rds.db-1") and in_scope("rds", "rds[x]") and in_scope("rds", "rds")
    assert not in_scope("rds", "rds_proxy.x")
