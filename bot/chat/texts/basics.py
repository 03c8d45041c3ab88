"""/start, /help and the words every conversation uses."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from bot.bmw.models import (
    ServiceType,
)
from bot.capabilities import BackendName
from bot.chat.i18n import Msg
from bot.chat.texts.alerts import ALERTS_TIMING, ALERTS_TIMING_CARDATA
from bot.chat.texts.formatting import joined
from bot.chat.texts.remote_actions import REMOTE_ACTION, REMOTE_ACTIONS
from bot.store import StoredVehicle

COMMANDS: tuple[tuple[str, str], ...] = (
    ("status", Msg("Charge, range, doors and where the car is")),
    *((action.command, action.describe) for action in REMOTE_ACTIONS if action.command and action.describe),
    ("map", Msg("Range map: how far you can go")),
    ("schedule", Msg("Charging schedule: timers, window, mode")),
    ("trips", Msg("Trips: BMW's statistics, or the drives the car reported")),
    ("destinations", Msg("The car's last destinations")),
    ("history", Msg("Charging history: last charges, chart, CSV")),
    ("cars", Msg("Choose which car to use")),
    ("notify", Msg("Choose which charging messages you get")),
    ("alerts", Msg("Alerts: charge level, not charging, plug-in reminder, left open")),
    ("settings", Msg("Units, language, time zone, quiet hours")),
    ("share", Msg("Share a car with your household")),
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
    BackendName.CARDATA: Msg(
        "• <b>BMW CarData</b>, BMW's official service: read-only, so no remote commands. This is how a "
        "real i3 links today."
    ),
    BackendName.IREMOTE: Msg(
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


HELP = Msg("Here is what I can do:")
HELP_READ_ONLY = Msg(
    "ℹ️ Your car is linked through BMW CarData, which is read-only: I cannot lock or unlock it, start climate "
    "or charging, flash the lights or sound the horn, change its charging schedule or send it places, and "
    "CarData shares no destinations; /trips lists the drives the car reported. /map draws a ring estimated "
    "from the electric range instead of BMW's range map."
)
HELP_PLACES = Msg("📎 Send me a location or a place, and I'll offer to send it to your car's navigation.")
NOT_ALLOWED = Msg("Sorry, this is a private bot. Ask its owner to add your Telegram ID ({tg_id}).")
UNKNOWN_COMMAND = Msg("I don't know that command. /help lists what I can do.")
DONT_UNDERSTAND = Msg("I didn't understand that. Try /status, or /help for everything I can do.")
SOMETHING_WRONG = Msg("⚠️ Something went wrong on my side; please try again.")
NOT_SAVED = Msg(
    "⚠️ I could not save that just now: the disk I keep my data on is full. Nothing else changed; "
    "please try again later."
)
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


def start(
    first_name: str | None, cars: Sequence[StoredVehicle], ways: Sequence[BackendName], read_only: bool
) -> str:
    """/start: what the user's `cars` can do (`read_only`: BMW CarData's); before linking, the `ways` /link
    offers."""
    name = escape(first_name) if first_name else THERE
    if not cars:
        return START_UNLINKED.format(name=name, ways=link_ways(ways))
    return (START_LINKED_READ_ONLY if read_only else START_LINKED).format(name=name)


def link_ways(ways: Sequence[BackendName]) -> str:
    return joined(LINK_WAYS[way] for way in ways if way in LINK_WAYS)


# What a command needs of a car: /help leaves it out when none of the user's cars has that capability.
COMMAND_NEEDS: dict[str, str] = {
    **{action.command: action.capability for action in REMOTE_ACTIONS if action.command},
    "schedule": REMOTE_ACTION[ServiceType.CHARGING_CONTROL].capability,
    "destinations": "lastDestinations",
}
SEND_POI = "sendPoi"  # what a shared place needs (bot/chat/poi.py)


def help_text(
    capabilities: frozenset[str] | None = None, *, read_only: bool = False, ways: Sequence[BackendName] = ()
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
