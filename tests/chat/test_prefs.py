"""A user's prefs from what they chose and their Telegram language, and the quiet-hours window."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.chat import prefs
from bot.store import UserSettings


@pytest.mark.parametrize(
    ("language_code", "language", "locale", "miles", "clock12"),
    [
        ("en-US", "en", "en_US", True, True),
        ("en-GB", "en", "en_GB", True, False),
        ("en", "en", "en", False, False),
        ("de-AT", "de", "de_AT", False, False),
        ("fr-FR", "en", "en", False, False),  # no French texts: English, in English numbers
        ("not a tag", "en", "en", False, False),
        (None, "en", "en", False, False),
    ],
)
def test_defaults_follow_the_telegram_language(language_code, language, locale, miles, clock12):
    shown = prefs.resolve(UserSettings(), language_code)
    assert (shown.language, shown.locale, shown.miles, shown.clock12) == (language, locale, miles, clock12)
    assert not shown.zone_chosen and shown.quiet is None


def test_choices_win_over_the_telegram_language_and_a_push_uses_the_stored_one():
    chosen = UserSettings(language_code="en-US", units="km", clock=24, language="de", time_zone="Asia/Tokyo")
    shown = prefs.resolve(chosen)  # no update: the stored language_code
    assert (shown.language, shown.locale, shown.miles, shown.clock12) == ("de", "de", False, False)
    assert shown.zone == ZoneInfo("Asia/Tokyo") and shown.zone_chosen


def test_german_numbers_and_an_american_clock():
    moment = datetime(2024, 3, 5, 13, 7, tzinfo=UTC)
    with prefs.using(prefs.resolve(UserSettings(time_zone="Europe/Berlin"), "de")):
        assert (prefs.number(12345.67, 1), prefs.distance(41268)) == ("12.345,7", "41.268 km")
        assert (prefs.clock(moment), prefs.date(moment)) == ("14:07", "5. März 2024")
    with prefs.using(prefs.resolve(UserSettings(time_zone="America/New_York"), "en-US")):
        assert prefs.distance(100) == "62 mi" and prefs.distance(100, miles=63) == "63 mi"
        assert prefs.clock(moment).replace("\u202f", " ") == "8:07 AM"
        assert prefs.per_100(10.0, "kWh") == "16.1 kWh/100 mi"


def _quiet(start: int, end: int) -> prefs.Prefs:
    return prefs.Prefs(zone=ZoneInfo("UTC"), quiet=(start, end))


@given(st.integers(0, 1439), st.integers(0, 1439), st.integers(0, 1439))
def test_quiet_hours_are_the_window_from_start_to_end_across_midnight_too(start, end, minute):
    moment = datetime(2024, 1, 1, minute // 60, minute % 60, tzinfo=UTC)
    inside = {(start + step) % 1440 for step in range((end - start) % 1440)}
    assert _quiet(start, end).is_quiet(moment) == (minute in inside)


def test_no_quiet_hours_unless_switched_on():
    night = datetime(2024, 1, 1, 2, 0, tzinfo=UTC)
    assert not prefs.Prefs(zone=ZoneInfo("UTC")).is_quiet(night)
    assert prefs.resolve(UserSettings(quiet=True, time_zone="UTC")).is_quiet(night)  # 22:00–07:00


def test_only_names_of_the_zone_database_are_zones():
    assert prefs.zone_named(" europe/berlin ") == ZoneInfo("Europe/Berlin")
    for typed in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "", "Europe/"):
        assert prefs.zone_named(typed) is None
