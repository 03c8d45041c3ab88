"""/settings: units, clock, language, time zone and quiet hours of the user, in one message with buttons; and
the handler that sets each update's prefs (bot/chat/prefs.py) before any other runs."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    TypeHandler,
)

from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    ASKING,
    Context,
    answer,
    edit,
    message_of,
    pressed_message,
    prompt,
    query_of,
    say,
    services,
    typed_answer,
    user_data,
    user_id,
)
from bot.costs import Tariff
from bot.store import UserSettings

FLOW = "settings_typed"
TYPED_WAIT_SECONDS = 300.0
ZONE_MAX = 64  # longer than any IANA name
TARIFF_MAX = 64  # "0,32 0,22 22:00-06:00" with room to spare
# user_data: what is being typed (a zone or the tariff) and the settings message whose button asked for it
TYPED = "settings_typed"
ZONE, TARIFF = "zone", "tariff"
# A price, or a price, the night price and its window ("0,32 0,22 22:00-06:00"; any dash)
TARIFF_PATTERN = re.compile(r"^(\S+)(?:\s+(\S+)\s+(\S+?)\s*[-–—]\s*(\S+))?$")
MOST_PER_KWH = 100.0  # no home tariff comes near it: a larger number is a typo
UNITS = ("km", "mi")
CLOCKS = (24, 12)


def locale_handler() -> TypeHandler:
    """Runs before everything else: the sender's prefs for this update, and their Telegram language kept for
    what the bot sends them without an update (pushes). First in every conversation's TIMEOUT state too: a
    timeout runs as a job, whose context may be another update's."""
    return TypeHandler(Update, use_sender_prefs)


async def use_sender_prefs(update: Update, context: Context) -> None:
    user = update.effective_user
    if user is None:
        prefs.use(None)
        return
    garage = services(context).garage
    stored = garage.user_settings(user.id)
    if stored is not None and user.language_code and user.language_code != stored.language_code:
        garage.save_language_code(user.id, user.language_code)
    prefs.use(prefs.resolve(stored or UserSettings(), user.language_code))


def _settings(context: Context, tg_id: int) -> UserSettings:
    return services(context).garage.user_settings(tg_id) or UserSettings()


def _save(update: Update, context: Context, chosen: UserSettings) -> prefs.Prefs:
    """Store the user's choice and make it this update's prefs: the answer shows it already."""
    services(context).garage.save_user_settings(user_id(update), chosen)
    current = prefs.resolve(chosen, update.effective_user.language_code if update.effective_user else None)
    prefs.use(current)
    return current


def _message(context: Context, tg_id: int) -> tuple[str, InlineKeyboardMarkup]:
    shown = prefs.current()
    tariff = services(context).garage.tariff(tg_id)
    return texts.settings(shown, datetime.now(UTC), tariff), keyboards.settings(shown, tariff is not None)


async def settings_command(update: Update, context: Context) -> None:
    await say(update, *_message(context, user_id(update)))


def apply(chosen: UserSettings, shown: prefs.Prefs, op: str, args: list[str]) -> UserSettings:
    """The settings after a press; ValueError or LookupError for data no button of ours carries. Values not
    chosen yet start from what the user sees (`shown`)."""
    if op == keyboards.SET_UNITS and args[0] in UNITS:
        return replace(chosen, units=args[0])
    if op == keyboards.SET_CLOCK and int(args[0]) in CLOCKS:
        return replace(chosen, clock=int(args[0]))
    if op == keyboards.SET_LANGUAGE and args[0] in prefs.LANGUAGES:
        return replace(chosen, language=args[0])
    if op == keyboards.SET_ZONE and (not args or args[0].isdigit()):
        return replace(chosen, time_zone=keyboards.COMMON_ZONES[int(args[0])] if args else None)
    if op == keyboards.SET_QUIET and args[0] in ("0", "1"):
        return replace(chosen, quiet=args[0] == "1")
    if op == keyboards.SET_QUIET_SHIFT and shown.quiet is not None:
        edge, minutes = args[0], int(args[1])
        if abs(minutes) != keyboards.QUIET_STEP_MINUTES:
            raise ValueError(minutes)
        start, end = shown.quiet
        if edge == "start":
            return replace(chosen, quiet_start=(start + minutes) % prefs.MINUTES_A_DAY, quiet_end=end)
        if edge == "end":
            return replace(chosen, quiet_start=start, quiet_end=(end + minutes) % prefs.MINUTES_A_DAY)
    raise ValueError(op)


