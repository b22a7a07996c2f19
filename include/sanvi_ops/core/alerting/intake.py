"""Alertmanager's webhook (``webhook_config``, payload version 4) → incidents in the results store.

The plugin's route ``POST /sanvi-ops/alertmanager`` checks the bearer token and hands the body to
:func:`parse_payload` and :func:`record_alerts`; everything else is here, with no Airflow import.

How an alert becomes an incident (the same path as a DAG's critical result,
:mod:`sanvi_ops.core.notify.pipeline`, so the same templates, P-levels, silences, on-call mention,
outbox and watchdog escalation/cadence apply):

- every alert is a :class:`~sanvi_ops.core.results.CheckResult` of the pseudo-DAG ``alertmanager``
  (:data:`DAG_ID`; no DAG has that id, so no DAG run ever closes an alert's incident as "no longer
  checked"), named :func:`check_name` (``SanviCpuCritical[backend-1]``: the alert name and the
  labels that tell its series apart);
- one firing *episode* of an alert (its fingerprint and ``startsAt``) is one run,
  ``alertmanager:<fingerprint>:<startsAt>``: the result is stored first (UPSERT), then the
  incident is opened and its ``[INCIDENT]`` queued with the key ``incident:<id>``. Alertmanager
  sends a firing alert again every ``group_interval``/``repeat_interval`` and after every retry;
  the same episode finds the same open incident and the same dedupe key, so nothing is opened or
  posted twice;
- ``resolved`` stores the episode's result as ``ok`` and queues ``[RESOLVED]`` in the incident's
  thread, then closes it. A firing alert that arrives *after* its episode was resolved (a late
  retry, the second of an HA pair) is ignored, and a resolved older episode does not close the
  incident of a newer one that is firing;
- the P-level is the ``priority`` label when it names a configured severity (the generated rules
  set it: :data:`sanvi_ops.core.alert_rules.PRIORITY`), else the ``severity`` label through the
  same table (``critical``/``page`` → P2, ``warning``/``ticket`` → P3; a ``P1``…``P4`` value is
  taken as is), else P2 as for any critical result; the stored status is ``critical`` for P1/P2
  and ``warning`` otherwise. Every firing alert opens an incident: an alert is a decision to
  tell someone (a warning's incident is the guide's P3, "performance degraded");
- a silence covers an alert when it matches ``alertmanager`` or the DAG the alert names in its
  ``dag_id`` label (``system_health_check`` for the CPU rules), with the check pattern on
  :func:`check_name`.

Bad input is refused whole with :class:`PayloadError` (HTTP 400) naming the field: wrong version,
not JSON, a missing ``alertname``, a bad timestamp, more than :data:`MAX_ALERTS` alerts; a body
over :data:`MAX_BODY_BYTES` is refused before it is parsed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from sanvi_ops.core.notify.closing import Closure
from sanvi_ops.core.notify.pipeline import DEFAULT_INCIDENT_SEVERITY, ConfigLike, _Run, load_silences
from sanvi_ops.core.results import CheckResult, Status

if TYPE_CHECKING:
    from sanvi_ops.core.silences import Silence
    from sanvi_ops.core.store import ResultStore

log = logging.getLogger(__name__)

#: The pseudo-DAG every alert's results and incidents belong to.
DAG_ID: Final = "alertmanager"
#: The Airflow connection whose password is the bearer token Alertmanager sends.
CONN_ID: Final = "sanvi_alertmanager"
#: Largest body read (Alertmanager's own default ``max_alerts`` is unlimited; 1 MiB is thousands).
MAX_BODY_BYTES: Final = 1024 * 1024
#: Most alerts in one notification (set ``max_alerts`` in the receiver to stay below it).
MAX_ALERTS: Final = 1000
#: Longest label value and annotation kept; a longer one is refused (label) or cut (annotation).
MAX_LABEL_CHARS: Final = 1024
MAX_ANNOTATION_CHARS: Final = 4096
#: Longest check name; a longer one ends in the fingerprint instead.
MAX_CHECK_CHARS: Final = 200

#: Labels that describe an alert rather than tell its series apart (left out of the check name).
#: ``severity`` is left out only when the alert's name already says it (``SanviCpuCritical``): a
#: rule pair sharing one name (``HighCPU`` warning and critical) stays two checks.
DESCRIPTIVE_LABELS: Final = frozenset(
    {"alertname", "priority", "team", "component", "dag_id", "slo", "prometheus"}
)
#: severity label → P-level (:data:`sanvi_ops.core.alert_rules.PRIORITY`, repeated here so the
#: intake does not import the rule generator and its YAML dumper).
SEVERITY_PRIORITY: Final[Mapping[str, str]] = {
    "critical": "P2",
    "page": "P2",
    "warning": "P3",
    "ticket": "P3",
    "info": "P4",
}
_LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
_WS = re.compile(r"\s+")


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook notification we accept; the message names the field."""


