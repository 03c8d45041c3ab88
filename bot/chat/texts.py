"""Every sentence the bot says and every number format, in one place (HTML parse mode)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape

from bot.alerts import Alert, AlertKind, AlertPrefs
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
from bot.chat import prefs
from bot.history import BMW_HISTORY, ChargeSession, local
from bot.store import StoredVehicle


@dataclass(frozen=True)
class RemoteAction:
    """One remote service of the car: a row is all it takes to add one. Its button under /status, its command
    (and /help line), its toasts, progress and result messages are all read from here."""

    service: ServiceType
    capability: str  # the car's capability flag that must be on
    name: str  # in progress messages, toasts and results
    done: str  # the result when the car carried it out; {car}
    code: str | None = None  # callback data of its status button, "<code>:<car ref>"; None: no button
    button: str | None = None  # that button's label
    command: str | None = None  # its command; None: none
    describe: str | None = None  # the command's line in /help and Telegram's menu
    asks_first: bool = False  # unlock: a confirmation first, and the security answer (bot/chat/remote.py)

    def __post_init__(self) -> None:
        if (self.code is None) != (self.button is None) or (self.command is None) != (self.describe is None):
            raise ValueError(f"{self.service}: a button needs a code and a label, a command a description")


# In the order of the buttons under /status and of the commands in /help.
REMOTE_ACTIONS: tuple[RemoteAction, ...] = (
    RemoteAction(
        ServiceType.DOOR_LOCK,
        "doorLock",
        name="Lock",
        done="🔒 {car} is locked.",
        code="lock",
        button="🔒 Lock",
        command="lock",
        describe="Lock the doors",
    ),
    RemoteAction(
        ServiceType.DOOR_UNLOCK,
        "doorUnlock",
        name="Unlock",
        done="🔓 {car} is unlocked.",
        code="unl",
        button="🔓 Unlock",
        command="unlock",
        describe="Unlock the doors (asks first)",
        asks_first=True,
    ),
    RemoteAction(
        ServiceType.CLIMATE_NOW,
        "climateNow",
        name="Climate",
        done="❄️ Climate control is running in {car}.",
        code="clim",
        button="❄️ Climate",
        command="climate",
        describe="Start climate control",
    ),
    RemoteAction(
        ServiceType.CHARGE_NOW,
        "chargeNow",
        name="Charge now",
        done="⚡ {car} has started charging.",
        code="chg",
        button="⚡ Charge",
        command="charge",
        describe="Start charging now",
    ),
    RemoteAction(
        ServiceType.LIGHT_FLASH,
        "lightFlash",
        name="Flash lights",
        done="💡 {car} flashed its lights.",
        code="flash",
        button="💡 Flash",
        command="flash",
        describe="Flash the lights",
    ),
    RemoteAction(
        ServiceType.HORN_BLOW,
        "hornBlow",
        name="Horn",
        done="📯 {car} sounded its horn.",
        code="horn",
        button="📯 Horn",
    ),
    RemoteAction(
        ServiceType.VEHICLE_FINDER,
        "vehicleFinder",
        name="Find car",
        done="📍 {car} reported where it is.",
        code="find",
        button="🔎 Find",
    ),
    # Sent by Save in /schedule (bot/chat/schedule.py), which has its own command and buttons.
    RemoteAction(
        ServiceType.CHARGING_CONTROL,
        "chargingControl",
        name="Save charging schedule",
        done="🗓 {car} took the new charging schedule.",
    ),
)
REMOTE_ACTION: dict[ServiceType, RemoteAction] = {action.service: action for action in REMOTE_ACTIONS}
SERVICE_NAMES: dict[ServiceType, str] = {action.service: action.name for action in REMOTE_ACTIONS}

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "Charge, range, doors and where the car is"),
    *((action.command, action.describe) for action in REMOTE_ACTIONS if action.command and action.describe),
    ("map", "Range map: how far you can go"),
    ("schedule", "Charging schedule: timers, window, mode"),
    ("trips", "Last trip and statistics of all trips"),
    ("destinations", "The car's last destinations"),
    ("history", "Charging history: last charges, chart, CSV"),
    ("cars", "Choose which car to use"),
    ("notify", "Choose which charging messages you get"),
    ("alerts", "Alerts: charge level, not charging, plug-in reminder, left open"),
    ("settings", "Units, language, time zone, quiet hours"),
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
ALERTS_TIMING = (
    "I check alerts whenever I look at a car: every minute while it is plugged in, otherwise every "
    '15 minutes, so an alert "after N minutes" can come up to 15 minutes later.'
)
HELP = (
    "Here is what I can do:\n"
    + "\n".join(f"/{name} — {text}" for name, text in COMMANDS)
    + "\n\n📎 Send me a location or a place, and I'll offer to send it to your car's navigation."
    + f"\n\n🔔 {ALERTS_TIMING}"
)
NOT_ALLOWED = "Sorry, this is a private bot. Ask its owner to add your Telegram ID ({tg_id})."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
DONT_UNDERSTAND = "I didn't understand that. Try /status, or /help for everything I can do."
SOMETHING_WRONG = "⚠️ Something went wrong on my side; please try again."
EDITED_IGNORED = "I only act on new messages; please send it again instead of editing."
CANCELLED = "OK, cancelled."
YES = "Yes"
NO = "No"
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
LINK_ANOTHER = "Yes, link another"
KEEP_IT = "No, keep it"
LINK_KEEP = "OK, your account stays linked."
LINK_REGION = "Where is your ConnectedDrive account registered?"
REGION_NAMES = {"rest_of_world": "Europe / Rest of World", "usa": "USA (and Canada)", "china": "China"}
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
OTHER_CAR = "🚗 Other car"
CAR_SELECTED = "Now using {car}."
UNLINK_ASK = "Remove your BMW account, its tokens, answers and every setting from this bot?"
REMOVE_EVERYTHING = "Yes, remove everything"
UNLINK_DONE = "Done: your account and all its data are gone. /link to start again."
UNLINK_KEPT = "OK, nothing was removed."

# Status
REFRESH_BUTTON = "🔄 Refresh"
STATUS_BUTTON = "🔄 Status"
LOCATION_BUTTON = "📍 Location"
COPY_VIN_BUTTON = "📋 VIN"
COPY_POSITION_BUTTON = "📋 Position"
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
PROGRESS: dict[str, str] = {
    "SENDING": "sending to BMW…",
    ExecutionState.INITIATED: "BMW has the request…",
    ExecutionState.PENDING: "waking the car…",
    ExecutionState.DELIVERED: "the car has it…",
}
PROGRESS_WAITING = "waiting for the car…"
PROGRESS_LINE = "{name} — {car}: {step}"
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
SERVICE_UNSUPPORTED_SOME_CAR = "The car does not support that."
COMMAND_IN_PROGRESS = "{car} is still busy with the previous command; please wait for it."
COMMAND_IN_PROGRESS_SOME_CAR = "The car is still busy with the previous command; please wait for it."
TOO_MANY_COMMANDS = "That's a lot of commands; please wait {seconds} s before the next one."
UNLOCK_ASK = "Unlock {car}? Make sure you can see it."
UNLOCK_EXPIRED = "This unlock confirmation has expired; ask again with /unlock."
UNLOCK_CANCELLED = "OK, {car} stays locked."
UNLOCK_CANCELLED_SOME_CAR = "OK, the car stays locked."
YES_UNLOCK = "🔓 Yes, unlock"
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
YES_REMEMBER = "Yes, remember"
ANSWER_REMEMBERED = "Saved, encrypted. /unlink removes it."
ANSWER_NOT_REMEMBERED = "OK, I won't keep it."
ANSWER_TIMEOUT = "I didn't get the security answer in time; ask again with /unlock."

BMW_TROUBLE = "⚠️ {reason}"


def command_in_progress(car: StoredVehicle | None) -> str:
    return COMMAND_IN_PROGRESS.format(car=car_label(car)) if car else COMMAND_IN_PROGRESS_SOME_CAR


def unsupported(car: StoredVehicle | None) -> str:
    return SERVICE_UNSUPPORTED.format(car=car_label(car)) if car else SERVICE_UNSUPPORTED_SOME_CAR


def unlock_cancelled(car: StoredVehicle | None) -> str:
    """`car` None: unlinked since it was asked."""
    return UNLOCK_CANCELLED.format(car=car_label(car)) if car else UNLOCK_CANCELLED_SOME_CAR


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


AGO_UNKNOWN = "unknown"
JUST_NOW = "just now"
HOURS_MINUTES = "{hours} h {minutes:02d} min"
MINUTES = "{minutes} min"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return AGO_UNKNOWN
    now = now or datetime.now(UTC)
    if (now - moment).total_seconds() < 90:
        return JUST_NOW
    return prefs.ago(moment, now)


def _at(moment: datetime | None, now: datetime | None = None) -> str:
    """ " (14:07)", in the user's zone and clock; with the date when that is not today."""
    return "" if moment is None else f" ({prefs.clock_or_date_time(moment, now or datetime.now(UTC))})"


