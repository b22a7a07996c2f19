"""Silences: a critical result that matches one is stored and its incident recorded, but nobody is paged.

A silence has a scope (a DAG id, an ``fnmatch`` pattern on the check name, or both), a reason, an
author and an expiry. It comes from the config file's ``silences:`` list (``source='config'``,
copied into the store by :func:`sync_config_silences` at deploy and start, ``python -m sanvi_ops
migrate``, and by the next run after the file is edited) or from the Maintenance page
(``source='ui'``, :func:`add_silence`). Active means not lifted and not expired; an expired
silence stops silencing by itself, nothing has to remove it.

The table is ``silences`` of the results store (migration 011)::

    id, dag_id (NULL = any DAG), check_pattern (NULL = any check), reason, created_by,
    source ('config' | 'ui'), created_at, expires_at, lifted_at

What a silence does (:mod:`sanvi_ops.core.notify.pipeline`): the result is saved, the incident is
opened, the run summary says ``silenced until <expiry> (<reason>)``, and no ``[INCIDENT]``,
``[UPDATE]`` or escalation mention is posted. If the check is still critical when the silence
ends, the next run posts the ``[INCIDENT]`` it held back.

Every function takes the store's libpq DSN (the page and the notifier share this module) and opens
a short-lived connection; errors are :class:`~sanvi_ops.core.store.StoreError` naming the store, never
its password. Rows are never deleted.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

import psycopg

from sanvi_ops.core.store import ResultStore

log = logging.getLogger(__name__)

Source = Literal["config", "ui"]
SOURCES: Final = ("config", "ui")

#: Longest a silence may last: a muted alert must come back on its own; a longer one is an
#: un-monitored component, which should be removed from the config instead.
MAX_SILENCE: Final = timedelta(days=30)

#: Advisory lock held while config silences are synced, so two runs recording at once do not
#: insert the same silence twice.
SYNC_LOCK_KEY: Final = 0x5A4E_5649_0011

MAX_REASON_CHARS: Final = 500


class SilenceError(ValueError):
    """A silence cannot be added as given; the message names the field (or config key path)."""


@dataclass(frozen=True)
class Silence:
    """One row of ``silences``."""

    id: int
    dag_id: str | None
    check_pattern: str | None
    reason: str
    created_by: str
    source: str
    created_at: datetime
    expires_at: datetime
    lifted_at: datetime | None = None

    def matches(self, dag_id: str, check: str) -> bool:
        """Whether this silence covers ``check`` of ``dag_id`` (scope only, not time)."""
        return matches(self.dag_id, self.check_pattern, dag_id, check)

    def is_active(self, now: datetime) -> bool:
        return self.lifted_at is None and self.expires_at > now

    def describe(self, timezone: str = "UTC") -> str:
        """``silenced until 18:00 01/12/2026 UTC (disk replacement scheduled)``."""
        from zoneinfo import ZoneInfo

        until = self.expires_at.astimezone(ZoneInfo(timezone))
        return f"silenced until {until:%H:%M %d/%m/%Y} {timezone} ({self.reason})"


def matches(dag_pattern: str | None, check_pattern: str | None, dag_id: str, check: str) -> bool:
    """Scope test: ``None`` matches anything; the DAG id is compared exactly, the check with
    ``fnmatch`` (case-sensitive: ``http.production-*``, ``redis.*``, ``host.cpu[[]backend-1]``)."""
    if dag_pattern is not None and dag_pattern != dag_id:
        return False
    return check_pattern is None or fnmatch.fnmatchcase(check, check_pattern)


def find_silence(silences: Sequence[Silence], dag_id: str, check: str, now: datetime) -> Silence | None:
    """The active silence covering ``check`` of ``dag_id`` that lasts longest, or ``None``."""
    covering = [s for s in silences if s.is_active(now) and s.matches(dag_id, check)]
    return max(covering, key=lambda s: s.expires_at, default=None)


def validate(
    *,
    dag_id: str | None,
    check_pattern: str | None,
    reason: str,
    created_by: str,
    expires_at: datetime,
    source: str,
    now: datetime | None = None,
    max_duration: timedelta = MAX_SILENCE,
    where: str = "silence",
) -> None:
    """Refuse a silence that would be a mistake; the message starts with ``where`` (a key path).

    A reason and an author are required; the expiry must be timezone-aware, in the future and at
    most ``max_duration`` away; a silence must name a DAG or a check pattern (muting everything is
    not a silence, it is turning monitoring off).
    """
    now = now or datetime.now(UTC)
    problems: list[str] = []
    if source not in SOURCES:
        problems.append(f"{where}.source: must be one of {', '.join(SOURCES)}, got {source!r}")
    if not reason or not reason.strip():
        problems.append(f"{where}.reason: required (say why the alert is muted)")
    elif len(reason) > MAX_REASON_CHARS:
        problems.append(f"{where}.reason: at most {MAX_REASON_CHARS} characters")
    if not created_by or not created_by.strip():
        problems.append(f"{where}.created_by: required (who muted it)")
    if (dag_id is None or not dag_id.strip()) and (check_pattern is None or not check_pattern.strip()):
        problems.append(f"{where}: name a dag_id or a check pattern (a silence may not mute everything)")
    if expires_at.tzinfo is None:
        problems.append(f"{where}.expires: must include a time zone (e.g. 2026-12-01T18:00:00+00:00)")
    elif expires_at <= now:
        problems.append(f"{where}.expires: {expires_at.isoformat()} is not in the future")
    elif expires_at - now > max_duration:
        problems.append(
            f"{where}.expires: {expires_at.isoformat()} is more than {max_duration.days} days away "
            "(silences must end; renew it when it runs out)"
        )
    if problems:
        raise SilenceError("; ".join(problems))


# ------------------------------------------------------------------------------- database


def _connect(store_dsn: str, action: str) -> AbstractContextManager[psycopg.Connection[dict[str, Any]]]:
    """The store's own short-lived connection (errors become a :class:`StoreError` naming ``action``)."""
    return ResultStore(store_dsn).connection(action)


