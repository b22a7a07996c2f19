"""The weekly VACUUM ANALYZE: plan by need, vacuum in parallel, report every table.

Three steps, each usable on its own (the tests drop a table between the first two):

1. :func:`read_stats` reads every table's dead tuples, modifications since the last ANALYZE,
   autovacuum thresholds (server settings overridden by per-table reloptions), transaction-ID
   age and last (auto)vacuum/analyze from ``pg_class`` and the ``pg_stat_get_*`` counters
   (``include/sanvi_ops/tasks/database_maintenance/sql/table_stats.sql``), once per run.
2. :func:`make_plan` picks and orders the tables for a mode: ``needed`` (default; only tables
   over a threshold, see :attr:`TableStats.need`), ``all`` or ``tables`` (a list). A dry run is
   the plan and nothing else (the run policy says so, not the mode).
3. :func:`vacuum_tables` runs ``VACUUM (ANALYZE, SKIP_LOCKED)`` per table, ``parallelism``
   tables at once, each worker on its own autocommit connection, with ``lock_timeout`` and
   ``statement_timeout`` set on the session (the latter cut to what is left of the run's time
   box). A table whose lock is taken is skipped (never waited on), one that runs over its
   timeout is cancelled, one dropped since planning is reported as such, and tables that did
   not fit in the time box are reported as not run. As a table finishes, its statistics are read
   once (``sql/table_after.sql``, on the planning session, while the workers go on): dead tuples
   after, transaction-ID age after.

:func:`results` turns an outcome into :class:`~sanvi_ops.core.results.CheckResult` s: one per table,
one per table near transaction-ID wraparound, and a run summary naming the worst tables;
:func:`refused` is the one result of a run its policy refused.

VACUUM FULL is impossible by construction: the only VACUUM statement is :data:`VACUUM_SQL`, a
constant whose options are ``(ANALYZE, SKIP_LOCKED)``; table names only ever enter it as
:class:`psycopg.sql.Identifier` (hostile names are quoted, never injected).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any, Final, Literal

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from sanvi_ops.core.queries import query_loader
from sanvi_ops.core.results import CheckResult, Status, grade
from sanvi_ops.core.run_policy import RunPolicy

__all__ = [
    "MODES",
    "Mode",
    "VACUUM_OPTIONS",
    "VACUUM_SQL",
    "Outcome",
    "Plan",
    "RunReport",
    "State",
    "TableStats",
    "connect",
    "make_plan",
    "read_stats",
    "refused",
    "results",
    "vacuum_statement",
    "vacuum_tables",
]

SQL_DIR: Final = Path(__file__).resolve().parent / "sql"
_sql = query_loader(SQL_DIR)
COMPONENT: Final = "postgres"
APPLICATION_NAME: Final = "sanvi-ops-vacuum"

Mode = Literal["needed", "all", "tables"]
MODES: Final[tuple[Mode, ...]] = ("needed", "all", "tables")

#: The only options VACUUM is ever run with. No FULL (rewrites the table under an ACCESS
#: EXCLUSIVE lock), no FREEZE, no DISABLE_PAGE_SKIPPING: plain VACUUM blocks no reads or writes.
VACUUM_OPTIONS: Final = "ANALYZE, SKIP_LOCKED"
#: The only VACUUM statement; ``{}`` is a schema-qualified :class:`psycopg.sql.Identifier`.
VACUUM_SQL: Final = sql.SQL("VACUUM (ANALYZE, SKIP_LOCKED) {}")

#: How many of the worst tables the run summary names.
WORST_NAMED: Final = 5
#: A table is not started with less than this much of the time box left.
MIN_SLICE_S: Final = 0.5
#: The statistics of tables that finish within this long of each other are read in one query
#: (200 small tables: a handful of reads instead of 200, each one a query competing with the
#: VACUUMs for the server's CPU; the workers never wait for them).
READ_EVERY_S: Final = 0.25

_LOCK_NOT_AVAILABLE: Final = "55P03"
#: ``permission denied to vacuum "t", skipping it`` (a WARNING with no SQLSTATE of its own).
_DENIED_PREFIX: Final = "permission denied to"
_DENIED_HINT: Final = (
    "the app_db connection's role must own the table or hold MAINTAIN on it (GRANT pg_maintain TO <role>)"
)


def vacuum_statement(schema: str, table: str) -> sql.Composed:
    """``VACUUM (ANALYZE, SKIP_LOCKED) "schema"."table"``: the one statement this module runs."""
    return VACUUM_SQL.format(sql.Identifier(schema, table))


def _ms(seconds: float) -> str:
    """A GUC value in ms; at least 1 (0 would switch the timeout off)."""
    return str(max(1, int(seconds * 1000)))


def connect(dsn: str, lock_timeout_s: float) -> psycopg.Connection[Any]:
    """An autocommit session as every step uses it: ``lock_timeout`` set, and if this process is
    killed (task timeout, marked failed) the server cancels what it left running within seconds
    (``client_connection_check_interval``). The planning session goes on to read each table's
    statistics as its VACUUM finishes (:func:`vacuum_tables`).

    ``synchronous_commit`` is off for the session: each VACUUM and ANALYZE commits (hundreds of
    small tables: hundreds of WAL flushes to wait for), and what a crash could lose of them is
    the visibility map and statistics updates of the last few hundred milliseconds, which the
    next VACUUM redoes; no data is at stake (the table's rows are never changed by it)."""
    conn = psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME)
    try:
        conn.execute(
            "SELECT set_config('lock_timeout', %s, false), "
            "set_config('client_connection_check_interval', '5000', false), "
            "set_config('synchronous_commit', 'off', false)",
            (_ms(lock_timeout_s),),
        )
    except BaseException:
        conn.close()
        raise
    return conn


