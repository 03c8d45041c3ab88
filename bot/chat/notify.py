"""/notify (which charge pushes a user wants) and the charge pushes themselves, sent for `bot.watcher`.

Pushes go through the Application's bot, so its AIORateLimiter paces them and retries 429s. A push that
still fails raises, and the watcher tries it again on its next cycle; only a user who blocked the bot
(Forbidden) is given up on, since retrying cannot reach them.
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
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.alerts import CarAlert
from bot.chat import alerts, keyboards, prefs, texts
from bot.chat.common import Context, answer, edit, job_queue, query_of, say, services, user_id
from bot.chat.i18n import tr
from bot.config import Settings
from bot.watcher import ChargeEvent, EventKind, Push, RelinkNeeded, Watcher

log = logging.getLogger(__name__)

TICK_SECONDS = 10.0  # how often the watcher looks for due cars; each car has its own poll interval
# A fan-out of pushes handed to PTB's AIORateLimiter all at once leaves in bursts (30 at once, then 30/s;
# after a 429, every waiting send together, earning the next one). Pushes are paced evenly just under
# Telegram's ~30 messages/s, a few in flight, and chat answers keep the limiter's headroom
# (benchmarks/push_fanout.py measures it; benchmarks/README.md has the numbers).
PUSHES_PER_SECOND = 28
PUSHES_IN_FLIGHT = 4


async def notify_command(update: Update, context: Context) -> None:
    prefs = services(context).garage.store.notify_prefs(user_id(update))
    await say(update, texts.NOTIFY_ASK, keyboards.notify_toggles(asdict(prefs)))


async def toggle(update: Update, context: Context) -> None:
    """Switch one push for the pressing user (their own prefs: nothing in the data names anyone)."""
    query = query_of(update)
    name = keyboards.parse(query.data)[1]
    if name not in texts.NOTIFY_LABELS:
        await answer(query, texts.STALE_BUTTON)
        return
    store = services(context).garage.store
    tg_id = user_id(update)
    prefs = store.notify_prefs(tg_id)
    on = not getattr(prefs, name)
    prefs = replace(prefs, **{name: on})
    store.save_notify_prefs(tg_id, prefs)
    await answer(query, texts.NOTIFY_SWITCHED.format(label=texts.NOTIFY_LABELS[name], state=texts.on_off(on)))
    if query.message is not None:
        await edit(query.message, texts.NOTIFY_ASK, keyboards.notify_toggles(asdict(prefs)))


def pusher(application: Application) -> Push:
    """The watcher's push: one message with the numbers and Status / Range map buttons, or the one line
    asking the owner to link again; in the owner's units and language, silent in their quiet hours."""
    in_flight = asyncio.Semaphore(PUSHES_IN_FLIGHT)
    pace = AsyncLimiter(1, 1 / PUSHES_PER_SECOND)  # one at a time: no burst

    async def push(event: ChargeEvent | RelinkNeeded | CarAlert) -> None:
        svc = application.bot_data["services"]
        # No update to take them from: the owner's stored prefs, for the text and for quiet hours.
        with prefs.using(prefs.stored(svc.garage.store, event.tg_id)):
            if isinstance(event, RelinkNeeded):
                await send(event.tg_id, "re-link", texts.password_refused(event.username, push=True))
                return
            car = svc.garage.store.vehicle(event.tg_id, event.vin)
            if car is None:  # unlinked since the poll: nothing to tell
                return
            if isinstance(event, CarAlert):
                text, markup = alerts.push(car, event.alert, svc.refs.ref(event.tg_id, car.vin))
                await send(event.tg_id, f"{event.alert.kind} alert", text, markup)
                return
            ended = event.kind is not EventKind.STARTED
            text = texts.charge_push(
                car,
                event.outcome or event.kind,
                event.status,
                soc_at_start=event.soc_at_start,
                charged_seconds=event.charged_seconds if ended else None,
            )
            markup = keyboards.charge_push(svc.refs.ref(event.tg_id, car.vin), car)
            await send(event.tg_id, event.kind, text, markup)

    async def send(tg_id: int, kind: str, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Sent in the current prefs' quiet hours: without a sound, never held back."""
        silent = prefs.current().is_quiet(datetime.now(UTC))
        try:
            async with in_flight, pace:
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


def start_watcher(application: Application) -> Watcher:
    """Create the watcher (kept in services.watcher) and start its ticks on the JobQueue."""
    settings: Settings = application.bot_data["settings"]
    svc = application.bot_data["services"]
    watcher = Watcher(
        svc.garage,
        pusher(application),
        charge_poll_seconds=settings.charge_poll_seconds,
        idle_poll_seconds=settings.idle_poll_seconds,
        concurrency=settings.watcher_concurrency,
    )
    svc.watcher = watcher
    tick = min(TICK_SECONDS, settings.charge_poll_seconds)
    queue = job_queue(application)

    async def run(context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await watcher.cycle()
        finally:
            # The next tick is booked when this cycle ends, so a long cycle never overlaps the next one.
            queue.run_once(run, tick, name="charge-watcher")

    queue.run_once(run, tick, name="charge-watcher")
    return watcher


def handlers() -> list:
    return [
        CommandHandler("notify", notify_command),
        CallbackQueryHandler(toggle, pattern=f"^{keyboards.NOTIFY}:"),
    ]
