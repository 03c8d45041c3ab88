"""A location or venue sent to the bot: offer "Send to <car>" and post it to that car's navigation."""

from __future__ import annotations

import secrets

from telegram import Update
from telegram.ext import CallbackQueryHandler, MessageHandler, filters

from bot.bmw.models import Poi
from bot.chat import keyboards, share, texts
from bot.chat.common import (
    Context,
    answer,
    message_of,
    pressed_car,
    query_of,
    say,
    services,
    tells_refusals,
    user_data,
    user_id,
)

PLACES_KEPT = 10  # per user: the newest places stay sendable, older buttons go stale


def poi_of(update: Update) -> Poi:
    """A venue's title and address name the place; a bare location is just its coordinates."""
    message = message_of(update)
    venue = message.venue
    location = venue.location if venue else message.location
    assert location is not None  # the handler's filter: a location, or a venue (which has one)
    return Poi(
        lat=location.latitude,
        lon=location.longitude,
        name=venue.title if venue else None,
        street=venue.address if venue else None,
    )


@tells_refusals
async def place_received(update: Update, context: Context) -> None:
    svc = services(context)
    tg_id = user_id(update)
    cars = svc.garage.cars(tg_id)
    able = [car for car in cars if "sendPoi" in share.as_shown(svc.garage, tg_id, car).capabilities]
    if not able:
        if any("sendPoi" in car.capabilities for car in cars):  # shared with them, without remote commands
            await say(update, texts.SHARE_REMOTE_NOT_ALLOWED)
            return
        only = texts.POI_UNSUPPORTED.format(car=texts.car_label(cars[0])) if len(cars) == 1 else None
        await say(update, only or texts.POI_NO_CAR)
        return
    poi = poi_of(update)
    nonce = secrets.token_urlsafe(6)
    places: dict[str, Poi] = user_data(context).setdefault("places", {})
    places[nonce] = poi
    while len(places) > PLACES_KEPT:
        del places[next(iter(places))]
    targets = [(svc.refs.ref(tg_id, car.vin), car) for car in able]
    await say(update, texts.place(poi), keyboards.send_place(nonce, targets))


@tells_refusals
async def send_place(update: Update, context: Context) -> None:
    query = query_of(update)
    nonce, _, ref = keyboards.parse(query.data)[1].partition(keyboards.SEP)
    car = await pressed_car(update, context, ref)
    if car is None:
        return
    poi = user_data(context).get("places", {}).get(nonce)
    if poi is None:
        await answer(query, texts.STALE_BUTTON)
        return
    label = texts.car_label(car)
    if "sendPoi" not in car.capabilities:
        await answer(query)
        await say(update, texts.POI_UNSUPPORTED.format(car=label))
        return
    await answer(query, texts.POI_SENDING)
    await services(context).garage.send_poi(user_id(update), car.vin, poi)
    await say(update, texts.POI_SENT.format(car=label))


def handlers() -> list:
    return [
        MessageHandler(filters.LOCATION, place_received),
        CallbackQueryHandler(send_place, pattern=f"^{keyboards.SEND_POI}:"),
    ]
