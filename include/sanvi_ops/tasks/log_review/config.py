"""The Log Review's settings (``tasks.log_review.settings``).

Validated with the rest of ``include/config/maintenance.yaml`` by :mod:`sanvi_ops.core.config`,
which assembles the per-task models into the whole file's.
"""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from sanvi_ops.core.config import (
    Duration,
    NonEmpty,
    Threshold,
    _Model,
)


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
