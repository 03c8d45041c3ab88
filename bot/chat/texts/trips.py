"""/trips and /destinations."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from bot.bmw.models import (
    AllTrips,
    CommunityStat,
    Destination,
    LastTrip,
)
from bot.chat import prefs
from bot.chat.i18n import Msg, Plural
from bot.chat.texts.formatting import KWH, _duration, _km, _num, _per_100, car_label, joined
from bot.drives import Drive
from bot.history import local
from bot.store import StoredVehicle

# Trips and destinations
TRIPS_LOADING = Msg("Fetching the trip statistics of {car}…")
TRIPS_UNSUPPORTED = Msg("{car} does not share trip statistics.")
NO_LAST_TRIP = Msg("No trip recorded yet.")
NO_ALL_TRIPS = Msg("No statistics over all trips yet.")
DESTINATIONS_LOADING = Msg("Fetching the last destinations of {car}…")
DESTINATIONS_UNSUPPORTED = Msg("{car} does not share its last destinations.")
DESTINATIONS_READ_ONLY = Msg(
    "{car} is linked through BMW CarData, which does not share its last destinations."
)
NO_DESTINATIONS = Msg("{car} has no recent destinations.")


TRIPS_TITLE = Msg("🛣 <b>Trips of {car}</b>")
LAST_TRIP = Msg("<b>Last trip</b>")
TRIP_DATE = "📅 {date}"
TRIP_DISTANCE = "🚗 {distance}{took}{electric}"  # the next two, or nothing
TRIP_TOOK = Msg(" in {duration}")
TRIP_ELECTRIC = Msg(" · {ratio:.0f} % electric")
TRIP_ENERGY = Msg("⚡ {consumption} · ♻️ {recuperation} recuperated")
TRIP_EFFICIENCY = Msg("🌟 efficiency {percent:.0f} % {stars}")
TRIP_FUEL = "⛽ {consumption}"
ALL_TRIPS = Msg("<b>All trips</b>, yours and the community's average")
ALL_CONSUMPTION = Msg("⚡ consumption {value}")
ALL_RECUPERATION = Msg("♻️ recuperation {value}")
PER_CHARGE = Msg("🔋 per charge {values}")  # the average, then the next two, comma-separated
PER_CHARGE_BEST = Msg("best {km}")
PER_CHARGE_NOW = Msg("this charge {km}")
DRIVEN_ELECTRICALLY = Msg("🛣 {distance} driven electrically")
CO2_SAVED = Msg("🌱 {kg} CO₂ saved")
CO2_SAVED_GREEN = Msg("🌱 {kg} CO₂ saved ({green} with green power)")
VERSUS_COMMUNITY = Msg("{yours} (community {community})")
# Drives of a CarData car (bot/drives.py): as far as its parked reports tell.
DRIVES_TITLE = Msg("🛣 <b>Drives of {car}</b>")
DRIVES_NONE = Msg(
    "No drive recorded yet: one shows here when {car} reports being parked after it moved. Drives before the"
    " bot first saw it parked are not known."
)
DRIVES_WEEK = Plural(
    "<b>Last 7 days</b>: {n} drive, {distance}", "<b>Last 7 days</b>: {n} drives, {distance}"
)
DRIVES_WEEK_ENERGY = Msg("⚡ about {energy} used · {consumption}")
DRIVES_WEEK_UNKNOWN = Plural(
    "The energy of {n} drive is not known: the car charged between its reports.",
    "The energy of {n} drives is not known: the car charged between its reports.",
)
DRIVES_LAST = Msg("<b>Last drives</b>")
DRIVE_LINE = "{number}. {after} – {ended} · 🚗 {distance}"
DRIVE_USED = Msg("🔋 {start} → {end} · ⚡ about {energy} · {consumption}")
DRIVE_CHARGED = Msg("🔌 It charged between: the level used is not known.")
DRIVES_TIMES = Msg(
    "The car reports only when it is parked: a drive began after the first time and ended by the second."
)
DRIVE_PIN = "📍 {number}"
DRIVE_GONE = Msg("That drive is no longer recorded.")
DESTINATIONS_TITLE = Msg("🧭 <b>Last destinations of {car}</b>")
DESTINATION = "{number}. {where}"
DESTINATION_DATED = "{number}. {where} · {date}"


def stars(efficiency: float) -> str:
    """BMW's 0–1 efficiency score as five stars."""
    full = round(max(0.0, min(1.0, efficiency)) * 5)
    return "★" * full + "☆" * (5 - full)


def _versus(stat: CommunityStat | None, show: Callable[[float | None], str]) -> str:
    if stat is None:
        return "–"
    average = stat.community_average
    yours = show(stat.user_average)
    return yours if average is None else VERSUS_COMMUNITY.format(yours=yours, community=show(average))


