"""/history: the charging history, its chart and CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from html import escape

from bot.chat import prefs
from bot.chat.i18n import Msg, Plural
from bot.chat.texts.formatting import KWH, _duration, _km, _num, _words, car_label, joined
from bot.costs import Cost, Costing, MonthCost, charge_cost
from bot.history import BMW_HISTORY, ChargeSession, local
from bot.store import StoredVehicle

# Charging history
HISTORY_NONE = Msg(
    "📊 No charge of {car} recorded yet. I note every charge I see from now on, and /history shows them."
)
HISTORY_TITLE = Msg("📊 <b>Charging history of {car}</b>")
HISTORY_ESTIMATED = Msg("≈ kWh estimated from the share of the battery charged and its usable capacity.")
HISTORY_MEASURED = Msg("kWh without ≈ are BMW's own figures: the energy drawn from the grid.")
HISTORY_BMW_FAILED = Msg(
    "⚠️ BMW's own charging history could not be fetched, so only the charges I recorded show: {reason}"
)
HISTORY_OWNERS_CALLS = Msg(
    "it takes one of its owner's daily calls to BMW, so it shows here for an hour after they open /history."
)
HISTORY_CHART_CAPTION = Msg("📊 {car}, last {days} days: ≈ {kwh} kWh in {charges}")
HISTORY_CHART_CAPTION_MEASURED = Msg("📊 {car}, last {days} days: {kwh} kWh in {charges}")
HISTORY_CHART_ENERGY = Msg("Energy charged per day, last {days} days (kWh, estimated)")
HISTORY_CHART_ENERGY_MEASURED = Msg("Energy charged per day, last {days} days (kWh, measured by BMW)")
HISTORY_CHART_DISTANCE = Msg("Distance driven per day, last {days} days ({unit})")
HISTORY_CHART_DRIVEN = Msg("🚗 {distance} driven in {drives}")
HISTORY_CHART_CAPTION_DRIVES = Msg("📊 {car}, last {days} days: 🚗 {distance} driven in {drives}")
HISTORY_CHART_SOC = Msg("State of charge during the last charge")
HISTORY_CHART_NO_SOC = Msg("The car did not report its state of charge for this charge.")
HISTORY_CSV_BUTTON = Msg("📄 CSV of all charges")
HISTORY_CSV_BUTTON_DRIVES = Msg("📄 CSV of all charges and drives")
HISTORY_AWAY = Msg("📍 away, no price")
HISTORY_MONTH = Msg("💶 {month}: ≈ {cost} for {charges}")
HISTORY_MONTH_SOME = Msg("💶 {month}: ≈ {cost} for {priced} of {charges}")
HISTORY_COSTS = Msg(
    "≈ costs: each charge's kWh at your home tariff (/settings) when it charged. A charge away from home "
    "has none until you give it its price with the 💶 button below."
)
HISTORY_COSTS_HOME = Msg("≈ costs: each charge's kWh at your home tariff (/settings) when it charged.")
HISTORY_COSTS_SHARED = Msg(
    "≈ costs: each charge's kWh at its owner's home tariff when it charged, or the price they gave it."
)
HISTORY_NO_TARIFF = Msg("💶 Set your home tariff in /settings, and I show what each charge cost.")
PRICE_BUTTON = Msg("💶 {number}: price")
PRICE_ASK = Msg(
    "💶 What did a kWh cost at the charge of {when}, in {currency}? Send a number like <code>{price}</code>, "
    "or /cancel."
)
PRICE_UNCLEAR = Msg(
    "I could not read “{typed}” as a price. Send a number like <code>{price}</code>, or /cancel."
)
EXAMPLE_AWAY_PRICE = 0.59  # a public charger's price per kWh, the example a price prompt shows
PRICE_SET = Msg("💶 Saved: that charge cost ≈ {cost}. /history shows it.")
PRICE_TIMEOUT = Msg("I stopped waiting for the charge's price; /history shows your charges.")
HISTORY_CSV_CAPTION = Msg("📄 {car}: all {charges} recorded")
HISTORY_CSV_CAPTION_DRIVES = Msg("📄 {car}: all {charges} and {drives} recorded")
SESSION_ENDINGS = {
    "full": Msg("🔋 full"),
    "complete": Msg("🔋 complete"),
    "early": Msg("🔌 stopped early"),
    "stopped": Msg("🔌 stopped"),
    "interrupted": Msg("⚠️ interrupted"),
    "error": Msg("⚠️ error"),
}


def when_charged(session: ChargeSession) -> str:
    started = local(session.started_at)
    return f"{prefs.day_month(started)} {prefs.clock(started)}"


def money(cost: Cost) -> str:
    return prefs.money(cost.amount, cost.currency)


def _money(costs: list[Cost]) -> str:
    return " + ".join(map(money, costs))


def _cost(session: ChargeSession, costing: Costing | None) -> str:
    """ " · ≈ 1,20 €", " · away, no price", or nothing without a tariff or kWh."""
    if costing is None:
        return ""
    if costing.needs_price(session):
        return f" · {HISTORY_AWAY}"
    cost = charge_cost(session, costing)
    return "" if cost is None else f" · ≈ {money(cost)}"


def _session(session: ChargeSession, costing: Costing | None = None, number: int | None = None) -> str:
    when = when_charged(session)
    if number is not None:  # the charge a 💶 button names
        when = f"{number}. {when}"
    start, end = session.soc_start, session.soc_end
    socs = "–" if start is None or end is None else f"{start:.0f}–{end:.0f} %"
    about = "" if session.source == BMW_HISTORY else "≈"  # BMW's own history measured it
    kwh = f"– {KWH}" if session.energy_kwh is None else f"{about}{_num(session.energy_kwh, KWH)}"
    line = f"{when} · {socs} · {kwh} · {_duration(round(session.seconds / 60))}"
    if session.ended:  # BMW's history does not say how a charge ended
        line = f"{line} · {SESSION_ENDINGS.get(session.ended, escape(_words(session.ended)))}"
    return line + _cost(session, costing)


def _month(month: MonthCost) -> str:
    when = prefs.month(datetime.combine(month.month, time(12), prefs.current().zone))
    if month.priced == month.charges:
        return HISTORY_MONTH.format(month=when, cost=_money(month.costs), charges=_charges(month.charges))
    return HISTORY_MONTH_SOME.format(
        month=when, cost=_money(month.costs), priced=month.priced, charges=_charges(month.charges)
    )


def history(
    car: StoredVehicle,
    sessions: list[ChargeSession],
    bmw_failed: str | None = None,
    costing: Costing | None = None,
    months: Sequence[MonthCost] = (),
    numbered: Sequence[float] = (),
    shared: bool = False,
) -> str:
    """The last sessions, newest first, one line each, and where their kWh come from; `bmw_failed`: why BMW's
    own history is missing from them (a CarData error's message). With the owner's `costing`: each one's cost,
    the cost of `months`, and the charges whose start is in `numbered` numbered for their price buttons;
    `shared`: read by a person the car is shared with (the tariff and prices are its owner's)."""
    lines = [HISTORY_TITLE.format(car=car_label(car))]
    for session in sessions:
        number = numbered.index(session.started_at) + 1 if session.started_at in numbered else None
        lines.append(_session(session, costing, number))
    priced = [month for month in months if month.costs]
    lines += ["", *map(_month, priced)] if priced else []
    lines.append("")
    measured = [session.source == BMW_HISTORY for session in sessions]
    if not all(measured):
        lines.append(HISTORY_ESTIMATED)
    if any(measured):
        lines.append(HISTORY_MEASURED)
    if costing is not None and not costing.tariffs and not shared:  # their tariff would not count
        lines.append(HISTORY_NO_TARIFF)
    if numbered:  # the 💶 buttons are there
        lines.append(HISTORY_COSTS)
    elif priced:
        lines.append(HISTORY_COSTS_SHARED if shared else HISTORY_COSTS_HOME)
    if bmw_failed:
        lines.append(HISTORY_BMW_FAILED.format(reason=escape(bmw_failed)))
    return joined(lines)


def price_ask(session: ChargeSession) -> str:
    price = prefs.number(EXAMPLE_AWAY_PRICE, 2)
    return PRICE_ASK.format(when=when_charged(session), currency=prefs.currency(), price=price)


def price_unclear(typed: str) -> str:
    return PRICE_UNCLEAR.format(typed=escape(typed[:64]), price=prefs.number(EXAMPLE_AWAY_PRICE, 2))


def history_none(car: StoredVehicle, bmw_failed: str | None = None) -> str:
    text = HISTORY_NONE.format(car=car_label(car))
    if not bmw_failed:
        return text
    return joined([text, "", HISTORY_BMW_FAILED.format(reason=escape(bmw_failed))])


CHARGES = Plural("{n} charge", "{n} charges")
DRIVES = Plural("{n} drive", "{n} drives")


def _charges(count: int) -> str:
    return CHARGES.format(count)


def history_caption(
    car: StoredVehicle, days: int, kwh: float, count: int, measured: bool, km: float = 0.0, drives: int = 0
) -> str:
    """The chart's caption: its total is "≈" unless BMW measured every charge in it; the distance driven
    in its `drives`, when there are any (alone when nothing was charged: no "0 kWh in 0 charges")."""
    if drives and not count:
        return HISTORY_CHART_CAPTION_DRIVES.format(
            car=car_label(car), days=days, distance=_km(km), drives=DRIVES.format(drives)
        )
    caption = HISTORY_CHART_CAPTION_MEASURED if measured else HISTORY_CHART_CAPTION
    text = caption.format(car=car_label(car), days=days, kwh=prefs.number(kwh, 1), charges=_charges(count))
    if not drives:
        return text
    return joined([text, HISTORY_CHART_DRIVEN.format(distance=_km(km), drives=DRIVES.format(drives))])


def history_csv_caption(car: StoredVehicle, count: int, drives: int = 0) -> str:
    if drives:
        return HISTORY_CSV_CAPTION_DRIVES.format(
            car=car_label(car), charges=_charges(count), drives=DRIVES.format(drives)
        )
    return HISTORY_CSV_CAPTION.format(car=car_label(car), charges=_charges(count))
