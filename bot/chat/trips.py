"""/trips (last trip and all-trip statistics) and /destinations (the car's last destinations)."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Update
from telegram.ext import CommandHandler

from bot.bmw.models import AllTrips, Destination, LastTrip
from bot.chat import texts
from bot.chat.common import Context, Reply, answer_slowly, chosen_car, services, user_id

DESTINATIONS_SHOWN = 10
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


def newest_first(items: list[Destination], limit: int = DESTINATIONS_SHOWN) -> list[Destination]:
    """The `limit` newest destinations; undated ones last, in the order the car gave them."""
    return sorted(items, key=lambda item: item.created_at or _LONG_AGO, reverse=True)[:limit]


async def trips_command(update: Update, context: Context) -> None:
    car = await chosen_car(
        update,
        context,
        needs="statisticsAvailable",
        unsupported=texts.TRIPS_UNSUPPORTED,
        read_only=texts.TRIPS_READ_ONLY,
    )
    if car is None:
        return
    garage, tg_id = services(context).garage, user_id(update)

    async def fetch() -> tuple[LastTrip | None, AllTrips | None]:
        return await garage.last_trip(tg_id, car.vin), await garage.all_trips(tg_id, car.vin)

    async def render(trips: tuple[LastTrip | None, AllTrips | None]) -> Reply:
        return Reply(texts.trips(car, *trips))

    await answer_slowly(
        update, car, fetch, render, waiting=texts.TRIPS_LOADING.format(car=texts.car_label(car))
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
    ]
