"""Acknowledging and resolving incidents by hand, and grading the response time (store migration 016).

The guide's incident process is Detect → **Respond** ("Acknowledge and begin investigation") →
Mitigate → Resolve, and its "Escalation Criteria" give each level a Response Time (critical 15 min,
high 30 min, medium 4 h, low 24 h; P1 → critical … P4 → low through ``severities.<P>.escalation``).

* :func:`acknowledge` records who acknowledged an open incident, when, from where (``page`` or
  ``slack``) and with what note, and stores the response time (detected, i.e. ``opened_at``, →
  acknowledged) with the target it was graded against. The first acknowledgement wins; a second
  one changes nothing. The watchdog stops escalating an acknowledged incident
  (:mod:`sanvi_ops.core.escalation`), and ``[RESOLVED]`` quotes the note.
* :func:`resolve_by_hand` closes an incident from the Maintenance page (``[RESOLVED]`` says who).
* A Slack button press arrives signed; :func:`acknowledge` takes the request's signature and
  records it in ``slack_requests_seen`` in the same transaction as the acknowledgement, so a replay
  of the same request is refused (:class:`Replayed`) and a failed write leaves no trace of either.
* :func:`response_summary` (pure) is the page's table: per severity, how many incidents were
  acknowledged, the median and worst response time, and how many were within the target.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qs

from sanvi_ops.core.notify.render import ACK_ACTION_ID, format_duration

if TYPE_CHECKING:
    from sanvi_ops.core.config import MaintenanceConfig
    from sanvi_ops.core.store import Incident, ResultStore

#: The Airflow connection holding the Slack app's signing secret (password, or extra
#: ``signing_secret``).
SLACK_SIGNING_CONNECTION: Final = "slack_signing_secret"

#: The run id written as ``resolved_run_id`` of an incident resolved on the page.
MANUAL_RUN_ID: Final = "manual"

AckSource = Literal["page", "slack"]


class IncidentNotOpen(ValueError):
    """The incident does not exist or is already resolved: nothing was recorded."""


class Replayed(PermissionError):
    """This signed Slack request was acted on before: refused, nothing recorded."""


@dataclass(frozen=True)
class Acknowledgement:
    incident_id: int
    severity: str
    by: str
    source: str
    note: str
    at: datetime
    response: timedelta
    target: timedelta

    @property
    def within_target(self) -> bool:
        return within_target(self.response, self.target)

    def describe(self) -> str:
        """``acknowledged by alice after 7 min (P1 target 15 min: within target)``."""
        verdict = "within target" if self.within_target else "over target"
        return (
            f"acknowledged by {self.by} after {format_duration(self.response)} "
            f"({self.severity} target {format_duration(self.target)}: {verdict})"
        )


def within_target(response: timedelta, target: timedelta) -> bool:
    """The guide's Response Time is a deadline: answered at or before it is within target."""
    return response <= target


def response_target(cfg: MaintenanceConfig, severity: str) -> timedelta:
    """The guide's Response Time of an incident severity (``P1`` → ``escalation.critical.response_time``)."""
    try:
        return cfg.escalation[cfg.severities[severity].escalation].response_time
    except KeyError:
        raise KeyError(
            f"severities.{severity}.escalation: no escalation level with a response_time"
        ) from None


# ----------------------------------------------------------------------------------- writes