def _row(row: Mapping[str, Any]) -> Silence:
    return Silence(
        id=int(row["id"]),
        dag_id=row["dag_id"],
        check_pattern=row["check_pattern"],
        reason=row["reason"],
        created_by=row["created_by"],
        source=row["source"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        lifted_at=row["lifted_at"],
    )


def active_silences(store_dsn: str, *, now: datetime | None = None) -> list[Silence]:
    """Silences in force at ``now`` (default: the database's now()), soonest to expire first."""
    with _connect(store_dsn, "read active silences") as conn:
        rows = conn.execute(
            """
            SELECT * FROM silences
            WHERE lifted_at IS NULL AND expires_at > coalesce(%s, now())
            ORDER BY expires_at, id
            """,
            [now],
        ).fetchall()
    return [_row(r) for r in rows]


def all_silences(store_dsn: str, limit: int = 200) -> list[Silence]:
    """Newest silences first, active or not (the page's history)."""
    with _connect(store_dsn, "read silences") as conn:
        rows = conn.execute("SELECT * FROM silences ORDER BY id DESC LIMIT %s", [limit]).fetchall()
    return [_row(r) for r in rows]


def add_silence(
    store_dsn: str,
    *,
    dag_id: str | None,
    check_pattern: str | None,
    reason: str,
    created_by: str,
    expires_at: datetime,
    source: Source,
    now: datetime | None = None,
    max_duration: timedelta = MAX_SILENCE,
) -> Silence:
    """Validate (:func:`validate`) and insert a silence; returns it with its id.

    :raises SilenceError: bad input, naming the field.
    """
    dag_id = dag_id.strip() if dag_id and dag_id.strip() else None
    check_pattern = check_pattern.strip() if check_pattern and check_pattern.strip() else None
    validate(
        dag_id=dag_id,
        check_pattern=check_pattern,
        reason=reason,
        created_by=created_by,
        expires_at=expires_at,
        source=source,
        now=now,
        max_duration=max_duration,
    )
    with _connect(store_dsn, "add a silence") as conn:
        row = conn.execute(
            """
            INSERT INTO silences (dag_id, check_pattern, reason, created_by, source, expires_at)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING *
            """,
            [dag_id, check_pattern, reason.strip(), created_by.strip(), source, expires_at],
        ).fetchone()
    assert row is not None
    silence = _row(row)
    log.info(
        "Silence #%s added by %s (%s): dag %s, checks %s, until %s: %s",
        silence.id, created_by, source, dag_id or "*", check_pattern or "*", expires_at.isoformat(), reason,
    )  # fmt: skip
    return silence


def lift_silence(store_dsn: str, silence_id: int, by: str) -> Silence:
    """End a silence now (lifting a lifted or expired one changes nothing); returns the row.

    The table has no column for who lifted it (its shape is shared with the page), so ``by`` is
    logged with the id.

    :raises LookupError: no silence ``silence_id``.
    """
    if not by or not by.strip():
        raise SilenceError("lift_silence: by is required (who lifts it)")
    with _connect(store_dsn, f"lift silence #{silence_id}") as conn:
        row = conn.execute(
            "UPDATE silences SET lifted_at = now() WHERE id = %s AND lifted_at IS NULL RETURNING *",
            [silence_id],
        ).fetchone()
        lifted_now = row is not None
        if row is None:
            row = conn.execute("SELECT * FROM silences WHERE id = %s", [silence_id]).fetchone()
    if row is None:
        raise LookupError(f"silence #{silence_id} does not exist")
    if lifted_now:
        log.info("Silence #%s lifted by %s", silence_id, by)
    return _row(row)


# ---------------------------------------------------------------------- config silences


class SilenceSpecLike(Protocol):
    """One entry of the config's ``silences:`` list (:class:`sanvi_ops.core.config.SilenceSpec`)."""

    @property
    def dag_id(self) -> str | None: ...
    @property
    def check(self) -> str | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def expires(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...


@dataclass
class SyncReport:
    """What :func:`sync_config_silences` did."""

    added: list[int] = field(default_factory=list)
    lifted: list[int] = field(default_factory=list)
    kept: int = 0
    problems: list[str] = field(default_factory=list)


def _expiry(spec: SilenceSpecLike, timezone: str) -> datetime:
    from zoneinfo import ZoneInfo

    expires = spec.expires
    return expires if expires.tzinfo is not None else expires.replace(tzinfo=ZoneInfo(timezone))


def _config_silences(conn: psycopg.Connection[dict[str, Any]]) -> dict[tuple[Any, ...], Silence]:
    """The store's config silences by identity (scope, reason, author, expiry)."""
    existing: dict[tuple[Any, ...], Silence] = {}
    for row in conn.execute("SELECT * FROM silences WHERE source = 'config'").fetchall():
        s = _row(row)
        existing.setdefault((s.dag_id, s.check_pattern, s.reason, s.created_by, s.expires_at), s)
    return existing


def _in_sync(
    existing: Mapping[tuple[Any, ...], Silence], wanted: Mapping[tuple[Any, ...], Any], now: datetime
) -> bool:
    """Whether a sync would change nothing: every entry stored, no active one dropped from the file."""
    if any(ident not in existing for ident in wanted):
        return False
    return not any(
        ident not in wanted and s.lifted_at is None and s.expires_at > now for ident, s in existing.items()
    )


def sync_config_silences(
    store_dsn: str,
    specs: Sequence[SilenceSpecLike],
    *,
    timezone: str = "UTC",
    now: datetime | None = None,
    max_duration: timedelta = MAX_SILENCE,
    key: str = "silences",
) -> SyncReport:
    """Make the store's config silences what the file says, idempotently.

    - An entry not in the table yet is validated (future, at most ``max_duration`` away, reason)
      and inserted; a bad one is reported in :attr:`SyncReport.problems` as ``silences[i].…``
      and skipped, so one bad entry neither mutes nor breaks anything else.
    - An entry already in the table (same scope, reason, author and expiry) is kept, also once it
      expired (an expired silence simply stops silencing; remove it from the file at leisure).
    - An active config silence no longer in the file is lifted (deleting it from the file ends it).

    Naive expiry times are read in ``timezone`` (the config's).

    Called at deploy and start, and by every run (the config is re-read when its file changes, so
    a silence added to or removed from the YAML takes effect at the next run, with no restart).
    A run whose file matches the store only reads: the lock and the writes are taken when the
    file changed since the last sync.
    """
    now = now or datetime.now(UTC)
    report = SyncReport()
    wanted: dict[tuple[Any, ...], tuple[int, SilenceSpecLike, datetime]] = {}
    for i, spec in enumerate(specs):
        expires = _expiry(spec, timezone)
        ident = (
            spec.dag_id or None,
            spec.check or None,
            spec.reason.strip(),
            spec.created_by.strip(),
            expires,
        )
        wanted.setdefault(ident, (i, spec, expires))
    with _connect(store_dsn, "sync config silences") as conn:
        existing = _config_silences(conn)
        if _in_sync(existing, wanted, now):
            report.kept = len(wanted)
            return report
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [SYNC_LOCK_KEY])
        existing = _config_silences(conn)  # again under the lock: another run may have synced
        for ident, (i, spec, expires) in wanted.items():
            if ident in existing:
                report.kept += 1
                continue
            try:
                validate(
                    dag_id=spec.dag_id,
                    check_pattern=spec.check,
                    reason=spec.reason,
                    created_by=spec.created_by,
                    expires_at=expires,
                    source="config",
                    now=now,
                    max_duration=max_duration,
                    where=f"{key}[{i}]",
                )
            except SilenceError as exc:
                report.problems.append(str(exc))
                continue
            inserted = conn.execute(
                """
                INSERT INTO silences (dag_id, check_pattern, reason, created_by, source, expires_at)
                VALUES (%s, %s, %s, %s, 'config', %s) RETURNING id
                """,
                [ident[0], ident[1], ident[2], ident[3], expires],
            ).fetchone()
            assert inserted is not None
            report.added.append(int(inserted["id"]))
        for ident, silence in existing.items():
            if ident not in wanted and silence.lifted_at is None and silence.expires_at > now:
                conn.execute("UPDATE silences SET lifted_at = %s WHERE id = %s", [now, silence.id])
                report.lifted.append(silence.id)
    for problem in report.problems:
        log.warning("Config silence not applied: %s", problem)
    if report.added or report.lifted:
        log.info("Config silences: added %s, lifted %s (removed from the file)", report.added, report.lifted)
    return report
