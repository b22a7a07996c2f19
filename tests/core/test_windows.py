"""The one reading of a deployment or maintenance window (sanvi_ops.core.windows): open, closes
at, and its text. Pure logic; the config's own window tests are in test_config.py."""

from __future__ import annotations

import datetime as dt

import pytest

from sanvi_ops.core.config import DeploymentWindow, load_config
from sanvi_ops.core.windows import Window

pytestmark = pytest.mark.unit

UTC = dt.UTC


def test_closes_at_and_text():
    w = DeploymentWindow(days=["wednesday"], start="03:00", end="06:00").in_zone("UTC")
    wed = dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    assert w.closes_at(wed) == dt.datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    assert w.closes_at(wed.replace(hour=7)) is None
    assert str(w) == "Wed 03:00–06:00 UTC"
    night = DeploymentWindow(days=["tuesday"], start="23:00", end="02:00").in_zone("UTC")
    tue = dt.datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    assert night.closes_at(tue) == dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    assert night.closes_at(tue + dt.timedelta(hours=1)) == dt.datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    berlin = DeploymentWindow(days=["wednesday"], start="03:00", end="06:00").in_zone("Europe/Berlin")
    closes = berlin.closes_at(dt.datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert closes is not None and closes.astimezone(UTC).hour == 5
    assert DeploymentWindow(anytime=True).in_zone("UTC").closes_at(wed) is None


def test_the_one_text_of_every_shipped_window():
    cfg = load_config()
    texts = {env: str(p.regular.in_zone(cfg.timezone)) for env, p in cfg.deployment_windows.items()}
    assert texts == {
        "development": "any time",
        "staging": "Mon, Tue, Wed & Thu 10:00–16:00 UTC",
        "production": "Tue & Thu 22:00–02:00 UTC",  # the guide's own words
    }
    assert str(cfg.tasks.database_maintenance.settings.window.in_zone(cfg.timezone)) == "Wed 03:00–06:00 UTC"
    monday = Window("UTC", days=(0,), start=dt.time(9), end=dt.time(10))
    assert monday.clock(dt.datetime(2026, 11, 27, 10, 15, tzinfo=UTC)) == "Friday 10:15 UTC"


def test_open_past_midnight_and_in_the_window_time_zone():
    production = load_config().deployment_windows["production"].regular
    assert production.is_open(dt.datetime(2026, 11, 25, 1, 30, tzinfo=UTC), "UTC")  # Tue night
    assert not production.is_open(dt.datetime(2026, 11, 26, 1, 30, tzinfo=UTC), "UTC")  # Wed night
    ny = production.in_zone("America/New_York")
    assert ny.is_open(dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC))  # Tue 23:00 in New York
    assert ny.is_open(dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC)) == production.is_open(
        dt.datetime(2026, 11, 25, 4, 0, tzinfo=UTC), "America/New_York"
    )


def test_a_weekly_slot_inside_or_outside():
    """What a weekly schedule checks against its window (the VACUUM's Wednesday 04:00)."""
    vacuum = DeploymentWindow(days=["wednesday"], start="03:00", end="06:00").in_zone("UTC")
    assert vacuum.is_open_on(2, dt.time(4)) and not vacuum.is_open_on(2, dt.time(6))
    night = load_config().deployment_windows["production"].regular.in_zone("UTC")
    assert night.is_open_on(2, dt.time(1, 59)) and not night.is_open_on(3, dt.time(1, 59))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        Window("UTC", anytime=True).clock(dt.datetime(2026, 11, 25))
    with pytest.raises(ValueError, match="needs anytime: true, or days, start and end"):
        Window("UTC", days=(2,))
    with pytest.raises(ValueError, match="start and end must differ"):
        Window("UTC", days=(2,), start=dt.time(3), end=dt.time(3))
    with pytest.raises(ValueError, match="anytime: true takes no days"):
        Window("UTC", anytime=True, days=(2,))
    with pytest.raises(Exception, match="Nowhere"):
        Window("Nowhere/City", anytime=True)
