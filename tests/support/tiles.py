"""The shipped tile app (bot/tiles.py) on loopback for range-map tests and benchmarks, with counted requests
and trouble on demand, and a range map round a car to draw."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from types import TracebackType

import anyio.to_thread
import pytest
from PIL import ImageColor
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bot.bmw.models import RangeMap, RangePolyline
from bot.rangemap import BACKGROUND
from bot.servers import BackgroundServer
from bot.tiles import GRID_MINOR, tile_app

# The tiles' colours: land (also the renderer's no-tiles background) and the grid only tiles have.
TILE_LAND = ImageColor.getrgb(BACKGROUND)
TILE_GRID = ImageColor.getrgb(GRID_MINOR)
CAR = (51.5, -0.12)  # (lat, lon)


class TileServer:
    """bot/tiles.py's app on loopback. Counts requests and keeps their User-Agents; can answer an error
    status, wait `delay` seconds per tile, or hold every tile until `gate` is set."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.status = 200
        self.delay = delay
        self.gate: threading.Event | None = None
        self.requests = 0
        self.asked = threading.Event()  # set at the first request
        self.user_agents: list[str] = []
        self.subdomains: list[str] = []  # the {s} of each request to `subdomain_template`
        self._tiles = tile_app()
        self._server = BackgroundServer(self)  # this object is the ASGI app: see __call__

    @property
    def template(self) -> str:
        return self._server.url + "/{z}/{x}/{y}.png"

    @property
    def subdomain_template(self) -> str:
        """Like OSM's `https://{s}.tile...`, with the subdomain as the first path segment (loopback has no
        subdomains); only a, b and c are served."""
        return self._server.url + "/{s}/{z}/{x}/{y}.png"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._tiles(scope, receive, send)
            return
        segments = scope["path"].split("/")
        if len(segments) == 5:  # /{s}/{z}/{x}/{y}.png: the tile app gets the path without the subdomain
            subdomain = segments[1]
            self.subdomains.append(subdomain)
            if subdomain not in ("a", "b", "c"):
                await Response(b"no such subdomain", status_code=404)(scope, receive, send)
                return
            scope = {**scope, "path": "/" + "/".join(segments[2:])}
        self.requests += 1
        self.asked.set()
        self.user_agents.append(Headers(scope=scope).get("user-agent", ""))
        # A gate never opened fails the tile after a while, so a broken test ends instead of hanging.
        if self.gate is not None and not await anyio.to_thread.run_sync(self.gate.wait, 10.0):
            await Response(b"gate never opened", status_code=503)(scope, receive, send)
            return
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.status != 200:
            await Response(b"tile server trouble", status_code=self.status)(scope, receive, send)
            return
        await self._tiles(scope, receive, send)

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