def acknowledge(
    store: ResultStore,
    incident_id: int,
    *,
    by: str,
    source: AckSource,
    note: str = "",
    target: timedelta,
    at: datetime | None = None,
    request_signature: str | None = None,
) -> tuple[Acknowledgement, bool]:
    """Acknowledge an open incident; returns the acknowledgement and whether it is new.

    :param request_signature: a Slack request's ``X-Slack-Signature``: recorded with the
        acknowledgement in one transaction; seen before → :class:`Replayed`.
    :raises IncidentNotOpen: unknown or resolved incident (nothing recorded).
    :raises ValueError: an empty ``by`` or a note longer than 1000 characters.
    """
    by = by.strip()
    note = " ".join(note.split())
    if not by:
        raise ValueError("acknowledgement: who acknowledged is required")
    if len(note) > 1000:
        raise ValueError("acknowledgement.note: at most 1000 characters")
    if at is not None and at.tzinfo is None:
        raise ValueError(f"at must be timezone-aware, got {at!r}")
    with store.connection(f"acknowledge incident #{incident_id}") as conn:
        if request_signature is not None:
            conn.execute("DELETE FROM slack_requests_seen WHERE seen_at < now() - interval '10 minutes'")
            fresh = conn.execute(
                "INSERT INTO slack_requests_seen (signature) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
                [request_signature],
            ).fetchone()
            if fresh is None:
                raise Replayed("this Slack request was already received")
        row = conn.execute(
            """
            UPDATE incidents
               SET acknowledged_at = coalesce(%(at)s, now()), acknowledged_by = %(by)s,
                   ack_source = %(source)s, ack_note = %(note)s,
                   response_seconds = greatest(extract(epoch FROM coalesce(%(at)s, now()) - opened_at), 0),
                   response_target_seconds = %(target)s
             WHERE id = %(id)s AND resolved_at IS NULL AND acknowledged_at IS NULL
            RETURNING *
            """,
            {
                "at": at,
                "by": by,
                "source": source,
                "note": note,
                "target": target.total_seconds(),
                "id": incident_id,
            },
        ).fetchone()
        created = row is not None
        if row is None:
            row = conn.execute("SELECT * FROM incidents WHERE id = %s", [incident_id]).fetchone()
            if row is None:
                raise IncidentNotOpen(f"incident #{incident_id} does not exist")
            if row["resolved_at"] is not None:
                raise IncidentNotOpen(f"incident #{incident_id} is already resolved")
    ack = _acknowledgement(row)
    assert ack is not None  # noqa: S101 - set by the UPDATE or by an earlier acknowledgement
    return ack, created


def get_acknowledgement(store: ResultStore, incident_id: int) -> Acknowledgement | None:
    with store.connection(f"read acknowledgement of incident #{incident_id}") as conn:
        row = conn.execute("SELECT * FROM incidents WHERE id = %s", [incident_id]).fetchone()
    return _acknowledgement(row) if row else None


def open_acknowledgements(store: ResultStore) -> dict[int, Acknowledgement]:
    """Incident id → acknowledgement, for every open incident that has one."""
    with store.connection("read acknowledgements of open incidents") as conn:
        rows = conn.execute(
            "SELECT * FROM incidents WHERE resolved_at IS NULL AND acknowledged_at IS NOT NULL"
        ).fetchall()
    return {int(r["id"]): a for r in rows if (a := _acknowledgement(r)) is not None}


def record_resolver(store: ResultStore, incident_id: int, *, by: str, note: str) -> None:
    """Who resolved an incident by hand, and why (after :meth:`ResultStore.resolve_incident`)."""
    with store.connection(f"record who resolved incident #{incident_id}") as conn:
        conn.execute(
            "UPDATE incidents SET resolved_by = %s, resolution_note = %s WHERE id = %s",
            [by, " ".join(note.split()), incident_id],
        )


def _acknowledgement(row: Mapping[str, Any]) -> Acknowledgement | None:
    if row.get("acknowledged_at") is None:
        return None
    return Acknowledgement(
        incident_id=int(row["id"]),
        severity=str(row["severity"]),
        by=str(row["acknowledged_by"]),
        source=str(row["ack_source"]),
        note=str(row.get("ack_note") or ""),
        at=row["acknowledged_at"],
        response=timedelta(seconds=float(row["response_seconds"])),
        target=timedelta(seconds=float(row["response_target_seconds"] or 0)),
    )


def acknowledge_and_announce(
    store: ResultStore,
    cfg: MaintenanceConfig,
    incident_id: int,
    *,
    by: str,
    source: AckSource,
    note: str = "",
    now: datetime | None = None,
    request_signature: str | None = None,
) -> tuple[Acknowledgement, bool]:
    """:func:`acknowledge`, graded against the severity's Response Time, and (when it is new and the
    incident was announced) an ``[UPDATE]`` in the incident's thread saying who acknowledged it."""
    from sanvi_ops.core.notify.pipeline import queue_acknowledged

    incident = store.get_incident(incident_id)
    if incident is None or not incident.is_open:
        raise IncidentNotOpen(
            f"incident #{incident_id} " + ("does not exist" if incident is None else "is already resolved")
        )
    ack, created = acknowledge(
        store,
        incident_id,
        by=by,
        source=source,
        note=note,
        target=response_target(cfg, incident.severity),
        at=now,
        request_signature=request_signature,
    )
    if created:
        queue_acknowledged(store, cfg, incident, ack, now=now)
    return ack, created


