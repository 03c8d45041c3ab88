"""/share: an owner invites their household to a car, sees who shares each car, revokes or allows remote
commands per person; the invited person accepts in a private chat (`/start <SHARE_START><token>`).

The invitation's rules are bot/sharing.py's; what a shared person may do is the garage's. The other side of a
share is told in their own language: the person when the owner ends it, the owner when someone joins, leaves,
locks or unlocks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from html import escape

from telegram import Bot, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.bmw.models import ServiceType
from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    Context,
    answer,
    edit,
    pressed_car,
    pressed_message,
    query_of,
    say,
    services,
    user_data,
    user_id,
    user_of,
)
from bot.chat.confirm import confirmation, confirmed
from bot.chat.i18n import tr
from bot.garage import Garage
from bot.sharing import OPEN_INVITES, TooManyInvitations
from bot.store import Share, StoredVehicle

log = logging.getLogger(__name__)
SHARE_START = "share-"  # the /start payload of an invitation: this, then the token
ACCEPT_SECONDS = 10 * 60.0  # the Accept button under an opened invitation
# A second press of one menu's Invite for the same car this soon is a double tap, not a second person.
DOUBLE_TAP_SECONDS = 10.0
INVITED = "share_invited"  # user_data: (menu message, VIN, monotonic time) of the last invitation made
_TOLD_OF = {ServiceType.DOOR_LOCK: texts.SHARE_LOCKED_BY, ServiceType.DOOR_UNLOCK: texts.SHARE_UNLOCKED_BY}


def name_of(garage: Garage, tg_id: int) -> str:
    """A user's first name as the other side of a share reads it (HTML-escaped)."""
    return escape(garage.sharing.first_name(tg_id) or tr(texts.THERE))


def menu(garage: Garage, refs: keyboards.CarRefs, owner: int) -> tuple[str, InlineKeyboardMarkup]:
    """/share's message: per own car, who sees it (and whether they may send it commands), with buttons."""
    shares = garage.sharing.shares(owner)
    own = [car for car in garage.all_cars(owner) if car.tg_id == owner]
    lines: list[str] = [texts.SHARE_INTRO]
    cars = []
    for car in own:
        people = [(s.member, name_of(garage, s.member), s.remote) for s in shares if s.vin == car.vin]
        lines.append("")
        lines.append(texts.SHARE_CAR.format(car=texts.car_label(car)))
        for _, name, remote in people:
            lines.append((texts.SHARE_PERSON_REMOTE if remote else texts.SHARE_PERSON).format(name=name))
        if not people:
            lines.append(texts.SHARE_NOBODY)
        cars.append((car, people))
    return texts.joined(lines), keyboards.share_menu(refs, owner, cars)


async def share_command(update: Update, context: Context) -> None:
    garage = services(context).garage
    owner = user_id(update)
    if not any(car.tg_id == owner for car in garage.all_cars(owner)):
        await say(update, texts.SHARE_NOTHING_TO_SHARE)
        return
    text, markup = menu(garage, services(context).refs, owner)
    await say(update, text, markup)


async def invite(update: Update, context: Context) -> None:
    query = query_of(update)
    car = await pressed_car(update, context)
    if car is None:
        return
    owner = user_id(update)
    if car.tg_id != owner:  # a car shared with the presser is not theirs to share on
        await answer(query, texts.SHARE_OWNER_ONLY)
        return
    pressed = (pressed_message(query).message_id, car.vin)
    last = user_data(context).get(INVITED)
    if last is not None and last[:2] == pressed and time.monotonic() - last[2] < DOUBLE_TAP_SECONDS:
        await answer(query, texts.SHARE_LINK_SENT)
        return
    await answer(query)
    try:
        token = services(context).garage.sharing.invite(owner, car.vin)
    except TooManyInvitations:
        await say(update, texts.SHARE_TOO_MANY.format(car=texts.car_label(car), limit=OPEN_INVITES))
        return
    user_data(context)[INVITED] = (*pressed, time.monotonic())
    link = f"https://t.me/{context.bot.username}?start={SHARE_START}{token}"
    text = texts.SHARE_INVITE_LINK.format(car=texts.car_label(car), link=link)
    await say(update, text, keyboards.share_link(link))


