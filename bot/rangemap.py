"""Range maps as pictures: the car's range polygons drawn over map tiles with staticmap.

Tiles come from a bounded disk cache first (least recently used files are evicted), then from the tile
server with a short timeout and the operator's User-Agent, as the OSM tile policy asks. When the tiles
cannot be had, the outlines and the car are drawn on a plain background with a scale bar, so the owner
still gets a useful picture. Rendering blocks (Pillow, tile downloads), so the chat layer awaits
`render_async`, which runs in the renderer's own small thread pool.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import itertools
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFont
from staticmap import CircleMarker, Line, StaticMap
from staticmap.staticmap import _y_to_lat

from bot.bmw.models import RangeMap, RangePolyline
from bot.cardata.models import KM_PER_MILE

log = logging.getLogger(__name__)

TILE_SIZE = 256
ATTRIBUTION = "© OpenStreetMap contributors"
# Polyline type -> (colour drawn, colour name for the caption). Red is kept for the car.
TYPE_COLOURS: dict[str, tuple[str, str]] = {
    "ECO_PRO_PLUS": ("#2e7d32", "green"),
    "COMFORT": ("#1565c0", "blue"),
}
OTHER_COLOURS: tuple[tuple[str, str], ...] = (
    ("#ef6c00", "orange"),
    ("#6a1b9a", "purple"),
    ("#00838f", "teal"),
    ("#5d4037", "brown"),
)
CAR_COLOUR = "#d32f2f"
_CAR_RING = "#ffffff"
BACKGROUND = "#f2efe9"  # OSM's land colour, so the fallback reads as an empty map
_LINE_WIDTH = 4  # px; staticmap draws at double size and scales down, 4 keeps a solid core
_PADDING = 40  # px between the outlines and the picture's edge
_TILE_FETCHERS = 4  # parallel downloads per renderer: the OSM policy asks for few connections
_EARTH_CIRCUMFERENCE_M = 2 * math.pi * 6_378_137
METRES_PER_MILE = KM_PER_MILE * 1000
_METRES_PER_FOOT = 0.3048
_SCALE_FONT_SIZE = 28  # a phone shows the 800 px map about 300-400 px wide: 28 px there are 11-14 px
# The scale bar's units, largest first, in metres: the bar uses the largest one it can show one of.
_METRE_UNITS = ((1000.0, "km"), (1.0, "m"))
_MILE_UNITS = ((METRES_PER_MILE, "mi"), (_METRES_PER_FOOT, "ft"))
SUBDOMAINS = "abc"  # what `{s}` stands for in the tile URL templates of OSM-style providers


def tile_url(template: str, z: int, x: int, y: int) -> str:
    """The URL of one tile. `{s}` follows from the tile, so load is spread over the subdomains while each
    tile keeps one URL (and one cache entry)."""
    return template.format(z=z, x=x, y=y, s=SUBDOMAINS[(x + y) % len(SUBDOMAINS)])


def reach_km(polyline: RangePolyline, centre: tuple[float, float]) -> float:
    """Mean great-circle distance from the centre to the outline: the km a caption can quote for a mode."""
    lat0, lon0 = map(math.radians, centre)
    distances = []
    for lat, lon in polyline.points:
        lat1, lon1 = math.radians(lat), math.radians(lon)
        a = (
            math.sin((lat1 - lat0) / 2) ** 2
            + math.cos(lat0) * math.cos(lat1) * math.sin((lon1 - lon0) / 2) ** 2
        )
        distances.append(2 * 6371.0 * math.asin(math.sqrt(a)))
    return sum(distances) / len(distances) if distances else 0.0


ESTIMATE = "ESTIMATE"  # the polyline type of `range_ring`
# Roads wind: a car with R km of range gets about R / ROAD_FACTOR km from where it stands, as the crow flies.
ROAD_FACTOR = 1.3
_EARTH_RADIUS_KM = 6371.0


def range_ring(centre: tuple[float, float], range_km: float, *, points: int = 72) -> RangeMap:
    """An estimate for a backend without range polylines (CarData): a ring round the car at the straight-line
    reach of its remaining range (`range_km` / ROAD_FACTOR), as a closed polyline of `points` points."""
    lat0, lon0 = map(math.radians, centre)
    angle = range_km / ROAD_FACTOR / _EARTH_RADIUS_KM
    ring = []
    for step in range(points):
        bearing = 2 * math.pi * step / points
        lat = math.asin(
            math.sin(lat0) * math.cos(angle) + math.cos(lat0) * math.sin(angle) * math.cos(bearing)
        )
        lon = lon0 + math.atan2(
            math.sin(bearing) * math.sin(angle) * math.cos(lat0),
            math.cos(angle) - math.sin(lat0) * math.sin(lat),
        )
        ring.append((math.degrees(lat), (math.degrees(lon) + 540.0) % 360.0 - 180.0))
    return RangeMap(center=centre, quality=ESTIMATE, polylines=(RangePolyline(ESTIMATE, tuple(ring)),))


class RangeMapUnavailable(Exception):
    """The car sent no range polygons (e.g. a PHEV's `rangemap: {}`)."""


class _TilesUnavailable(Exception):
    """A tile could be neither read from the cache nor fetched."""


@dataclass(frozen=True)
class MapImage:
    png: bytes = field(repr=False)
    base_map: bool  # False: the tiles could not be fetched and the outlines sit on a plain background
    legend: tuple[tuple[str, str], ...]  # (polyline type, colour name), in draw order


class TileCache:
    """Tiles on disk, one file per URL, at most `max_bytes` in all; least recently used files go first.

    Recency is the file's mtime, touched on every hit, so the order survives a restart. The file name is
    a hash of the URL: tile URLs may carry an API key, and two templates can share one directory.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):  # a write cut short by a crash
            leftover.unlink(missing_ok=True)
        self._dir = directory
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        stats = sorted(((p.stat(), p.name) for p in directory.glob("*.tile")), key=lambda s: s[0].st_mtime)
        self._sizes: OrderedDict[str, int] = OrderedDict((name, st.st_size) for st, name in stats)
        self._total = sum(self._sizes.values())
        with self._lock:
            self._evict()  # the bound may be smaller than last time

    @property
    def total_bytes(self) -> int:
        return self._total

    def _name(self, url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest() + ".tile"

    def get(self, url: str) -> bytes | None:
        name = self._name(url)
        with self._lock:
            if name not in self._sizes:
                return None
            self._sizes.move_to_end(name)
        path = self._dir / name
        try:
            data = path.read_bytes()
            os.utime(path)
        except FileNotFoundError:  # evicted by a concurrent put, or removed by hand
            with self._lock:
                if not path.exists():  # not written again meanwhile
                    self._total -= self._sizes.pop(name, 0)
            return None
        return data

    def put(self, url: str, data: bytes) -> None:
        if len(data) > self._max_bytes:
            return
        name = self._name(url)
        path = self._dir / name
        tmp = path.with_suffix(".tmp")
        # Writes are few and small; doing them under the lock keeps the size index and the files in step.
        with self._lock:
            tmp.write_bytes(data)
            os.replace(tmp, path)  # readers never see half a tile
            self._total += len(data) - self._sizes.pop(name, 0)
            self._sizes[name] = len(data)
            self._evict()

    def _evict(self) -> None:
        while self._total > self._max_bytes:
            name, size = self._sizes.popitem(last=False)
            self._total -= size
            (self._dir / name).unlink(missing_ok=True)


class _TileMap(StaticMap):
    """A StaticMap whose base layer comes from `fetch_tiles` in a single attempt.

    staticmap's own base layer downloads every tile up to three times with `requests`, prints each
    failure with its URL, and raises if a tile is still missing. Here a missing tile leaves the plain
    background and `base_map` False, and the features are drawn on top either way.
    """

    def __init__(
        self, size: tuple[int, int], url_template: str, fetch_tiles: Callable[[list[str]], list[Image.Image]]
    ) -> None:
        super().__init__(
            size[0],
            size[1],
            padding_x=_PADDING,
            padding_y=_PADDING,
            url_template=url_template,
            tile_size=TILE_SIZE,
            background_color=BACKGROUND,
        )
        self._fetch_tiles = fetch_tiles
        self.base_map = False

    def _draw_base_layer(self, image: Image.Image) -> None:
        half_w, half_h = 0.5 * self.width / self.tile_size, 0.5 * self.height / self.tile_size
        count = 2**self.zoom
        cells = [
            (x, y)
            for x in range(math.floor(self.x_center - half_w), math.ceil(self.x_center + half_w))
            for y in range(math.floor(self.y_center - half_h), math.ceil(self.y_center + half_h))
            if 0 <= y < count  # nothing beyond the poles
        ]
        # x wraps around at the date line.
        urls = [tile_url(self.url_template, self.zoom, x % count, y) for x, y in cells]
        try:
            tiles = self._fetch_tiles(urls)
        except _TilesUnavailable as exc:
            log.warning("map tiles unavailable, drawing the range map without them: %s", exc)
            return
        for (x, y), tile in zip(cells, tiles, strict=True):
            image.paste(tile, (self._x_to_px(x), self._y_to_px(y)), tile)
        self.base_map = True


def _decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    return image.convert("RGBA")  # forces the full decode, so damage shows up here


def _scale_bar(metres_per_px: float, max_px: int, *, miles: bool = False) -> tuple[float, int, str]:
    """The longest 1/2/5 x 10^n distance that fits in `max_px`, in km or m (mi or ft for a user who counts
    in miles): (metres, length in px, label)."""
    limit = metres_per_px * max_px
    units = _MILE_UNITS if miles else _METRE_UNITS
    size, name = next(((size, name) for size, name in units if size <= limit), units[-1])
    power = 10.0 ** math.floor(math.log10(limit / size))
    if power > limit / size:  # log10 rounds up just below a power of ten (9999999.999… -> 7.0)
        power /= 10
    count = max(m * power for m in (1, 2, 5) if m * power <= limit / size)
    metres = count * size
    return metres, round(metres / metres_per_px), f"{count:g} {name}"


def _draw_scale_bar(image: Image.Image, smap: _TileMap, *, miles: bool) -> None:
    lat = _y_to_lat(smap.y_center, smap.zoom)
    metres_per_px = _EARTH_CIRCUMFERENCE_M * math.cos(math.radians(lat)) / (TILE_SIZE * 2**smap.zoom)
    _, length, label = _scale_bar(metres_per_px, image.width // 4, miles=miles)
    draw = ImageDraw.Draw(image, "RGBA")
    font = ImageFont.load_default(size=_SCALE_FONT_SIZE)
    x0, y0 = 12, image.height - 14  # the bar's left end, near the bottom-left corner
    text_w = draw.textlength(label, font=font)
    box_top = y0 - 8 - _SCALE_FONT_SIZE - 4
    draw.rectangle((x0 - 6, box_top, x0 + max(length, text_w) + 6, y0 + 6), fill=(255, 255, 255, 200))
    draw.text((x0, y0 - 8), label, fill="black", font=font, anchor="ls")
    draw.line((x0, y0, x0 + length, y0), fill="black", width=3)
    for x in (x0, x0 + length):  # end ticks
        draw.line((x, y0 - 5, x, y0), fill="black", width=2)


def _draw_attribution(image: Image.Image, text: str) -> None:
    draw = ImageDraw.Draw(image, "RGBA")
    font = ImageFont.load_default(size=12)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x, y = image.width - (right - left) - 8, image.height - (bottom - top) - 8
    draw.rectangle((x - 4, y - 3, image.width, image.height), fill=(255, 255, 255, 200))
    draw.text((x - left, y - top), text, fill=(40, 40, 40), font=font)


class RangeMapRenderer:
    """Draws a `RangeMap` as a PNG; one per bot, shared by all chats (its cache and pools are shared)."""

    def __init__(
        self,
        *,
        tile_url: str,
        cache_dir: Path,
        cache_max_bytes: int,
        user_agent: str,
        tile_timeout: float = 5.0,
        size: tuple[int, int] = (800, 600),
        max_workers: int = 2,
        attribution: str = ATTRIBUTION,
    ) -> None:
        self._tile_url = tile_url
        self._attribution = attribution
        self._size = size
        self._cache = TileCache(cache_dir, cache_max_bytes)
        self._http = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=tile_timeout,
            follow_redirects=True,
            limits=httpx.Limits(max_connections=_TILE_FETCHERS),
        )
        self._fetchers = ThreadPoolExecutor(_TILE_FETCHERS, thread_name_prefix="rangemap-tile")
        self._workers = ThreadPoolExecutor(max_workers, thread_name_prefix="rangemap")

    def render(
        self, range_map: RangeMap, car: tuple[float, float] | None, *, miles: bool = False
    ) -> MapImage:
        """Blocking: downloads tiles and draws. `car` is (lat, lon); `miles`: the scale bar in miles."""
        polylines = [p for p in range_map.polylines if p.points]
        if not polylines:
            raise RangeMapUnavailable("the car sent no range map")
        smap = _TileMap(self._size, self._tile_url, self._tile_images)
        others = itertools.cycle(OTHER_COLOURS)
        colours: dict[str, tuple[str, str]] = {}
        for polyline in polylines:
            if polyline.type not in colours:
                colours[polyline.type] = TYPE_COLOURS.get(polyline.type) or next(others)
            coords = [(lon, lat) for lat, lon in polyline.points]  # staticmap wants (lon, lat)
            if coords[0] != coords[-1]:
                coords.append(coords[0])
            smap.add_line(Line(coords, colours[polyline.type][0], _LINE_WIDTH, simplify=False))
        if car is not None:
            # CircleMarker width is the radius at double size: an 18 px white ring round a 12 px red dot.
            smap.add_marker(CircleMarker((car[1], car[0]), _CAR_RING, 18))
            smap.add_marker(CircleMarker((car[1], car[0]), CAR_COLOUR, 12))
        image = smap.render()
        _draw_scale_bar(image, smap, miles=miles)
        if smap.base_map and self._attribution:
            _draw_attribution(image, self._attribution)
        out = io.BytesIO()
        image.save(out, format="PNG")
        legend = tuple((kind, name) for kind, (_, name) in colours.items())
        return MapImage(png=out.getvalue(), base_map=smap.base_map, legend=legend)

    async def render_async(
        self, range_map: RangeMap, car: tuple[float, float] | None, *, miles: bool = False
    ) -> MapImage:
        """`render` in this renderer's thread pool: the event loop stays free while tiles download."""
        loop = asyncio.get_running_loop()
        draw = functools.partial(self.render, range_map, car, miles=miles)
        return await loop.run_in_executor(self._workers, draw)

    def close(self) -> None:
        """Waits for renders in progress (at most a tile timeout), then releases threads and connections."""
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._fetchers.shutdown(wait=True, cancel_futures=True)
        self._http.close()

    def _tile_images(self, urls: Sequence[str]) -> list[Image.Image]:
        futures = [self._fetchers.submit(self._tile, url) for url in urls]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [error for f in futures if f in done and (error := f.exception()) is not None]
        if errors:
            for future in pending:  # one tile is missing: the map is drawn without tiles, skip the rest
                future.cancel()
            raise errors[0]
        return [f.result() for f in futures]

    def _tile(self, url: str) -> Image.Image:
        cached = self._cache.get(url)
        if cached is not None:
            try:
                return _decode(cached)
            except (OSError, ValueError):
                pass  # a damaged file: fetch the tile again, which overwrites it
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            # The exception's type is enough: its text could carry the URL, and the URL an API key.
            raise _TilesUnavailable(type(exc).__name__) from exc
        if response.status_code != httpx.codes.OK:
            raise _TilesUnavailable(f"tile server answered {response.status_code}")
        try:
            tile = _decode(response.content)
        except (OSError, ValueError) as exc:
            raise _TilesUnavailable("tile server sent something that is not an image") from exc
        self._cache.put(url, response.content)
        return tile
