"""The backup chain's "largest gap" reads forwards: dates when it spans midnight (issue 12)."""

from __future__ import annotations

import datetime as dt

import pytest

from sanvi_ops.core.backups import BackupEntry, backup_id_for
from sanvi_ops.core.results import Status
from sanvi_ops.tasks.backup_verification.verify import _chain_check, gap_span

pytestmark = pytest.mark.unit

UTC = dt.UTC


def _entry(finished: dt.datetime, kind: str = "full") -> BackupEntry:
    backup_id = backup_id_for(finished - dt.timedelta(minutes=5), kind)
    manifest = {"finished_at": finished.isoformat(), "chain": [backup_id]}
    return BackupEntry(backup_id, kind, finished - dt.timedelta(minutes=5), {}, manifest)


def test_gap_span_names_the_dates_only_across_midnight() -> None:
    same = gap_span(dt.datetime(2026, 12, 3, 8, 49, tzinfo=UTC), dt.datetime(2026, 12, 3, 9, 39, tzinfo=UTC))
    assert same == "08:49–09:39 UTC"
    across = gap_span(
        dt.datetime(2026, 12, 2, 8, 49, tzinfo=UTC), dt.datetime(2026, 12, 3, 8, 39, tzinfo=UTC)
    )
    assert across == "2 Dec 08:49 → 3 Dec 08:39 UTC"


def test_a_day_long_gap_reads_forwards_in_the_summary() -> None:
    """The newest backup finished 08:49 yesterday and none since: the gap runs to now, 08:39."""
    now = dt.datetime(2026, 12, 3, 8, 39, tzinfo=UTC)
    last = dt.datetime(2026, 12, 2, 8, 49, tzinfo=UTC)
    result = _chain_check(
        [_entry(last)], now=now, since=now - dt.timedelta(days=8), warning_min=75, critical_min=120
    )
    assert "largest gap 1430 min (2 Dec 08:49 → 3 Dec 08:39 UTC)" in result.summary
    assert "08:49–08:39" not in result.summary


def test_a_chain_younger_than_the_window_starts_at_its_first_backup() -> None:
    """A new system's first day: one full backup 50 min ago and nothing before it (the listing
    reaches back 8 days) is a short history, a warning that says so, not a day-long RPO gap."""
    now = dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    first = now - dt.timedelta(minutes=50)
    result = _chain_check(
        [_entry(first)], now=now, since=now - dt.timedelta(days=8), warning_min=75, critical_min=120
    )
    assert result.status == Status.WARNING
    assert result.observed == 50.0
    assert "no backup before 03 Dec 09:10 UTC: the chain is younger than 24 h" in result.summary


def test_an_empty_day_is_still_a_day_long_gap() -> None:
    """No backup at all in or before the window: the whole day is unprotected (critical)."""
    now = dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    result = _chain_check([], now=now, since=now - dt.timedelta(days=8), warning_min=75, critical_min=120)
    assert result.status == Status.CRITICAL and result.observed == 1440.0