# --------------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class TableStats:
    """What decides whether one table needs VACUUM ANALYZE (one row of table_stats.sql)."""

    oid: int
    schema: str
    name: str
    n_live_tup: int = 0
    n_dead_tup: int = 0
    n_mod_since_analyze: int = 0
    vacuum_threshold: float = 50.0
    analyze_threshold: float = 50.0
    xid_age: int = 0
    freeze_max_age: float = 200_000_000.0
    last_vacuum: dt.datetime | None = None
    last_analyze: dt.datetime | None = None
    size_bytes: int = 0

    @property
    def qualified(self) -> str:
        """``schema.table`` for people (not for SQL: that is :func:`vacuum_statement`)."""
        return f"{self.schema}.{self.name}"

    @property
    def wraparound_pct(self) -> float:
        """``age(relfrozenxid)`` in % of ``autovacuum_freeze_max_age``."""
        return 100.0 * self.xid_age / self.freeze_max_age if self.freeze_max_age > 0 else 0.0

    def need(self, wraparound_warning_pct: float) -> tuple[float, list[str]]:
        """(score, reasons): score > 1 means the table needs VACUUM ANALYZE now.

        The score is the largest of dead tuples / vacuum threshold, modifications since the last
        ANALYZE / analyze threshold (autovacuum's own tests: strictly above the threshold) and
        transaction-ID age / the wraparound warning level. Reasons say which crossed.
        """
        dead = self.n_dead_tup / max(self.vacuum_threshold, 1.0)
        mods = self.n_mod_since_analyze / max(self.analyze_threshold, 1.0)
        xid = self.wraparound_pct / wraparound_warning_pct if wraparound_warning_pct > 0 else 0.0
        reasons = []
        if dead > 1:
            reasons.append(f"{self.n_dead_tup} dead tuples > threshold {self.vacuum_threshold:.0f}")
        if mods > 1:
            reasons.append(
                f"{self.n_mod_since_analyze} changes since ANALYZE > threshold {self.analyze_threshold:.0f}"
            )
        if xid > 1:
            reasons.append(f"xid age {self.wraparound_pct:.0f}% of autovacuum_freeze_max_age")
        return max(dead, mods, xid), reasons


