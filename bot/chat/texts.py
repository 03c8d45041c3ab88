"""Every sentence the bot says and every number format, in one place (HTML parse mode)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape

from babel import Locale

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
from bot.car_errors import CarServiceError, ErrorKind
from bot.car_status import CarPosition, CarStatus, ChargeNotice, Part
from bot.cardata import errors as cd
from bot.cardata.models import StreamBlock
from bot.chat import prefs
from bot.chat.i18n import Msg, Plural, tr
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
        name=Msg("Lock"),
        done=Msg("🔒 {car} is locked."),
        code="lock",
        button=Msg("🔒 Lock"),
        command="lock",
        describe=Msg("Lock the doors"),
    ),
    RemoteAction(
        ServiceType.DOOR_UNLOCK,
        "doorUnlock",
        name=Msg("Unlock"),
        done=Msg("🔓 {car} is unlocked."),
        code="unl",
        button=Msg("🔓 Unlock"),
        command="unlock",
        describe=Msg("Unlock the doors (asks first)"),
        asks_first=True,
    ),
    RemoteAction(
        ServiceType.CLIMATE_NOW,
        "climateNow",
        name=Msg("Climate"),
        done=Msg("❄️ Climate control is running in {car}."),
        code="clim",
        button=Msg("❄️ Climate"),
        command="climate",
        describe=Msg("Start climate control"),
    ),
    RemoteAction(
        ServiceType.CHARGE_NOW,
        "chargeNow",
        name=Msg("Charge now"),
        done=Msg("⚡ {car} has started charging."),
        code="chg",
        button=Msg("⚡ Charge"),
        command="charge",
        describe=Msg("Start charging now"),
    ),
    RemoteAction(
        ServiceType.LIGHT_FLASH,
        "lightFlash",
        name=Msg("Flash lights"),
        done=Msg("💡 {car} flashed its lights."),
        code="flash",
        button=Msg("💡 Flash"),
        command="flash",
        describe=Msg("Flash the lights"),
    ),
    RemoteAction(
        ServiceType.HORN_BLOW,
        "hornBlow",
        name=Msg("Horn"),
        done=Msg("📯 {car} sounded its horn."),
        code="horn",
        button=Msg("📯 Horn"),
    ),
    RemoteAction(
        ServiceType.VEHICLE_FINDER,
        "vehicleFinder",
        name=Msg("Find car"),
        done=Msg("📍 {car} reported where it is."),
        code="find",
        button=Msg("🔎 Find"),
    ),
    # Sent by Save in /schedule (bot/chat/schedule.py), which has its own command and buttons.
    RemoteAction(
        ServiceType.CHARGING_CONTROL,
        "chargingControl",
        name=Msg("Save charging schedule"),
        done=Msg("🗓 {car} took the new charging schedule."),
    ),
)
REMOTE_ACTION: dict[ServiceType, RemoteAction] = {action.service: action for action in REMOTE_ACTIONS}
SERVICE_NAMES: dict[ServiceType, str] = {action.service: action.name for action in REMOTE_ACTIONS}

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", Msg("Charge, range, doors and where the car is")),
    *((action.command, action.describe) for action in REMOTE_ACTIONS if action.command and action.describe),
    ("map", Msg("Range map: how far you can go")),
    ("schedule", Msg("Charging schedule: timers, window, mode")),
    ("trips", Msg("Last trip and statistics of all trips")),
    ("destinations", Msg("The car's last destinations")),
    ("history", Msg("Charging history: last charges, chart, CSV")),
    ("cars", Msg("Choose which car to use")),
    ("notify", Msg("Choose which charging messages you get")),
    ("alerts", Msg("Alerts: charge level, not charging, plug-in reminder, left open")),
    ("settings", Msg("Units, language, time zone, quiet hours")),
    ("link", Msg("Link your BMW ConnectedDrive account")),
    ("unlink", Msg("Remove your account and all its data")),
    ("help", Msg("What this bot can do")),
    ("cancel", Msg("Stop what we are doing")),
)

START_UNLINKED = Msg(
    "Hi {name}! I show your BMW i3's charge, range and position, tell you when a charge has finished, send "
    "the alerts you choose and keep a charging history.\n\nFirst, link your car with /link:\n{ways}"
)
# Before linking: each way /link offers, in brief (bot/config.py CAR_BACKENDS).
LINK_WAYS = {
    "cardata": Msg(
        "• <b>BMW CarData</b>, BMW's official service: read-only, so no remote commands. This is how a "
        "real i3 links today."
    ),
    "iremote": Msg(
        "• <b>i Remote API</b>: all of the above, and lock, unlock, climate, charging and the lights, for "
        "accounts that still have it."
    ),
}
START_LINKED = Msg(
    "Hi {name}! Your account is linked. I show your i3's charge, range and position, lock and unlock it, "
    "start climate and charging, flash its lights, send places to its navigation, and tell you when "
    "charging has finished. Try /status; /help lists everything."
)
START_LINKED_READ_ONLY = Msg(
    "Hi {name}! Your i3 is linked through BMW CarData, which is read-only. I show its charge, range and "
    "last position (/status), estimate its range on a map (/map), tell you when a charge has finished, "
    "send the /alerts you choose and keep its charging /history. Try /status; /help lists everything."
)
ALERTS_TIMING = Msg(
    "I check alerts whenever I look at a car: every minute while it is plugged in, otherwise every "
    '15 minutes, so an alert "after N minutes" can come up to 15 minutes later.'
)
ALERTS_TIMING_CARDATA = Msg(
    "A car linked through BMW CarData reports to me itself: I check alerts at each report and every minute, "
    'so an alert "after N minutes" comes at most a minute late, as soon as the car has reported.'
)
ALERTS_QUIET_CAR = Msg(
    "ℹ️ {car} reports to BMW CarData only when it is switched off and when a charge reaches 100 % (as every "
    'i3 does), so I cannot watch it in between: "Left open" never comes (it reports before you lock it), '
    '"Not charging" only when two of its reports N minutes apart show it, and the charge level and the '
    "plug-in reminder go by its last report, which can be hours old."
)
HELP = Msg("Here is what I can do:")
HELP_READ_ONLY = Msg(
    "ℹ️ Your car is linked through BMW CarData, which is read-only: I cannot lock or unlock it, start climate "
    "or charging, flash the lights or sound the horn, change its charging schedule or send it places, and "
    "CarData shares no trips or destinations. /map draws a ring estimated from the electric range instead "
    "of BMW's range map."
)
HELP_PLACES = Msg("📎 Send me a location or a place, and I'll offer to send it to your car's navigation.")
NOT_ALLOWED = Msg("Sorry, this is a private bot. Ask its owner to add your Telegram ID ({tg_id}).")
UNKNOWN_COMMAND = Msg("I don't know that command. /help lists what I can do.")
DONT_UNDERSTAND = Msg("I didn't understand that. Try /status, or /help for everything I can do.")
SOMETHING_WRONG = Msg("⚠️ Something went wrong on my side; please try again.")
EDITED_IGNORED = Msg("I only act on new messages; please send it again instead of editing.")
CANCELLED = Msg("OK, cancelled.")
YES = Msg("Yes")
NO = Msg("No")
NOTHING_TO_CANCEL = Msg("There is nothing to cancel.")
STALE_BUTTON = Msg("This button is no longer valid.")
BUSY = Msg("Just a moment…")
PRIVATE_ONLY = Msg("🔒 Accounts and cars only in a private chat with me: tap below.")
PRIVATE_CHAT_BUTTON = Msg("💬 Open a private chat")
THERE = Msg("there")  # "Hi there!" to a user without a first name
DELETE_SECRET_YOURSELF = Msg(
    "⚠️ I could not delete your message, and it holds a secret: please delete it yourself now."
)


def plain(text: str) -> str:
    """What one of these HTML texts shows, for the places Telegram shows as plain text: buttons, toasts."""
    return unescape(tr(text))


def joined(parts: Iterable[str], separator: str = "\n") -> str:
    """Lines (or list items) in the user's language: a sentence among them as it is is translated too."""
    return separator.join(map(tr, parts))


