"""Remote commands: lock, climate, charge, flash, horn, finder; unlock with confirmation and security answer.

A command posts one reply and edits it as the car moves through its statuses, ending in a clear result.
Unlock always asks first with a one-shot, expiring nonce; when BMW demands the security answer the bot asks
for it, deletes that message, retries once, and offers to remember it (encrypted).
A command under way when the bot stopped is finished after the next start (`finish_commands`), never resent.
Each command is one row of `texts.REMOTE_ACTIONS`: its button, command, /help line and texts follow from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import suppress
from typing import Any

from telegram import CallbackQuery, MaybeInaccessibleMessage, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
)

from bot.bmw.errors import SecurityAnswerRequired, ServiceTimeout, WrongSecurityAnswer
from bot.bmw.models import ExecutionStatus, ServiceType
from bot.chat import keyboards, prefs, share, texts
from bot.chat.common import (
    REFUSALS,
    SECRET_MAX,
    SECRET_TEXT,
    CarStep,
    Context,
    answer,
    command_and_button,
    delete_secret,
    edit,
    error_text,
    message_of,
    newest_prompt,
    pressed_message,
    prompt,
    query_of,
    say,
    services,
    stored_message,
    user_data,
    user_id,
)
from bot.chat.confirm import asked_here, confirmation, confirmed
from bot.chat.settings import locale_handler
from bot.chat.status import location_of
from bot.store import CommandInFlight, StoredVehicle

log = logging.getLogger(__name__)
UNLOCK_CONFIRM_SECONDS = 60.0
ANSWER_WAIT_SECONDS = 180.0
FLOW = "unlock"
ASK_ANSWER, ASK_REMEMBER = range(2)


async def run_service(
    update: Update,
    context: Context,
    car: StoredVehicle,
    service: ServiceType,
    *,
    security_answer: str | None = None,
    message: MaybeInaccessibleMessage | None = None,
    **kwargs,
) -> ExecutionStatus | None:
    """Run one remote command, showing its progress in one message; returns the terminal status.

    SecurityAnswerRequired and WrongSecurityAnswer propagate (the unlock flow handles them); every other
    failure ends as one friendly line in that message.
    """
    if message is None:
        message = await say(update, texts.progress(service, car, "SENDING"))
    try:
        result = await services(context).garage.execute(
            user_id(update),
            car.vin,
            service,
            shown_in=(message.chat.id, message.message_id),
            security_answer=security_answer,
            on_status=_progress(message, service, car),
            **kwargs,
        )
    except (SecurityAnswerRequired, WrongSecurityAnswer):
        raise
    except ServiceTimeout:
        await edit(message, texts.outcome(service, car, None))
        return None
    except asyncio.CancelledError:
        await _interrupted(message, service, car)
        raise
    except REFUSALS as exc:
        await edit(message, error_text(exc, car))
        return None
    await edit(message, texts.outcome(service, car, result.status))
    if result.status == "EXECUTED":
        await share.tell_owner(context, user_id(update), car, service)
    if service is ServiceType.VEHICLE_FINDER and result.status == "EXECUTED":
        await location_of(update, context, car)
    return result


async def start_service(
    update: Update, context: Context, car: StoredVehicle, service: ServiceType, **kwargs
) -> None:
    """Post the progress message now, in turn with the chat's other updates, and leave the car's answer
    (minutes, at worst) to a task of its own: the user's next update must not wait for the car."""
    message = await say(update, texts.progress(service, car, "SENDING"))
    context.application.create_task(
        run_service(update, context, car, service, message=message, **kwargs), update=update
    )


def _after_this_step(context: Context, prompt: Coroutine[Any, Any, object]) -> None:
    """Send `prompt` once the running non-blocking conversation step has returned its state.

    PTB keeps such a conversation pending until the step's task is done, and hands a reply arriving
    meanwhile to nobody: a security answer typed as soon as it is asked for would stay in the chat.
    """
    step = asyncio.current_task()
    assert step is not None  # called from a handler, which always runs in a task
    step.add_done_callback(lambda _: context.application.create_task(prompt))


def _progress(
    message: MaybeInaccessibleMessage, service: ServiceType, car: StoredVehicle
) -> Callable[[ExecutionStatus], Awaitable[None]]:
    async def on_status(status: ExecutionStatus) -> None:
        if not status.terminal:
            with suppress(TelegramError):  # progress is cosmetic: a failed edit must not abandon the command
                await edit(message, texts.progress(service, car, status.status))

    return on_status


