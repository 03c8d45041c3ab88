"""The monthly summary: a car's month in one message (pushed on the 1st, or on demand under /history)."""

from __future__ import annotations

from bot.chat import prefs
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import KWH, _num, _per_100, car_label, joined
from bot.chat.texts.history import CHARGES
from bot.history import local
from bot.months import MonthFigures, change
from bot.store import StoredVehicle

MONTH_TITLE = Msg("📅 <b>{car}: {month}</b>")
MONTH_SO_FAR = Msg("📅 <b>{car}: {month} so far</b>")
MONTH_NOTHING = Msg(
    "Nothing recorded: no drive, no charge, no mileage reading. I record them while the car is linked."
)
MONTH_KM = Msg("🛣 Driven: {km}")
MONTH_KM_SINCE = Msg("🛣 Driven: {km} since {day} (I began reading the car then)")
MONTH_KM_UNKNOWN = Msg("🛣 Driven: not known")
MONTH_CHARGES = Msg("🔌 {charges}: ≈ {kwh}")
MONTH_CHARGES_NO_KWH = Msg("🔌 {charges}, kWh not known")
MONTH_NO_CHARGE = Msg("🔌 No charge recorded")
MONTH_COST = Msg("💶 Cost: ≈ {cost}")
MONTH_COST_SOME = Msg("💶 Cost: ≈ {cost} for {priced} of {charges}")
MONTH_NO_TARIFF = Msg("💶 Cost: no tariff set (set yours in /settings)")
MONTH_NO_PRICE = Msg("💶 Cost: not known, no charge was at home (💶 under /history gives one its price)")
MONTH_CONSUMPTION = Msg("📈 Consumption: {value}")
MONTH_CONSUMPTION_UNKNOWN = Msg("📈 Consumption: not known")
MONTH_AGAINST = Msg("{value} ({change} against {month})")
MONTH_CHART_KM = Msg("{unit} driven per day")
MONTH_CHART_KWH = Msg("kWh charged per week (estimated)")
MONTH_NOW_BUTTON = Msg("📅 This month")
MONTH_LAST_BUTTON = Msg("📅 Last month")


def _against(value: str, now: float | None, before: MonthFigures | None, then: float | None) -> str:
    """`value` with its change against the month before, when both are known ("+12 %")."""
    percent = None if before is None else change(now, then)
    if percent is None or before is None:
        return value
    shown = round(percent)
    sign = "+" if shown > 0 else "−" if shown < 0 else "±"
    month = prefs.month_name(before.month.first)
    return MONTH_AGAINST.format(value=value, change=f"{sign}{prefs.number(abs(shown))} %", month=month)


def month_summary(
    car: StoredVehicle,
    this: MonthFigures,
    before: MonthFigures | None,
    *,
    so_far: bool = False,
    tariff: bool = False,
) -> str:
    """The month's lines; `before`: the month before, to compare with (None: no comparison, as for a month
    so far); `tariff`: the owner has one. A month with nothing recorded says so instead of zeros."""
    title = MONTH_SO_FAR if so_far else MONTH_TITLE
    lines = [title.format(car=car_label(car), month=prefs.month_year(this.month.first))]
    if not this.has_data:
        return joined([*lines, MONTH_NOTHING])
    if this.km is None:
        lines.append(MONTH_KM_UNKNOWN)
    elif this.km_since is not None:
        day = prefs.day_month(local(this.km_since, prefs.current().zone))
        lines.append(MONTH_KM_SINCE.format(km=prefs.distance(this.km), day=day))
    else:
        full_before = before if before is not None and before.km_since is None else None
        km = _against(prefs.distance(this.km), this.km, full_before, None if before is None else before.km)
        lines.append(MONTH_KM.format(km=km))
    if not this.charges:
        lines.append(MONTH_NO_CHARGE)
    elif this.kwh is None:
        lines.append(MONTH_CHARGES_NO_KWH.format(charges=CHARGES.format(this.charges)))
    else:
        kwh = _against(_num(this.kwh, KWH), this.kwh, before, None if before is None else before.kwh)
        lines.append(MONTH_CHARGES.format(charges=CHARGES.format(this.charges), kwh=kwh))
    if this.charges and this.cost is None:
        lines.append(MONTH_NO_PRICE if tariff else MONTH_NO_TARIFF)
    elif this.cost is not None and this.priced < this.charges:  # the rest away, without a price
        cost = prefs.money(this.cost.amount, this.cost.currency)
        lines.append(
            MONTH_COST_SOME.format(cost=cost, priced=this.priced, charges=CHARGES.format(this.charges))
        )
    elif this.cost is not None:
        then = None if before is None or before.cost is None else before.cost.amount
        cost = _against(prefs.money(this.cost.amount, this.cost.currency), this.cost.amount, before, then)
        lines.append(MONTH_COST.format(cost=cost))
    if this.kwh_per_100_km is None:
        lines.append(MONTH_CONSUMPTION_UNKNOWN)
    else:
        then = None if before is None else before.kwh_per_100_km
        value = _against(_per_100(this.kwh_per_100_km), this.kwh_per_100_km, before, then)
        lines.append(MONTH_CONSUMPTION.format(value=value))
    return joined(lines)