def start(first_name: str | None, cars: Sequence[StoredVehicle], ways: Sequence[str], read_only: bool) -> str:
    """/start: what the user's `cars` can do (`read_only`: BMW CarData's); before linking, the `ways` /link
    offers."""
    name = escape(first_name) if first_name else THERE
    if not cars:
        return START_UNLINKED.format(name=name, ways=link_ways(ways))
    return (START_LINKED_READ_ONLY if read_only else START_LINKED).format(name=name)


def link_ways(ways: Sequence[str]) -> str:
    return joined(LINK_WAYS[way] for way in ways if way in LINK_WAYS)


# What a command needs of a car: /help leaves it out when none of the user's cars has that capability.
COMMAND_NEEDS: dict[str, str] = {
    **{action.command: action.capability for action in REMOTE_ACTIONS if action.command},
    "schedule": REMOTE_ACTION[ServiceType.CHARGING_CONTROL].capability,
    "trips": "statisticsAvailable",
    "destinations": "lastDestinations",
}
SEND_POI = "sendPoi"  # what a shared place needs (bot/chat/poi.py)


def help_text(
    capabilities: frozenset[str] | None = None, *, read_only: bool = False, ways: Sequence[str] = ()
) -> str:
    """/help: the commands the user's cars can use (their `capabilities`; None before linking: every
    command, and the `ways` /link offers); with what a read-only car (BMW CarData) cannot do, for a user
    who has one."""
    commands = joined(
        f"/{name} — {text}"
        for name, text in COMMANDS
        if capabilities is None or COMMAND_NEEDS.get(name, "") in capabilities | {""}
    )
    timing = ALERTS_TIMING_CARDATA if read_only else ALERTS_TIMING
    lines = [HELP, commands, ""]
    if capabilities is None or SEND_POI in capabilities:
        lines += [HELP_PLACES, ""]
    lines.append(f"🔔 {timing}")
    if capabilities is None and ways:
        lines += ["", link_ways(ways)]
    return joined([*lines, "", HELP_READ_ONLY] if read_only else lines)


