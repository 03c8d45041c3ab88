"""/settings: units, clock, language, time zone and quiet hours of the user, in one message with buttons; and
the handler that sets each update's prefs (bot/chat/prefs.py) before any other runs."""

from __future__ import annotations

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
from bot.store import UserSettings

FLOW = "settings_zone"
ZONE_WAIT_SECONDS = 300.0
ZONE_MAX = 64  # longer than any IANA name
ZONE_MESSAGE = "settings_zone_message"  # user_data: the message whose "Type a name" was pressed
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


def _message() -> tuple[str, InlineKeyboardMarkup]:
    shown = prefs.current()
    return texts.settings(shown, datetime.now(UTC)), keyboards.settings(shown)


async def settings_command(update: Update, context: Context) -> None:
    await say(update, *_message())


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
    if op == keyboards.SET_MAIN:
        await answer(query)
        await edit(message, *_message())
        return
    tg_id = user_id(update)
    try:
        chosen = apply(_settings(context, tg_id), prefs.current(), op, args)
    except (LookupError, ValueError):
        await answer(query, texts.STALE_BUTTON)
        return
    _save(update, context, chosen)
    await answer(query, texts.SETTINGS_SAVED)
    await edit(message, *_message())


async def ask_zone(update: Update, context: Context) -> int:
    query = query_of(update)
    await answer(query)
    user_data(context)[ZONE_MESSAGE] = pressed_message(query)  # shows the settings again once it is set
    prompt(context, FLOW)
    await say(update, texts.ZONE_ASK)
    return ASKING


async def receive_zone(update: Update, context: Context) -> int:
    typed = (message_of(update).text or "").strip()
    zone = prefs.zone_named(typed) if len(typed) <= ZONE_MAX else None
    if zone is None:
        await say(update, texts.zone_unknown(typed))
        return ASKING
    _save(update, context, replace(_settings(context, user_id(update)), time_zone=zone.key))
    message = user_data(context).pop(ZONE_MESSAGE, None)
    if message is not None:
        await edit(message, *_message())
    await say(update, texts.ZONE_SET.format(zone=texts.zone_name(zone)))
    return ConversationHandler.END


def handlers() -> list:
    pattern = f"^{keyboards.SETTINGS}{keyboards.SEP}"
    typed_zone = typed_answer(
        FLOW,
        ask=CallbackQueryHandler(ask_zone, pattern=f"{pattern}{keyboards.SET_ZONE_TYPE}$"),
        receive=receive_zone,
        press=press,
        pattern=pattern,
        waiting=ZONE_MESSAGE,
        timeout_text=texts.ZONE_TIMEOUT,
        seconds=ZONE_WAIT_SECONDS,
        before_timeout=locale_handler(),
    )
    return [
        typed_zone,
        CommandHandler("settings", settings_command),
        CallbackQueryHandler(press, pattern=pattern),
    ]