def read_stats(conn: psycopg.Connection[Any]) -> list[TableStats]:
    """Every vacuumable table of the connection's database (sorted by schema, name)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_sql("table_stats.sql")).fetchall()
    return [
        TableStats(
            oid=int(r["oid"]),
            schema=r["schema_name"],
            name=r["table_name"],
            n_live_tup=int(r["n_live_tup"]),
            n_dead_tup=int(r["n_dead_tup"]),
            n_mod_since_analyze=int(r["n_mod_since_analyze"]),
            vacuum_threshold=float(r["vacuum_threshold"]),
            analyze_threshold=float(r["analyze_threshold"]),
            xid_age=int(r["xid_age"]),
            freeze_max_age=float(r["freeze_max_age"]),
            last_vacuum=r["last_vacuum"],
            last_analyze=r["last_analyze"],
            size_bytes=int(r["size_bytes"] or 0),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Plan:
    """The tables to vacuum, most urgent first, and what was asked for but not found."""

    mode: Mode
    tables: tuple[TableStats, ...]
    reasons: dict[int, list[str]]
    considered: int
    unknown: tuple[str, ...] = ()


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _last_touched(t: TableStats) -> dt.datetime:
    times = [x for x in (t.last_vacuum, t.last_analyze) if x is not None]
    return min(times) if len(times) == 2 else _EPOCH  # never vacuumed or never analyzed: first


def _resolve(stats: Sequence[TableStats], names: Sequence[str]) -> tuple[list[TableStats], list[str]]:
    """Match ``schema.table`` (exact) or a bare table name that is unique across schemas."""
    by_qualified = {t.qualified: t for t in stats}
    by_name: dict[str, list[TableStats]] = {}
    for t in stats:
        by_name.setdefault(t.name, []).append(t)
    found: dict[int, TableStats] = {}
    unknown: list[str] = []
    for raw in names:
        wanted = raw.strip()
        match = by_qualified.get(wanted)
        if match is None and len(by_name.get(wanted, [])) == 1:
            match = by_name[wanted][0]
        if match is None:
            unknown.append(raw)
        else:
            found[match.oid] = match
    return list(found.values()), unknown


def make_plan(
    stats: Sequence[TableStats],
    mode: Mode = "needed",
    tables: Sequence[str] = (),
    *,
    wraparound_warning_pct: float = 50.0,
) -> Plan:
    """Choose and order the tables for ``mode`` (see the module docstring).

    Order: need score (highest first), then the table least recently vacuumed/analyzed (never
    first), then transaction-ID age, then the name (stable). ``tables`` entries are
    ``schema.table`` or a bare name unique across schemas; entries that match nothing are
    returned in :attr:`Plan.unknown`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "tables" and not tables:
        raise ValueError("mode 'tables' needs a list of tables (schema.table)")
    scored = {t.oid: t.need(wraparound_warning_pct) for t in stats}
    unknown: list[str] = []
    if mode == "tables":
        chosen, unknown = _resolve(stats, tables)
    elif mode == "all":
        chosen = list(stats)
    else:
        chosen = [t for t in stats if scored[t.oid][0] > 1]
    chosen.sort(key=lambda t: (-scored[t.oid][0], _last_touched(t), -t.xid_age, t.schema, t.name))
    return Plan(
        mode=mode,
        tables=tuple(chosen),
        reasons={t.oid: scored[t.oid][1] for t in chosen},
        considered=len(stats),
        unknown=tuple(unknown),
    )


# -------------------------------------------------------------------------------- vacuuming


class State(StrEnum):
    """What happened to one planned table."""

    VACUUMED = "vacuumed"
    LOCKED = "locked"  # skipped: another session holds a conflicting lock
    TIMED_OUT = "timed_out"  # cancelled by statement_timeout
    DROPPED = "dropped"  # gone since planning
    NOT_RUN = "not_run"  # did not fit in the time box
    FAILED = "failed"  # anything else (message in Outcome.error)
    PLANNED = "planned"  # dry run: would be vacuumed