# Linking
LINK_REPLACE = Msg("You have linked {username}. Link another account instead? Its data here will be removed.")
LINK_ANOTHER = Msg("Yes, link another")
KEEP_IT = Msg("No, keep it")
LINK_KEEP = Msg("OK, your account stays linked.")
LINK_REGION = Msg("Where is your ConnectedDrive account registered?")
REGION_NAMES = {
    "rest_of_world": Msg("Europe / Rest of World"),
    "usa": Msg("USA (and Canada)"),
    "china": Msg("China"),
}
LINK_EMAIL = Msg("Your ConnectedDrive e-mail address?")
LINK_EMAIL_INVALID = Msg("That doesn't look like an e-mail address; please send it again, or /cancel.")
LINK_PASSWORD = Msg("And your ConnectedDrive password? I delete your message as soon as I have read it.")
LINK_CHECKING = Msg("Checking with BMW…")
LINK_WRONG_PASSWORD = Msg(
    "BMW did not accept that e-mail or password; nothing was stored. Send the password again, or /cancel."
)
LINK_FAILED = Msg("I could not link your account: {reason} Nothing was stored. Try /link again later.")
LINK_NO_CARS = Msg("BMW accepted the login but lists no cars on this account; nothing was stored.")
LINK_DONE = Msg("Linked! I found:\n{cars}\n\nTry /status.")
LINK_TIMEOUT = Msg("Linking timed out; start again with /link when you are ready.")
LINK_COOL_DOWN = Msg("🔒 Too many failed logins; to protect the account, please try /link again in {wait}.")
PASSWORD_REFUSED = Msg("🔑 BMW no longer accepts your password for {email}; please /link again.")
PASSWORD_REFUSED_PUSH = Msg(
    "🔑 BMW no longer accepts your password for {email}, so I have stopped checking your cars and won't "
    "send charging messages. Please /link again."
)
CARDATA_RELINK_PUSH = Msg(
    "🔑 BMW CarData no longer accepts the link to your car (unused for two weeks, or revoked), so I receive "
    "nothing from it and won't send charging messages. Please /link again."
)
# Why BMW lets nothing through an owner's stream: the push (told once, with "Try now") and /status's line.
CARDATA_STREAM_BLOCKED_PUSH = {
    StreamBlock.HELD: Msg(
        "📡 Another app holds your car's data stream at BMW (Home Assistant, evcc, ioBroker or a bridge, for "
        "example), and BMW allows only one, so nothing reaches me and I can't send charging messages. To get "
        "them here, stop that app's stream (or remove that app); I try again every few minutes by myself, or "
        "at once with the button."
    ),
    StreamBlock.NOT_CONFIGURED: Msg(
        "📡 BMW sends me nothing from your car: the data stream is not set up for it, so I can't send "
        "charging messages. In the MyBMW portal (your car → BMW CarData), open “Configure data stream” and "
        "tick the data to stream, and check that your CarData client is subscribed to “CarData Stream”. I "
        "try again every few minutes by myself, or at once with the button."
    ),
}
CARDATA_STREAM_BLOCKED_STATUS = {
    StreamBlock.HELD: Msg("📡 Another app holds this car's data stream at BMW: nothing new arrives."),
    StreamBlock.NOT_CONFIGURED: Msg(
        "📡 This car's data stream is not set up in the MyBMW portal: nothing new arrives."
    ),
}
CARDATA_TRY_NOW_BUTTON = Msg("🔄 Try now")
CARDATA_TRYING_NOW = Msg("Trying again now…")
CARDATA_STREAM_NOT_BLOCKED = Msg("Your car's stream is not waiting for BMW right now: nothing to try.")
NOT_LINKED = Msg("You have not linked a BMW account yet: use /link.")
LINK_PASSWORD_TOO_LONG = Msg(
    "That is longer than any password BMW takes (at most {limit} characters); please send it again, "
    "or /cancel."
)


def link_replace(username: str) -> str:
    return LINK_REPLACE.format(username=escape(username))


def link_failed(reason: str) -> str:
    return LINK_FAILED.format(reason=escape(reason))


# Cars
PICK_CAR = Msg("Which car?")
OTHER_CAR = Msg("🚗 Other car")
CAR_SELECTED = Msg("Now using {car}.")
UNLINK_ASK = Msg("Remove your BMW account, its tokens, answers and every setting from this bot?")
REMOVE_EVERYTHING = Msg("Yes, remove everything")
UNLINK_DONE = Msg("Done: your account and all its data are gone. /link to start again.")
UNLINK_KEPT = Msg("OK, nothing was removed.")
# /unlink of a user with no account linked who chose settings, alerts or pushes: those are what goes
UNLINK_SETTINGS_ASK = Msg(
    "No BMW account is linked, but I keep your choices from /settings, /alerts and /notify. Remove them "
    "from this bot?"
)
UNLINK_SETTINGS_DONE = Msg("Done: your settings are gone.")

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


# A read BMW is slow to answer: the placeholder's second line, then the verdict
STILL_WAITING = Msg("{waiting}\n⏳ Still waiting for BMW…")
NOT_ANSWERING = Msg("⌛ BMW is not answering; try again in a few minutes.")

# Remote commands
PROGRESS: dict[str, str] = {
    "SENDING": Msg("sending to BMW…"),
    ExecutionState.INITIATED: Msg("BMW has the request…"),
    ExecutionState.PENDING: Msg("waking the car…"),
    ExecutionState.DELIVERED: Msg("the car has it…"),
}
PROGRESS_WAITING = Msg("waiting for the car…")
PROGRESS_LINE = "{name} — {car}: {step}"
SERVICE_NOT_EXECUTED = Msg("⚠️ {name}: {car} did not carry it out.")
SERVICE_TIMED_OUT = Msg("⌛ {name}: {car} did not answer in time. It may still carry it out; check /status.")
SERVICE_INTERRUPTED = Msg(
    "⏹ {name}: the bot is restarting. The command reached BMW, but I can't wait for {car}'s answer; "
    "check /status in a minute."
)
SERVICE_OUTCOME_UNKNOWN = Msg(
    "❔ {name}: the bot restarted while {car} was on it, and BMW no longer tells how it ended. "
    "Check /status before you send it again."
)
SERVICE_FAILED = Msg("⚠️ {name} failed: {reason}")
SERVICE_UNSUPPORTED = Msg("{car} does not support that.")
SERVICE_UNSUPPORTED_SOME_CAR = Msg("The car does not support that.")
COMMAND_IN_PROGRESS = Msg("{car} is still busy with the previous command; please wait for it.")
COMMAND_IN_PROGRESS_SOME_CAR = Msg("The car is still busy with the previous command; please wait for it.")
TOO_MANY_COMMANDS = Msg("That's a lot of commands; please wait {seconds} s before the next one.")
UNLOCK_ASK = Msg("Unlock {car}? Make sure you can see it.")
UNLOCK_EXPIRED = Msg("This unlock confirmation has expired; ask again with /unlock.")
UNLOCK_CANCELLED = Msg("OK, {car} stays locked.")
UNLOCK_CANCELLED_SOME_CAR = Msg("OK, the car stays locked.")
YES_UNLOCK = Msg("🔓 Yes, unlock")
ANSWER_ASK = Msg(
    "BMW wants the answer to your account's security question to unlock {car}. Send it now "
    "(I delete your message right away), or /cancel."
)
ANSWER_WRONG = Msg("BMW did not accept that security answer; it was not stored. Try /unlock again.")
ANSWER_TOO_LONG = Msg(
    "That is longer than any security answer BMW takes (at most {limit} characters); it was not used. "
    "Try /unlock again."
)
ANSWER_REMEMBER = Msg("Remember the security answer (encrypted) so I don't have to ask next time?")
YES_REMEMBER = Msg("Yes, remember")
ANSWER_REMEMBERED = Msg("Saved, encrypted. /unlink removes it.")
ANSWER_NOT_REMEMBERED = Msg("OK, I won't keep it.")
ANSWER_TIMEOUT = Msg("I didn't get the security answer in time; ask again with /unlock.")

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