LabelName = Annotated[str, StringConstraints(pattern=_LABEL_NAME, max_length=128)]
LabelValue = Annotated[str, StringConstraints(max_length=MAX_LABEL_CHARS)]


class Alert(BaseModel):
    """One alert of the notification (Alertmanager's ``template.Alert``)."""

    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[LabelName, LabelValue] = Field(max_length=64)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=64)
    startsAt: AwareDatetime  # noqa: N815 - the wire name
    endsAt: AwareDatetime | None = None  # noqa: N815 - "0001-01-01T00:00:00Z" while firing
    generatorURL: str = Field(default="", max_length=4096)  # noqa: N815
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{1,64}$")]

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


class Notification(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: str
    groupKey: str = Field(default="", max_length=8192)  # noqa: N815
    truncatedAlerts: int = Field(default=0, ge=0)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = Field(default="", max_length=1024)
    externalURL: str = Field(default="", max_length=4096)  # noqa: N815
    alerts: list[Alert] = Field(max_length=MAX_ALERTS)


def parse_payload(body: bytes) -> Notification:
    """Validate a webhook body; :class:`PayloadError` says what is wrong (never echoing values)."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(f"body: {len(body)} bytes, more than the {MAX_BODY_BYTES} accepted")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"body: not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise PayloadError(f"body: a JSON object expected, got {type(data).__name__}")
    version = data.get("version")
    if version != "4":
        shown = repr(version)[:20] if isinstance(version, str | int | float) else type(version).__name__
        raise PayloadError(f"version: Alertmanager webhook payload version '4' expected, got {shown}")
    try:
        notification = Notification.model_validate(data)
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    for i, alert in enumerate(notification.alerts):
        if not alert.name.strip():
            raise PayloadError(f"alerts[{i}].labels.alertname: required")
    return notification


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False)[:5]:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"]).lstrip(".")
        problems.append(f"{path or 'body'}: {error['msg']}")
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f"; and {more} more" if more > 0 else "")


def _line(text: str, limit: int) -> str:
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_name(alert: Alert) -> str:
    """``<alertname>`` with the labels that tell its series apart: ``SanviCpuCritical[backend-1]``
    (only ``instance``), ``SanviDiskCritical[instance=db-1,job=node,mountpoint=/]`` (several)."""
    ident = {k: v for k, v in sorted(alert.labels.items()) if k not in DESCRIPTIVE_LABELS}
    if ident.get("severity", "").lower() in alert.name.lower():
        ident.pop("severity", None)
    name = _line(alert.name, 120)
    if set(ident) == {"instance"}:
        name += f"[{ident['instance']}]"
    elif ident:
        name += "[" + ",".join(f"{k}={v}" for k, v in ident.items()) + "]"
    name = _line(name, 10_000)
    if len(name) > MAX_CHECK_CHARS:
        name = name[: MAX_CHECK_CHARS - 20] + "…#" + alert.fingerprint[:16]
    return name


def priority(labels: Mapping[str, str], levels: Collection[str]) -> tuple[str, str]:
    """(P-level, where it came from) for an alert's labels (see the module doc)."""
    label = labels.get("priority", "").strip().upper()
    if label in levels:
        return label, "priority label"
    severity = labels.get("severity", "").strip()
    if severity.upper() in levels:
        return severity.upper(), "severity label"
    mapped = SEVERITY_PRIORITY.get(severity.lower())
    if mapped is not None and mapped in levels:
        return mapped, f"severity {severity!r}"
    return DEFAULT_INCIDENT_SEVERITY, "default (no known priority or severity label)"


@dataclass(frozen=True)
class AlertFinding:
    """One alert as the store sees it."""

    alert: Alert
    run_id: str
    result: CheckResult

    @property
    def firing(self) -> bool:
        return self.alert.status == "firing"

    @property
    def owner_dag(self) -> str | None:
        """The DAG the alert names in its ``dag_id`` label (its runbook, its silences)."""
        return self.alert.labels.get("dag_id") or None


def episode_run_id(alert: Alert) -> str:
    """``alertmanager:<fingerprint>:<startsAt as 20261203T135501.123Z>``: one firing episode."""
    start = alert.startsAt.astimezone(UTC)
    return f"{DAG_ID}:{alert.fingerprint.lower()}:{start:%Y%m%dT%H%M%S}.{start.microsecond // 1000:03d}Z"


def finding(alert: Alert, levels: Collection[str], notification: Notification | None = None) -> AlertFinding:
    """The :class:`CheckResult` an alert is recorded as."""
    level, source = priority(alert.labels, levels)
    ann = {k: _line(v, MAX_ANNOTATION_CHARS) for k, v in alert.annotations.items()}
    text = ann.get("description") or ann.get("summary") or f"{alert.name} is firing"
    if alert.status == "resolved":
        status = Status.OK
        ended = alert.endsAt.astimezone(UTC) if alert.endsAt and alert.endsAt.year > 1 else None
        summary = f"{alert.name} resolved" + (f" at {ended:%H:%M:%S %d/%m/%Y} UTC" if ended else "")
        if ann.get("summary"):
            summary += f" ({ann['summary']})"
    else:
        status = Status.CRITICAL if level in {"P1", "P2"} else Status.WARNING
        summary = text
    details: dict[str, Any] = {
        "source": DAG_ID,
        "fingerprint": alert.fingerprint.lower(),
        "starts_at": alert.startsAt.isoformat(),
        "ends_at": alert.endsAt.isoformat() if alert.endsAt and alert.endsAt.year > 1 else None,
        "labels": dict(alert.labels),
        "annotations": ann,
        "generator_url": alert.generatorURL,
        "priority_from": source,
    }
    if ann.get("summary") and ann.get("description"):
        details["impact"] = ann["summary"]
    if notification is not None:
        details["receiver"] = notification.receiver
        details["external_url"] = notification.externalURL
    result = CheckResult(
        check=check_name(alert),
        status=status,
        summary=_line(summary, 500),
        metric=alert.name,
        details=details,
        severity=level,
    )
    return AlertFinding(alert=alert, run_id=episode_run_id(alert), result=result)


def _http_url(value: str | None) -> str | None:
    return value if value and value.startswith(("http://", "https://")) else None


@dataclass
class IntakeReport:
    """What one notification did (the route answers it as JSON; the log says it)."""

    received: int = 0
    opened: list[str] = field(default_factory=list)
    deduplicated: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)
    #: alerts recorded without touching an incident (a late firing of a resolved episode, a
    #: resolved alert with no open incident, a resolved older episode).
    ignored: list[str] = field(default_factory=list)
    #: alerts Alertmanager left out of the notification (its ``max_alerts``): never seen here.
    truncated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "truncated": self.truncated,
            "opened": self.opened,
            "deduplicated": self.deduplicated,
            "resolved": self.resolved,
            "silenced": self.silenced,
            "ignored": self.ignored,
        }