@dataclass(frozen=True)
class Outcome:
    """One table's result: dead tuples before/after, how long it took, what happened."""

    table: TableStats
    state: State
    dead_before: int | None = None
    dead_after: int | None = None
    duration_s: float = 0.0
    error: str = ""
    #: The table's statistics read as it finished (``None``: not vacuumed, or gone).
    after: TableStats | None = None


@dataclass
class RunReport:
    """Everything :func:`vacuum_tables` did, in plan order."""

    outcomes: list[Outcome]
    elapsed_s: float
    time_box_s: float
    parallelism: int


class _StatsAfter:
    """Reads the statistics of vacuumed tables as they finish (``sql/table_after.sql``): on the
    planning session when given, else on one of its own opened at the first read."""

    def __init__(self, dsn: str, lock_timeout_s: float, conn: psycopg.Connection[Any] | None) -> None:
        self.dsn, self.lock_timeout_s = dsn, lock_timeout_s
        self.given, self.conn = conn, conn

    def read(self, tables: Sequence[TableStats]) -> dict[int, TableStats]:
        """``tables`` with their counters and transaction-ID age as they are now, by oid; a table
        that is gone is missing, and so is every table when the read fails (the counters after
        are only reported: the VACUUMs go on regardless)."""
        by_oid = {t.oid: t for t in tables}
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.dsn, self.lock_timeout_s)
            with self.conn.cursor(row_factory=dict_row) as cur:
                rows = cur.execute(_sql("table_after.sql"), (list(by_oid),)).fetchall()
        except psycopg.Error:
            return {}
        return {
            int(r["oid"]): dataclasses.replace(
                by_oid[int(r["oid"])],
                n_live_tup=int(r["n_live_tup"]),
                n_dead_tup=int(r["n_dead_tup"]),
                n_mod_since_analyze=int(r["n_mod_since_analyze"]),
                xid_age=int(r["xid_age"]),
                last_vacuum=r["last_vacuum"],
                last_analyze=r["last_analyze"],
            )
            for r in rows
        }

    def close(self) -> None:
        if self.conn is not None and self.conn is not self.given:
            self.conn.close()


class _Worker:
    """One connection, many tables: notices from VACUUM tell a skipped (locked) table apart.

    One round trip per table, the VACUUM itself, as ``vacuumdb`` does: the session's
    ``statement_timeout`` is only set again when the table's differs from the last one's (when
    the time box, not ``statement_timeout``, limits it), and the table's statistics after it are
    read by :func:`vacuum_tables` on another session.
    """

    def __init__(self, dsn: str, lock_timeout_s: float) -> None:
        self.dsn = dsn
        self.lock_timeout_s = lock_timeout_s
        self.conn: psycopg.Connection[Any] | None = None
        #: The session's statement_timeout as last set (``None``: not set on this session yet).
        self.timeout_ms: str | None = None
        #: (sqlstate, message) of the server's notices; a Diagnostic is only valid inside the
        #: handler, so its fields are copied there.
        self.notices: list[tuple[str | None, str | None]] = []

    def connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            self.conn, self.timeout_ms = connect(self.dsn, self.lock_timeout_s), None
            self.conn.add_notice_handler(lambda d: self.notices.append((d.sqlstate, d.message_primary)))
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()

    def vacuum(self, table: TableStats, statement_timeout_s: float) -> Outcome:
        started = time.monotonic()
        before = table.n_dead_tup  # as planned: every table's statistics are read once before the run

        def done(state: State, **kw: Any) -> Outcome:
            return Outcome(table, state, duration_s=time.monotonic() - started, **kw)

        try:
            conn = self.connection()
            timeout = _ms(statement_timeout_s)
            if timeout != self.timeout_ms:
                conn.execute("SELECT set_config('statement_timeout', %s, false)", (timeout,))
                self.timeout_ms = timeout
            self.notices.clear()
            conn.execute(vacuum_statement(table.schema, table.name))
            if any(state == _LOCK_NOT_AVAILABLE for state, _message in self.notices):
                return done(
                    State.LOCKED, dead_before=before, error="lock not available (another session holds it)"
                )
            denied = [m for _state, m in self.notices if m and m.startswith(_DENIED_PREFIX)]
            if denied:  # the server skips the table with a WARNING (no SQLSTATE) instead of failing
                return done(State.FAILED, dead_before=before, error=f"{denied[0]}: {_DENIED_HINT}")
            return done(State.VACUUMED, dead_before=before)
        except psycopg.Error as exc:
            # A fresh session for the next table: no timeout or state left over from this one.
            self.close()
            state, error = self._classify(exc, statement_timeout_s)
            return done(state, error=error)

    def _classify(self, exc: psycopg.Error, statement_timeout_s: float) -> tuple[State, str]:
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            return State.LOCKED, f"lock_timeout ({self.lock_timeout_s:g} s) reached"
        if isinstance(exc, psycopg.errors.QueryCanceled):
            return State.TIMED_OUT, f"statement_timeout ({statement_timeout_s:.3g} s) reached"
        if isinstance(exc, psycopg.errors.UndefinedTable | psycopg.errors.InvalidSchemaName):
            return State.DROPPED, "the table no longer exists (dropped after planning)"
        return State.FAILED, f"{type(exc).__name__}: {str(exc).strip()}"