# What a refusal of a car service says, by its kind (bot/car_errors.py): the errors' own messages are English,
# for logs. `python -m bot i18n check` names a kind missing here (bot/chat/i18n.py).
ERROR_SENTENCES: dict[ErrorKind, Msg] = {
    ErrorKind.FAILED: Msg("The BMW service failed."),
    ErrorKind.UNAVAILABLE: Msg("The BMW service is not reachable right now; please try again later."),
    ErrorKind.BAD_RESPONSE: Msg("BMW answered with something this bot does not understand."),
    ErrorKind.UNKNOWN_CAR: Msg("BMW does not know this car on your account."),
    ErrorKind.LOGIN_REFUSED: Msg("BMW refused the username or password."),
    ErrorKind.API_KEY_REFUSED: Msg(
        "BMW refused this bot's API key; the bot's operator must fix its configuration."
    ),
    ErrorKind.SECURITY_ANSWER_NEEDED: Msg("BMW needs the answer to your security question for this command."),
    ErrorKind.SECURITY_ANSWER_WRONG: Msg("BMW refused the security answer."),
    ErrorKind.NOT_SUPPORTED: Msg("This car does not support that command."),
    ErrorKind.OTHER_REQUEST: Msg(
        "BMW now shows a later command of that kind, so this one's outcome is unknown."
    ),
    ErrorKind.COMMAND_TIMEOUT: Msg("The car did not confirm the command in time; it may still carry it out."),
    ErrorKind.RELINK: Msg("BMW CarData no longer accepts this link; please link the car again."),
    ErrorKind.BUDGET_SPENT: Msg("Today's BMW CarData calls are used up; more are possible from {when}."),
    ErrorKind.NOT_LINKED: Msg("No BMW CarData account is linked."),
    ErrorKind.CONTAINER_LIMIT: Msg(
        "Your BMW CarData account already has 10 data containers; delete one in the MyBMW portal,"
        " then link again."
    ),
    ErrorKind.UNKNOWN_CLIENT: Msg("BMW does not know this client id; check it in the MyBMW portal."),
    ErrorKind.CLIENT_NOT_SUBSCRIBED: Msg(
        "BMW refused the request; subscribe the client to CarData API and CarData Stream, then retry."
    ),
    ErrorKind.NOT_YOUR_CAR: Msg(
        "BMW CarData says this car is not yours to read: only the account of its primary user may read it."
    ),
    ErrorKind.KEYS_REFUSED: Msg(
        "BMW CarData refused the data this bot asks for; the bot's operator must update the bot."
    ),
}


def refusal(exc: CarServiceError) -> str:
    """A refusal of a car service in the user's language: its kind's sentence (a spent budget says from when,
    in the user's zone)."""
    sentence = ERROR_SENTENCES[exc.kind]
    if isinstance(exc, cd.BudgetSpent):
        return sentence.format(when=prefs.date_time(exc.retry_at))
    return tr(sentence)


def car_label(car: StoredVehicle) -> str:
    """`i3 (…3456, M-AB 123)`: the VIN tail tells two identical models apart."""
    parts = [f"…{car.vin[-4:]}"] + ([car.license_plate] if car.license_plate else [])
    return escape(f"{car.model or 'BMW'} ({', '.join(parts)})")


def cars_list(cars: list[StoredVehicle]) -> str:
    return joined(f"• {car_label(car)}" for car in cars)


def link_cool_down(seconds: float) -> str:
    return LINK_COOL_DOWN.format(wait=_duration(math.ceil(seconds / 60)))


def password_refused(email: str, *, push: bool = False) -> str:
    return (PASSWORD_REFUSED_PUSH if push else PASSWORD_REFUSED).format(email=escape(email))


AGO_UNKNOWN = Msg("unknown")
JUST_NOW = Msg("just now")
HOURS_MINUTES = Msg("{hours} h {minutes:02d} min")
MINUTES = Msg("{minutes} min")


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


# An unknown state word of BMW's is shown as it comes, up to this length: a 5,000-character one must not push
# a status past Telegram's 4,096 characters.
WORDS_MAX = 60


def _words(value: str | None) -> str:
    if not value:
        return tr(AGO_UNKNOWN)
    words = value.replace("_", " ").lower()
    return words if len(words) <= WORDS_MAX else words[: WORDS_MAX - 1] + "…"


