"""/history: the charging history, its chart and CSV."""

from __future__ import annotations

from html import escape

from bot.chat import prefs
from bot.chat.i18n import Msg, Plural
from bot.chat.texts.formatting import KWH, _duration, _km, _num, _words, car_label, joined
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
HISTORY_CHART_CAPTION = Msg("📊 {car}, last {days} days: ≈ {kwh} kWh in {charges}")
HISTORY_CHART_CAPTION_MEASURED = Msg("📊 {car}, last {days} days: {kwh} kWh in {charges}")
HISTORY_CHART_ENERGY = Msg("Energy charged per day, last {days} days (kWh, estimated)")
HISTORY_CHART_ENERGY_MEASURED = Msg("Energy charged per day, last {days} days (kWh, measured by BMW)")
HISTORY_CHART_DISTANCE = Msg("Distance driven per day, last {days} days ({unit})")
HISTORY_CHART_DRIVEN = Msg("🚗 {distance} driven in {drives}")
HISTORY_CHART_SOC = Msg("State of charge during the last charge")
HISTORY_CHART_NO_SOC = Msg("The car did not report its state of charge for this charge.")
HISTORY_CSV_BUTTON = Msg("📄 CSV of all charges")
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


def _session(session: ChargeSession) -> str:
    started = local(session.started_at)
    when = f"{prefs.day_month(started)} {prefs.clock(started)}"
    start, end = session.soc_start, session.soc_end
    socs = "–" if start is None or end is None else f"{start:.0f}–{end:.0f} %"
    about = "" if session.source == BMW_HISTORY else "≈"  # BMW's own history measured it
    kwh = f"– {KWH}" if session.energy_kwh is None else f"{about}{_num(session.energy_kwh, KWH)}"
    line = f"{when} · {socs} · {kwh} · {_duration(round(session.seconds / 60))}"
    if not session.ended:  # BMW's history does not say how a charge ended
        return line
    return f"{line} · {SESSION_ENDINGS.get(session.ended, escape(_words(session.ended)))}"


def history(car: StoredVehicle, sessions: list[ChargeSession], bmw_failed: str | None = None) -> str:
    """The last sessions, newest first, one line each, and where their kWh come from; `bmw_failed`: why BMW's
    own history is missing from them (a CarData error's message)."""
    lines = [HISTORY_TITLE.format(car=car_label(car)), *map(_session, sessions), ""]
    measured = [session.source == BMW_HISTORY for session in sessions]
    if not all(measured):
        lines.append(HISTORY_ESTIMATED)
    if any(measured):
        lines.append(HISTORY_MEASURED)
    if bmw_failed:
        lines.append(HISTORY_BMW_FAILED.format(reason=escape(bmw_failed)))
    return joined(lines)


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
    in its `drives`, when there are any."""
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