async def _interrupted(message: MaybeInaccessibleMessage, service: ServiceType, car: StoredVehicle) -> None:
    """The bot is shutting down: say what we know before going (the next start finishes the message)."""
    with suppress(TelegramError):
        await edit(
            message,
            texts.SERVICE_INTERRUPTED.format(name=texts.SERVICE_NAMES[service], car=texts.car_label(car)),
        )


async def finish_commands(context: Context) -> None:
    """At start: follow every command an earlier process left under way to its end, each in its own task."""
    commands = services(context).garage.commands_in_flight()
    if commands:
        log.info("following %d remote command(s) the previous process left under way", len(commands))
    for command in commands:
        context.application.create_task(_finish(context.application, command), name="finish-command")


async def _finish(application: Application, command: CommandInFlight) -> None:
    """End the progress message of a command sent before the restart: its outcome, or that it is unknown."""
    garage = application.bot_data.services.garage
    # No update to take the owner's language from: their stored prefs, for this task (it has its own context).
    prefs.use(prefs.stored(garage.user_settings(command.tg_id)))
    car = garage.find_car(command.tg_id, command.vin)
    if car is None:  # the car was unlinked meanwhile: nothing to report on
        garage.forget_command(command.tg_id, command.vin)
        return
    service = ServiceType(command.service)
    message = stored_message(application.bot, command.chat_id, command.message_id)
    unknown = texts.SERVICE_OUTCOME_UNKNOWN.format(
        name=texts.SERVICE_NAMES[service], car=texts.car_label(car)
    )
    try:
        result = await garage.resume(command, on_status=_progress(message, service, car))
    except ServiceTimeout:
        text = texts.outcome(service, car, None)
    except REFUSALS:
        text = unknown
    except asyncio.CancelledError:
        await _interrupted(message, service, car)
        raise
    else:
        text = unknown if result is None else texts.outcome(service, car, result.status)
    await edit(message, text)


# Unlock ---------------------------------------------------------------------------------------------------


async def ask_unlock(update: Update, context: Context, car: StoredVehicle) -> None:
    nonce = confirmation(context, "unlock", car.vin, UNLOCK_CONFIRM_SECONDS)
    await say(update, texts.UNLOCK_ASK.format(car=texts.car_label(car)), keyboards.unlock_confirm(nonce))


def _take_nonce(context: Context, query: CallbackQuery) -> tuple[str | None, bool]:
    """The VIN a live unlock confirmation was for, and whether this process asked it (`asked_here`)."""
    nonce = keyboards.parse(query.data)[1]
    asked = asked_here(context, "unlock", nonce)
    return confirmed(context, "unlock", nonce), asked


async def _expired(query: CallbackQuery, asked: bool) -> None:
    """A press whose confirmation is gone. The question this process asked, its time run out, says so. Any
    other press (a second tap, a question an earlier process asked, or the same press delivered again to a
    process started after a kill: Telegram keeps an update until the next poll acknowledges it) leaves the
    message as it is: it may show the progress and outcome of the unlock the first press started."""
    await answer(query, texts.UNLOCK_EXPIRED)
    if asked:
        await edit(pressed_message(query), texts.UNLOCK_EXPIRED)


async def unlock_no(update: Update, context: Context) -> None:
    query = query_of(update)
    vin, asked = _take_nonce(context, query)
    if vin is None:
        await _expired(query, asked)
        return
    await answer(query)
    car = services(context).garage.find_car(user_id(update), vin)
    await edit(pressed_message(query), texts.unlock_cancelled(car))


async def unlock_yes(update: Update, context: Context) -> int:
    query = query_of(update)
    vin, asked = _take_nonce(context, query)
    garage = services(context).garage
    car = garage.find_car(user_id(update), vin) if vin else None
    if car is None:
        await _expired(query, asked)
        return ConversationHandler.END
    await answer(query, texts.SERVICE_NAMES[ServiceType.DOOR_UNLOCK])
    await edit(pressed_message(query), texts.progress(ServiceType.DOOR_UNLOCK, car, "SENDING"))
    stored_answer = garage.security_answer(user_id(update))
    try:
        await run_service(
            update,
            context,
            car,
            ServiceType.DOOR_UNLOCK,
            security_answer=stored_answer,
            message=pressed_message(query),
        )
    except (SecurityAnswerRequired, WrongSecurityAnswer):
        if stored_answer is not None:
            garage.remember_security_answer(user_id(update), None)  # it no longer works: forget it
        user_data(context)["unlock_vin"] = car.vin
        prompt(context, FLOW)
        ask = texts.ANSWER_ASK.format(car=texts.car_label(car))
        _after_this_step(context, edit(pressed_message(query), ask))
        return ASK_ANSWER
    return ConversationHandler.END


