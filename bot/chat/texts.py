"""Every sentence the bot says and every number format, in one place (HTML parse mode)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from bot.bmw.models import ExecutionState, ServiceType, VehicleStatus
from bot.store import StoredVehicle

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", "Charge, range, doors and where the car is"),
    ("lock", "Lock the doors"),
    ("unlock", "Unlock the doors (asks first)"),
    ("climate", "Start climate control"),
    ("charge", "Start charging now"),
    ("flash", "Flash the lights"),
    ("map", "Range map: how far you can go"),
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
HELP = "Here is what I can do:\n" + "\n".join(f"/{name} — {text}" for name, text in COMMANDS)
NOT_ALLOWED = "Sorry, this is a private bot. Ask its owner to add your Telegram ID ({tg_id})."
UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."
DONT_UNDERSTAND = "I didn't understand that. Try /status, or /help for everything I can do."
EDITED_IGNORED = "I only act on new messages; please send it again instead of editing."
CANCELLED = "OK, cancelled."
NOTHING_TO_CANCEL = "There is nothing to cancel."
STALE_BUTTON = "This button is no longer valid."
BUSY = "Just a moment…"

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
NOT_LINKED = "You have not linked a BMW account yet: use /link."

# Cars
PICK_CAR = "Which car?"
CAR_SELECTED = "Now using {car}."
UNLINK_ASK = "Remove your BMW account, its tokens, answers and every setting from this bot?"
UNLINK_DONE = "Done: your account and all its data are gone. /link to start again."
UNLINK_KEPT = "OK, nothing was removed."

# Status
UPDATING = "Asking {car} for its status…"
NO_POSITION = "not shared"

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
ANSWER_REMEMBER = "Remember the security answer (encrypted) so I don't have to ask next time?"
ANSWER_REMEMBERED = "Saved, encrypted. /unlink removes it."
ANSWER_NOT_REMEMBERED = "OK, I won't keep it."
ANSWER_TIMEOUT = "I didn't get the security answer in time; ask again with /unlock."

BMW_TROUBLE = "⚠️ {reason}"


def car_label(car: StoredVehicle) -> str:
    """`i3 (…3456, M-AB 123)`: the VIN tail tells two identical models apart."""
    parts = [f"…{car.vin[-4:]}"] + ([car.license_plate] if car.license_plate else [])
    return escape(f"{car.model or 'BMW'} ({', '.join(parts)})")


def cars_list(cars: list[StoredVehicle]) -> str:
    return "\n".join(f"• {car_label(car)}" for car in cars)


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


def status(car: StoredVehicle, s: VehicleStatus, now: datetime | None = None) -> str:
    lines = [f"<b>{car_label(car)}</b>"]
    charge = "–" if s.charging_level_hv is None else f"{s.charging_level_hv:.0f} %"
    lines.append(f"🔋 {charge} · {_km(s.remaining_range_electric)} electric")
    if s.remaining_range_fuel is not None or s.remaining_fuel is not None:
        fuel = "" if s.remaining_fuel is None else f" ({s.remaining_fuel:g} l)"
        lines.append(f"⛽ {_km(s.remaining_range_fuel)} on fuel{fuel}")
    if s.is_charging:
        left = "" if s.charging_time_remaining is None else f", {_duration(s.charging_time_remaining)} left"
        lines.append(f"⚡ charging{left}")
    elif s.is_plugged_in:
        lines.append(f"🔌 plugged in, {_words(s.charging_status)}")
    else:
        lines.append("🔌 not plugged in")
    lines.append(LOCK_STATES.get(s.door_lock_state or "", f"🔐 {_words(s.door_lock_state)}"))
    open_items = [OPEN_NAMES.get(item, item) for item in s.open_items]
    lines.append("🚪 open: " + ", ".join(open_items) if open_items else "🚪 all doors and windows closed")
    if s.mileage is not None:
        lines.append(f"🛣 {s.mileage:,} km".replace(",", " "))
    if s.position is not None and s.position.usable:
        lines.append(f"📍 {s.position.lat:.5f}, {s.position.lon:.5f}")
    else:
        lines.append(f"📍 {NO_POSITION}")
    lines.append(f"🕒 updated {ago(s.update_time, now)}")
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
MAP_UNAVAILABLE = "BMW has no range map for {car} right now."
MAP_NO_BASE = "\n(The street map could not be loaded; showing the range on a plain background.)"
MODE_NAMES = {"ECO_PRO_PLUS": "ECO PRO+", "ECO_PRO": "ECO PRO", "COMFORT": "COMFORT"}


def map_caption(
    car: StoredVehicle, legend: tuple[tuple[str, str], ...], reaches: dict[str, float], *, base_map: bool
) -> str:
    lines = [f"🗺 <b>Range of {car_label(car)}</b>"]
    for mode, colour in legend:
        reach = f" ≈ {reaches[mode]:.0f} km" if mode in reaches else ""
        lines.append(f"{escape(colour)}: {escape(MODE_NAMES.get(mode, _words(mode).upper()))}{reach}")
    lines.append("🔴 the car")
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
END_REASONS = {
    "CHARGING_GOAL_REACHED": "charge goal reached",
    "CONNECTOR_REMOVAL": "the cable was unplugged",
    "END_REQUESTED_BY_DRIVER": "stopped by the driver",
}


def on_off(on: bool) -> str:
    return "on" if on else "off"


def notify_button(name: str, on: bool) -> str:
    return f"{'✅' if on else '⬜'} {NOTIFY_LABELS[name]}"


def charge_push(
    car: StoredVehicle,
    headline: str,
    status: VehicleStatus,
    *,
    soc_at_start: int | None,
    charged_seconds: float | None,
) -> str:
    """A charge push; `headline` is a CHARGE_HEADLINES key, `charged_seconds` None while still charging."""
    lines = [CHARGE_HEADLINES[headline].format(car=f"<b>{car_label(car)}</b>")]
    soc = "–" if status.charging_level_hv is None else f"{status.charging_level_hv:.0f} %"
    start = f"{soc_at_start} % → " if soc_at_start is not None and charged_seconds is not None else ""
    lines.append(f"🔋 {start}{soc} · {_km(status.remaining_range_electric)} electric")
    if charged_seconds is None:
        if status.charging_time_remaining is not None:
            lines.append(f"⏳ about {_duration(status.charging_time_remaining)} to full")
    else:
        lines.append(f"⏱ charged for {_duration(round(charged_seconds / 60))}")
        reason = status.last_charging_end_reason
        if reason in END_REASONS:
            lines.append(f"ℹ️ {END_REASONS[reason]}")
    return "\n".join(lines)
