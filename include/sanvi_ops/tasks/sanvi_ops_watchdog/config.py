"""The watchdog's settings (``meta_monitoring.watchdog``; the watchdog is not a guide task, so it has
no calendar entry).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from sanvi_ops.core.config import NonEmpty, _Model


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
