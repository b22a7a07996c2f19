"""The results store: a PostgreSQL database of its own that keeps the record of every run.

It holds every :class:`~sanvi_ops.core.results.CheckResult` (one row per ``(dag_id, run_id, check)``, so
a retried task UPSERTs instead of duplicating), the Slack outbox (a message is written here
*before* it is sent and marked sent with Slack's ``ts``; with no Slack connection the outbox is the
sink), and incidents (at most one open per ``(dag_id, check)``).

Why a store of its own and not XCom or the Airflow metadata DB: the guide keeps audit records for
three years, the Maintenance page and later runs read it (open incidents, undelivered messages),
and the metadata DB is pruned by ``airflow db clean``.

Every method opens a short-lived connection (psycopg 3): tasks are short and run on many workers,
so holding a pool buys nothing. Schema changes are numbered SQL files in ``include/sanvi_ops/core/sql/store/``
applied by :meth:`ResultStore.migrate` once per deploy and start (``python -m sanvi_ops migrate``, run by
``deploy/airflow-init.sh``, the Helm migration job and ``make run``), never by a task: a task checks
:meth:`ResultStore.require_current` and fails naming the missing migrations. Nothing here deletes rows
(retention >= 3 years).

Errors from the driver are re-raised as :class:`StoreError` naming the store, the server and the
problem, never the password.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from sanvi_ops.core.results import CheckResult

#: Where the numbered migrations live (``include/sanvi_ops/core/sql/store/NNN_name.sql``).
MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "sql" / "store"

#: Advisory lock keys (per database). Fixed numbers so every worker agrees on them.
MIGRATION_LOCK_KEY: Final = 0x5A4E_5649_0001  # held for the migrate() transaction
FLUSH_LOCK_KEY: Final = 0x5A4E_5649_0002  # held by the one outbox flusher at a time

#: Kinds of outbox message (migration 007 holds the same list as a CHECK constraint).
NotificationKind = Literal[
    "summary", "incident", "update", "resolved", "failure", "escalation", "signoff", "deadline", "heartbeat"
]
NOTIFICATION_KINDS: Final[frozenset[str]] = frozenset(
    {"summary", "incident", "update", "resolved", "failure", "escalation", "signoff", "deadline", "heartbeat"}
)

_MIGRATION_NAME = re.compile(r"^(?P<version>\d{3})_[a-z0-9_]+\.sql$")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_KV_PASSWORD = re.compile(r"(?P<key>password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_QUOTED = re.compile(r'"(?!=")[^"]*"')
_ERROR_TEXT_LIMIT: Final = 2000

#: Outbox rows with what the sender needs to know about the message each one replies to.
_SELECT_MESSAGES: Final = """
    SELECT n.*, p.id AS parent_id, p.slack_ts AS parent_ts, p.slack_channel AS parent_channel,
           p.sent_at AS parent_sent_at, p.given_up_at AS parent_given_up_at
    FROM notifications n
    LEFT JOIN notifications p ON p.dedupe_key = n.thread_parent_key
