"""/notify (which charge pushes a user wants) and the pushes themselves, for every backend (the garage's
`notify`: bot.watcher for polled cars, CarData's charge detector for streamed ones).

Pushes go through the Application's bot, so its rate limiter (bot/chat/rate_limit.py) paces them and tries
429s and 5xx again. A push that still fails raises, and the watcher tries it again on its next cycle; only
a user who blocked the bot (Forbidden) is given up on, since retrying cannot reach them.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, replace
from datetime import UTC, datetime

from aiolimiter import AsyncLimiter
from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import Forbidden
from telegram.ext import Application, CallbackQueryHandler, CommandHandler

from bot.alerts import AlertKind, CarAlert, summarised
from bot.car_status import ChargeNotice, Notice, RelinkNotice, StreamBlocked
from bot.chat import alerts, keyboards, monthly, prefs, share, texts
from bot.chat.common import Context, answer, edit, query_of, say, services, user_id
from bot.chat.i18n import tr
from bot.store import StoredVehicle
from bot.watcher import Push

log = logging.getLogger(__name__)

# A fan-out of pushes handed to PTB's AIORateLimiter all at once leaves in bursts (30 at once, then 30/s;
# after a 429, every waiting send together, earning the next one). Pushes are paced evenly just under
# Telegram's ~30 messages/s, a few in flight, and chat answers keep the limiter's headroom
# (benchmarks/push_fanout.py measures it; benchmarks/README.md has the numbers).
PUSHES_PER_SECOND = 28
PUSHES_IN_FLIGHT = 4


async def notify_command(update: Update, context: Context) -> None:
    prefs = services(context).garage.notify_prefs(user_id(update))
    await say(update, texts.NOTIFY_ASK, keyboards.notify_toggles(asdict(prefs)))


async def toggle(update: Update, context: Context) -> None:
    """Switch one push for the pressing user (their own prefs: nothing in the data names anyone)."""
    query = query_of(update)
    name = keyboards.parse(query.data)[1]
    if name not in texts.NOTIFY_LABELS:
        await answer(query, texts.STALE_BUTTON)
        return
    garage = services(context).garage
    tg_id = user_id(update)
    prefs = garage.notify_prefs(tg_id)
    on = not getattr(prefs, name)
    prefs = replace(prefs, **{name: on})
    garage.save_notify_prefs(tg_id, prefs)
    await answer(query, texts.NOTIFY_SWITCHED.format(label=texts.NOTIFY_LABELS[name], state=texts.on_off(on)))
    if query.message is not None:
        await edit(query.message, texts.NOTIFY_ASK, keyboards.notify_toggles(asdict(prefs)))


def pusher(application: Application) -> Push:
    """The push of every backend (the watcher's polls, CarData's stream) and of the alerts: one message with
    the numbers and the car's buttons, the one line asking the owner to link again, or the one saying why BMW
    lets nothing through their stream (another app holds it, or it is not set up; with "Try now"); in the
    owner's units and language, silent in their quiet hours. Whether anyone wants a push was decided before;
    a charge push goes to the owner if they want it and to each person the car is shared with who wants it
    (their own /notify, language and units). Raising here makes its backend try again later."""
    in_flight = asyncio.Semaphore(PUSHES_IN_FLIGHT)
    pace = AsyncLimiter(1, 1 / PUSHES_PER_SECOND)  # one at a time: no burst

    async def push(notice: Notice | CarAlert) -> None:
        svc = application.bot_data.services
        # No update to take them from: the owner's stored prefs, for the text and for quiet hours.
        with prefs.using(prefs.stored(svc.garage.user_settings(notice.tg_id))):
            if isinstance(notice, RelinkNotice):
                name = notice.username
                text = texts.CARDATA_RELINK_PUSH if name is None else texts.password_refused(name, push=True)
                await send(notice.tg_id, "re-link", text)
                return
            if isinstance(notice, StreamBlocked):
                markup = keyboards.stream_try_now()
                text = texts.CARDATA_STREAM_BLOCKED_PUSH[notice.reason]
                await send(notice.tg_id, f"{notice.reason}-stream", text, markup)
                return
            car = svc.garage.find_car(notice.tg_id, notice.vin)
            if car is None:  # unlinked since: nothing to tell
                return
            if isinstance(notice, CarAlert) and notice.alert.kind is AlertKind.MONTHLY:
                month = summarised(notice.alert)
                if month is not None:
                    text, png = await monthly.summary(svc, notice.tg_id, car, month)
                    await send(notice.tg_id, "monthly summary", text, photo=png)
                return
            if isinstance(notice, CarAlert):
                shown = share.as_shown(svc.garage, notice.tg_id, car)  # no Lock for whom may not
                text, markup = alerts.push(shown, notice.alert, svc.refs.ref(notice.tg_id, car.vin))
                await send(notice.tg_id, f"{notice.alert.kind} alert", text, markup)
                return
            wanting = svc.garage.sharing.push_recipients(notice.tg_id, notice.vin, notice.kind.preference)
            if notice.tg_id in wanting:
                await charge(notice.tg_id, car, notice)
        # Then each person the car is shared with who wants it, in their own prefs. The owner's push is out:
        # a failure here is logged, not raised, so that it is not sent again.
        for member in (tg_id for tg_id in wanting if tg_id != notice.tg_id):
            with prefs.using(prefs.stored(svc.garage.user_settings(member))):
                try:
                    await charge(member, car, notice)
                except Exception as exc:
                    log.warning("%s push to user %s failed (%s)", notice.kind, member, type(exc).__name__)

    async def charge(tg_id: int, car: StoredVehicle, notice: ChargeNotice) -> None:
        markup = keyboards.charge_push(application.bot_data.services.refs.ref(tg_id, car.vin), car)
        await send(tg_id, notice.kind, texts.charge_push(car, notice), markup)

    async def send(
        tg_id: int,
        kind: str,
        text: str,
        markup: InlineKeyboardMarkup | None = None,
        photo: bytes | None = None,
    ) -> None:
        """Sent in the current prefs' quiet hours: without a sound, never held back. With a `photo`, the text
        is its caption."""
        silent = prefs.current().is_quiet(datetime.fromtimestamp(application.bot_data.services.clock(), UTC))
        try:
            async with in_flight, pace:
                if photo is not None:
                    await application.bot.send_photo(
                        tg_id,
                        photo,
                        caption=tr(text),
                        parse_mode=ParseMode.HTML,
                        reply_markup=markup,
                        disable_notification=silent,
                    )
                    return
                await application.bot.send_message(
                    tg_id,
                    tr(text),
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    disable_notification=silent,
                )
        except Forbidden:
            log.info("user %s blocked the bot; %s push dropped", tg_id, kind)

    return push


def handlers() -> list:
    return [
        CommandHandler("notify", notify_command),
        CallbackQueryHandler(toggle, pattern=f"^{keyboards.NOTIFY}:"),
    ]
