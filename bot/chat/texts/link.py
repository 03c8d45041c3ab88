"""Linking an i Remote account, choosing a car and /unlink."""

from __future__ import annotations

import math
from html import escape

from bot.chat.i18n import Msg
from bot.chat.texts.formatting import _duration

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


def link_cool_down(seconds: float) -> str:
    return LINK_COOL_DOWN.format(wait=_duration(math.ceil(seconds / 60)))


def password_refused(email: str, *, push: bool = False) -> str:
    return (PASSWORD_REFUSED_PUSH if push else PASSWORD_REFUSED).format(email=escape(email))