def _words(value: str | None) -> str:
    return value.replace("_", " ").lower() if value else "unknown"


def _km(value: float | None, miles: float | None = None) -> str:
    """A distance in km in the user's unit; `miles` is the car's own figure in miles, where it gives one."""
    return prefs.distance(value, miles=miles)


def _duration(minutes: int | float) -> str:
    hours, mins = divmod(int(minutes), 60)
    return HOURS_MINUTES.format(hours=hours, minutes=mins) if hours else MINUTES.format(minutes=mins)


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
STATUS_TITLE = "<b>{car}</b>"
STATUS_CHARGE = "🔋 {charge} · {range} electric"
STATUS_FUEL = "⛽ {range} on fuel"
STATUS_FUEL_LITRES = "⛽ {range} on fuel ({litres} l)"
STATUS_CHARGING = "⚡ charging"
STATUS_CHARGING_LEFT = "⚡ charging, {left} left"
STATUS_PLUGGED_IN = "🔌 plugged in, {state}"
STATUS_NOT_PLUGGED_IN = "🔌 not plugged in"
STATUS_OTHER_LOCK = "🔐 {state}"
STATUS_OPEN = "🚪 open: {items}"
STATUS_ALL_CLOSED = "🚪 all doors and windows closed"
STATUS_MILEAGE = "🛣 {distance}"
STATUS_POSITION = "📍 {where}"
STATUS_UPDATED = "🕒 updated {ago}{at}"


