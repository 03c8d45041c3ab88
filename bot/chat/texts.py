"""Every sentence the bot says and every number format, in one place (HTML parse mode)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape, unescape

from bot.bmw.models import (
    AllTrips,
    ChargingProfile,
    CommunityStat,
    Destination,
    ExecutionState,
    LastTrip,
    Poi,
    ServiceType,
)
from bot.bmw.models.charging_profile import WEEKDAYS
from bot.car_status import CarPosition, CarStatus, ChargeNotice, Part
from bot.store import StoredVehicle

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "Charge, range, doors and where the car is"),
    ("lock", "Lock the doors"),
    ("unlock", "Unlock the doors (asks first)"),
    ("climate", "Start climate control"),
    ("charge", "Start charging now"),
    ("flash", "Flash the lights"),
    ("map", "Range map: how far you can go"),
    ("schedule", "Charging schedule: timers, window, mode"),
    ("trips", "Last trip and statistics of all trips"),
    ("destinations", "The car's last destinations"),
    ("cars", "Choose which car to use"),
    ("notify", "Choose which charging messages you get"),
    ("link", "Link your BMW ConnectedDrive account"),
    ("unlink", "Remove your account and all its data"),
    ("help", "What this bot can do"),
    ("cancel", "Stop what we are doing"),
)

START = (
    "Hi {name}! I show your BMW i3's charge and range, lock and unlock it, start climate and charging, "
    "and tell you when charging has finished.\n\n{next_step}"
)
START_UNLINKED = "First, link your BMW ConnectedDrive account with /link."
START_LINKED = "Your account is linked: try /status."
HELP = (
    "Here is what I can do:\n"
    + "\n".join(f"/{name} — {text}" for name, text in COMMANDS)
    + "\n\n📎 Send me a location or a place, and I'll offer to send it to your car's navigation."
)
NOT_ALLOWED = "Sorry, this is a private bot. Ask its owner to add your Telegram ID ({tg_id})."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
DONT_UNDERSTAND = "I didn't understand that. Try /status, or /help for everything I can do."
EDITED_IGNORED = "I only act on new messages; please send it again instead of editing."
CANCELLED = "OK, cancelled."
NOTHING_TO_CANCEL = "There is nothing to cancel."
STALE_BUTTON = "This button is no longer valid."
BUSY = "Just a moment…"
PRIVATE_ONLY = "🔒 Accounts and cars only in a private chat with me: tap below."
PRIVATE_CHAT_BUTTON = "💬 Open a private chat"
DELETE_SECRET_YOURSELF = (
    "⚠️ I could not delete your message, and it holds a secret: please delete it yourself now."
)


def plain(text: str) -> str:
    """What one of these HTML texts shows, for the places Telegram shows as plain text: buttons, toasts."""
    return unescape(text)


def start(first_name: str | None, linked: bool) -> str:
    next_step = START_LINKED if linked else START_UNLINKED
    return START.format(name=escape(first_name or "there"), next_step=next_step)


# Linking
LINK_REPLACE = "You have linked {username}. Link another account instead? Its data here will be removed."
LINK_KEEP = "OK, your account stays linked."
LINK_REGION = "Where is your ConnectedDrive account registered?"
LINK_EMAIL = "Your ConnectedDrive e-mail address?"
LINK_EMAIL_INVALID = "That doesn't look like an e-mail address; please send it again, or /cancel."
LINK_PASSWORD = "And your ConnectedDrive password? I delete your message as soon as I have read it."
LINK_CHECKING = "Checking with BMW…"
LINK_WRONG_PASSWORD = (
    "BMW did not accept that e-mail or password; nothing was stored. Send the password again, or /cancel."
)
LINK_FAILED = "I could not link your account: {reason} Nothing was stored. Try /link again later."
LINK_NO_CARS = "BMW accepted the login but lists no cars on this account; nothing was stored."
LINK_DONE = "Linked! I found:\n{cars}\n\nTry /status."
LINK_TIMEOUT = "Linking timed out; start again with /link when you are ready."
LINK_COOL_DOWN = "🔒 Too many failed logins; to protect the account, please try /link again in {wait}."
PASSWORD_REFUSED = "🔑 BMW no longer accepts your password for {email}; please /link again."
PASSWORD_REFUSED_PUSH = (
    "🔑 BMW no longer accepts your password for {email}, so I have stopped checking your cars and won't "
    "send charging messages. Please /link again."
)
CARDATA_RELINK_PUSH = (
    "🔑 BMW CarData no longer accepts the link to your car (unused for two weeks, or revoked), so I receive "
    "nothing from it and won't send charging messages. Please /link again."
)
NOT_LINKED = "You have not linked a BMW account yet: use /link."
LINK_PASSWORD_TOO_LONG = (
    "That is longer than any password BMW takes (at most {limit} characters); please send it again, "
    "or /cancel."
)


def link_replace(username: str) -> str:
    return LINK_REPLACE.format(username=escape(username))


def link_failed(reason: str) -> str:
    return LINK_FAILED.format(reason=escape(reason))


# Cars
PICK_CAR = "Which car?"
CAR_SELECTED = "Now using {car}."
UNLINK_ASK = "Remove your BMW account, its tokens, answers and every setting from this bot?"
UNLINK_DONE = "Done: your account and all its data are gone. /link to start again."
UNLINK_KEPT = "OK, nothing was removed."

# Status
UPDATING = "Asking {car} for its status…"
LOCATING = "Asking {car} where it is…"
NO_POSITION = "not shared"
IMPOSSIBLE_POSITION = "unknown: BMW sent coordinates that are no place on Earth"


def where(position: CarPosition | None) -> str:
    """The car's coordinates, or why there are none."""
    if position is not None and position.usable:
        return f"{position.lat:.5f}, {position.lon:.5f}"
    return IMPOSSIBLE_POSITION if position is not None and position.impossible else NO_POSITION