def _next_batch(finished: SimpleQueue[int | None], running: int) -> list[int | None]:
    """Wait for the next table to finish, then take every one that finishes within
    :data:`READ_EVERY_S` (at once when every worker is done: the run never waits for this)."""
    batch = [finished.get()]
    until = time.monotonic() + READ_EVERY_S
    while batch.count(None) < running and (left := until - time.monotonic()) > 0:
        try:
            batch.append(finished.get(timeout=left))
        except Empty:
            break
    return batch


def vacuum_tables(
    dsn: str,
    tables: Sequence[TableStats],
    *,
    parallelism: int = 2,
    lock_timeout_s: float = 5.0,
    statement_timeout_s: float = 1800.0,
    time_box_s: float = 7200.0,
    clock: Callable[[], float] = time.monotonic,
    conn: psycopg.Connection[Any] | None = None,
) -> RunReport:
    """VACUUM ANALYZE ``tables`` in order, ``parallelism`` at once, within ``time_box_s``.

    Each worker thread has its own autocommit connection. Before each table the worker checks
    the time box: with less than :data:`MIN_SLICE_S` left the table (and every one after it) is
    ``not_run``; otherwise the table's ``statement_timeout`` is the smaller of
    ``statement_timeout_s`` and what is left, so the run never overruns its box by more than
    a cancellation takes.

    Meanwhile this thread reads the statistics of each vacuumed table as it finishes (dead
    tuples and transaction-ID age after it: :attr:`Outcome.after`), on ``conn`` (the planning
    session from :func:`connect`) or a session of its own, in one query for the tables that
    finished within :data:`READ_EVERY_S` of each other; the workers never wait for it.
    """
    if parallelism < 1:
        raise ValueError(f"parallelism must be >= 1, got {parallelism}")
    started = clock()
    deadline = started + time_box_s
    queue: deque[tuple[int, TableStats]] = deque(enumerate(tables))
    outcomes: dict[int, Outcome] = {}
    lock = threading.Lock()
    #: Indexes of tables just vacuumed; ``None``: a worker has finished.
    finished: SimpleQueue[int | None] = SimpleQueue()

    def work() -> None:
        worker = _Worker(dsn, lock_timeout_s)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    index, table = queue.popleft()
                left = deadline - clock()
                if left < MIN_SLICE_S:
                    outcome = Outcome(table, State.NOT_RUN, error="did not fit in the run's time box")
                else:
                    outcome = worker.vacuum(table, min(statement_timeout_s, left))
                with lock:
                    outcomes[index] = outcome
                if outcome.state == State.VACUUMED:
                    finished.put(index)
        finally:
            worker.close()
            finished.put(None)

    threads = [
        threading.Thread(target=work, name=f"vacuum-{i}", daemon=True)
        for i in range(min(parallelism, max(len(tables), 1)))
    ]
    for t in threads:
        t.start()
    reader, running = _StatsAfter(dsn, lock_timeout_s, conn), len(threads)
    try:
        while running:
            batch = _next_batch(finished, running)
            running -= batch.count(None)
            with lock:
                done = {i: outcomes[i] for i in batch if i is not None}
            after = reader.read([o.table for o in done.values()]) if done else {}
            with lock:
                for i, o in done.items():
                    if (now := after.get(o.table.oid)) is not None:
                        outcomes[i] = dataclasses.replace(o, dead_after=now.n_dead_tup, after=now)
    finally:
        for t in threads:
            t.join()
        reader.close()
    ordered = [
        outcomes.get(i, Outcome(table, State.FAILED, error="worker died")) for i, table in enumerate(tables)
    ]
    return RunReport(ordered, clock() - started, time_box_s, parallelism)


