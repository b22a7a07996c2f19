"""The results store against a real PostgreSQL 18: migrations, idempotent writes, incidents, outbox."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from devstack.postgres import LocalPostgres, free_port
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.store import MIGRATIONS_DIR, ResultStore, StoreError

pytestmark = pytest.mark.integration

LOGICAL = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(make_db: Callable[[str], str]) -> ResultStore:
    s = ResultStore(make_db("store"))
    s.migrate()
    return s


def _run(*statuses: Status) -> list[CheckResult]:
    return [
        CheckResult(f"check_{i}", status, f"summary {i}", "m", float(i), "%", {"warning": 80, "critical": 90},
                    {"i": i, "nested": {"ok": True}}, "P1" if status is Status.CRITICAL else None, "postgres")
        for i, status in enumerate(statuses)
    ]  # fmt: skip


def _parallel(n: int, fn: Callable[[], object]) -> list[object]:
    """Run ``fn`` in ``n`` threads released at the same moment; re-raise the first error."""
    barrier = threading.Barrier(n)
    out: list[object] = [None] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return out


# ---------------------------------------------------------------------------- migrations


ALL_MIGRATIONS = sorted(p.name for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))


def test_migrate_twice_is_a_no_op(make_db: Callable[[str], str]) -> None:
    s = ResultStore(make_db("mig"))
    assert s.schema_version() == 0
    assert s.migrate() == ALL_MIGRATIONS and ALL_MIGRATIONS[0] == "001_init.sql"
    assert s.migrate() == []
    assert s.schema_version() == int(ALL_MIGRATIONS[-1][:3])
    counts = s.table_counts()
    assert {k: counts[k] for k in ("check_results", "notifications", "incidents")} == {
        "check_results": 0,
        "notifications": 0,
        "incidents": 0,
    }


def test_concurrent_migrate_applies_once(make_db: Callable[[str], str]) -> None:
    dsn = make_db("migc")
    applied = _parallel(6, lambda: ResultStore(dsn).migrate())
    assert sorted(map(len, applied)) == [0, 0, 0, 0, 0, len(ALL_MIGRATIONS)]  # type: ignore[arg-type]
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(int(name[:3]), name) for name in ALL_MIGRATIONS]


def test_migrate_refuses_an_edited_migration(make_db: Callable[[str], str], tmp_path: Path) -> None:
    shutil.copy(MIGRATIONS_DIR / "001_init.sql", tmp_path / "001_init.sql")
    s = ResultStore(make_db("migx"))
    s.migrate(tmp_path)
    (tmp_path / "002_extra.sql").write_text("CREATE TABLE extra (id int);\n")
    assert s.migrate(tmp_path) == ["002_extra.sql"]
    with (tmp_path / "001_init.sql").open("a") as f:
        f.write("-- edited\n")
    with pytest.raises(StoreError, match="001_init.sql changed after it was applied"):
        s.migrate(tmp_path)


def test_failed_migration_rolls_back_and_names_the_file(
    make_db: Callable[[str], str], tmp_path: Path
) -> None:
    shutil.copy(MIGRATIONS_DIR / "001_init.sql", tmp_path / "001_init.sql")
    (tmp_path / "002_broken.sql").write_text(
        "CREATE TABLE ok_table (id int);\nSELECT * FROM no_such_table;\n"
    )
    s = ResultStore(make_db("migf"))
    with pytest.raises(StoreError, match=r"migration 002_broken.sql failed.*no_such_table"):
        s.migrate(tmp_path)
    assert s.schema_version() == 0  # one transaction: 001 rolled back too


# -------------------------------------------------------------------------------- results


def test_save_twice_does_not_duplicate_and_last_write_wins(store: ResultStore) -> None:
    results = _run(Status.OK, Status.WARNING, Status.CRITICAL)
    store.save_results("system_health_check", "run1", LOGICAL, results)
    store.save_results("system_health_check", "run1", LOGICAL, results)  # a retried task
    assert store.table_counts()["check_results"] == 3
    assert store.results_for_run("system_health_check", "run1") == results

    retried = [results[0], CheckResult("check_1", Status.OK, "recovered"), results[2]]
    store.save_results("system_health_check", "run1", LOGICAL, retried)
    assert store.table_counts()["check_results"] == 3
    assert store.results_for_run("system_health_check", "run1") == retried


def test_latest_results_is_the_newest_run(store: ResultStore) -> None:
    assert store.latest_results("system_health_check") == []
    store.save_results("system_health_check", "run1", LOGICAL, _run(Status.CRITICAL))
    store.save_results("system_health_check", "run2", None, _run(Status.OK, Status.OK))
    store.save_results("log_review", "lr1", LOGICAL, _run(Status.WARNING))
    assert store.latest_run_id("system_health_check") == "run2"
    assert [r.status for r in store.latest_results("system_health_check")] == [Status.OK, Status.OK]
    latest = {run.dag_id: run for run in store.latest_runs()}
    assert set(latest) == {"system_health_check", "log_review"}
    assert latest["system_health_check"].run_id == "run2"
    assert latest["log_review"].logical_date == LOGICAL
    assert [r.check for r in latest["system_health_check"].results] == ["check_0", "check_1"]


def test_bad_results_input_is_refused(store: ResultStore) -> None:
    twice = [CheckResult("same", Status.OK, "a"), CheckResult("same", Status.OK, "b")]
    with pytest.raises(ValueError, match="'same' appears twice"):
        store.save_results("d", "r", LOGICAL, twice)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.save_results("d", "r", datetime(2026, 1, 15, 9, 0), _run(Status.OK))
    assert store.table_counts()["check_results"] == 0


def test_hostile_names_are_stored_as_data(store: ResultStore) -> None:
    dag_id = "x'); DROP TABLE check_results; --"
    result = CheckResult(
        '"; DELETE FROM incidents; --', Status.OK, "ünïcödé ✓ 'quoted'", details={"a": "b'c"}
    )
    store.save_results(dag_id, "r1", LOGICAL, [result])
    assert store.results_for_run(dag_id, "r1") == [result]


# ------------------------------------------------------------------------------ incidents


def test_one_open_incident_per_check(store: ResultStore) -> None:
    first = store.open_incident("shc", "postgres.up", "P1", "run1", "down")
    again = store.open_incident("shc", "postgres.up", "P1", "run2", "still down")
    assert again == first and first.ref == f"#{first.id}" and first.opened_run_id == "run1"
    other = store.open_incident("shc", "redis.ping", "P2", "run1", "down")
    assert other.id != first.id
    assert [i.check for i in store.open_incidents("shc")] == ["postgres.up", "redis.ping"]
    assert store.open_incidents("another_dag") == []

    resolved = store.resolve_incident(first.id, "run3")
    assert resolved.resolved_run_id == "run3" and not resolved.is_open
    assert store.resolve_incident(first.id, "run4").resolved_run_id == "run3"  # idempotent
    reopened = store.open_incident("shc", "postgres.up", "P1", "run5", "down again")
    assert reopened.id > first.id and reopened.opened_run_id == "run5"
    assert len(store.open_incidents()) == 2


def test_partial_unique_index_blocks_a_second_open_incident(store: ResultStore) -> None:
    store.open_incident("shc", "postgres.up", "P1", "run1", "down")
    with psycopg.connect(store._dsn) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO incidents (dag_id, check_name, severity, summary, opened_run_id)"
            " VALUES ('shc', 'postgres.up', 'P1', 'dup', 'run9')"
        )


def test_concurrent_open_incident_gives_one_incident(store: ResultStore) -> None:
    ids = _parallel(6, lambda: store.open_incident("shc", "disk", "P2", "run1", "full").id)
    assert len(set(ids)) == 1
    assert store.table_counts()["incidents"] == 1


def test_incident_input_errors(store: ResultStore) -> None:
    with pytest.raises(ValueError, match="P1..P4"):
        store.open_incident("shc", "x", "P9", "run1", "bad")
    with pytest.raises(StoreError, match="incident #999 does not exist"):
        store.resolve_incident(999, "run1")


# --------------------------------------------------------------------------------- outbox


def test_outbox_dedupe_order_and_states(store: ResultStore) -> None:
    a = store.enqueue("incident:1", "shc", "run1", "incident", "#inc", "[INCIDENT] #1", None)
    assert store.enqueue("incident:1", "shc", "run1", "incident", "#inc", "changed text", None) == a
    b = store.enqueue("summary:shc:run1", "shc", "run1", "summary", "#ops", "summary", [{"type": "divider"}])
    c = store.enqueue("resolved:1", "shc", "run2", "resolved", "#inc", "[RESOLVED] #1", None, "incident:1")
    orphan = store.enqueue(
        "resolved:7", "shc", "run2", "resolved", "#inc", "[RESOLVED] #7", None, "incident:7"
    )
    assert store.table_counts()["notifications"] == 4
    pending = store.pending(10)
    assert [m.id for m in pending] == [a, b, c, orphan]
    assert pending[0].text == "[INCIDENT] #1"  # the first write wins
    assert pending[1].blocks == [{"type": "divider"}]
    assert [m.parent_state for m in pending] == ["none", "none", "pending", "missing"]
    assert [m.id for m in store.pending(2)] == [a, b]

    store.mark_failed(a, "HTTP 500 from https://x:topsecret@slack.test/")
    msg = store.get_notification("incident:1")
    assert msg is not None and msg.attempts == 1 and msg.is_pending
    assert msg.last_error is not None and "topsecret" not in msg.last_error

    store.mark_sent(a, "1767258001.000001", "C0INCIDENT")
    store.mark_sent(a, "9999.0", "COTHER")  # a second mark keeps the first ts
    sent = store.get_notification("incident:1")
    assert sent is not None and sent.slack_ts == "1767258001.000001" and sent.attempts == 2
    reply = store.pending(10)[1]
    assert (reply.id, reply.parent_state, reply.parent_ts, reply.parent_channel) == (
        c,
        "sent",
        "1767258001.000001",
        "C0INCIDENT",
    )

    store.mark_failed(b, "channel_not_found", give_up=True)
    assert [m.id for m in store.pending(10)] == [c, orphan]
    assert store.count_pending() == 2
    given_up = store.get_notification("summary:shc:run1")
    assert (
        given_up is not None
        and given_up.given_up_at is not None
        and given_up.last_error == "channel_not_found"
    )
    assert [m.id for m in store.notifications("shc", limit=10)] == [orphan, c, b, a]


def test_enqueue_refuses_unknown_kind(store: ResultStore) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        store.enqueue("k", "d", "r", "shout", "#ops", "hi", None)


def test_flush_lock_is_exclusive(store: ResultStore) -> None:
    with store.flush_lock() as first:
        assert first is True
        with store.flush_lock() as second:
            assert second is False
    with store.flush_lock() as again:
        assert again is True


# ----------------------------------------------------------------------- errors and secrets


def test_unparseable_dsn_error_has_no_password() -> None:
    with pytest.raises(StoreError) as info:
        ResultStore("host=127.0.0.1 password hunter22secret")
    assert "not a valid libpq connection string" in str(info.value)
    assert "hunter22secret" not in str(info.value)


def test_unreachable_store_error_names_the_server_not_the_password() -> None:
    port = free_port()  # nothing listens there
    s = ResultStore(f"postgresql://sanvi:hunter22secret@127.0.0.1:{port}/ops?connect_timeout=3")
    with pytest.raises(StoreError) as info:
        s.save_results("d", "r", LOGICAL, _run(Status.OK))
    message = str(info.value)
    assert f"cannot connect to postgresql://sanvi@127.0.0.1:{port}/ops" in message
    assert "Connection refused" in message
    assert "hunter22secret" not in message and "hunter22secret" not in repr(s)


def test_wrong_password_error_has_no_password(pg: LocalPostgres) -> None:
    s = ResultStore(
        pg.dsn("postgres", password="wrong-hunter22"), name="results store (connection 'sanvi_ops_store')"
    )
    with pytest.raises(StoreError) as info:
        s.migrate()
    message = str(info.value)
    assert message.startswith(
        "results store (connection 'sanvi_ops_store'): cannot connect to postgresql://postgres@"
    )
    assert "password authentication failed" in message
    assert "wrong-hunter22" not in message and pg.password not in message


def test_missing_schema_says_to_migrate(make_db: Callable[[str], str]) -> None:
    with pytest.raises(StoreError, match=r"check_results.*schema missing: run `python -m sanvi_ops migrate`"):
        ResultStore(make_db("nomig")).results_for_run("d", "r")


def test_empty_dsn() -> None:
    with pytest.raises(StoreError, match="DSN is empty"):
        ResultStore("  ")