def no_location(car: StoredVehicle, position: CarPosition | None) -> str:
    return f"{car_label(car)}: 📍 {where(position)}"


# A read BMW is slow to answer: the placeholder's second line, then the verdict
STILL_WAITING = "{waiting}\n⏳ Still waiting for BMW…"
NOT_ANSWERING = "⌛ BMW is not answering; try again in a few minutes."

# Remote commands
SERVICE_NAMES: dict[ServiceType, str] = {
    ServiceType.DOOR_LOCK: "Lock",
    ServiceType.DOOR_UNLOCK: "Unlock",
    ServiceType.CLIMATE_NOW: "Climate",
    ServiceType.CHARGE_NOW: "Charge now",
    ServiceType.LIGHT_FLASH: "Flash lights",
    ServiceType.HORN_BLOW: "Horn",
    ServiceType.VEHICLE_FINDER: "Find car",
    ServiceType.CHARGING_CONTROL: "Save charging schedule",
}
SERVICE_DONE: dict[ServiceType, str] = {
    ServiceType.DOOR_LOCK: "🔒 {car} is locked.",
    ServiceType.DOOR_UNLOCK: "🔓 {car} is unlocked.",
    ServiceType.CLIMATE_NOW: "❄️ Climate control is running in {car}.",
    ServiceType.CHARGE_NOW: "⚡ {car} has started charging.",
    ServiceType.LIGHT_FLASH: "💡 {car} flashed its lights.",
    ServiceType.HORN_BLOW: "📯 {car} sounded its horn.",
    ServiceType.VEHICLE_FINDER: "📍 {car} reported where it is.",
    ServiceType.CHARGING_CONTROL: "🗓 {car} took the new charging schedule.",
}
PROGRESS: dict[str, str] = {
    "SENDING": "sending to BMW…",
    ExecutionState.INITIATED: "BMW has the request…",
    ExecutionState.PENDING: "waking the car…",
    ExecutionState.DELIVERED: "the car has it…",
}
SERVICE_NOT_EXECUTED = "⚠️ {name}: {car} did not carry it out."
SERVICE_TIMED_OUT = "⌛ {name}: {car} did not answer in time. It may still carry it out; check /status."
SERVICE_INTERRUPTED = (
    "⏹ {name}: the bot is restarting. The command reached BMW, but I can't wait for {car}'s answer; "
    "check /status in a minute."
)
SERVICE_OUTCOME_UNKNOWN = (
    "❔ {name}: the bot restarted while {car} was on it, and BMW no longer tells how it ended. "
    "Check /status before you send it again."
)
SERVICE_FAILED = "⚠️ {name} failed: {reason}"
SERVICE_UNSUPPORTED = "{car} does not support that."
COMMAND_IN_PROGRESS = "{car} is still busy with the previous command; please wait for it."
TOO_MANY_COMMANDS = "That's a lot of commands; please wait {seconds} s before the next one."
UNLOCK_ASK = "Unlock {car}? Make sure you can see it."
UNLOCK_EXPIRED = "This unlock confirmation has expired; ask again with /unlock."
UNLOCK_CANCELLED = "OK, {car} stays locked."
ANSWER_ASK = (
    "BMW wants the answer to your account's security question to unlock {car}. Send it now "
    "(I delete your message right away), or /cancel."
)
ANSWER_WRONG = "BMW did not accept that security answer; it was not stored. Try /unlock again."
ANSWER_TOO_LONG = (
    "That is longer than any security answer BMW takes (at most {limit} characters); it was not used. "
    "Try /unlock again."
)
ANSWER_REMEMBER = "Remember the security answer (encrypted) so I don't have to ask next time?"
ANSWER_REMEMBERED = "Saved, encrypted. /unlink removes it."
ANSWER_NOT_REMEMBERED = "OK, I won't keep it."
ANSWER_TIMEOUT = "I didn't get the security answer in time; ask again with /unlock."

