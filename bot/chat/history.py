"""/history: the selected car's last charge sessions, a chart of the last 30 days (with the distance driven
per day where the bot records drives), and all of them, drives too, as CSV."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.backends import from_bmw_history
from bot.capabilities import Capability
from bot.car_errors import CarServiceError, ErrorKind
from bot.charts import HistoryWords, history_chart
from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    GIVE_UP_SECONDS,
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
from bot.chat.i18n import tr
from bot.drives import Drive
from bot.garage import Garage, deadline
from bot.history import (
    BMW_HISTORY,
    CHART_DAYS,
    ChargeSession,
    energy_per_day,
    km_per_day,
    local,
    merge,
    to_csv,
)
from bot.store import StoredVehicle

SESSIONS_SHOWN = 10


def sessions_of(
    garage: Garage, tg_id: int, vin: str, extra: Iterable[ChargeSession] = ()
) -> list[ChargeSession]:
    """The car's sessions, newest first. `extra` is where BMW's own CarData charging history joins
    (`bmw_history`, sessions with source BMW_HISTORY; see history.merge)."""
    return merge(garage.charge_sessions(tg_id, vin), extra)


async def bmw_history(
    garage: Garage, tg_id: int, car: StoredVehicle
) -> tuple[list[ChargeSession], str | None]:
    """BMW's own charging history of the last CHART_DAYS days, for a car that has one (CarData): one call of
    the day's budget, then cached for an hour. When BMW cannot give it, none, and why (a spent budget says
    from when calls work again): the recorded sessions are shown all the same."""
    if Capability.CHARGING_HISTORY not in car.capabilities:
        return [], None
    try:
        async with deadline(GIVE_UP_SECONDS):
            found = await garage.charging_history(tg_id, car.vin, days=CHART_DAYS)
    except TimeoutError:
        return [], tr(texts.ERROR_SENTENCES[ErrorKind.UNAVAILABLE])
    except CarServiceError as exc:
        return [], texts.refusal(exc)
    sessions = (from_bmw_history(tg_id, car.vin, session) for session in found)
    return [session for session in sessions if session is not None], None


@dataclass(frozen=True)
class Chart:
    """The chart's PNG and the figures its caption gives."""

    png: bytes
    kwh: float
    charges: int
    measured: bool  # BMW measured every charge on it
    km: float
    drives: int


def chart(sessions: list[ChargeSession], drives: list[Drive], now: float, zone: tzinfo) -> Chart:
    """The chart of the sessions and drives (both newest first), its days those of the user's `zone`
    (blocking: run it in a thread)."""
    # The car's report times can run ahead of the server's clock: its newest charge is always on the chart.
    newest = max([now, *(s.ended_at for s in sessions[:1]), *(d.ended_at for d in drives[:1])])
    today = local(newest, zone).date()
    days = energy_per_day(sessions, today, tz=zone)
    shown = [s for s in sessions if local(s.ended_at, zone).date() >= days[0][0]]
    driven = km_per_day(drives, today, tz=zone) if drives else []
    soc = []
    if sessions and (last := sessions[0]).soc_start is not None and last.soc_end is not None:
        soc = [(local(last.started_at, zone), last.soc_start), (local(last.ended_at, zone), last.soc_end)]
    measured = all_measured(shown)
    words = HistoryWords(
        chart_title(measured),
        tr(texts.HISTORY_CHART_SOC),
        tr(texts.HISTORY_CHART_NO_SOC),
        number=lambda value: prefs.number(value, 0 if value >= 10 or value == round(value) else 1),
        day=prefs.numeric_day,
        moment=prefs.numeric_date_time,
        distance_title=texts.HISTORY_CHART_DISTANCE.format(days=CHART_DAYS, unit=prefs.distance_unit()),
    )
    in_units = [(day, prefs.in_user_units(km)) for day, km in driven]
    km = sum(km for _, km in driven)
    return Chart(
        history_chart(days, soc, words, in_units),
        sum(kwh for _, kwh in days),
        len(shown),
        measured,
        km,
        sum(local(d.ended_at, zone).date() >= days[0][0] for d in drives),
    )


def all_measured(shown: list[ChargeSession]) -> bool:
    """Whether every charge shown has BMW's measured kWh; otherwise some are the bot's estimate."""
    return bool(shown) and all(session.source == BMW_HISTORY for session in shown)


def chart_title(measured: bool) -> str:
    """The chart's title: its kWh are estimated unless every charge on it has BMW's measured figure."""
    title = texts.HISTORY_CHART_ENERGY_MEASURED if measured else texts.HISTORY_CHART_ENERGY
    return title.format(days=CHART_DAYS)


async def history_command(update: Update, context: Context) -> None:
    car = await chosen_car(update, context)
    if car is None:
        return
    svc, tg_id = services(context), user_id(update)
    extra, bmw_failed = await bmw_history(svc.garage, tg_id, car)
    sessions = sessions_of(svc.garage, tg_id, car.vin, extra)
    drives = svc.garage.drives(tg_id, car.vin)
    ref = svc.refs.ref(tg_id, car.vin)
    if sessions:
        await say(
            update, texts.history(car, sessions[:SESSIONS_SHOWN], bmw_failed), keyboards.history_csv(ref)
        )
    else:  # the drives, where there are any, still have their chart and CSV
        await say(update, texts.history_none(car, bmw_failed), keyboards.history_csv(ref) if drives else None)
        if not drives:
            return
    chat = chat_of(update)
    await chat.send_chat_action(ChatAction.UPLOAD_PHOTO)
    drawn = await asyncio.to_thread(chart, sessions, drives, time.time(), prefs.current().zone)
    caption = texts.history_caption(
        car, CHART_DAYS, drawn.kwh, drawn.charges, drawn.measured, drawn.km, drawn.drives
    )
    await chat.send_photo(drawn.png, caption=caption, filename="charging-history.png", parse_mode="HTML")


async def csv_button(update: Update, context: Context) -> None:
    """All the pressed car's charges and drives as a CSV document; the car must be one the pressing user
    sees."""
    car = await pressed_car(update, context)
    if car is None:
        return
    await answer(query_of(update))
    garage, tg_id = services(context).garage, user_id(update)
    sessions = sessions_of(garage, tg_id, car.vin, (await bmw_history(garage, tg_id, car))[0])
    drives = garage.drives(tg_id, car.vin)
    chat = chat_of(update)
    await chat.send_chat_action(ChatAction.UPLOAD_DOCUMENT)
    await chat.send_document(
        to_csv(sessions, prefs.current().zone, drives),
        filename=f"charging-history-{car.vin[-4:]}.csv",
        caption=texts.history_csv_caption(car, len(sessions), len(drives)),
        parse_mode="HTML",
    )


def handlers() -> list:
    return [
        CommandHandler("history", history_command),
        CallbackQueryHandler(csv_button, pattern=f"^{keyboards.HISTORY_CSV}:"),
    ]
