"""/start, /help, /cancel, the allow-list, private chats only, and friendly answers to everything the bot does
not understand."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.chat import keyboards, link_cardata, share, texts
from bot.chat.common import OUR_COMMANDS, Context, answer, query_of, say, services, user_id, user_of
from bot.chat.i18n import tr
from bot.store import StoreFull

log = logging.getLogger(__name__)


def allow_list(allowed: frozenset[int]) -> TypeHandler:
    """Runs before every other handler but the private-chat guard: anyone not allowed gets one polite refusal
    and nothing else."""

    async def check(update: Update, context: Context) -> None:
        user = update.effective_user
        if user is None or user.id in allowed:
            return
        if update.callback_query is not None:
            await answer(update.callback_query, texts.NOT_ALLOWED.format(tg_id=user.id))
        elif update.effective_chat is not None and update.message is not None:
            await say(update, texts.NOT_ALLOWED.format(tg_id=user.id))
        raise ApplicationHandlerStop

    return TypeHandler(Update, check)


def private_chats_only() -> list:
    """Runs before everything else (the allow-list included): accounts and cars are private. In a group,
    supergroup or channel the bot's commands and shared locations get one line leading to a private chat,
    presses a neutral answer, anything else nothing; an update without a sender (a channel post) gets
    nothing anywhere. So no secret is asked, no status or position shown, no car touched outside a private
    chat, whoever presses a button there."""
    elsewhere = ~filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
    return [
        CommandHandler(OUR_COMMANDS, to_private_chat, filters=elsewhere),
        MessageHandler(elsewhere & filters.LOCATION, to_private_chat),
        TypeHandler(Update, stay_out),
    ]


async def to_private_chat(update: Update, context: Context) -> None:
    await say(update, texts.PRIVATE_ONLY, keyboards.private_chat(context.bot.username))
    raise ApplicationHandlerStop


async def stay_out(update: Update, context: Context) -> None:
    chat = update.effective_chat
    if update.effective_user is None:
        raise ApplicationHandlerStop
    if chat is None or chat.type == ChatType.PRIVATE:
        return
    if update.callback_query is not None:
        await answer(update.callback_query, texts.STALE_BUTTON)
    raise ApplicationHandlerStop


async def start(update: Update, context: Context) -> None:
    payload = context.args[0] if context.args else ""
    if payload.startswith(share.SHARE_START):  # an invitation's deep link (/share)
        await share.offer(update, context, payload.removeprefix(share.SHARE_START))
        return
    cars = services(context).garage.all_cars(user_id(update))
    read_only = bool(cars) and all(keyboards.read_only(car) for car in cars)
    ways = context.settings.car_backends
    await say(update, texts.start(user_of(update).first_name, cars, ways, read_only))


async def help_command(update: Update, context: Context) -> None:
    """The commands the user's cars can use; before linking all of them, and the ways to link."""
    cars = services(context).garage.all_cars(user_id(update))
    if not cars:
        await say(update, texts.help_text(ways=context.settings.car_backends))
        return
    capabilities = frozenset().union(*(car.capabilities for car in cars))
    await say(update, texts.help_text(capabilities, read_only=any(keyboards.read_only(car) for car in cars)))


async def nothing_to_cancel(update: Update, context: Context) -> None:
    """/cancel outside any conversation: a CarData login waiting for BMW's approval is still something."""
    if await link_cardata.end_wait(context.application, user_id(update)):
        await say(update, texts.CARDATA_LOGIN_STOPPED)
        return
    await say(update, texts.NOTHING_TO_CANCEL)


async def unknown_command(update: Update, context: Context) -> None:
    await say(update, texts.UNKNOWN_COMMAND)


async def not_understood(update: Update, context: Context) -> None:
    await say(update, texts.DONT_UNDERSTAND)


async def edited(update: Update, context: Context) -> None:
    await say(update, texts.EDITED_IGNORED)


async def stale_button(update: Update, context: Context) -> None:
    """Any press no other handler took (forged, or from an older version of the bot)."""
    await answer(query_of(update), texts.STALE_BUTTON)


async def on_error(update: object, context: Context) -> None:
    """Log without the update's content (it may hold a password) and tell the user something went wrong."""
    update_id = update.update_id if isinstance(update, Update) else None
    full = isinstance(context.error, StoreFull)  # not a bug: the store logs it, once a stretch
    if not full:
        log.error("update %s failed: %s", update_id, type(context.error).__name__, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            await update.effective_chat.send_message(tr(texts.NOT_SAVED if full else texts.SOMETHING_WRONG))
        except Exception:  # the error handler must never raise
            log.warning("could not tell the user about the error")


def first_handlers() -> list:
    # Edited messages first: command handlers would otherwise run an edited "/lock" a second time.
    return [
        MessageHandler(filters.UpdateType.EDITED, edited),
        CommandHandler("start", start),
        CommandHandler("help", help_command),
    ]


def last_handlers() -> list:
    """Catch-alls, registered after every feature's handlers."""
    return [
        CommandHandler("cancel", nothing_to_cancel),
        MessageHandler(filters.COMMAND, unknown_command),
        MessageHandler(filters.ALL, not_understood),
        CallbackQueryHandler(stale_button),
    ]
