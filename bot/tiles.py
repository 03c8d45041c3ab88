"""Plain generated map tiles and an app serving them: the demo's base layer, so range maps work offline and
send nothing to the OpenStreetMap servers (tests/support/tiles.py wraps the same app with counters)."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.rangemap import BACKGROUND, TILE_SIZE

GRID_MINOR, GRID_MAJOR = "#e6e1d8", "#d8d1c4"


def plain_tile() -> bytes:
    """One PNG map tile: land colour with a light grid, so a range map reads as a map without real data."""
    image = Image.new("RGB", (TILE_SIZE, TILE_SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    step = TILE_SIZE // 4
    for offset in range(0, TILE_SIZE, step):
        colour = GRID_MAJOR if offset == 0 else GRID_MINOR
        draw.line((offset, 0, offset, TILE_SIZE), fill=colour)
        draw.line((0, offset, TILE_SIZE, offset), fill=colour)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def tile_app() -> Starlette:
    """A `{z}/{x}/{y}.png` tile server answering every tile with the same plain tile."""
    tile = plain_tile()

    async def serve(request: Request) -> Response:
        return Response(tile, media_type="image/png", headers={"Cache-Control": "max-age=86400"})

    return Starlette(routes=[Route("/{z:int}/{x:int}/{y:int}.png", serve, methods=["GET"])])
