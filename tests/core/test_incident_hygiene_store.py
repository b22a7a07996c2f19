"""Silences, repeated criticals, escalations, on-call mentions, deadline alerts and the heartbeat
ping, against a real PostgreSQL results store and the Slack-Web-API-compatible server (127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg
import pytest

from sanvi_ops.core.config import SilenceSpec, load_config
from sanvi_ops.core.escalation import sweep
from sanvi_ops.core.notify.pipeline import process_run
from sanvi_ops.core.notify.slack import RetryPolicy, SlackSender, deliver_pending, make_client
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.silences import (
    SilenceError,
    active_silences,
    add_silence,
    all_silences,
    lift_silence,
    sync_config_silences,
)
from sanvi_ops.core.store import ResultStore
from tests.fixtures.connections import pg_conn, slack_conn

if TYPE_CHECKING:
    from tests.fixtures.ops_monitor import OpsMonitor
    from tests.fixtures.slack import SlackApi

pytestmark = pytest.mark.integration

DAG = "system_health_check"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday: rotation week of 2026-11-23
FAST = RetryPolicy(max_retries=1, backoff_factor=0.01, max_retry_after=2)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load_config().model_copy(update={"timezone": "UTC"})


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("hygiene"))
    s.migrate()
    return s


def _sender(api: SlackApi) -> SlackSender:
    client = make_client(api.token, base_url=api.base_url, timeout=5, policy=FAST)
    client.proxy = None
    return SlackSender(client)


def redis_down() -> CheckResult:
    return CheckResult(
        "redis.ping", Status.CRITICAL, "Redis did not answer PING", severity="P1", component="redis"
    )


def redis_ok() -> CheckResult:
    return CheckResult("redis.ping", Status.OK, "PONG in 1 ms", component="redis")


def _run(store: ResultStore, cfg, run: str, results: list[CheckResult], now: datetime):  # type: ignore[no-untyped-def]
    return process_run(store, cfg, DAG, run, now, results, None, now=now)


def _kinds(store: ResultStore) -> list[str]:
    return [m.kind for m in reversed(store.notifications(limit=1000))]


# ---------------------------------------------------------------------------------- silences


def test_add_list_lift_and_validation(store: ResultStore) -> None:
    dsn = store.dsn
    s = add_silence(
        dsn, dag_id=DAG, check_pattern="redis.*", reason="failover drill", created_by="@alice",
        expires_at=datetime.now(UTC) + timedelta(hours=2), source="ui",
    )  # fmt: skip
    assert [x.id for x in active_silences(dsn)] == [s.id] and s.source == "ui"
    with pytest.raises(
        SilenceError, match=r"silence\.reason: required.*silence\.expires: .* is not in the future"
    ):
        add_silence(
            dsn, dag_id=DAG, check_pattern=None, reason="", created_by="@a",
            expires_at=datetime.now(UTC) - timedelta(minutes=1), source="ui",
        )  # fmt: skip
    lifted = lift_silence(dsn, s.id, "@bob")
    assert lifted.lifted_at is not None and active_silences(dsn) == []
    assert lift_silence(dsn, s.id, "@bob").lifted_at == lifted.lifted_at  # idempotent
    with pytest.raises(LookupError, match="silence #999999 does not exist"):
        lift_silence(dsn, 999999, "@bob")
    assert [x.id for x in all_silences(dsn)] == [s.id]  # never deleted


def test_config_sync_is_idempotent_lifts_removed_entries_and_reports_bad_ones(store: ResultStore) -> None:
    now = datetime.now(UTC)
    keep = SilenceSpec(
        check="http.staging-*", reason="staging rebuild", expires=now + timedelta(days=1), created_by="@a"
    )
    drop = SilenceSpec(
        dag_id="log_review", reason="noisy deploy", expires=now + timedelta(days=1), created_by="@b"
    )
    too_long = SilenceSpec(dag_id=DAG, reason="forever", expires=now + timedelta(days=60), created_by="@c")
    first = sync_config_silences(store.dsn, [keep, drop, too_long], now=now)
    assert len(first.added) == 2 and first.problems == [
        f"silences[2].expires: {too_long.expires.isoformat()} is more than 30 days away "
        "(silences must end; renew it when it runs out)"
    ]
    second = sync_config_silences(store.dsn, [keep, drop, too_long], now=now)
    assert second.added == [] and second.kept == 2  # nothing duplicated
    third = sync_config_silences(store.dsn, [keep], now=now)  # `drop` deleted from the file
    assert third.lifted == [first.added[1]]
    assert [(s.check_pattern, s.source) for s in active_silences(store.dsn)] == [("http.staging-*", "config")]


def test_silenced_critical_is_stored_and_recorded_but_not_announced(
    store: ResultStore, slack_api: SlackApi, cfg
) -> None:  # type: ignore[no-untyped-def]
    add_silence(
        store.dsn, dag_id=DAG, check_pattern="redis.*", reason="Redis failover drill", created_by="@alice",
        expires_at=NOW + timedelta(hours=3), source="ui", now=NOW,
    )  # fmt: skip
    out = _run(store, cfg, "run1", [redis_down()], NOW)
    assert store.results_for_run(DAG, "run1")[0].status is Status.CRITICAL  # stored
    (incident,) = store.open_incidents(DAG)  # recorded
    assert out.opened == [] and list(out.silenced) == ["redis.ping"]
    assert _kinds(store) == ["summary"]  # no [INCIDENT], no mention
    deliver_pending(store, _sender(slack_api))
    (summary,) = slack_api.messages
    assert "silenced until 12:00 27/11/2026 UTC (Redis failover drill)" in json.dumps(summary)
    assert "[INCIDENT]" not in json.dumps(summary) and "On-call" not in json.dumps(summary)

    # Still silenced an hour later: still nothing; the sweep does not escalate a muted incident.
    _run(store, cfg, "run2", [redis_down()], NOW + timedelta(hours=1))
    report = sweep(store, cfg, now=NOW + timedelta(hours=1))
    assert report.skipped_silenced == [incident.ref] and report.escalations == []
    assert _kinds(store) == ["summary", "summary"]

    # The silence has expired: the next run announces the incident it held back, once.
    out3 = _run(store, cfg, "run3", [redis_down()], NOW + timedelta(hours=4))
    assert out3.opened == [incident.ref] and out3.silenced == {}
    assert _kinds(store) == ["summary", "summary", "incident", "summary"]
    _run(store, cfg, "run3", [redis_down()], NOW + timedelta(hours=4))  # retried record task
    assert _kinds(store).count("incident") == 1


def test_a_config_silence_is_synced_and_honoured_by_the_record_step(store: ResultStore, cfg) -> None:  # type: ignore[no-untyped-def]
    spec = SilenceSpec(
        dag_id=DAG, reason="Redis upgrade, CHG-42", expires=NOW + timedelta(hours=2), created_by="@dba"
    )
    with_silence = cfg.model_copy(update={"silences": [spec]})
    out = process_run(store, with_silence, DAG, "run1", NOW, [redis_down()], None, now=NOW)
    assert out.silenced == {"redis.ping": "silenced until 11:00 27/11/2026 UTC (Redis upgrade, CHG-42)"}
    assert _kinds(store) == ["summary"]
    (row,) = active_silences(store.dsn, now=NOW)
    assert (row.source, row.dag_id, row.check_pattern, row.created_by) == ("config", DAG, None, "@dba")
    # Removed from the file: lifted, and the still-critical check is announced.
    process_run(store, cfg, DAG, "run2", NOW, [redis_down()], None, now=NOW + timedelta(minutes=5))
    assert active_silences(store.dsn, now=NOW) == [] and "incident" in _kinds(store)


def test_an_incident_never_announced_resolves_quietly(store: ResultStore, cfg) -> None:  # type: ignore[no-untyped-def]
    add_silence(
        store.dsn, dag_id=None, check_pattern="redis.ping", reason="known", created_by="@a",
        expires_at=NOW + timedelta(hours=3), source="ui", now=NOW,
    )  # fmt: skip
    _run(store, cfg, "run1", [redis_down()], NOW)
    out = _run(store, cfg, "run2", [redis_ok()], NOW + timedelta(hours=1))
    assert len(out.resolved) == 1 and store.open_incidents(DAG) == []
    assert "resolved" not in _kinds(store)


# ------------------------------------------------------- repeated criticals, escalation, on-call


def test_repeated_criticals_update_one_incident_at_the_p1_cadence(store: ResultStore, cfg) -> None:  # type: ignore[no-untyped-def]
    first = _run(store, cfg, "run1", [redis_down()], NOW)
    for minutes, run in ((10, "run2"), (29, "run3"), (31, "run4"), (45, "run5"), (62, "run6")):
        _run(store, cfg, run, [redis_down()], NOW + timedelta(minutes=minutes))
    assert store.table_counts()["incidents"] == 1
    updates = [m.dedupe_key for m in store.notifications(limit=100) if m.kind == "update"]
    incident_id = first.opened[0].lstrip("#")
    assert sorted(updates) == [f"update:{incident_id}:run4", f"update:{incident_id}:run6"]  # every 30 min


def test_incident_mentions_the_weeks_on_call_primary_and_secondary(store: ResultStore, cfg) -> None:  # type: ignore[no-untyped-def]
    # Week of Monday 2026-11-23 09:00: week 98 after 2025-01-06 → members[98 % 4], then the next one.
    primary, secondary = cfg.on_call_at(NOW)
    assert cfg.on_call.week_index(NOW) == 98
    assert (primary, secondary) == ("@devops-engineer-2", "@dev-engineer-2")
    out = _run(store, cfg, "run1", [redis_down()], NOW)
    message = store.get_notification(f"incident:{out.opened[0].lstrip('#')}")
    assert message is not None and message.text.endswith(
        "On-call: @devops-engineer-2 (secondary: @dev-engineer-2)"
    )
    # Monday 08:59 is still last week's pair; 09:00 the handoff.
    monday = datetime(2026, 11, 30, 8, 59, tzinfo=UTC)
    assert cfg.on_call_at(monday) == (primary, secondary)
    assert cfg.on_call_at(monday + timedelta(minutes=1)) == ("@dev-engineer-2", "@devops-engineer-1")


def test_open_incident_escalates_on_call_to_team_lead_to_cto_once_per_level(
    store: ResultStore,
    slack_api: SlackApi,
    cfg,  # type: ignore[no-untyped-def]
) -> None:
    sender = _sender(slack_api)
    out = _run(store, cfg, "run1", [redis_down()], NOW)
    deliver_pending(store, sender)
    ref = out.opened[0]
    assert sweep(store, cfg, now=NOW + timedelta(minutes=29)).escalations == []
    r1 = sweep(store, cfg, now=NOW + timedelta(minutes=31))
    assert r1.escalations == [f"{ref}→Team Lead"]  # and no "still open, no newer result" update
    again = sweep(store, cfg, now=NOW + timedelta(minutes=32))
    assert again.escalations == []
    r2 = sweep(store, cfg, now=NOW + timedelta(minutes=61))
    assert r2.escalations == [f"{ref}→CTO"]
    assert sweep(store, cfg, now=NOW + timedelta(hours=5)).escalations == []
    deliver_pending(store, sender)

    incident_msg = next(m for m in slack_api.messages if m["text"].startswith("[INCIDENT]"))
    escalations = [m for m in slack_api.messages if m["text"].startswith("[ESCALATION]")]
    assert [m["thread_ts"] for m in escalations] == [incident_msg["ts"]] * 2
    assert "Escalated to: Team Lead @devops-lead" in escalations[0]["text"]
    assert "Escalated to: CTO @cto" in escalations[1]["text"]
    assert "longer than the 1 h after which a P1 is escalated" in escalations[1]["text"]
    assert not [m for m in slack_api.messages if m["text"].startswith("[UPDATE]")]  # the sweep adds none
    keys = [m.dedupe_key for m in store.notifications(limit=100) if m.kind == "escalation"]
    assert sorted(keys) == [f"escalation:{ref[1:]}:1", f"escalation:{ref[1:]}:2"]

    # Resolved: nothing more to escalate.
    _run(store, cfg, "run2", [redis_ok()], NOW + timedelta(hours=6))
    assert sweep(store, cfg, now=NOW + timedelta(hours=9)).open_incidents == 0


# --------------------------------------------------------------------------- deadline alerts


@pytest.fixture
def airflow_env(store: ResultStore, slack_api: SlackApi, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AIRFLOW_CONN_SANVI_OPS_STORE", pg_conn(store.dsn))
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_API_DEFAULT",
        slack_conn(slack_api),
    )
    return store


def _deadline_context(run_id: str) -> dict:
    """What the scheduler gives a deadline callback (models/deadline.py: handle_miss)."""
    return {
        "dag_run": {
            "dag_run_id": run_id, "dag_id": "backup_verification", "state": "running",
            "logical_date": "2026-11-27T10:00:00Z", "queued_at": "2026-11-27T10:00:02.512Z",
            "start_date": "2026-11-27T10:00:03Z", "end_date": None, "run_type": "scheduled",
        },
        "deadline": {"id": "0199c2f1-aaaa-7bbb-8ccc-0123456789ab", "deadline_time": "2026-11-27T11:00:02.512000+00:00"},
    }  # fmt: skip


def test_missed_deadline_is_stored_then_posted_once(airflow_env: ResultStore, slack_api: SlackApi) -> None:
    from sanvi_ops.airflow_kit.callbacks import on_deadline_missed

    ctx = _deadline_context("scheduled__2026-11-27T10:00:00+00:00")
    assert asyncio.run(on_deadline_missed(context=ctx, allowed_seconds=3600)).startswith("queued ")
    asyncio.run(
        on_deadline_missed(
            context=_deadline_context("scheduled__2026-11-27T10:00:00+00:00"), allowed_seconds=3600
        )
    )
    (message,) = slack_api.messages
    assert message["channel"] == load_config().slack.channel
    assert message["text"].startswith(
        ":hourglass: Overdue: Backup Verification (`backup_verification`) @devops"
    )
    assert "has not finished after 1 h (deadline 11:00 27/11/2026 UTC); state: running" in message["text"]
    (row,) = airflow_env.notifications()
    assert (row.kind, row.dedupe_key, row.sent_at is not None) == (
        "deadline", "deadline:backup_verification:scheduled__2026-11-27T10:00:00+00:00", True,
    )  # fmt: skip


def test_missed_deadline_with_slack_down_stays_in_the_outbox(
    airflow_env: ResultStore, slack_api: SlackApi
) -> None:
    from sanvi_ops.airflow_kit.callbacks import report_deadline_miss

    # chat.postMessage answers 500 to the first try and its 3 retries (each retry follows a lookup
    # in the channel, which works: a 500 may hide an accepted post).
    slack_api.fail_next(status=500, n=4, only_posts=True)
    report_deadline_miss(_deadline_context("manual__1"), 3600)
    assert airflow_env.count_pending() == 1  # kept; the watchdog's flush sends it later
    deliver_pending(airflow_env, _sender(slack_api))
    assert airflow_env.count_pending() == 0


# ----------------------------------------------------------------------------- heartbeat ping


def test_heartbeat_ping_and_its_failures(ops_monitor: OpsMonitor) -> None:
    from sanvi_ops.tasks.sanvi_ops_watchdog.heartbeat import ping

    ok = ping(ops_monitor.ping_url, timeout_s=5, body="sanvi_ops_watchdog run1")
    assert ok.ok and ok.status_code == 200 and ops_monitor.pings[-1]["body"] == "sanvi_ops_watchdog run1"
    assert "5f1c6a52" not in ok.detail  # the URL's path is the monitor's secret
    ops_monitor.ping_status = 500
    bad = ping(ops_monitor.ping_url, timeout_s=5)
    assert not bad.ok and "answered HTTP 500" in bad.detail
    from devstack.postgres import free_port

    down = ping(f"http://127.0.0.1:{free_port()}/ping/x", timeout_s=2)
    assert not down.ok and "ConnectError" in down.detail


def test_watchdog_ping_without_a_connection_is_a_recorded_warning(
    airflow_env: ResultStore, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from sanvi_ops.tasks.sanvi_ops_watchdog.airflow_tasks import ping_heartbeat

    monkeypatch.delenv("AIRFLOW_CONN_SANVI_HEARTBEAT", raising=False)
    out = ping_heartbeat("sanvi_ops_watchdog", "manual__1")
    assert out["pinged"] is False and "'sanvi_heartbeat' is not defined" in out["detail"]
    beat = airflow_env.latest_heartbeat("sanvi_ops_watchdog")
    assert beat is not None and beat["run_id"] == "manual__1" and beat["pinged"] is False
    with psycopg.connect(airflow_env.dsn) as conn:
        assert conn.execute("SELECT count(*) FROM heartbeats").fetchone() == (1,)


# ------------------------------------------------------- closing incidents by component and target


@pytest.mark.parametrize(
    ("dag", "failed", "healthy", "said"),
    [
        (  # the whole component timed out; the next run names the instance
            "system_health_check",
            CheckResult("rds", Status.CRITICAL, "rds did not answer within 20 s", component="rds"),
            [
                CheckResult(
                    "rds.sanvi-production-db",
                    Status.OK,
                    "RDS instance sanvi-production-db is available",
                    component="rds",
                )
            ],
            "rds is healthy again in run run2: rds.sanvi-production-db ok",
        ),
        (  # no restorable backup yet; the next restore test runs, optional parts not configured
            "backup_testing",
            CheckResult(
                "restore.run", Status.CRITICAL, "no restorable backup", severity="P1", component="backups"
            ),
            [
                CheckResult(
                    "restore.amcheck", Status.OK, "pg_amcheck --all: no corruption found", component="backups"
                ),
                CheckResult("restore.rto", Status.OK, "restored in 40 s", component="backups"),
                CheckResult(
                    "restore.smoke", Status.SKIPPED, "no smoke queries configured", component="backups"
                ),
            ],
            "restore.run is healthy again in run run2: restore.amcheck ok, restore.rto ok",
        ),
        (  # the DR drill's database part (renamed dr.database.*)
            "dr_testing",
            CheckResult(
                "dr.database.run", Status.CRITICAL, "no restorable backup", severity="P1", component="dr"
            ),
            [
                CheckResult("dr.scope", Status.OK, "scope database", component="dr"),
                CheckResult("dr.database.amcheck", Status.OK, "no corruption found", component="dr"),
            ],
            "dr.database.run is healthy again in run run2: dr.database.amcheck ok",
        ),
    ],
    ids=["rds", "restore.run", "dr.database.run"],
)
def test_an_incident_closes_when_its_component_is_healthy_under_another_check_name(
    store: ResultStore, cfg, dag: str, failed: CheckResult, healthy: list[CheckResult], said: str
) -> None:  # type: ignore[no-untyped-def]
    first = process_run(store, cfg, dag, "run1", NOW, [failed], None, now=NOW)
    [incident] = store.open_incidents(dag)
    assert first.opened == [incident.ref] and incident.component == failed.component
    later = NOW + timedelta(hours=1)
    out = process_run(store, cfg, dag, "run2", later, healthy, None, now=later)
    assert out.resolved == [incident.ref] and store.open_incidents(dag) == []
    resolved = store.get_notification(f"resolved:{incident.id}")
    assert resolved is not None and said in resolved.text
    assert f"Service: {failed.component}" in resolved.text
    closed = store.get_incident(incident.id)
    assert closed is not None and closed.resolved_run_id == "run2"


def test_an_incident_whose_check_is_gone_from_a_complete_run_closes_as_no_longer_checked(
    store: ResultStore, cfg
) -> None:  # type: ignore[no-untyped-def]
    old = CheckResult("http.old-site", Status.CRITICAL, "HTTP 503", severity="P1", component="http")
    api = CheckResult("http.api", Status.OK, "200 in 40 ms", component="http")
    _run(store, cfg, "run1", [old, api], NOW)
    [incident] = store.open_incidents(DAG)
    crashed = CheckResult(
        "check_aws.task", Status.ERROR, "task check_aws returned no results", component="check_aws"
    )
    _run(store, cfg, "run2", [api, crashed], NOW + timedelta(minutes=10))  # incomplete: stays open
    assert [i.id for i in store.open_incidents(DAG)] == [incident.id]
    _run(store, cfg, "run3", [api], NOW + timedelta(minutes=20))
    assert store.open_incidents(DAG) == []
    resolved = store.get_notification(f"resolved:{incident.id}")
    assert (
        resolved is not None
        and "http.old-site is no longer checked: run run3 completed without it" in resolved.text
    )


def test_incidents_from_before_migration_014_get_their_component(
    make_db: Callable[[str], str], tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """The backfill: an incident opened before the column existed takes its result's component."""
    import shutil

    from sanvi_ops.core.store import MIGRATIONS_DIR

    store = ResultStore(make_db("backfill"))
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:3]) < 14:
            shutil.copy(path, tmp_path)
    store.migrate(tmp_path)  # the schema as it was (same files, same checksums)
    failed = CheckResult("restore.run", Status.CRITICAL, "no restorable backup", component="backups")
    store.save_results("backup_testing", "run1", NOW, [failed])
    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO incidents (dag_id, check_name, severity, summary, opened_run_id) "
            "VALUES ('backup_testing', 'restore.run', 'P1', 'no restorable backup', 'run1')"
        )
    assert "014_incident_components.sql" in store.migrate()
    [incident] = store.open_incidents("backup_testing")
    assert incident.component == "backups"
