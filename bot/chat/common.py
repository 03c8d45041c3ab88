"""What the chat handlers share: the service bag, replying, resolving a pressed car, wording errors."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar

from telegram import (
    Bot,
    CallbackQuery,
    Chat,
    InlineKeyboardMarkup,
    MaybeInaccessibleMessage,
    Message,
    Update,
    User,
)
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    ExtBot,
    JobQueue,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.car_errors import CarServiceError
from bot.chat import keyboards, texts
from bot.chat.i18n import tr
from bot.config import Settings
from bot.garage import Garage, deadline
from bot.garage_errors import (
    CarNotLinked,
    CommandInProgress,
    GarageError,
    LoginCoolDown,
    NothingLinked,
    OwnerMustRelink,
    OwnerOnly,
    PasswordRefused,
    RemoteNotAllowed,
    TooManyCommands,
    TooManyLoginCodes,
    UnsupportedByBackend,
)
from bot.login_guard import DEVICE_CODE_WINDOW_SECONDS, DEVICE_CODES_PER_WINDOW
from bot.rangemap import RangeMapRenderer
from bot.store import StoredVehicle, StoreFull
from bot.watcher import Watcher

log = logging.getLogger(__name__)
T = TypeVar("T")
# A read for a waiting user (see answer_slowly): "typing…" unless BMW answers within TYPING_AFTER_SECONDS;
# one message when it answers within ONE_MESSAGE_SECONDS; otherwise a placeholder, "still waiting" at
# STILL_WAITING_SECONDS, and a verdict by GIVE_UP_SECONDS.
TYPING_AFTER_SECONDS = 0.2
ONE_MESSAGE_SECONDS = 1.0
STILL_WAITING_SECONDS = 10.0
GIVE_UP_SECONDS = 30.0
# Telegram's descriptions of an edit that can never succeed (as opposed to a failure worth reporting).
_UNEDITABLE = ("can't be edited", "to edit not found")
# Longer passwords and security answers are refused unread: BMW takes none that long.
SECRET_MAX = 256
OUR_COMMANDS = ("start", *(name for name, _ in texts.COMMANDS))
# Where a secret is asked, any text but our commands is taken (and deleted) as the secret, "/hunter2" too.
SECRET_TEXT = filters.TEXT & ~filters.Regex(
    re.compile(rf"^/({'|'.join(OUR_COMMANDS)})(@\w+)?(\s|$)", re.IGNORECASE)
)
PROMPT = "prompt"  # user_data: the conversation (its name) that asked last for something to type
LOGIN_WAITING = (
    "cardata_wait"  # user_data: a CarData login waiting for BMW's approval (bot/chat/link_cardata.py)
)


@dataclass
class Services:
    """Everything a handler needs: `context.services` (see BotContext)."""

    garage: Garage
    refs: keyboards.CarRefs
    renderer: RangeMapRenderer
    watcher: Watcher | None = None  # started in post_init
    # The wall clock of quiet hours and of "this month" on demand (tests set a simulated one).
    clock: Callable[[], float] = time.time


class BotData:
    """`application.bot_data`: what the whole bot shares, typed. PTB makes it empty (ContextTypes calls the
    class without arguments); bot.app.build_application sets every field before the bot starts."""

    services: Services
    settings: Settings


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotData]):
    """The context every handler and job gets (python-telegram-bot's ContextTypes, as in its contexttypesbot
    example): the services as a typed attribute instead of a string key."""

    @property
    def services(self) -> Services:
        return self.bot_data.services

    @property
    def settings(self) -> Settings:
        return self.bot_data.settings


CONTEXT_TYPES = ContextTypes(context=BotContext, bot_data=BotData)
Context = BotContext
Step = Callable[[Update, Context], Coroutine[Any, Any, int]]
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]
CarStep = Callable[[Update, Context, StoredVehicle], Awaitable[None]]


def services(context: Context) -> Services:
    return context.services


# Typed accessors: PTB types these parts of an update as optional; for our handlers they are never missing.


def user_of(update: Update) -> User:
    user = update.effective_user
    assert user is not None  # every handler here is for updates from users
    return user


def user_id(update: Update) -> int:
    return user_of(update).id


def chat_of(update: Update) -> Chat:
    chat = update.effective_chat
    assert chat is not None  # a user's message or press always comes from a chat
    return chat


def message_of(update: Update) -> Message:
    """The message a message or command handler runs for."""
    message = update.effective_message
    assert message is not None
    return message


def query_of(update: Update) -> CallbackQuery:
    """The press a button handler runs for."""
    query = update.callback_query
    assert query is not None
    return query


def pressed_message(query: CallbackQuery) -> MaybeInaccessibleMessage:
    """The message whose button was pressed. The bot posts no inline-mode messages, so a press always carries
    one; it may be inaccessible (too old, deleted), which `edit` copes with by sending a new message."""
    message = query.message
    assert message is not None
    return message


def user_data(context: Context) -> dict[str, Any]:
    data = context.user_data
    assert data is not None  # PTB keeps one for every update that has a user
    return data


def job_queue(application: Application) -> JobQueue[Any]:
    queue = application.job_queue
    assert queue is not None  # the bot is built with the job-queue extra
    return queue


async def say(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> Message:
    """Answer in the chat of the update (message or button press)."""
    return await chat_of(update).send_message(
        tr(text), reply_markup=markup, parse_mode=ParseMode.HTML, disable_web_page_preview=True
    )


async def edit(
    message: MaybeInaccessibleMessage, text: str, markup: InlineKeyboardMarkup | None = None
) -> None:
    """Edit a bot message; an identical edit (Telegram's "not modified") is not an error for us.

    A message that cannot be edited (a forged press on the user's own message or on one the bot cannot
    see, or a deleted one) gets the text as a new message instead: the user still learns the outcome.
    """
    text = tr(text)
    if isinstance(message, Message):
        try:
            await message.edit_text(
                text, reply_markup=markup, parse_mode=ParseMode.HTML, disable_web_page_preview=True
            )
            return
        except BadRequest as exc:
            if "not modified" in exc.message:
                return
            if not any(reason in exc.message.lower() for reason in _UNEDITABLE):
                raise
    await message.get_bot().send_message(
        message.chat.id, text, reply_markup=markup, parse_mode=ParseMode.HTML, disable_web_page_preview=True
    )


def stored_message(bot: Bot, chat_id: int, message_id: int) -> Message:
    """A bot message known only by its ids (kept across a restart), for `edit`."""
    message = Message(message_id, datetime.now(UTC), Chat(chat_id, Chat.PRIVATE))
    message.set_bot(bot)
    return message


async def answer(query: CallbackQuery, text: str | None = None) -> None:
    """Always answer a press (Telegram shows a spinner until we do); a too-old query is not an error."""
    with suppress(BadRequest):
        await query.answer(texts.plain(text)[:200] if text else None)


# What error_text words: a refusal of a car service (either backend), of the garage, or of a full disk
# (anything else is a bug, for the error handler).
REFUSALS = (CarServiceError, GarageError, StoreFull)


def error_text(exc: Exception, car: StoredVehicle | None = None) -> str:
    """One friendly line for any refusal of a car service or of the garage."""
    if isinstance(exc, StoreFull):  # the store logs it, once a stretch
        return texts.NOT_SAVED
    if isinstance(exc, NothingLinked):
        return texts.NOT_LINKED
    if isinstance(exc, CarNotLinked):
        return texts.STALE_BUTTON
    if isinstance(exc, OwnerOnly):
        return texts.SHARE_OWNER_ONLY
    if isinstance(exc, RemoteNotAllowed):
        return texts.SHARE_REMOTE_NOT_ALLOWED
    if isinstance(exc, OwnerMustRelink):
        return texts.SHARE_OWNER_MUST_RELINK
    if isinstance(exc, UnsupportedByBackend):
        return texts.unsupported(car)
    if isinstance(exc, CommandInProgress):
        return texts.command_in_progress(car)
    if isinstance(exc, TooManyCommands):
        return texts.TOO_MANY_COMMANDS.format(seconds=max(1, round(exc.retry_after)))
    if isinstance(exc, LoginCoolDown):
        return texts.link_cool_down(exc.retry_after)
    if isinstance(exc, TooManyLoginCodes):
        return texts.cardata_code_cool_down(
            exc.retry_after, DEVICE_CODES_PER_WINDOW, DEVICE_CODE_WINDOW_SECONDS
        )
    if isinstance(exc, PasswordRefused):
        return texts.password_refused(exc.username)
    if isinstance(exc, CarServiceError):
        return texts.bmw_trouble(texts.refusal(exc))
    raise exc


def tells_refusals(handler: Handler) -> Handler:
    """`handler`, with a refusal of BMW or of the garage said in the chat as one friendly line."""

    @wraps(handler)
    async def run(update: Update, context: Context) -> None:
        try:
            await handler(update, context)
        except REFUSALS as exc:
            await say(update, error_text(exc))

    return run


async def pressed_car(update: Update, context: Context, ref: str | None = None) -> StoredVehicle | None:
    """The pressing user's car named by `ref` (by default the argument of the callback data); None, after a
    neutral answer, for anything else."""
    query = query_of(update)
    if ref is None:
        ref = keyboards.parse(query.data)[1]
    garage = services(context).garage
    tg_id = user_id(update)
    car = services(context).refs.resolve(tg_id, ref, garage.all_cars(tg_id))
    if car is None:
        await answer(query, texts.STALE_BUTTON)
    return car


def login_waiting(context: Context) -> bool:
    """Whether the user's CarData login waits for their approval at BMW (or links right after it)."""
    task = getattr(user_data(context).get(LOGIN_WAITING), "task", None)
    return isinstance(task, asyncio.Task) and not task.done()


async def chosen_car(
    update: Update,
    context: Context,
    needs: str | None = None,
    unsupported: str = texts.SERVICE_UNSUPPORTED,
    read_only: str = texts.READ_ONLY,
) -> StoredVehicle | None:
    """The user's selected car for a typed command, if it has capability `needs`; otherwise says what to do
    (link first, or formatted with the car: `read_only` for a read-only car, a CarData one, else
    `unsupported`) and returns None."""
    try:
        car = services(context).garage.car(user_id(update))
    except REFUSALS as exc:
        # Half-way through a CarData /link, "use /link" would send the owner round in a circle.
        pending = isinstance(exc, NothingLinked) and login_waiting(context)
        await say(update, texts.CARDATA_LOGIN_PENDING if pending else error_text(exc))
        return None
    if needs is not None and needs not in car.capabilities:
        text = read_only if keyboards.read_only(car) else unsupported
        await say(update, text.format(car=texts.car_label(car)))
        return None
    return car


def command_and_button(
    run: CarStep,
    *,
    command: str | None = None,
    button: str | None = None,
    needs: str | None = None,
    toast: str | None = None,
) -> list[BaseHandler]:
    """The handlers of a command and its button that do the same thing: `run` with the user's selected car
    (/`command`) or with the pressed one ("`button`:<car ref>"), when it has capability `needs`. A press is
    answered first, with `toast`; one on a car without `needs` only with SERVICE_UNSUPPORTED."""
    handlers: list[BaseHandler] = []
    if command is not None:

        async def typed(update: Update, context: Context) -> None:
            car = await chosen_car(update, context, needs)
            if car is not None:
                await run(update, context, car)

        handlers.append(CommandHandler(command, typed))
    if button is not None:

        async def pressed(update: Update, context: Context) -> None:
            query = query_of(update)
            car = await pressed_car(update, context)
            if car is None:
                return
            if needs is not None and needs not in car.capabilities:
                await answer(query, texts.SERVICE_UNSUPPORTED.format(car=texts.car_label(car)))
                return
            await answer(query, toast)
            await run(update, context, car)

        handlers.append(CallbackQueryHandler(pressed, pattern=f"^{button}{keyboards.SEP}"))
    return handlers


# Typed answers: the newest prompt wins ---------------------------------------------------------------------


ASKING = 0  # the one state of a `typed_answer` conversation


def typed_answer(
    flow: str,
    *,
    ask: BaseHandler,
    receive: Step,
    press: Handler,
    pattern: str,
    waiting: str,
    timeout_text: str,
    seconds: float,
    before_timeout: BaseHandler,
) -> ConversationHandler:
    """A conversation that waits, after the press `ask` (which returns ASKING), for one typed answer: text
    goes to `receive` while this flow asked last; another press of that message's buttons (`pattern`) is done
    by `press` and ends the wait; /cancel and `seconds` without an answer end it too. `waiting` is the
    user_data key of what the question is about, dropped whenever the wait ends; `before_timeout` runs first
    in the timeout (it runs as a job: the user's prefs)."""

    def stop(context: Context) -> None:
        user_data(context).pop(waiting, None)

    async def press_while_asking(update: Update, context: Context) -> int:
        stop(context)
        await press(update, context)
        return ConversationHandler.END

    async def timeout(update: Update, context: Context) -> None:
        stop(context)
        await say(update, timeout_text)

    async def cancel(update: Update, context: Context) -> int:
        stop(context)
        await say(update, texts.CANCELLED)
        return ConversationHandler.END

    return ConversationHandler(
        entry_points=[ask],
        states={
            ASKING: [
                MessageHandler(filters.TEXT & ~filters.COMMAND, newest_prompt(flow, receive)),
                CallbackQueryHandler(press_while_asking, pattern=pattern),
            ],
            ConversationHandler.TIMEOUT: [before_timeout, TypeHandler(Update, timeout)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        conversation_timeout=seconds,
        name=flow,
        allow_reentry=True,
    )


def prompt(context: Context, flow: str) -> None:
    """Conversation `flow` (its name) now asks the user for something to type. Any conversation that asked
    before and is still waiting ends at the next text instead of taking it (see `newest_prompt`)."""
    user_data(context)[PROMPT] = flow


def commands_end_prompts() -> BaseHandler:
    """A command is a newer intent than any question still waiting for text: the wait ends at the next text,
    as for a newer prompt (`newest_prompt`); a flow the command starts asks anew. Not when the waiting flow
    takes the command itself (/cancel, or a password that begins with "/"). Runs before every other handler
    (its own group)."""

    async def forget(update: Update, context: Context) -> None:
        flow = user_data(context).get(PROMPT)
        if flow is not None and _taking(context.application, flow, update) is None:
            user_data(context).pop(PROMPT, None)

    return MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE, forget)  # prompts wait in private chats


def newest_prompt(flow: str, step: Step, *, secret: bool = False) -> Step:
    """`step`, a typed-text step of conversation `flow`, as long as `flow` asked last. A conversation the user
    left for a newer prompt (an abandoned /link, say) ends at the next text instead, and the text goes to the
    conversation that asked last; when that one waits for no text, it is not understood (and, where `secret`
    was asked, deleted first)."""

    async def run(update: Update, context: Context) -> int:
        newest = user_data(context).get(PROMPT)
        if newest == flow:
            return await step(update, context)
        if not await _hand_over(update, context, newest):
            if secret:
                await delete_secret(update)
            await say(update, texts.DONT_UNDERSTAND)
        return ConversationHandler.END

    return run


def _taking(application: Application, flow: str, update: Update) -> tuple[ConversationHandler, Any] | None:
    """Conversation `flow` and its check of the update, when its current state takes it."""
    for handler in (handler for group in application.handlers.values() for handler in group):
        if isinstance(handler, ConversationHandler) and handler.name == flow:
            check = handler.check_update(update)
            if check is not None and check is not False:
                return handler, check
    return None


async def _hand_over(update: Update, context: Context, flow: str | None) -> bool:
    """Conversation `flow` handles the update if its current state takes it; whether it did."""
    taking = None if flow is None else _taking(context.application, flow, update)
    if taking is None:
        return False
    handler, check = taking
    await handler.handle_update(update, context.application, check, context)
    return True


async def delete_secret(update: Update) -> None:
    """A password or security answer leaves the chat before anything else happens. If Telegram refuses, the
    user is told to delete it: it would stay readable otherwise."""
    try:
        await message_of(update).delete()
    except TelegramError as exc:
        log.warning("could not delete a message holding a secret: %s", type(exc).__name__)
        await say(update, texts.DELETE_SECRET_YOURSELF)


@dataclass
class Reply:
    """A text answer and its buttons."""

    text: str
    markup: InlineKeyboardMarkup | None = None


async def answer_slowly(
    update: Update,
    car: StoredVehicle,
    fetch: Callable[[], Awaitable[T]],
    render: Callable[[T], Awaitable[Reply | None]],
    *,
    waiting: str,
    markup: InlineKeyboardMarkup | None = None,
    message: MaybeInaccessibleMessage | None = None,
    action: str = ChatAction.TYPING,
) -> Message | None:
    """Read from BMW for a user who waits: one message when BMW is quick, a visible wait when it is not,
    and a verdict within GIVE_UP_SECONDS whatever BMW does.

    `fetch` (the BMW calls) starts at once, bounded by GIVE_UP_SECONDS; `render` makes the answer of its
    value: a Reply, or None when it sent the answer itself (a photo, a pin). Meanwhile the chat shows
    `action` (an answer in the blink of an eye needs none, and saves the call). An answer within
    ONE_MESSAGE_SECONDS is the only message; a later one replaces the `waiting` placeholder (a sent photo
    or pin removes it). `message` (the pressed status of a Refresh) is edited instead, and nothing new is
    sent. Errors and the verdict carry `markup`. Returns the message that shows the Reply, if one does.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    shown = message
    answered = False
    calling = False  # the wait is in a Bot API call; the answer goes out after it, not across it

    async def until(seconds: float) -> bool:
        """Sleeps until `seconds` after the start; False once the answer is there."""
        nonlocal calling
        calling = False
        if answered:
            return False
        await asyncio.sleep(max(0.0, started + seconds - loop.time()))
        calling = True
        return True

    async def show_waiting() -> None:
        nonlocal shown, calling
        if shown is None:
            if not await until(TYPING_AFTER_SECONDS):
                return
            await chat_of(update).send_chat_action(action)
            if not await until(ONE_MESSAGE_SECONDS):
                return
            shown = await say(update, waiting)
        if await until(STILL_WAITING_SECONDS):
            await edit(shown, texts.STILL_WAITING.format(waiting=waiting))
            calling = False

    # The BMW calls run in this task, the visible wait beside it: a quick answer costs no extra turn.
    waiter = asyncio.create_task(show_waiting())
    failure: str | None = None
    try:
        async with deadline(GIVE_UP_SECONDS):
            value = await fetch()
    except TimeoutError:
        failure = texts.NOT_ANSWERING
    except REFUSALS as exc:
        failure = error_text(exc, car)
    finally:
        answered = True
        if not calling:
            waiter.cancel()
    if calling:
        # Let the call finish: a "typing…" arriving after the answer would show under it for 5 s, and a
        # placeholder on its way is where the answer goes.
        await waiter
    reply = Reply(failure, markup) if failure is not None else await render(value)
    if reply is None:
        if isinstance(shown, Message) and shown is not message:  # the placeholder
            with suppress(TelegramError):
                await shown.delete()
        return None
    if shown is None:
        return await say(update, reply.text, reply.markup)
    await edit(shown, reply.text, reply.markup)
    return shown if isinstance(shown, Message) else None
