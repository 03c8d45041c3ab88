"""/history: the selected car's last charge sessions, a chart of the last 30 days, and all of them as CSV."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.charts import HistoryWords, history_chart
from bot.chat import keyboards, texts
from bot.chat.common import (
    Context,
    answer,
    chat_of,
    chosen_car,
    pressed_car,
    query_of,
    say,
    services,
    user_id,
)
from bot.garage import Garage
from bot.history import CHART_DAYS, ChargeSession, energy_per_day, local, merge, to_csv

SESSIONS_SHOWN = 10


def sessions_of(
    garage: Garage, tg_id: int, vin: str, extra: Iterable[ChargeSession] = ()
) -> list[ChargeSession]:
    """The car's sessions, newest first. `extra` is where BMW's own CarData charging history joins
    (bot/cardata/client.py charging_history, as ChargeSession with source BMW_HISTORY; see history.merge)."""
    return merge(garage.charge_sessions(tg_id, vin), extra)


def chart(sessions: list[ChargeSession], now: float) -> tuple[bytes, float, int]:
    """The chart's PNG, and the kWh and number of charges it shows (blocking: run it in a thread)."""
    last = sessions[0]
    # The car's report times can run ahead of the server's clock: its newest charge is always on the chart.
    days = energy_per_day(sessions, local(max(now, last.ended_at)).date())
    shown = [s for s in sessions if local(s.ended_at).date() >= days[0][0]]
    soc = []
    if last.soc_start is not None and last.soc_end is not None:
        soc = [(local(last.started_at), last.soc_start), (local(last.ended_at), last.soc_end)]
    words = HistoryWords(
        texts.HISTORY_CHART_ENERGY.format(days=CHART_DAYS),
        texts.HISTORY_CHART_SOC,
        texts.HISTORY_CHART_NO_SOC,
    )
    return history_chart(days, soc, words), sum(kwh for _, kwh in days), len(shown)


async def history_command(update: Update, context: Context) -> None:
    car = await chosen_car(update, context)
    if car is None:
        return
    svc, tg_id = services(context), user_id(update)
    sessions = sessions_of(svc.garage, tg_id, car.vin)
    if not sessions:
        await say(update, texts.HISTORY_NONE.format(car=texts.car_label(car)))
        return
    ref = svc.refs.ref(tg_id, car.vin)
    await say(update, texts.history(car, sessions[:SESSIONS_SHOWN]), keyboards.history_csv(ref))
    chat = chat_of(update)
    await chat.send_chat_action(ChatAction.UPLOAD_PHOTO)
    png, kwh, count = await asyncio.to_thread(chart, sessions, time.time())
    caption = texts.history_caption(car, CHART_DAYS, kwh, count)
    await chat.send_photo(png, caption=caption, filename="charging-history.png", parse_mode="HTML")


async def csv_button(update: Update, context: Context) -> None:
    """All the pressed car's sessions as a CSV document; the car must be the pressing user's own."""
    car = await pressed_car(update, context)
    if car is None:
        return
    await answer(query_of(update))
    sessions = sessions_of(services(context).garage, user_id(update), car.vin)
    chat = chat_of(update)
    await chat.send_chat_action(ChatAction.UPLOAD_DOCUMENT)
    await chat.send_document(
        to_csv(sessions),
        filename=f"charging-history-{car.vin[-4:]}.csv",
        caption=texts.history_csv_caption(car, len(sessions)),
        parse_mode="HTML",
    )


def handlers() -> list:
    return [
        CommandHandler("history", history_command),
        CallbackQueryHandler(csv_button, pattern=f"^{keyboards.HISTORY_CSV}:"),
    ]
