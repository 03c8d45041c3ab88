"""/trips (last trip and all-trip statistics) and /destinations (the car's last destinations)."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Update
from telegram.ext import CommandHandler

from bot.bmw.errors import BMWError
from bot.bmw.models import Destination
from bot.chat import texts
from bot.chat.common import Context, chosen_car, edit, error_text, say, services, user_id
from bot.garage import GarageError

DESTINATIONS_SHOWN = 10
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def newest_first(items: list[Destination], limit: int = DESTINATIONS_SHOWN) -> list[Destination]:
    """The `limit` newest destinations; undated ones last, in the order the car gave them."""
    return sorted(items, key=lambda item: item.created_at or _LONG_AGO, reverse=True)[:limit]


async def trips_command(update: Update, context: Context) -> None:
    car = await chosen_car(update, context, needs="statisticsAvailable", unsupported=texts.TRIPS_UNSUPPORTED)
    if car is None:
        return
    message = await say(update, texts.TRIPS_LOADING.format(car=texts.car_label(car)))
    garage, tg_id = services(context).garage, user_id(update)
    try:
        last = await garage.last_trip(tg_id, car.vin)
        every = await garage.all_trips(tg_id, car.vin)
    except (BMWError, GarageError) as exc:
        await edit(message, error_text(exc, car))
        return
    await edit(message, texts.trips(car, last, every))


async def destinations_command(update: Update, context: Context) -> None:
    car = await chosen_car(
        update, context, needs="lastDestinations", unsupported=texts.DESTINATIONS_UNSUPPORTED
    )
    if car is None:
        return
    message = await say(update, texts.DESTINATIONS_LOADING.format(car=texts.car_label(car)))
    try:
        items = await services(context).garage.destinations(user_id(update), car.vin)
    except (BMWError, GarageError) as exc:
        await edit(message, error_text(exc, car))
        return
    await edit(message, texts.destinations(car, newest_first(items)))


def handlers() -> list:
    return [
        CommandHandler("trips", trips_command),
        CommandHandler("destinations", destinations_command),
    ]
