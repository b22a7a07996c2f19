"""The guide's escalation path for incidents that stay open: On-Call → Team Lead → CTO.

The ``[INCIDENT]`` message mentions the on-call pair of the week (primary and secondary, from the
weekly rotation in ``on_call``) and carries an "Acknowledge" button. When the incident is still
open *and unacknowledged* after its level's "Escalate After" (``escalation.<level>.escalate_after``
of the severity: P1 → critical → 30 min, P2 → high → 2 h, P3 → medium → 8 h, P4 → low → 48 h), an
``[ESCALATION]`` reply in the incident's thread mentions the team lead (``on_call.team_lead``);
after twice that time, the CTO (``on_call.cto``). Each level is posted once (dedupe key
``escalation:<incident id>:<level>``). Acknowledging the incident (page or Slack,
:mod:`sanvi_ops.core.incidents`) stops the path: somebody is on it.

:func:`sweep` is what the watchdog DAG runs every few minutes over every open incident, because
the DAG that opened one may not run again for a day or a quarter. It posts no "still open, no
newer result" updates: an ``[UPDATE]`` says something new (a later run of the DAG, an
acknowledgement). Instead it:

* resolves an incident that the newest stored run of its DAG no longer supports (the check went
  green, or the run completed without producing that check: :mod:`sanvi_ops.core.notify.closing`),
  with a ``[RESOLVED]`` that says so, so nobody is escalated to about a stale finding;
* posts the guide's P4 "Weekly summary": one digest per week (key ``digest:P4:<week start>``, the
  first sweep after Monday 09:00 in the config's time zone) listing the P4 incidents open since
  before that Monday (a newer one was announced days ago at most).

Silenced incidents (:mod:`sanvi_ops.core.silences`) and incidents whose ``[INCIDENT]`` was never
announced are skipped: nobody is escalated to about an alert that was muted.

:func:`due_levels`, :func:`escalation_schedule` and :func:`digest_week` are pure (unit-tested);
:func:`sweep` writes the store and the outbox only (the watchdog flushes it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sanvi_ops.core.notify import render

if TYPE_CHECKING:
    from sanvi_ops.core.config import MaintenanceConfig
    from sanvi_ops.core.incidents import Acknowledgement
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


#: When the weekly P4 summary is due: Monday at this hour, in the config's time zone.
DIGEST_WEEKDAY: Final = 0
DIGEST_HOUR: Final = 9


def digest_week(now: datetime) -> datetime:
    """The start of the digest week ``now`` is in: the latest Monday 09:00 (``now``'s zone) at or
    before ``now``. One digest per value."""
    if now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    monday = now.date() - timedelta(days=(now.weekday() - DIGEST_WEEKDAY) % 7)
    start = datetime(monday.year, monday.month, monday.day, DIGEST_HOUR, tzinfo=now.tzinfo)
    return start if start <= now else start - timedelta(days=7)


@dataclass
class SweepReport:
    """What one sweep queued (the watchdog task logs and returns it)."""

    open_incidents: int = 0
    escalations: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    digest: list[str] = field(default_factory=list)
    skipped_silenced: list[str] = field(default_factory=list)
    skipped_unannounced: list[str] = field(default_factory=list)
    skipped_acknowledged: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "open_incidents": self.open_incidents,
            "escalations": list(self.escalations),
            "resolved": list(self.resolved),
            "digest": list(self.digest),
            "skipped_silenced": list(self.skipped_silenced),
            "skipped_unannounced": list(self.skipped_unannounced),
            "skipped_acknowledged": list(self.skipped_acknowledged),
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
    """Resolve stale incidents, queue due escalations and the weekly P4 digest (see module doc).

    :param silences: the silences in force; default: synced from the config and read from the store.
    :param source: / :param run_id: who queued the messages (the outbox rows' dag_id/run_id).
    """
    from sanvi_ops.core.incidents import open_acknowledgements
    from sanvi_ops.core.notify.pipeline import DIGEST_SEVERITY, load_silences
    from sanvi_ops.core.silences import find_silence

    if now is not None and now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    now = (now or datetime.now(UTC)).astimezone(ZoneInfo(cfg.timezone))
    active = list(silences) if silences is not None else load_silences(store, cfg, now=now)
    acks = open_acknowledgements(store)
    report = SweepReport()
    digest: list[Incident] = []
    for incident in store.open_incidents():
        report.open_incidents += 1
        if find_silence(active, incident.dag_id, incident.check, now) is not None:
            report.skipped_silenced.append(incident.ref)
            continue
        if store.get_notification(f"incident:{incident.id}") is None:
            report.skipped_unannounced.append(incident.ref)  # the next run of its DAG announces it
            continue
        if _resolve_if_stale(store, cfg, incident, now, source):
            report.resolved.append(incident.ref)
            continue
        if incident.severity == DIGEST_SEVERITY:
            digest.append(incident)
        if incident.id in acks:
            report.skipped_acknowledged.append(incident.ref)
            continue
        _escalate(store, cfg, incident, now, report, source, run_id)
    if digest:
        _queue_digest(store, cfg, DIGEST_SEVERITY, digest, acks, now, report, source, run_id)
    log.info(
        "Incident sweep: %d open; escalations %s; resolved as stale %s; digest %s; acknowledged %s; silenced %s",
        report.open_incidents, report.escalations or "none", report.resolved or "none",
        report.digest or "none", report.skipped_acknowledged or "none", report.skipped_silenced or "none",
    )  # fmt: skip
    return report


def _resolve_if_stale(
    store: ResultStore, cfg: MaintenanceConfig, incident: Incident, now: datetime, source: str
) -> bool:
    """Resolve ``incident`` when the newest stored run of its DAG (a later one than the run that
    opened it) closes it: its check is healthy again, or is no longer produced by a complete run."""
    from sanvi_ops.core.calendar import non_guide_dags
    from sanvi_ops.core.notify.closing import closure_for
    from sanvi_ops.core.notify.pipeline import queue_resolved, resolution_line

    if incident.dag_id not in cfg.tasks and incident.dag_id not in non_guide_dags(cfg):
        return False  # not a DAG's finding (e.g. an Alertmanager alert): its source resolves it
    latest = store.latest_run_id(incident.dag_id)
    if latest is None or latest == incident.opened_run_id:
        return False
    closure = closure_for(incident.check, incident.component, store.results_for_run(incident.dag_id, latest))
    if closure is None:
        return False
    resolution = resolution_line(incident.check, closure, latest)
    queue_resolved(store, cfg, incident, resolution, dag_id=incident.dag_id, run_id=latest, now=now)
    store.resolve_incident(incident.id, latest, at=now)
    log.info("%s resolved by the sweep: %s", incident.ref, resolution)
    return True


def _queue_digest(
    store: ResultStore,
    cfg: MaintenanceConfig,
    severity: str,
    incidents: Sequence[Incident],
    acks: Mapping[int, Acknowledgement],
    now: datetime,
    report: SweepReport,
    source: str,
    run_id: str,
) -> None:
    """The weekly summary of the open ``severity`` incidents: once per digest week."""
    week = digest_week(now)
    key = f"digest:{severity}:{week.date().isoformat()}"
    incidents = [i for i in incidents if i.opened_at < week]  # newer ones were just announced
    if not incidents or store.get_notification(key) is not None:
        return
    items = [
        {
            "ref": i.ref,
            "service": i.component or i.check,
            "open_for": now - i.opened_at,
            "acknowledged_by": acks[i.id].by if i.id in acks else "",
            "summary": i.summary,
        }
        for i in incidents
    ]
    text, blocks = render.digest_message(severity, week.date(), items, next_digest=week + timedelta(days=7))
    store.enqueue(key, source, run_id, "summary", cfg.slack.incident_channel, text, blocks)
    report.digest = [i.ref for i in incidents]


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