@dataclass
class _AlertRun(_Run):
    """The pipeline's run, one alert episode at a time; silences also match the alert's own DAG."""

    owner_dag: str | None = None

    def silence_for(self, check: str) -> Silence | None:
        from sanvi_ops.core.silences import find_silence

        found = [find_silence(self.silences, self.dag_id, check, self.now)]
        if self.owner_dag:
            found.append(find_silence(self.silences, self.owner_dag, check, self.now))
        return max((s for s in found if s is not None), key=lambda s: s.expires_at, default=None)


@dataclass(frozen=True)
class _Latest:
    run_id: str
    status: str
    starts_at: datetime | None


def _latest_episode(store: ResultStore, check: str) -> _Latest | None:
    """The newest recorded episode of ``check`` (by ``startsAt``, the run's logical date)."""
    with store.connection(f"read the latest alert of {check}") as conn:
        row = conn.execute(
            """
            SELECT run_id, status, logical_date FROM check_results
            WHERE dag_id = %s AND check_name = %s
            ORDER BY logical_date DESC NULLS LAST, id DESC LIMIT 1
            """,
            [DAG_ID, check],
        ).fetchone()
    return _Latest(row["run_id"], row["status"], row["logical_date"]) if row else None


def record_alerts(
    store: ResultStore,
    cfg: ConfigLike,
    notification: Notification,
    *,
    now: datetime | None = None,
    silences: Sequence[Silence] | None = None,
) -> IntakeReport:
    """Store every alert of a notification, then open, keep or resolve its incident (module doc).

    Idempotent: Alertmanager retrying the same notification (after a 5xx) changes nothing more.

    :raises StoreError: the store is unreachable (the route answers 503 and Alertmanager retries;
        what was written before is found again by the retry).
    """
    if now is not None and now.tzinfo is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    when = (now or datetime.now(UTC)).astimezone(ZoneInfo(cfg.timezone))
    run = _AlertRun(store=store, cfg=cfg, dag_id=DAG_ID, run_id="", run_url=None, now=when)
    run.silences = list(silences) if silences is not None else load_silences(store, cfg, now=when)
    report = IntakeReport(received=len(notification.alerts), truncated=notification.truncatedAlerts)
    if notification.truncatedAlerts:
        log.warning(
            "Alertmanager left %d alert(s) out of this notification (receiver %r: max_alerts); "
            "they open no incident here until it is raised",
            notification.truncatedAlerts,
            notification.receiver,
        )
    levels = set(cfg.severities)
    for alert in notification.alerts:
        item = finding(alert, levels, notification)
        check = item.result.check
        latest = _latest_episode(store, check)
        run.run_id = item.run_id
        run.owner_dag = item.owner_dag
        run.run_url = _http_url(alert.annotations.get("runbook_url")) or _http_url(alert.generatorURL)
        if item.firing:
            _fire(store, run, item, latest, report)
        else:
            _resolve(store, run, item, latest, report)
    log.info("Alertmanager notification (%s): %s", notification.receiver or "?", report.as_dict())
    return report