def _km(value: float | None, miles: float | None = None) -> str:
    """A distance in km in the user's unit; `miles` is the car's own figure in miles, where it gives one."""
    return prefs.distance(value, miles=miles)


def _duration(minutes: int | float) -> str:
    hours, mins = divmod(int(minutes), 60)
    return HOURS_MINUTES.format(hours=hours, minutes=mins) if hours else MINUTES.format(minutes=mins)


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
STATUS_MILEAGE = "🛣 {distance}"
STATUS_POSITION = "📍 {where}"
STATUS_UPDATED = Msg("🕒 updated {ago}{at}")


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
MAP_BUTTON = Msg("🗺 Range map")
RANGE_ESTIMATE_BUTTON = Msg("🗺 Range (estimate)")
MAP_DRAWING = Msg("Drawing the range map…")
MAP_LOADING = Msg("Drawing the range map of {car}…")
MAP_UNAVAILABLE = Msg("BMW has no range map for {car} right now.")
MAP_NO_BASE = Msg("\n(The street map could not be loaded; showing the range on a plain background.)")
MODE_NAMES = {"ECO_PRO_PLUS": "ECO PRO+", "ECO_PRO": "ECO PRO", "COMFORT": "COMFORT"}
MAP_TITLE = Msg("🗺 <b>Range of {car}</b>")
MAP_LEGEND = "{colour}: {mode}"
MAP_LEGEND_REACH = "{colour}: {mode} ≈ {reach}"
MAP_THE_CAR = Msg("🔴 the car")
MAP_IMPOSSIBLE_POSITION = "📍 {where}"


def map_unavailable(car: StoredVehicle, position: CarPosition | None) -> str:
    """No range map; when the car's position is impossible too (the likely cause), that is said as well."""
    lines = [MAP_UNAVAILABLE.format(car=car_label(car))]
    if position is not None and position.impossible:
        lines.append(MAP_IMPOSSIBLE_POSITION.format(where=IMPOSSIBLE_POSITION))
    return joined(lines)


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
    return joined(lines) + ("" if base_map else tr(MAP_NO_BASE))


# Charge pushes and /notify
NOTIFY_ASK = Msg("🔔 Which messages should I send you about charging? Tap one to switch it on or off.")
NOTIFY_LABELS = {
    "finished": Msg("Charge finished"),
    "started": Msg("Charging started"),
    "interrupted": Msg("Charging interrupted"),
}
NOTIFY_SWITCHED = "{label}: {state}"
CHARGE_HEADLINES = {
    "started": Msg("⚡ {car} started charging."),
    "full": Msg("🔋 {car} has finished charging."),
    "early": Msg("🔌 {car} stopped charging before it was full."),
    "error": Msg("⚠️ {car} stopped charging with an error."),
    "interrupted": Msg("⚠️ Charging of {car} was interrupted."),
}
PUSH_CHARGE = Msg("🔋 {soc} · {range} electric")
PUSH_CHARGE_FROM = Msg("🔋 {start} % → {soc} · {range} electric")
PUSH_TO_FULL = Msg("⏳ about {duration} to full")
PUSH_CHARGED_FOR = Msg("⏱ charged for {duration}")
PUSH_END_REASON = Msg("ℹ️ {reason}")
# Why a charge ended, in the i Remote API's words, an i3's on CarData (hvpmFinishReason) and SP25 cars'
# (reasonChargingEnd; docs/cardata.md).
GOAL_REACHED = frozenset({"CHARGING_GOAL_REACHED", "HV_BATTERY_FULLY_CHARGED"})
_GOAL, _UNPLUGGED = Msg("charge goal reached"), Msg("the cable was unplugged")
_BY_DRIVER = Msg("stopped by the driver")
END_REASONS = {
    **dict.fromkeys(GOAL_REACHED, _GOAL),
    **dict.fromkeys(
        ("CONNECTOR_REMOVAL", "CONNECTOR_REMOVED", "CUSTOMER_INTERACTION_PLUG_REMOVED"), _UNPLUGGED
    ),
    **dict.fromkeys(("END_REQUESTED_BY_DRIVER", "CUSTOMER_INTERACTION_STOP_CHARGING"), _BY_DRIVER),
}


ON, OFF = Msg("on"), Msg("off")


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
    if soc_at_start is not None and notice.ended:
        lines.append(PUSH_CHARGE_FROM.format(start=f"{soc_at_start:.0f}", soc=soc, range=electric))
    else:
        lines.append(PUSH_CHARGE.format(soc=soc, range=electric))
    if not notice.ended:
        if status.minutes_left is not None:
            lines.append(PUSH_TO_FULL.format(duration=_duration(status.minutes_left)))
    else:
        if charged_seconds is not None:  # not known of a charge that ended unseen (a quiet car's)
            lines.append(PUSH_CHARGED_FOR.format(duration=_duration(round(charged_seconds / 60))))
        reason = status.end_reason
        # A car that stops short without a reason of its own still reports the last charge's: not this one's.
        stale = reason in GOAL_REACHED and notice.kind != "full"
        if reason in END_REASONS and not stale:
            lines.append(PUSH_END_REASON.format(reason=END_REASONS[reason]))
    return joined(lines)


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
SWITCH_ON = Msg("✅ on")
SWITCH_OFF = Msg("⬜ off")
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
    return joined(lines)


