"""The cost of charges (bot/costs.py): the tariff in force when a car charged, split at a night window's
edges, nothing for a charge away from home unless it has its own price, totals per currency."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.capabilities import BackendName
from bot.costs import (
    HOME_RADIUS_M,
    ChargePrice,
    Cost,
    Place,
    Tariff,
    charge_cost,
    costing,
    home_of,
    metres,
    total,
)
from bot.history import BMW_HISTORY, ChargeSession

BERLIN = ZoneInfo("Europe/Berlin")
HOME = Place(48.17754, 11.55635)
AWAY = Place(48.22, 11.60)  # about 5.7 km away


def _at(hour: int, minute: int = 0, day: int = 7) -> float:
    return datetime(2026, 12, day, hour, minute, tzinfo=BERLIN).timestamp()


def _charge(
    start: float, end: float, kwh: float | None = 10.0, place: Place | None = HOME, source: str = "iremote"
) -> ChargeSession:
    lat, lon = (place.lat, place.lon) if place else (None, None)
    return ChargeSession(1, "VIN", start, end, 20, 80, kwh, "full", None, lat, lon, source)


DAY = Tariff(valid_from=_at(0, day=1), price=0.30, currency="EUR")
WITH_NIGHT = Tariff(_at(0, day=1), 0.30, "EUR", night_start=22 * 60, night_end=6 * 60, night_price=0.20)


def test_home_is_where_most_charges_are_and_a_few_metres_apart_are_one_place():
    near = Place(HOME.lat + 0.001, HOME.lon)  # about 110 m north
    assert metres(HOME, near) < HOME_RADIUS_M < metres(HOME, AWAY)
    sessions = [_charge(_at(h), _at(h, 30), place=p) for h, p in ((1, HOME), (2, near), (3, AWAY), (4, None))]
    home = home_of(sessions)
    assert home is not None and max(metres(home, HOME), metres(home, near)) < HOME_RADIUS_M
    moved = [_charge(_at(h), _at(h, 30), place=AWAY) for h in (5, 6, 7)]  # most charges now elsewhere
    assert metres(home_of(sessions + moved), AWAY) < 100
    assert home_of([_charge(_at(1), _at(2), place=None)]) is None


def test_a_charge_costs_its_kwh_at_the_tariff_in_force_when_it_charged():
    later = Tariff(valid_from=_at(12), price=0.50, currency="EUR")
    sessions = [_charge(_at(9), _at(10)), _charge(_at(13), _at(14))]
    costs = costing(sessions, [DAY, later], BERLIN)
    assert charge_cost(sessions[0], costs) == Cost(pytest.approx(3.0), "EUR")
    assert charge_cost(sessions[1], costs) == Cost(pytest.approx(5.0), "EUR")
    # The first tariff prices the charges before it (none was set then); a cleared one ends costing.
    before = _charge(_at(9, day=1) - 86400, _at(10, day=1) - 86400)
    assert charge_cost(before, costing(sessions, [later], BERLIN)) == Cost(pytest.approx(5.0), "EUR")
    cleared = Tariff(valid_from=_at(12), price=None, currency="EUR")
    assert charge_cost(sessions[1], costing(sessions, [DAY, cleared], BERLIN)) is None
    assert charge_cost(sessions[0], costing(sessions, [], BERLIN)) is None


def test_a_charge_across_the_night_windows_edge_is_split_by_time():
    # 21:00–23:00: half before 22:00 at 0.30, half after at 0.20.
    evening = _charge(_at(21), _at(23))
    assert charge_cost(evening, costing([evening], [WITH_NIGHT], BERLIN)).amount == pytest.approx(2.5)
    # 05:00–07:00 the next morning: the window that began the evening before ends at 06:00.
    morning = _charge(_at(5), _at(7))
    assert charge_cost(morning, costing([morning], [WITH_NIGHT], BERLIN)).amount == pytest.approx(2.5)
    # All night, across midnight: all at the night price; in the owner's zone, not UTC.
    night = _charge(_at(23), _at(5, day=8))
    assert charge_cost(night, costing([night], [WITH_NIGHT], BERLIN)).amount == pytest.approx(2.0)
    # 21:00–23:00 in Berlin is 20:00–22:00 UTC: none of it in a UTC night.
    assert charge_cost(evening, costing([evening], [WITH_NIGHT], UTC)).amount == pytest.approx(3.0)


def test_away_charges_have_no_price_unless_the_owner_gives_one():
    home = [_charge(_at(h), _at(h, 30)) for h in (1, 2)]
    away = _charge(_at(9), _at(10), place=AWAY)
    unknown = _charge(_at(11), _at(12), place=None)
    costs = costing([*home, away, unknown], [DAY], BERLIN)
    assert costs.needs_price(away) and costs.needs_price(unknown) and not costs.needs_price(home[0])
    assert charge_cost(away, costs) is None and charge_cost(unknown, costs) is None
    priced = costing([*home, away], [DAY], BERLIN, [ChargePrice(away.started_at, 0.59, "EUR")])
    assert charge_cost(away, priced) == Cost(pytest.approx(5.9), "EUR") and not priced.needs_price(away)
    # No position anywhere (no home known): every charge is a home one.
    alone = _charge(_at(9), _at(10), place=None)
    assert charge_cost(alone, costing([alone], [DAY], BERLIN)) == Cost(pytest.approx(3.0), "EUR")


@pytest.mark.parametrize("source", [BackendName.IREMOTE, BackendName.CARDATA, BMW_HISTORY])
def test_charges_of_both_backends_and_bmws_history_get_costs(source: str):
    session = _charge(_at(9), _at(10), kwh=7.5, source=source)
    assert charge_cost(session, costing([session], [DAY], BERLIN)) == Cost(pytest.approx(2.25), "EUR")
    unknown_kwh = _charge(_at(9), _at(10), kwh=None, source=source)
    assert charge_cost(unknown_kwh, costing([unknown_kwh], [DAY], BERLIN)) is None


def test_totals_are_per_currency_and_skip_unknown_costs():
    costs = [Cost(1.5, "EUR"), None, Cost(2.0, "EUR"), Cost(1.0, "CHF")]
    assert total(costs) == [Cost(3.5, "EUR"), Cost(1.0, "CHF")]
    assert total([None]) == []