async def press(update: Update, context: Context) -> None:
    """A settings button: the pressing user's own settings change, whatever message it is on."""
    query = query_of(update)
    op, *args = keyboards.parse(query.data)[1].split(keyboards.SEP)
    message = pressed_message(query)
    if op == keyboards.SET_ZONES:
        await answer(query)
        await edit(message, texts.ZONE_PICK, keyboards.zones())
        return
    tg_id = user_id(update)
    if op == keyboards.SET_MAIN:
        await answer(query)
        await edit(message, *_message(context, tg_id))
        return
    if op == keyboards.SET_TARIFF_CLEAR:
        garage = services(context).garage
        if garage.tariff(tg_id) is not None:
            garage.save_tariff(tg_id, Tariff(time.time(), None, prefs.currency()))
        await answer(query, texts.TARIFF_CLEARED)
        await edit(message, *_message(context, tg_id))
        return
    try:
        chosen = apply(_settings(context, tg_id), prefs.current(), op, args)
    except (LookupError, ValueError):
        await answer(query, texts.STALE_BUTTON)
        return
    _save(update, context, chosen)
    await answer(query, texts.SETTINGS_SAVED)
    await edit(message, *_message(context, tg_id))


async def ask_typed(update: Update, context: Context) -> int:
    """ "Type a name" (time zone) or "Home tariff": one typed answer, then the settings show it."""
    query = query_of(update)
    await answer(query)
    asked = TARIFF if keyboards.parse(query.data)[1] == keyboards.SET_TARIFF else ZONE
    user_data(context)[TYPED] = (asked, pressed_message(query))
    prompt(context, FLOW)
    await say(update, texts.tariff_ask() if asked == TARIFF else texts.ZONE_ASK)
    return ASKING


async def receive_typed(update: Update, context: Context) -> int:
    asked, message = user_data(context).get(TYPED, (ZONE, None))
    typed = (message_of(update).text or "").strip()
    done = (receive_tariff if asked == TARIFF else receive_zone)(update, context, typed)
    if done is None:
        await say(update, texts.tariff_unclear(typed) if asked == TARIFF else texts.zone_unknown(typed))
        return ASKING
    user_data(context).pop(TYPED, None)
    if message is not None:  # the settings show it before the answer says so
        await edit(message, *_message(context, user_id(update)))
    await say(update, done)
    return ConversationHandler.END


def receive_zone(update: Update, context: Context, typed: str) -> str | None:
    """The typed zone saved, and what to say; None when there is no such zone."""
    zone = prefs.zone_named(typed) if len(typed) <= ZONE_MAX else None
    if zone is None:
        return None
    _save(update, context, replace(_settings(context, user_id(update)), time_zone=zone.key))
    return texts.ZONE_SET.format(zone=texts.zone_name(zone))


def parse_tariff(typed: str, now: float) -> Tariff | None:
    """The tariff a user typed, from `now` on, in their locale's numbers and currency; None if unreadable."""
    match = TARIFF_PATTERN.match(typed) if len(typed) <= TARIFF_MAX else None
    if match is None:
        return None
    price = prefs.number_typed(match[1])
    if price is None or not 0 <= price < MOST_PER_KWH:
        return None
    tariff = Tariff(now, price, prefs.currency())
    if match[2] is None:
        return tariff
    night, start, end = prefs.number_typed(match[2]), prefs.parse_time(match[3]), prefs.parse_time(match[4])
    if night is None or not 0 <= night < MOST_PER_KWH or start is None or end is None or start == end:
        return None
    return replace(tariff, night_start=_minutes(start), night_end=_minutes(end), night_price=night)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def receive_tariff(update: Update, context: Context, typed: str) -> str | None:
    """The typed tariff saved from now on, and what to say; None when it cannot be read."""
    tariff = parse_tariff(typed, time.time())
    if tariff is None:
        return None
    services(context).garage.save_tariff(user_id(update), tariff)
    return texts.TARIFF_SET


def handlers() -> list:
    pattern = f"^{keyboards.SETTINGS}{keyboards.SEP}"
    asks = f"{pattern}({keyboards.SET_ZONE_TYPE}|{keyboards.SET_TARIFF})$"
    typed = typed_answer(
        FLOW,
        ask=CallbackQueryHandler(ask_typed, pattern=asks),
        receive=receive_typed,
        press=press,
        pattern=pattern,
        waiting=TYPED,
        timeout_text=texts.SETTINGS_TIMEOUT,
        seconds=TYPED_WAIT_SECONDS,
        before_timeout=locale_handler(),
    )
    return [
        typed,
        CommandHandler("settings", settings_command),
        CallbackQueryHandler(press, pattern=pattern),
    ]