def _open_incident_for(store: ResultStore, check: str) -> Any:
    return next((i for i in store.open_incidents(DAG_ID) if i.check == check), None)


def _fire(
    store: ResultStore, run: _AlertRun, item: AlertFinding, latest: _Latest | None, report: IntakeReport
) -> None:
    check = item.result.check
    if latest is not None and latest.run_id == item.run_id and latest.status == Status.OK.value:
        report.ignored.append(f"{check}: episode already resolved")
        return
    newer = latest is not None and latest.starts_at is not None and latest.starts_at > item.alert.startsAt
    if newer:
        report.ignored.append(f"{check}: older than the episode recorded last")
        return
    store.save_results(DAG_ID, item.run_id, item.alert.startsAt, [item.result])  # first: nothing is lost
    existing = _open_incident_for(store, check)
    already = existing is not None and store.get_notification(f"incident:{existing.id}") is not None
    before = len(run.out.silenced)
    run.raise_incident(item.result, existing)
    incident = existing or _open_incident_for(store, check)
    ref = incident.ref if incident is not None else "?"
    if len(run.out.silenced) > before:
        report.silenced.append(f"{ref} {check}")
    elif already:
        report.deduplicated.append(f"{ref} {check}")
    else:
        report.opened.append(f"{ref} {check}")


def _resolve(
    store: ResultStore, run: _AlertRun, item: AlertFinding, latest: _Latest | None, report: IntakeReport
) -> None:
    check = item.result.check
    newer_firing = (
        latest is not None
        and latest.run_id != item.run_id
        and latest.status != Status.OK.value
        and latest.starts_at is not None
        and latest.starts_at > item.alert.startsAt
    )
    store.save_results(DAG_ID, item.run_id, item.alert.startsAt, [item.result])
    incident = _open_incident_for(store, check)
    if incident is None:
        report.ignored.append(f"{check}: resolved, no open incident")
        return
    if newer_firing:
        report.ignored.append(f"{check}: resolved an older episode; a newer one is firing")
        return
    run.resolve(incident, Closure("healthy", (item.result,)))
    report.resolved.append(f"{incident.ref} {check}")
