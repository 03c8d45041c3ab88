"""/status: a car's last known status, whichever backend read it."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from bot.car_status import FIELDS, CarPosition, CarStatus, Field, Part, Unit
from bot.chat import prefs
from bot.chat.i18n import Msg, tr
from bot.chat.texts.formatting import JUST_NOW, _at, _duration, _km, _words, ago, car_label, joined
from bot.store import StoredVehicle

# Status
REFRESH_BUTTON = Msg("🔄 Refresh")
STATUS_BUTTON = Msg("🔄 Status")
LOCATION_BUTTON = Msg("📍 Location")
COPY_VIN_BUTTON = Msg("📋 VIN")
COPY_POSITION_BUTTON = Msg("📋 Position")
UPDATING = Msg("Asking {car} for its status…")
LOCATING = Msg("Asking {car} where it is…")
NO_POSITION = Msg("not shared")
IMPOSSIBLE_POSITION = Msg("unknown: BMW sent coordinates that are no place on Earth")


def where(position: CarPosition | None) -> str:
    """The car's coordinates, or why there are none."""
    if position is not None and position.usable:
        return f"{position.lat:.5f}, {position.lon:.5f}"
    return IMPOSSIBLE_POSITION if position is not None and position.impossible else NO_POSITION


def no_location(car: StoredVehicle, position: CarPosition | None) -> str:
    return f"{car_label(car)}: 📍 {where(position)}"


OPEN_NAMES = {
    "doorDriverFront": Msg("driver's door"),
    "doorDriverRear": Msg("rear left door"),
    "doorPassengerFront": Msg("passenger door"),
    "doorPassengerRear": Msg("rear right door"),
    "windowDriverFront": Msg("driver's window"),
    "windowDriverRear": Msg("rear left window"),
    "windowPassengerFront": Msg("passenger window"),
    "windowPassengerRear": Msg("rear right window"),
    "sunroof": Msg("sunroof"),
    "trunk": Msg("trunk"),
    "hood": Msg("hood"),
}
LOCK_STATES = {"SECURED": Msg("🔒 secured"), "LOCKED": Msg("🔒 locked"), "UNLOCKED": Msg("🔓 unlocked")}
STATUS_TITLE = "<b>{car}</b>"
STATUS_CHARGE = Msg("🔋 {charge} · {range} electric")
STATUS_FUEL = Msg("⛽ {range} on fuel")
STATUS_FUEL_LITRES = Msg("⛽ {range} on fuel ({litres} l)")
STATUS_CHARGING = Msg("⚡ charging")
STATUS_CHARGING_LEFT = Msg("⚡ charging, {left} left")
STATUS_PLUGGED_IN = Msg("🔌 plugged in, {state}")
STATUS_NOT_PLUGGED_IN = Msg("🔌 not plugged in")
STATUS_OTHER_LOCK = "🔐 {state}"
STATUS_OPEN = Msg("🚪 open: {items}")
STATUS_ALL_CLOSED = Msg("🚪 all doors and windows closed")
STATUS_POSITION = "📍 {where}"
STATUS_UPDATED = Msg("🕒 updated {ago}{at}")


# A car linked through BMW CarData: read-only, each part of its status as old as the car's last report of it
READ_ONLY = Msg(
    "{car} is linked through BMW CarData, which is read-only: I can show its status, not send it commands."
)
STREAM_NO_DATA = Msg(
    "No data from the car yet. If that stays so, tick the data to stream under <i>Configure data stream</i> "
    "in the MyBMW portal; older i3s send some values only after a drive."
)
CHARGING_WORDS = {
    "NOCHARGING": Msg("not charging"),
    "INITIALIZATION": Msg("getting ready to charge"),
    "CHARGINGPAUSED": Msg("charging paused"),
    "CHARGINGENDED": Msg("charging ended"),
    "CHARGINGERROR": Msg("charging error"),
}
AGE_MINUTES = Msg("{minutes} min ago")
AGE_TODAY = Msg("today {time}")
AGE_YESTERDAY = Msg("yesterday {time}")
AGE_DAY = Msg("{day} {time}")
STATUS_CHARGING_TO = Msg("⚡ charging to {target} %")
# A quiet car charging unreported (bot/car_status.py `estimated`): its level now, by its charge rate.
STATUS_ESTIMATE = Msg("📈 ≈ {charge} % now (estimate: {rate} % an hour since the charge was reported)")
STATUS_CHARGING_TO_LEFT = Msg("⚡ charging to {target} %, {left} left")
STATUS_AGES = "🕒 {ages}"
AGES_ONE = Msg("updated {age}")
PART_AGE = "{parts}: {age}"
# Each reading of the field table (bot/car_status.py FIELDS) -> its own line in /status, `{value}` in the
# field's unit; None where `status` puts it into a line of its own (charge, fuel, charging) or shows it not.
FIELD_LINES: dict[str, Msg | None] = {
    "soc": None,
    "target_soc": None,
    "electric_range_km": None,
    "fuel_litres": None,
    "fuel_percent": None,
    "mileage_km": Msg("🛣 {value}"),
}
PART_NAMES = {
    Part.CHARGE: Msg("charge"),
    Part.CHARGING: Msg("charging"),
    Part.PLUG: Msg("plug"),
    Part.DOORS: Msg("doors"),
    Part.MILEAGE: Msg("mileage"),
    Part.POSITION: Msg("position"),
}


