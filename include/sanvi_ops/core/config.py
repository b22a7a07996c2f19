"""The operations guide as validated data: models for ``include/config/maintenance.yaml``.

The guide's tables (calendar, thresholds, SLOs, escalation, severities, backups, deployment
windows, audit retention, environments, on-call, contacts) live in one YAML file so that code
reads them instead of restating them. This module turns that file into frozen pydantic models
and refuses a bad file up front, naming every problem as ``<key.path>: <reason>``: a typo in a
weekday must stop a deployment, not silently move a DR drill.

It holds what the tasks share (teams, thresholds, windows, contacts, connections…), the
loader and the checks across sections. Each guide task's own settings are a model in
``sanvi_ops/tasks/<dag_id>/config.py``, written under ``tasks.<dag_id>.settings`` in the file;
:class:`Tasks` assembles them, one typed field per DAG id
(``cfg.tasks.database_maintenance.settings.parallelism``).

Pure on purpose: no Airflow import, no network, one file read. DAG files call
:func:`load_config` at parse time, so it is cheap and cached per (path, mtime).
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Generic, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from sanvi_ops.core.windows import Window

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_TIMEOUT_MINUTES",
    "ENV_VAR",
    "GUIDE_TASKS",
    "AuditCategory",
    "AuditRetention",
    "BackupItem",
    "Backups",
    "Cadence",
    "ConfigError",
    "Connections",
    "Contact",
    "DeploymentPolicy",
    "DeploymentWindow",
    "Environment",
    "EscalationLevel",
    "GuideTask",
    "MaintenanceConfig",
    "OnCall",
    "RecoveryTest",
    "RecoveryTesting",
    "Severity",
    "SlackSettings",
    "Slos",
    "TaskSpec",
    "Tasks",
    "Team",
    "Threshold",
    "Thresholds",
    "Weekday",
    "clear_config_cache",
    "format_duration",
    "load_config",
    "parse_config",
]

#: Environment variable that points at another config file.
ENV_VAR: Final = "SANVI_OPS_CONFIG"
#: The shipped file, resolved relative to this package so it works from any working directory.
DEFAULT_CONFIG_PATH: Final = Path(__file__).resolve().parents[2] / "config" / "maintenance.yaml"

Cadence = Literal["daily", "weekly", "monthly", "quarterly", "annually"]

#: The guide's 16 maintenance tasks (DAG ids) and their cadence, in the guide's order, then the
#: four annual reviews of its "Compliance Reviews" and "Vendor Assessment" sections. The ids
#: are the contract between the config file, the DAG files and the results store, so a config
#: file may not add, drop or re-cadence them (a weekly Log Review would not be the guide).
GUIDE_TASKS: Final[Mapping[str, Cadence]] = {
    "system_health_check": "daily",
    "log_review": "daily",
    "backup_verification": "daily",
    "security_patch_review": "weekly",
    "performance_analysis": "weekly",
    "database_maintenance": "weekly",
    "disk_space_check": "weekly",
    "backup_testing": "weekly",
    "dr_testing": "monthly",
    "security_scan": "monthly",
    "capacity_planning": "monthly",
    "dependency_updates": "monthly",
    "penetration_testing": "quarterly",
    "architecture_review": "quarterly",
    "cost_optimization": "quarterly",
    "compliance_audit": "quarterly",
    "vendor_contract_review": "annually",
    "vendor_security_assessment": "annually",
    "business_continuity_testing": "annually",
    "external_security_assessment": "annually",
}

#: Execution timeout per cadence when a task does not set ``execution_timeout_minutes``: long
#: enough for the work of that cadence (a monthly DR drill restores a whole database), short
#: enough that a hung task is noticed before its next run.
DEFAULT_TIMEOUT_MINUTES: Final[Mapping[str, int]] = {
    "daily": 30,
    "weekly": 120,
    "monthly": 240,
    "quarterly": 240,
    "annually": 240,
}

_SEVERITY_LEVELS: Final = ("P1", "P2", "P3", "P4")
_ESCALATION_LEVELS: Final = ("critical", "high", "medium", "low")
_REQUIRED_ENVIRONMENTS: Final = ("production", "staging", "development", "dr_site")
_REQUIRED_DEPLOYMENT_WINDOWS: Final = ("development", "staging", "production")


class ConfigError(ValueError):
    """The maintenance config cannot be used; :attr:`problems` lists every reason found.

    Each problem reads ``<key.path>: <reason>`` so a user can go straight to the line to fix.
    """

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        header = f"{source}: invalid maintenance config ({count} problem{'s' if count != 1 else ''})"
        super().__init__(header + "".join(f"\n  - {p}" for p in self.problems))


# --------------------------------------------------------------------------------------------
# Scalar types written as friendly strings in YAML
# --------------------------------------------------------------------------------------------


class Weekday(enum.StrEnum):
    """A day of the week as written in the config (lower case)."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @property
    def number(self) -> int:
        """Python's ``date.weekday()`` number: Monday 0 … Sunday 6."""
        return list(Weekday).index(self)

    @property
    def cron(self) -> int:
        """Cron's day-of-week number: Sunday 0, Monday 1 … Saturday 6."""
        return (self.number + 1) % 7

    @property
    def label(self) -> str:
        """``Monday`` for people."""
        return self.value.capitalize()


def _parse_weekday(value: object) -> object:
    if value is None or isinstance(value, Weekday):
        return value
    if isinstance(value, str) and value.strip().lower() in Weekday._value2member_map_:
        return Weekday(value.strip().lower())
    raise ValueError(f"{value!r} is not a weekday (monday … sunday)")


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _parse_hhmm(value: object) -> object:
    """Accept ``"HH:MM"`` (24 h) or a ``datetime.time`` on the minute; nothing else."""
    if value is None:
        return None
    if isinstance(value, dt.time):
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError(f"'{value}' must be a plain HH:MM time (the config's timezone applies)")
        return value
    if isinstance(value, str) and (match := _HHMM.match(value.strip())):
        return dt.time(int(match.group(1)), int(match.group(2)))
    raise ValueError(f"{value!r} is not HH:MM (24-hour clock, e.g. '09:30')")