def resolve_by_hand(
    store: ResultStore,
    cfg: MaintenanceConfig,
    incident_id: int,
    *,
    by: str,
    note: str = "",
    now: datetime | None = None,
) -> Incident:
    """Resolve an open incident from the page: ``[RESOLVED]`` (who, note, duration), then close it."""
    from sanvi_ops.core.notify.pipeline import queue_resolved

    note = " ".join(note.split())
    if len(note) > 1000:
        raise ValueError("resolution.note: at most 1000 characters")
    incident = store.get_incident(incident_id)
    if incident is None or not incident.is_open:
        raise IncidentNotOpen(
            f"incident #{incident_id} " + ("does not exist" if incident is None else "is already resolved")
        )
    when = now or datetime.now(UTC)
    resolution = f"Resolved by hand by {by} on the Maintenance page" + (f": {note}" if note else "")
    queue_resolved(store, cfg, incident, resolution, dag_id=incident.dag_id, run_id=MANUAL_RUN_ID, now=when)
    record_resolver(store, incident_id, by=by, note=note)
    closed = store.resolve_incident(incident_id, MANUAL_RUN_ID, at=when)
    return closed


# ------------------------------------------------------------------------------------ Slack


def parse_slack_action(body: bytes) -> tuple[int, str]:
    """(incident id, Slack user id) of an "Acknowledge" button press (a ``block_actions`` payload,
    form-encoded as ``payload=<json>``).

    :raises ValueError: naming what is missing or malformed.
    """
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=False)
        payload = json.loads(form["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, json.JSONDecodeError):
        raise ValueError("Slack request: no JSON payload field") from None
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        raise ValueError("Slack request: payload.type must be block_actions")
    user = payload.get("user")
    user_id = user.get("id") if isinstance(user, dict) else None
    if not isinstance(user_id, str) or not user_id.strip():
        raise ValueError("Slack request: payload.user.id is missing")
    actions = payload.get("actions")
    for action in actions if isinstance(actions, list) else []:
        if isinstance(action, dict) and action.get("action_id") == ACK_ACTION_ID:
            value = str(action.get("value", ""))
            if not value.isdigit():
                raise ValueError(f"Slack request: actions[{ACK_ACTION_ID}].value must be an incident id")
            return int(value), user_id.strip()
    raise ValueError(f"Slack request: no {ACK_ACTION_ID} action in payload.actions")


def signing_secret() -> str:
    """The Slack app's signing secret from its Airflow connection (never logged).

    :raises LookupError: the connection is not defined or holds no secret (the message names it).
    """
    from sanvi_ops.airflow_kit.connections import get_connection

    conn_id = SLACK_SIGNING_CONNECTION
    conn = get_connection(conn_id)
    secret = conn.password or (conn.extra_dejson or {}).get("signing_secret")
    if not secret:
        raise LookupError(
            f"Airflow connection {conn_id!r}: no signing secret (put it in the password or extra.signing_secret)"
        )
    return str(secret)


# ------------------------------------------------------------------------------ the page table


@dataclass(frozen=True)
class ResponseSummary:
    """One row of the page's response-time table."""

    severity: str
    target_s: float
    acknowledged: int
    median_s: float | None
    worst_s: float | None
    within_target: int


def response_summary(
    rows: Iterable[tuple[str, float, float | None]], targets: Mapping[str, timedelta]
) -> list[ResponseSummary]:
    """Per severity (every one in ``targets``, in order): acknowledged count, median and worst
    response, and how many were within their target. ``rows`` are ``(severity, response_s,
    target_s)``; a row without its own target is graded against ``targets``."""
    by_level: dict[str, list[tuple[float, float]]] = {level: [] for level in targets}
    for severity, response_s, target_s in rows:
        target = target_s if target_s else targets.get(severity, timedelta(0)).total_seconds()
        by_level.setdefault(severity, []).append((float(response_s), float(target)))
    out = []
    for level in sorted(by_level):
        pairs = by_level[level]
        responses = [r for r, _t in pairs]
        out.append(
            ResponseSummary(
                severity=level,
                target_s=targets.get(level, timedelta(0)).total_seconds(),
                acknowledged=len(pairs),
                median_s=statistics.median(responses) if responses else None,
                worst_s=max(responses) if responses else None,
                within_target=sum(
                    1 for r, t in pairs if within_target(timedelta(seconds=r), timedelta(seconds=t))
                ),
            )
        )
    return out
