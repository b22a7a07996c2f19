"""The Maintenance page's HTML (sanvi_ops.page.render and its Jinja2 templates), without a store.

Text from the store, the config and the request reaches the page in every field: each is escaped by
the templates' autoescape, in element text and in attribute values alike, so none can add an
element or an attribute, and the page has no ``<script>`` at all.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from sanvi_ops.page import (
    CADENCE_TITLES,
    CalendarRow,
    IncidentRow,
    NotificationRow,
    PageData,
    RecoveryPoint,
    SignoffRow,
    SilenceRow,
    SloRow,
    render_page,
    render_unavailable,
)

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
#: Breaks out of an attribute value (``"``) or element text (``<``), and starts a script.
HOSTILE = '"><script>alert("x")</script><img src=x onerror=alert(1)> & \'q\''
#: Every element and attribute the page itself writes; a hostile value must add none.
TAGS = {
    *"html head meta title style body h1 h2 h3 p b div nav a table colgroup col tr th td span".split(),
    *"form input button label select option br code svg rect line text polyline circle".split(),
}
ATTRS = {
    *"lang charset name content class role aria-label href id data-cadence data-dag style target".split(),
    *"title method action type value required maxlength placeholder min max step xmlns viewbox".split(),
    *"width height x y x1 x2 y1 y2 cx cy r fill stroke stroke-width stroke-opacity stroke-dasharray".split(),
    *"fill-opacity text-anchor font-size transform points data-incident data-severity".split(),
}


class _Page(HTMLParser):
    """Every tag and attribute of a page, and its text, with the character references resolved."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.values: list[str] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs |= {name for name, _ in attrs}
        self.values += [value or "" for _, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _hostile_page() -> PageData:
    """A page where every text the store or the config could hold is ``HOSTILE``."""
    h = HOSTILE
    phases = ({"name": h, "seconds": 12.0, "mb_per_s": 100.0, "in_rto": True},)
    return PageData(
        now=NOW,
        timezone="Europe/Berlin",
        calendar={
            key: [CalendarRow(h, h, h, h, NOW, NOW, h, status, h, 3) for status in ("error", None)]
            for key in CADENCE_TITLES
        },
        incidents=[
            IncidentRow(1, h, h, "P1", h, NOW, NOW, dt.timedelta(hours=3)),
            IncidentRow(2, h, h, "P2", h, NOW, NOW, dt.timedelta(hours=1), h, NOW, h),  # acknowledged
        ],
        acks_available=True,
        silences=[SilenceRow(7, h, h, h, h, "ui", NOW, NOW + dt.timedelta(hours=2))],
        silences_available=True,
        signoffs=[SignoffRow(3, h, h, h, h, NOW, NOW, "/dags/" + h)],
        slos=[SloRow(h, h, h, "missed", h, NOW)],
        recovery=[
            RecoveryPoint(
                h,
                h,
                h,
                NOW - dt.timedelta(days=3),
                1200.0,
                "ok",
                phases,
                {h: {"status": "ok", "rto_seconds": 30.0}},
            )
        ],
        rto_forecast=("warning", h, NOW),
        notifications=[NotificationRow(9, h, h, h, h + "\nsecond line", NOW, "given up", 3, h)],
        undelivered=[NotificationRow(9, h, h, h, h, NOW, "pending", 1, h)],
        problems=[h],
        dag_ids=[h],
    )


def test_hostile_text_in_every_field_is_escaped_in_text_and_attributes() -> None:
    """A silence reason, a check summary, a DAG id (…) holding ``<script>`` and ``"`` are shown as
    text: they add no element and no attribute, and read back exactly as stored."""
    html = render_page(
        _hostile_page(),
        user=HOSTILE,
        csrf_token=HOSTILE,
        may_silence=True,
        message=HOSTILE,
        error=HOSTILE,
        ack_dag_ids=[HOSTILE],
    )
    assert "<script" not in html and "<img" not in html and 'alert("x")' not in html
    page = _Page(html)
    assert page.tags <= TAGS, page.tags - TAGS
    assert page.attrs <= ATTRS, page.attrs - ATTRS
    text = "".join(page.text)
    # Read back whole: the silence reason, the check summary, the user, the message, a DAG id ...
    assert text.count(HOSTILE) >= 20
    # ... and in attributes: a DAG's row and link, the form token, the silence form's DAG choice.
    assert page.values.count(HOSTILE) >= 4
    assert f"../dags/{HOSTILE}" in page.values and f"/dags/{HOSTILE}" in page.values


def test_the_unavailable_panel_escapes_the_reason_the_user_and_the_link() -> None:
    html = render_unavailable(HOSTILE, user=HOSTILE, retry_url=HOSTILE)
    assert "<script" not in html and "<img" not in html
    page = _Page(html)
    assert page.tags <= TAGS and page.attrs <= ATTRS
    assert "".join(page.text).count(HOSTILE) == 2 and page.values.count(HOSTILE) == 1


@pytest.mark.parametrize("path", ["include", "plugins"])
def test_no_html_is_escaped_by_hand(path: str) -> None:
    """HTML is written by the page's templates only (autoescape): no ``html.escape`` elsewhere and
    no value marked safe by hand. (Slack's mrkdwn escaping in core/notify is not HTML.)"""
    offenders = [
        f"{file.relative_to(REPO)}:{n}"
        for file in sorted((REPO / path).rglob("*.py"))
        for n, line in enumerate(file.read_text().splitlines(), 1)
        if re.search(r"\bhtml\.escape\(|\bMarkup\(|\|\s*safe\b|import html\b", line)
    ]
    assert offenders == []


def test_the_templates_ship_inside_include() -> None:
    """The image copies include/ (Dockerfile): the templates must live there, next to the code."""
    from sanvi_ops.page.render import TEMPLATES, environment

    assert TEMPLATES.is_relative_to(REPO / "include")
    assert {"page.html.j2", "unavailable.html.j2"} <= set(environment().list_templates())