async def pressed_share(update: Update, context: Context) -> Share | None:
    """The pressing owner's share named by the callback data; None, after a neutral answer, for anything
    else (another owner's share, one ended since, forged data)."""
    query = query_of(update)
    ref = keyboards.parse(query.data)[1]
    svc = services(context)
    owner = user_id(update)
    for share in svc.garage.sharing.shares(owner):
        if keyboards.share_ref(svc.refs, owner, share.vin, share.member) == ref:
            return share
    await answer(query, texts.STALE_BUTTON)
    return None


async def revoke(update: Update, context: Context) -> None:
    query = query_of(update)
    share = await pressed_share(update, context)
    if share is None:
        return
    svc = services(context)
    garage = svc.garage
    car = garage.find_car(share.owner, share.vin)
    if not garage.sharing.revoke(share) or car is None:
        await answer(query, texts.STALE_BUTTON)
        return
    await answer(
        query, texts.SHARE_REVOKED.format(name=name_of(garage, share.member), car=texts.car_label(car))
    )
    await tell_ended(context.application, name_of(garage, share.owner), [(share, car)])
    text, markup = menu(garage, svc.refs, share.owner)
    await edit(pressed_message(query), text, markup)


async def switch_remote(update: Update, context: Context) -> None:
    query = query_of(update)
    share = await pressed_share(update, context)
    if share is None:
        return
    svc = services(context)
    svc.garage.sharing.allow_remote(share, not share.remote)
    await answer(query)
    text, markup = menu(svc.garage, svc.refs, share.owner)
    await edit(pressed_message(query), text, markup)


# The invited person -----------------------------------------------------------------------------------------


async def offer(update: Update, context: Context, token: str) -> None:
    """`/start share-<token>`: what the invitation is for, with Accept, or why it is not valid. Opening it
    uses nothing up; Accept does (`accept`)."""
    garage = services(context).garage
    member = user_id(update)
    found = garage.sharing.invitation(token)
    if found is None:
        await say(update, texts.SHARE_INVALID)
        return
    owner, vin = found
    car = garage.find_car(owner, vin)
    if owner == member or car is None:
        await say(update, texts.SHARE_OWN_CAR if owner == member else texts.SHARE_INVALID)
        return
    if garage.find_car(member, vin) is not None:
        await say(update, texts.SHARE_ALREADY.format(car=texts.car_label(car)))
        return
    nonce = confirmation(context, "share", token, ACCEPT_SECONDS)
    text = texts.SHARE_ASK.format(owner=name_of(garage, owner), car=texts.car_label(car))
    await say(update, text, keyboards.share_accept(nonce))


async def accept(update: Update, context: Context) -> None:
    query = query_of(update)
    token = confirmed(context, "share", keyboards.parse(query.data)[1])
    if token is None:  # a second tap, a replay or a late press: the first tap's answer stays as it is
        await answer(query, texts.STALE_BUTTON)
        return
    await answer(query)
    garage = services(context).garage
    user = user_of(update)
    share = garage.sharing.accept(token, user.id, user.first_name)
    car = garage.find_car(user.id, share.vin) if share else None
    if share is None or car is None:
        await edit(pressed_message(query), texts.SHARE_INVALID)
        return
    garage.save_language_code(user.id, user.language_code)  # their pushes come in their language from now on
    await edit(pressed_message(query), texts.SHARE_DONE.format(car=texts.car_label(car)))
    name = name_of(garage, user.id)
    await tell(
        context.application, share.owner, texts.SHARE_JOINED.format(name=name, car=texts.car_label(car))
    )