# Trips and destinations
TRIPS_LOADING = Msg("Fetching the trip statistics of {car}…")
TRIPS_UNSUPPORTED = Msg("{car} does not share trip statistics.")
NO_LAST_TRIP = Msg("No trip recorded yet.")
NO_ALL_TRIPS = Msg("No statistics over all trips yet.")
DESTINATIONS_LOADING = Msg("Fetching the last destinations of {car}…")
DESTINATIONS_UNSUPPORTED = Msg("{car} does not share its last destinations.")
TRIPS_READ_ONLY = Msg("{car} is linked through BMW CarData, which does not share trip statistics.")
DESTINATIONS_READ_ONLY = Msg(
    "{car} is linked through BMW CarData, which does not share its last destinations."
)
NO_DESTINATIONS = Msg("{car} has no recent destinations.")
KWH = "kWh"
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
DESTINATIONS_TITLE = Msg("🧭 <b>Last destinations of {car}</b>")
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


# Sending a place to the car
POI_OFFER = Msg("Send it to your car's navigation?")
PLACE_UNNAMED = Msg("📍 <b>Shared location</b>")
POI_NO_CAR = Msg("None of your cars can receive places from me.")
POI_UNSUPPORTED = Msg("{car} cannot receive places from me.")
POI_SENDING = Msg("Sending…")
POI_SENT = Msg("📍 Sent to {car}'s navigation.")
SEND_TO = Msg("🚗 Send to {car}")


def place(poi: Poi) -> str:
    lines = [f"📍 <b>{escape(poi.name)}</b>" if poi.name else PLACE_UNNAMED]
    if poi.street:
        lines.append(escape(poi.street))
    lines.append(f"{poi.lat:.5f}, {poi.lon:.5f}")
    return joined([*lines, "", POI_OFFER])


def send_to(car: StoredVehicle) -> str:
    return SEND_TO.format(car=car_label(car))


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
HISTORY_CHART_SOC = Msg("State of charge during the last charge")
HISTORY_CHART_NO_SOC = Msg("The car did not report its state of charge for this charge.")
HISTORY_CSV_BUTTON = Msg("📄 CSV of all charges")
HISTORY_CSV_CAPTION = Msg("📄 {car}: all {charges} recorded")
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


def _charges(count: int) -> str:
    return CHARGES.format(count)


def history_caption(car: StoredVehicle, days: int, kwh: float, count: int, measured: bool) -> str:
    """The chart's caption: its total is "≈" unless BMW measured every charge in it."""
    caption = HISTORY_CHART_CAPTION_MEASURED if measured else HISTORY_CHART_CAPTION
    return caption.format(car=car_label(car), days=days, kwh=prefs.number(kwh, 1), charges=_charges(count))


def history_csv_caption(car: StoredVehicle, count: int) -> str:
    return HISTORY_CSV_CAPTION.format(car=car_label(car), charges=_charges(count))


# Alerts: /alerts and the pushes
ALERTS_ASK = Msg(
    "🔔 <b>Alerts about your cars</b>\n{lines}\n\nTap an alert to switch it on or off, ➖ ➕ to change it.\n"
    "{timing}"
)
ALERT_NAMES = {
    AlertKind.LEVEL: Msg("Charge level"),
    AlertKind.STALL: Msg("Not charging"),
    AlertKind.PLUG: Msg("Plug-in reminder"),
    AlertKind.OPEN: Msg("Left open"),
}
ALERT_LINES = {
    AlertKind.LEVEL: Msg("tell me when charging reaches {value} % (not when it started above)"),
    AlertKind.STALL: (
        Msg("plugged in but not charging for {value} min (not while the car waits for its charging window)")
    ),
    AlertKind.PLUG: Msg("at {time}, if the charge is below {value} % and the car is not plugged in"),
    AlertKind.OPEN: Msg("unlocked, or a door or window open, {value} min after the car was parked"),
}
ALERT_UNITS = {
    AlertKind.LEVEL: "%",
    AlertKind.STALL: Msg("min"),
    AlertKind.PLUG: "%",
    AlertKind.OPEN: Msg("min"),
}
ALERT_TIME_BUTTON = Msg("🕘 {sign} {minutes} min")
ALERT_PUSHES = {
    AlertKind.LEVEL: Msg("🔋 {car} has reached {soc} (your alert: {value} %)."),
    AlertKind.STALL: Msg("🔌 {car} is plugged in but has not been charging for {value} min."),
    AlertKind.PLUG: Msg("🔌 Plug in {car}? It is at {soc}, below your {value} %, and not plugged in."),
    AlertKind.OPEN: Msg("⚠️ {car} has been parked for {value} min and is not closed up:"),
}
ALERT_UNLOCKED = Msg("🔓 unlocked")
ALERT_AT = Msg(" at {time}")  # after the reminder's value: "20 % at 21:00"


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


def alerts_menu(prefs: AlertPrefs, cardata: bool = False, quiet: Iterable[StoredVehicle] = ()) -> str:
    """/alerts; which delay applies: the i Remote polling, or CarData's reports for a `cardata` user, with
    what cannot be watched of each `quiet` car (one that reports rarely)."""
    lines = [
        f"{check(alert_on(kind, prefs))} <b>{ALERT_NAMES[kind]}</b>: "
        + ALERT_LINES[kind].format(value=alert_value(kind, prefs), time=clock_time(prefs.plug_minute))
        for kind in AlertKind
    ]
    timing: list[str] = [ALERTS_TIMING_CARDATA if cardata else ALERTS_TIMING]
    timing += [ALERTS_QUIET_CAR.format(car=f"<b>{car_label(car)}</b>") for car in quiet]
    return ALERTS_ASK.format(lines=joined(lines), timing=joined(timing))


def _alert_setting(kind: AlertKind, prefs: AlertPrefs) -> str:
    when = ALERT_AT.format(time=clock_time(prefs.plug_minute)) if kind is AlertKind.PLUG else ""
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
                STATUS_OPEN.format(
                    items=joined((OPEN_NAMES.get(item, escape(item)) for item in alert.open_items), ", ")
                )
            )
    elif alert.kind is AlertKind.STALL:
        lines.append(f"🔋 {_percent(alert.soc)}")
    return joined(lines)


