"""/trips (an i Remote car's last trip and all-trip statistics, BMW's; a CarData car's drives, the bot's) and
/destinations (the car's last destinations)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.bmw.models import AllTrips, Destination, LastTrip
from bot.capabilities import Capability
from bot.chat import keyboards, texts
from bot.chat.common import (
    Context,
    Reply,
    answer,
    answer_slowly,
    chat_of,
    chosen_car,
    pressed_car,
    query_of,
    say,
    services,
    user_id,
)
from bot.store import StoredVehicle

DESTINATIONS_SHOWN = 10
DRIVES_SHOWN = 5
WEEK_SECONDS = 7 * 24 * 3600.0
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def newest_first(items: list[Destination], limit: int = DESTINATIONS_SHOWN) -> list[Destination]:
    """The `limit` newest destinations; undated ones last, in the order the car gave them."""
    return sorted(items, key=lambda item: item.created_at or _LONG_AGO, reverse=True)[:limit]


async def trips_command(update: Update, context: Context) -> None:
    car = await chosen_car(update, context)
    if car is None:
        return
    if Capability.STATUS_STREAM in car.capabilities:  # CarData shares no trips: the drives its reports tell
        await drives_reply(update, context, car)
        return
    if "statisticsAvailable" not in car.capabilities:
        await say(update, texts.TRIPS_UNSUPPORTED.format(car=texts.car_label(car)))
        return
    garage, tg_id = services(context).garage, user_id(update)

    async def fetch() -> tuple[LastTrip | None, AllTrips | None]:
        return await garage.last_trip(tg_id, car.vin), await garage.all_trips(tg_id, car.vin)

    async def render(trips: tuple[LastTrip | None, AllTrips | None]) -> Reply:
        return Reply(texts.trips(car, *trips))

    await answer_slowly(
        update, car, fetch, render, waiting=texts.TRIPS_LOADING.format(car=texts.car_label(car))
    )


async def drives_reply(update: Update, context: Context, car: StoredVehicle) -> None:
    """The last drives recorded from the car's reports and the last 7 days' totals, with a 📍 per drive."""
    svc, tg_id = services(context), user_id(update)
    last = svc.garage.drives(tg_id, car.vin)[:DRIVES_SHOWN]
    # The car's report times can run ahead of the server's clock: its newest drive is always in the week.
    newest = max([time.time(), *(drive.ended_at for drive in last)])
    week = svc.garage.drives(tg_id, car.vin, since=newest - WEEK_SECONDS)
    pinned = [drive.ended_at for drive in last if drive.to_lat is not None and drive.to_lon is not None]
    markup = keyboards.drive_pins(svc.refs.ref(tg_id, car.vin), pinned) if len(pinned) == len(last) else None
    await say(update, texts.drives(car, last, week), markup)


async def drive_pin_button(update: Update, context: Context) -> None:
    """Where the pressed drive ended, as a location pin; the car must be one the pressing user sees."""
    query = query_of(update)
    ref, _, end = keyboards.parse(query.data)[1].partition(keyboards.SEP)
    car = await pressed_car(update, context, ref)
    if car is None:
        return
    ended = int(end) if end.isdigit() else -1
    found = services(context).garage.drives(user_id(update), car.vin, since=ended - 1)
    drive = next((d for d in found if round(d.ended_at) == ended), None)
    if drive is None or drive.to_lat is None or drive.to_lon is None:
        await answer(query, texts.DRIVE_GONE)
        return
    await answer(query)
    await chat_of(update).send_location(
        latitude=drive.to_lat,
        longitude=drive.to_lon,
        reply_markup=keyboards.position_copy(drive.to_lat, drive.to_lon),
    )


async def destinations_command(update: Update, context: Context) -> None:
    car = await chosen_car(
        update,
        context,
        needs="lastDestinations",
        unsupported=texts.DESTINATIONS_UNSUPPORTED,
        read_only=texts.DESTINATIONS_READ_ONLY,
    )
    if car is None:
        return

    async def render(items: list[Destination]) -> Reply:
        return Reply(texts.destinations(car, newest_first(items)))

    await answer_slowly(
        update,
        car,
        lambda: services(context).garage.destinations(user_id(update), car.vin),
        render,
        waiting=texts.DESTINATIONS_LOADING.format(car=texts.car_label(car)),
    )


def handlers() -> list:
    return [
        CommandHandler("trips", trips_command),
        CommandHandler("destinations", destinations_command),
        CallbackQueryHandler(drive_pin_button, pattern=f"^{keyboards.DRIVE_PIN}:"),
    ]
