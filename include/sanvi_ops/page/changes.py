"""The Maintenance page's "Changes" section: the change records of the last 90 days (table
``change_records``, store migration 020; :mod:`sanvi_ops.core.change_records`).

Each row: the change type (standard / normal / emergency), the DAG and run, who requested it, the
window it was held to, the run's verified status, and for an emergency change its
post-implementation review: due date and state (``pending``, ``late``, ``done``, ``timed_out``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from sanvi_ops.core.change_records import pir_state

#: How far back the section looks, and how many rows it shows at most.
WINDOW: Final = dt.timedelta(days=90)
LIMIT: Final = 50


@dataclass(frozen=True)
class ChangeRow:
    """One change record as the page shows it."""

    dag_id: str
    run_id: str
    change_type: str
    requested_by: str
    reason: str
    window: str
    in_window: bool
    ended_at: dt.datetime
    status: str
    url: str
    pir_due_at: dt.datetime | None
    #: ``not required``, ``pending``, ``late``, ``done`` or ``timed_out``.
    pir_state: str

    @property
    def run_url(self) -> str | None:
        """The link to the run: Airflow paths and http(s) only (no ``javascript:``)."""
        return self.url if self.url.startswith(("/", "http://", "https://")) else None

    @property
    def review_overdue(self) -> bool:
        return self.pir_state in ("late", "timed_out")


def load_changes(conn: Any, readable: Collection[str], now: dt.datetime) -> list[ChangeRow]:
    """The newest change records of the DAGs the user may read (one query)."""
    rows = conn.execute(
        """
        SELECT dag_id, run_id, change_type, requested_by, reason, change_window, in_window, ended_at,
               status, url, pir_due_at, pir_outcome
        FROM change_records WHERE ended_at >= %s ORDER BY ended_at DESC, id DESC LIMIT %s
        """,
        [now - WINDOW, LIMIT],
    ).fetchall()
    return [
        ChangeRow(
            dag_id=r["dag_id"],
            run_id=r["run_id"],
            change_type=r["change_type"],
            requested_by=r["requested_by"],
            reason=r["reason"],
            window=r["change_window"],
            in_window=r["in_window"],
            ended_at=r["ended_at"],
            status=r["status"],
            url=r["url"],
            pir_due_at=r["pir_due_at"],
            pir_state=pir_state(r["pir_due_at"], r["pir_outcome"], now),
        )
        for r in rows
        if r["dag_id"] in readable
    ]