BMW_TROUBLE = "⚠️ {reason}"


def bmw_trouble(reason: str) -> str:
    return BMW_TROUBLE.format(reason=escape(reason))


def car_label(car: StoredVehicle) -> str:
    """`i3 (…3456, M-AB 123)`: the VIN tail tells two identical models apart."""
    parts = [f"…{car.vin[-4:]}"] + ([car.license_plate] if car.license_plate else [])
    return escape(f"{car.model or 'BMW'} ({', '.join(parts)})")


def cars_list(cars: list[StoredVehicle]) -> str:
    return "\n".join(f"• {car_label(car)}" for car in cars)


def link_cool_down(seconds: float) -> str:
    return LINK_COOL_DOWN.format(wait=_duration(math.ceil(seconds / 60)))


def password_refused(email: str, *, push: bool = False) -> str:
    return (PASSWORD_REFUSED_PUSH if push else PASSWORD_REFUSED).format(email=escape(email))


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "unknown"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 90:
        return "just now"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min ago"
    hours = round(minutes / 60)
    if hours < 36:
        return f"{hours} h ago"
    return f"{round(hours / 24)} days ago"


def _words(value: str | None) -> str:
    return value.replace("_", " ").lower() if value else "unknown"


def _km(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} km"


def _duration(minutes: int | float) -> str:
    hours, mins = divmod(int(minutes), 60)
    return f"{hours} h {mins:02d} min" if hours else f"{mins} min"


OPEN_NAMES = {
    "doorDriverFront": "driver's door",
    "doorDriverRear": "rear left door",
    "doorPassengerFront": "passenger door",
    "doorPassengerRear": "rear right door",
    "windowDriverFront": "driver's window",
    "windowDriverRear": "rear left window",
    "windowPassengerFront": "passenger window",
    "windowPassengerRear": "rear right window",
    "sunroof": "sunroof",
    "trunk": "trunk",
    "hood": "hood",
}
LOCK_STATES = {"SECURED": "🔒 secured", "LOCKED": "🔒 locked", "UNLOCKED": "🔓 unlocked"}


def status(car: StoredVehicle, s: CarStatus, now: datetime | None = None) -> str:
    lines = [f"<b>{car_label(car)}</b>"]
    charge = "–" if s.soc is None else f"{s.soc:.0f} %"
    lines.append(f"🔋 {charge} · {_km(s.electric_range_km)} electric")
    # Fuel only for cars with a tank (the backend leaves it out for a BEV's `remainingFuel: 0`).
    if car.drive_train != "BEV" and (s.fuel_range_km is not None or s.fuel_litres is not None):
        fuel = "" if s.fuel_litres is None else f" ({s.fuel_litres:g} l)"
        lines.append(f"⛽ {_km(s.fuel_range_km)} on fuel{fuel}")
    if s.charging:
        left = "" if s.minutes_left is None else f", {_duration(s.minutes_left)} left"
        lines.append(f"⚡ charging{left}")
    elif s.plugged_in:
        lines.append(f"🔌 plugged in, {escape(_words(s.charging_state))}")
    else:
        lines.append("🔌 not plugged in")
    lines.append(LOCK_STATES.get(s.lock_state or "", f"🔐 {escape(_words(s.lock_state))}"))
    if s.open_items is not None:
        open_items = [OPEN_NAMES.get(item, escape(item)) for item in s.open_items]
        lines.append("🚪 open: " + ", ".join(open_items) if open_items else "🚪 all doors and windows closed")
    if s.mileage_km is not None:
        lines.append(f"🛣 {s.mileage_km:,} km".replace(",", " "))
    lines.append(f"📍 {where(s.position)}")
    lines.append(f"🕒 updated {ago(s.updated_at, now)}")
    return "\n".join(lines)


def progress(service: ServiceType, car: StoredVehicle, state: str | None) -> str:
    step = PROGRESS.get(state or "", "waiting for the car…")
    return f"{SERVICE_NAMES[service]} — {car_label(car)}: {step}"