def status(car: StoredVehicle, s: CarStatus, now: datetime | None = None) -> str:
    lines = [STATUS_TITLE.format(car=car_label(car))]
    charge = "–" if s.soc is None else f"{s.soc:.0f} %"
    lines.append(STATUS_CHARGE.format(charge=charge, range=_km(s.electric_range_km)))
    # Fuel only for cars with a tank (the backend leaves it out for a BEV's `remainingFuel: 0`).
    if car.drive_train != "BEV" and (s.fuel_range_km is not None or s.fuel_litres is not None):
        fuel_range = _km(s.fuel_range_km)
        if s.fuel_litres is None:
            lines.append(STATUS_FUEL.format(range=fuel_range))
        else:
            lines.append(STATUS_FUEL_LITRES.format(range=fuel_range, litres=prefs.number(s.fuel_litres, 1)))
    if s.charging:
        if s.minutes_left is None:
            lines.append(STATUS_CHARGING)
        else:
            lines.append(STATUS_CHARGING_LEFT.format(left=_duration(s.minutes_left)))
    elif s.plugged_in:
        lines.append(STATUS_PLUGGED_IN.format(state=escape(_words(s.charging_state))))
    else:
        lines.append(STATUS_NOT_PLUGGED_IN)
    other_lock = STATUS_OTHER_LOCK.format(state=escape(_words(s.lock_state)))
    lines.append(LOCK_STATES.get(s.lock_state or "", other_lock))
    if s.open_items is not None:  # unknown for cars that do not say which door is open
        open_items = [OPEN_NAMES.get(item, escape(item)) for item in s.open_items]
        lines.append(STATUS_OPEN.format(items=", ".join(open_items)) if open_items else STATUS_ALL_CLOSED)
    if s.mileage_km is not None:
        lines.append(STATUS_MILEAGE.format(distance=_km(s.mileage_km)))
    lines.append(STATUS_POSITION.format(where=where(s.position)))
    lines.append(STATUS_UPDATED.format(ago=ago(s.updated_at, now), at=_at(s.updated_at, now)))
    return "\n".join(lines)


def progress(service: ServiceType, car: StoredVehicle, state: str | None) -> str:
    step = PROGRESS.get(state or "", PROGRESS_WAITING)
    return PROGRESS_LINE.format(name=SERVICE_NAMES[service], car=car_label(car), step=step)


