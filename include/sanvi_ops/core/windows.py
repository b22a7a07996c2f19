"""Deployment and maintenance windows: whether one is open, when it closes, and how to say it.

The config holds a window as data (:class:`sanvi_ops.core.config.DeploymentWindow`: ``anytime``,
or ``days`` from ``start`` to ``end``, read in the config's ``timezone``; an ``end`` earlier than
``start`` runs past midnight). :meth:`DeploymentWindow.in_zone
<sanvi_ops.core.config.DeploymentWindow.in_zone>` turns it into a :class:`Window`, and this is the
one place that reads it: the config's validation, the run policy
(:mod:`sanvi_ops.core.run_policy`), the VACUUM's time box and every text a person sees
(``Tue & Thu 22:00–02:00 UTC``) all go through it.

Pure: no Airflow, no database, the clock is an argument.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

#: ``date.weekday()`` order, Monday 0 … Sunday 6.
_DAY_NAMES: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _and(items: Sequence[str]) -> str:
    """``a``, ``a & b``, ``a, b & c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} & {items[-1]}"


@dataclass(frozen=True)
class Window:
    """A weekly window in one time zone: ``days`` (``date.weekday()`` numbers) from ``start`` to
    ``end``, or always open (``anytime``)."""

    timezone: str
    anytime: bool = False
    days: tuple[int, ...] = ()
    start: dt.time | None = None
    end: dt.time | None = None

    def __post_init__(self) -> None:
        """The rules of a window (the config's validation runs them too, so the messages use its
        keys)."""
        ZoneInfo(self.timezone)  # an unknown zone fails here, not at the first question
        if self.anytime:
            if self.days or self.start is not None or self.end is not None:
                raise ValueError("anytime: true takes no days/start/end")
            return
        if not self.days or self.start is None or self.end is None:
            raise ValueError("needs anytime: true, or days, start and end")
        if self.start == self.end:
            raise ValueError("start and end must differ")
        if not all(0 <= d <= 6 for d in self.days):
            raise ValueError(f"days must be date.weekday() numbers 0-6, got {self.days}")

    def _local(self, at: dt.datetime) -> dt.datetime:
        if at.tzinfo is None:
            raise ValueError("the time must be timezone-aware")
        return at.astimezone(ZoneInfo(self.timezone))

    def is_open(self, at: dt.datetime) -> bool:
        """Whether ``at`` (timezone-aware) falls inside the window."""
        local = self._local(at)
        return self.is_open_on(local.weekday(), local.time().replace(tzinfo=None))

    def is_open_on(self, weekday: int, at: dt.time) -> bool:
        """Whether a weekly slot, ``weekday`` (``date.weekday()``) at ``at`` in the window's time
        zone, falls inside it: e.g. a weekly schedule that must run inside its window."""
        if self.anytime:
            return True
        assert self.start is not None and self.end is not None  # __post_init__
        previous = (weekday - 1) % 7
        if self.start < self.end:
            return weekday in self.days and self.start <= at < self.end
        return (weekday in self.days and at >= self.start) or (previous in self.days and at < self.end)

    def closes_at(self, at: dt.datetime) -> dt.datetime | None:
        """When the window open at ``at`` closes; ``None`` when it is not open or never closes."""
        if self.anytime or not self.is_open(at):
            return None
        assert self.start is not None and self.end is not None
        local = self._local(at)
        end_day = local.date()
        if self.start > self.end and local.time().replace(tzinfo=None) >= self.start:
            end_day += dt.timedelta(days=1)  # opened this evening, closes after midnight
        return dt.datetime.combine(end_day, self.end, tzinfo=ZoneInfo(self.timezone))

    def clock(self, at: dt.datetime) -> str:
        """``Friday 10:15 UTC``: ``at`` as read in the window's time zone (for "it is …")."""
        return f"{self._local(at):%A %H:%M} {self.timezone}"

    def __str__(self) -> str:
        """``Tue & Thu 22:00–02:00 UTC`` / ``any time``: the one text of a window."""
        if self.anytime:
            return "any time"
        assert self.start is not None and self.end is not None
        days = _and([_DAY_NAMES[d] for d in sorted(self.days)])
        return f"{days} {self.start:%H:%M}–{self.end:%H:%M} {self.timezone}"
