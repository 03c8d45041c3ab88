"""/schedule: the charging schedule and its buttons."""

from __future__ import annotations

from html import escape

from bot.bmw.models import (
    ChargingProfile,
)
from bot.bmw.models.charging_profile import WEEKDAYS
from bot.chat import prefs
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import _words, car_label, joined, switch
from bot.store import StoredVehicle

# Charging schedule
SCHEDULE_LOADING = Msg("Reading the charging schedule of {car}…")
SCHEDULE_UNSUPPORTED = Msg("{car} has no charging schedule that can be set remotely.")
SCHEDULE_NONE = Msg("{car} reports no charging schedule.")
SCHEDULE_UNSAVED = Msg("✏️ Changed here only: press 💾 Save to send it to the car.")
SCHEDULE_SENDING = Msg("📤 Sending this schedule to the car…")
SCHEDULE_SAVED = Msg("✅ The car has this schedule.")
SCHEDULE_DISCARDED = Msg("Changes discarded; the car keeps this schedule.")
SCHEDULE_UNCHANGED = Msg("Nothing has changed yet.")
SCHEDULE_ASK_TIME = Msg("Send the {what} as HH:MM (for example 07:45), or /cancel.")
SCHEDULE_BAD_TIME = Msg("That is not a time. Send it as HH:MM, for example 07:45, or /cancel.")
SCHEDULE_TIME_SET = Msg("OK, {what}: {time}. Press 💾 Save on the schedule above to send it to the car.")
SCHEDULE_CLOSED = Msg("That schedule is no longer open; show it again with /schedule.")
SCHEDULE_TIME_TIMEOUT = Msg("I stopped waiting for the time; the schedule above is still open.")
DEPARTURE_OF = Msg("departure time of {timer}")
WINDOW_START = Msg("start of the charging window")
WINDOW_END = Msg("end of the charging window")
SCHEDULE_KINDS = {"weeklyPlanner": Msg("weekly planner"), "twoTimesTimer": Msg("two departure timers")}
CHARGING_MODES = {
    "IMMEDIATE_CHARGING": Msg("as soon as it is plugged in"),
    "DELAYED_CHARGING": Msg("delayed, to be ready for departure"),
}
MODE_SHORT = {"IMMEDIATE_CHARGING": Msg("immediate"), "DELAYED_CHARGING": Msg("delayed")}
# Its buttons ({check} is a ✅ or ⬜)
SWITCH_BUTTON = "{check} {name}"
EDIT_BUTTON = "✏️ {name}"
WINDOW_SWITCH = Msg("{check} Window")
WINDOW_EDIT = Msg("✏️ Window")
MODE_BUTTON = Msg("🔁 Mode: {mode}")
CLIMATIZATION_SWITCH = Msg("{check} Climatization")
EARLIER = Msg("➖ {minutes} min")
LATER = Msg("➕ {minutes} min")
SET_TIME = Msg("⌨️ Set time")
# The window's start and end: earlier, later, type it
WINDOW_START_BUTTONS = (Msg("Start ➖ {minutes}"), Msg("Start ➕ {minutes}"), Msg("⌨️ Start"))
WINDOW_END_BUTTONS = (Msg("End ➖ {minutes}"), Msg("End ➕ {minutes}"), Msg("⌨️ End"))
BACK = Msg("⬅️ Back")
SAVE = Msg("💾 Save")
DISCARD = Msg("✖️ Discard")
NO_TIME = "--:--"
ONE_OFF_TIMER = Msg("One-off timer")
TIMER_NUMBER = Msg("Timer {number}")
NO_DAY = Msg("no day")
EVERY_DAY = Msg("every day")


SCHEDULE_TITLE = Msg("🗓 <b>Charging schedule of {car}</b> ({kind})")
SCHEDULE_TIMER = "{icon} {timer}: {when} · {switch}"
SCHEDULE_TIMER_DAYS = "{icon} {timer}: {when} · {days} · {switch}"
SCHEDULE_NO_WINDOW = Msg("🌙 No preferred charging window")
SCHEDULE_WINDOW = Msg("{icon} Preferred charging window {span} · {switch}")
SCHEDULE_MODE = Msg("⚡ Charging {mode}")
SCHEDULE_CLIMATIZATION = Msg("❄️ Climatization for departure: {switch}")


def timer_name(key: str) -> str:
    return (
        ONE_OFF_TIMER
        if key == "overrideTimer"
        else TIMER_NUMBER.format(number=escape(key.removeprefix("timer")))
    )


def day_short(day: str) -> str:
    return prefs.weekday(WEEKDAYS.index(day))


def days(weekdays: tuple[str, ...] | None) -> str:
    chosen = set(weekdays or ())
    if not chosen:
        return NO_DAY
    if chosen >= set(WEEKDAYS):
        return EVERY_DAY
    return ", ".join(day_short(day) for day in WEEKDAYS if day in chosen)


def schedule(
    car: StoredVehicle, profile: ChargingProfile, *, focus: str | None = None, note: str | None = None
) -> str:
    """The profile, readably; `focus` (a timer key or "window") marks what the buttons below edit."""
    kind = SCHEDULE_KINDS.get(profile.kind, escape(profile.kind))
    lines = [SCHEDULE_TITLE.format(car=car_label(car), kind=kind)]
    for key in profile.timer_keys:
        timer = profile.timers[key]
        line = SCHEDULE_TIMER_DAYS if profile.has_weekdays else SCHEDULE_TIMER
        lines.append(
            line.format(
                icon="👉" if focus == key else "⏰",
                timer=timer_name(key),
                when=escape(timer.departure_time or NO_TIME),
                days=days(timer.weekdays),
                switch=switch(timer.enabled),
            )
        )
    window = profile.window
    if window is None:
        lines.append(SCHEDULE_NO_WINDOW)
    else:
        span = escape(f"{window.start_time or NO_TIME}–{window.end_time or NO_TIME}")
        icon = "👉" if focus == "window" else "🌙"
        lines.append(SCHEDULE_WINDOW.format(icon=icon, span=span, switch=switch(profile.window_on)))
    mode = CHARGING_MODES.get(profile.charging_mode or "", escape(_words(profile.charging_mode)))
    lines.append(SCHEDULE_MODE.format(mode=mode))
    lines.append(SCHEDULE_CLIMATIZATION.format(switch=switch(profile.climatization_enabled)))
    if note:
        lines += ["", note]
    return joined(lines)
