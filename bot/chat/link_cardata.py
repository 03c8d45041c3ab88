"""/link with BMW CarData: the portal steps, the client id (deleted at once), then the OAuth device flow.

One message shows the flow: the BMW login as a URL button and the user code (with a copy button), edited as
the flow goes: waiting, approved, then the cars found; or expired (with "Try again"), declined, refused. The
wait runs in a task of its own, so the chat goes on meanwhile; a new start for the same user replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

from telegram import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import Application, CallbackQueryHandler, ConversationHandler

from bot.cardata.auth import Approved, DeviceFlow, DeviceOutcome, Refusal
from bot.cardata.errors import CarDataError
from bot.chat import keyboards, texts
from bot.chat.common import (
    Context,
    answer,
    delete_secret,
    edit,
    message_of,
    pressed_message,
    query_of,
    say,
    services,
    user_data,
    user_of,
)
from bot.store import StoredVehicle

log = logging.getLogger(__name__)
# As the portal shows it (a UUID); anything else is refused before BMW is asked.
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{7,63}$")
CLIENT_ID = "cardata_client_id"  # user_data: the client id, while a flow of this user may be retried
WAITING = "cardata_wait"  # user_data: the task waiting for the owner's approval
RETRY = "cdretry"  # callback data of "Try again"
# Refusals a new flow with the same client id may cure.
RETRYABLE = (Refusal.EXPIRED, Refusal.INVALID_GRANT, Refusal.OTHER)


# The backend, as linking needs it ------------------------------------------------------------------------


async def _start(context: Context, client_id: str) -> DeviceFlow:
    return await services(context).garage.start_device_flow(client_id)


async def _wait(context: Context, flow: DeviceFlow) -> DeviceOutcome:
    return await services(context).garage.wait_device_flow(flow)


async def _finish(
    context: Context, tg_id: int, first_name: str | None, flow: DeviceFlow, outcome: Approved
) -> list[StoredVehicle]:
    return await services(context).garage.finish_device_flow(tg_id, first_name, flow, outcome.tokens)


# The conversation's steps (called by bot/chat/link.py) ---------------------------------------------------


async def client_id(update: Update, context: Context) -> int | None:
    """The typed client id: deleted at once, checked, then the device flow starts. None: ask again."""
    given = (message_of(update).text or "").strip()
    await delete_secret(update)  # the client id is the owner's own key to their data: it leaves the chat
    if not CLIENT_ID_PATTERN.match(given):
        await say(update, texts.CARDATA_CLIENT_ID_INVALID)
        return None
    user_data(context)[CLIENT_ID] = given
    return await begin(update, context, given, None)


async def begin(update: Update, context: Context, client_id: str, message: Message | None) -> int | None:
    """Start a device flow and its wait; `message` (a "Try again") is edited instead of a new one."""
    shown = message or await say(update, texts.CARDATA_STARTING)
    if message is not None:
        await edit(shown, texts.CARDATA_STARTING)
    try:
        flow = await _start(context, client_id)
    except CarDataError as exc:
        await edit(shown, texts.cardata_start_failed(texts.refusal(exc)))
        return None
    await edit(shown, _waiting_text(flow), _waiting_markup(flow))
    user = user_of(update)
    _replace_wait(
        context,
        context.application.create_task(
            _follow(context, context.application, user.id, user.first_name, flow, shown),
            name=f"cardata-link-{user.id}",
        ),
    )
    return ConversationHandler.END


def _replace_wait(context: Context, task: asyncio.Task[Any]) -> None:
    previous = user_data(context).get(WAITING)
    if isinstance(previous, asyncio.Task) and not previous.done():
        previous.cancel()  # an older code of this user: only the newest may link
    user_data(context)[WAITING] = task


async def _follow(
    context: Context,
    application: Application,
    tg_id: int,
    first_name: str | None,
    flow: DeviceFlow,
    message: Message,
) -> None:
    """Wait for the owner at BMW and show how it ended, in the flow's message."""
    try:
        outcome = await _wait(context, flow)
    except CarDataError as exc:
        await edit(message, texts.cardata_link_failed(texts.refusal(exc)))
        return
    if not isinstance(outcome, Approved):
        if outcome.reason not in RETRYABLE:
            application.user_data[tg_id].pop(CLIENT_ID, None)
        await edit(message, *_refused(outcome.reason))
        return
    await edit(message, texts.CARDATA_APPROVED)
    try:
        cars = await _finish(context, tg_id, first_name, flow, outcome)
    except CarDataError as exc:
        await edit(message, texts.cardata_link_failed(texts.refusal(exc)))
        return
    finally:
        application.user_data[tg_id].pop(CLIENT_ID, None)
    if not cars:
        await edit(message, texts.CARDATA_NO_CARS)
        return
    await edit(message, texts.CARDATA_LINKED.format(cars=texts.cars_list(cars)))


def _refused(reason: Refusal) -> tuple[str, InlineKeyboardMarkup | None]:
    retry = InlineKeyboardMarkup(
        [[InlineKeyboardButton(texts.plain(texts.CARDATA_RETRY_BUTTON), callback_data=keyboards.data(RETRY))]]
    )
    if reason is Refusal.EXPIRED:
        return texts.CARDATA_EXPIRED, retry
    if reason is Refusal.DENIED:
        return texts.CARDATA_DENIED, None
    if reason in (Refusal.INVALID_CLIENT, Refusal.INVALID_REQUEST):
        return texts.CARDATA_CLIENT_REFUSED, None
    return texts.CARDATA_GRANT_REFUSED, retry


def _waiting_text(flow: DeviceFlow) -> str:
    return texts.cardata_waiting(flow.code.user_code, datetime.fromtimestamp(flow.code.expires_at, UTC))


def _waiting_markup(flow: DeviceFlow) -> InlineKeyboardMarkup:
    code = flow.code.user_code
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(texts.plain(texts.CARDATA_OPEN_BUTTON), url=flow.code.url)],
            [
                InlineKeyboardButton(
                    texts.plain(texts.CARDATA_COPY_BUTTON.format(code=code)), copy_text=CopyTextButton(code)
                )
            ],
        ]
    )


async def retry(update: Update, context: Context) -> None:
    """ "Try again" under an expired or refused code: a new code for the same client id."""
    query = query_of(update)
    await answer(query)
    given = user_data(context).get(CLIENT_ID)
    message = pressed_message(query)
    if not isinstance(given, str) or not isinstance(message, Message):
        await edit(message, texts.CARDATA_RETRY_GONE)
        return
    await begin(update, context, given, message)


def handlers() -> list:
    return [CallbackQueryHandler(retry, pattern=f"^{RETRY}{keyboards.SEP}")]
