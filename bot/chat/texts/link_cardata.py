"""Linking: which backend, and BMW CarData's device flow."""

from __future__ import annotations

import math
from datetime import datetime
from html import escape

from bot.capabilities import BackendName
from bot.chat import prefs
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import _duration

# Linking: which backend, and BMW CarData's device flow
LINK_BACKEND = Msg(
    "How should I reach your BMW?\n\n"
    "<b>BMW CarData</b>: BMW's official service for cars sold in the EU. Read-only: status, position and "
    "charging messages; no lock, climate or other remote commands.\n"
    "<b>i Remote API</b>: full remote control, for older ConnectedDrive accounts that still have it."
)
BACKEND_BUTTONS = {
    BackendName.CARDATA: Msg("BMW CarData (official, EU, read-only)"),
    BackendName.IREMOTE: Msg("i Remote API (full remote control)"),
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
CARDATA_LOGIN_PENDING = Msg(
    "Your BMW CarData login is not finished yet: confirm the code at BMW with the link above. I tell you as "
    "soon as your cars are linked."
)
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