# ------------------------------------------------------------------------------- results


_STATE_STATUS: Final = {
    State.VACUUMED: Status.OK,
    State.PLANNED: Status.SKIPPED,
    State.LOCKED: Status.SKIPPED,
    State.DROPPED: Status.SKIPPED,
    State.TIMED_OUT: Status.WARNING,
    State.NOT_RUN: Status.WARNING,
    State.FAILED: Status.ERROR,
}


def _table_result(o: Outcome, reasons: list[str]) -> CheckResult:
    t = o.table
    if o.state == State.VACUUMED:
        text = f"vacuumed in {o.duration_s:.2f} s: {o.dead_before} → {o.dead_after} dead tuples"
    elif o.state == State.PLANNED:
        text = "dry run: would VACUUM ANALYZE" + (f" ({'; '.join(reasons)})" if reasons else "")
    elif o.state == State.LOCKED:
        text = f"skipped: {o.error}; not waited on"
    elif o.state == State.NOT_RUN:
        text = f"not run: {o.error}; {t.n_dead_tup} dead tuples remain"
    else:
        text = f"{o.state.value.replace('_', ' ')}: {o.error}"
    return CheckResult(
        check=f"vacuum.table[{t.qualified}]",
        status=_STATE_STATUS[o.state],
        summary=text,
        metric="dead_tuples",
        observed=float(o.dead_after if o.dead_after is not None else t.n_dead_tup),
        unit="count",
        details={
            "schema": t.schema,
            "table": t.name,
            "state": o.state.value,
            "dead_before": o.dead_before if o.dead_before is not None else t.n_dead_tup,
            "dead_after": o.dead_after,
            "duration_s": round(o.duration_s, 3),
            "reasons": reasons,
            "xid_age": t.xid_age,
            "wraparound_pct": round(t.wraparound_pct, 2),
        },
        component=COMPONENT,
    )


def _wraparound_results(stats: Sequence[TableStats], warning: float, critical: float) -> list[CheckResult]:
    out = []
    for t in sorted(stats, key=lambda s: -s.wraparound_pct):
        status = grade(t.wraparound_pct, warning, critical)
        if status == Status.OK:
            break
        out.append(
            CheckResult(
                check=f"vacuum.wraparound[{t.qualified}]",
                status=status,
                summary=(
                    f"transaction-ID age {t.xid_age} is {t.wraparound_pct:.0f}% of autovacuum_freeze_max_age "
                    f"({t.freeze_max_age:.0f}): anti-wraparound autovacuum is due at 100%; "
                    "run VACUUM (FREEZE) on it in a quiet hour"
                ),
                metric="xid_age_pct_of_freeze_max_age",
                observed=round(t.wraparound_pct, 2),
                unit="%",
                thresholds={"warning": warning, "critical": critical},
                details={"xid_age": t.xid_age, "freeze_max_age": t.freeze_max_age},
                severity="P2" if status == Status.CRITICAL else None,
                component=COMPONENT,
            )
        )
    return out


