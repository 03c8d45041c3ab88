"""/notify (which charge pushes a user wants) and the pushes themselves, for every backend (the garage's
`notify`: bot.watcher for polled cars, CarData's charge detector for streamed ones).

Pushes go through the Application's bot, so its rate limiter (bot/chat/rate_limit.py) paces them and tries
429s and 5xx again. A push that still fails raises, and the watcher tries it again on its next cycle; only
a user who blocked the bot (Forbidden) is given up on, since retrying cannot reach them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from datetime import UTC, datetime

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
# after a 429, every waiting send together, earning the next one). Pushes have places of their own instead:
# each holds one from its send until a second after its answer, since Telegram counted it somewhere between,
# so no second at Telegram holds more than PUSHES_PER_SECOND pushes, however late its answers come; one
# message a second is left for chat answers; a few in flight. (Paced evenly, one per 1/28 s, they lost every
# timer's lateness: 0.85-0.89 of the best possible end to end, benchmarks/push_fanout.py; the numbers are in
# benchmarks/README.md.)
PUSHES_PER_SECOND = 29
PUSHES_IN_FLIGHT = 4
TELEGRAMS_SECOND = 1.0  # the window Telegram counts its ~30 messages in


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
    per_second = asyncio.Semaphore(PUSHES_PER_SECOND)  # each place given back a second after its answer

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

    @contextlib.asynccontextmanager
    async def counted_by_telegram() -> AsyncIterator[None]:
        await per_second.acquire()
        try:
            yield
        finally:  # a refused or failed send may have counted too
            asyncio.get_running_loop().call_later(TELEGRAMS_SECOND, per_second.release)

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
            async with in_flight, counted_by_telegram():
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
