"""Business Continuity Testing's settings (``tasks.business_continuity_testing.settings``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from sanvi_ops.core.config import AnnualReviewConfig, Duration, NonEmpty

GameDayScope = Literal["full_system", "dr_site_activation"]
_ALL_SCOPES: tuple[GameDayScope, ...] = ("full_system", "dr_site_activation")


class BusinessContinuityTestingConfig(AnnualReviewConfig):
    """The annual business continuity test: the year's drills and recovery times from the
    results store, then a game day (after approval) that runs the DR Testing DAG once per
    ``game_day_scopes`` entry, in order, and records how each went."""

    #: ``recovery_tests`` kinds that must have run in the year (the weekly restore test, the
    #: monthly database drill, the quarterly full-system and the semi-annual DR-site drills).
    required_kinds: list[NonEmpty] = Field(
        default_factory=lambda: ["restore_test", "dr_database", "dr_full_system", "dr_site_activation"]
    )
    #: The game day: each scope is a run of ``dr_dag_id`` with ``{"scope": <scope>}``.
    game_day_scopes: list[GameDayScope] = Field(default_factory=lambda: list(_ALL_SCOPES), min_length=1)
    dr_dag_id: NonEmpty = "dr_testing"
    #: Who approves the game day: the approvers of this environment's deployment window.
    approval_environment: NonEmpty = "production"
    #: How long the approval may take; unanswered, no drill runs.
    approval_deadline: Duration = dt.timedelta(days=3)
    #: How long one triggered drill may take before the game day reports it as not finished.
    drill_timeout_minutes: int = Field(default=360, gt=0)
