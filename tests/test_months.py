"""The month arithmetic of the monthly summary (bot/months.py): bounds in the owner's zone across DST, the
figures of a month from charges, drives and mileage marks, and the change against the month before."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from bot.drives import Drive
from bot.history import ChargeSession
from bot.months import MileageMark, Month, change, figures, summary_due

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _at(zone: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=zone).timestamp()


def _charge(ended: float, kwh: float | None) -> ChargeSession:
    return ChargeSession(1, "V", ended - 3600, ended, 20, 80, kwh, "full", None, None, None, "iremote")


def _drive(ended: float, km: float, kwh: float | None) -> Drive:
    return Drive(1, "V", ended - 7200, ended, km, 80, 60, kwh, None, None, None, None)


def test_month_bounds_are_local_midnights_across_dst() -> None:
    march = Month(2026, 3)  # Berlin leaves winter time on 29 March: the month has 743 hours
    start, end = march.bounds(BERLIN)
    assert start == _at(BERLIN, 2026, 3, 1) and end == _at(BERLIN, 2026, 4, 1)
    assert end - start == (31 * 24 - 1) * 3600
    october = Month(2026, 10)  # back to winter time: 745 hours
    assert october.bounds(BERLIN)[1] - october.bounds(BERLIN)[0] == (31 * 24 + 1) * 3600
    assert Month(2026, 1).previous == Month(2025, 12) and Month(2025, 12).next == Month(2026, 1)
    assert Month.of(_at(NEW_YORK, 2026, 3, 31, 23, 30), NEW_YORK) == Month(2026, 3)
    assert Month.of(_at(NEW_YORK, 2026, 3, 31, 23, 30), BERLIN) == Month(2026, 4)
    assert Month.parse(str(Month(2026, 3))) == Month(2026, 3) and Month.parse("nonsense") is None
    assert Month(2026, 2).days() == [date(2026, 2, d) for d in range(1, 29)]


def test_the_summary_is_due_from_nine_on_the_first_local_that_day_only() -> None:
    assert summary_due(_at(BERLIN, 2026, 11, 1, 8, 59), BERLIN) is None
    assert summary_due(_at(BERLIN, 2026, 11, 1, 9, 0), BERLIN) == Month(2026, 10)
    assert summary_due(_at(BERLIN, 2026, 11, 1, 23, 59), BERLIN) == Month(2026, 10)
    assert summary_due(_at(BERLIN, 2026, 11, 2, 9, 0), BERLIN) is None
    # 9:00 in New York is 15:00 in Berlin: each owner's own morning.
    assert summary_due(_at(BERLIN, 2026, 1, 1, 9, 0), NEW_YORK) is None
    assert summary_due(_at(NEW_YORK, 2026, 1, 1, 9, 0), NEW_YORK) == Month(2025, 12)


def test_change_against_the_month_before() -> None:
    assert change(112.0, 100.0) == 12.0
    assert change(50.0, 100.0) == -50.0
    assert change(10.0, 0.0) is None and change(None, 10.0) is None and change(10.0, None) is None


def test_figures_from_drives_and_charges_of_that_month_only() -> None:
    month = Month(2026, 11)
    inside = _at(BERLIN, 2026, 11, 30, 23, 30)  # 22:30 UTC: November in Berlin
    after = _at(BERLIN, 2026, 12, 1, 0, 30)
    found = figures(
        month,
        BERLIN,
        sessions=[_charge(inside, 10.0), _charge(_at(BERLIN, 2026, 11, 2, 12), 5.5), _charge(after, 99.0)],
        drives=[
            _drive(inside, 40.0, 6.0),
            _drive(_at(BERLIN, 2026, 11, 3, 8), 60.0, None),
            _drive(after, 7, 1),
        ],
    )
    assert found.km == 100.0 and found.charges == 2 and found.kwh == 15.5
    assert found.kwh_per_100_km == 15.0  # only drives whose energy is known: 6 kWh over 40 km
    km_days = dict(found.km_per_day)
    assert len(km_days) == 30 and km_days[date(2026, 11, 30)] == 40.0 and km_days[date(2026, 11, 3)] == 60.0
    weeks = dict(found.kwh_per_week)
    # 1 November 2026 is a Sunday: a week of one day, then Monday to Sunday.
    assert list(weeks)[:2] == [date(2026, 11, 1), date(2026, 11, 2)] and len(weeks) == 6
    assert weeks[date(2026, 11, 2)] == 5.5 and weeks[date(2026, 11, 30)] == 10.0
    assert found.has_data


def test_figures_from_mileage_marks_and_nothing_known() -> None:
    month = Month(2026, 11)
    marks = [
        MileageMark(
            "2026-11", _at(BERLIN, 2026, 11, 1, 0, 10), 1000.0, _at(BERLIN, 2026, 11, 30, 20), 1480.0
        ),
        MileageMark(
            "2026-12", _at(BERLIN, 2026, 12, 1, 0, 5), 1500.0, _at(BERLIN, 2026, 12, 1, 0, 5), 1500.0
        ),
    ]
    found = figures(month, BERLIN, sessions=[], marks=marks)
    assert found.km == 500.0 and found.km_since is None  # to the next month's first mark
    assert found.km_per_day == [] and found.kwh_per_100_km is None
    so_far = figures(Month(2026, 12), BERLIN, sessions=[], marks=marks)
    assert so_far.km == 0.0
    late = [MileageMark("2026-11", _at(BERLIN, 2026, 11, 15, 12), 1000.0, _at(BERLIN, 2026, 11, 20), 1200.0)]
    partial = figures(month, BERLIN, sessions=[], marks=late)
    assert partial.km == 200.0 and partial.km_since == late[0].first_at  # began mid-month: said so
    nothing = figures(Month(2026, 10), BERLIN, sessions=[], marks=marks)
    assert nothing.km is None and nothing.charges == 0 and nothing.kwh is None and not nothing.has_data
