"""/link and /unlink. /link asks which backend when CAR_BACKENDS offers both: the i Remote API (region ->
e-mail -> password, the password message deleted at once) or BMW CarData (bot/chat/link_cardata.py)."""

from __future__ import annotations

import re

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.bmw.errors import AuthenticationError, BMWError
from bot.bmw.models import Region
from bot.capabilities import BackendName
from bot.chat import keyboards, link_cardata, share, texts
from bot.chat.common import (
    SECRET_MAX,
    SECRET_TEXT,
    Context,
    answer,
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
    user_data,
    user_id,
    user_of,
)
from bot.chat.confirm import asked_here, confirmation, confirmed
from bot.chat.settings import locale_handler
from bot.garage_errors import LoginCoolDown

FLOW = "link"
CONFIRM_REPLACE, REGION, EMAIL, PASSWORD, BACKEND, CLIENT_ID = range(6)
LINK_TIMEOUT_SECONDS = 600.0
UNLINK_CONFIRM_SECONDS = 60.0
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX = 254  # RFC 5321's limit on a forward path; checked before the pattern, which is slow on long text
FORGET = ("link_region", "link_email")


def _forget(context: Context) -> None:
    for key in FORGET:
        user_data(context).pop(key, None)


async def start(update: Update, context: Context) -> int:
    prompt(context, FLOW)
    garage = services(context).garage
    try:
        garage.logins.check(user_id(update))
    except LoginCoolDown as exc:
        await say(update, error_text(exc))
        return ConversationHandler.END
    account = garage.account_name(user_id(update))
    if account is not None and not garage.needs_relink(user_id(update)):
        await say(
            update,
            texts.link_replace(account),
            keyboards.yes_no(keyboards.RELINK, texts.LINK_ANOTHER, texts.KEEP_IT),
        )
        return CONFIRM_REPLACE
    text, markup, state = _first_question(context)
    await say(update, text, markup)
    return state


async def confirm_replace(update: Update, context: Context) -> int:
    query = query_of(update)
    await answer(query)
    if keyboards.parse(query.data)[1] != keyboards.YES:
        await edit(pressed_message(query), texts.LINK_KEEP)
        return ConversationHandler.END
    text, markup, state = _first_question(context)
    await edit(pressed_message(query), text, markup)
    return state


def _first_question(context: Context) -> tuple[str, InlineKeyboardMarkup | None, int]:
    """Which backend, when both are offered; else the first question of the only one."""
    offered = context.settings.car_backends
    if len(offered) > 1:
        return texts.LINK_BACKEND, keyboards.backends(offered), BACKEND
    return _backend_question(context, offered[0])


def _backend_question(context: Context, name: str) -> tuple[str, InlineKeyboardMarkup | None, int]:
    if name == BackendName.CARDATA:  # linked by a device code, not e-mail and password
        prompt(context, FLOW)  # the client id is typed next
        return texts.cardata_steps(), None, CLIENT_ID
    return texts.LINK_REGION, keyboards.regions(), REGION


async def backend(update: Update, context: Context) -> int:
    query = query_of(update)
    await answer(query)
    name = keyboards.parse(query.data)[1]
    offered = context.settings.car_backends
    if name not in offered:
        await edit(pressed_message(query), texts.LINK_BACKEND, keyboards.backends(offered))
        return BACKEND
    text, markup, state = _backend_question(context, name)
    await edit(pressed_message(query), text, markup)
    return state


async def client_id(update: Update, context: Context) -> int:
    ended = await link_cardata.client_id(update, context)
    return CLIENT_ID if ended is None else ended


async def region(update: Update, context: Context) -> int:
    query = query_of(update)
    await answer(query)
    try:
        user_data(context)["link_region"] = Region(keyboards.parse(query.data)[1])
    except ValueError:
        await edit(pressed_message(query), texts.LINK_REGION, keyboards.regions())
        return REGION
    prompt(context, FLOW)  # a region pressed after another flow asked for something: linking is newest again
    await edit(pressed_message(query), texts.LINK_EMAIL)
    return EMAIL


async def email(update: Update, context: Context) -> int:
    given = (message_of(update).text or "").strip()
    if len(given) > EMAIL_MAX or not EMAIL_PATTERN.match(given):
        await say(update, texts.LINK_EMAIL_INVALID)
        return EMAIL
    try:  # said before the user types a password in vain; garage.link checks again before BMW is asked
        services(context).garage.logins.check(user_id(update), given)
    except LoginCoolDown as exc:
        _forget(context)
        await say(update, error_text(exc))
        return ConversationHandler.END
    user_data(context)["link_email"] = given
    await say(update, texts.LINK_PASSWORD)
    return PASSWORD


async def password(update: Update, context: Context) -> int:
    given = message_of(update).text or ""
    await delete_secret(update)  # the password leaves the chat before anything else happens
    if len(given) > SECRET_MAX:
        await say(update, texts.LINK_PASSWORD_TOO_LONG.format(limit=SECRET_MAX))
        return PASSWORD
    status = await say(update, texts.LINK_CHECKING)
    user = user_of(update)
    data = user_data(context)
    garage = services(context).garage
    before = share.ending(garage, user.id)
    try:
        vehicles = await garage.link(user.id, user.first_name, data["link_region"], data["link_email"], given)
    except AuthenticationError:
        await edit(status, texts.LINK_WRONG_PASSWORD)
        return PASSWORD
    except LoginCoolDown as exc:  # before BMW was asked, or this failure began a cool-down
        _forget(context)
        await edit(status, error_text(exc))
        return ConversationHandler.END
    except BMWError as exc:
        _forget(context)
        await edit(status, texts.link_failed(texts.refusal(exc)))
        return ConversationHandler.END
    _forget(context)
    if not vehicles:
        await garage.unlink(user.id)
        await edit(status, texts.LINK_NO_CARS)
    else:
        await edit(status, texts.LINK_DONE.format(cars=texts.cars_list(garage.cars(user.id))))
    await share.tell_gone(context.application, garage, before, user.id)
    return ConversationHandler.END


