"""A tile server on loopback for range-map tests and benchmarks (generated tiles, counted requests), and a
range map round a car to draw."""

from __future__ import annotations

import asyncio
import io
import math
import threading
from collections.abc import Iterator
from types import TracebackType

import anyio.to_thread
import pytest
from PIL import Image, ImageDraw
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.bmw.models import RangeMap, RangePolyline
from bot.servers import BackgroundServer

TILE_GREY = (200, 200, 200)
CAR = (51.5, -0.12)  # (lat, lon)


def grid_tile() -> bytes:
    """A plain grey tile with a mid-grey grid: nothing in it looks like an outline, the car or text."""
    tile = Image.new("RGB", (256, 256), TILE_GREY)
    draw = ImageDraw.Draw(tile)
    for i in range(0, 256, 64):
        draw.line((i, 0, i, 255), fill=(150, 150, 150))
        draw.line((0, i, 255, i), fill=(150, 150, 150))
    out = io.BytesIO()
    tile.save(out, format="PNG")
    return out.getvalue()


class TileServer:
    """Generated tiles on loopback. Counts requests and keeps their User-Agents; can answer an error
    status, wait `delay` seconds per tile, or hold every tile until `gate` is set."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.status = 200
        self.delay = delay
        self.gate: threading.Event | None = None
        self.requests = 0
        self.asked = threading.Event()  # set at the first request
        self.user_agents: list[str] = []
        self.subdomains: list[str] = []  # the {s} of each request to `subdomain_template`
        self._tile = grid_tile()
        app = Starlette(
            routes=[
                Route("/tiles/{z:int}/{x:int}/{y:int}.png", self._serve),
                Route("/{s}/tiles/{z:int}/{x:int}/{y:int}.png", self._serve),
            ]
        )
        self._server = BackgroundServer(app)

    @property
    def template(self) -> str:
        return self._server.url + "/tiles/{z}/{x}/{y}.png"

    @property
    def subdomain_template(self) -> str:
        """Like OSM's `https://{s}.tile...`, with the subdomain as the first path segment (loopback has no
        subdomains); only a, b and c are served."""
        return self._server.url + "/{s}/tiles/{z}/{x}/{y}.png"

    async def _serve(self, request: Request) -> Response:
        subdomain = request.path_params.get("s")
        if subdomain is not None:
            self.subdomains.append(subdomain)
            if subdomain not in ("a", "b", "c"):
                return Response(b"no such subdomain", status_code=404)
        self.requests += 1
        self.asked.set()
        self.user_agents.append(request.headers.get("user-agent", ""))
        # A gate never opened fails the tile after a while, so a broken test ends instead of hanging.
        if self.gate is not None and not await anyio.to_thread.run_sync(self.gate.wait, 10.0):
            return Response(b"gate never opened", status_code=503)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            return Response(b"tile server trouble", status_code=self.status)
        return Response(self._tile, media_type="image/png")

    def __enter__(self) -> TileServer:
        self._server.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.stop()


@pytest.fixture
def tiles() -> Iterator[TileServer]:
    with TileServer() as server:
        yield server


def ring(radius_km: float, points: int = 50) -> tuple[tuple[float, float], ...]:
    """A closed (lat, lon) polygon round the car, like the API's: first point == last point."""
    lat_km, lon_km = 111.32, 111.32 * math.cos(math.radians(CAR[0]))
    angles = [2 * math.pi * i / (points - 1) for i in range(points - 1)]
    ring = [
        (CAR[0] + radius_km / lat_km * math.sin(a), CAR[1] + radius_km / lon_km * math.cos(a)) for a in angles
    ]
    return (*ring, ring[0])


RANGE = RangeMap(
    center=CAR,
    quality="AVERAGE",
    polylines=(RangePolyline("ECO_PRO_PLUS", ring(60)), RangePolyline("COMFORT", ring(40))),
)
