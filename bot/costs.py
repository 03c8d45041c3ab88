"""What charges cost: each charge's kWh at the owner's home tariff in force when it charged, an estimate.

A tariff is a price per kWh from a moment on (`valid_from`), optionally with a cheaper night window (minutes
after midnight in the owner's zone) and its own price; a later tariff never rewrites older charges, and the
first one the owner sets applies to the charges before it too (there was none before it). A tariff without a
price ends costing from its moment on (the owner cleared it). A charge across a window's edge is split by
time, its kWh spread evenly over it. Home is where the car most often charges: the position with the most
recorded charges within HOME_RADIUS_M of it. A charge farther away has no price unless the owner gives it one
(`prices`); a charge without a position counts as home while the car has no home yet, else it is unknown and
treated as away. No Telegram and no SQLite here (docs/where-to-change.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo

from bot.history import BMW_HISTORY, ChargeSession, local

HOME_RADIUS_M = 300.0
_EARTH_RADIUS_M = 6_371_000.0
_GRID_DECIMALS = 3  # degrees to 3 decimals: cells of about 110 m by 75 m in central Europe


@dataclass(frozen=True)
class Tariff:
    """The owner's home tariff from `valid_from` (epoch seconds) on; `price` None: cleared."""

    valid_from: float
    price: float | None
    currency: str  # ISO 4217, from the owner's locale when they set it
    night_start: int | None = None  # minutes after midnight, in the owner's zone
    night_end: int | None = None
    night_price: float | None = None

    @property
    def night(self) -> tuple[int, int, float] | None:
        if self.night_start is None or self.night_end is None or self.night_price is None:
            return None
        return self.night_start, self.night_end, self.night_price


@dataclass(frozen=True)
class ChargePrice:
    """A price per kWh the owner gave one charge (by its start), e.g. at a public charger."""

    started_at: float
    price: float
    currency: str


@dataclass(frozen=True)
class Cost:
    amount: float
    currency: str


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float


def metres(a: Place, b: Place) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(h))


def _place(session: ChargeSession) -> Place | None:
    return None if session.lat is None or session.lon is None else Place(session.lat, session.lon)


def home_of(sessions: Iterable[ChargeSession]) -> Place | None:
    """Where most charges with a position lie within HOME_RADIUS_M of (the newest such place on a tie); None
    without any position. Positions are counted on a grid of about 100 m (3 decimals), so years of charges
    at a handful of places compare a handful of cells, not every pair of charges."""
    cells: dict[Place, tuple[int, int]] = {}  # a cell -> its charges, the newest one's order
    for order, session in enumerate(sorted(sessions, key=lambda s: s.started_at)):
        place = _place(session)
        if place is not None:
            cell = Place(round(place.lat, _GRID_DECIMALS), round(place.lon, _GRID_DECIMALS))
            cells[cell] = (cells.get(cell, (0, 0))[0] + 1, order)
    best: tuple[int, int] | None = None
    home = None
    for cell, (_, newest) in cells.items():
        score = (sum(n for other, (n, _) in cells.items() if metres(cell, other) <= HOME_RADIUS_M), newest)
        if best is None or score > best:
            best, home = score, cell
    return home


def in_force(tariffs: Sequence[Tariff], moment: float) -> Tariff | None:
    """The tariff in force at `moment`: the last one from before it, else the first (none before it)."""
    ordered = sorted(tariffs, key=lambda t: t.valid_from)
    earlier = [t for t in ordered if t.valid_from <= moment]
    return earlier[-1] if earlier else (ordered[0] if ordered else None)