def _worst_tables(outcomes: Sequence[Outcome]) -> list[str]:
    """The tables with the most dead tuples before this run, and what became of them."""
    ranked = sorted(
        outcomes, key=lambda o: -(o.dead_before if o.dead_before is not None else o.table.n_dead_tup)
    )
    names = []
    for o in ranked[:WORST_NAMED]:
        before = o.dead_before if o.dead_before is not None else o.table.n_dead_tup
        after = f"→ {o.dead_after}" if o.dead_after is not None else f"({o.state.value.replace('_', ' ')})"
        names.append(f"{o.table.qualified} {before} {after}")
    return names


def results(
    plan: Plan,
    report: RunReport | None,
    stats: Sequence[TableStats],
    *,
    wraparound_warning: float = 50.0,
    wraparound_critical: float = 80.0,
) -> list[CheckResult]:
    """Per-table results, wraparound results and a ``vacuum.run`` summary first. ``report`` is
    ``None`` for a dry run. Wraparound is graded on ``stats`` (every table, as planned), each
    table the run vacuumed on its own read as it finished."""
    if report is None:
        outcomes = [Outcome(t, State.PLANNED) for t in plan.tables]
    else:
        outcomes = list(report.outcomes)
    finished = {o.table.oid: o.after for o in outcomes if o.after is not None}
    after = [finished.get(t.oid, t) for t in stats]
    per_table = [_table_result(o, plan.reasons.get(o.table.oid, [])) for o in outcomes]
    unknown = [
        CheckResult(
            check=f"vacuum.table[{name}]",
            status=Status.WARNING,
            summary="no such table in the database (give schema.table as listed in pg_stat_user_tables)",
            component=COMPONENT,
        )
        for name in plan.unknown
    ]
    wrap = _wraparound_results(after, wraparound_warning, wraparound_critical)

    counts: dict[State, int] = {}
    for o in outcomes:
        counts[o.state] = counts.get(o.state, 0) + 1
    if report is None:
        head = (
            f"dry run: {len(plan.tables)} of {plan.considered} tables would be vacuumed, nothing was changed"
        )
    else:
        done = ", ".join(f"{n} {s.value.replace('_', ' ')}" for s, n in counts.items()) or "nothing to do"
        head = (
            f"{plan.mode}: {len(plan.tables)} of {plan.considered} tables planned; {done}; "
            f"{report.elapsed_s:.1f} s of a {report.time_box_s:.0f} s time box, {report.parallelism} at once"
        )
    parts = [head]
    if outcomes:
        parts.append("worst: " + "; ".join(_worst_tables(outcomes)))
    near = [f"{r.check.removeprefix('vacuum.wraparound[').removesuffix(']')} {r.observed:.0f}%" for r in wrap]
    parts.append("near wraparound: " + (", ".join(near) if near else "none"))
    run_status = Status.WARNING if counts.get(State.NOT_RUN) else Status.OK
    summary = CheckResult(
        check="vacuum.run",
        status=run_status,
        summary=" · ".join(parts),
        metric="tables_vacuumed",
        observed=float(counts.get(State.VACUUMED, 0)),
        unit="count",
        details={
            "mode": plan.mode,
            "planned": [t.qualified for t in plan.tables],
            "counts": {s.value: n for s, n in counts.items()},
            "elapsed_s": None if report is None else round(report.elapsed_s, 3),
        },
        component=COMPONENT,
    )
    return [summary, *wrap, *per_table, *unknown]


def refused(policy: RunPolicy) -> CheckResult:
    """The one result of a run its policy refused (an approver said no, or the maintenance window
    was closed): ``skipped``, saying why and how to run anyway; nothing was vacuumed."""
    return CheckResult(
        check="vacuum.run",
        status=Status.SKIPPED,
        summary=policy.reason,
        details={"run_policy": policy.as_dict()},
        component=COMPONENT,
    )
