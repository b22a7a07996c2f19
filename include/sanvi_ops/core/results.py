"""The one result type every check returns, and how results combine.

A :class:`CheckResult` is JSON-serialisable (it travels between tasks by XCom) and is what the
results store keeps and the notifier renders. A run's status is the worst status of its results.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of one check, ordered from best to worst by :data:`SEVERITY_ORDER`."""

    OK = "ok"
    SKIPPED = "skipped"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


#: Rank used to pick a run's overall status. ``error`` (the check itself could not run)
#: ranks above ``warning`` but below ``critical`` (a threshold for an outage was crossed).
SEVERITY_ORDER: dict[Status, int] = {
    Status.OK: 0,
    Status.SKIPPED: 1,
    Status.WARNING: 2,
    Status.ERROR: 3,
    Status.CRITICAL: 4,
}


@dataclass(frozen=True)
class CheckResult:
    """What one check found.

    :param check: stable name of the check, unique within a DAG (``postgres.connections``).
    :param status: see :class:`Status`.
    :param summary: one line a person can act on.
    :param metric: what was measured (``connections_used_pct``), empty when nothing was.
    :param observed: the measured value, ``None`` when nothing was measured.
    :param unit: unit of ``observed`` (``%``, ``ms``, ``count``).
    :param thresholds: the limits the value was held to, e.g. ``{"warning": 80, "critical": 90}``.
    :param details: anything else worth keeping (JSON-serialisable).
    :param severity: incident level (``P1`` … ``P4``) a critical result opens; ``None`` picks the
        default for the status.
    :param component: the system the check is about (``postgres``, ``redis``, ``frontend``).
    """

    check: str
    status: Status
    summary: str
    metric: str = ""
    observed: float | None = None
    unit: str = ""
    thresholds: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None
    component: str = ""

    def __post_init__(self) -> None:
        if not self.check:
            raise ValueError("CheckResult.check must not be empty")
        object.__setattr__(self, "status", Status(self.status))
        if self.observed is not None and not math.isfinite(self.observed):
            raise ValueError(f"CheckResult {self.check!r}: observed must be finite, got {self.observed!r}")
        if self.severity is not None and self.severity not in {"P1", "P2", "P3", "P4"}:
            raise ValueError(f"CheckResult {self.check!r}: severity must be P1..P4, got {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        return cls(**data)


#: What a check task returns: its results as :meth:`CheckResult.to_dict` dicts (XCom carries JSON).
ResultDicts = list[dict[str, Any]]


def worst(results: list[CheckResult]) -> Status:
    """The overall status of a run: its worst result, ``ok`` for an empty run."""
    if not results:
        return Status.OK
    return max((r.status for r in results), key=SEVERITY_ORDER.__getitem__)


#: ``details`` key of a ``skipped`` result that was skipped because an optional setting is not
#: configured: the config key path to set (``tasks.backup_testing.settings.smoke_queries``). The run summary
#: counts them ("2 optional checks not configured") and names the keys.
CONFIG_KEY: str = "config_key"


def run_status(results: list[CheckResult]) -> Status:
    """The headline of a run: its worst result among the checks that ran.

    A skipped check (an optional one not configured, one left out of a manual run) does not set
    the headline: a run whose other results are all ok is ``ok``. ``skipped`` only when nothing
    ran at all; ``ok`` for an empty run.
    """
    ran = [r for r in results if r.status is not Status.SKIPPED]
    if ran:
        return worst(ran)
    return Status.SKIPPED if results else Status.OK


def missing_setting(result: CheckResult) -> str | None:
    """The config key a ``skipped`` result asks for (:data:`CONFIG_KEY`), else ``None``."""
    if result.status is not Status.SKIPPED:
        return None
    key = result.details.get(CONFIG_KEY)
    return key if isinstance(key, str) and key else None


def grade(value: float, warning: float, critical: float, *, higher_is_worse: bool = True) -> Status:
    """Hold ``value`` to a warning and a critical threshold (strictly beyond = crossed).

    The guide writes its thresholds as "> 80 %" and "> 90 %", so a value equal to a threshold
    has not crossed it.
    """
    if higher_is_worse:
        if value > critical:
            return Status.CRITICAL
        if value > warning:
            return Status.WARNING
        return Status.OK
    if value < critical:
        return Status.CRITICAL
    if value < warning:
        return Status.WARNING
    return Status.OK