async def timeout(update: Update, context: Context) -> None:
    _forget(context)
    await say(update, texts.LINK_TIMEOUT)


async def cancel(update: Update, context: Context) -> int:
    _forget(context)
    stopped = await link_cardata.end_wait(context.application, user_id(update))  # an earlier code's wait
    await say(update, texts.CARDATA_LOGIN_STOPPED if stopped else texts.CANCELLED)
    return ConversationHandler.END


async def unlink_command(update: Update, context: Context) -> None:
    garage = services(context).garage
    if garage.is_linked(user_id(update)):
        ask = texts.UNLINK_ASK
    elif garage.sharing.memberships(user_id(update)):  # a shared person's /unlink only leaves the shares
        nonce = confirmation(context, "unlink", keyboards.SHARE_LEAVE, UNLINK_CONFIRM_SECONDS)
        await say(
            update,
            texts.SHARE_LEAVE_ASK,
            keyboards.yes_no(keyboards.UNLINK, texts.SHARE_LEAVE_BUTTON, yes_arg=nonce),
        )
        return
    elif await link_cardata.end_wait(context.application, user_id(update)):
        # Nothing linked yet, but a first CarData login waited: it ends at once, without asking.
        await say(update, texts.CARDATA_LOGIN_STOPPED)
        return
    elif garage.keeps_settings(user_id(update)):  # no account, but their choices are theirs to remove too
        ask = texts.UNLINK_SETTINGS_ASK
    else:
        await say(update, texts.NOT_LINKED)
        return
    # A one-shot, expiring confirmation: an old, replayed or forged "Yes" removes nothing.
    nonce = confirmation(context, "unlink", keyboards.YES, UNLINK_CONFIRM_SECONDS)
    markup = keyboards.yes_no(keyboards.UNLINK, texts.REMOVE_EVERYTHING, yes_arg=nonce)
    await say(update, ask, markup)


async def unlink_answer(update: Update, context: Context) -> None:
    query = query_of(update)
    arg = keyboards.parse(query.data)[1]
    asked = arg == keyboards.NO or asked_here(context, "unlink", arg)
    yes = confirmed(context, "unlink", arg)
    garage = services(context).garage
    linked = garage.is_linked(user_id(update))
    if not asked:
        # A "Yes" this process never gave or already took (forged, a second tap, or the press delivered again
        # to a process started after a kill: Telegram keeps an update until the next poll acknowledges it):
        # it removes nothing and leaves the message alone, which may show what the first press did.
        await answer(query, texts.UNLINK_KEPT)
        return
    await answer(query)
    if yes == keyboards.SHARE_LEAVE:
        await share.leave(context.application, user_id(update))
        await edit(pressed_message(query), texts.SHARE_LEAVE_DONE)
    elif yes is not None and (linked or garage.keeps_settings(user_id(update))):
        await link_cardata.end_wait(context.application, user_id(update))  # first: no later approval links
        await share.leave(context.application, user_id(update))  # cars shared with them: their owners told
        owner, ended = share.ending(garage, user_id(update))
        await garage.unlink(user_id(update))
        user_data(context).clear()
        await edit(pressed_message(query), texts.UNLINK_DONE if linked else texts.UNLINK_SETTINGS_DONE)
        await share.tell_ended(context.application, owner, ended)
    else:
        await edit(pressed_message(query), texts.UNLINK_KEPT)


def handlers() -> list:
    text = filters.TEXT & ~filters.COMMAND
    conversation = ConversationHandler(
        entry_points=[CommandHandler("link", start)],
        states={
            CONFIRM_REPLACE: [CallbackQueryHandler(confirm_replace, pattern=f"^{keyboards.RELINK}:")],
            BACKEND: [CallbackQueryHandler(backend, pattern=f"^{keyboards.BACKEND}:")],
            CLIENT_ID: [MessageHandler(SECRET_TEXT, newest_prompt(FLOW, client_id, secret=True))],
            REGION: [CallbackQueryHandler(region, pattern=f"^{keyboards.REGION}:")],
            EMAIL: [MessageHandler(text, newest_prompt(FLOW, email))],
            PASSWORD: [MessageHandler(SECRET_TEXT, newest_prompt(FLOW, password, secret=True))],
            ConversationHandler.TIMEOUT: [locale_handler(), TypeHandler(Update, timeout)],
        },
        fallbacks=[CommandHandler("cancel", cancel)],
        conversation_timeout=LINK_TIMEOUT_SECONDS,
        name=FLOW,
        allow_reentry=True,
    )
    return [
        conversation,
        *link_cardata.handlers(),
        CommandHandler("unlink", unlink_command),
        CallbackQueryHandler(unlink_answer, pattern=f"^{keyboards.UNLINK}:"),
    ]