def outcome(service: ServiceType, car: StoredVehicle, state: str | None) -> str:
    label = car_label(car)
    if state == ExecutionState.EXECUTED:
        return REMOTE_ACTION[service].done.format(car=label)
    if state == ExecutionState.NOT_EXECUTED:
        return SERVICE_NOT_EXECUTED.format(name=SERVICE_NAMES[service], car=label)
    return SERVICE_TIMED_OUT.format(name=SERVICE_NAMES[service], car=label)


# Range map
MAP_BUTTON = "🗺 Range map"
RANGE_ESTIMATE_BUTTON = "🗺 Range (estimate)"
MAP_DRAWING = "Drawing the range map…"
MAP_LOADING = "Drawing the range map of {car}…"
MAP_UNAVAILABLE = "BMW has no range map for {car} right now."
MAP_NO_BASE = "\n(The street map could not be loaded; showing the range on a plain background.)"
MODE_NAMES = {"ECO_PRO_PLUS": "ECO PRO+", "ECO_PRO": "ECO PRO", "COMFORT": "COMFORT"}
MAP_TITLE = "🗺 <b>Range of {car}</b>"
MAP_LEGEND = "{colour}: {mode}"
MAP_LEGEND_REACH = "{colour}: {mode} ≈ {reach}"
MAP_THE_CAR = "🔴 the car"
MAP_IMPOSSIBLE_POSITION = "📍 {where}"


def map_unavailable(car: StoredVehicle, position: CarPosition | None) -> str:
    """No range map; when the car's position is impossible too (the likely cause), that is said as well."""
    lines = [MAP_UNAVAILABLE.format(car=car_label(car))]
    if position is not None and position.impossible:
        lines.append(MAP_IMPOSSIBLE_POSITION.format(where=IMPOSSIBLE_POSITION))
    return "\n".join(lines)


def map_caption(
    car: StoredVehicle,
    legend: tuple[tuple[str, str], ...],
    reaches: dict[str, float],
    *,
    base_map: bool,
    position: CarPosition | None = None,
) -> str:
    lines = [MAP_TITLE.format(car=car_label(car))]
    for mode, colour in legend:
        name = escape(MODE_NAMES.get(mode, _words(mode).upper()))
        if mode in reaches:
            lines.append(MAP_LEGEND_REACH.format(colour=escape(colour), mode=name, reach=_km(reaches[mode])))
        else:
            lines.append(MAP_LEGEND.format(colour=escape(colour), mode=name))
    lines.append(MAP_THE_CAR)
    if position is not None and position.impossible:
        lines.append(MAP_IMPOSSIBLE_POSITION.format(where=IMPOSSIBLE_POSITION))
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
PUSH_CHARGE = "🔋 {soc} · {range} electric"
PUSH_CHARGE_FROM = "🔋 {start} % → {soc} · {range} electric"
PUSH_TO_FULL = "⏳ about {duration} to full"
PUSH_CHARGED_FOR = "⏱ charged for {duration}"
PUSH_END_REASON = "ℹ️ {reason}"
GOAL_REACHED = "CHARGING_GOAL_REACHED"
END_REASONS = {
    GOAL_REACHED: "charge goal reached",
    "CONNECTOR_REMOVAL": "the cable was unplugged",
    "END_REQUESTED_BY_DRIVER": "stopped by the driver",
}


ON, OFF = "on", "off"


def on_off(on: bool) -> str:
    return ON if on else OFF


def notify_button(name: str, on: bool) -> str:
    return SWITCH_BUTTON.format(check=check(on), name=NOTIFY_LABELS[name])


