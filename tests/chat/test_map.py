"""End to end: the range map as a photo, over a loopback tile server, and without any tiles at all."""

from __future__ import annotations

import io

from PIL import Image, ImageChops, ImageColor

from bot.rangemap import TYPE_COLOURS
from tests.support.bot import BEV_VIN, fast_client, link, running_bot


def _pixels_near(image: Image.Image, hex_colour: str, tolerance: int = 40) -> int:
    target = ImageColor.getrgb(hex_colour)
    return sum(
        1
        for pixel in image.getdata()
        if all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], target, strict=True))
    )


async def _map_photo(user):
    status = await _status(user)
    user.press(status, "Range map")
    await user.wait_for(lambda u: any(m.photo for m in u.bot_messages))
    return next(m for m in user.bot_messages if m.photo)


async def _status(user):
    user.send("/status")
    return await user.wait_for_bot_message("updated")


async def test_range_map_is_a_photo_with_both_outlines_over_tiles(
    bot_settings, simulator_url, sandbox, bot_api, tiles
):
    settings = bot_settings.model_copy(update={"map_tile_url": tiles.template})
    async with running_bot(settings, fast_client(simulator_url)):
        alice = sandbox.user(301)
        await link(alice)
        photo = await _map_photo(alice)
        image = Image.open(io.BytesIO(photo.photo)).convert("RGB")
        eco, comfort = TYPE_COLOURS["ECO_PRO_PLUS"][0], TYPE_COLOURS["COMFORT"][0]
        assert _pixels_near(image, eco) > 200 and _pixels_near(image, comfort) > 200
        assert "ECO PRO+" in photo.caption and "COMFORT" in photo.caption and " km" in photo.caption
        assert "plain background" not in photo.caption
        assert tiles.requests > 0
        actions = [call.params.get("action") for call in bot_api.calls_to("sendChatAction")]
        assert "upload_photo" in actions


async def test_range_map_without_tiles_still_arrives(bot, sandbox):
    alice = sandbox.user(302)
    await link(alice)
    alice.send("/map")
    await alice.wait_for(lambda u: any(m.photo for m in u.bot_messages))
    photo = next(m for m in alice.bot_messages if m.photo)
    image = Image.open(io.BytesIO(photo.photo)).convert("RGB")
    assert _pixels_near(image, TYPE_COLOURS["ECO_PRO_PLUS"][0]) > 200
    assert "plain background" in photo.caption


async def test_a_miles_users_scale_bar_differs_from_a_km_users(bot, sandbox):
    """The same car and map: only the scale bar bottom-left (a round distance in miles, not km) differs."""
    maps = []
    for user in (sandbox.user(304, language_code="en-US"), sandbox.user(305, language_code="en-AU")):
        await link(user)
        user.send("/map")
        await user.wait_for(lambda u: any(m.photo for m in u.bot_messages))
        photo = next(m for m in user.bot_messages if m.photo)
        maps.append(Image.open(io.BytesIO(photo.photo)).convert("RGB"))
    miles, km = maps
    assert ImageChops.difference(miles, km).getbbox() is not None
    corner = (0, miles.height - 60, miles.width // 3, miles.height)  # where the scale bar is
    assert ImageChops.difference(miles.crop(corner), km.crop(corner)).getbbox() is not None
    rest = (0, 0, miles.width, miles.height - 60)
    assert ImageChops.difference(miles.crop(rest), km.crop(rest)).getbbox() is None


async def test_car_without_range_map_gets_a_clear_message(bot, sandbox, simulator):
    simulator.set_status(BEV_VIN, chargingLevelHv=0, remainingRangeElectric=0)
    alice = sandbox.user(303)
    await link(alice)
    alice.send("/map")
    await alice.wait_for_bot_message("has no range map")
    assert not any(m.photo for m in alice.bot_messages)