_DURATION_PART = re.compile(r"(\d+)\s*([smhdw])")
_DURATION_FULL = re.compile(r"^\s*(?:\d+\s*[smhdw]\s*)+$")
_DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_duration(value: object) -> object:
    """Accept ``15m``, ``2h``, ``1d``, ``1h30m`` (s/m/h/d/w) or a ``timedelta``; must be positive."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        delta = value
    elif isinstance(value, str) and _DURATION_FULL.match(value):
        seconds = sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(value))
        delta = dt.timedelta(seconds=seconds)
    else:
        raise ValueError(f"{value!r} is not a duration like 30s, 15m, 2h, 1d or 1h30m")
    if delta <= dt.timedelta(0):
        raise ValueError(f"{value!r} must be a positive duration")
    return delta


def format_duration(delta: dt.timedelta) -> str:
    """Write a duration the way the config file does (``15m``, ``2h``, ``1d``, ``1h30m``)."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')"
        ) from None
    return value


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


WeekdayName = Annotated[Weekday, BeforeValidator(_parse_weekday)]
OptionalWeekday = Annotated[Weekday | None, BeforeValidator(_parse_weekday)]
ClockTime = Annotated[
    dt.time,
    BeforeValidator(_parse_hhmm),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str, when_used="json"),
]
OptionalClockTime = Annotated[
    dt.time | None,
    BeforeValidator(_parse_hhmm),
    PlainSerializer(lambda t: None if t is None else t.strftime("%H:%M"), when_used="json"),
]
Duration = Annotated[
    dt.timedelta,
    BeforeValidator(_parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
OptionalDuration = Annotated[
    dt.timedelta | None,
    BeforeValidator(_parse_duration),
    PlainSerializer(lambda d: None if d is None else format_duration(d), when_used="json"),
]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    """Base of every config model: unknown keys are errors (typos must not be ignored), and
    instances are immutable because :func:`load_config` hands the same cached object to everyone."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------
# The calendar
# --------------------------------------------------------------------------------------------


class Team(_Model):
    """A responsible team from the guide: its name (the DAG owner) and whom to mention."""

    name: NonEmpty
    slack: NonEmpty


def _not_used(cadence: str, field: str) -> str:
    return f"not used by a {cadence} task; remove {field}"


class TaskSpec(_Model):
    """One maintenance task of the guide and when it runs (its key in ``tasks`` is the DAG id)."""

    title: NonEmpty
    cadence: Cadence
    time: ClockTime
    weekday: OptionalWeekday = Field(default=None, validate_default=True)
    week: int | None = Field(default=None, validate_default=True)
    month_of_quarter: int | None = Field(default=None, validate_default=True)
    #: An annual task's month (1 = January … 12 = December).
    month: int | None = Field(default=None, validate_default=True)
    team: NonEmpty
    description: NonEmpty
    execution_timeout_minutes: int = Field(default=DEFAULT_TIMEOUT_MINUTES["daily"], gt=0)

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any) -> Any:
        """The timeout default depends on the cadence (see :data:`DEFAULT_TIMEOUT_MINUTES`)."""
        if isinstance(data, dict) and "execution_timeout_minutes" not in data:
            cadence = data.get("cadence")
            if isinstance(cadence, str) and cadence in DEFAULT_TIMEOUT_MINUTES:
                data = {**data, "execution_timeout_minutes": DEFAULT_TIMEOUT_MINUTES[cadence]}
        return data

    @field_validator("weekday")
    @classmethod
    def _weekday_for_cadence(cls, value: Weekday | None, info: ValidationInfo) -> Weekday | None:
        cadence = info.data.get("cadence")
        if cadence is None:
            return value  # the cadence itself is wrong; that error is reported on its own
        if cadence == "daily" and value is not None:
            raise ValueError(f"{_not_used('daily', 'weekday')} (a daily task runs every day)")
        if cadence != "daily" and value is None:
            raise ValueError(f"required for a {cadence} task (monday … sunday)")
        return value

    @field_validator("week")
    @classmethod
    def _week_for_cadence(cls, value: int | None, info: ValidationInfo) -> int | None:
        cadence = info.data.get("cadence")
        if cadence is None:
            return value
        if cadence in {"daily", "weekly"}:
            if value is not None:
                raise ValueError(_not_used(cadence, "week"))
            return value
        if value is None:
            raise ValueError(f"required for a {cadence} task: 1..4 (1st week = days 1–7, 2nd = 8–14, …)")
        if not 1 <= value <= 4:
            raise ValueError(
                f"must be 1..4, got {value} (week N is the Nth weekday of the month, days 7N-6..7N; "
                "a 5th one does not exist in every month)"
            )
        return value

    @field_validator("month_of_quarter")
    @classmethod
    def _month_for_cadence(cls, value: int | None, info: ValidationInfo) -> int | None:
        cadence = info.data.get("cadence")
        if cadence is None:
            return value
        if cadence != "quarterly":
            if value is not None:
                raise ValueError(_not_used(cadence, "month_of_quarter"))
            return value
        if value is None:
            raise ValueError("required for a quarterly task: 1..3 (1 = Jan/Apr/Jul/Oct)")
        if not 1 <= value <= 3:
            raise ValueError(
                f"must be 1..3, got {value} (1 = Jan/Apr/Jul/Oct, 2 = Feb/May/Aug/Nov, 3 = Mar/Jun/Sep/Dec)"
            )
        return value

    @field_validator("month")
    @classmethod
    def _month_for_annual(cls, value: int | None, info: ValidationInfo) -> int | None:
        cadence = info.data.get("cadence")
        if cadence is None:
            return value
        if cadence != "annually":
            if value is not None:
                raise ValueError(_not_used(cadence, "month"))
            return value
        if value is None:
            raise ValueError("required for an annual task: 1..12 (1 = January)")
        if not 1 <= value <= 12:
            raise ValueError(f"must be 1..12 (1 = January … 12 = December), got {value}")
        return value

    @property
    def execution_timeout(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.execution_timeout_minutes)

    @property
    def months(self) -> tuple[int, ...]:
        """Calendar months the task runs in (1..12); all twelve unless quarterly or annual."""
        if self.cadence == "quarterly" and self.month_of_quarter is not None:
            return tuple(range(self.month_of_quarter, 13, 3))
        if self.cadence == "annually" and self.month is not None:
            return (self.month,)
        return tuple(range(1, 13))


# --------------------------------------------------------------------------------------------
# Thresholds, SLOs, escalation, severities
# --------------------------------------------------------------------------------------------


class Threshold(_Model):
    """Warning and critical limits of one metric; a value strictly above a limit crosses it.

    ``warning_for`` / ``critical_for``: how long the condition must hold (``> 70% for 15m``);
    ``None`` where the guide gives no duration.
    """

    warning: float
    critical: float
    unit: NonEmpty
    warning_for: OptionalDuration = None
    critical_for: OptionalDuration = None

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.warning >= self.critical:
            raise ValueError(f"warning ({self.warning:g}) must be below critical ({self.critical:g})")
        if self.unit == "%":
            for name, value in (("warning", self.warning), ("critical", self.critical)):
                if not 0 <= value <= 100:
                    raise ValueError(f"{name} ({value:g}) is a percentage and must be within 0..100")
        return self

    def as_dict(self) -> dict[str, float]:
        """The limits in the shape :class:`sanvi_ops.core.results.CheckResult` keeps them."""
        return {"warning": self.warning, "critical": self.critical}


class Thresholds(_Model):
    """The guide's alert thresholds ("Monitoring and Alerting")."""

    cpu: Threshold
    memory: Threshold
    disk: Threshold
    error_rate: Threshold
    latency_p95: Threshold
    db_connections: Threshold


class Slos(_Model):
    """Service Level Objectives."""

    availability_pct: float = Field(gt=0, le=100)
    response_time_p95_ms: float = Field(gt=0)
    error_rate_pct: float = Field(ge=0, le=100)
    recovery_time_minutes: float = Field(gt=0)


class EscalationLevel(_Model):
    """One row of "Escalation Criteria": how fast to respond, when to escalate."""

    description: NonEmpty
    response_time: Duration
    escalate_after: Duration

    @model_validator(mode="after")
    def _ordered(self) -> EscalationLevel:
        if self.response_time > self.escalate_after:
            raise ValueError(
                f"response_time ({format_duration(self.response_time)}) must not be longer than "
                f"escalate_after ({format_duration(self.escalate_after)})"
            )
        return self


class Severity(_Model):
    """An incident severity level (P1..P4): how often to post updates, which escalation applies."""

    description: NonEmpty
    example: NonEmpty
    update_every: Duration
    escalation: NonEmpty


# --------------------------------------------------------------------------------------------
# Backups, recovery testing, deployment windows, audit retention
# --------------------------------------------------------------------------------------------


class BackupItem(_Model):
    """One row of the backup schedule: how often a backup must appear and how long it is kept."""

    frequency: NonEmpty
    full_every: OptionalDuration = None
    incremental_every: OptionalDuration = None
    on_change: bool = False
    retention_days: int = Field(gt=0)
    storage: list[NonEmpty] = Field(min_length=1)

    @model_validator(mode="after")
    def _has_schedule(self) -> BackupItem:
        if self.on_change == (self.full_every is not None):
            raise ValueError("needs either full_every (e.g. 1d) or on_change: true, not both")
        if self.incremental_every is not None:
            if self.full_every is None:
                raise ValueError("incremental_every needs full_every")
            if self.incremental_every >= self.full_every:
                raise ValueError("incremental_every must be shorter than full_every")
        return self


class Backups(_Model):
    """The guide's backup schedule."""

    database: BackupItem
    file_storage: BackupItem
    configuration: BackupItem
    system_images: BackupItem


class RecoveryTest(_Model):
    """How often one kind of recovery is tested."""

    cadence: Literal["weekly", "monthly", "quarterly", "semi_annually", "annually"]
    description: NonEmpty


class RecoveryTesting(_Model):
    """The guide's recovery testing cadence; every test records its recovery time."""

    database: RecoveryTest
    full_system: RecoveryTest
    dr_site_activation: RecoveryTest
    record_recovery_time: bool = True


class DeploymentWindow(_Model):
    """When regular deployments may happen: ``anytime``, or ``days`` between ``start`` and ``end``
    (an ``end`` earlier than ``start`` runs past midnight: Tue 22:00–02:00 ends Wednesday 02:00)."""

    anytime: bool = False
    days: tuple[WeekdayName, ...] = ()
    start: OptionalClockTime = None
    end: OptionalClockTime = None

    @model_validator(mode="after")
    def _complete(self) -> DeploymentWindow:
        self.in_zone("UTC")  # the rules of a window are Window's (its errors name the keys)
        return self

    def in_zone(self, timezone: str) -> Window:
        """This window read in ``timezone`` (the config's): is it open, when does it close, its text."""
        return Window(
            timezone,
            anytime=self.anytime,
            days=tuple(d.number for d in self.days),
            start=self.start,
            end=self.end,
        )

    def is_open(self, when: dt.datetime, timezone: str) -> bool:
        """Whether ``when`` (timezone-aware) falls inside this window, read in ``timezone``."""
        return self.in_zone(timezone).is_open(when)


class DeploymentPolicy(_Model):
    """One environment's row of "Deployment Windows"; approvers are keys of ``contacts``."""

    regular: DeploymentWindow
    emergency: Literal["anytime", "with_approval"]
    approvers: list[NonEmpty] = Field(min_length=1)


class AuditCategory(_Model):
    """One audit category and how long its records are kept."""

    retention_years: int = Field(gt=0)
    covers: list[NonEmpty] = Field(min_length=1)


class AuditRetention(_Model):
    """The guide's audit requirements."""

    system_access: AuditCategory
    data_access: AuditCategory
    changes: AuditCategory

    @property
    def longest_years(self) -> int:
        """How long a store holding every category must keep its records."""
        return max(
            self.system_access.retention_years, self.data_access.retention_years, self.changes.retention_years
        )


# --------------------------------------------------------------------------------------------
# People, places, connections
# --------------------------------------------------------------------------------------------


class Environment(_Model):
    """One row of Appendix B."""

    name: NonEmpty
    purpose: NonEmpty
    url: HttpUrl
    access: NonEmpty


class Contact(_Model):
    """A person or role to reach; ``slack`` is a handle placeholder the user replaces."""

    role: NonEmpty
    slack: NonEmpty
    email: str | None = None
    phone: str | None = None
    escalation_order: int | None = Field(default=None, gt=0)


class OnCall(_Model):
    """The weekly on-call rotation.

    Week 0 starts on ``start_date`` (a ``handoff_weekday``) at ``handoff_time`` in the config's
    time zone; week N's primary is ``members[N % len]`` and its secondary the next member.
    """

    rotation: Literal["weekly"] = "weekly"
    handoff_weekday: WeekdayName
    handoff_time: ClockTime
    start_date: dt.date
    members: list[NonEmpty] = Field(min_length=2)
    team_lead: NonEmpty
    cto: NonEmpty

    # Set by MaintenanceConfig so handoffs happen at the config's local time; UTC when an
    # OnCall is built on its own.
    _timezone: str = PrivateAttr(default="UTC")

    @field_validator("start_date")
    @classmethod
    def _starts_on_handoff_day(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        weekday = info.data.get("handoff_weekday")
        if isinstance(weekday, Weekday) and value.weekday() != weekday.number:
            actual = list(Weekday)[value.weekday()].value
            raise ValueError(
                f"{value.isoformat()} is a {actual}; it must be a {weekday.value} (handoff_weekday)"
            )
        return value

    @field_validator("members")
    @classmethod
    def _unique_members(cls, value: list[str]) -> list[str]:
        duplicates = sorted({m for m in value if value.count(m) > 1})
        if duplicates:
            raise ValueError(f"each member once, found twice: {', '.join(duplicates)}")
        return value

    def week_index(self, when: dt.datetime) -> int:
        """Rotation week containing ``when`` (timezone-aware); negative before ``start_date``."""
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        local = when.astimezone(ZoneInfo(self._timezone))
        days = (local.date() - self.start_date).days
        week, day_in_week = divmod(days, 7)
        # Wall-clock comparison on purpose: the handoff stays at 09:00 local across DST.
        if day_in_week == 0 and local.time().replace(tzinfo=None) < self.handoff_time:
            week -= 1
        return week

    def on_call_at(self, when: dt.datetime) -> tuple[str, str]:
        """(primary, secondary) Slack handles for the rotation week containing ``when``."""
        week = self.week_index(when)
        count = len(self.members)
        return self.members[week % count], self.members[(week + 1) % count]


class SlackSettings(_Model):
    """Where reports go; the token is the Airflow connection ``connections.slack``."""

    channel: NonEmpty
    incident_channel: NonEmpty


class Connections(_Model):
    """Airflow connection ids (defined with ``AIRFLOW_CONN_<ID>`` or a secrets backend)."""

    app_db: NonEmpty = "sanvi_app_db"
    store: NonEmpty = "sanvi_ops_store"
    scratch_db: NonEmpty = "sanvi_scratch_db"
    aws: NonEmpty = "aws_default"
    redis: NonEmpty = "sanvi_redis"
    prometheus: NonEmpty = "sanvi_prometheus"
    slack: NonEmpty = "slack_api_default"


class AirflowUser(_Model):
    """An Airflow user allowed to answer a human-in-the-loop request.

    ``id`` is the auth manager's user id: the user name with the simple auth manager, the numeric
    id (as a string) with the FAB auth manager.
    """

    id: NonEmpty
    name: NonEmpty


class SignoffSpec(_Model):
    """One DAG's sign-off: which team answers, by when, and what a missed deadline means.

    ``team`` is a key of ``teams`` (the guide's "Responsible" column). ``assigned_users`` limits
    who may answer in the Airflow UI; empty means any user whose role may edit the DAG.
    """

    team: NonEmpty
    deadline: Duration = dt.timedelta(days=7)
    on_timeout: Literal["warning", "critical"] = "warning"
    assigned_users: list[AirflowUser] = Field(default_factory=list)


def _default_signoffs() -> dict[str, SignoffSpec]:
    return {
        "penetration_testing": SignoffSpec(team="security", deadline=dt.timedelta(days=14)),
        "architecture_review": SignoffSpec(team="architecture"),
        "cost_optimization": SignoffSpec(team="finance_devops"),
        "compliance_audit": SignoffSpec(team="legal_security", on_timeout="critical"),
        "vendor_contract_review": SignoffSpec(team="finance_devops", deadline=dt.timedelta(days=14)),
        "vendor_security_assessment": SignoffSpec(team="legal_security", deadline=dt.timedelta(days=14)),
        "business_continuity_testing": SignoffSpec(team="devops_dba", deadline=dt.timedelta(days=7)),
        "external_security_assessment": SignoffSpec(
            team="security", deadline=dt.timedelta(days=30), on_timeout="critical"
        ),
    }


class SignoffsConfig(_Model):
    """Human sign-offs after the quarterly reviews' evidence (``sanvi_ops.airflow_kit.signoff``), per DAG id.

    A sign-off not answered by its ``deadline`` is ``timed_out``: stored as a ``signoff.*`` result
    of severity ``on_timeout`` and escalated to ``on_call.team_lead`` in Slack.
    """

    dags: dict[NonEmpty, SignoffSpec] = Field(default_factory=_default_signoffs)

    def spec(self, dag_id: str) -> SignoffSpec:
        """The sign-off of ``dag_id``, with an error naming the missing key."""
        try:
            return self.dags[dag_id]
        except KeyError:
            raise KeyError(
                f"signoffs.dags.{dag_id}: no sign-off configured for DAG {dag_id!r} "
                f"(configured: {', '.join(sorted(self.dags)) or 'none'})"
            ) from None


class ApprovalGate(_Model):
    """A destructive DAG's manual-run rule (``sanvi_ops.airflow_kit.approval``).

    ``environment`` is the key of ``deployment_windows`` the DAG changes: its regular window (and
    the DAG's own maintenance window) is when a manual run may change things without approval;
    outside them a manual run defaults to a dry run, and a run that asks to change anyway waits for
    every one of the environment's ``approvers`` (when its ``emergency`` is ``with_approval``) for at
    most ``deadline``.
    """

    environment: NonEmpty = "production"
    deadline: Duration = dt.timedelta(hours=4)


class ApprovalsConfig(_Model):
    """Who answers the approvals of production-changing manual runs (each task's ``approval``):
    ``responders`` maps a key of ``contacts`` (``cto``, ``product_owner``) to the Airflow users who answer for that role (empty:
    any user whose role may edit the DAG)."""

    responders: dict[NonEmpty, list[AirflowUser]] = Field(default_factory=dict)


class ChangeManagementConfig(_Model):
    """The guide's "Change Management" (``sanvi_ops.core.change_records``): every run that changes
    production leaves a change record (standard / normal / emergency). An emergency change opens a
    post-implementation review, a form for the DAG's responsible team due ``pir_due`` after the
    change; unanswered by then it is stored as ``timed_out`` with severity ``pir_on_timeout`` and
    escalated to ``on_call.team_lead``. The review runs in the ``change_review`` DAG, owned by
    ``team`` (the form itself goes to the changed DAG's team)."""

    pir_due: Duration = dt.timedelta(days=5)
    pir_on_timeout: Literal["warning", "critical"] = "warning"
    team: NonEmpty = "devops"


class SilenceSpec(_Model):
    """One entry of ``silences``: mute the Slack alerts of matching critical results until ``expires``.

    The results are still stored and the incident recorded; the run summary says "silenced until
    … (reason)". ``dag_id`` (exact) and/or ``check`` (an fnmatch pattern on the check name, e.g.
    ``http.staging-*``) give the scope; one of them is required. ``expires`` must be in the future
    and at most ``silence_max_duration`` away when the silence is first applied; a naive time is
    read in ``timezone``. An expired entry simply stops silencing.
    """

    dag_id: str | None = Field(default=None, min_length=1)
    check: str | None = Field(default=None, min_length=1)
    reason: NonEmpty
    expires: dt.datetime
    created_by: NonEmpty

    @model_validator(mode="after")
    def _has_scope(self) -> SilenceSpec:
        if self.dag_id is None and self.check is None:
            raise ValueError("name a dag_id or a check pattern (a silence may not mute everything)")
        return self


class DeadlineAllowances(_Model):
    """How long a run may take from being queued before a deadline alert is posted, per cadence;
    a non-guide job (the backups, the watchdog) gets its execution timeout plus ``job_margin``."""

    daily: Duration = dt.timedelta(hours=1)
    weekly: Duration = dt.timedelta(hours=3)
    monthly: Duration = dt.timedelta(hours=5)
    quarterly: Duration = dt.timedelta(hours=5)
    #: An annual review gathers evidence in minutes; the game day of business continuity testing
    #: runs two drills. A human wait (approval, sign-off) is added on top by the DAG.
    annually: Duration = dt.timedelta(hours=12)
    job_margin: Duration = dt.timedelta(minutes=30)

    @model_validator(mode="after")
    def _shorter_than_the_cadence(self) -> DeadlineAllowances:
        for cadence, period in (
            ("daily", 1),
            ("weekly", 7),
            ("monthly", 28),
            ("quarterly", 28),
            ("annually", 365),
        ):
            allowed = getattr(self, cadence)
            if allowed >= dt.timedelta(days=period):
                raise ValueError(
                    f"{cadence} ({format_duration(allowed)}) must be shorter than {period} day(s): "
                    "an alert after the next run is due comes too late"
                )
        return self

    def for_cadence(self, cadence: str) -> dt.timedelta:
        value: dt.timedelta = getattr(self, cadence)
        return value


# --------------------------------------------------------------------------------------------
# The tasks: each guide task's calendar entry with its own settings and approval
# --------------------------------------------------------------------------------------------


class AnnualReviewConfig(_Model):
    """What every annual review shares (``tasks.<annual review>.settings``).

    The report goes to ``s3://<evidence_bucket>/<evidence_prefix><dag_id>/<year>/report.json``
    (and ``report.md``) with the compliance audit's encryption; ``evidence_bucket: null`` = the
    compliance audit's evidence bucket (``tasks.compliance_audit.settings.evidence.bucket``,
    which must be versioned).
    """

    #: How far back the review reads the results store (a year).
    lookback_days: int = Field(default=365, gt=0, le=3 * 366)
    evidence_bucket: str | None = Field(default=None, min_length=3)
    evidence_prefix: NonEmpty = "annual-reviews/"

    @field_validator("evidence_prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value


# Each task's settings model lives with the task (sanvi_ops/tasks/<dag_id>/config.py) and is
# built from the types above, so it is imported here, below them. ``sanvi_ops.tasks`` imports
# this module first, so a task's config module may also be imported on its own.
from sanvi_ops.tasks.architecture_review.config import ArchitectureReviewConfig  # noqa: E402
from sanvi_ops.tasks.backup_testing.config import BackupTestingConfig  # noqa: E402
from sanvi_ops.tasks.backup_verification.config import BackupVerificationSettings  # noqa: E402
from sanvi_ops.tasks.business_continuity_testing.config import BusinessContinuityTestingConfig  # noqa: E402
from sanvi_ops.tasks.capacity_planning.config import CapacityPlanningConfig  # noqa: E402
from sanvi_ops.tasks.compliance_audit.config import ComplianceAuditConfig  # noqa: E402
from sanvi_ops.tasks.configuration_backup.config import ConfigurationBackupSettings  # noqa: E402
from sanvi_ops.tasks.cost_optimization.config import CostOptimizationConfig  # noqa: E402
from sanvi_ops.tasks.database_backup_full.config import DatabaseBackupSettings  # noqa: E402
from sanvi_ops.tasks.database_maintenance.config import VacuumConfig  # noqa: E402
from sanvi_ops.tasks.dependency_updates.config import DependencyUpdatesConfig  # noqa: E402
from sanvi_ops.tasks.disk_space_check.config import DiskSpaceConfig  # noqa: E402
from sanvi_ops.tasks.dr_testing.config import DrTestingConfig  # noqa: E402
from sanvi_ops.tasks.external_security_assessment.config import ExternalSecurityAssessmentConfig  # noqa: E402
from sanvi_ops.tasks.file_storage_backup.config import FileStorageBackupSettings  # noqa: E402
from sanvi_ops.tasks.log_review.config import LogReviewConfig  # noqa: E402
from sanvi_ops.tasks.penetration_testing.config import PenetrationTestingConfig  # noqa: E402
from sanvi_ops.tasks.performance_analysis.config import PerformanceAnalysisConfig  # noqa: E402
from sanvi_ops.tasks.sanvi_ops_watchdog.config import WatchdogConfig  # noqa: E402
from sanvi_ops.tasks.security_patch_review.config import SecurityPatchReviewConfig  # noqa: E402
from sanvi_ops.tasks.security_scan.config import SecurityScanConfig  # noqa: E402
from sanvi_ops.tasks.system_health_check.config import HealthCheckConfig  # noqa: E402
from sanvi_ops.tasks.system_image_backup.config import SystemImageBackupSettings  # noqa: E402
from sanvi_ops.tasks.vendor_contract_review.config import VendorContractReviewConfig  # noqa: E402
from sanvi_ops.tasks.vendor_security_assessment.config import VendorSecurityAssessmentConfig  # noqa: E402

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class MetaMonitoringConfig(_Model):
    """Who watches the watcher: deadline alerts on every DAG, and the watchdog DAG (Airflow's own
    health endpoint is probed by the System Health Check: its ``settings.airflow_health``)."""

    deadlines: DeadlineAllowances = Field(default_factory=DeadlineAllowances)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)


def _fault_at(path: str, reason: str) -> PydanticCustomError:
    """The error of a rule across fields, reported at ``path`` below the model that checks it
    (``settings.window`` of ``tasks.database_maintenance``), not at the model itself."""
    return PydanticCustomError("fault_at", "{path}: {reason}", {"path": path, "reason": reason})


class GuideTask(TaskSpec, Generic[SettingsT]):
    """One guide task (``tasks.<dag_id>``): when it runs and who owns it (:class:`TaskSpec`),
    its own ``settings`` (the model in ``sanvi_ops/tasks/<dag_id>/config.py``; omitted = its
    defaults) and, for a task that changes an environment, its manual runs' ``approval``."""

    settings: SettingsT
    approval: ApprovalGate | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_settings(cls, data: Any) -> Any:
        if isinstance(data, dict) and "settings" not in data:
            data = {**data, "settings": {}}
        return data

    def __hash__(self) -> int:
        # The calendar entry identifies the task (settings hold lists and dicts, not hashable);
        # equal tasks have equal entries, so the hash/eq contract holds.
        return hash(tuple(getattr(self, name) for name in TaskSpec.model_fields))


class DatabaseMaintenanceTask(GuideTask[VacuumConfig]):
    """``tasks.database_maintenance``: the scheduled VACUUM must fall inside its own
    ``settings.window`` and its ``settings.time_box`` end before the task's execution timeout;
    manual runs outside the window need production's ``approval`` by default."""

    approval: ApprovalGate | None = Field(default_factory=ApprovalGate)

    @model_validator(mode="after")
    def _schedule_fits_the_window(self) -> DatabaseMaintenanceTask:
        window, time_box = self.settings.window, self.settings.time_box
        if self.weekday is not None and window.start is not None and window.end is not None:
            # Both are wall-clock times of the config's time zone: any week, read in UTC, compares them.
            monday = dt.date(2024, 1, 1)
            scheduled = dt.datetime.combine(
                monday + dt.timedelta(days=self.weekday.number), self.time, dt.UTC
            )
            if not window.is_open(scheduled, "UTC"):
                days = ", ".join(day.label for day in window.days)
                raise _fault_at(
                    "settings.window",
                    f"{days} {window.start:%H:%M}–{window.end:%H:%M} must contain the scheduled run "
                    f"({self.weekday.label} {self.time:%H:%M}, the task's weekday and time), or every "
                    "scheduled VACUUM is refused",
                )
        if time_box >= self.execution_timeout:
            raise _fault_at(
                "settings.time_box",
                f"({format_duration(time_box)}) must be shorter than the task's execution timeout "
                f"({self.execution_timeout_minutes} min), or Airflow kills the run before it reports",
            )
        return self


class Tasks(_Model, Mapping[str, GuideTask[Any]]):  # type: ignore[misc]
    """The guide's 16 maintenance tasks and 4 annual reviews by DAG id, each typed with its own settings
    (``cfg.tasks.database_maintenance.settings.parallelism``). Also a mapping of DAG id to task,
    in the guide's order, as the file writes it: ``cfg.tasks["log_review"]``, ``for task_id in
    cfg.tasks``, ``cfg.tasks.items()``."""

    system_health_check: GuideTask[HealthCheckConfig]
    log_review: GuideTask[LogReviewConfig]
    backup_verification: GuideTask[BackupVerificationSettings]
    security_patch_review: GuideTask[SecurityPatchReviewConfig]
    performance_analysis: GuideTask[PerformanceAnalysisConfig]
    database_maintenance: DatabaseMaintenanceTask
    disk_space_check: GuideTask[DiskSpaceConfig]
    backup_testing: GuideTask[BackupTestingConfig]
    dr_testing: GuideTask[DrTestingConfig]
    security_scan: GuideTask[SecurityScanConfig]
    capacity_planning: GuideTask[CapacityPlanningConfig]
    dependency_updates: GuideTask[DependencyUpdatesConfig]
    penetration_testing: GuideTask[PenetrationTestingConfig]
    architecture_review: GuideTask[ArchitectureReviewConfig]
    cost_optimization: GuideTask[CostOptimizationConfig]
    compliance_audit: GuideTask[ComplianceAuditConfig]
    vendor_contract_review: GuideTask[VendorContractReviewConfig]
    vendor_security_assessment: GuideTask[VendorSecurityAssessmentConfig]
    business_continuity_testing: GuideTask[BusinessContinuityTestingConfig]
    external_security_assessment: GuideTask[ExternalSecurityAssessmentConfig]

    def __getitem__(self, task_id: str) -> GuideTask[Any]:
        if task_id not in type(self).model_fields:
            raise KeyError(task_id)
        task: GuideTask[Any] = getattr(self, task_id)
        return task

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(type(self).model_fields)

    def __len__(self) -> int:
        return len(type(self).model_fields)


assert list(Tasks.model_fields) == list(GUIDE_TASKS), "Tasks must list GUIDE_TASKS, in order"


class MaintenanceConfig(_Model):
    """Everything in ``maintenance.yaml``. Build it with :func:`load_config`."""

    timezone: TimeZoneName = "UTC"
    teams: dict[NonEmpty, Team]
    tasks: Tasks
    thresholds: Thresholds
    slos: Slos
    escalation: dict[NonEmpty, EscalationLevel]
    severities: dict[NonEmpty, Severity]
    backups: Backups
    recovery_testing: RecoveryTesting
    deployment_windows: dict[NonEmpty, DeploymentPolicy]
    audit_retention: AuditRetention
    environments: dict[NonEmpty, Environment]
    contacts: dict[NonEmpty, Contact]
    on_call: OnCall
    slack: SlackSettings
    connections: Connections = Field(default_factory=Connections)
    database_backups: DatabaseBackupSettings = Field(default_factory=DatabaseBackupSettings)
    configuration_backups: ConfigurationBackupSettings = Field(default_factory=ConfigurationBackupSettings)
    file_storage_backups: FileStorageBackupSettings = Field(default_factory=FileStorageBackupSettings)
    system_image_backups: SystemImageBackupSettings = Field(default_factory=SystemImageBackupSettings)
    signoffs: SignoffsConfig = Field(default_factory=SignoffsConfig)
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    change_management: ChangeManagementConfig = Field(default_factory=ChangeManagementConfig)
    silences: list[SilenceSpec] = Field(default_factory=list)
    silence_max_duration: Duration = dt.timedelta(days=30)
    meta_monitoring: MetaMonitoringConfig = Field(default_factory=MetaMonitoringConfig)

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> MaintenanceConfig:
        """Cross-references between sections (task → team, severity → escalation, …).

        :func:`parse_config` runs the same checks on the raw data before this model exists (so
        they are reported together with field errors) and asks this one to stand down.
        """
        if not (info.context or {}).get("references_checked"):
            problems = reference_problems(self.model_dump())
            if problems:
                raise ValueError("; ".join(problems))
        self.on_call._timezone = self.timezone
        return self

    def __hash__(self) -> int:
        # Dict fields are not hashable; equal configs have equal time zones and tasks, so this
        # keeps the hash/eq contract and lets functools caches take a config as an argument.
        return hash((self.timezone, tuple(sorted(self.tasks.items()))))

    def task(self, task_id: str) -> GuideTask[Any]:
        """The guide task ``task_id`` (a DAG id), with a helpful error when unknown."""
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"{task_id!r} is not a guide task; known: {', '.join(self.tasks)}") from None

    def with_settings(self, task_id: str, **changes: Any) -> MaintenanceConfig:
        """A copy whose ``tasks.<task_id>.settings`` has ``changes`` (not validated again: for
        tests and benchmarks that adjust a loaded config)."""
        task = self.task(task_id)
        task = task.model_copy(update={"settings": task.settings.model_copy(update=changes)})
        return self.model_copy(update={"tasks": self.tasks.model_copy(update={task_id: task})})

    def team_of(self, task_id: str) -> Team:
        """The responsible team of ``task_id``."""
        return self.teams[self.task(task_id).team]

    def on_call_at(self, when: dt.datetime) -> tuple[str, str]:
        """(primary, secondary) on call at ``when``; see :meth:`OnCall.on_call_at`."""
        return self.on_call.on_call_at(when)


# --------------------------------------------------------------------------------------------
# Cross-reference checks (on raw data, so they run even when other fields are broken)
# --------------------------------------------------------------------------------------------


def _keys(data: Mapping[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    return [str(k) for k in value] if isinstance(value, Mapping) else None


def _known(keys: list[str]) -> str:
    return ", ".join(keys) if keys else "none defined"


def _check_key_set(
    data: Mapping[str, Any],
    section: str,
    required: tuple[str, ...] | Mapping[str, Any],
    *,
    exact: bool,
    what: str,
) -> list[str]:
    keys = _keys(data, section)
    if keys is None:
        return []
    problems = [f"{section}: missing {what} {name!r}" for name in required if name not in keys]
    if exact:
        problems += [
            f"{section}.{name}: not a {what} of the guide (expected {', '.join(required)})"
            for name in keys
            if name not in required
        ]
    return problems


def _check_refs(
    items: Any, section_path: str, field: str, targets: list[str] | None, target_name: str
) -> list[str]:
    """Each ``items[*][field]`` (a string or list of strings) must be a key of ``target_name``."""
    if targets is None or not isinstance(items, Mapping | list):
        return []
    entries = items.items() if isinstance(items, Mapping) else ((f"[{i}]", v) for i, v in enumerate(items))
    problems = []
    for name, item in entries:
        if not isinstance(item, Mapping):
            continue
        path = f"{section_path}{name}" if str(name).startswith("[") else f"{section_path}.{name}"
        value = item.get(field)
        values = [(f"{path}.{field}", value)] if isinstance(value, str) else []
        if isinstance(value, list):
            values = [(f"{path}.{field}[{i}]", v) for i, v in enumerate(value) if isinstance(v, str)]
        problems += [
            f"{where}: {ref!r} is not a key of {target_name} ({_known(targets)})"
            for where, ref in values
            if ref not in targets
        ]
    return problems


def _settings_of(tasks: object, task_id: str) -> Mapping[str, Any]:
    """``tasks.<task_id>.settings`` of raw data, or ``{}`` where it has another shape."""
    task = tasks.get(task_id) if isinstance(tasks, Mapping) else None
    settings = task.get("settings") if isinstance(task, Mapping) else None
    return settings if isinstance(settings, Mapping) else {}


def reference_problems(data: Mapping[str, Any]) -> list[str]:
    """Problems with which keys exist and what refers to them, as ``<key.path>: <reason>``.

    Works on raw (unvalidated) data and skips anything of the wrong shape, which field
    validation reports on its own.
    """
    problems: list[str] = []
    problems += _check_key_set(data, "tasks", tuple(GUIDE_TASKS), exact=True, what="guide task")
    tasks = data.get("tasks")
    if isinstance(tasks, Mapping):
        for task_id, spec in tasks.items():
            cadence = spec.get("cadence") if isinstance(spec, Mapping) else None
            expected = GUIDE_TASKS.get(str(task_id))
            if (
                expected
                and isinstance(cadence, str)
                and cadence in DEFAULT_TIMEOUT_MINUTES
                and cadence != expected
            ):
                problems.append(
                    f"tasks.{task_id}.cadence: the guide makes {task_id} a {expected} task, got {cadence!r}"
                )
    problems += _check_refs(tasks, "tasks", "team", _keys(data, "teams"), "teams")
    problems += _check_key_set(data, "severities", _SEVERITY_LEVELS, exact=True, what="severity level")
    problems += _check_key_set(data, "escalation", _ESCALATION_LEVELS, exact=True, what="escalation level")
    problems += _check_refs(
        data.get("severities"), "severities", "escalation", _keys(data, "escalation"), "escalation"
    )
    problems += _check_key_set(data, "environments", _REQUIRED_ENVIRONMENTS, exact=False, what="environment")
    environments = _keys(data, "environments")
    problems += _check_key_set(
        data, "deployment_windows", _REQUIRED_DEPLOYMENT_WINDOWS, exact=False, what="deployment window for"
    )
    windows = data.get("deployment_windows")
    if isinstance(windows, Mapping) and environments is not None:
        problems += [
            f"deployment_windows.{env}: {env!r} is not a key of environments ({_known(environments)})"
            for env in windows
            if str(env) not in environments
        ]
    problems += _check_refs(windows, "deployment_windows", "approvers", _keys(data, "contacts"), "contacts")
    window_keys = _keys(data, "deployment_windows")
    if isinstance(tasks, Mapping) and window_keys is not None:
        for task_id, spec in tasks.items():
            approval = spec.get("approval") if isinstance(spec, Mapping) else None
            env = approval.get("environment") if isinstance(approval, Mapping) else None
            if isinstance(env, str) and env not in window_keys:
                problems.append(
                    f"tasks.{task_id}.approval.environment: {env!r} is not a key of deployment_windows "
                    f"({_known(window_keys)})"
                )
    health = _settings_of(tasks, "system_health_check")
    problems += _check_refs(
        health.get("endpoints"),
        "tasks.system_health_check.settings.endpoints",
        "environment",
        environments,
        "environments",
    )
    return problems


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 loader minus its traps for a hand-edited file, on libyaml's parser when PyYAML has
    it (about 15 times faster than the pure-Python one: every DAG file and task parse loads this
    file).

    * ``10:30`` unquoted is *not* the base-60 integer 630 (YAML 1.1 sexagesimal): it stays a
      string, so times work quoted or not.
    * A key written twice is an error instead of the last one silently winning.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if isinstance(key, list | dict):
                continue  # unhashable keys are reported by the base class
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in {_INT, _FLOAT}]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    _INT,
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(  # type: ignore[no-untyped-call]
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_error(error: ErrorDetails) -> str:
    path = _format_loc(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        reason = "extra key not allowed"
    elif kind == "missing":
        reason = "required key missing"
    elif kind == "fault_at":
        ctx = error.get("ctx") or {}
        path, reason = f"{path}.{ctx['path']}", str(ctx["reason"])
    elif kind in {"value_error", "assertion_error"}:
        reason = str((error.get("ctx") or {}).get("error", error["msg"]))
    elif kind in {"model_type", "dict_type", "model_attributes_type"}:
        reason = f"must be a mapping of keys, got {type(error['input']).__name__}"
    else:
        reason = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_short(error['input'])}"
    return f"{path}: {reason}"


_TASK_SET_ERRORS: Final = frozenset({"missing", "extra_forbidden"})


def parse_config(data: object, source: str = "<config>") -> MaintenanceConfig:
    """Validate already-loaded YAML data; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(source, [f"(top level): must be a mapping of settings, the file is {what}"])
    problems: list[str] = []
    try:
        config = MaintenanceConfig.model_validate(data, context={"references_checked": True})
    except ValidationError as exc:
        problems += [
            _format_error(e)
            for e in exc.errors(include_url=False)
            # reference_problems names a missing or unknown task in the guide's words
            if not (len(e["loc"]) == 2 and e["loc"][0] == "tasks" and e["type"] in _TASK_SET_ERRORS)
        ]
        config = None
    problems += reference_problems(data)
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


_CacheKey = tuple[int, int, int]
_cache: dict[Path, tuple[_CacheKey, MaintenanceConfig]] = {}
_cache_lock = threading.Lock()


def _default_path() -> Path:
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None) -> MaintenanceConfig:
    """Load and validate the maintenance config.

    :param path: the YAML file; default ``$SANVI_OPS_CONFIG`` or the shipped
        ``include/config/maintenance.yaml``.
    :raises ConfigError: the file is missing, not YAML, or not a valid config; the message lists
        every problem as ``<key.path>: <reason>``.

    The result is cached per (path, mtime, size): DAG files call this at every parse, and an
    edited file is picked up at the next parse.
    """
    file = Path(path) if path is not None else _default_path()
    file = file.expanduser().resolve()
    try:
        stat = file.stat()
    except FileNotFoundError:
        hint = f" (from ${ENV_VAR})" if path is None and os.environ.get(ENV_VAR) else ""
        raise ConfigError(str(file), [f"(file): not found{hint}"]) from None
    key: _CacheKey = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
    with _cache_lock:
        cached = _cache.get(file)
    if cached is not None and cached[0] == key:
        return cached[1]
    config = _read(file)
    with _cache_lock:
        _cache[file] = (key, config)
    return config


def _read(file: Path) -> MaintenanceConfig:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [f"(file): cannot be read: {exc}"]) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(file), [f"{where}: not valid YAML: {problem}"]) from None
    return parse_config(data, str(file))


def clear_config_cache() -> None:
    """Forget cached configs (tests that rewrite a file within one mtime tick)."""
    with _cache_lock:
        _cache.clear()