def charge_push(car: StoredVehicle, notice: ChargeNotice) -> str:
    """A charge push, from either backend: the headline of its kind, the numbers, why it ended."""
    lines = [CHARGE_HEADLINES[notice.kind].format(car=f"<b>{car_label(car)}</b>")]
    status, soc_at_start, charged_seconds = notice.status, notice.soc_at_start, notice.charged_seconds
    soc = "–" if status.soc is None else f"{status.soc:.0f} %"
    electric = _km(status.electric_range_km)
    if soc_at_start is not None and charged_seconds is not None:
        lines.append(PUSH_CHARGE_FROM.format(start=f"{soc_at_start:.0f}", soc=soc, range=electric))
    else:
        lines.append(PUSH_CHARGE.format(soc=soc, range=electric))
    if charged_seconds is None:
        if status.minutes_left is not None:
            lines.append(PUSH_TO_FULL.format(duration=_duration(status.minutes_left)))
    else:
        lines.append(PUSH_CHARGED_FOR.format(duration=_duration(round(charged_seconds / 60))))
        reason = status.end_reason
        # A car that stops short without a reason of its own still reports the last charge's: not this one's.
        stale = reason == GOAL_REACHED and notice.kind != "full"
        if reason in END_REASONS and not stale:
            lines.append(PUSH_END_REASON.format(reason=END_REASONS[reason]))
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
# Its buttons ({check} is a ✅ or ⬜)
SWITCH_BUTTON = "{check} {name}"
EDIT_BUTTON = "✏️ {name}"
WINDOW_SWITCH = "{check} Window"
WINDOW_EDIT = "✏️ Window"
MODE_BUTTON = "🔁 Mode: {mode}"
CLIMATIZATION_SWITCH = "{check} Climatization"
EARLIER = "➖ {minutes} min"
LATER = "➕ {minutes} min"
SET_TIME = "⌨️ Set time"
# The window's start and end: earlier, later, type it
WINDOW_START_BUTTONS = ("Start ➖ {minutes}", "Start ➕ {minutes}", "⌨️ Start")
WINDOW_END_BUTTONS = ("End ➖ {minutes}", "End ➕ {minutes}", "⌨️ End")
BACK = "⬅️ Back"
SAVE = "💾 Save"
DISCARD = "✖️ Discard"
NO_TIME = "--:--"
ONE_OFF_TIMER = "One-off timer"
TIMER_NUMBER = "Timer {number}"
NO_DAY = "no day"
EVERY_DAY = "every day"
SWITCH_ON = "✅ on"
SWITCH_OFF = "⬜ off"
SCHEDULE_TITLE = "🗓 <b>Charging schedule of {car}</b> ({kind})"
SCHEDULE_TIMER = "{icon} {timer}: {when} · {switch}"
SCHEDULE_TIMER_DAYS = "{icon} {timer}: {when} · {days} · {switch}"
SCHEDULE_NO_WINDOW = "🌙 No preferred charging window"
SCHEDULE_WINDOW = "{icon} Preferred charging window {span} · {switch}"
SCHEDULE_MODE = "⚡ Charging {mode}"
SCHEDULE_CLIMATIZATION = "❄️ Climatization for departure: {switch}"


def timer_name(key: str) -> str:
    return (
        ONE_OFF_TIMER
        if key == "overrideTimer"
        else TIMER_NUMBER.format(number=escape(key.removeprefix("timer")))
    )


def day_short(day: str) -> str:
    return day[:3].title()


def days(weekdays: tuple[str, ...] | None) -> str:
    chosen = set(weekdays or ())
    if not chosen:
        return NO_DAY
    if chosen >= set(WEEKDAYS):
        return EVERY_DAY
    return ", ".join(day_short(day) for day in WEEKDAYS if day in chosen)


def check(on: bool | None) -> str:
    return "✅" if on else "⬜"


def switch(on: bool | None) -> str:
    return SWITCH_ON if on else SWITCH_OFF


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
    return "\n".join(lines)


