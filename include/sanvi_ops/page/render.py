"""The page as HTML: Jinja2 templates (``templates/*.html.j2``) with autoescape, so every value from
the store, the config or the request is escaped on the way out and no HTML is written by hand here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final

import jinja2

from sanvi_ops.core.silences import MAX_REASON_CHARS
from sanvi_ops.page import formats
from sanvi_ops.page.actions import MAX_PATTERN_CHARS
from sanvi_ops.page.chart import phase_bars, recovery_chart
from sanvi_ops.page.model import CADENCE_TITLES, PageData, RecoveryPoint

TEMPLATES: Final = Path(__file__).resolve().parent / "templates"


@cache
def environment() -> jinja2.Environment:
    """The page's templates, compiled once per process (they ship with the code: no reload)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters.update(when=formats.when, minutes=formats.minutes, age=formats.age)
    env.globals.update(
        cadence_titles=CADENCE_TITLES,
        max_pattern_chars=MAX_PATTERN_CHARS,
        max_reason_chars=MAX_REASON_CHARS,
    )
    return env


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _glance(data: PageData) -> list[tuple[str, str, str]]:
    """(section anchor, text, status class) per item of the "is anything wrong?" line."""
    missed = sum(1 for s in data.slos if s.state == "missed")
    failing = sum(
        1 for rows in data.calendar.values() for r in rows if r.last_status in {"error", "critical"}
    )
    undelivered = data.pending_count + data.given_up_count
    items = [
        ("incidents", _plural(len(data.incidents), "open incident"), "critical" if data.incidents else "ok"),
        ("calendar", f"{_plural(failing, 'task')} failing", "error" if failing else "ok"),
        ("slos", f"{_plural(missed, 'SLO')} missed", "missed" if missed else "ok"),
        ("notifications", f"{undelivered} not delivered to Slack", "pending" if undelivered else "ok"),
        ("silences", _plural(len(data.silences), "active silence"), "warning" if data.silences else "ok"),
    ]
    if data.signoffs:
        items.append(("signoffs", f"{len(data.signoffs)} waiting for a person", "pending"))
    late = sum(1 for c in data.changes if c.review_overdue)
    if late:
        items.append(("changes", f"{_plural(late, 'change review')} overdue", "critical"))
    return items


def _latest_components(data: PageData) -> list[Any]:
    """The newest test of each kind that recorded its components (the DR drill's scopes)."""
    latest: dict[str, Any] = {}
    for point in data.recovery:  # oldest first
        if point.components:
            latest[point.kind] = point
    return sorted(latest.values(), key=lambda p: p.kind)


def render_page(
    data: PageData,
    *,
    user: str,
    csrf_token: str,
    may_silence: bool,
    airflow_base: str = "../",
    action_base: str = "",
    message: str | None = None,
    error: str | None = None,
    ack_dag_ids: Collection[str] = (),
) -> str:
    """The whole page as HTML (no script). Links to DAGs are relative to ``airflow_base``; forms post
    to ``action_base`` + ``silences`` / ``silences/<id>/lift`` with ``csrf_token``, and, for the
    incidents of the DAGs in ``ack_dag_ids`` (those the user may edit), ``incidents/<id>/ack`` and
    ``incidents/<id>/resolve``."""
    objective = data.recovery_objective_s
    return (
        environment()
        .get_template("page.html.j2")
        .render(
            data=data,
            user=user,
            csrf_token=csrf_token,
            may_silence=may_silence,
            airflow_base=airflow_base,
            action_base=action_base,
            message=message,
            error=error,
            ack_dag_ids=set(ack_dag_ids),
            glance=_glance(data),
            recovery_over=sum(1 for p in data.recovery if p.rto_seconds >= objective),
            chart=recovery_chart(
                data.recovery, objective, start=data.now - dt.timedelta(days=365), end=data.now
            ),
            phase_bars=phase_bars(data.recovery),
            component_rtos=_latest_components(data),
        )
    )


def render_unavailable(reason: str, *, user: str | None = None, retry_url: str = "./") -> str:
    """The page's own error panel, for when it cannot show anything useful (answered with HTTP
    503): the maintenance config is broken, or the results store is down for a write. ``reason``
    is shown as given (escaped): callers pass text without secrets."""
    return (
        environment()
        .get_template("unavailable.html.j2")
        .render(reason=reason, user=user, retry_url=retry_url)
    )


def recovery_chart_svg(
    points: Sequence[RecoveryPoint], objective_s: float, *, start: dt.datetime, end: dt.datetime
) -> str:
    """Measured recovery times (minutes) over time, one colour per kind, the objective as a red line:
    plain SVG text, no script, nothing fetched. Each point has a ``<title>`` (kind, date, minutes)."""
    chart = recovery_chart(points, objective_s, start=start, end=end)
    macros: Any = environment().get_template("_chart.html.j2").module
    return str(macros.recovery_chart(chart))