def field_line(field: Field, value: float) -> str:
    """A reading's own line, its value in the user's locale (and distance unit)."""
    line = FIELD_LINES[field.name]
    assert line is not None, field.name  # `status` asks only for the fields that have one
    shown = _km(value) if field.unit is Unit.KM else prefs.measure(value, field.unit, digits=field.digits)
    return line.format(value=shown)


def when(moment: datetime, now: datetime | None = None) -> str:
    """How old a value is: "2 min ago" within the hour and a half, else its day and time (the user's zone)."""
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 90:
        return JUST_NOW.format()
    if seconds < 90 * 60:
        return AGE_MINUTES.format(minutes=round(seconds / 60))
    time, days = prefs.clock(moment), (prefs.in_zone(now).date() - prefs.in_zone(moment).date()).days
    if days == 0:
        return AGE_TODAY.format(time=time)
    if days == 1:
        return AGE_YESTERDAY.format(time=time)
    return AGE_DAY.format(day=prefs.day_month(moment), time=time)


def status_ages(s: CarStatus, now: datetime | None = None) -> str:
    """ "updated 2 min ago" when the car reported everything at once; else the age of each part, parts of
    one age together: "charge, plug: 2 min ago · position: yesterday 18:04"."""
    by_age: dict[str, list[str]] = {}
    for part in Part:
        if part in s.reported_at:
            by_age.setdefault(when(s.reported_at[part], now), []).append(tr(PART_NAMES[part]))
    if len(by_age) == 1:
        return AGES_ONE.format(age=next(iter(by_age)))
    return joined(
        (PART_AGE.format(parts=joined(parts, ", "), age=age) for age, parts in by_age.items()), " · "
    )


def status(car: StoredVehicle, s: CarStatus, now: datetime | None = None) -> str:
    """A car's last known status, whichever backend read it: a snapshot with its one age, a streamed status
    with each part as old as the car's report of it."""
    lines = [STATUS_TITLE.format(car=car_label(car))]
    if s.empty and not s.snapshot:
        return joined([*lines, STREAM_NO_DATA])
    charge = "–" if s.soc is None else f"{s.soc:.0f} %"
    lines.append(STATUS_CHARGE.format(charge=charge, range=_km(s.electric_range_km)))
    # The estimate only when it adds something: a whole percent other than the reported level's.
    estimate, rate = s.estimated_soc, s.charge_rate
    if estimate is not None and rate is not None and s.soc is not None and round(estimate) != round(s.soc):
        lines.append(STATUS_ESTIMATE.format(charge=f"{estimate:.0f}", rate=prefs.number(rate)))
    # Fuel only for cars with a tank (the backends leave it out for a BEV's 0 l of fuel).
    if car.drive_train != "BEV" and (s.fuel_range_km is not None or s.fuel_litres is not None):
        fuel_range = _km(s.fuel_range_km)
        if s.fuel_litres is None:
            lines.append(STATUS_FUEL.format(range=fuel_range))
        else:
            lines.append(STATUS_FUEL_LITRES.format(range=fuel_range, litres=prefs.number(s.fuel_litres, 1)))
    if s.charging:
        left = None if s.minutes_left is None else _duration(s.minutes_left)
        if s.target_soc is None:
            lines.append(STATUS_CHARGING if left is None else STATUS_CHARGING_LEFT.format(left=left))
        else:
            target = f"{s.target_soc:.0f}"
            charging_to = STATUS_CHARGING_TO if left is None else STATUS_CHARGING_TO_LEFT
            lines.append(charging_to.format(target=target, left=left))
    elif s.plugged_in is not None or s.snapshot:
        state = CHARGING_WORDS.get(s.charging_state or "", escape(_words(s.charging_state)))
        lines.append(STATUS_PLUGGED_IN.format(state=state) if s.plugged_in else STATUS_NOT_PLUGGED_IN)
    if s.lock_state is not None or s.snapshot:  # not streamed yet: nothing to say
        other_lock = STATUS_OTHER_LOCK.format(state=escape(_words(s.lock_state)))
        lines.append(LOCK_STATES.get(s.lock_state or "", other_lock))
    if s.open_items is not None:  # unknown for cars that do not say which door is open
        open_items = [OPEN_NAMES.get(item, escape(item)) for item in s.open_items]
        lines.append(STATUS_OPEN.format(items=joined(open_items, ", ")) if open_items else STATUS_ALL_CLOSED)
    for name, line in FIELD_LINES.items():
        if line is not None and (value := getattr(s, name)) is not None:
            lines.append(field_line(FIELDS[name], value))
    lines.append(STATUS_POSITION.format(where=where(s.position)))
    if s.snapshot:
        lines.append(STATUS_UPDATED.format(ago=ago(s.updated_at, now), at=_at(s.updated_at, now)))
    else:
        lines.append(STATUS_AGES.format(ages=status_ages(s, now)))
    return joined(lines)
