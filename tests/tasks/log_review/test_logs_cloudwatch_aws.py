"""Log Review against the moto server (CloudWatch Logs) and a real results store.

Events are seeded with ``create_log_group`` / ``put_log_events``. moto 5.2 does not evaluate
OR terms in filter patterns (``?ERROR ?CRITICAL``) and returns every event for them; the
review re-checks the level locally, which is what these tests rely on for the counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from sanvi_ops.core.config import Threshold
from sanvi_ops.core.results import Status
from sanvi_ops.core.store import ResultStore
from sanvi_ops.tasks.log_review.logs import RateLimits, SignatureStore, review_group, review_postgres_log

pytestmark = pytest.mark.integration

GROUP = "/ecs/sanvi-production/backend"
LIMITS = RateLimits(
    percent=Threshold(warning=1, critical=5, unit="%"),
    per_minute=Threshold(warning=1, critical=10, unit="errors/min"),
)
PATTERN = "?ERROR ?CRITICAL ?FATAL"


def _end() -> datetime:
    # moto refuses events older than 14 days or in the future: the window ends now.
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _put(logs, group: str, events: list[tuple[datetime, str]], stream: str = "app-1") -> None:
    try:
        logs.create_log_group(logGroupName=group)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    batch = sorted(
        ({"timestamp": int(t.timestamp() * 1000), "message": m} for t, m in events),
        key=lambda e: e["timestamp"],
    )
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)


def _seed(logs, end: datetime) -> None:
    ev: list[tuple[datetime, str]] = []
    for i in range(90):
        ev.append((end - timedelta(minutes=10 + i), f"INFO GET /api/orders/{i} 200 in {i + 3} ms"))
    for i, ms in enumerate((3012, 15, 880)):
        ev.append((end - timedelta(hours=1, minutes=i), f"ERROR timeout after {ms} ms for order {8800 + i}"))
    ev.append((end - timedelta(hours=2), "CRITICAL database 10.0.3.17:5432 unreachable"))
    ev.append((end - timedelta(hours=3), "ERROR user 5f0c6c1e-8d7a-4c43-9a57-0b9ad1c3f6a1 not found"))
    ev.append((end - timedelta(hours=30), "ERROR outside the window, must not count"))
    ev.append((end - timedelta(minutes=5), "INFO request had no ERRORS (plural is not a level)"))
    _put(logs, GROUP, ev)


def _review(logs, store, run_id: str, end: datetime, **kw):
    args = dict(
        end=end,
        window=timedelta(hours=24),
        pattern=PATTERN,
        max_events=1000,
        max_total_events=1000,
        limits=LIMITS,
        store=store,
        run_id=run_id,
        new_window=timedelta(days=7),
        top=10,
    )
    args.update(kw)
    return {r.check: r for r in review_group(logs, GROUP, **args)}


@pytest.fixture
def store(make_db) -> tuple[SignatureStore, str]:
    dsn = make_db("store")
    ResultStore(dsn).migrate()
    return SignatureStore(dsn), dsn


def test_errors_grouped_rated_and_new_signatures_called_out(boto_client, store) -> None:
    logs = boto_client("logs")
    sig_store, dsn = store
    end = _end()
    _seed(logs, end)

    first = _review(logs, sig_store, "run-1", end)
    rate = first[f"logs.error_rate[{GROUP}]"]
    # 5 errors of 96 events in the window (the 30 h old one is outside it).
    assert rate.details["total_events"] == 96 and rate.details["errors"] == 5
    assert (
        rate.unit == "%"
        and rate.status is Status.CRITICAL
        and rate.observed == pytest.approx(500 / 96, rel=1e-3)
    )
    sigs = first[f"logs.signatures[{GROUP}]"]
    assert sigs.details["signature_count"] == 3 and sigs.details["baseline"] is True
    assert sigs.details["new_signatures"] == 0  # the first review is the baseline, not news
    assert sigs.details["critical_or_fatal_events"] == 1 and sigs.status is Status.WARNING
    timeout = next(s for s in sigs.details["signatures"] if "timeout" in s["signature"])
    assert timeout["count"] == 3 and timeout["level"] == "ERROR"

    # Next day: one new kind of error appears.
    _put(logs, GROUP, [(end - timedelta(minutes=2), "ERROR payment gateway 502 for cart 991")])
    second = _review(logs, sig_store, "run-2", end)
    sigs2 = second[f"logs.signatures[{GROUP}]"]
    new = [s for s in sigs2.details["signatures"] if s["new"]]
    assert [s["signature"] for s in new] == ["ERROR payment gateway <n> for cart <n>"]
    assert "1 NEW since last week" in sigs2.summary and sigs2.status is Status.WARNING

    # A rerun of the same run changes nothing (no double counting, same callouts).
    again = _review(logs, sig_store, "run-2", end)
    assert again[f"logs.signatures[{GROUP}]"].details == sigs2.details
    with psycopg.connect(dsn) as conn:
        rows = dict(conn.execute("SELECT signature, last_count FROM log_signatures").fetchall())
    assert rows["ERROR timeout after <n> ms for order <n>"] == 3

    # A signature first seen more than a week ago is no longer new.
    with psycopg.connect(dsn) as conn:
        conn.execute(
            "UPDATE log_signatures SET first_seen = first_seen - interval '8 days' WHERE signature LIKE '%payment%'"
        )
    later = _review(logs, sig_store, "run-3", end)
    assert later[f"logs.signatures[{GROUP}]"].details["new_signatures"] == 0


def test_bounded_read_and_unknown_total_fall_back_to_per_minute(boto_client) -> None:
    logs = boto_client("logs")
    end = _end()
    _seed(logs, end)
    res = _review(logs, None, "r", end, max_events=3, max_total_events=10)
    rate = res[f"logs.error_rate[{GROUP}]"]
    assert rate.details["truncated"] is True and "read bound" in rate.summary
    assert rate.unit == "errors/min" and rate.details["total_events"] is None


def test_missing_group_is_a_clear_error(boto_client) -> None:
    logs = boto_client("logs")
    (r,) = review_group(
        logs,
        "/nope",
        end=_end(),
        window=timedelta(hours=24),
        pattern=PATTERN,
        max_events=10,
        max_total_events=10,
        limits=LIMITS,
        store=None,
        run_id="r",
        new_window=timedelta(days=7),
        top=5,
    )
    assert r.status is Status.ERROR and "tasks.log_review.settings.log_groups" in r.summary


def test_postgres_log_skipped_with_reason(pg, make_db) -> None:
    """The test server runs with logging_collector off: nothing readable from SQL."""
    dsn = make_db("app")
    r = review_postgres_log(
        dsn, end=_end(), max_bytes=4096, store=None, run_id="r", new_window=timedelta(days=7), top=5
    )
    assert r.status is Status.SKIPPED and "logging_collector" in r.summary


def test_postgres_log_role_without_rights_is_skipped(pg, make_db) -> None:
    dsn = make_db("app")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS sanvi_logless")
        conn.execute("CREATE ROLE sanvi_logless LOGIN PASSWORD 'logless-pw'")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params.update(user="sanvi_logless", password="logless-pw")
    r = review_postgres_log(
        psycopg.conninfo.make_conninfo(**params),
        end=_end(),
        max_bytes=4096,
        store=None,
        run_id="r",
        new_window=timedelta(days=7),
        top=5,
    )
    assert r.status is Status.SKIPPED and "pg_monitor" in r.summary


@pytest.fixture
def server_log(pg):
    """A log file the server reports as current (``current_logfiles``), as logging_collector
    would leave it; removed afterwards so the session's server is as it was."""
    import os

    data = pg.data_dir
    log_dir = data / "log"
    log_dir.mkdir(exist_ok=True)
    log_file = log_dir / "sanvi-test.log"
    pointer = data / "current_logfiles"
    lines = [
        f"2026-11-27 07:00:{i:02d}.000 UTC [{100 + i}] LOG:  checkpoint starting: time" for i in range(40)
    ]
    lines += [
        '2026-11-27 08:00:01.123 UTC [4711] app@sanvi ERROR:  duplicate key value violates unique constraint "orders_pkey"',
        '2026-11-27 08:00:02.456 UTC [4712] app@sanvi ERROR:  duplicate key value violates unique constraint "users_pkey"',
        '2026-11-27 08:05:00.000 UTC [99] bob@sanvi FATAL:  password authentication failed for user "bob"',
    ]
    log_file.write_text("\n".join(lines) + "\n")
    pointer.write_text("stderr log/sanvi-test.log\n")
    st = os.stat(data)
    for path in (log_dir, log_file, pointer):
        os.chown(path, st.st_uid, st.st_gid)
    yield log_file
    pointer.unlink(missing_ok=True)
    log_file.unlink(missing_ok=True)


