"""/link with BMW CarData: the portal steps, the client id (deleted at once), then the OAuth device flow.

One message shows the flow: the BMW login as a URL button and the user code (with a copy button), edited as
the flow goes: waiting, approved, then the cars found; or expired (with "Try again"), declined, refused. The
wait runs in a task of its own, so the chat goes on meanwhile; a new start for the same user replaces it,
and /cancel, /unlink and a shutdown end it (`end_wait`): an approval after that finds nobody to link.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from telegram import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import Application, CallbackQueryHandler, ConversationHandler

from bot.car_errors import CarServiceError
from bot.cardata.auth import Approved, DeviceFlow, DeviceOutcome, Refusal
from bot.chat import keyboards, share, texts
from bot.chat.common import (
    LOGIN_WAITING,
    Context,
    answer,
    delete_secret,
    edit,
    error_text,
    message_of,
    pressed_message,
    query_of,
    say,
    services,
    user_data,
    user_id,
    user_of,
)
from bot.garage_errors import TooManyLoginCodes
from bot.store import StoredVehicle

log = logging.getLogger(__name__)
# As the portal shows it (a UUID); anything else is refused before BMW is asked.
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{7,63}$")
CLIENT_ID = "cardata_client_id"  # user_data: the client id, while a flow of this user may be retried
RETRY = "cdretry"  # callback data of "Try again"
# Refusals a new flow with the same client id may cure.
RETRYABLE = (Refusal.EXPIRED, Refusal.INVALID_GRANT, Refusal.OTHER)
# How long ending a login waits for its task to notice, and to say so in its message.
END_WAIT_SECONDS = 5.0


@dataclass
class Wait:
    """A login of one user, from the code shown until it is linked or refused. `ended_by`: what its message
    says when it is ended before that (None: nothing, when a newer code of the same user replaces it)."""

    task: asyncio.Task[None] = field(init=False)
    ended_by: str | None = None


# The backend, as linking needs it ------------------------------------------------------------------------


async def _start(context: Context, tg_id: int, client_id: str) -> DeviceFlow:
    return await services(context).garage.start_device_flow(tg_id, client_id)


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
    user = user_of(update)
    try:
        flow = await _start(context, user.id, client_id)
    except TooManyLoginCodes as exc:  # the client id stays: "Try again" works once the minutes have passed
        await edit(shown, error_text(exc), _retry_markup())
        return ConversationHandler.END
    except CarServiceError as exc:
        await edit(shown, texts.cardata_start_failed(texts.refusal(exc)))
        return None
    await edit(shown, _waiting_text(flow), _waiting_markup(flow))
    wait = Wait()
    wait.task = context.application.create_task(
        _follow(context, context.application, user.id, user.first_name, flow, shown, wait),
        name=f"cardata-link-{user.id}",
    )
    previous = user_data(context).get(LOGIN_WAITING)
    if isinstance(previous, Wait):
        previous.task.cancel()  # an older code of this user: only the newest may link
    user_data(context)[LOGIN_WAITING] = wait
    return ConversationHandler.END


async def end_wait(application: Application, tg_id: int, text: str = texts.CARDATA_LOGIN_STOPPED) -> bool:
    """End the user's login that waits for BMW's approval (or links after it), its message saying `text`;
    whether one was under way. Once this returns, an approval at BMW stores nothing."""
    data = application.user_data.get(tg_id)
    if data is None:
        return False
    wait = data.pop(LOGIN_WAITING, None)
    if not isinstance(wait, Wait) or wait.task.done():
        return False
    data.pop(CLIENT_ID, None)
    wait.ended_by = text
    wait.task.cancel()
    await asyncio.wait({wait.task}, timeout=END_WAIT_SECONDS)
    return True


async def end_all_waits(application: Application) -> int:
    """On shutdown: every login under way ends at once (a wait for a person is worth no stop grace, and a
    new process would not know its code), each told in its message; how many there were."""
    ended = await asyncio.gather(
        *(
            end_wait(application, tg_id, texts.CARDATA_LOGIN_INTERRUPTED)
            for tg_id in list(application.user_data)
        )
    )
    return sum(ended)


async def _follow(
    context: Context,
    application: Application,
    tg_id: int,
    first_name: str | None,
    flow: DeviceFlow,
    message: Message,
    wait: Wait,
) -> None:
    """Wait for the owner at BMW and show how it ended, in the flow's message."""
    try:
        await _follow_to_the_end(context, application, tg_id, first_name, flow, message)
    except asyncio.CancelledError:
        if wait.ended_by is not None:  # said here, in the owner's language (this task has their prefs)
            await edit(message, wait.ended_by)
        raise


async def _follow_to_the_end(
    context: Context,
    application: Application,
    tg_id: int,
    first_name: str | None,
    flow: DeviceFlow,
    message: Message,
) -> None:
    try:
        outcome = await _wait(context, flow)
    except CarServiceError as exc:
        await edit(message, texts.cardata_link_failed(texts.refusal(exc)))
        return
    if not isinstance(outcome, Approved):
        if outcome.reason not in RETRYABLE:
            application.user_data[tg_id].pop(CLIENT_ID, None)
        await edit(message, *_refused(outcome.reason))
        return
    await edit(message, texts.CARDATA_APPROVED)
    before = share.ending(services(context).garage, tg_id)
    try:
        cars = await _finish(context, tg_id, first_name, flow, outcome)
    except CarServiceError as exc:
        await edit(message, texts.cardata_link_failed(texts.refusal(exc)))
        return
    finally:
        application.user_data[tg_id].pop(CLIENT_ID, None)
    await edit(
        message, texts.CARDATA_LINKED.format(cars=texts.cars_list(cars)) if cars else texts.CARDATA_NO_CARS
    )
    await share.tell_gone(application, services(context).garage, before, tg_id)


def _retry_markup() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(texts.plain(texts.CARDATA_RETRY_BUTTON), callback_data=keyboards.data(RETRY))]]
    )


def _refused(reason: Refusal) -> tuple[str, InlineKeyboardMarkup | None]:
    retry = _retry_markup()
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


async def try_stream_now(update: Update, context: Context) -> None:
    """ "Try now" under the blocked-stream push: the pressing user's own stream connects at once; pressed when
    it is not blocked (back already, unlinked, or data from anywhere else), it only says so."""
    query = query_of(update)
    tried = services(context).garage.try_stream_now(user_id(update))
    await answer(query, texts.CARDATA_TRYING_NOW if tried else texts.CARDATA_STREAM_NOT_BLOCKED)


def handlers() -> list:
    return [
        CallbackQueryHandler(retry, pattern=f"^{RETRY}{keyboards.SEP}"),
        CallbackQueryHandler(try_stream_now, pattern=f"^{keyboards.STREAM_TRY}{keyboards.SEP}"),
    ]
