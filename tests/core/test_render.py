"""Slack rendering: the guide's templates to the character, Block Kit shape and limits, no secrets."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sanvi_ops.core.notify import render
from sanvi_ops.core.results import CheckResult, Status

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # a Thursday
SECRET = "hunter22-Sup3rSecret"


def _all_text(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# ------------------------------------------------------------------------------ templates


def test_incident_template_is_the_guides_initial_notification() -> None:
    text, blocks = render.incident_message(
        "#12",
        "P1",
        "postgres",
        "PostgreSQL at 127.0.0.1:5432 did not answer: connection refused",
        "Critical business impact: postgres affected",
        now=NOW,
        update_every=timedelta(minutes=30),
        on_call=("@alice", "@bob"),
        run_url="http://127.0.0.1:8080/dags/system_health_check/runs/r1",
    )
    assert text == (
        "[INCIDENT] #12 - Severity: P1 - Service: postgres\n"
        "Issue: PostgreSQL at 127.0.0.1:5432 did not answer: connection refused\n"
        "Impact: Critical business impact: postgres affected\n"
        "Status: Investigation in progress\n"
        "Next update: 09:30\n"
        "On-call: @alice (secondary: @bob)"
    )
    assert blocks[0] == {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    button = blocks[1]["elements"][0]
    assert button["url"] == "http://127.0.0.1:8080/dags/system_health_check/runs/r1"


def test_incident_mentions_slack_ids_and_omits_an_empty_on_call() -> None:
    text, _ = render.incident_message(
        "#3",
        "P2",
        "redis",
        "x",
        "y",
        now=NOW,
        update_every=timedelta(hours=2),
        on_call=("U012ABCDEF", "S0GROUP99"),
    )
    assert text.endswith("Next update: 11:00\nOn-call: <@U012ABCDEF> (secondary: <!subteam^S0GROUP99>)")
    text, blocks = render.incident_message(
        "#3", "P2", "redis", "x", "y", now=NOW, update_every=timedelta(hours=2)
    )
    assert text.splitlines()[-1] == "Next update: 11:00"
    assert len(blocks) == 1  # no run URL, no button


def test_update_template_is_the_guides() -> None:
    text, _ = render.update_message(
        "#12",
        "P1",
        "postgres",
        "Still critical in run r2: connection refused",
        "Re-checked automatically by system_health_check",
        "No change",
        now=NOW,
        update_every=timedelta(minutes=30),
    )
    assert text == (
        "[UPDATE] #12 - Severity: P1 - Service: postgres\n"
        "Status: Still critical in run r2: connection refused\n"
        "Actions: Re-checked automatically by system_health_check\n"
        "Impact: No change\n"
        "Next update: 09:30"
    )


def test_resolved_template_is_the_guides() -> None:
    text, _ = render.resolved_message(
        "#12",
        "P1",
        "postgres",
        "postgres.up is ok again in run r2",
        "Not determined automatically; to be confirmed in the post-mortem",
        "postgres affected for 1 d",
        date(2026, 1, 19),
    )
    assert text == (
        "[RESOLVED] #12 - Severity: P1 - Service: postgres\n"
        "Resolution: postgres.up is ok again in run r2\n"
        "Root cause: Not determined automatically; to be confirmed in the post-mortem\n"
        "Impact: postgres affected for 1 d\n"
        "Follow-up: Post-mortem scheduled for 19/01/2026"
    )


# ---------------------------------------------------------------------- next update math


@pytest.mark.parametrize(
    ("now", "every", "expected"),
    [
        (NOW, timedelta(minutes=30), "09:30"),  # P1
        (NOW.replace(second=59, microsecond=5), timedelta(minutes=30), "09:30"),  # to the minute
        (NOW, timedelta(hours=2), "11:00"),  # P2
        (NOW.replace(hour=23, minute=15), timedelta(hours=2), "01:15 on 16/01/2026"),  # past midnight
        (NOW, timedelta(days=1), "09:00 on 16/01/2026"),  # P3 daily
        (NOW, timedelta(days=7), "09:00 on 22/01/2026"),  # P4 weekly
        (datetime(2026, 12, 31, 23, 45, tzinfo=UTC), timedelta(minutes=30), "00:15 on 01/01/2027"),
        # The configured time zone, not UTC: 09:00 UTC is 10:00 in Berlin.
        (NOW.astimezone(ZoneInfo("Europe/Berlin")), timedelta(minutes=30), "10:30"),
        # Spring forward: 01:45 CET + 30 min of real time is 03:15 CEST (02:15 does not exist).
        (datetime(2026, 3, 29, 1, 45, tzinfo=ZoneInfo("Europe/Berlin")), timedelta(minutes=30), "03:15"),
        # A daily update keeps its wall-clock hour across the change.
        (
            datetime(2026, 3, 28, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")),
            timedelta(days=1),
            "09:00 on 29/03/2026",
        ),
    ],
)
def test_next_update_time(now: datetime, every: timedelta, expected: str) -> None:
    assert render.format_next_update(now, every) == expected


def test_next_update_rejects_naive_time_and_non_positive_cadence() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        render.next_update_at(datetime(2026, 1, 15, 9, 0), timedelta(minutes=30))
    with pytest.raises(ValueError, match="positive"):
        render.next_update_at(NOW, timedelta(0))


def test_postmortem_date_skips_the_weekend() -> None:
    assert render.postmortem_date(datetime(2026, 1, 13, 10, tzinfo=UTC)) == date(2026, 1, 15)  # Tue → Thu
    assert render.postmortem_date(datetime(2026, 1, 16, 10, tzinfo=UTC)) == date(2026, 1, 20)  # Fri → Tue


def test_duration_format() -> None:
    assert render.format_duration(timedelta(days=1, hours=2, minutes=3)) == "1 d 2 h"
    assert render.format_duration(timedelta(hours=1, minutes=5)) == "1 h 5 min"
    assert render.format_duration(timedelta(minutes=7, seconds=10)) == "7 min"
    assert render.format_duration(timedelta(seconds=30)) == "30 s"


# ---------------------------------------------------------------------------- run summary


def _results() -> list[CheckResult]:
    return [
        CheckResult("http.frontend.production", Status.OK, "200 in 120 ms", "latency_ms", 120.4, "ms",
                    {"warning": 500, "critical": 1000}, component="frontend"),
        CheckResult("postgres.connections", Status.WARNING, "85 of 100 connections in use", "connections_used_pct",
                    85.25, "%", {"warning": 80, "critical": 90}, component="postgres"),
        CheckResult("redis.ping", Status.CRITICAL, "Redis at 127.0.0.1:6379 did not answer PING", severity="P1",
                    component="redis"),
        CheckResult("metrics.cpu", Status.SKIPPED, "No Prometheus connection configured"),
    ]  # fmt: skip


def test_summary_blocks() -> None:
    text, blocks = render.summary_message(
        "system_health_check",
        "scheduled__2026-01-15T09:00:00+00:00",
        "System Health Check",
        "DevOps",
        _results(),
        "http://127.0.0.1:8080/dags/system_health_check/runs/scheduled__2026-01-15T09:00:00+00:00",
    )
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": ":rotating_light: System Health Check: CRITICAL",
            "emoji": True,
        },
    }
    context = blocks[1]["elements"][0]["text"]
    assert "*Team:* DevOps" in context
    assert "`system_health_check`" in context and "`scheduled__2026-01-15T09:00:00+00:00`" in context
    assert "4 checks: 1 ok, 1 skipped, 1 warning, 1 critical" in context
    lines = blocks[2]["text"]["text"].splitlines()
    assert lines == [  # worst first
        ":rotating_light: *redis.ping* — Redis at 127.0.0.1:6379 did not answer PING",
        ":warning: *postgres.connections*: 85.2% (limits: warning 80%, critical 90%) — 85 of 100 connections in use",
        ":fast_forward: *metrics.cpu* — No Prometheus connection configured",
        ":white_check_mark: *http.frontend.production*: 120 ms (limits: warning 500 ms, critical 1000 ms)"
        " — 200 in 120 ms",
    ]
    assert blocks[3]["type"] == "actions"
    assert blocks[3]["elements"][0]["url"].endswith("/runs/scheduled__2026-01-15T09:00:00+00:00")
    assert text.splitlines()[0].startswith(":rotating_light: System Health Check: CRITICAL (4 checks")
    assert "redis.ping" in text and "postgres.connections" in text and "http.frontend" not in text


def test_summary_of_a_healthy_run_and_without_run_url() -> None:
    text, blocks = render.summary_message("d", "r", "Log Review", "DevOps", [_results()[0]], None)
    assert blocks[0]["text"]["text"] == ":white_check_mark: Log Review: OK"
    assert all(b["type"] != "actions" for b in blocks)
    assert "1 check: 1 ok" in text


def test_headline_is_the_worst_of_what_ran_and_unconfigured_options_are_named() -> None:
    """A green restore whose two optional checks are not configured is OK, not SKIPPED, and the
    summary says which keys to set."""
    results = [
        CheckResult("restore.amcheck", Status.OK, "pg_amcheck --all: no corruption found", component="backups"),
        CheckResult("restore.rto", Status.OK, "restored in 40 s", component="backups"),
        CheckResult("restore.smoke", Status.SKIPPED, "no smoke queries configured (tasks.backup_testing.settings.smoke_queries)",
                    details={"config_key": "tasks.backup_testing.settings.smoke_queries"}, component="backups"),
        CheckResult("restore.rpo", Status.SKIPPED, "no tasks.backup_testing.settings.rpo_column configured",
                    details={"config_key": "tasks.backup_testing.settings.rpo_column"}, component="backups"),
    ]  # fmt: skip
    text, blocks = render.summary_message("backup_testing", "r1", "Backup Testing", "DBA", results, None)
    assert blocks[0]["text"]["text"] == ":white_check_mark: Backup Testing: OK"
    note = "2 optional checks not configured (set tasks.backup_testing.settings.smoke_queries, tasks.backup_testing.settings.rpo_column)"
    assert note in blocks[1]["elements"][0]["text"] and note in text.splitlines()[0]
    assert text.startswith(":white_check_mark: Backup Testing: OK (4 checks: 2 ok, 2 skipped")

    # a warning among them still heads the run; a skip for another reason is not "not configured"
    left_out = CheckResult("check_rds.not_selected", Status.SKIPPED, "not selected", component="check_rds")
    warned = [*results[:1], CheckResult("restore.rto", Status.WARNING, "slow"), left_out]
    text, blocks = render.summary_message("backup_testing", "r2", "Backup Testing", "DBA", warned, None)
    assert blocks[0]["text"]["text"] == ":warning: Backup Testing: WARNING" and "not configured" not in text
    # only skipped checks: the run is SKIPPED (nothing ran); no checks at all: OK
    _text, blocks = render.summary_message("d", "r3", "T", "DBA", results[2:], None)
    assert blocks[0]["text"]["text"] == ":fast_forward: T: SKIPPED"
    _text, blocks = render.summary_message("d", "r4", "T", "DBA", [], None)
    assert blocks[0]["text"]["text"] == ":white_check_mark: T: OK"


def test_summary_stays_within_slack_limits() -> None:
    many = [
        CheckResult(f"http.endpoint_{i:03d}", Status.OK, "x" * 300, "latency_ms", float(i), "ms")
        for i in range(400)
    ]
    _, blocks = render.summary_message("d", "r", "T", "DevOps", many, "http://127.0.0.1/run")
    assert len(blocks) <= render.MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")
    assert "more checks" in blocks[-2]["text"]["text"]


def test_summary_escapes_mrkdwn_and_hides_secrets() -> None:
    result = CheckResult(
        "postgres.up",
        Status.CRITICAL,
        f"<!channel> cannot reach postgresql://app:{SECRET}@db.internal:5432/app & friends",
        details={"dsn": f"host=db password={SECRET}"},
    )
    text, blocks = render.summary_message("d", "r", "T", "DevOps", [result], None)
    rendered = text + _all_text(blocks)
    assert SECRET not in rendered
    assert "postgresql://app:***@db.internal:5432/app" in rendered
    assert "<!channel>" not in rendered and "&lt;!channel&gt;" in rendered
    assert "&amp; friends" in rendered


# ---------------------------------------------------------------------------- failures


def test_failure_message() -> None:
    error = RuntimeError(f"connection to 'host=db user=app password={SECRET}' failed; token xoxb-1234-abcd")
    text, blocks = render.failure_message(
        "system_health_check",
        "check_postgres",
        "manual__2026-01-15T09:00:00+00:00",
        2,
        error,
        "http://127.0.0.1:8080/log?x=1",
        max_tries=3,
        team="DevOps",
    )
    lines = text.splitlines()
    assert lines[0] == ":boom: Task failed: `system_health_check` › `check_postgres`"
    assert lines[1] == "Run: `manual__2026-01-15T09:00:00+00:00` · try 2 of 3 · Team: DevOps"
    assert (
        lines[2]
        == "Error: RuntimeError: connection to 'host=db user=app password=***' failed; token xox*-***"
    )
    assert lines[3] == "Log: <http://127.0.0.1:8080/log?x=1|open the task log>"
    rendered = text + _all_text(blocks)
    assert SECRET not in rendered and "xoxb-1234" not in rendered
    assert blocks[-1]["elements"][0]["url"] == "http://127.0.0.1:8080/log?x=1"


def test_failure_message_without_exception_or_log() -> None:
    text, blocks = render.failure_message("d", "t", "r", None, None, None)
    assert "unknown error" in text and "Log:" not in text
    assert all(b["type"] != "actions" for b in blocks)


@pytest.mark.parametrize(
    ("raw", "leak"),
    [
        (f"postgresql://u:{SECRET}@h/db", SECRET),
        (f"redis://:{SECRET}@127.0.0.1:6379/0", SECRET),
        (f"password={SECRET} host=x", SECRET),
        (f'{{"password": "{SECRET}"}}', SECRET),
        (f"aws_secret_access_key: {SECRET}", SECRET),
        (f"Authorization: Bearer {SECRET}", SECRET),
        ("token xoxb-123456-abcdef in use", "xoxb-123456"),
        ("key AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        (f"pg_dump --password {SECRET}", SECRET),
    ],
)
def test_scrub(raw: str, leak: str) -> None:
    assert leak not in render.scrub(raw)


def test_scrub_keeps_ordinary_text_and_removes_known_values() -> None:
    plain = 'password authentication failed for user "app" at 127.0.0.1:5432'
    assert render.scrub(plain) == plain
    assert render.scrub("the value is s3cr3t!", secrets=["s3cr3t!"]) == "the value is ***"


@pytest.mark.parametrize(
    ("handle", "expected"),
    [
        ("@devops", "@devops"),
        ("devops", "@devops"),
        ("U012ABCDEF", "<@U012ABCDEF>"),
        ("@W012ABCDEF", "<@W012ABCDEF>"),
        ("S0GROUP99", "<!subteam^S0GROUP99>"),
        ("@here", "<!here>"),
        ("<@U1|alice>", "<@U1|alice>"),
        ("@devops @dba", "@devops @dba"),
        ("U012ABCDEF, @dba", "<@U012ABCDEF> @dba"),
        ("", ""),
    ],
)
def test_mention(handle: str, expected: str) -> None:
    assert render.mention(handle) == expected


def test_values_and_thresholds() -> None:
    assert render.format_value(85.25, "%") == "85.2%"
    assert render.format_value(1234.0, "ms") == "1234 ms"
    assert render.format_value(3, "count") == "3"
    assert render.format_value(0.01234, "%") == "0.0123%"
    assert render.format_value(None) == "n/a"
    assert render.format_thresholds({"critical": 90, "warning": 80}, "%") == "warning 80%, critical 90%"