# Settings
SETTINGS_TITLE = Msg("⚙️ <b>Your settings</b>")
SETTINGS_UNITS = Msg("📏 Distances in {unit}, {clock} clock")
UNIT_BUTTONS = {"km": "km", "mi": Msg("miles")}
UNIT_NAMES = {"km": Msg("kilometres"), "mi": Msg("miles")}
CLOCK_NAMES = {24: Msg("24-hour"), 12: Msg("12-hour")}
SETTINGS_LANGUAGE = Msg("🗣 Language: {language}")
# Each language in its own words (Babel's), as a language menu shows them: "Deutsch" for everyone.
LANGUAGE_NAMES = {code: Locale(code).get_display_name() or code for code in prefs.LANGUAGES}
SETTINGS_ZONE = Msg("🌍 Time zone: {zone} (now {time})")
SETTINGS_SERVER_ZONE = Msg("the server's, {zone}")
SETTINGS_QUIET_ON = Msg(
    "🌙 Quiet hours {start}–{end}: what I send on my own (charging news) arrives silently"
)
SETTINGS_QUIET_OFF = Msg("🔔 Quiet hours: off")
SETTINGS_NOTE = Msg(
    "Tap to change; it applies at once. Until you choose, units and language follow Telegram's."
)
SETTINGS_SAVED = Msg("Saved")
ZONE_PICK = Msg("🌍 Which time zone? Tap one, or type its name.")
ZONE_SERVER = Msg("🖥 The server's")
ZONE_TYPE = Msg("⌨️ Type a name")
ZONE_ASK = Msg("Send the name of your time zone, for example Europe/Berlin or America/New_York, or /cancel.")
ZONE_UNKNOWN = Msg(
    "I don't know a time zone called “{name}”. Send a name like Europe/Berlin or America/New_York, "
    "or /cancel."
)
ZONE_SET = Msg("OK, your time zone is {zone}.")
ZONE_TIMEOUT = Msg("I stopped waiting for the time zone; /settings shows your settings.")
BACK = Msg("⬅️ Back")
QUIET_BUTTON = Msg("Quiet hours")
QUIET_EDGES = {"start": Msg("🌙 Start"), "end": Msg("☀️ End")}


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
    return joined([*lines, "", SETTINGS_NOTE])


def zone_unknown(name: str) -> str:
    return ZONE_UNKNOWN.format(name=escape(name[:64]))


# Linking: which backend, and BMW CarData's device flow
LINK_BACKEND = Msg(
    "How should I reach your BMW?\n\n"
    "<b>BMW CarData</b>: BMW's official service for cars sold in the EU. Read-only: status, position and "
    "charging messages; no lock, climate or other remote commands.\n"
    "<b>i Remote API</b>: full remote control, for older ConnectedDrive accounts that still have it."
)
BACKEND_BUTTONS = {
    "cardata": Msg("BMW CarData (official, EU, read-only)"),
    "iremote": Msg("i Remote API (full remote control)"),
}
CARDATA_PORTAL_URL = "https://www.bmw.de/de-de/mybmw/vehicle-overview"
CARDATA_STEPS = Msg(
    "Linking with <b>BMW CarData</b> needs a one-time setup in the "
    '<a href="{portal}">MyBMW portal</a>:\n'
    "1. Choose your car, then <i>BMW CarData</i> → <i>Create CarData client</i>.\n"
    "2. Subscribe the client to <i>CarData API</i> and <i>CarData Stream</i> (if the portal complains, "
    "wait half a minute and try again).\n"
    "3. Under <i>Configure data stream</i>, tick the data to stream: charging, battery, range, mileage, "
    "location and doors.\n"
    "4. Send me the client's <b>client id</b>. I delete your message as soon as I have read it."
)
CARDATA_CLIENT_ID_INVALID = Msg(
    "That doesn't look like a CarData client id (letters, digits and dashes, as the portal shows it); "
    "please send it again, or /cancel."
)
CARDATA_STARTING = Msg("Asking BMW for a login code…")
CARDATA_START_FAILED = Msg("BMW did not start the login: {reason} Send the client id again, or /cancel.")
CARDATA_WAITING = Msg(
    "🔑 Open the BMW login below, sign in to your MyBMW account and confirm the code "
    "<code>{code}</code>.\n⏳ Waiting for your approval (the code is valid until {until})."
)
CARDATA_OPEN_BUTTON = Msg("🔗 Open the BMW login")
CARDATA_COPY_BUTTON = Msg("📋 Copy the code {code}")
CARDATA_APPROVED = Msg("✅ Approved. Setting up the data stream of your cars…")
CARDATA_EXPIRED = Msg("⌛ The code expired before it was confirmed; nothing was stored.")
CARDATA_RETRY_BUTTON = Msg("🔄 Try again")
# BMW answers access_denied to a decline, and sometimes right after the owner approved (a BMW-side bug the bot
# cannot tell apart): both get BMW's advice for the latter (docs/cardata.md).
CARDATA_DENIED = Msg(
    "🚫 BMW says the login was declined; nothing was stored. If you did confirm it, BMW advises: delete the "
    "CarData client in the MyBMW portal, create a new one, then /link again with its client id. Otherwise "
    "/link to start again."
)
CARDATA_GRANT_REFUSED = Msg(
    "⚠️ BMW refused the login (it sometimes does, even after a confirmation); nothing was stored."
)
CARDATA_CLIENT_REFUSED = Msg(
    "⚠️ BMW refused this client id: check that it is subscribed to CarData API and CarData Stream in the "
    "MyBMW portal, then /link again. Nothing was stored."
)
CARDATA_LINK_FAILED = Msg("⚠️ I could not finish the link: {reason} Nothing was kept. /link to try again.")
CARDATA_NO_CARS = Msg(
    "BMW confirmed the login, but no car is mapped to this account as its PRIMARY user, so CarData gives "
    "no data; nothing was stored."
)
CARDATA_LINKED = Msg(
    "Linked with BMW CarData! I found:\n{cars}\n\n"
    "CarData is read-only: /status shows what the car last reported, and I tell you when charging ends."
)
CARDATA_RETRY_GONE = Msg("That login has ended; start again with /link.")
CARDATA_LOGIN_STOPPED = Msg(
    "⏹ I stopped waiting for BMW's approval; confirming that code now links nothing. /link to start again."
)
CARDATA_LOGIN_INTERRUPTED = Msg(
    "⏹ The bot is restarting, so I stopped waiting for BMW's approval; nothing was stored. "
    "Please /link again in a minute."
)
CARDATA_CODE_COOL_DOWN = Msg(
    "⏳ Too many new login codes: I ask BMW for at most {codes} within {window}. Please try again in {wait}."
)


