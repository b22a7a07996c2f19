"""The results store is migrated at deploy and start (``python -m sanvi_ops migrate``), never by a task.

A store behind this code makes ``record`` fail naming the store connection, the missing migrations
and the command to run; the command is idempotent and also copies the config's silences; a run
whose config silences are already in the store only reads them (no lock, no write).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from sanvi_ops.__main__ import main
from sanvi_ops.core.config import DEFAULT_CONFIG_PATH, SilenceSpec, clear_config_cache, load_config
from sanvi_ops.core.results import CheckResult, Status
from sanvi_ops.core.silences import SYNC_LOCK_KEY, active_silences, sync_config_silences
from sanvi_ops.core.store import MIGRATIONS_DIR, ResultStore, SchemaBehind
from tests.fixtures.connections import pg_conn

pytestmark = pytest.mark.integration

ALL = sorted(p.name for p in MIGRATIONS_DIR.glob("[0-9][0-9][0-9]_*.sql"))
DAG_ID = "system_health_check"
RUN_ID = "manual__2026-12-03T10:00:00+00:00"


def _behind(make_db: Callable[[str], str], tmp_path: Path, missing: int = 2) -> str:
    """A store migrated with every shipped migration but the last ``missing``: an old deploy."""
    for name in ALL[:-missing]:
        shutil.copy(MIGRATIONS_DIR / name, tmp_path / name)
    dsn = make_db("old")
    ResultStore(dsn).migrate(tmp_path)
    return dsn


@pytest.fixture
def store_conn(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Point the config's store connection at a DSN (as AIRFLOW_CONN_* does in a deployment)."""
    clear_config_cache()
    conn_id = load_config().connections.store

    def point(dsn: str) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", pg_conn(dsn))
        return conn_id

    return point


def test_require_current_names_every_missing_migration(make_db: Callable[[str], str], tmp_path: Path) -> None:
    store = ResultStore(_behind(make_db, tmp_path), name="results store (connection 'x')")
    assert store.pending_migrations() == ALL[-2:]
    with pytest.raises(SchemaBehind) as caught:
        store.require_current()
    message = str(caught.value)
    assert message.startswith("results store (connection 'x') at postgresql://")
    assert f"migrations {ALL[-2]}, {ALL[-1]} not applied" in message
    assert "run `python -m sanvi_ops migrate`" in message
    empty = ResultStore(make_db("empty"))
    assert empty.pending_migrations() == ALL  # no schema_migrations table at all


def test_record_fails_on_a_store_behind_its_migrations_and_migrates_nothing(
    make_db: Callable[[str], str], tmp_path: Path, store_conn: Callable[[str], str]
) -> None:
    from sanvi_ops.airflow_kit.publish import record_run

    dsn = _behind(make_db, tmp_path, missing=1)
    conn_id = store_conn(dsn)
    result = CheckResult(check="production.backend", status=Status.OK, summary="200 in 12 ms")
    with pytest.raises(SchemaBehind) as caught:
        record_run(DAG_ID, RUN_ID, datetime(2026, 12, 3, 10, tzinfo=UTC), [result])
    message = str(caught.value)
    assert f"results store (connection {conn_id!r})" in message
    assert f"migration {ALL[-1]} not applied" in message
    assert "python -m sanvi_ops migrate" in message
    store = ResultStore(dsn)
    assert store.pending_migrations() == [ALL[-1]]  # never migrated silently
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM check_results").fetchone() == (0,)


def test_migrate_command_is_idempotent_and_check_says_what_is_missing(
    make_db: Callable[[str], str], store_conn: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = make_db("fresh")
    store_conn(dsn)
    assert main(["migrate", "--check"]) == 1
    assert f"missing {', '.join(ALL)}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert f"applied {', '.join(ALL)}" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    out = capsys.readouterr().out
    assert "up to date" in out and "applied" not in out
    assert main(["migrate", "--check"]) == 0
    ResultStore(dsn).require_current()


def test_migrate_command_names_a_missing_store_connection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clear_config_cache()
    conn_id = load_config().connections.store
    monkeypatch.delenv(f"AIRFLOW_CONN_{conn_id.upper()}", raising=False)
    assert main(["migrate"]) == 1
    assert conn_id in capsys.readouterr().err


def test_migrate_command_copies_the_config_silences(
    make_db: Callable[[str], str],
    store_conn: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shipped = DEFAULT_CONFIG_PATH
    expires = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    text = Path(shipped).read_text()
    assert "\nsilences: []\n" in text
    text = text.replace(
        "\nsilences: []\n",
        f"\nsilences:\n  - check: 'http.staging-*'\n    reason: staging rebuild\n"
        f"    expires: '{expires}'\n    created_by: '@ops'\n",
    )
    (tmp_path / "maintenance.yaml").write_text(text)
    monkeypatch.setenv("SANVI_OPS_CONFIG", str(tmp_path / "maintenance.yaml"))
    dsn = make_db("fresh")
    store_conn(dsn)
    assert main(["migrate"]) == 0
    assert "config silences: 1 added, 0 lifted, 0 unchanged" in capsys.readouterr().out
    assert main(["migrate"]) == 0
    assert "config silences: 0 added, 0 lifted, 1 unchanged" in capsys.readouterr().out
    assert [(s.check_pattern, s.source) for s in active_silences(dsn)] == [("http.staging-*", "config")]


def test_a_run_whose_config_silences_are_stored_only_reads(make_db: Callable[[str], str]) -> None:
    """The per-run sync (a YAML edit takes effect at the next run) takes no lock when nothing changed."""
    dsn = make_db("store")
    now = datetime.now(UTC)
    spec = SilenceSpec(
        check="redis.*", reason="failover drill", expires=now + timedelta(days=1), created_by="@a"
    )
    assert len(sync_config_silences(dsn, [spec], now=now).added) == 1
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [SYNC_LOCK_KEY])  # a sync in progress elsewhere
        reports: list[object] = []
        worker = threading.Thread(target=lambda: reports.append(sync_config_silences(dsn, [spec], now=now)))
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "an unchanged file waited for the sync lock"
        holder.execute("SELECT pg_advisory_unlock(%s)", [SYNC_LOCK_KEY])
    (report,) = reports
    assert report.kept == 1 and report.added == [] and report.lifted == []  # type: ignore[attr-defined]
