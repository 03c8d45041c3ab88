"""/map and the "Range map" button: the API's range polylines drawn on a map, sent as a photo."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction

from bot.bmw.models import RangeMap, VehicleStatus
from bot.chat import keyboards, texts
from bot.chat.common import (
    Context,
    Reply,
    answer_slowly,
    chat_of,
    command_and_button,
    services,
    user_id,
)
from bot.rangemap import RangeMapUnavailable, reach_km
from bot.store import StoredVehicle


async def send_range_map(update: Update, context: Context, car: StoredVehicle) -> None:
    svc = services(context)
    tg_id = user_id(update)

    async def fetch() -> tuple[RangeMap, VehicleStatus]:
        return await svc.garage.range_map(tg_id, car.vin), await svc.garage.status(tg_id, car.vin)

    async def render(fetched: tuple[RangeMap, VehicleStatus]) -> Reply | None:
        range_map, status = fetched
        position = status.position
        here = range_map.center
        if position is not None and position.usable:
            assert position.lat is not None and position.lon is not None  # what usable means
            here = (position.lat, position.lon)
        # Drawing takes a moment even when BMW was quick (tiles, the picture itself).
        await chat_of(update).send_chat_action(ChatAction.UPLOAD_PHOTO)
        try:
            image = await svc.renderer.render_async(range_map, here)
        except RangeMapUnavailable:
            return Reply(texts.map_unavailable(car, position))
        centre = range_map.center or here
        reaches = {line.type: reach_km(line, centre) for line in range_map.polylines} if centre else {}
        caption = texts.map_caption(car, image.legend, reaches, base_map=image.base_map, position=position)
        await chat_of(update).send_photo(
            image.png, caption=caption, filename="range-map.png", parse_mode="HTML"
        )
        return None

    await answer_slowly(
        update,
        car,
        fetch,
        render,
        waiting=texts.MAP_LOADING.format(car=texts.car_label(car)),
        action=ChatAction.UPLOAD_PHOTO,
    )


def handlers() -> list:
    return command_and_button(
        send_range_map,
        command="map",
        button=keyboards.MAP,
        needs=keyboards.RANGE_MAP,
        toast=texts.MAP_DRAWING,
    )
