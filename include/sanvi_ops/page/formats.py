"""How the page writes times and durations (plain text; the templates escape it)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def minutes(seconds: float) -> str:
    """``45 s``, ``22 min``, ``2.5 h``: the objective reads "60 min", a 70-minute drill "70 min"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def age(delta: dt.timedelta) -> str:
    """``3 d 4 h``, ``3 h 5 min``, ``12 min``."""
    s = max(0, int(delta.total_seconds()))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    mins = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def when(value: dt.datetime | None, tz: str) -> str:
    """``2026-03-01 14:05`` in the config's time zone; ``—`` for nothing."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"
