"""The Maintenance page: what the results store says, at a glance, as one HTML page.

The Airflow plugin in ``plugins/sanvi_ops_plugin.py`` is thin: it authenticates the user with
Airflow's own API dependencies, asks the auth manager which DAGs that user may read, and calls
:func:`load_page` and :func:`render_page` here. Everything the page shows comes from the results
store (``include/sanvi_ops/core/sql/store/``) and the config (``include/config/maintenance.yaml``):

* the calendar as the guide's four tables (daily, weekly, monthly, quarterly), its annual reviews, plus the backup jobs,
  each task with its schedule, next run (the same timetable the scheduler walks,
  :mod:`sanvi_ops.core.calendar`), last run and last status (the worst result of its newest stored run);
* open incidents with their age and P-level, and the active silences (table ``silences``, created by
  migration 011: until it exists the page says so and offers no form);
* SLO status: the latest Performance Analysis results for availability, p95 response time and error
  rate, the daily health probe's slowest endpoint, and recovery time (latest recovery test and the
  incidents resolved in the last 90 days) against the guide's "< 1 hour";
* every measured recovery time (``recovery_tests``, every kind) against the 1-hour objective, as an
  inline SVG chart (no script, no CDN); the newest tests' phases (download, extract, …,
  ``recovery_tests.details.phases``) as stacked bars, and capacity planning's latest RTO
  forecast (check ``rto_forecast``: the month the restore will cross the objective);
* the latest notifications, and the ones not delivered to Slack (pending or given up).

The package, one module per job:

* :mod:`~sanvi_ops.page.model`: what the page shows (:class:`PageData` and its rows);
* :mod:`~sanvi_ops.page.queries`: reading it from the store, in one short read-only transaction;
* :mod:`~sanvi_ops.page.actions`: the page's only writes, adding and lifting UI silences, and
  acknowledging and resolving incidents;
* :mod:`~sanvi_ops.page.chart`: the recovery-time chart and the phase bars, as geometry;
* :mod:`~sanvi_ops.page.render` and ``templates/``: the HTML, Jinja2 templates with autoescape
  (nothing is escaped by hand), the SVG inline (no script, no CDN).
"""

from __future__ import annotations

from sanvi_ops.page.actions import (
    MAX_PATTERN_CHARS,
    SilencesUnavailable,
    StoreUnavailable,
    acknowledge_incident,
    add_silence,
    lift_silence,
    resolve_incident,
)
from sanvi_ops.page.model import (
    CADENCE_TITLES,
    CalendarRow,
    IncidentRow,
    NotificationRow,
    PageData,
    RecoveryPoint,
    SignoffRow,
    SilenceRow,
    SloRow,
)
from sanvi_ops.page.queries import all_dag_ids, load_page, page_without_store
from sanvi_ops.page.render import recovery_chart_svg, render_page, render_unavailable

__all__ = [
    "CADENCE_TITLES",
    "MAX_PATTERN_CHARS",
    "CalendarRow",
    "IncidentRow",
    "NotificationRow",
    "PageData",
    "RecoveryPoint",
    "SignoffRow",
    "SilenceRow",
    "SilencesUnavailable",
    "SloRow",
    "StoreUnavailable",
    "acknowledge_incident",
    "add_silence",
    "all_dag_ids",
    "lift_silence",
    "load_page",
    "page_without_store",
    "recovery_chart_svg",
    "render_page",
    "render_unavailable",
    "resolve_incident",
]