# Trips and destinations
TRIPS_LOADING = "Fetching the trip statistics of {car}…"
TRIPS_UNSUPPORTED = "{car} does not share trip statistics."
NO_LAST_TRIP = "No trip recorded yet."
NO_ALL_TRIPS = "No statistics over all trips yet."
DESTINATIONS_LOADING = "Fetching the last destinations of {car}…"
DESTINATIONS_UNSUPPORTED = "{car} does not share its last destinations."
NO_DESTINATIONS = "{car} has no recent destinations."
KWH = "kWh"
TRIPS_TITLE = "🛣 <b>Trips of {car}</b>"
LAST_TRIP = "<b>Last trip</b>"
TRIP_DATE = "📅 {date}"
TRIP_DISTANCE = "🚗 {distance}{took}{electric}"  # the next two, or nothing
TRIP_TOOK = " in {duration}"
TRIP_ELECTRIC = " · {ratio:.0f} % electric"
TRIP_ENERGY = "⚡ {consumption} · ♻️ {recuperation} recuperated"
TRIP_EFFICIENCY = "🌟 efficiency {percent:.0f} % {stars}"
TRIP_FUEL = "⛽ {consumption}"
ALL_TRIPS = "<b>All trips</b>, yours and the community's average"
ALL_CONSUMPTION = "⚡ consumption {value}"
ALL_RECUPERATION = "♻️ recuperation {value}"
PER_CHARGE = "🔋 per charge {values}"  # the average, then the next two, comma-separated
PER_CHARGE_BEST = "best {km}"
PER_CHARGE_NOW = "this charge {km}"
DRIVEN_ELECTRICALLY = "🛣 {distance} driven electrically"
CO2_SAVED = "🌱 {kg} CO₂ saved"
CO2_SAVED_GREEN = "🌱 {kg} CO₂ saved ({green} with green power)"
VERSUS_COMMUNITY = "{yours} (community {community})"
DESTINATIONS_TITLE = "🧭 <b>Last destinations of {car}</b>"
DESTINATION = "{number}. {where}"
DESTINATION_DATED = "{number}. {where} · {date}"


def _num(value: float | None, unit: str, digits: int = 1) -> str:
    return "–" if value is None else f"{prefs.number(value, digits)} {unit}"


def _per_100(value: float | None, unit: str = KWH, digits: int = 1) -> str:
    return prefs.per_100(value, unit, digits)


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
        return "\n".join(lines)
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
    return "\n".join(lines)


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
    return "\n".join(lines)


# Sending a place to the car
POI_OFFER = "Send it to your car's navigation?"
PLACE_UNNAMED = "📍 <b>Shared location</b>"
POI_NO_CAR = "None of your cars can receive places from me."
POI_UNSUPPORTED = "{car} cannot receive places from me."
POI_SENDING = "Sending…"
POI_SENT = "📍 Sent to {car}'s navigation."
SEND_TO = "🚗 Send to {car}"


def place(poi: Poi) -> str:
    lines = [f"📍 <b>{escape(poi.name)}</b>" if poi.name else PLACE_UNNAMED]
    if poi.street:
        lines.append(escape(poi.street))
    lines.append(f"{poi.lat:.5f}, {poi.lon:.5f}")
    return "\n".join([*lines, "", POI_OFFER])


def send_to(car: StoredVehicle) -> str:
    return SEND_TO.format(car=car_label(car))


# Charging history
HISTORY_NONE = (
    "📊 No charge of {car} recorded yet. I note every charge I see from now on, and /history shows them."
)
HISTORY_TITLE = "📊 <b>Charging history of {car}</b>"
HISTORY_ESTIMATED = "≈ kWh estimated from the share of the battery charged and its usable capacity."
HISTORY_CHART_CAPTION = "📊 {car}, last {days} days: ≈ {kwh:.1f} kWh in {charges}"
HISTORY_CHART_ENERGY = "Energy charged per day, last {days} days (kWh, estimated)"
HISTORY_CHART_SOC = "State of charge during the last charge"
HISTORY_CHART_NO_SOC = "The car did not report its state of charge for this charge."
HISTORY_CSV_BUTTON = "📄 CSV of all charges"
HISTORY_CSV_CAPTION = "📄 {car}: all {charges} recorded"
SESSION_ENDINGS = {
    "full": "🔋 full",
    "complete": "🔋 complete",
    "early": "🔌 stopped early",
    "stopped": "🔌 stopped",
    "interrupted": "⚠️ interrupted",
    "error": "⚠️ error",
}


def _session(session: ChargeSession) -> str:
    when = f"{local(session.started_at):%d %b %H:%M}"
    start, end = session.soc_start, session.soc_end
    socs = "–" if start is None or end is None else f"{start:.0f}–{end:.0f} %"
    about = "" if session.source == BMW_HISTORY else "≈"  # BMW's own history measured it
    kwh = "– kWh" if session.energy_kwh is None else f"{about}{session.energy_kwh:.1f} kWh"
    ending = SESSION_ENDINGS.get(session.ended, escape(_words(session.ended)))
    return f"{when} · {socs} · {kwh} · {_duration(round(session.seconds / 60))} · {ending}"


def history(car: StoredVehicle, sessions: list[ChargeSession]) -> str:
    """The last sessions, newest first, one line each."""
    lines = [HISTORY_TITLE.format(car=car_label(car)), *map(_session, sessions)]
    return "\n".join([*lines, "", HISTORY_ESTIMATED])


