"""The monthly summary (bot/months.py): a car's month in one message with its chart, pushed on the 1st (an
alert of bot/alerts.py, sent by the pusher in bot/chat/notify.py) and shown on demand under /history (this
month so far, last month). Read from what the bot recorded, and BMW's own charging history as /history fetched
it within the hour: no call to BMW."""

from __future__ import annotations

import asyncio
from functools import partial

from telegram import Update
from telegram.constants import ChatAction, ParseMode
from telegram.ext import CallbackQueryHandler

from bot.charts import MonthWords, month_chart
from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    Context,
    Services,
    answer,
    chat_of,
    pressed_car,
    query_of,
    say,
    services,
    user_id,
)
from bot.chat.history import bmw_history, sessions_of
from bot.chat.i18n import tr
from bot.costs import charge_cost
from bot.months import Month, figures
from bot.store import StoredVehicle


async def summary(
    svc: Services, tg_id: int, car: StoredVehicle, month: Month, *, so_far: bool = False
) -> tuple[str, bytes | None]:
    """The month's text and chart (None when nothing was recorded), in the current prefs (units, language,
    zone); compared with the month before unless it is a month `so_far`."""
    garage, zone = svc.garage, prefs.current().zone
    # BMW's own charging history as /history fetched it within the hour (CarData): it lists charges from
    # before the link, and the summary should count what /history just showed. No call of its own.
    sessions = sessions_of(
        garage, tg_id, car.vin, (await bmw_history(garage, tg_id, car, cached_only=True))[0]
    )
    drives = garage.drives(tg_id, car.vin)
    marks = garage.mileage_marks(tg_id, car.vin)

    costing = garage.costing(tg_id, car.vin, sessions, zone)  # the owner's tariffs and prices
    cost_of = partial(charge_cost, costing=costing)
    this = figures(month, zone, sessions, drives, marks, cost_of)
    before = None if so_far else figures(month.previous, zone, sessions, drives, marks, cost_of)
    tariff = bool(costing.tariffs) and costing.tariffs[-1].price is not None
    text = texts.month_summary(car, this, before, so_far=so_far, tariff=tariff)
    if not this.has_data:
        return text, None
    words = MonthWords(
        tr(texts.MONTH_CHART_KM.format(unit=prefs.distance_unit())),
        tr(texts.MONTH_CHART_KWH),
        number=lambda value: prefs.number(value, 0 if value >= 10 or value == round(value) else 1),
        day=prefs.numeric_day,
    )
    km = [(day, prefs.in_user_units(value)) for day, value in this.km_per_day]
    return text, await asyncio.to_thread(month_chart, km, this.kwh_per_week, words)


async def month_button(update: Update, context: Context) -> None:
    """This month so far, or last month, of the pressed car (one the pressing user sees)."""
    car = await pressed_car(update, context)
    if car is None:
        return
    query = query_of(update)
    await answer(query)
    svc = services(context)
    now = Month.of(svc.clock(), prefs.current().zone)
    so_far = keyboards.parse(query.data)[0] == keyboards.MONTH_NOW
    chat = chat_of(update)
    await chat.send_chat_action(ChatAction.UPLOAD_PHOTO)
    text, png = await summary(svc, user_id(update), car, now if so_far else now.previous, so_far=so_far)
    if png is None:
        await say(update, text)
    else:
        await chat.send_photo(png, caption=tr(text), filename="month.png", parse_mode=ParseMode.HTML)


def handlers() -> list:
    return [CallbackQueryHandler(month_button, pattern=f"^({keyboards.MONTH_NOW}|{keyboards.MONTH_LAST}):")]
