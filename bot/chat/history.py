"""/history: the selected car's last charge sessions with their costs, a chart of the last 30 days (with the
distance driven per day where the bot records drives), all of them, drives too, as CSV, and the price its
owner gives a charge away from home."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import CallbackQueryHandler, CommandHandler, ConversationHandler

from bot.backends import from_bmw_history
from bot.capabilities import Capability
from bot.car_errors import CarServiceError, ErrorKind
from bot.charts import HistoryWords, history_chart
from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    ASKING,
    GIVE_UP_SECONDS,
    Context,
    answer,
    chat_of,
    chosen_car,
    message_of,
    pressed_car,
    prompt,
    query_of,
    say,
    services,
    typed_answer,
    user_data,
    user_id,
)
from bot.chat.i18n import tr
from bot.chat.settings import MOST_PER_KWH, locale_handler
from bot.costs import ChargePrice, Cost, per_month
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
PRICE_FLOW = "history_price"
PRICE_CHARGE = "history_price_charge"  # user_data: (VIN, ChargeSession) of the charge being priced
PRICE_WAIT_SECONDS = 300.0
PRICE_MAX = 16


def sessions_of(
    garage: Garage, tg_id: int, vin: str, extra: Iterable[ChargeSession] = ()
) -> list[ChargeSession]:
    """The car's sessions, newest first. `extra` is where BMW's own CarData charging history joins
    (`bmw_history`, sessions with source BMW_HISTORY; see history.merge)."""
    return merge(garage.charge_sessions(tg_id, vin), extra)


async def bmw_history(
    garage: Garage, tg_id: int, car: StoredVehicle, *, cached_only: bool = False
) -> tuple[list[ChargeSession], str | None]:
    """BMW's own charging history of the last CHART_DAYS days, for a car that has one (CarData): one call of
    the owner's day's budget, then cached for an hour; a person the car is shared with (and `cached_only`)
    gets only that hour's copy. When there is none, none, and why (a spent budget says from when calls work
    again): the recorded sessions are shown all the same."""
    if Capability.CHARGING_HISTORY not in car.capabilities:
        return [], None
    try:
        async with deadline(GIVE_UP_SECONDS):
            found = await garage.charging_history(tg_id, car.vin, CHART_DAYS, cached_only=cached_only)
    except TimeoutError:
        return [], tr(texts.ERROR_SENTENCES[ErrorKind.UNAVAILABLE])
    except CarServiceError as exc:
        return [], texts.refusal(exc)
    if found is None:
        return [], tr(texts.HISTORY_OWNERS_CALLS)
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
        zone = prefs.current().zone
        shown = sessions[:SESSIONS_SHOWN]
        costing = svc.garage.costing(tg_id, car.vin, sessions, zone)
        listed = {local(s.ended_at, zone).date().replace(day=1) for s in shown}
        months = [m for m in per_month(sessions, costing) if m.month in listed]
        # Only the owner prices a charge: a person the car is shared with sees the owner's costs.
        needs_price = [s.started_at for s in shown if car.tg_id == tg_id and costing.needs_price(s)]
        shared = car.tg_id != tg_id
        text = texts.history(car, shown, bmw_failed, costing, months, needs_price, shared=shared)
        await say(update, text, keyboards.history(ref, needs_price, drives=bool(drives)))
    else:  # the drives, where there are any, still have their chart and CSV
        markup = keyboards.history(ref, drives=True) if drives else keyboards.months(ref)
        await say(update, texts.history_none(car, bmw_failed), markup)
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
    zone = prefs.current().zone
    costing = garage.costing(tg_id, car.vin, sessions, zone)
    await chat.send_document(
        to_csv(sessions, zone, drives, costing.cost),
        filename=f"charging-history-{car.vin[-4:]}.csv",
        caption=texts.history_csv_caption(car, len(sessions), len(drives)),
        parse_mode="HTML",
    )


async def ask_price(update: Update, context: Context) -> int:
    """A 💶 button under /history: the price of that charge of the pressing owner's own car, typed next."""
    query = query_of(update)
    ref, _, start = keyboards.parse(query.data)[1].partition(keyboards.SEP)
    car = await pressed_car(update, context, ref)
    if car is None:
        return ConversationHandler.END
    tg_id = user_id(update)
    garage = services(context).garage
    # BMW's own history too (cached from the /history just shown): its charges are priced by their start.
    sessions = sessions_of(garage, tg_id, car.vin, (await bmw_history(garage, tg_id, car))[0])
    found = [s for s in sessions if f"{s.started_at:.0f}" == start]
    if car.tg_id != tg_id or not found:  # a shared car's, or a charge no longer there
        await answer(query, texts.STALE_BUTTON)
        return ConversationHandler.END
    await answer(query)
    user_data(context)[PRICE_CHARGE] = (car.vin, found[0])
    prompt(context, PRICE_FLOW)
    await say(update, texts.price_ask(found[0]))
    return ASKING


async def receive_price(update: Update, context: Context) -> int:
    typed = (message_of(update).text or "").strip()
    price = prefs.number_typed(typed) if len(typed) <= PRICE_MAX else None
    if price is None or not 0 <= price < MOST_PER_KWH:
        await say(update, texts.price_unclear(typed))
        return ASKING
    vin, session = user_data(context).pop(PRICE_CHARGE)
    services(context).garage.save_charge_price(
        user_id(update), vin, ChargePrice(session.started_at, price, prefs.currency())
    )
    cost = Cost((session.energy_kwh or 0.0) * price, prefs.currency())
    await say(update, texts.PRICE_SET.format(cost=texts.money(cost)))
    return ConversationHandler.END


def handlers() -> list:
    csv_pattern = f"^{keyboards.HISTORY_CSV}:"
    price = typed_answer(
        PRICE_FLOW,
        ask=CallbackQueryHandler(ask_price, pattern=f"^{keyboards.HISTORY_PRICE}:"),
        receive=receive_price,
        press=csv_button,
        pattern=csv_pattern,
        waiting=PRICE_CHARGE,
        timeout_text=texts.PRICE_TIMEOUT,
        seconds=PRICE_WAIT_SECONDS,
        before_timeout=locale_handler(),
    )
    return [
        price,
        CommandHandler("history", history_command),
        CallbackQueryHandler(csv_button, pattern=csv_pattern),
    ]
