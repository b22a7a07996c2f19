"""From a run's results to outbox messages: record, open/update/resolve incidents, summarise.

:func:`process_run` is what the ``record`` task calls; :func:`process_failure` is what the failure
callback calls; :func:`process_deadline_miss` is what the deadline alert callback calls. Both only write to the results store (results, incidents, outbox); the ``notify``
task then calls :func:`sanvi_ops.core.notify.slack.deliver_pending`. Keeping "decide what to say"
apart from "say it" is what lets a message survive Slack being down.

Silences (:mod:`sanvi_ops.core.silences`): a critical result a silence covers is stored and its
incident opened, but no ``[INCIDENT]``/``[UPDATE]`` is queued; the summary says "silenced until
… (reason)". When the silence has ended and the check is still critical, the next run queues the
``[INCIDENT]`` that was held back; an incident never announced is closed without ``[RESOLVED]``.

Every step is idempotent, so a retried ``record`` task produces no duplicate rows or messages:
results UPSERT, incidents are one-open-per-check, and each message has a dedupe key
(``summary:<dag>:<run>``, ``incident:<id>``, ``update:<id>:<run>``, ``resolved:<id>``,
``failure:<dag>:<run>:<task>:<try>``, ``deadline:<dag>:<run>``; the watchdog's sweep in
:mod:`sanvi_ops.core.escalation` adds ``escalation:<id>:<level>`` and ``digest:P4:<week>``, an
acknowledgement ``ack:<id>``). Where two writes belong together the message is
enqueued first (e.g. ``[RESOLVED]`` before the incident is closed), so a crash in between is
repaired by the retry instead of losing the message.

The configuration is used duck-typed (see the ``*Like`` protocols), so this module does not
import :mod:`sanvi_ops.core.config`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final, Protocol
from zoneinfo import ZoneInfo

from sanvi_ops.core.notify import render
from sanvi_ops.core.notify.closing import HEALTHY, Closure, closure_for, component_of
from sanvi_ops.core.results import CheckResult, Status

if TYPE_CHECKING:
    from sanvi_ops.core.incidents import Acknowledgement
    from sanvi_ops.core.silences import Silence
    from sanvi_ops.core.store import Incident, ResultStore

log = logging.getLogger(__name__)

#: Incident level of a critical result that names none. A check that finds a service down sets
#: ``P1`` itself; a critical threshold crossed (disk > 90 %) is a significant impact, not an outage.
DEFAULT_INCIDENT_SEVERITY: Final = "P2"

#: The level whose "Communication" is the guide's "Weekly summary": one digest per week lists its
#: open incidents (:func:`sanvi_ops.core.escalation.sweep`) instead of an ``[UPDATE]`` each.
DIGEST_SEVERITY: Final = "P4"

#: Statuses that close an open incident (:data:`sanvi_ops.core.notify.closing.HEALTHY`).
RESOLVING_STATUSES: Final = HEALTHY


class SeverityLike(Protocol):
    @property
    def description(self) -> str: ...
    @property
    def update_every(self) -> timedelta: ...


class OnCallLike(Protocol):
    def on_call_at(self, when: datetime) -> tuple[str, str]: ...


class SlackSettingsLike(Protocol):
    @property
    def channel(self) -> str: ...
    @property
    def incident_channel(self) -> str: ...


class TeamLike(Protocol):
    @property
    def name(self) -> str: ...


class TaskLike(Protocol):
    @property
    def title(self) -> str: ...
    @property
    def team(self) -> str: ...


class ConfigLike(Protocol):
    """What the notifier reads from :class:`sanvi_ops.core.config.MaintenanceConfig`."""

    @property
    def timezone(self) -> str: ...
    @property
    def tasks(self) -> Mapping[str, TaskLike]: ...
    @property
    def teams(self) -> Mapping[str, TeamLike]: ...
    @property
    def severities(self) -> Mapping[str, SeverityLike]: ...
    @property
    def on_call(self) -> OnCallLike: ...
    @property
    def slack(self) -> SlackSettingsLike: ...


@dataclass
class RunNotifications:
    """What :func:`process_run` wrote: outbox ids and incidents touched (for the task log)."""

    summary_id: int | None = None
    opened: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)
    #: check → "silenced until … (reason)" for critical results a silence covered.
    silenced: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"{len(self.message_ids)} message(s) queued"]
        if self.silenced:
            parts.append(f"silenced: {', '.join(sorted(self.silenced))}")
        for label, refs in (("opened", self.opened), ("updated", self.updated), ("resolved", self.resolved)):
            if refs:
                parts.append(f"incidents {label}: {', '.join(refs)}")
        return "; ".join(parts)


def _task_info(cfg: ConfigLike, dag_id: str) -> tuple[str, str]:
    """(title, team name) of a guide task or of a job the config declares (the backups); any
    other DAG shows its id and no team."""
    task = cfg.tasks.get(dag_id)
    if task is not None:
        title, team_key = task.title, task.team
    else:
        from sanvi_ops.core.calendar import non_guide_dags

        try:
            job = non_guide_dags(cfg).get(dag_id)  # type: ignore[arg-type]
        except AttributeError:  # a config without the jobs' sections
            job = None
        if job is None:
            return dag_id, "unassigned"
        title, team_key = job.title, job.team
    team = cfg.teams.get(team_key)
    return title, team.name if team is not None else team_key


def _severity(cfg: ConfigLike, level: str) -> SeverityLike:
    try:
        return cfg.severities[level]
    except KeyError:
        known = ", ".join(sorted(cfg.severities))
        raise KeyError(
            f"severities.{level}: not defined in the maintenance config (known: {known})"
        ) from None


def _service(result: CheckResult) -> str:
    return result.component or result.check


def process_run(
    store: ResultStore,
    cfg: ConfigLike,
    dag_id: str,
    run_id: str,
    logical_date: datetime | None,
    results: Sequence[CheckResult],
    run_url: str | None,
    *,
    now: datetime | None = None,
    silences: Sequence[Silence] | None = None,
) -> RunNotifications:
    """Record a run and queue what Slack should hear about it.

    1. Save the results (UPSERT).
    2. For each open incident of this DAG that this run closes (its check, or its component and
       target, is ok/warning again, or the check is gone from a complete run: "no longer
       checked"; :mod:`sanvi_ops.core.notify.closing`): queue ``[RESOLVED]`` as a reply in the
       incident's thread, then close the incident.
    3. For each critical result: open an incident (or find the open one) and queue ``[INCIDENT]``
       with the on-call mention; if it was already open from an earlier run and the severity's
       update cadence has passed, queue an ``[UPDATE]`` in its thread.
    4. Queue the Block Kit run summary.

    :param now: the time messages are written ("Next update" is computed from it); default now.
    :param silences: the silences in force; default: the config's are synced into the store and
        the store's active ones are read (:func:`load_silences`).
    """
    if now is not None and now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    run = _Run(
        store=store,
        cfg=cfg,
        dag_id=dag_id,
        run_id=run_id,
        run_url=run_url,
        now=(now or datetime.now(UTC)).astimezone(ZoneInfo(cfg.timezone)),
    )
    store.save_results(dag_id, run_id, logical_date, results)  # first: nothing is lost
    run.silences = list(silences) if silences is not None else load_silences(store, cfg, now=run.now)
    open_by_check: dict[str, Incident] = {}
    for incident in store.open_incidents(dag_id):
        closure = (
            None
            if incident.opened_run_id == run_id
            else closure_for(incident.check, incident.component, results)
        )
        if closure is not None:
            run.resolve(incident, closure)
        else:
            open_by_check[incident.check] = incident
    for result in results:
        if result.status is Status.CRITICAL:
            run.raise_incident(result, open_by_check.get(result.check))

    title, team = _task_info(cfg, dag_id)
    text, blocks = render.summary_message(dag_id, run_id, title, team, results, run_url, run.out.silenced)
    run.out.summary_id = run.enqueue(f"summary:{dag_id}:{run_id}", "summary", cfg.slack.channel, text, blocks)
    log.info("Run %s/%s recorded: %s", dag_id, run_id, run.out.describe())
    return run.out


@dataclass
class _Run:
    """One run being processed: what every step needs, and what it did."""

    store: ResultStore
    cfg: ConfigLike
    dag_id: str
    run_id: str
    run_url: str | None
    now: datetime
    out: RunNotifications = field(default_factory=RunNotifications)
    silences: list[Silence] = field(default_factory=list)

    def silence_for(self, check: str) -> Silence | None:
        from sanvi_ops.core.silences import find_silence

        return find_silence(self.silences, self.dag_id, check, self.now)

    def enqueue(
        self, key: str, kind: str, channel: str, text: str, blocks: render.Blocks, parent: str | None = None
    ) -> int:
        message_id = self.store.enqueue(key, self.dag_id, self.run_id, kind, channel, text, blocks, parent)
        self.out.message_ids.append(message_id)
        return message_id

    def resolve(self, incident: Incident, closure: Closure) -> None:
        """Queue ``[RESOLVED]`` in the incident's thread, then close it (in that order: see module doc).

        An incident that was never announced (silenced all along) is closed without a message.
        """
        message_id = queue_resolved(
            self.store,
            self.cfg,
            incident,
            resolution_line(incident.check, closure, self.run_id),
            dag_id=self.dag_id,
            run_id=self.run_id,
            now=self.now,
            run_url=self.run_url,
        )
        if message_id is not None:
            self.out.message_ids.append(message_id)
        self.store.resolve_incident(incident.id, self.run_id, at=self.now)
        self.out.resolved.append(incident.ref)

    def raise_incident(self, result: CheckResult, existing: Incident | None) -> None:
        """Open an incident for a critical result, or update the one still open from an earlier run."""
        level = result.severity or DEFAULT_INCIDENT_SEVERITY
        severity = _severity(self.cfg, level)
        channel = self.cfg.slack.incident_channel
        incident = existing or self.store.open_incident(
            self.dag_id, result.check, level, self.run_id, result.summary, at=self.now,
            component=component_of(result.check, result.component),
        )  # fmt: skip
        silence = self.silence_for(result.check)
        if silence is not None:  # recorded, not announced
            self.out.silenced[result.check] = silence.describe(self.cfg.timezone)
            log.info("%s %s: critical but %s", incident.ref, result.check, self.out.silenced[result.check])
            return
        announced = (
            incident.opened_run_id != self.run_id
            and self.store.get_notification(f"incident:{incident.id}") is not None
        )
        if not announced:  # opened by this run (or an earlier try of it), or held back by a silence
            text, blocks = render.incident_message(
                incident.ref,
                incident.severity,
                _service(result),
                result.summary,
                _impact(result, severity),
                now=self.now,
                update_every=_severity(self.cfg, incident.severity).update_every,
                on_call=self.cfg.on_call.on_call_at(self.now),
                run_url=self.run_url,
                ack_id=incident.id,
                next_digest=_next_digest(self.now) if incident.severity == DIGEST_SEVERITY else None,
            )
            self.enqueue(f"incident:{incident.id}", "incident", channel, text, blocks)
            self.out.opened.append(incident.ref)
            if incident.opened_run_id != self.run_id:  # announced late: the cadence starts now
                self.store.mark_incident_updated(incident.id, at=self.now)
            return
        # Still critical in a later run: an [UPDATE] when the severity's cadence says one is due.
        level = _more_severe(incident.severity, level)
        if level == DIGEST_SEVERITY:  # the weekly P4 summary lists it (sanvi_ops.core.escalation)
            return
        cadence = _severity(self.cfg, level).update_every
        if not incident.update_due(self.now, cadence):
            return
        since = incident.opened_at.astimezone(self.now.tzinfo)
        text, blocks = render.update_message(
            incident.ref,
            level,
            _service(result),
            f"Still critical in run {self.run_id}: {result.summary}",
            f"Re-checked automatically by {self.dag_id}; open since {since:%H:%M %d/%m/%Y}",
            _update_impact(incident, level, result, _severity(self.cfg, level)),
            now=self.now,
            update_every=cadence,
            run_url=self.run_url,
        )
        key = f"update:{incident.id}:{self.run_id}"
        self.enqueue(key, "update", channel, text, blocks, f"incident:{incident.id}")
        self.store.mark_incident_updated(
            incident.id, level if level != incident.severity else None, at=self.now
        )
        self.out.updated.append(incident.ref)


def _next_digest(now: datetime) -> datetime:
    """When the weekly summary that will list an incident opened ``now`` is posted."""
    from sanvi_ops.core.escalation import digest_week

    return digest_week(now) + timedelta(days=7)


def resolution_line(check: str, closure: Closure, run_id: str) -> str:
    """The ``Resolution:`` line: which check went green in which run, and the value it measured."""
    line = closure.describe(check, run_id)
    if closure.evidence and closure.evidence[0].observed is not None:
        first = closure.evidence[0]
        measured = render.format_value(first.observed, first.unit)
        if first.thresholds:
            measured += f", limits {render.format_thresholds(first.thresholds, first.unit)}"
        named = "" if first.check == check else f"{first.check} "
        line += f" ({named}measured {measured})"
    return line


def queue_resolved(
    store: ResultStore,
    cfg: ConfigLike,
    incident: Incident,
    resolution: str,
    *,
    dag_id: str,
    run_id: str,
    now: datetime,
    run_url: str | None = None,
) -> int | None:
    """Queue the ``[RESOLVED]`` reply of an incident about to be closed; ``None`` (nothing queued) when
    its ``[INCIDENT]`` was never announced (silenced all along).

    Root cause: the acknowledger's note when there is one (:mod:`sanvi_ops.core.incidents`).
    Impact: how long the service was affected, and who acknowledged it after how long.
    """
    from sanvi_ops.core.incidents import get_acknowledgement

    if store.get_notification(f"incident:{incident.id}") is None:
        return None
    now = now.astimezone(ZoneInfo(cfg.timezone))
    opened = incident.opened_at.astimezone(now.tzinfo)
    service = incident.component or incident.check
    ack = get_acknowledgement(store, incident.id)
    if ack is not None and ack.note:
        root_cause = f"{ack.note} (note of {ack.by}, who acknowledged it)"
    elif ack is not None:
        root_cause = f"No note from {ack.by}, who acknowledged it; to be confirmed in the post-mortem"
    else:
        root_cause = "Not acknowledged, so no note; to be confirmed in the post-mortem"
    impact = (
        f"{service} affected for {render.format_duration(now - opened)} "
        f"({opened:%H:%M %d/%m/%Y} to {now:%H:%M %d/%m/%Y}): {incident.summary}"
    )
    if ack is not None:
        impact += f"; {ack.describe()}"
    text, blocks = render.resolved_message(
        incident.ref,
        incident.severity,
        service,
        resolution,
        root_cause,
        impact,
        render.postmortem_date(now),
        run_url=run_url,
    )
    return store.enqueue(
        f"resolved:{incident.id}",
        dag_id,
        run_id,
        "resolved",
        cfg.slack.incident_channel,
        text,
        blocks,
        f"incident:{incident.id}",
    )


def queue_acknowledged(
    store: ResultStore,
    cfg: ConfigLike,
    incident: Incident,
    ack: Acknowledgement,
    *,
    now: datetime | None = None,
) -> int | None:
    """Queue the ``[UPDATE]`` saying who acknowledged an incident (in its thread; key ``ack:<id>``);
    ``None`` when the incident was never announced."""
    if store.get_notification(f"incident:{incident.id}") is None:
        return None
    when = (now or datetime.now(UTC)).astimezone(ZoneInfo(cfg.timezone))
    text, blocks = render.acknowledged_message(
        incident.ref,
        incident.severity,
        incident.component or incident.check,
        by=ack.by,
        source=ack.source,
        note=ack.note,
        response=ack.response,
        target=ack.target,
        now=when,
        update_every=_severity(cfg, incident.severity).update_every,
    )
    return store.enqueue(
        f"ack:{incident.id}",
        incident.dag_id,
        MANUAL_ACK_RUN_ID,
        "update",
        cfg.slack.incident_channel,
        text,
        blocks,
        f"incident:{incident.id}",
    )


#: The outbox ``run_id`` of an acknowledgement's ``[UPDATE]``.
MANUAL_ACK_RUN_ID: Final = "acknowledged"


def load_silences(store: ResultStore, cfg: ConfigLike, *, now: datetime | None = None) -> list[Silence]:
    """Sync the config's ``silences:`` into the store, then return every active silence.

    A config without the section (an older file, a test double) syncs nothing; a bad entry is
    logged with its key path and skipped (:func:`sanvi_ops.core.silences.sync_config_silences`).
    """
    from sanvi_ops.core.silences import MAX_SILENCE, active_silences, sync_config_silences

    specs = getattr(cfg, "silences", None)
    if specs is not None:
        sync_config_silences(
            store.dsn,
            list(specs),
            timezone=cfg.timezone,
            now=now,
            max_duration=getattr(cfg, "silence_max_duration", MAX_SILENCE),
        )
    return active_silences(store.dsn, now=now)


def _more_severe(a: str, b: str) -> str:
    return min(a, b)  # "P1" < "P2" < ...


def _impact(result: CheckResult, severity: SeverityLike) -> str:
    """A check may state its impact in ``details["impact"]``; otherwise the severity says it."""
    stated = result.details.get("impact")
    if isinstance(stated, str) and stated.strip():
        return stated
    return f"{severity.description}: {_service(result)} affected"


def _update_impact(incident: Incident, level: str, result: CheckResult, severity: SeverityLike) -> str:
    if level != incident.severity:
        return f"Raised from {incident.severity} to {level}: {_impact(result, severity)}"
    return "No change"


def process_failure(
    store: ResultStore,
    cfg: ConfigLike,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int | None,
    error: BaseException | str | None,
    log_url: str | None,
    *,
    max_tries: int | None = None,
) -> int:
    """Queue the failure message of a crashed task (the failure callback); returns its outbox id.

    One message per (dag, run, task, try): a callback that fires twice does not post twice.
    """
    _title, team = _task_info(cfg, dag_id)
    text, blocks = render.failure_message(
        dag_id, task_id, run_id, try_number, error, log_url, max_tries=max_tries, team=team
    )  # no team mention: the on-call and the team see the channel; failures are not pages
    key = f"failure:{dag_id}:{run_id}:{task_id}:{try_number if try_number is not None else '-'}"
    return store.enqueue(key, dag_id, run_id, "failure", cfg.slack.channel, text, blocks)


def process_deadline_miss(
    store: ResultStore,
    cfg: ConfigLike,
    dag_id: str,
    run_id: str,
    *,
    deadline_at: datetime,
    allowed: timedelta,
    queued_at: datetime | None,
    state: str | None,
    run_url: str | None,
    now: datetime | None = None,
    silences: Sequence[Silence] | None = None,
) -> int | None:
    """Queue the "overdue run" message of an Airflow Deadline Alert; returns its outbox id.

    One message per (dag, run) (key ``deadline:<dag>:<run>``). A silence covering the DAG's
    check ``dag.deadline`` (or all its checks) mutes it: ``None`` is returned and the miss is
    only logged.
    """
    from sanvi_ops.core.silences import find_silence

    when = now or datetime.now(UTC)
    active = list(silences) if silences is not None else load_silences(store, cfg, now=when)
    silence = find_silence(active, dag_id, "dag.deadline", when)
    if silence is not None:
        log.warning("%s %s missed its deadline; %s", dag_id, run_id, silence.describe(cfg.timezone))
        return None
    title, _team = _task_info(cfg, dag_id)
    handle = _team_handle(cfg, dag_id)
    text, blocks = render.deadline_message(
        dag_id,
        run_id,
        title,
        queued_at=queued_at,
        deadline_at=deadline_at,
        allowed=allowed,
        state=state,
        team_handle=handle,
        timezone_name=cfg.timezone,
        run_url=run_url,
    )
    return store.enqueue(
        f"deadline:{dag_id}:{run_id}", dag_id, run_id, "deadline", cfg.slack.channel, text, blocks
    )


def _team_handle(cfg: ConfigLike, dag_id: str) -> str | None:
    """The Slack handle of the team responsible for ``dag_id`` (guide task or declared job)."""
    task = cfg.tasks.get(dag_id)
    team_key: str | None = task.team if task is not None else None
    if team_key is None:
        from sanvi_ops.core.calendar import non_guide_dags

        try:
            job = non_guide_dags(cfg).get(dag_id)  # type: ignore[arg-type]
        except AttributeError:
            job = None
        team_key = job.team if job is not None else None
    team = cfg.teams.get(team_key) if team_key else None
    return getattr(team, "slack", None) if team is not None else None
