"""The Maintenance page's data and HTML (sanvi_ops.page) against a real PostgreSQL results store.

Every row is written through the store's own API (ResultStore) or, for tables other helpers own
(recovery_tests, silences), with the SQL their migrations define; the page reads them back.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from sanvi_ops.core.config import load_config
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import MIGRATIONS_DIR, ResultStore
from sanvi_ops.page import (
    SilencesUnavailable,
    StoreUnavailable,
    add_silence,
    all_dag_ids,
    lift_silence,
    load_page,
    recovery_chart_svg,
    render_page,
)

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def cfg():  # type: ignore[no-untyped-def]
    return load_config()


def _migrated_without_silences(dsn: str, tmp_path: Path) -> ResultStore:
    """The store as it is before migration 011 (no silences table), whatever this tree holds."""
    older = tmp_path / "migrations"
    older.mkdir()
    for path in MIGRATIONS_DIR.glob("*.sql"):
        if int(path.name[:3]) < 11:
            shutil.copy(path, older / path.name)
    store = ResultStore(dsn)
    store.migrate(older)
    return store


@pytest.fixture
def store_dsn(make_db: Callable[[str], str]) -> str:
    dsn = make_db("page")
    ResultStore(dsn).migrate()
    return dsn


def _result(check: str, status: Status, summary: str = "", **kw: object) -> CheckResult:
    return CheckResult(check=check, status=status, summary=summary or f"{check} is {status.value}", **kw)  # type: ignore[arg-type]


def _recovery(dsn: str, dag_id: str, kind: str, started: dt.datetime, rto_s: float) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(
            """
            INSERT INTO recovery_tests (dag_id, run_id, kind, started_at, status, rto_seconds)
            VALUES (%s, %s, %s, %s, 'ok', %s)
            """,
            [dag_id, f"manual__{started.isoformat()}", kind, started, rto_s],
        )


def test_unmigrated_store_shows_the_calendar_and_says_why_nothing_else(make_db, cfg) -> None:  # type: ignore[no-untyped-def]
    data = load_page(make_db("empty"), cfg, now=NOW, store_name="results store (connection 'x')")
    assert data.problems == [
        "results store (connection 'x') has no schema yet: run `python -m sanvi_ops migrate` (deploy/airflow-init.sh and make run do at start)"
    ]
    # The guide's four tables, every task in its cadence, each with a next run in the future.
    for cadence in ("daily", "weekly", "monthly", "quarterly", "annually"):
        rows = data.calendar[cadence]
        assert {r.dag_id for r in rows} == {d for d, t in cfg.tasks.items() if t.cadence == cadence}
        assert all(r.next_run is not None and r.next_run >= NOW for r in rows)
        assert all(r.last_status is None for r in rows)
    assert {r.dag_id for r in data.calendar["backups"]} >= {"database_backup_full"}
    html = render_page(data, user="alice", csrf_token="t", may_silence=True)
    assert "has no schema yet" in html and "never ran" in html


def test_unreachable_store_is_a_problem_line_without_the_password(cfg) -> None:  # type: ignore[no-untyped-def]
    dsn = "host=127.0.0.1 port=1 dbname=store user=ops password=s3cret-pw connect_timeout=2"
    data = load_page(dsn, cfg, now=NOW)
    assert len(data.problems) == 1 and "could not be read" in data.problems[0]
    assert "s3cret-pw" not in data.problems[0]
    assert data.calendar["daily"]
    assert data.unavailable == data.problems[0]  # the plugin answers 503 with it


def test_silence_writes_with_the_store_down_raise_a_reason_not_a_driver_error(cfg) -> None:  # type: ignore[no-untyped-def]
    """Adding or lifting a silence while the store is down was a raw psycopg.OperationalError
    (HTTP 500); it is a StoreUnavailable naming the action, without the password."""
    dsn = "host=127.0.0.1 port=1 dbname=store user=ops password=s3cret-pw connect_timeout=2"
    known = all_dag_ids(cfg)
    with pytest.raises(StoreUnavailable, match="could not add the silence: .*refused") as added:
        add_silence(
            dsn, dag_id="system_health_check", check_pattern=None, reason="disk swap", created_by="alice",
            expires_at=NOW + dt.timedelta(hours=1), known_dag_ids=known,
        )  # fmt: skip
    with pytest.raises(StoreUnavailable, match="could not lift silence #7") as lifted:
        lift_silence(dsn, 7, by="alice", known_dag_ids=known)
    assert "s3cret-pw" not in str(added.value) + str(lifted.value)


def test_watchdog_row_comes_from_its_heartbeats_and_skipped_checks_do_not_head_a_run(  # type: ignore[no-untyped-def]
    store_dsn: str, cfg
) -> None:
    """The watchdog records heartbeats, not check results: its row showed "never ran" after
    successful runs. A run whose only non-ok results are skipped (optional checks not
    configured) is ok, as its Slack headline."""
    store = ResultStore(store_dsn)
    store.record_heartbeat("sanvi_ops_watchdog", "scheduled__1", pinged=False, detail="no heartbeat ping: x")
    store.record_heartbeat("sanvi_ops_watchdog", "scheduled__2", pinged=True, detail="pinged in 12 ms")
    store.save_results(
        "backup_testing",
        "manual__1",
        NOW,
        [
            _result("restore.amcheck", Status.OK),
            _result(
                "restore.smoke",
                Status.SKIPPED,
                details={"config_key": "tasks.backup_testing.settings.smoke_queries"},
            ),
        ],
    )
    data = load_page(store_dsn, cfg, now=NOW)
    rows = {r.dag_id: r for rows in data.calendar.values() for r in rows}
    watchdog = rows["sanvi_ops_watchdog"]
    assert watchdog.last_status == "ok" and watchdog.last_run_id == "scheduled__2"
    assert watchdog.last_run is not None
    assert rows["backup_testing"].last_status == "ok"
    html = render_page(data, user="alice", csrf_token="t", may_silence=True)
    row = re.search(r'<tr data-dag="sanvi_ops_watchdog">.*?</tr>', html, re.DOTALL)
    assert row and "never ran" not in row.group(0) and "1 check ok" in row.group(0)
    store.record_heartbeat(
        "sanvi_ops_watchdog", "scheduled__3", pinged=False, detail="HTTP 500 from the monitor"
    )
    failed = {r.dag_id: r for rows in load_page(store_dsn, cfg, now=NOW).calendar.values() for r in rows}
    assert failed["sanvi_ops_watchdog"].last_status == "error"
    assert failed["sanvi_ops_watchdog"].last_summary == "HTTP 500 from the monitor"


def test_latest_run_status_incidents_slos_notifications_and_recovery(store_dsn: str, cfg) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(store_dsn)
    older, newer = NOW - dt.timedelta(days=1, hours=2), NOW - dt.timedelta(hours=2)
    store.save_results("system_health_check", "r1", older, [_result("http.api", Status.CRITICAL)])
    store.save_results(
        "system_health_check",
        "r2",
        newer,
        [
            _result("http.api", Status.OK, metric="latency_ms", observed=120.0, unit="ms"),
            _result(
                "http.web", Status.WARNING, "web p95 412 ms", metric="latency_ms", observed=412.0, unit="ms"
            ),
            _result("postgres.availability", Status.OK),
        ],
    )
    store.save_results(
        "performance_analysis",
        "p1",
        newer,
        [
            _result("service.availability", Status.OK, observed=80.0, details={"availability_pct": 99.95}),
            _result("service.latency_p95", Status.WARNING, observed=340.0, details={"week_ms": 340.0}),
            _result("service.error_rate", Status.OK, observed=0.02, details={"week_pct": 0.02}),
        ],
    )
    inc = store.open_incident(
        "system_health_check", "http.web", "P2", "r2", "web down", at=NOW - dt.timedelta(hours=3, minutes=5)
    )
    fixed = store.open_incident(
        "log_review", "logs.rate", "P3", "l1", "errors", at=NOW - dt.timedelta(days=3)
    )
    store.resolve_incident(fixed.id, "l2", at=NOW - dt.timedelta(days=3) + dt.timedelta(minutes=95))
    sent = store.enqueue("summary:a", "system_health_check", "r1", "summary", "#ops", "first\nline two", None)
    store.mark_sent(sent, "1.1", "C1")
    gone = store.enqueue("summary:b", "system_health_check", "r2", "summary", "#nope", "never posted", None)
    store.mark_failed(gone, "channel_not_found", give_up=True)
    store.enqueue("incident:1", "system_health_check", "r2", "incident", "#inc", "[INCIDENT] #1 P2", None)
    _recovery(store_dsn, "backup_testing", "restore_test", NOW - dt.timedelta(days=20), 1500)
    _recovery(store_dsn, "dr_testing", "dr_database", NOW - dt.timedelta(days=10), 4300)
    _recovery(store_dsn, "backup_testing", "restore_test", NOW - dt.timedelta(days=6), 1320)

    data = load_page(store_dsn, cfg, now=NOW)
    assert data.problems == []
    health = next(r for r in data.calendar["daily"] if r.dag_id == "system_health_check")
    assert (health.last_run_id, health.last_status, health.checks) == ("r2", "warning", 3)
    assert health.last_summary == "web p95 412 ms"
    assert next(r for r in data.calendar["daily"] if r.dag_id == "log_review").last_status is None

    assert [(i.ref, i.severity, i.dag_id) for i in data.incidents] == [(inc.ref, "P2", "system_health_check")]
    assert dt.timedelta(hours=3) <= data.incidents[0].age < dt.timedelta(hours=3, minutes=10)

    slo = {s.name: s for s in data.slos}
    assert (slo["Availability"].state, slo["Availability"].measured) == ("met", "99.950 % this month")
    assert slo["Response time (p95)"].state == "missed"
    assert slo["Response time (daily probe, slowest endpoint)"].measured == "412 ms (web)"
    assert slo["Error rate"].state == "met"
    # Latest recovery test (22 min) meets the hour; the incident that took 95 min does not.
    assert (
        slo["Recovery time (latest recovery test)"].state,
        slo["Recovery time (latest recovery test)"].measured,
    ) == (
        "met",
        "22 min (restore_test)",
    )
    assert slo["Recovery time (incidents, last 90 days)"].state == "missed"

    assert [(p.kind, p.rto_seconds) for p in data.recovery] == [
        ("restore_test", 1500),
        ("dr_database", 4300),
        ("restore_test", 1320),
    ]
    assert (data.pending_count, data.given_up_count) == (1, 1)
    assert [(n.kind, n.state) for n in data.undelivered] == [("incident", "pending"), ("summary", "given up")]
    assert [n.state for n in data.notifications] == ["pending", "given up", "sent"]

    html = render_page(data, user="alice", csrf_token="tok", may_silence=True)
    assert 'data-dag="system_health_check"' in html and inc.ref in html and "3 h 5 min" in html
    assert "1 pending, 1 given up" in html and "channel_not_found" in html
    # The chart: one point per test, the 70-min DR drill marked as over the objective.
    assert html.count('class="point') == 3 and html.count('class="point over"') == 1
    assert "objective 60 min" in html


def test_pending_signoffs_are_listed(store_dsn: str, cfg) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(store_dsn) as conn:
        for task, outcome, responded in [("sign_off", "pending", None), ("done", "approved", NOW)]:
            conn.execute(
                """
                INSERT INTO signoffs (dag_id, run_id, task_id, kind, team, team_name, subject, deadline,
                                      outcome, responded_at, url)
                VALUES ('architecture_review', 'q1', %s, 'signoff', 'architecture', 'Architecture Team',
                        'Q4 architecture review', %s, %s, %s, '/dags/architecture_review/required_actions')
                """,
                [task, NOW + dt.timedelta(days=5), outcome, responded],
            )
    data = load_page(store_dsn, cfg, now=NOW)
    assert [(s.dag_id, s.team, s.subject) for s in data.signoffs] == [
        ("architecture_review", "Architecture Team", "Q4 architecture review")
    ]
    html = render_page(data, user="a", csrf_token="t", may_silence=False)
    assert "Waiting for a person (1)" in html and 'href="/dags/architecture_review/required_actions"' in html
    assert load_page(store_dsn, cfg, now=NOW, readable_dag_ids={"log_review"}).signoffs == []


def test_rows_of_dags_the_user_may_not_read_are_left_out(store_dsn: str, cfg) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(store_dsn)
    store.save_results("log_review", "l1", NOW, [_result("logs.rate", Status.CRITICAL)])
    store.open_incident("log_review", "logs.rate", "P3", "l1", "errors")
    store.enqueue("summary:l1", "log_review", "l1", "summary", "#ops", "log review", None)
    _recovery(store_dsn, "dr_testing", "dr_database", NOW - dt.timedelta(days=3), 1800)

    data = load_page(store_dsn, cfg, now=NOW, readable_dag_ids={"system_health_check"})
    assert [r.dag_id for rows in data.calendar.values() for r in rows] == ["system_health_check"]
    assert data.incidents == [] and data.notifications == [] and data.recovery == []
    assert data.dag_ids == ["system_health_check"]


def test_alertmanager_incidents_show_to_who_may_read_every_dag(make_db, cfg) -> None:  # type: ignore[no-untyped-def]
    """An alert's incident (DAG id ``alertmanager``, not a DAG) is shown to a user who may read
    every DAG, as acknowledging it needs edit on every DAG; a user of one DAG does not see it."""
    dsn = make_db("store_alerts")
    ResultStore(dsn).open_incident("alertmanager", "SanviCpuCritical[backend-1]", "P2", "am1", "CPU 97 %")
    everyone = load_page(dsn, cfg, now=NOW)
    assert [(i.dag_id, i.check) for i in everyone.incidents] == [
        ("alertmanager", "SanviCpuCritical[backend-1]")
    ]
    assert load_page(dsn, cfg, now=NOW, readable_dag_ids={"system_health_check"}).incidents == []


def test_silences_add_list_lift_and_validation(store_dsn: str, cfg) -> None:  # type: ignore[no-untyped-def]
    known = all_dag_ids(cfg)
    later = NOW + dt.timedelta(hours=4)

    def add(**kw: object) -> int:
        args: dict[str, object] = {
            "dag_id": "log_review",
            "check_pattern": "logs.*",
            "reason": "deploy in progress",
            "created_by": "alice",
            "expires_at": later,
            "known_dag_ids": known,
        }
        args.update(kw)
        return add_silence(store_dsn, **args)  # type: ignore[arg-type]

    for bad, message in [
        ({"reason": "  "}, "silence.reason: required"),
        ({"expires_at": NOW - dt.timedelta(minutes=1)}, "is not in the future"),
        ({"expires_at": NOW + dt.timedelta(days=31)}, "is more than 30 days away"),
        ({"dag_id": "no_such_dag"}, "silence.dag_id: 'no_such_dag' is not a DAG"),
        ({"created_by": ""}, "silence.created_by: required"),
        ({"dag_id": None, "check_pattern": None}, "name a dag_id or a check pattern"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            add(**bad)

    first = add()
    every = add(dag_id=None, check_pattern="aws.s3[*]", reason="AWS maintenance")
    with psycopg.connect(store_dsn) as conn:
        from_config = conn.execute(
            "INSERT INTO silences (dag_id, check_pattern, reason, created_by, source, expires_at)"
            " VALUES ('disk_space_check', NULL, 'resize planned', 'ops', 'config', %s) RETURNING id",
            [NOW + dt.timedelta(days=2)],
        ).fetchone()[0]
    data = load_page(store_dsn, cfg, now=NOW)
    assert data.silences_available
    assert [(s.id, s.dag_id, s.check_pattern, s.created_by, s.source) for s in data.silences] == [
        (first, "log_review", "logs.*", "alice", "ui"),
        (every, None, "aws.s3[*]", "alice", "ui"),
        (from_config, "disk_space_check", None, "ops", "config"),
    ]
    html = render_page(data, user="alice", csrf_token="tok", may_silence=True)
    assert f'action="silences/{first}/lift"' in html and 'name="reason" required' in html
    # A silence from the config file is lifted by deleting its entry, not on the page.
    assert f'action="silences/{from_config}/lift"' not in html
    with pytest.raises(ValueError, match="comes from the config file"):
        lift_silence(store_dsn, from_config, by="alice")
    assert "Add silence" not in render_page(data, user="bob", csrf_token="", may_silence=False)

    # Lifting needs edit access to the silenced DAG (every DAG for a silence of every DAG).
    with pytest.raises(PermissionError, match=f"silence #{every}: bob may not edit DAG"):
        lift_silence(store_dsn, every, by="bob", editable_dag_ids={"log_review"}, known_dag_ids=known)
    assert lift_silence(store_dsn, first, by="bob", editable_dag_ids={"log_review"}, known_dag_ids=known)
    assert not lift_silence(store_dsn, first, by="bob")  # already lifted
    assert [s.id for s in load_page(store_dsn, cfg, now=NOW).silences] == [every, from_config]


def test_without_the_silences_table_the_page_says_so_and_writes_refuse(make_db, cfg, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dsn = make_db("page_old")
    _migrated_without_silences(dsn, tmp_path)
    data = load_page(dsn, cfg, now=NOW)
    assert data.problems == [] and not data.silences_available
    html = render_page(data, user="alice", csrf_token="t", may_silence=True)
    assert "store migration 011" in html and "Add silence" not in html
    with pytest.raises(SilencesUnavailable, match="migration 011"):
        add_silence(
            dsn,
            dag_id=None,
            check_pattern=None,
            reason="r",
            created_by="a",
            expires_at=NOW + dt.timedelta(hours=1),
            known_dag_ids=[],
        )
    with pytest.raises(SilencesUnavailable):
        lift_silence(dsn, 1, by="a")


def test_hostile_text_from_the_store_is_escaped(store_dsn: str, cfg) -> None:  # type: ignore[no-untyped-def]
    store = ResultStore(store_dsn)
    store.save_results(
        "system_health_check", "x", NOW, [_result("http.x", Status.ERROR, '<script>alert("x")</script>')]
    )
    store.enqueue(
        "summary:x", "system_health_check", "x", "summary", "#ops", "<img src=x onerror=alert(1)>", None
    )
    add_silence(
        store_dsn, dag_id="system_health_check", check_pattern='http."x"<b>', created_by='"><script>',
        reason='<script>alert("r")</script>', expires_at=NOW + dt.timedelta(hours=1),
        known_dag_ids=all_dag_ids(cfg),
    )  # fmt: skip
    html = render_page(
        load_page(store_dsn, cfg, now=NOW), user="<b>eve</b>", csrf_token='"x', may_silence=True
    )
    assert "<script>" not in html and "<img src=x" not in html and "<b>eve" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html  # the check summary
    assert "&lt;script&gt;alert(&#34;r&#34;)&lt;/script&gt;" in html  # the silence reason
    assert "http.&#34;x&#34;&lt;b&gt;" in html and "&#34;&gt;&lt;script&gt; (ui)" in html
    assert "&lt;b&gt;eve&lt;/b&gt;" in html and 'value="&#34;x"' in html  # the user, the form token


def test_chart_without_measurements_says_so() -> None:
    svg = recovery_chart_svg([], 3600, start=NOW - dt.timedelta(days=365), end=NOW)
    assert svg.startswith("<svg") and "no recovery time measured" in svg and "objective 60 min" in svg


def test_recovery_phases_and_rto_forecast_are_shown_and_escaped(store_dsn: str, cfg) -> None:  # type: ignore[no-untyped-def]
    """Issue 18: each test's phases as a stacked bar with its line, capacity planning's forecast;
    a hostile phase name from the store is escaped."""
    from psycopg.types.json import Jsonb

    phases = [
        {"name": "download", "seconds": 12.1, "bytes": 1_875_500_000, "mb_per_s": 155.0, "in_rto": True},
        {"name": "start", "seconds": 3.0, "bytes": None, "mb_per_s": None, "in_rto": True},
        {"name": "<img src=x onerror=alert(1)>", "seconds": 40.0, "in_rto": False},
    ]
    with psycopg.connect(store_dsn) as conn:
        conn.execute(
            """
            INSERT INTO recovery_tests (dag_id, run_id, kind, started_at, status, rto_seconds, details)
            VALUES ('backup_testing', 'r1', 'restore_test', %s, 'ok', 15.5, %s),
                   ('backup_testing', 'r0', 'restore_test', %s, 'ok', 20, '{"phases": "not a list"}')
            """,
            [NOW - dt.timedelta(days=1), Jsonb({"phases": phases}), NOW - dt.timedelta(days=8)],
        )
    ResultStore(store_dsn).save_results(
        "capacity_planning",
        "cp1",
        NOW,
        [
            _result(
                "rto_forecast",
                Status.WARNING,
                "RTO forecast: the restore crosses the 60 min objective in month 3",
            )
        ],
    )
    data = load_page(store_dsn, cfg, now=NOW)
    assert [len(p.phases) for p in data.recovery] == [0, 3]
    assert data.rto_forecast is not None and data.rto_forecast[0] == "warning"
    html = render_page(data, user="u", csrf_token="t", may_silence=False)
    assert "phases: download 12.1 s (155 MB/s) · start 3.0 s" in html
    assert "class=phasebar" in html and "<title>download: 12.1 s (155.0 MB/s)</title>" in html
    assert "crosses the 60 min objective in month 3" in html and "s-warning" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html

    hidden = load_page(store_dsn, cfg, now=NOW, readable_dag_ids=["backup_testing"])
    assert hidden.rto_forecast is None  # capacity_planning not readable: its forecast is not shown
