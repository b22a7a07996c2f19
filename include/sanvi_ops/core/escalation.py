"""The guide's escalation path for incidents that stay open: On-Call → Team Lead → CTO.

The ``[INCIDENT]`` message mentions the on-call pair of the week (primary and secondary, from the
weekly rotation in ``on_call``). When the incident is still open after its level's
"Escalate After" (``escalation.<level>.escalate_after`` of the severity: P1 → critical → 30 min,
P2 → high → 2 h, P3 → medium → 8 h, P4 → low → 48 h), an ``[ESCALATION]`` reply in the incident's
thread mentions the team lead (``on_call.team_lead``); after twice that time, the CTO
(``on_call.cto``). Each level is posted once (dedupe key ``escalation:<incident id>:<level>``).

:func:`sweep` is what the watchdog DAG runs every few minutes over every open incident, because
the DAG that opened one may not run again for a day or a quarter. It also keeps the guide's
communication cadence (P1 every 30 min, P2 every 2 h, P3 daily, P4 weekly): an open incident
whose last update is older than that gets an ``[UPDATE]`` ("still open, no newer result") with
the key ``update:<id>:due:<last update time>``, so a retried sweep queues it once.

Silenced incidents (:mod:`sanvi_ops.core.silences`) and incidents whose ``[INCIDENT]`` was never
announced are skipped: nobody is escalated to about an alert that was muted.

:func:`due_levels` and :func:`escalation_schedule` are pure (unit-tested); :func:`sweep` writes
the outbox only (the watchdog flushes it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sanvi_ops.core.notify import render

if TYPE_CHECKING:
    from sanvi_ops.core.config import MaintenanceConfig
    from sanvi_ops.core.silences import Silence
    from sanvi_ops.core.store import Incident, ResultStore

log = logging.getLogger(__name__)

#: The path after the on-call: (level number, role shown, on_call attribute holding the handle).
#: Level N is due ``N × escalate_after`` after the incident opened.
LEVELS: Final = ((1, "Team Lead", "team_lead"), (2, "CTO", "cto"))


def due_levels(opened_at: datetime, now: datetime, escalate_after: timedelta) -> list[int]:
    """Escalation levels due at ``now`` for an incident open since ``opened_at`` (``[]``, ``[1]``, ``[1, 2]``)."""
    if opened_at.tzinfo is None or now.tzinfo is None:
        raise ValueError("opened_at and now must be timezone-aware")
    if escalate_after <= timedelta(0):
        raise ValueError(f"escalate_after must be positive, got {escalate_after}")
    age = now - opened_at
    return [level for level, _role, _attr in LEVELS if age >= level * escalate_after]


def escalation_schedule(opened_at: datetime, escalate_after: timedelta) -> list[tuple[int, str, datetime]]:
    """When each level is due: ``[(1, "Team Lead", t1), (2, "CTO", t2)]``."""
    return [(level, role, opened_at + level * escalate_after) for level, role, _attr in LEVELS]


def escalate_after_for(cfg: MaintenanceConfig, severity: str) -> timedelta:
    """The "Escalate After" of an incident severity (``P1`` → ``escalation.critical``)."""
    try:
        level = cfg.severities[severity].escalation
        return cfg.escalation[level].escalate_after
    except KeyError:
        raise KeyError(f"severities.{severity}.escalation: no escalation level configured") from None


@dataclass
class SweepReport:
    """What one sweep queued (the watchdog task logs and returns it)."""

    open_incidents: int = 0
    escalations: list[str] = field(default_factory=list)
    updates: list[str] = field(default_factory=list)
    skipped_silenced: list[str] = field(default_factory=list)
    skipped_unannounced: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "open_incidents": self.open_incidents,
            "escalations": list(self.escalations),
            "updates": list(self.updates),
            "skipped_silenced": list(self.skipped_silenced),
            "skipped_unannounced": list(self.skipped_unannounced),
        }


def sweep(
    store: ResultStore,
    cfg: MaintenanceConfig,
    *,
    now: datetime | None = None,
    silences: Sequence[Silence] | None = None,
    source: str = "sanvi_ops_watchdog",
    run_id: str = "sweep",
) -> SweepReport:
    """Queue due escalations and due ``[UPDATE]``s for every open incident (see module doc).

    :param silences: the silences in force; default: synced from the config and read from the store.
    :param source: / :param run_id: who queued the messages (the outbox rows' dag_id/run_id).
    """
    from sanvi_ops.core.notify.pipeline import load_silences
    from sanvi_ops.core.silences import find_silence

    if now is not None and now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    now = (now or datetime.now(UTC)).astimezone(ZoneInfo(cfg.timezone))
    active = list(silences) if silences is not None else load_silences(store, cfg, now=now)
    report = SweepReport()
    for incident in store.open_incidents():
        report.open_incidents += 1
        if find_silence(active, incident.dag_id, incident.check, now) is not None:
            report.skipped_silenced.append(incident.ref)
            continue
        if store.get_notification(f"incident:{incident.id}") is None:
            report.skipped_unannounced.append(incident.ref)  # the next run of its DAG announces it
            continue
        _escalate(store, cfg, incident, now, report, source, run_id)
        _update_if_due(store, cfg, incident, now, report, source, run_id)
    log.info(
        "Incident sweep: %d open; escalations %s; updates %s; silenced %s",
        report.open_incidents, report.escalations or "none", report.updates or "none",
        report.skipped_silenced or "none",
    )  # fmt: skip
    return report


def _escalate(
    store: ResultStore,
    cfg: MaintenanceConfig,
    incident: Incident,
    now: datetime,
    report: SweepReport,
    source: str,
    run_id: str,
) -> None:
    after = escalate_after_for(cfg, incident.severity)
    due = set(due_levels(incident.opened_at, now, after))
    for level, role, attr in LEVELS:
        if level not in due:
            continue
        key = f"escalation:{incident.id}:{level}"
        if store.get_notification(key) is not None:
            continue
        text, blocks = render.escalation_message(
            incident.ref,
            incident.severity,
            incident.check,
            level_role=role,
            level_handle=str(getattr(cfg.on_call, attr)),
            open_for=now - incident.opened_at,
            escalate_after=after * level,
            summary=incident.summary,
            on_call=cfg.on_call.on_call_at(now),
        )
        store.enqueue(
            key,
            source,
            run_id,
            "escalation",
            cfg.slack.incident_channel,
            text,
            blocks,
            f"incident:{incident.id}",
        )
        report.escalations.append(f"{incident.ref}→{role}")


def _update_if_due(
    store: ResultStore,
    cfg: MaintenanceConfig,
    incident: Incident,
    now: datetime,
    report: SweepReport,
    source: str,
    run_id: str,
) -> None:
    cadence = cfg.severities[incident.severity].update_every
    if not incident.update_due(now, cadence):
        return
    last = incident.last_update_at.astimezone(now.tzinfo)
    opened = incident.opened_at.astimezone(now.tzinfo)
    text, blocks = render.update_message(
        incident.ref,
        incident.severity,
        incident.check,
        f"Still open since {opened:%H:%M %d/%m/%Y}; no newer result from {incident.dag_id} yet",
        f"Last update {last:%H:%M %d/%m/%Y}; the next run of {incident.dag_id} re-checks it "
        "(trigger it by hand to re-check sooner)",
        "No change",
        now=now,
        update_every=cadence,
    )
    key = f"update:{incident.id}:due:{incident.last_update_at.astimezone(UTC).isoformat()}"
    store.enqueue(
        key, source, run_id, "update", cfg.slack.incident_channel, text, blocks, f"incident:{incident.id}"
    )
    store.mark_incident_updated(incident.id, at=now)
    report.updates.append(incident.ref)