def cardata_steps() -> str:
    return CARDATA_STEPS.format(portal=CARDATA_PORTAL_URL)


def cardata_waiting(code: str, until: datetime) -> str:
    return CARDATA_WAITING.format(code=escape(code), until=prefs.clock(until))


def cardata_start_failed(reason: str) -> str:
    return CARDATA_START_FAILED.format(reason=escape(reason))


def cardata_code_cool_down(seconds: float, codes: int, window: float) -> str:
    return CARDATA_CODE_COOL_DOWN.format(
        codes=codes, window=_duration(window / 60), wait=_duration(math.ceil(seconds / 60))
    )


def cardata_link_failed(reason: str) -> str:
    return CARDATA_LINK_FAILED.format(reason=escape(reason))


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
DOOR_WORDS = {
    "SECURED": Msg("🔒 secured"),
    "LOCKED": Msg("🔒 locked"),
    "UNLOCKED": Msg("🔓 unlocked"),
    "CLOSED": Msg("🚪 closed"),
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
PART_NAMES = {
    Part.CHARGE: Msg("charge"),
    Part.CHARGING: Msg("charging"),
    Part.PLUG: Msg("plug"),
    Part.DOORS: Msg("doors"),
    Part.MILEAGE: Msg("mileage"),
    Part.POSITION: Msg("position"),
}


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


SNAPSHOT_FAILED = Msg("⚠️ No fresh snapshot from BMW: {reason}")
FEW_CALLS_LEFT = 5  # from here on, a Refresh says how many of the day's BMW calls are left
CALLS_LEFT = Msg(
    "\n\n🔄 {calls} of today's BMW calls left for Refresh; the stream keeps this up to date meanwhile."
)


# BMW counts calls per account: co-owners (several Telegram users who linked the same one) share them.
NO_CALLS_LEFT = Msg("🔄 No BMW calls are left for your Refresh until {time}.")
CO_OWNERS_USED = Msg(
    "👥 The other owners linked to this BMW account used {calls} of today's calls: BMW counts calls per "
    "account, and each owner linked to it is kept an equal share."
)


def snapshot_failed(reason: str) -> str:
    return SNAPSHOT_FAILED.format(reason=escape(reason))


def co_owners_used(calls: int) -> str:
    """A line under a failed Refresh when co-owners' calls are why none are left, else nothing."""
    return f"\n{CO_OWNERS_USED.format(calls=calls)}" if calls else ""


def no_calls_left(retry_at: datetime, co_owner_calls: int) -> str:
    """Lines for the end of /status when co-owners' calls are why no Refresh is left today, else nothing."""
    if not co_owner_calls:
        return ""
    return f"\n\n{NO_CALLS_LEFT.format(time=prefs.date_time(retry_at))}{co_owners_used(co_owner_calls)}"


def calls_left(calls: int) -> str:
    """A line for the end of a refreshed status when few calls are left, else nothing."""
    return CALLS_LEFT.format(calls=calls) if calls <= FEW_CALLS_LEFT else ""


# The range estimate of a car without range polylines (CarData)
ESTIMATE_UNAVAILABLE = Msg(
    "{car} has not reported its position and electric range yet, so there is no estimate to draw."
)
ESTIMATE_CAPTION = Msg(
    "🗺 <b>Estimated range of {car}</b>\n"
    "{colour} ring: about {reach} as the crow flies, from {range} of electric range "
    "(roads wind, so a rough guide: CarData sends no range map)\n"
    "🔴 the car · {ages}"
)


def estimate_caption(car: StoredVehicle, s: CarStatus, reach: float, colour: str, *, base_map: bool) -> str:
    caption = ESTIMATE_CAPTION.format(
        car=car_label(car),
        colour=escape(colour),
        reach=_km(reach),
        range=_km(s.electric_range_km or 0.0),
        ages=status_ages(s),
    )
    return caption + ("" if base_map else tr(MAP_NO_BASE))


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
    if s.mileage_km is not None:
        lines.append(STATUS_MILEAGE.format(distance=_km(s.mileage_km)))
    lines.append(STATUS_POSITION.format(where=where(s.position)))
    if s.snapshot:
        lines.append(STATUS_UPDATED.format(ago=ago(s.updated_at, now), at=_at(s.updated_at, now)))
    else:
        lines.append(STATUS_AGES.format(ages=status_ages(s, now)))
    return joined(lines)