def night_seconds(start: float, end: float, window: tuple[int, int], zone: tzinfo) -> float:
    """How much of [start, end] (epoch seconds) lies in the daily window (minutes after midnight in `zone`;
    one spanning midnight runs into the next day)."""
    first, last = window
    total = 0.0
    day = local(start, zone).date() - timedelta(days=1)
    while day <= local(end, zone).date():
        opens = datetime.combine(day, time(first // 60, first % 60), zone)
        closes = datetime.combine(day, time(last // 60, last % 60), zone)
        if closes <= opens:
            closes += timedelta(days=1)
        total += max(0.0, min(end, closes.timestamp()) - max(start, opens.timestamp()))
        day += timedelta(days=1)
    return total


def tariff_cost(session: ChargeSession, tariff: Tariff, zone: tzinfo) -> Cost | None:
    """The session's kWh at `tariff`, split by time between its night window and the rest."""
    if session.energy_kwh is None or tariff.price is None:
        return None
    night = tariff.night
    if night is None:
        return Cost(session.energy_kwh * tariff.price, tariff.currency)
    start, end, night_price = night
    if session.seconds > 0:
        share = night_seconds(session.started_at, session.ended_at, (start, end), zone) / session.seconds
    else:  # a charge seen only at its end: priced at that moment
        share = night_seconds(session.ended_at - 1, session.ended_at, (start, end), zone)
    price = share * night_price + (1 - share) * tariff.price
    return Cost(session.energy_kwh * price, tariff.currency)


@dataclass(frozen=True)
class Costing:
    """What a car's charges cost: the owner's tariffs, the car's home, the owner's zone (night windows) and
    the prices the owner gave single charges (by their start)."""

    tariffs: Sequence[Tariff]
    home: Place | None
    zone: tzinfo
    prices: Mapping[float, ChargePrice] = field(default_factory=dict)

    def at_home(self, session: ChargeSession) -> bool:
        place = _place(session)
        if self.home is None:
            return True
        if place is None:  # BMW's own history never gives one: priced as home, where most charges are
            return session.source == BMW_HISTORY
        return metres(place, self.home) <= HOME_RADIUS_M

    def cost(self, session: ChargeSession) -> Cost | None:
        return charge_cost(session, self)

    def needs_price(self, session: ChargeSession) -> bool:
        """An away charge with kWh and no price of its own: the owner may give it one."""
        return (
            session.energy_kwh is not None
            and not self.at_home(session)
            and session.started_at not in self.prices
        )


def costing(
    sessions: Iterable[ChargeSession],
    tariffs: Sequence[Tariff],
    zone: tzinfo,
    prices: Iterable[ChargePrice] = (),
) -> Costing:
    """The costing of one car, its home found among its `sessions` (all of them, not only those shown)."""
    return Costing(tariffs, home_of(sessions), zone, {price.started_at: price for price in prices})


def charge_cost(session: ChargeSession, costing: Costing) -> Cost | None:
    """The estimated cost of one charge; None when it has no kWh, is away without a price of its own, or no
    tariff was in force."""
    own = costing.prices.get(session.started_at)
    if own is not None:
        return None if session.energy_kwh is None else Cost(session.energy_kwh * own.price, own.currency)
    if not costing.at_home(session):
        return None
    tariff = in_force(costing.tariffs, session.started_at)
    return None if tariff is None else tariff_cost(session, tariff, costing.zone)


def total(costs: Iterable[Cost | None]) -> list[Cost]:
    """The sum of the known costs, one per currency (most often one), largest first."""
    sums: dict[str, float] = {}
    for cost in costs:
        if cost is not None:
            sums[cost.currency] = sums.get(cost.currency, 0.0) + cost.amount
    return sorted((Cost(amount, currency) for currency, amount in sums.items()), key=lambda c: -c.amount)


@dataclass(frozen=True)
class MonthCost:
    """What a month's charges cost (by the day each ended, in the owner's zone); `priced` of `charges`."""

    month: date  # its first day
    costs: list[Cost]  # one per currency (`total`)
    priced: int
    charges: int


def per_month(sessions: Iterable[ChargeSession], costing: Costing) -> list[MonthCost]:
    """The cost of each month the sessions fall in, newest first."""
    months: dict[date, list[Cost | None]] = {}
    for session in sessions:
        month = local(session.ended_at, costing.zone).date().replace(day=1)
        months.setdefault(month, []).append(charge_cost(session, costing))
    return [
        MonthCost(month, total(costs), sum(cost is not None for cost in costs), len(costs))
        for month, costs in sorted(months.items(), reverse=True)
    ]