def _charges(count: int) -> str:
    return f"{count} charge" if count == 1 else f"{count} charges"


def history_caption(car: StoredVehicle, days: int, kwh: float, count: int) -> str:
    return HISTORY_CHART_CAPTION.format(car=car_label(car), days=days, kwh=kwh, charges=_charges(count))


def history_csv_caption(car: StoredVehicle, count: int) -> str:
    return HISTORY_CSV_CAPTION.format(car=car_label(car), charges=_charges(count))


# Alerts: /alerts and the pushes
ALERTS_ASK = (
    "🔔 <b>Alerts about your cars</b>\n{lines}\n\nTap an alert to switch it on or off, ➖ ➕ to change it.\n"
    "{timing}"
)
ALERT_NAMES = {
    AlertKind.LEVEL: "Charge level",
    AlertKind.STALL: "Not charging",
    AlertKind.PLUG: "Plug-in reminder",
    AlertKind.OPEN: "Left open",
}
ALERT_LINES = {
    AlertKind.LEVEL: "tell me when charging reaches {value} % (not when it started above)",
    AlertKind.STALL: (
        "plugged in but not charging for {value} min (not while the car waits for its charging window)"
    ),
    AlertKind.PLUG: "at {time}, if the charge is below {value} % and the car is not plugged in",
    AlertKind.OPEN: "unlocked, or a door or window open, {value} min after the car was parked",
}
ALERT_UNITS = {AlertKind.LEVEL: "%", AlertKind.STALL: "min", AlertKind.PLUG: "%", AlertKind.OPEN: "min"}
ALERT_TIME_BUTTON = "🕘 {sign} {minutes} min"
ALERT_PUSHES = {
    AlertKind.LEVEL: "🔋 {car} has reached {soc} (your alert: {value} %).",
    AlertKind.STALL: "🔌 {car} is plugged in but has not been charging for {value} min.",
    AlertKind.PLUG: "🔌 Plug in {car}? It is at {soc}, below your {value} %, and not plugged in.",
    AlertKind.OPEN: "⚠️ {car} has been parked for {value} min and is not closed up:",
}
ALERT_UNLOCKED = "🔓 unlocked"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} %"


def clock_time(minute: int) -> str:
    """Minutes after midnight as HH:MM."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def alert_value(kind: AlertKind, prefs: AlertPrefs) -> int:
    return {
        AlertKind.LEVEL: prefs.level_percent,
        AlertKind.STALL: prefs.stall_minutes,
        AlertKind.PLUG: prefs.plug_percent,
        AlertKind.OPEN: prefs.open_minutes,
    }[kind]


def alert_on(kind: AlertKind, prefs: AlertPrefs) -> bool:
    return {
        AlertKind.LEVEL: prefs.level_on,
        AlertKind.STALL: prefs.stall_on,
        AlertKind.PLUG: prefs.plug_on,
        AlertKind.OPEN: prefs.open_on,
    }[kind]


def alerts_menu(prefs: AlertPrefs) -> str:
    lines = [
        f"{check(alert_on(kind, prefs))} <b>{ALERT_NAMES[kind]}</b>: "
        + ALERT_LINES[kind].format(value=alert_value(kind, prefs), time=clock_time(prefs.plug_minute))
        for kind in AlertKind
    ]
    return ALERTS_ASK.format(lines="\n".join(lines), timing=ALERTS_TIMING)


def _alert_setting(kind: AlertKind, prefs: AlertPrefs) -> str:
    when = f" at {clock_time(prefs.plug_minute)}" if kind is AlertKind.PLUG else ""
    return f"{alert_value(kind, prefs)} {ALERT_UNITS[kind]}{when}"


def alert_switch(kind: AlertKind, prefs: AlertPrefs) -> str:
    """An alert's button: on or off, and its value."""
    return f"{check(alert_on(kind, prefs))} {ALERT_NAMES[kind]}: {_alert_setting(kind, prefs)}"


def alert_step(kind: AlertKind, sign: str, step: int) -> str:
    return f"{sign} {step} {ALERT_UNITS[kind]}"