async def decline(update: Update, context: Context) -> None:
    query = query_of(update)
    await answer(query)
    confirmed(context, "share", keyboards.parse(query.data)[1])  # that Accept no longer works
    await edit(pressed_message(query), texts.SHARE_DECLINED)


async def leave(application: Application, member: int) -> None:
    """The member's /unlink when they own no account: every share with them ends, each owner is told."""
    garage = application.bot_data.services.garage
    name = name_of(garage, member)
    for share in garage.sharing.leave(member):
        car = garage.find_car(share.owner, share.vin)
        if car is not None:
            await tell(application, share.owner, texts.SHARE_LEFT.format(name=name, car=texts.car_label(car)))


def as_shown(garage: Garage, tg_id: int, car: StoredVehicle) -> StoredVehicle:
    """The car as its buttons are offered to the user: without remote commands when it is shared with them
    and its owner has not switched those on for them (the garage refuses them either way)."""
    if garage.may_command(tg_id, car):
        return car
    return replace(car, capabilities=car.capabilities - keyboards.REMOTE_CAPABILITIES)


# Telling the other side ------------------------------------------------------------------------------------


async def tell(application: Application, tg_id: int, text: str) -> None:
    """One line to the other side of a share, in their language; a failure is logged, not raised: the share
    changed either way."""
    garage = application.bot_data.services.garage
    with prefs.using(prefs.stored(garage.user_settings(tg_id))):
        await _send(application.bot, tg_id, text)


async def _send(bot: Bot, tg_id: int, text: str) -> None:
    try:
        await bot.send_message(tg_id, tr(text), parse_mode=ParseMode.HTML)
    except TelegramError as exc:
        log.warning("share: a message to user %s failed (%s)", tg_id, type(exc).__name__)


Ending = tuple[str, list[tuple[Share, StoredVehicle]]]  # an owner's name and their shares with the cars


def ending(garage: Garage, owner: int) -> Ending:
    """Before the owner's /unlink: their name and every share with its car, to tell each person after."""
    cars = {car.vin: car for car in garage.all_cars(owner)}
    shares = garage.sharing.shares(owner)
    return name_of(garage, owner), [(share, cars[share.vin]) for share in shares if share.vin in cars]


async def tell_ended(
    application: Application, owner: str, ended: Sequence[tuple[Share, StoredVehicle]]
) -> None:
    """Each person of these ended shares learns that `owner` (a name) no longer shares the car with them."""
    for share, car in ended:
        await tell(application, share.member, texts.SHARE_ENDED.format(owner=owner, car=texts.car_label(car)))


async def tell_gone(
    application: Application,
    garage: Garage,
    before: tuple[str, list[tuple[Share, StoredVehicle]]],
    owner: int,
) -> None:
    """After a new link (`before`: `ending` just before it): each person whose car the new account lacks
    learns that the share ended."""
    still = {(share.vin, share.member) for share in garage.sharing.shares(owner)}
    name, shares = before
    await tell_ended(application, name, [(s, car) for s, car in shares if (s.vin, s.member) not in still])


async def tell_owner(context: Context, member: int, car: StoredVehicle, service: ServiceType) -> None:
    """The owner learns each time someone they share the car with locks or unlocks it."""
    told = _TOLD_OF.get(service)
    if told is not None and car.tg_id != member:
        name = name_of(services(context).garage, member)
        await tell(context.application, car.tg_id, told.format(name=name, car=texts.car_label(car)))


def handlers() -> list:
    return [
        CommandHandler("share", share_command),
        CallbackQueryHandler(invite, pattern=f"^{keyboards.SHARE_INVITE}:"),
        CallbackQueryHandler(revoke, pattern=f"^{keyboards.SHARE_REVOKE}:"),
        CallbackQueryHandler(switch_remote, pattern=f"^{keyboards.SHARE_REMOTE}:"),
        CallbackQueryHandler(accept, pattern=f"^{keyboards.SHARE_ACCEPT}:"),
        CallbackQueryHandler(decline, pattern=f"^{keyboards.SHARE_DECLINE}:"),
    ]