def outcome(service: ServiceType, car: StoredVehicle, state: str | None) -> str:
    label = car_label(car)
    if state == ExecutionState.EXECUTED:
        return SERVICE_DONE[service].format(car=label)
    if state == ExecutionState.NOT_EXECUTED:
        return SERVICE_NOT_EXECUTED.format(name=SERVICE_NAMES[service], car=label)
    return SERVICE_TIMED_OUT.format(name=SERVICE_NAMES[service], car=label)


# Range map
MAP_DRAWING = "Drawing the range map…"
MAP_LOADING = "Drawing the range map of {car}…"
MAP_UNAVAILABLE = "BMW has no range map for {car} right now."
MAP_NO_BASE = "\n(The street map could not be loaded; showing the range on a plain background.)"
MODE_NAMES = {"ECO_PRO_PLUS": "ECO PRO+", "ECO_PRO": "ECO PRO", "COMFORT": "COMFORT"}


def map_unavailable(car: StoredVehicle, position: CarPosition | None) -> str:
    """No range map; when the car's position is impossible too (the likely cause), that is said as well."""
    impossible = f"\n📍 {IMPOSSIBLE_POSITION}" if position is not None and position.impossible else ""
    return MAP_UNAVAILABLE.format(car=car_label(car)) + impossible


def map_caption(
    car: StoredVehicle,
    legend: tuple[tuple[str, str], ...],
    reaches: dict[str, float],
    *,
    base_map: bool,
    position: CarPosition | None = None,
) -> str:
    lines = [f"🗺 <b>Range of {car_label(car)}</b>"]
    for mode, colour in legend:
        reach = f" ≈ {reaches[mode]:.0f} km" if mode in reaches else ""
        lines.append(f"{escape(colour)}: {escape(MODE_NAMES.get(mode, _words(mode).upper()))}{reach}")
    lines.append("🔴 the car")
    if position is not None and position.impossible:
        lines.append(f"📍 {IMPOSSIBLE_POSITION}")
    return "\n".join(lines) + ("" if base_map else MAP_NO_BASE)


# Charge pushes and /notify
NOTIFY_ASK = "🔔 Which messages should I send you about charging? Tap one to switch it on or off."
NOTIFY_LABELS = {
    "finished": "Charge finished",
    "started": "Charging started",
    "interrupted": "Charging interrupted",
}
NOTIFY_SWITCHED = "{label}: {state}"
CHARGE_HEADLINES = {
    "started": "⚡ {car} started charging.",
    "full": "🔋 {car} has finished charging.",
    "early": "🔌 {car} stopped charging before it was full.",
    "error": "⚠️ {car} stopped charging with an error.",
    "interrupted": "⚠️ Charging of {car} was interrupted.",
}
GOAL_REACHED = "CHARGING_GOAL_REACHED"
END_REASONS = {
    GOAL_REACHED: "charge goal reached",
    "CONNECTOR_REMOVAL": "the cable was unplugged",
    "END_REQUESTED_BY_DRIVER": "stopped by the driver",
}


def on_off(on: bool) -> str:
    return "on" if on else "off"


def notify_button(name: str, on: bool) -> str:
    return f"{'✅' if on else '⬜'} {NOTIFY_LABELS[name]}"


def charge_push(car: StoredVehicle, notice: ChargeNotice) -> str:
    """A charge push, from either backend: the headline of its kind, the numbers, why it ended."""
    lines = [CHARGE_HEADLINES[notice.kind].format(car=f"<b>{car_label(car)}</b>")]
    status, soc_at_start, charged_seconds = notice.status, notice.soc_at_start, notice.charged_seconds
    soc = "–" if status.soc is None else f"{status.soc:.0f} %"
    start = f"{soc_at_start:.0f} % → " if soc_at_start is not None and charged_seconds is not None else ""
    lines.append(f"🔋 {start}{soc} · {_km(status.electric_range_km)} electric")
    if charged_seconds is None:
        if status.minutes_left is not None:
            lines.append(f"⏳ about {_duration(status.minutes_left)} to full")
    else:
        lines.append(f"⏱ charged for {_duration(round(charged_seconds / 60))}")
        reason = status.end_reason
        # A car that stops short without a reason of its own still reports the last charge's: not this one's.
        stale = reason == GOAL_REACHED and notice.kind != "full"
        if reason in END_REASONS and not stale:
            lines.append(f"ℹ️ {END_REASONS[reason]}")
    return "\n".join(lines)