def alert_changed(kind: AlertKind, prefs: AlertPrefs) -> str:
    """The toast after a press: the alert as it is now."""
    return f"{ALERT_NAMES[kind]}: {on_off(alert_on(kind, prefs))}, {_alert_setting(kind, prefs)}"


def alert_push(car: StoredVehicle, alert: Alert) -> str:
    lines = [
        ALERT_PUSHES[alert.kind].format(
            car=f"<b>{car_label(car)}</b>", soc=_percent(alert.soc), value=alert.value
        )
    ]
    if alert.kind is AlertKind.OPEN:
        if alert.locked is False:
            lines.append(ALERT_UNLOCKED)
        if alert.open_items:
            lines.append(
                "🚪 open: " + ", ".join(OPEN_NAMES.get(item, escape(item)) for item in alert.open_items)
            )
    elif alert.kind is AlertKind.STALL:
        lines.append(f"🔋 {_percent(alert.soc)}")
    return "\n".join(lines)


# Settings
SETTINGS_TITLE = "⚙️ <b>Your settings</b>"
SETTINGS_UNITS = "📏 Distances in {unit}, {clock} clock"
UNIT_NAMES = {"km": "kilometres", "mi": "miles"}
CLOCK_NAMES = {24: "24-hour", 12: "12-hour"}
SETTINGS_LANGUAGE = "🗣 Language: {language}"
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
SETTINGS_ZONE = "🌍 Time zone: {zone} (now {time})"
SETTINGS_SERVER_ZONE = "the server's, {zone}"
SETTINGS_QUIET_ON = "🌙 Quiet hours {start}–{end}: what I send on my own (charging news) arrives silently"
SETTINGS_QUIET_OFF = "🔔 Quiet hours: off"
SETTINGS_NOTE = "Tap to change; it applies at once. Until you choose, units and language follow Telegram's."
SETTINGS_SAVED = "Saved"
ZONE_PICK = "🌍 Which time zone? Tap one, or type its name."
ZONE_SERVER = "🖥 The server's"
ZONE_TYPE = "⌨️ Type a name"
ZONE_ASK = "Send the name of your time zone, for example Europe/Berlin or America/New_York, or /cancel."
ZONE_UNKNOWN = (
    "I don't know a time zone called “{name}”. Send a name like Europe/Berlin or America/New_York, "
    "or /cancel."
)
ZONE_SET = "OK, your time zone is {zone}."
ZONE_TIMEOUT = "I stopped waiting for the time zone; /settings shows your settings."
BACK = "⬅️ Back"
QUIET_BUTTON = "Quiet hours"
QUIET_EDGES = {"start": "🌙 Start", "end": "☀️ End"}


def zone_name(zone: object) -> str:
    return escape(str(zone))


def settings(p: prefs.Prefs, now: datetime) -> str:
    """The /settings message, in the prefs it shows (they are also the current ones)."""
    unit = UNIT_NAMES["mi" if p.miles else "km"]
    lines = [
        SETTINGS_TITLE,
        SETTINGS_UNITS.format(unit=unit, clock=CLOCK_NAMES[12 if p.clock12 else 24]),
        SETTINGS_LANGUAGE.format(language=LANGUAGE_NAMES[p.language]),
    ]
    zone = zone_name(p.zone)
    zone = zone if p.zone_chosen else SETTINGS_SERVER_ZONE.format(zone=zone)
    lines.append(SETTINGS_ZONE.format(zone=zone, time=prefs.clock(now)))
    if p.quiet is None:
        lines.append(SETTINGS_QUIET_OFF)
    else:
        start, end = (prefs.minutes_of_day(edge) for edge in p.quiet)
        lines.append(SETTINGS_QUIET_ON.format(start=start, end=end))
    return "\n".join([*lines, "", SETTINGS_NOTE])


def zone_unknown(name: str) -> str:
    return ZONE_UNKNOWN.format(name=escape(name[:64]))


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
        lines.append(STATUS_MILEAGE.format(distance=_km(s.mileage_km)))
    lines.append(f"📍 {_car_where(s.position)}")
    lines.append(f"🕒 {status_ages(s, now)}")
    return "\n".join(lines)


def _car_where(position: CarPosition | None) -> str:
    if position is not None and position.usable:
        return f"{position.lat:.5f}, {position.lon:.5f}"
    return IMPOSSIBLE_POSITION if position is not None and position.impossible else NO_POSITION