def trips(car: StoredVehicle, last: LastTrip | None, every: AllTrips | None) -> str:
    lines = [TRIPS_TITLE.format(car=car_label(car)), "", LAST_TRIP]
    if last is None:
        lines.append(NO_LAST_TRIP)
    else:
        if last.date is not None:
            lines.append(TRIP_DATE.format(date=prefs.date_time(last.date)))
        took = "" if last.duration is None else TRIP_TOOK.format(duration=_duration(last.duration))
        ratio = last.electric_distance_ratio
        electric = "" if ratio is None else TRIP_ELECTRIC.format(ratio=ratio)
        distance = prefs.distance(last.total_distance, digits=1)
        lines.append(TRIP_DISTANCE.format(distance=distance, took=took, electric=electric))
        lines.append(
            TRIP_ENERGY.format(
                consumption=_per_100(last.avg_electric_consumption),
                recuperation=_per_100(last.avg_recuperation),
            )
        )
        if last.efficiency_value is not None:
            score = last.efficiency_value
            lines.append(TRIP_EFFICIENCY.format(percent=score * 100, stars=stars(score)))
        if last.avg_combined_consumption:  # 0 on a trip that burnt no fuel
            lines.append(TRIP_FUEL.format(consumption=_per_100(last.avg_combined_consumption, "l")))
    lines += ["", ALL_TRIPS]
    if every is None:
        lines.append(NO_ALL_TRIPS)
        return joined(lines)
    lines.append(ALL_CONSUMPTION.format(value=_versus(every.avg_electric_consumption, _per_100)))
    lines.append(ALL_RECUPERATION.format(value=_versus(every.avg_recuperation, _per_100)))
    cycle = every.chargecycle_range
    if cycle is not None:
        values = [_versus(cycle, _km)]
        if cycle.user_high is not None:
            values.append(PER_CHARGE_BEST.format(km=_km(cycle.user_high)))
        if cycle.user_current_charge_cycle is not None:
            values.append(PER_CHARGE_NOW.format(km=_km(cycle.user_current_charge_cycle)))
        lines.append(PER_CHARGE.format(values=", ".join(values)))
    total = every.total_electric_distance
    if total is not None and total.user_total is not None:
        lines.append(DRIVEN_ELECTRICALLY.format(distance=_km(total.user_total)))
    if every.saved_co2 is not None:
        green = every.saved_co2_green_energy
        kg = _num(every.saved_co2, "kg")
        if green is None:
            lines.append(CO2_SAVED.format(kg=kg))
        else:
            lines.append(CO2_SAVED_GREEN.format(kg=kg, green=_num(green, "kg", 0)))
    return joined(lines)


def _place_name(value: str) -> str:
    """Cars report places in capitals ("BAYERSTRASSE"); shown as words, anything else as given."""
    return escape(value.title() if value.isupper() else value)


def destinations(car: StoredVehicle, items: list[Destination]) -> str:
    if not items:
        return NO_DESTINATIONS.format(car=car_label(car))
    lines = [DESTINATIONS_TITLE.format(car=car_label(car))]
    for number, item in enumerate(items, 1):
        where = ", ".join(_place_name(part) for part in (item.street, item.city, item.country) if part)
        if not where:
            where = "–" if item.lat is None or item.lon is None else f"{item.lat:.5f}, {item.lon:.5f}"
        if item.created_at is None:
            lines.append(DESTINATION.format(number=number, where=where))
        else:
            date = prefs.date(item.created_at)
            lines.append(DESTINATION_DATED.format(number=number, where=where, date=date))
    return joined(lines)


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{prefs.number(value)} %"


def drive_lines(number: int, drive: Drive) -> list[str]:
    """One drive: when, how far, and the level and energy it used where the reports tell."""
    when = [prefs.numeric_date_time(local(t)) for t in (drive.began, drive.ended_at)]
    lines = [DRIVE_LINE.format(number=number, after=when[0], ended=when[1], distance=_km(drive.km))]
    if drive.charged:
        lines.append(DRIVE_CHARGED.format())
    elif drive.energy_kwh is not None:
        energy, consumption = _num(drive.energy_kwh, KWH), _per_100(drive.kwh_per_100_km)
        start, end = _percent(drive.soc_start), _percent(drive.soc_end)
        lines.append(DRIVE_USED.format(start=start, end=end, energy=energy, consumption=consumption))
    return lines


def drives(car: StoredVehicle, last: list[Drive], week: list[Drive]) -> str:
    """/trips of a CarData car: the week's totals and the last drives, numbered as their 📍 buttons."""
    label = car_label(car)
    if not last:
        return "\n".join([DRIVES_TITLE.format(car=label), "", DRIVES_NONE.format(car=label)])
    lines = [DRIVES_TITLE.format(car=label), ""]
    lines.append(DRIVES_WEEK.format(len(week), distance=_km(sum(d.km for d in week))))
    known = [d for d in week if d.energy_kwh is not None]
    if known:
        energy = sum(d.energy_kwh or 0.0 for d in known)
        consumption = _per_100(energy / sum(d.km for d in known) * 100)
        lines.append(DRIVES_WEEK_ENERGY.format(energy=_num(energy, KWH), consumption=consumption))
    if unknown := sum(d.charged for d in week):
        lines.append(DRIVES_WEEK_UNKNOWN.format(unknown))
    lines += ["", DRIVES_LAST.format()]
    for number, drive in enumerate(last, 1):
        lines += drive_lines(number, drive)
    if any(drive.started_at is None for drive in last):  # a quiet car's: when it began is not reported
        lines += ["", f"<i>{DRIVES_TIMES.format()}</i>"]
    return "\n".join(lines)