# Charging schedule
SCHEDULE_LOADING = "Reading the charging schedule of {car}…"
SCHEDULE_UNSUPPORTED = "{car} has no charging schedule that can be set remotely."
SCHEDULE_NONE = "{car} reports no charging schedule."
SCHEDULE_UNSAVED = "✏️ Changed here only: press 💾 Save to send it to the car."
SCHEDULE_SENDING = "📤 Sending this schedule to the car…"
SCHEDULE_SAVED = "✅ The car has this schedule."
SCHEDULE_DISCARDED = "Changes discarded; the car keeps this schedule."
SCHEDULE_UNCHANGED = "Nothing has changed yet."
SCHEDULE_ASK_TIME = "Send the {what} as HH:MM (for example 07:45), or /cancel."
SCHEDULE_BAD_TIME = "That is not a time. Send it as HH:MM, for example 07:45, or /cancel."
SCHEDULE_TIME_SET = "OK, {what}: {time}. Press 💾 Save on the schedule above to send it to the car."
SCHEDULE_CLOSED = "That schedule is no longer open; show it again with /schedule."
SCHEDULE_TIME_TIMEOUT = "I stopped waiting for the time; the schedule above is still open."
DEPARTURE_OF = "departure time of {timer}"
WINDOW_START = "start of the charging window"
WINDOW_END = "end of the charging window"
SCHEDULE_KINDS = {"weeklyPlanner": "weekly planner", "twoTimesTimer": "two departure timers"}
CHARGING_MODES = {
    "IMMEDIATE_CHARGING": "as soon as it is plugged in",
    "DELAYED_CHARGING": "delayed, to be ready for departure",
}
MODE_SHORT = {"IMMEDIATE_CHARGING": "immediate", "DELAYED_CHARGING": "delayed"}
NO_TIME = "--:--"


def timer_name(key: str) -> str:
    return "One-off timer" if key == "overrideTimer" else f"Timer {escape(key.removeprefix('timer'))}"


def day_short(day: str) -> str:
    return day[:3].title()


def days(weekdays: tuple[str, ...] | None) -> str:
    chosen = set(weekdays or ())
    if not chosen:
        return "no day"
    if chosen >= set(WEEKDAYS):
        return "every day"
    return ", ".join(day_short(day) for day in WEEKDAYS if day in chosen)


def check(on: bool | None) -> str:
    return "✅" if on else "⬜"


def switch(on: bool | None) -> str:
    return "✅ on" if on else "⬜ off"


def schedule(
    car: StoredVehicle, profile: ChargingProfile, *, focus: str | None = None, note: str | None = None
) -> str:
    """The profile, readably; `focus` (a timer key or "window") marks what the buttons below edit."""
    kind = SCHEDULE_KINDS.get(profile.kind, escape(profile.kind))
    lines = [f"🗓 <b>Charging schedule of {car_label(car)}</b> ({kind})"]
    for key in profile.timer_keys:
        timer = profile.timers[key]
        weekdays = f" · {days(timer.weekdays)}" if profile.has_weekdays else ""
        icon = "👉" if focus == key else "⏰"
        when = escape(timer.departure_time or NO_TIME)
        lines.append(f"{icon} {timer_name(key)}: {when}{weekdays} · {switch(timer.enabled)}")
    window = profile.window
    if window is None:
        lines.append("🌙 No preferred charging window")
    else:
        span = escape(f"{window.start_time or NO_TIME}–{window.end_time or NO_TIME}")
        icon = "👉" if focus == "window" else "🌙"
        lines.append(f"{icon} Preferred charging window {span} · {switch(profile.window_on)}")
    mode = CHARGING_MODES.get(profile.charging_mode or "", escape(_words(profile.charging_mode)))
    lines.append(f"⚡ Charging {mode}")
    lines.append(f"❄️ Climatization for departure: {switch(profile.climatization_enabled)}")
    if note:
        lines += ["", note]
    return "\n".join(lines)


# Trips and destinations
TRIPS_LOADING = "Fetching the trip statistics of {car}…"
TRIPS_UNSUPPORTED = "{car} does not share trip statistics."
NO_LAST_TRIP = "No trip recorded yet."
NO_ALL_TRIPS = "No statistics over all trips yet."
DESTINATIONS_LOADING = "Fetching the last destinations of {car}…"
DESTINATIONS_UNSUPPORTED = "{car} does not share its last destinations."
NO_DESTINATIONS = "{car} has no recent destinations."
PER_100_KM = "kWh/100 km"


def _num(value: float | None, unit: str, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f} {unit}"


