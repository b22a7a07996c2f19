"""The weekly VACUUM ANALYZE's settings (``tasks.database_maintenance.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from sanvi_ops.core.config import (
    DeploymentWindow,
    Duration,
    NonEmpty,
    Threshold,
    Weekday,
    _Model,
)


class VacuumConfig(_Model):
    """The weekly VACUUM ANALYZE (``database_maintenance``): how hard and when it may work.

    ``window`` is when the run may vacuum at all (a manual run outside it is a dry run, or waits
    for the approvers of the task's ``approval``); the time box is cut to the window's end.
    ``wraparound`` grades ``age(relfrozenxid)`` as a percentage of ``autovacuum_freeze_max_age``.
    """

    parallelism: int = Field(default=2, ge=1, le=16)
    lock_timeout: Duration = dt.timedelta(seconds=5)
    statement_timeout: Duration = dt.timedelta(minutes=30)
    time_box: Duration = dt.timedelta(hours=1, minutes=45)  # inside the weekly 120 min timeout
    window: DeploymentWindow = DeploymentWindow(
        days=(Weekday.WEDNESDAY,), start=dt.time(3, 0), end=dt.time(6, 0)
    )
    pool: NonEmpty = "sanvi_db_heavy"
    wraparound: Threshold = Threshold(warning=50, critical=80, unit="%")