"""


class StoreError(RuntimeError):
    """The results store could not do what was asked; the message says which store and why."""


#: What an operator runs to bring a store up to date (:mod:`sanvi_ops.__main__`).
MIGRATE_COMMAND: Final = "python -m sanvi_ops migrate"


class SchemaBehind(StoreError):
    """The store's schema lacks migrations this code needs: deploy did not run the migrate step.

    Not an outage: the record task fails with it (naming the store and the missing migrations)
    instead of spooling the run as "store down".
    """


@dataclass(frozen=True)
class Incident:
    """An incident opened by a critical result.

    :param id: database id; people see it as :attr:`ref` (``#12``), as in the guide's templates.
    """

    id: int
    dag_id: str
    check: str
    severity: str
    summary: str
    opened_at: datetime
    opened_run_id: str
    resolved_at: datetime | None
    resolved_run_id: str | None
    last_update_at: datetime
    #: The component the critical result was about (migration 014; ``""`` for rows written before).
    component: str = ""

    @property
    def ref(self) -> str:
        """The human id used in Slack messages: ``#<n>``."""
        return f"#{self.id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def update_due(self, now: datetime, every: timedelta) -> bool:
        """Whether the severity's communication cadence (``every``) calls for an ``[UPDATE]``."""
        return now - self.last_update_at >= every


@dataclass(frozen=True)
class OutboxMessage:
    """One row of the outbox, with what a sender needs to know about the message it replies to.

    ``parent_state`` is ``"none"`` (not a reply), ``"sent"`` (reply in ``parent_ts`` on
    ``parent_channel``), ``"pending"`` (wait for the parent), ``"given_up"`` or ``"missing"``
    (post it on its own).
    """

    id: int
    dedupe_key: str
    dag_id: str
    run_id: str
    kind: str
    channel: str
    text: str
    blocks: list[dict[str, Any]] | None
    thread_parent_key: str | None
    created_at: datetime
    sent_at: datetime | None
    slack_ts: str | None
    slack_channel: str | None
    attempts: int
    last_error: str | None
    given_up_at: datetime | None
    parent_state: Literal["none", "pending", "sent", "given_up", "missing"] = "none"
    parent_ts: str | None = None
    parent_channel: str | None = None
    #: Client-side idempotency key sent in the message's Block Kit ``metadata`` (set at the first attempt).
    delivery_key: str | None = None
    #: First attempt whose outcome is unknown (Slack may have accepted it); ``None`` when none is in doubt.
    sending_since: datetime | None = None
    last_attempt_at: datetime | None = None

    @property
    def is_pending(self) -> bool:
        return self.sent_at is None and self.given_up_at is None

    @property
    def in_doubt(self) -> bool:
        """An earlier post may have reached Slack: look it up before posting again."""
        return self.is_pending and self.sending_since is not None


@dataclass(frozen=True)
class StoredRun:
    """The results of one run as stored (for "latest result per DAG")."""

    dag_id: str
    run_id: str
    logical_date: datetime | None
    recorded_at: datetime
    results: list[CheckResult]


def describe_dsn(dsn: str) -> str:
    """A DSN as ``postgresql://user@host:port/dbname``: enough to find the server, never the password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparseable DSN>"
    user = parts.get("user")
    host = parts.get("host") or parts.get("hostaddr") or "localhost"
    port = parts.get("port") or "5432"
    dbname = parts.get("dbname") or user or ""
    return f"postgresql://{f'{user}@' if user else ''}{host}:{port}/{dbname}"


def redact(text: str, dsn: str | None = None) -> str:
    """Remove passwords from a driver message: URL userinfo, ``password=...`` and the DSN's own one."""
    out = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    out = _KV_PASSWORD.sub(r"\g<key>***", out)
    if dsn:
        try:
            password = str(conninfo_to_dict(dsn).get("password") or "")
        except psycopg.Error:
            password = ""
        if password:
            out = out.replace(password, "***")
    return out


class ResultStore:
    """The results store behind one libpq DSN.

    :param dsn: libpq connection string or URI of the store database.
    :param name: how errors name it; the glue passes the Airflow connection id
        (``"results store (connection 'sanvi_ops_store')"``).
    :param connect_timeout: seconds to wait for the server before :class:`StoreError`.
    """

    def __init__(self, dsn: str, *, name: str = "results store", connect_timeout: int = 10) -> None:
        if not dsn or not dsn.strip():
            raise StoreError(f"{name}: the DSN is empty")
        self._dsn = dsn
        self.name = name
        self.connect_timeout = connect_timeout
        try:
            conninfo_to_dict(dsn)
        except psycopg.Error as exc:
            # libpq quotes the offending fragment, which may be the password: drop quoted text.
            reason = _QUOTED.sub('"…"', str(exc).strip())
            raise StoreError(
                f"{name}: the DSN is not a valid libpq connection string or URI ({reason})"
            ) from None
        self.target = describe_dsn(dsn)

    def __repr__(self) -> str:
        return f"ResultStore({self.target!r})"

    # ----------------------------------------------------------------- connections and errors

    @contextmanager
    def _connect(
        self, action: str, *, autocommit: bool = False
    ) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """One short-lived connection; driver errors become :class:`StoreError` naming ``action``."""
        try:
            conn = psycopg.connect(
                self._dsn,
                connect_timeout=self.connect_timeout,
                application_name="sanvi-ops",
                autocommit=autocommit,
                row_factory=dict_row,
            )
        except psycopg.Error as exc:
            reason = redact(" ".join(str(exc).split()), self._dsn)
            raise StoreError(f"{self.name}: cannot connect to {self.target}: {reason}") from None
        try:
            with conn:
                yield conn
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(
                f"{self.name} at {self.target}: {action} failed: {_reason(exc)} "
                f"(schema missing: run `{MIGRATE_COMMAND}`)"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(f"{self.name} at {self.target}: {action} failed: {_reason(exc)}") from exc

    def connection(self, action: str) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]:
        """One short-lived connection for modules that own tables of this store (silences, sign-offs):
        the same timeouts, redaction and :class:`StoreError` naming ``action`` as the store's own."""
        return self._connect(action)

    # ----------------------------------------------------------------------------- migrations

    @staticmethod
    def migration_files(directory: Path = MIGRATIONS_DIR) -> list[tuple[int, Path]]:
        """The numbered migrations in order; a malformed or duplicate name is an error."""
        found: dict[int, Path] = {}
        for path in sorted(directory.glob("*.sql")):
            match = _MIGRATION_NAME.match(path.name)
            if not match:
                raise StoreError(f"migration {path}: name must look like 001_what.sql")
            version = int(match["version"])
            if version in found:
                raise StoreError(f"migrations {found[version].name} and {path.name} share version {version}")
            found[version] = path
        if not found:
            raise StoreError(f"no migrations found in {directory}")
        return sorted(found.items())

    def migrate(self, directory: Path = MIGRATIONS_DIR) -> list[str]:
        """Bring the schema up to date; returns the names of the migrations applied now.

        Idempotent (a second call applies nothing) and safe when many workers call it at once:
        everything runs in one transaction holding ``pg_advisory_xact_lock``, so the second caller
        waits, then sees the versions the first one recorded. A migration edited after it was
        applied is refused (its checksum is recorded), because the databases would silently differ.
        """
        files = self.migration_files(directory)
        applied_now: list[str] = []
        with self._connect("migrate") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK_KEY])
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            done = {
                row["version"]: row
                for row in conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
            }
            for version, path in files:
                body = path.read_bytes()
                checksum = hashlib.sha256(body).hexdigest()
                if version in done:
                    if done[version]["checksum"] != checksum:
                        raise StoreError(
                            f"{self.name}: migration {path.name} changed after it was applied to {self.target}; "
                            "add a new numbered migration instead of editing an applied one"
                        )
                    continue
                try:
                    conn.execute(body)
                except psycopg.Error as exc:
                    raise StoreError(
                        f"{self.name}: migration {path.name} failed on {self.target}: {_reason(exc)}"
                    ) from exc
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    [version, path.name, checksum],
                )
                applied_now.append(path.name)
        return applied_now

    def pending_migrations(self, directory: Path = MIGRATIONS_DIR) -> list[str]:
        """Names of the shipped migrations not applied to this store yet (all of them when empty).

        Cheap: one connection and one read of ``schema_migrations``; no lock, no write.
        """
        files = self.migration_files(directory)
        with self._connect("read schema version") as conn:
            row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").fetchone()
            applied: set[int] = set()
            if row and row["present"]:
                applied = {
                    r["version"] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()
                }
        return [path.name for version, path in files if version not in applied]

    def require_current(self, directory: Path = MIGRATIONS_DIR) -> None:
        """Refuse to work on a store whose schema is behind this code (never migrates it).

        :raises SchemaBehind: naming the store and every missing migration, and the command to run.
        :raises StoreError: the store cannot be reached.
        """
        missing = self.pending_migrations(directory)
        if missing:
            raise SchemaBehind(
                f"{self.name} at {self.target}: schema is behind this code: "
                f"migration{'s' if len(missing) > 1 else ''} {', '.join(missing)} not applied; "
                f"run `{MIGRATE_COMMAND}` (deploy/airflow-init.sh and the Helm migration job do at every deploy)"
            )

    def schema_version(self) -> int:
        """Highest applied migration version; 0 for an empty database."""
        with self._connect("read schema version") as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AS present").fetchone()
            if not exists or not exists["present"]:
                return 0
            row = conn.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").fetchone()
            return int(row["v"]) if row else 0

    # -------------------------------------------------------------------------------- results

    def save_results(
        self, dag_id: str, run_id: str, logical_date: datetime | None, results: Sequence[CheckResult]
    ) -> None:
        """Record a run's results; UPSERT on ``(dag_id, run_id, check)`` so a retry never duplicates.

        The last write of a check wins (a retried task reports the state it found last).
        """
        _require(dag_id, "dag_id")
        _require(run_id, "run_id")
        if logical_date is not None and logical_date.tzinfo is None:
            raise ValueError(f"logical_date must be timezone-aware, got {logical_date!r}")
        seen: set[str] = set()
        for result in results:
            if result.check in seen:
                raise ValueError(f"run {dag_id}/{run_id}: check {result.check!r} appears twice in one run")
            seen.add(result.check)
        rows = [
            {
                "dag_id": dag_id,
                "run_id": run_id,
                "check_name": r.check,
                "status": r.status.value,
                "summary": r.summary,
                "metric": r.metric,
                "observed": r.observed,
                "unit": r.unit,
                "thresholds": Jsonb(dict(r.thresholds)),
                "details": Jsonb(dict(r.details)),
                "severity": r.severity,
                "component": r.component,
                "position": position,
                "logical_date": logical_date,
            }
            for position, r in enumerate(results)
        ]
        if not rows:
            return
        with self._connect(f"save results of {dag_id}/{run_id}") as conn, conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO check_results (dag_id, run_id, check_name, status, summary, metric, observed,
                                           unit, thresholds, details, severity, component, position,
                                           logical_date)
                VALUES (%(dag_id)s, %(run_id)s, %(check_name)s, %(status)s, %(summary)s, %(metric)s,
                        %(observed)s, %(unit)s, %(thresholds)s, %(details)s, %(severity)s, %(component)s,
                        %(position)s, %(logical_date)s)
                ON CONFLICT (dag_id, run_id, check_name) DO UPDATE SET
                    status = EXCLUDED.status, summary = EXCLUDED.summary, metric = EXCLUDED.metric,
                    observed = EXCLUDED.observed, unit = EXCLUDED.unit, thresholds = EXCLUDED.thresholds,
                    details = EXCLUDED.details, severity = EXCLUDED.severity, component = EXCLUDED.component,
                    position = EXCLUDED.position, logical_date = EXCLUDED.logical_date, recorded_at = now()
                """,
                rows,
            )

    def backdate_results(self, dag_id: str, run_id: str, at: datetime) -> None:
        """Set a run's ``recorded_at`` to when it was detected (a run replayed after a store outage
        keeps its place in "latest run" instead of looking newer than the runs after it)."""
        if at.tzinfo is None:
            raise ValueError(f"at must be timezone-aware, got {at!r}")
        with self._connect(f"backdate results of {dag_id}/{run_id}") as conn:
            conn.execute(
                "UPDATE check_results SET recorded_at = %s WHERE dag_id = %s AND run_id = %s",
                [at, dag_id, run_id],
            )

    def results_for_run(self, dag_id: str, run_id: str) -> list[CheckResult]:
        """A run's results in the order they were produced; empty when the run is unknown."""
        with self._connect(f"read results of {dag_id}/{run_id}") as conn:
            rows = conn.execute(
                "SELECT * FROM check_results WHERE dag_id = %s AND run_id = %s ORDER BY position, id",
                [dag_id, run_id],
            ).fetchall()
        return [_result(row) for row in rows]

    def latest_run_id(self, dag_id: str) -> str | None:
        """The run of ``dag_id`` written most recently, ``None`` when it never ran."""
        with self._connect(f"find latest run of {dag_id}") as conn:
            row = conn.execute(
                "SELECT run_id FROM check_results WHERE dag_id = %s ORDER BY recorded_at DESC, id DESC LIMIT 1",
                [dag_id],
            ).fetchone()
        return str(row["run_id"]) if row else None

    def latest_results(self, dag_id: str) -> list[CheckResult]:
        """Results of the newest run of ``dag_id`` (empty when it never ran)."""
        run_id = self.latest_run_id(dag_id)
        return self.results_for_run(dag_id, run_id) if run_id is not None else []

    def latest_runs(self) -> list[StoredRun]:
        """The newest run of every DAG that has results, by dag_id (the Maintenance page's table)."""
        with self._connect("read latest runs") as conn:
            rows = conn.execute(
                """
                WITH latest AS (
                    SELECT DISTINCT ON (dag_id) dag_id, run_id, recorded_at AS run_recorded_at
                    FROM check_results ORDER BY dag_id, recorded_at DESC, id DESC
                )
                SELECT r.*, latest.run_recorded_at FROM check_results r JOIN latest USING (dag_id, run_id)
                ORDER BY r.dag_id, r.position, r.id
                """
            ).fetchall()
        runs: dict[str, StoredRun] = {}
        for row in rows:
            run = runs.get(row["dag_id"])
            if run is None:
                run = runs[row["dag_id"]] = StoredRun(
                    row["dag_id"], row["run_id"], row["logical_date"], row["run_recorded_at"], []
                )
            run.results.append(_result(row))
        return list(runs.values())

    # ------------------------------------------------------------------------------ incidents

    def open_incident(
        self,
        dag_id: str,
        check: str,
        severity: str,
        run_id: str,
        summary: str,
        *,
        at: datetime | None = None,
        component: str = "",
    ) -> Incident:
        """Open an incident for ``check``, or return the one already open (one open per dag and check).

        :param at: when it opened (the run's clock, so messages and records agree); default now().
        :param component: what the check is about (:func:`sanvi_ops.core.notify.closing.component_of`):
            a later run closes the incident by component and target, not only by check name.

        The partial unique index ``incidents_one_open_idx`` makes this safe under concurrency: the
        loser of a race gets the winner's incident.
        """
        if severity not in {"P1", "P2", "P3", "P4"}:
            raise ValueError(f"incident severity must be P1..P4, got {severity!r}")
        with self._connect(f"open incident for {dag_id}/{check}") as conn:
            for _ in range(3):
                row = conn.execute(
                    """
                    INSERT INTO incidents (dag_id, check_name, severity, summary, opened_run_id,
                                           opened_at, last_update_at, component)
                    VALUES (%(dag)s, %(check)s, %(severity)s, %(summary)s, %(run)s,
                            coalesce(%(at)s, now()), coalesce(%(at)s, now()), %(component)s)
                    ON CONFLICT (dag_id, check_name) WHERE resolved_at IS NULL DO NOTHING
                    RETURNING *
                    """,
                    {
                        "dag": dag_id,
                        "check": check,
                        "severity": severity,
                        "summary": summary,
                        "run": run_id,
                        "at": at,
                        "component": component,
                    },
                ).fetchone()
                if row is None:
                    row = conn.execute(
                        "SELECT * FROM incidents WHERE dag_id = %s AND check_name = %s AND resolved_at IS NULL",
                        [dag_id, check],
                    ).fetchone()
                if row is not None:
                    return _incident(row)
                conn.commit()  # resolved in between: try again in a fresh snapshot
        raise StoreError(f"{self.name}: could not open an incident for {dag_id}/{check} (it kept changing)")

    def resolve_incident(self, incident_id: int, run_id: str, *, at: datetime | None = None) -> Incident:
        """Mark an incident resolved by ``run_id`` (at ``at``, default now()); resolving it again changes nothing."""
        with self._connect(f"resolve incident #{incident_id}") as conn:
            row = conn.execute(
                """
                UPDATE incidents SET resolved_at = coalesce(%s, now()), resolved_run_id = %s
                WHERE id = %s AND resolved_at IS NULL RETURNING *
                """,
                [at, run_id, incident_id],
            ).fetchone()
            if row is None:
                row = conn.execute("SELECT * FROM incidents WHERE id = %s", [incident_id]).fetchone()
        if row is None:
            raise StoreError(f"{self.name}: incident #{incident_id} does not exist")
        return _incident(row)

    def mark_incident_updated(
        self, incident_id: int, severity: str | None = None, *, at: datetime | None = None
    ) -> None:
        """Record that an ``[UPDATE]`` was queued at ``at`` (and the severity it carried, if it changed)."""
        with self._connect(f"update incident #{incident_id}") as conn:
            conn.execute(
                "UPDATE incidents SET last_update_at = coalesce(%s, now()), severity = coalesce(%s, severity) WHERE id = %s",
                [at, severity, incident_id],
            )

    def get_incident(self, incident_id: int) -> Incident | None:
        with self._connect(f"read incident #{incident_id}") as conn:
            row = conn.execute("SELECT * FROM incidents WHERE id = %s", [incident_id]).fetchone()
        return _incident(row) if row else None

    def open_incidents(self, dag_id: str | None = None) -> list[Incident]:
        """Open incidents, oldest first; all DAGs when ``dag_id`` is ``None``."""
        query = "SELECT * FROM incidents WHERE resolved_at IS NULL AND (%(dag)s::text IS NULL OR dag_id = %(dag)s) ORDER BY id"
        with self._connect("read open incidents") as conn:
            rows = conn.execute(query, {"dag": dag_id}).fetchall()
        return [_incident(row) for row in rows]

    # --------------------------------------------------------------------------------- outbox

    def enqueue(
        self,
        dedupe_key: str,
        dag_id: str,
        run_id: str,
        kind: str,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_parent_key: str | None = None,
    ) -> int:
        """Write a message to the outbox before anything is sent; returns its id.

        ``dedupe_key`` says what the message is about (``summary:<dag>:<run>``, ``incident:<id>``);
        enqueueing the same key again (a retried task) is a no-op that returns the existing id.
        """
        if kind not in NOTIFICATION_KINDS:
            raise ValueError(f"notification kind must be one of {sorted(NOTIFICATION_KINDS)}, got {kind!r}")
        _require(dedupe_key, "dedupe_key")
        _require(channel, "channel")
        with self._connect(f"enqueue {dedupe_key}") as conn:
            row = conn.execute(
                """
                INSERT INTO notifications (dedupe_key, dag_id, run_id, kind, channel, text, blocks,
                                           thread_parent_key)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (dedupe_key) DO NOTHING
                RETURNING id
                """,
                [
                    dedupe_key,
                    dag_id,
                    run_id,
                    kind,
                    channel,
                    text,
                    Jsonb(blocks) if blocks is not None else None,
                    thread_parent_key,
                ],
            ).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT id FROM notifications WHERE dedupe_key = %s", [dedupe_key]
                ).fetchone()
        if row is None:  # pragma: no cover - the conflict row cannot vanish: nothing deletes rows
            raise StoreError(f"{self.name}: enqueue {dedupe_key}: row disappeared")
        return int(row["id"])

    def pending(self, limit: int = 100) -> list[OutboxMessage]:
        """Undelivered messages in the order they were written (oldest first)."""
        with self._connect("read pending notifications") as conn:
            rows = conn.execute(
                _SELECT_MESSAGES
                + " WHERE n.sent_at IS NULL AND n.given_up_at IS NULL ORDER BY n.id LIMIT %s",
                [limit],
            ).fetchall()
        return [_message(row) for row in rows]

    def count_pending(self) -> int:
        with self._connect("count pending notifications") as conn:
            row = conn.execute(
                "SELECT count(*) AS n FROM notifications WHERE sent_at IS NULL AND given_up_at IS NULL"
            ).fetchone()
        return int(row["n"]) if row else 0

    def notifications(self, dag_id: str | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Newest messages first, sent or not (what the Maintenance page shows as "posted")."""
        with self._connect("read notifications") as conn:
            rows = conn.execute(
                _SELECT_MESSAGES
                + " WHERE (%(dag)s::text IS NULL OR n.dag_id = %(dag)s) ORDER BY n.id DESC LIMIT %(limit)s",
                {"dag": dag_id, "limit": limit},
            ).fetchall()
        return [_message(row) for row in rows]

    def get_notification(self, dedupe_key: str) -> OutboxMessage | None:
        with self._connect(f"read notification {dedupe_key}") as conn:
            row = conn.execute(_SELECT_MESSAGES + " WHERE n.dedupe_key = %s", [dedupe_key]).fetchone()
        return _message(row) if row else None

    def mark_sending(self, notification_id: int) -> tuple[str, datetime] | None:
        """Before a post: give the message its idempotency key (kept across attempts) and record the
        attempt; returns ``(delivery_key, sending_since)``, or ``None`` when it is no longer pending
        (another flusher sent it or gave it up: do not post).

        ``sending_since`` stays at the first attempt whose outcome is unknown, so a later lookup in
        the channel searches from there; :meth:`mark_failed` clears it when Slack certainly did not
        take the message, :meth:`mark_sent` when it did.
        """
        with self._connect(f"mark notification {notification_id} sending") as conn:
            row = conn.execute(
                """
                UPDATE notifications
                SET delivery_key = coalesce(delivery_key, %s), sending_since = coalesce(sending_since, now()),
                    last_attempt_at = now()
                WHERE id = %s AND sent_at IS NULL AND given_up_at IS NULL
                RETURNING delivery_key, sending_since
                """,
                [f"sanvi-{uuid.uuid4().hex}", notification_id],
            ).fetchone()
        return (str(row["delivery_key"]), row["sending_since"]) if row else None

    def mark_sent(self, notification_id: int, ts: str, channel: str) -> None:
        """Record Slack's ``ts`` and channel id; a message already marked sent keeps its first ts."""
        with self._connect(f"mark notification {notification_id} sent") as conn:
            conn.execute(
                """
                UPDATE notifications
                SET sent_at = now(), slack_ts = %s, slack_channel = %s, attempts = attempts + 1,
                    sending_since = NULL
                WHERE id = %s AND sent_at IS NULL
                """,
                [ts, channel, notification_id],
            )

    def mark_failed(
        self, notification_id: int, error: str, *, give_up: bool = False, in_doubt: bool = False
    ) -> None:
        """Record a failed attempt; with ``give_up`` the message is kept but no longer sent.

        :param in_doubt: Slack may have accepted the post (5xx, timeout, reset after sending): the
            message stays "sending" and the next attempt looks it up in the channel first. Without
            it, Slack certainly did not take the message and the "sending" mark is cleared.
        """
        with self._connect(f"mark notification {notification_id} failed") as conn:
            conn.execute(
                """
                UPDATE notifications
                SET attempts = attempts + 1, last_error = %s,
                    given_up_at = CASE WHEN %s THEN now() ELSE given_up_at END,
                    sending_since = CASE WHEN %s THEN sending_since ELSE NULL END
                WHERE id = %s AND sent_at IS NULL
                """,
                [redact(error)[:_ERROR_TEXT_LIMIT], give_up, in_doubt, notification_id],
            )

    def adopt_delivery(
        self,
        dedupe_key: str,
        *,
        delivery_key: str,
        sending_since: datetime | None,
        ts: str | None = None,
        channel: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Attach a post made without the store (results store down) to an outbox message.

        With ``ts`` the message is marked sent with it (Slack has it: never post it again);
        without, it is marked "sending" with ``delivery_key`` since ``sending_since`` so the next
        flush looks it up in the channel before posting. Returns whether the row changed.
        """
        with self._connect(f"adopt the delivery of {dedupe_key}") as conn:
            if ts:
                row = conn.execute(
                    """
                    UPDATE notifications
                    SET sent_at = now(), slack_ts = %s, slack_channel = %s, attempts = attempts + 1,
                        delivery_key = coalesce(delivery_key, %s), sending_since = NULL, last_error = %s
                    WHERE dedupe_key = %s AND sent_at IS NULL RETURNING id
                    """,
                    [ts, channel, delivery_key, note, dedupe_key],
                ).fetchone()
            else:
                row = conn.execute(
                    """
                    UPDATE notifications
                    SET delivery_key = coalesce(delivery_key, %s),
                        sending_since = coalesce(sending_since, %s, now()), last_error = %s
                    WHERE dedupe_key = %s AND sent_at IS NULL AND given_up_at IS NULL RETURNING id
                    """,
                    [delivery_key, sending_since, note, dedupe_key],
                ).fetchone()
        return row is not None

    def known_channel_id(self, channel: str) -> str | None:
        """The channel id (``C…``) Slack returned for an earlier message posted to ``channel``."""
        with self._connect(f"find the channel id of {channel}") as conn:
            row = conn.execute(
                """
                SELECT slack_channel FROM notifications
                WHERE channel = %s AND slack_channel IS NOT NULL AND thread_parent_key IS NULL
                ORDER BY id DESC LIMIT 1
                """,
                [channel],
            ).fetchone()
        return str(row["slack_channel"]) if row else None

    @contextmanager
    def flush_lock(self, wait_seconds: float = 0) -> Iterator[bool]:
        """Hold the outbox flusher lock for the block; yields ``False`` if another flusher holds it.

        A session-level advisory lock on a connection kept open for the whole flush, so two runs
        flushing at once never send the same message twice, and a crashed flusher's lock goes away
        with its connection. ``wait_seconds`` > 0 waits that long for it (``lock_timeout``) instead
        of giving up at once (a replay must not race a flusher).
        """
        with self._connect("take the outbox flush lock", autocommit=True) as conn:
            if wait_seconds > 0:
                conn.execute(
                    sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{int(wait_seconds * 1000)}ms"))
                )
                try:
                    conn.execute("SELECT pg_advisory_lock(%s)", [FLUSH_LOCK_KEY])
                    got = True
                except psycopg.errors.LockNotAvailable:
                    got = False
                conn.execute("RESET lock_timeout")
            else:
                row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", [FLUSH_LOCK_KEY]).fetchone()
                got = bool(row and row["got"])
            try:
                yield got
            finally:
                if got and not conn.closed:
                    # A server that died mid-flush took the lock with it: nothing left to unlock.
                    with contextlib.suppress(psycopg.OperationalError, psycopg.InterfaceError):
                        conn.execute("SELECT pg_advisory_unlock(%s)", [FLUSH_LOCK_KEY])

    # ------------------------------------------------------------------------------ heartbeats

    @property
    def dsn(self) -> str:
        """The libpq DSN (for modules that take one, e.g. :mod:`sanvi_ops.core.silences`); never log it."""
        return self._dsn

    def record_heartbeat(
        self, source: str, run_id: str, *, pinged: bool, detail: str = "", at: datetime | None = None
    ) -> None:
        """Record that ``source`` (the watchdog DAG) ran ``run_id`` at ``at``; a retry updates its row."""
        _require(source, "source")
        _require(run_id, "run_id")
        with self._connect(f"record heartbeat {source}/{run_id}") as conn:
            conn.execute(
                """
                INSERT INTO heartbeats (source, run_id, at, pinged, detail)
                VALUES (%s, %s, coalesce(%s, now()), %s, %s)
                ON CONFLICT (source, run_id) DO UPDATE SET
                    at = EXCLUDED.at, pinged = EXCLUDED.pinged, detail = EXCLUDED.detail
                """,
                [source, run_id, at, pinged, redact(detail)[:_ERROR_TEXT_LIMIT]],
            )

    def latest_heartbeat(self, source: str) -> dict[str, Any] | None:
        """The newest heartbeat row of ``source`` (``run_id, at, pinged, detail``), or ``None``."""
        with self._connect(f"read heartbeat of {source}") as conn:
            row = conn.execute(
                "SELECT run_id, at, pinged, detail FROM heartbeats WHERE source = %s ORDER BY at DESC, id DESC LIMIT 1",
                [source],
            ).fetchone()
        return dict(row) if row else None

    # ------------------------------------------------------------------------------ utilities

    def table_counts(self) -> dict[str, int]:
        """Row count per store table (tests and the Maintenance page's health line)."""
        counts: dict[str, int] = {}
        with self._connect("count rows") as conn:
            for table in ("check_results", "notifications", "incidents"):
                row = conn.execute(
                    sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(table))
                ).fetchone()
                counts[table] = int(row["n"]) if row else 0
        return counts


def _reason(exc: psycopg.Error) -> str:
    """The server's one-line message (not the echoed query), without passwords."""
    primary = exc.diag.message_primary if isinstance(exc, psycopg.errors.DatabaseError) else None
    text = primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return redact(text)


def _require(value: str, what: str) -> None:
    if not value:
        raise ValueError(f"{what} must not be empty")


def _result(row: Mapping[str, Any]) -> CheckResult:
    return CheckResult(
        check=row["check_name"],
        status=row["status"],
        summary=row["summary"],
        metric=row["metric"],
        observed=row["observed"],
        unit=row["unit"],
        thresholds=row["thresholds"] or {},
        details=row["details"] or {},
        severity=row["severity"],
        component=row["component"],
    )


def _incident(row: Mapping[str, Any]) -> Incident:
    return Incident(
        id=int(row["id"]),
        dag_id=row["dag_id"],
        check=row["check_name"],
        severity=row["severity"],
        summary=row["summary"],
        opened_at=row["opened_at"],
        opened_run_id=row["opened_run_id"],
        resolved_at=row["resolved_at"],
        resolved_run_id=row["resolved_run_id"],
        last_update_at=row["last_update_at"],
        component=row.get("component") or "",
    )


def _message(row: Mapping[str, Any]) -> OutboxMessage:
    parent_state: Literal["none", "pending", "sent", "given_up", "missing"] = "none"
    if row["thread_parent_key"]:
        if row["parent_id"] is None:
            parent_state = "missing"
        elif row["parent_sent_at"] is not None:
            parent_state = "sent"
        elif row["parent_given_up_at"] is not None:
            parent_state = "given_up"
        else:
            parent_state = "pending"
    return OutboxMessage(
        id=int(row["id"]),
        dedupe_key=row["dedupe_key"],
        dag_id=row["dag_id"],
        run_id=row["run_id"],
        kind=row["kind"],
        channel=row["channel"],
        text=row["text"],
        blocks=row["blocks"],
        thread_parent_key=row["thread_parent_key"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
        slack_ts=row["slack_ts"],
        slack_channel=row["slack_channel"],
        attempts=int(row["attempts"]),
        last_error=row["last_error"],
        given_up_at=row["given_up_at"],
        parent_state=parent_state,
        parent_ts=row["parent_ts"],
        parent_channel=row["parent_channel"],
        delivery_key=row.get("delivery_key"),
        sending_since=row.get("sending_since"),
        last_attempt_at=row.get("last_attempt_at"),
    )