def _thousands(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ")


def _date(moment: datetime) -> str:
    """In the car's own offset, as it reported the time."""
    return f"{moment:%d %b %Y, %H:%M}"


def stars(efficiency: float) -> str:
    """BMW's 0–1 efficiency score as five stars."""
    full = round(max(0.0, min(1.0, efficiency)) * 5)
    return "★" * full + "☆" * (5 - full)


def _versus(stat: CommunityStat | None, unit: str, digits: int = 1) -> str:
    if stat is None:
        return "–"
    average = stat.community_average
    community = "" if average is None else f" (community {_num(average, unit, digits)})"
    return f"{_num(stat.user_average, unit, digits)}{community}"


def trips(car: StoredVehicle, last: LastTrip | None, every: AllTrips | None) -> str:
    lines = [f"🛣 <b>Trips of {car_label(car)}</b>", "", "<b>Last trip</b>"]
    if last is None:
        lines.append(NO_LAST_TRIP)
    else:
        if last.date is not None:
            lines.append(f"📅 {_date(last.date)}")
        took = "" if last.duration is None else f" in {_duration(last.duration)}"
        ratio = last.electric_distance_ratio
        electric = "" if ratio is None else f" · {ratio:.0f} % electric"
        lines.append(f"🚗 {_num(last.total_distance, 'km')}{took}{electric}")
        lines.append(
            f"⚡ {_num(last.avg_electric_consumption, PER_100_KM)} · "
            f"♻️ {_num(last.avg_recuperation, PER_100_KM)} recuperated"
        )
        if last.efficiency_value is not None:
            score = last.efficiency_value
            lines.append(f"🌟 efficiency {score * 100:.0f} % {stars(score)}")
        if last.avg_combined_consumption:  # 0 on a trip that burnt no fuel
            lines.append(f"⛽ {_num(last.avg_combined_consumption, 'l/100 km')}")
    lines += ["", "<b>All trips</b>, yours and the community's average"]
    if every is None:
        lines.append(NO_ALL_TRIPS)
        return "\n".join(lines)
    lines.append(f"⚡ consumption {_versus(every.avg_electric_consumption, PER_100_KM)}")
    lines.append(f"♻️ recuperation {_versus(every.avg_recuperation, PER_100_KM)}")
    cycle = every.chargecycle_range
    if cycle is not None:
        parts = [_versus(cycle, "km", 0)]
        if cycle.user_high is not None:
            parts.append(f"best {_num(cycle.user_high, 'km', 0)}")
        if cycle.user_current_charge_cycle is not None:
            parts.append(f"this charge {_num(cycle.user_current_charge_cycle, 'km', 0)}")
        lines.append("🔋 per charge " + ", ".join(parts))
    total = every.total_electric_distance
    if total is not None and total.user_total is not None:
        lines.append(f"🛣 {_thousands(total.user_total)} km driven electrically")
    if every.saved_co2 is not None:
        green = every.saved_co2_green_energy
        extra = "" if green is None else f" ({_thousands(green)} kg with green power)"
        lines.append(f"🌱 {every.saved_co2:.1f} kg CO₂ saved{extra}")
    return "\n".join(lines)


def _place_name(value: str) -> str:
    """Cars report places in capitals ("BAYERSTRASSE"); shown as words, anything else as given."""
    return escape(value.title() if value.isupper() else value)


def destinations(car: StoredVehicle, items: list[Destination]) -> str:
    if not items:
        return NO_DESTINATIONS.format(car=car_label(car))
    lines = [f"🧭 <b>Last destinations of {car_label(car)}</b>"]
    for number, item in enumerate(items, 1):
        where = ", ".join(_place_name(part) for part in (item.street, item.city, item.country) if part)
        if not where:
            where = "–" if item.lat is None or item.lon is None else f"{item.lat:.5f}, {item.lon:.5f}"
        when = "" if item.created_at is None else f" · {item.created_at:%d %b %Y}"
        lines.append(f"{number}. {where}{when}")
    return "\n".join(lines)


# Sending a place to the car
POI_OFFER = "Send it to your car's navigation?"
PLACE_UNNAMED = "📍 <b>Shared location</b>"
POI_NO_CAR = "None of your cars can receive places from me."
POI_UNSUPPORTED = "{car} cannot receive places from me."
POI_SENDING = "Sending…"
POI_SENT = "📍 Sent to {car}'s navigation."


def place(poi: Poi) -> str:
    lines = [f"📍 <b>{escape(poi.name)}</b>" if poi.name else PLACE_UNNAMED]
    if poi.street:
        lines.append(escape(poi.street))
    lines.append(f"{poi.lat:.5f}, {poi.lon:.5f}")
    return "\n".join([*lines, "", POI_OFFER])


def send_to(car: StoredVehicle) -> str:
    return f"🚗 Send to {car_label(car)}"


# Linking: which backend, and BMW CarData's device flow
LINK_BACKEND = (
    "How should I reach your BMW?\n\n"
    "<b>BMW CarData</b>: BMW's official service for cars sold in the EU. Read-only: status, position and "
    "charging messages; no lock, climate or other remote commands.\n"
    "<b>i Remote API</b>: full remote control, for older ConnectedDrive accounts that still have it."
)
BACKEND_BUTTONS = {
    "cardata": "BMW CarData (official, EU, read-only)",
    "iremote": "i Remote API (full remote control)",
}
CARDATA_PORTAL_URL = "https://www.bmw.de/de-de/mybmw/vehicle-overview"
CARDATA_STEPS = (
    "Linking with <b>BMW CarData</b> needs a one-time setup in the "
    f'<a href="{CARDATA_PORTAL_URL}">MyBMW portal</a>:\n'
    "1. Choose your car, then <i>BMW CarData</i> → <i>Create CarData client</i>.\n"
    "2. Subscribe the client to <i>CarData API</i> and <i>CarData Stream</i> (if the portal complains, "
    "wait half a minute and try again).\n"
    "3. Under <i>Configure data stream</i>, tick the data to stream: charging, battery, range, mileage, "
    "location and doors.\n"
    "4. Send me the client's <b>client id</b>. I delete your message as soon as I have read it."
)
CARDATA_CLIENT_ID_INVALID = (
    "That doesn't look like a CarData client id (letters, digits and dashes, as the portal shows it); "
    "please send it again, or /cancel."
)
CARDATA_STARTING = "Asking BMW for a login code…"
CARDATA_START_FAILED = "BMW did not start the login: {reason} Send the client id again, or /cancel."
CARDATA_WAITING = (
    "🔑 Open the BMW login below, sign in to your MyBMW account and confirm the code "
    "<code>{code}</code>.\n⏳ Waiting for your approval (the code is valid until {until} UTC)."
)
CARDATA_OPEN_BUTTON = "🔗 Open the BMW login"
CARDATA_COPY_BUTTON = "📋 Copy the code {code}"
CARDATA_APPROVED = "✅ Approved. Setting up the data stream of your cars…"
CARDATA_EXPIRED = "⌛ The code expired before it was confirmed; nothing was stored."
CARDATA_RETRY_BUTTON = "🔄 Try again"
CARDATA_DENIED = "🚫 The login was declined at BMW; nothing was stored. /link to start again."
CARDATA_GRANT_REFUSED = (
    "⚠️ BMW refused the login (it sometimes does, even after a confirmation); nothing was stored."
)
CARDATA_CLIENT_REFUSED = (
    "⚠️ BMW refused this client id: check that it is subscribed to CarData API and CarData Stream in the "
    "MyBMW portal, then /link again. Nothing was stored."
)
CARDATA_LINK_FAILED = "⚠️ I could not finish the link: {reason} Nothing was kept. /link to try again."
CARDATA_NO_CARS = (
    "BMW confirmed the login, but no car is mapped to this account as its PRIMARY user, so CarData gives "
    "no data; nothing was stored."
)
CARDATA_LINKED = (
    "Linked with BMW CarData! I found:\n{cars}\n\n"
    "CarData is read-only: /status shows what the car last reported, and I tell you when charging ends."
)
CARDATA_RETRY_GONE = "That login has ended; start again with /link."


def cardata_waiting(code: str, until: datetime) -> str:
    return CARDATA_WAITING.format(code=escape(code), until=f"{until:%H:%M}")


def cardata_start_failed(reason: str) -> str:
    return CARDATA_START_FAILED.format(reason=escape(reason))


def cardata_link_failed(reason: str) -> str:
    return CARDATA_LINK_FAILED.format(reason=escape(reason))


# A car linked through BMW CarData: read-only, each part of its status as old as the car's last report of it
READ_ONLY = (
    "{car} is linked through BMW CarData, which is read-only: I can show its status, not send it commands."
)
STREAM_NO_DATA = (
    "No data from the car yet. If that stays so, tick the data to stream under <i>Configure data stream</i> "
    "in the MyBMW portal; older i3s send some values only after a drive."
)
CHARGING_WORDS = {
    "NOCHARGING": "not charging",
    "INITIALIZATION": "getting ready to charge",
    "CHARGINGPAUSED": "charging paused",
    "CHARGINGENDED": "charging ended",
    "CHARGINGERROR": "charging error",
}
DOOR_WORDS = {
    "SECURED": "🔒 secured",
    "LOCKED": "🔒 locked",
    "UNLOCKED": "🔓 unlocked",
    "CLOSED": "🚪 closed",
}


def when(moment: datetime, now: datetime | None = None) -> str:
    """How old a value is: "2 min ago" within the hour and a half, else its day and time (UTC)."""
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 90:
        return "just now"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min ago"
    moment, today = moment.astimezone(UTC), now.astimezone(UTC).date()
    day = {0: "today", 1: "yesterday"}.get((today - moment.date()).days, f"{moment:%d %b}")
    return f"{day} {moment:%H:%M} UTC"


SNAPSHOT_FAILED = "⚠️ No fresh snapshot from BMW: {reason}"
FEW_CALLS_LEFT = 5  # from here on, a Refresh says how many of the day's BMW calls are left
CALLS_LEFT = (
    "\n\n🔄 {calls} of today's BMW calls left for Refresh; the stream keeps this up to date meanwhile."
)


def snapshot_failed(reason: str) -> str:
    return SNAPSHOT_FAILED.format(reason=escape(reason))


def calls_left(calls: int) -> str:
    """A line for the end of a refreshed status when few calls are left, else nothing."""
    return CALLS_LEFT.format(calls=calls) if calls <= FEW_CALLS_LEFT else ""


# The range estimate of a car without range polylines (CarData)
ESTIMATE_UNAVAILABLE = (
    "{car} has not reported its position and electric range yet, so there is no estimate to draw."
)
ESTIMATE_CAPTION = (
    "🗺 <b>Estimated range of {car}</b>\n"
    "{colour} ring: about {reach:.0f} km as the crow flies, from {range:.0f} km of electric range "
    "(roads wind, so a rough guide: CarData sends no range map)\n"
    "🔴 the car · {ages}"
)


def estimate_caption(car: StoredVehicle, s: CarStatus, reach: float, colour: str, *, base_map: bool) -> str:
    range_km = s.electric_range_km or 0.0
    caption = ESTIMATE_CAPTION.format(
        car=car_label(car), colour=escape(colour), reach=reach, range=range_km, ages=status_ages(s)
    )
    return caption + ("" if base_map else MAP_NO_BASE)


# The status of any car, from the backend-neutral model (bot/car_status.py)
PART_NAMES = {part: part.value for part in Part}


def status_ages(s: CarStatus, now: datetime | None = None) -> str:
    """ "updated 2 min ago" when the car reported everything at once; else the age of each part, parts of
    one age together: "charge, plug: 2 min ago · position: yesterday 18:04 UTC"."""
    by_age: dict[str, list[str]] = {}
    for part in Part:
        if part in s.reported_at:
            by_age.setdefault(when(s.reported_at[part], now), []).append(PART_NAMES[part])
    if len(by_age) == 1:
        return f"updated {next(iter(by_age))}"
    return " · ".join(f"{', '.join(parts)}: {age}" for age, parts in by_age.items())


def car_status(car: StoredVehicle, s: CarStatus, now: datetime | None = None) -> str:
    """A car's last known status, each part as old as the car's report of it."""
    lines = [f"<b>{car_label(car)}</b>"]
    if s.empty:
        return "\n".join([*lines, STREAM_NO_DATA])
    charge = "–" if s.soc is None else f"{s.soc:.0f} %"
    lines.append(f"🔋 {charge} · {_km(s.electric_range_km)} electric")
    if s.fuel_range_km or s.fuel_litres or s.fuel_percent:  # a BEV reports 0 for a tank it does not have
        fuel = [f"{s.fuel_litres:g} l"] if s.fuel_litres is not None else []
        fuel += [f"{s.fuel_percent:.0f} %"] if s.fuel_percent is not None else []
        lines.append(f"⛽ {_km(s.fuel_range_km)} on fuel" + (f" ({', '.join(fuel)})" if fuel else ""))
    if s.charging:
        target = "" if s.target_soc is None else f" to {s.target_soc:.0f} %"
        left = "" if not s.minutes_left else f", {_duration(s.minutes_left)} left"
        lines.append(f"⚡ charging{target}{left}")
    elif s.plugged_in is not None:
        state = CHARGING_WORDS.get(s.charging_state or "", escape(_words(s.charging_state)))
        lines.append(f"🔌 plugged in, {state}" if s.plugged_in else "🔌 not plugged in")
    if s.lock_state is not None:
        lines.append(LOCK_STATES.get(s.lock_state, f"🔐 {escape(_words(s.lock_state))}"))
    if s.open_items is not None:
        open_items = [OPEN_NAMES.get(item, escape(item)) for item in s.open_items]
        lines.append("🚪 open: " + ", ".join(open_items) if open_items else "🚪 all doors and windows closed")
    if s.mileage_km is not None:
        lines.append(f"🛣 {_thousands(s.mileage_km)} km")
    lines.append(f"📍 {_car_where(s.position)}")
    lines.append(f"🕒 {status_ages(s, now)}")
    return "\n".join(lines)


def _car_where(position: CarPosition | None) -> str:
    if position is not None and position.usable:
        return f"{position.lat:.5f}, {position.lon:.5f}"
    return IMPOSSIBLE_POSITION if position is not None and position.impossible else NO_POSITION
