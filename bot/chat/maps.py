"""/map and the "Range map" button: the API's range polylines drawn on a map, sent as a photo."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot.bmw.errors import BMWError
from bot.chat import keyboards, texts
from bot.chat.common import (
    Context,
    answer,
    chat_of,
    chosen_car,
    error_text,
    pressed_car,
    query_of,
    say,
    services,
    user_id,
)
from bot.garage import GarageError
from bot.rangemap import RangeMapUnavailable, reach_km
from bot.store import StoredVehicle


async def send_range_map(update: Update, context: Context, car: StoredVehicle) -> None:
    svc = services(context)
    renderer = svc.renderer
    chat = chat_of(update)
    tg_id = user_id(update)
    await chat.send_chat_action(ChatAction.UPLOAD_PHOTO)
    try:
        range_map = await svc.garage.range_map(tg_id, car.vin)
        status = await svc.garage.status(tg_id, car.vin)
    except (BMWError, GarageError) as exc:
        await say(update, error_text(exc, car))
        return
    position = status.position
    here = range_map.center
    if position is not None and position.usable:
        assert position.lat is not None and position.lon is not None  # what usable means
        here = (position.lat, position.lon)
    try:
        image = await renderer.render_async(range_map, here)
    except RangeMapUnavailable:
        await say(update, texts.map_unavailable(car, position))
        return
    centre = range_map.center or here
    reaches = {line.type: reach_km(line, centre) for line in range_map.polylines} if centre else {}
    caption = texts.map_caption(car, image.legend, reaches, base_map=image.base_map, position=position)
    await chat.send_photo(image.png, caption=caption, filename="range-map.png", parse_mode="HTML")


async def map_command(update: Update, context: Context) -> None:
    car = await chosen_car(update, context, needs="rangeMap")
    if car is not None:
        await send_range_map(update, context, car)


async def map_button(update: Update, context: Context) -> None:
    query = query_of(update)
    car = await pressed_car(update, context)
    if car is None:
        return
    await answer(query, texts.MAP_DRAWING)
    await send_range_map(update, context, car)


def handlers() -> list:
    return [
        CommandHandler("map", map_command),
        CallbackQueryHandler(map_button, pattern=f"^{keyboards.MAP}:"),
    ]
