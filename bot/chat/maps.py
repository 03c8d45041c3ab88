"""/map and the "Range map" button: the API's range polylines drawn on a map, sent as a photo; for a car
with no polylines but a stream (CarData), a ring estimated from its electric range round its last position."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatAction

from bot.bmw.models import RangeMap
from bot.capabilities import Capability
from bot.car_status import CarStatus
from bot.chat import keyboards, prefs, texts
from bot.chat.common import (
    Context,
    Reply,
    answer_slowly,
    chat_of,
    command_and_button,
    say,
    services,
    user_id,
)
from bot.rangemap import RangeMapUnavailable, range_ring, reach_km
from bot.store import StoredVehicle


async def send_range_map(update: Update, context: Context, car: StoredVehicle) -> None:
    svc = services(context)
    tg_id = user_id(update)

    async def fetch() -> tuple[RangeMap, CarStatus]:
        return await svc.garage.range_map(tg_id, car.vin), await svc.garage.status(tg_id, car.vin)

    async def render(fetched: tuple[RangeMap, CarStatus]) -> Reply | None:
        range_map, status = fetched
        position = status.position
        here = range_map.center
        if position is not None and position.usable:
            assert position.lat is not None and position.lon is not None  # what usable means
            here = (position.lat, position.lon)
        # Drawing takes a moment even when BMW was quick (tiles, the picture itself).
        await chat_of(update).send_chat_action(ChatAction.UPLOAD_PHOTO)
        try:
            image = await svc.renderer.render_async(range_map, here, miles=prefs.current().miles)
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


async def send_range_estimate(update: Update, context: Context, car: StoredVehicle) -> None:
    """The range ring round the car's last known position (no call to BMW), labelled as the estimate it is."""
    svc = services(context)
    state = await svc.garage.status(user_id(update), car.vin)
    where, range_km = state.position, state.electric_range_km
    if where is None or not where.usable or range_km is None:
        await say(update, texts.ESTIMATE_UNAVAILABLE.format(car=texts.car_label(car)))
        return
    assert where.lat is not None and where.lon is not None  # what usable means
    position = (where.lat, where.lon)
    await chat_of(update).send_chat_action(ChatAction.UPLOAD_PHOTO)
    ring = range_ring(position, range_km)
    image = await svc.renderer.render_async(ring, position, miles=prefs.current().miles)
    reach, colour = reach_km(ring.polylines[0], position), image.legend[0][1]
    caption = texts.estimate_caption(car, state, reach, colour, base_map=image.base_map)
    await chat_of(update).send_photo(
        image.png, caption=caption, filename="range-estimate.png", parse_mode="HTML"
    )


async def send_map(update: Update, context: Context, car: StoredVehicle) -> None:
    """The range polylines where BMW draws them, else the ring estimated from the range."""
    if Capability.RANGE_ESTIMATE in car.capabilities:
        await send_range_estimate(update, context, car)
    elif Capability.RANGE_MAP in car.capabilities:
        await send_range_map(update, context, car)
    else:
        await say(update, texts.SERVICE_UNSUPPORTED.format(car=texts.car_label(car)))


def handlers() -> list:
    return command_and_button(send_map, command="map", button=keyboards.MAP, toast=texts.MAP_DRAWING)
