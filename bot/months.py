"""A month of one car in one message (issue 21, point 6): the month's bounds in the owner's zone, its figures
from what the bot recorded, and the change against the month before. Pure: no I/O, no Telegram.

Distance comes from the drives the bot recorded (CarData cars, bot/drives.py) or, for a car it polls (i
Remote), from a mileage mark per month: the first and the last mileage the watcher read in that month in the
owner's zone. A month's km then run from its first mark to the next month's first, so each km counts in one
month only; when the bot began reading the car after the month began, the figure says from when
(`km_since`). kWh are the recorded charges' (estimated, bot/history.py), consumption the drives' whose energy
is known; what was not recorded is None, never 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from bot.costs import Cost, total
from bot.drives import Drive
from bot.history import ChargeSession, local, per_day

SUMMARY_DAY, SUMMARY_HOUR = 1, 9  # the summary of last month: on the 1st at 9:00, the owner's time
# A mark this much after the month's start (or a next month's first mark this much after its end) began
# or ended elsewhere: the bot was not reading the car then.
MARK_SLACK_SECONDS = 24 * 3600.0
_KEY = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __str__(self) -> str:
        """The store's and the alert memory's key: 2026-11."""
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def parse(cls, key: str) -> Month | None:
        found = _KEY.match(key)
        if found is None or not 1 <= int(found.group(2)) <= 12:
            return None
        return cls(int(found.group(1)), int(found.group(2)))

    @classmethod
    def of(cls, moment: float, zone: tzinfo | None) -> Month:
        day = local(moment, zone)
        return cls(day.year, day.month)

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def previous(self) -> Month:
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)

    @property
    def next(self) -> Month:
        return Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)

    def bounds(self, zone: tzinfo) -> tuple[float, float]:
        """Epoch seconds of its first local midnight and of the next month's (the end, excluded): zoneinfo
        gives each midnight its own offset, so a month with a DST change is an hour shorter or longer."""
        return _midnight(self.first, zone), _midnight(self.next.first, zone)

    def days(self) -> list[date]:
        count = (self.next.first - self.first).days
        return [self.first + timedelta(days=n) for n in range(count)]


def _midnight(day: date, zone: tzinfo) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def summary_due(now: float, zone: tzinfo | None) -> Month | None:
    """The month whose summary is due at `now`: last month's, on the 1st from 9:00 until that day ends in
    `zone` (None: the server's); None at any other time (a bot down all that day sends none: /history shows
    it on demand)."""
    moment = local(now, zone)
    if moment.day != SUMMARY_DAY or moment.hour < SUMMARY_HOUR:
        return None
    return Month(moment.year, moment.month).previous


def change(now: float | None, before: float | None) -> float | None:
    """`now` against `before` in percent (+12.0: 12 % more); None when either is unknown or before was 0."""
    if now is None or before is None or before == 0:
        return None
    return (now - before) * 100 / before


@dataclass(frozen=True)
class MileageMark:
    """The first and last mileage (km) the bot read of a car in one month (`month`: Month's key)."""

    month: str
    first_at: float
    first_km: float
    last_at: float
    last_km: float


@dataclass(frozen=True)
class MonthFigures:
    """A car's month as far as the bot recorded it; None: not known."""

    month: Month
    km: float | None
    km_since: float | None  # the km count from then (epoch seconds), not from the month's start
    charges: int
    kwh: float | None  # estimated (bot/history.py)
    kwh_per_100_km: float | None
    cost: Cost | None = None  # of the `priced` charges, in the main currency
    priced: int = 0
    km_per_day: list[tuple[date, float]] = field(default_factory=list)  # empty: no drives recorded
    kwh_per_week: list[tuple[date, float]] = field(
        default_factory=list
    )  # a week by its first day in the month

    @property
    def has_data(self) -> bool:
        return self.km is not None or self.charges > 0


def figures(
    month: Month,
    zone: tzinfo,
    sessions: Iterable[ChargeSession],
    drives: Iterable[Drive] = (),
    marks: Sequence[MileageMark] = (),
    cost_of: Callable[[ChargeSession], Cost | None] | None = None,
) -> MonthFigures:
    """The month's figures: charges and drives counted in the month they ended, in `zone`; `cost_of`: what
    a charge cost (None: not known, as without a tariff or away from home without a price)."""
    start, end = month.bounds(zone)
    charged = [s for s in sessions if start <= s.ended_at < end]
    driven = [d for d in drives if start <= d.ended_at < end]
    known = [s.energy_kwh for s in charged if s.energy_kwh is not None]
    measured = [d for d in driven if d.energy_kwh is not None]
    measured_km = sum(d.km for d in measured)
    consumption = None
    if measured_km > 0:
        consumption = sum(d.energy_kwh or 0.0 for d in measured) / measured_km * 100
    km, since = (sum(d.km for d in driven), None) if driven else _marked_km(month, marks, start, end)
    costs = [] if cost_of is None else [cost_of(s) for s in charged]
    totals = total(costs)  # another currency than the main one is rare (a charge priced abroad)
    return MonthFigures(
        month=month,
        km=km,
        km_since=since,
        charges=len(charged),
        kwh=round(sum(known), 2) if known else None,
        kwh_per_100_km=consumption,
        cost=totals[0] if totals else None,
        priced=sum(cost is not None for cost in costs),
        km_per_day=per_day(((d.ended_at, d.km) for d in driven), month.days(), zone) if driven else [],
        kwh_per_week=_per_week(month, zone, ((s.ended_at, s.energy_kwh or 0.0) for s in charged)),
    )


def _marked_km(
    month: Month, marks: Sequence[MileageMark], start: float, end: float
) -> tuple[float | None, float | None]:
    by_month = {mark.month: mark for mark in marks}
    first, following = by_month.get(str(month)), by_month.get(str(month.next))
    if first is None:
        return None, None
    last = first.last_km
    if following is not None and following.first_at - end <= MARK_SLACK_SECONDS:
        last = following.first_km
    since = first.first_at if first.first_at - start > MARK_SLACK_SECONDS else None
    return max(0.0, last - first.first_km), since


def _per_week(month: Month, zone: tzinfo, amounts: Iterable[tuple[float, float]]) -> list[tuple[date, float]]:
    """Totals per week (Monday to Sunday), each week named by its first day within the month."""
    weeks: dict[date, float] = {}
    for day, amount in per_day(amounts, month.days(), zone):
        week = max(month.first, day - timedelta(days=day.weekday()))
        weeks[week] = weeks.get(week, 0.0) + amount
    return list(weeks.items())
