"""What the page writes: adding and lifting UI silences (table ``silences``, migration 011).

The rules are :mod:`sanvi_ops.core.silences`' (the same as for the config file's silences); this
module adds what the page needs on top: the DAG must be one of this project's, a silence from the
config file is not lifted here, lifting needs edit access to the silenced DAG, and a store that is
down is a :class:`StoreUnavailable` naming the action (never a password, never a driver error).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any, Final

import psycopg

from sanvi_ops.core import silences as silence_rules
from sanvi_ops.core.silences import MAX_SILENCE
from sanvi_ops.core.store import StoreError, redact
from sanvi_ops.page.queries import connect, present_tables

#: Longest check pattern the form accepts.
MAX_PATTERN_CHARS: Final = 200


class SilencesUnavailable(RuntimeError):
    """The store has no ``silences`` table yet (migration 011 not applied)."""


class StoreUnavailable(RuntimeError):
    """The results store cannot be reached or read; the message says why (never a password).
    The page answers HTTP 503 with it."""


def _require_silences(conn: psycopg.Connection[dict[str, Any]]) -> None:
    if "silences" not in present_tables(conn):
        raise SilencesUnavailable(
            "the results store has no silences table yet (store migration 011 has not been applied)"
        )


def add_silence(
    dsn: str,
    *,
    dag_id: str | None,
    check_pattern: str | None,
    reason: str,
    created_by: str,
    expires_at: dt.datetime,
    known_dag_ids: Collection[str],
    now: dt.datetime | None = None,
    max_duration: dt.timedelta = MAX_SILENCE,
) -> int:
    """Add a UI silence (``source = 'ui'``); returns its id.

    The rules are :func:`sanvi_ops.core.silences.validate`'s, the same as for the config file's
    silences (a reason, an author, an expiry in the future and at most ``max_duration`` away, a DAG
    or a check pattern); the page adds that the DAG must be one of this project's.

    :raises ValueError: naming the field (:class:`~sanvi_ops.core.silences.SilenceError` is one).
    :raises SilencesUnavailable: when migration 011 has not created the table yet.
    :raises StoreUnavailable: when the store cannot be reached or written.
    """
    dag = (dag_id or "").strip() or None
    pattern = (check_pattern or "").strip() or None
    if dag is not None and dag not in known_dag_ids:
        raise ValueError(f"silence.dag_id: {dag!r} is not a DAG of this project")
    if pattern is not None and len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"silence.check_pattern: at most {MAX_PATTERN_CHARS} characters")
    with _reaching(dsn, "add the silence"):
        with connect(dsn) as conn:
            _require_silences(conn)
        silence = silence_rules.add_silence(
            dsn,
            dag_id=dag,
            check_pattern=pattern,
            reason=reason,
            created_by=created_by,
            expires_at=expires_at,
            source="ui",
            now=now,
            max_duration=max_duration,
        )
    return silence.id


def lift_silence(
    dsn: str,
    silence_id: int,
    *,
    by: str,
    editable_dag_ids: Collection[str] | None = None,
    known_dag_ids: Collection[str] = (),
) -> bool:
    """Lift an active UI silence now; ``False`` when it is unknown, already lifted or expired.

    :param editable_dag_ids: the DAGs ``by`` may edit (``None`` = all). A silence of one DAG needs
        that DAG; a silence of every DAG needs every DAG in ``known_dag_ids``.
    :raises PermissionError: naming the silence and the DAG when ``by`` may not lift it.
    :raises ValueError: for a silence from the config file (deleting its entry lifts it; lifted
        here, the next run's sync would put it back).
    :raises SilencesUnavailable: when migration 011 has not created the table yet.
    :raises StoreUnavailable: when the store cannot be reached or written.
    """
    with _reaching(dsn, f"lift silence #{silence_id}"), connect(dsn) as conn:
        _require_silences(conn)
        found = conn.execute(
            "SELECT dag_id, source FROM silences WHERE id = %s AND lifted_at IS NULL AND expires_at > now()",
            [silence_id],
        ).fetchone()
    if found is None:
        return False
    if found["source"] != "ui":
        raise ValueError(
            f"silence #{silence_id} comes from the config file: delete its entry under silences: "
            "in maintenance.yaml to lift it"
        )
    if editable_dag_ids is not None:
        needed = {found["dag_id"]} if found["dag_id"] is not None else set(known_dag_ids)
        missing = sorted(needed - set(editable_dag_ids))
        if missing:
            raise PermissionError(
                f"silence #{silence_id}: {by} may not edit DAG(s) {', '.join(missing)}, so may not lift it"
            )
    with _reaching(dsn, f"lift silence #{silence_id}"):
        silence_rules.lift_silence(dsn, silence_id, by)
    return True


@contextmanager
def _reaching(dsn: str, action: str) -> Iterator[None]:
    """Store failures while doing ``action`` → :class:`StoreUnavailable` naming it (no password)."""
    try:
        yield
    except psycopg.Error as exc:
        reason = redact(" ".join(str(exc).split()), dsn)
        raise StoreUnavailable(f"the results store could not {action}: {reason}") from None
    except StoreError as exc:
        raise StoreUnavailable(f"the results store could not {action}: {redact(str(exc), dsn)}") from None


# ---------------------------------------------------------------------- incidents (issue 14)


def _incident_allowed(
    store: Any, incident_id: int, by: str, what: str, editable: Collection[str], known: Collection[str]
) -> None:
    """Acknowledging or resolving needs edit access to the incident's DAG (every DAG for an incident
    of a DAG the page does not know), exactly as lifting a silence does."""
    from sanvi_ops.core.incidents import IncidentNotOpen

    incident = store.get_incident(incident_id)
    if incident is None:
        raise IncidentNotOpen(f"incident #{incident_id} does not exist")
    needed = {incident.dag_id} if incident.dag_id in set(known) else set(known)
    missing = sorted(needed - set(editable))
    if missing:
        raise PermissionError(
            f"incident #{incident_id}: {by} may not edit DAG(s) {', '.join(missing)}, so may not {what} it"
        )


def acknowledge_incident(
    dsn: str,
    cfg: Any,
    incident_id: int,
    *,
    by: str,
    note: str,
    editable_dag_ids: Collection[str],
    known_dag_ids: Collection[str],
) -> bool:
    """Acknowledge an open incident from the page (:func:`sanvi_ops.core.incidents.acknowledge_and_announce`);
    ``False`` when it was already acknowledged (the first acknowledgement stands).

    :raises PermissionError: ``by`` may not edit the incident's DAG.
    :raises ValueError: unknown or resolved incident, note too long.
    :raises StoreUnavailable: the store cannot be reached or written.
    """
    from sanvi_ops.core.incidents import acknowledge_and_announce
    from sanvi_ops.core.store import ResultStore

    store = ResultStore(dsn, connect_timeout=5)
    with _reaching(dsn, f"acknowledge incident #{incident_id}"):
        _incident_allowed(store, incident_id, by, "acknowledge", editable_dag_ids, known_dag_ids)
        _ack, created = acknowledge_and_announce(store, cfg, incident_id, by=by, source="page", note=note)
    return created


def resolve_incident(
    dsn: str,
    cfg: Any,
    incident_id: int,
    *,
    by: str,
    note: str,
    editable_dag_ids: Collection[str],
    known_dag_ids: Collection[str],
) -> None:
    """Resolve an open incident from the page (:func:`sanvi_ops.core.incidents.resolve_by_hand`).

    :raises PermissionError: / :raises ValueError: / :raises StoreUnavailable: as :func:`acknowledge_incident`.
    """
    from sanvi_ops.core.incidents import resolve_by_hand
    from sanvi_ops.core.store import ResultStore

    store = ResultStore(dsn, connect_timeout=5)
    with _reaching(dsn, f"resolve incident #{incident_id}"):
        _incident_allowed(store, incident_id, by, "resolve", editable_dag_ids, known_dag_ids)
        resolve_by_hand(store, cfg, incident_id, by=by, note=note)