async def receive_answer(update: Update, context: Context) -> int:
    given = message_of(update).text or ""
    await delete_secret(update)
    vin = user_data(context).pop("unlock_vin", None)
    if len(given) > SECRET_MAX:
        await say(update, texts.ANSWER_TOO_LONG.format(limit=SECRET_MAX))
        return ConversationHandler.END
    car = services(context).garage.find_car(user_id(update), vin) if vin else None
    if car is None:
        await say(update, texts.UNLOCK_EXPIRED)
        return ConversationHandler.END
    try:
        result = await run_service(update, context, car, ServiceType.DOOR_UNLOCK, security_answer=given)
    except (SecurityAnswerRequired, WrongSecurityAnswer):
        await say(update, texts.ANSWER_WRONG)
        return ConversationHandler.END
    # The answer of a car shared with the user is its owner's: not theirs to keep.
    if result is None or result.status != "EXECUTED" or car.tg_id != user_id(update):
        return ConversationHandler.END
    user_data(context)["answer_to_remember"] = given
    offer = keyboards.yes_no(keyboards.REMEMBER, texts.YES_REMEMBER, texts.NO)
    _after_this_step(context, say(update, texts.ANSWER_REMEMBER, offer))
    return ASK_REMEMBER


async def remember(update: Update, context: Context) -> int:
    query = query_of(update)
    await answer(query)
    given = user_data(context).pop("answer_to_remember", None)
    if given is not None and keyboards.parse(query.data)[1] == keyboards.YES:
        services(context).garage.remember_security_answer(user_id(update), given)
        await edit(pressed_message(query), texts.ANSWER_REMEMBERED)
    else:
        await edit(pressed_message(query), texts.ANSWER_NOT_REMEMBERED)
    return ConversationHandler.END


async def answer_timeout(update: Update, context: Context) -> None:
    user_data(context).pop("unlock_vin", None)
    user_data(context).pop("answer_to_remember", None)
    await say(update, texts.ANSWER_TIMEOUT)


async def cancel_unlock(update: Update, context: Context) -> int:
    user_data(context).pop("unlock_vin", None)
    user_data(context).pop("answer_to_remember", None)
    await say(update, texts.CANCELLED)
    return ConversationHandler.END


def _starts(service: ServiceType) -> CarStep:
    async def start(update: Update, context: Context, car: StoredVehicle) -> None:
        await start_service(update, context, car, service)

    return start


def handlers() -> list:
    # The two steps that wait for the car run as tasks (block=False): the user's next update goes on
    # meanwhile, and PTB takes the state they return once they end.
    unlock_flow = ConversationHandler(
        entry_points=[CallbackQueryHandler(unlock_yes, pattern=f"^{keyboards.UNLOCK_YES}:", block=False)],
        states={
            ASK_ANSWER: [
                MessageHandler(SECRET_TEXT, newest_prompt(FLOW, receive_answer, secret=True), block=False)
            ],
            ASK_REMEMBER: [CallbackQueryHandler(remember, pattern=f"^{keyboards.REMEMBER}:")],
            ConversationHandler.TIMEOUT: [locale_handler(), TypeHandler(Update, answer_timeout)],
        },
        fallbacks=[CommandHandler("cancel", cancel_unlock)],
        conversation_timeout=ANSWER_WAIT_SECONDS,
        name=FLOW,
        allow_reentry=True,
    )
    return [
        unlock_flow,
        CallbackQueryHandler(unlock_no, pattern=f"^{keyboards.UNLOCK_NO}:"),
        # Each command and its button do the same: ask first (unlock), or send it with a toast naming it.
        *(
            handler
            for action in texts.REMOTE_ACTIONS
            for handler in command_and_button(
                ask_unlock if action.asks_first else _starts(action.service),
                command=action.command,
                button=action.code,
                needs=action.capability,
                toast=None if action.asks_first else action.name,
            )
        ),
    ]