def test_postgres_log_read_grouped_and_remembered(pg, make_db, store, server_log) -> None:
    sig_store, _dsn = store
    app = make_db("app")
    r = review_postgres_log(
        app, end=_end(), max_bytes=1 << 20, store=sig_store, run_id="r1", new_window=timedelta(days=7), top=5
    )
    assert r.status is Status.WARNING and r.observed == 3, r.summary
    assert "1 FATAL" in r.summary and "2 signature(s)" in r.summary and r.details["baseline"] is True
    dup = next(s for s in r.details["signatures"] if "duplicate key" in s["signature"])
    assert dup["count"] == 2

    # Only the tail is read; the cut first line is dropped, not parsed half.
    tail = review_postgres_log(
        app, end=_end(), max_bytes=300, store=None, run_id="r2", new_window=timedelta(days=7), top=5
    )
    assert tail.status is Status.WARNING and 1 <= tail.observed <= 3


def test_store_down_is_reported_and_the_review_still_runs(boto_client) -> None:
    logs = boto_client("logs")
    end = _end()
    _seed(logs, end)
    dead = SignatureStore("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2")
    res = _review(logs, dead, "r", end)
    memory = res[f"logs.signature_memory[{GROUP}]"]
    assert memory.status is Status.ERROR and "not called out" in memory.summary
    assert res[f"logs.error_rate[{GROUP}]"].details["errors"] == 5
    assert res[f"logs.signatures[{GROUP}]"].details["signature_count"] == 3
