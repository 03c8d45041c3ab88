"""Range maps as pictures, against a tile server on loopback that counts what it is asked for."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageChops, ImageColor

from bot.bmw.models import RangeMap, RangePolyline
from bot.rangemap import (
    BACKGROUND,
    CAR_COLOUR,
    METRES_PER_MILE,
    OTHER_COLOURS,
    ROAD_FACTOR,
    TYPE_COLOURS,
    MapImage,
    RangeMapRenderer,
    RangeMapUnavailable,
    TileCache,
    _scale_bar,
    range_ring,
    reach_km,
)
from bot.tiles import plain_tile
from tests.support.bodies import REAL_RESPONSES
from tests.support.tiles import CAR, RANGE, TILE_GRID, TILE_LAND, TileServer, ring

DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # the discard port: connection refused
GREEN, BLUE = (ImageColor.getrgb(TYPE_COLOURS[k][0]) for k in ("ECO_PRO_PLUS", "COMFORT"))
RED = ImageColor.getrgb(CAR_COLOUR)
SIZE = (640, 480)
MakeRenderer = Callable[..., RangeMapRenderer]


def near(image: Image.Image, colour: tuple[int, ...], tolerance: int = 16) -> Image.Image:
    """A mask of the pixels within `tolerance` of `colour` in every channel (255 = near)."""
    diff = ImageChops.difference(image, Image.new("RGB", image.size, colour[:3]))
    r, g, b = (band.point(lambda v: 255 if v <= tolerance else 0) for band in diff.split())
    return ImageChops.darker(ImageChops.darker(r, g), b)


def count(mask: Image.Image) -> int:
    return mask.histogram()[255]


def decode(result: MapImage) -> Image.Image:
    image = Image.open(io.BytesIO(result.png))
    assert image.format == "PNG"
    return image.convert("RGB")


def assert_outlines_and_car(image: Image.Image) -> None:
    assert count(near(image, GREEN)) > 200
    assert count(near(image, BLUE)) > 200
    red = near(image, RED)
    assert count(red) > 30
    # The rings are centred on the car, so the car's dot sits in the middle of the picture.
    left, top, right, bottom = red.getbbox() or (0, 0, 0, 0)
    assert right - left < 20 and bottom - top < 20
    assert abs((left + right) / 2 - image.width / 2) < 3
    assert abs((top + bottom) / 2 - image.height / 2) < 3


def assert_tiles_shown(image: Image.Image) -> None:
    # The tiles' land is also the no-tiles background: their grid is what only tiles bring.
    assert count(near(image, TILE_LAND, tolerance=2)) > image.width * image.height // 3
    assert count(near(image, TILE_GRID, tolerance=2)) > image.width * image.height // 100


def dark_pixels(image: Image.Image, box: tuple[int, int, int, int]) -> int:
    return count(near(image.crop(box), (0, 0, 0), tolerance=90))


@pytest.fixture
def make_renderer(tmp_path: Path) -> Iterator[MakeRenderer]:
    renderers: list[RangeMapRenderer] = []

    def make(tile_url: str, **kwargs: object) -> RangeMapRenderer:
        options: dict[str, object] = {
            "cache_dir": tmp_path / "tiles",
            "cache_max_bytes": 10_000_000,
            "user_agent": "i3-bot-tests/1.0 (+https://example.org/bot)",
            "size": SIZE,
            **kwargs,
        }
        renderer = RangeMapRenderer(tile_url=tile_url, **options)  # type: ignore[arg-type]
        renderers.append(renderer)
        return renderer

    yield make
    for renderer in renderers:
        renderer.close()


def test_outlines_and_car_drawn_over_tiles(tiles: TileServer, make_renderer: MakeRenderer) -> None:
    result = make_renderer(tiles.template).render(RANGE, CAR)

    image = decode(result)
    assert image.size == SIZE
    assert result.base_map
    assert result.legend == (("ECO_PRO_PLUS", "green"), ("COMFORT", "blue"))
    assert_outlines_and_car(image)
    assert_tiles_shown(image)
    # The attribution's text sits in the bottom-right corner (the tiles hold nothing that dark).
    assert dark_pixels(image, (image.width - 200, image.height - 30, image.width, image.height)) > 20


def test_subdomain_template_spreads_tiles_over_a_b_c(tiles: TileServer, make_renderer: MakeRenderer) -> None:
    """`{s}` as tile providers write it: every tile is fetched from one of a/b/c, and the map has tiles."""
    result = make_renderer(tiles.subdomain_template).render(RANGE, CAR)
    assert result.base_map
    assert_tiles_shown(decode(result))
    assert set(tiles.subdomains) == {"a", "b", "c"}  # a map spans enough tiles to use all three


def test_warm_cache_asks_the_tile_server_nothing(tiles: TileServer, make_renderer: MakeRenderer) -> None:
    renderer = make_renderer(tiles.template)
    cold = renderer.render(RANGE, CAR)
    fetched = tiles.requests
    assert fetched > 0

    warm = renderer.render(RANGE, CAR)
    # A new renderer on the same directory (a restarted bot) finds the tiles on disk too.
    restarted = make_renderer(tiles.template).render(RANGE, CAR)

    assert tiles.requests == fetched
    assert warm.base_map and restarted.base_map
    assert warm.png == cold.png == restarted.png


def test_user_agent_reaches_the_tile_server(tiles: TileServer, make_renderer: MakeRenderer) -> None:
    make_renderer(tiles.template, user_agent="i3-owner-bot/0.1 (owner@example.org)").render(RANGE, CAR)

    assert tiles.user_agents
    assert set(tiles.user_agents) == {"i3-owner-bot/0.1 (owner@example.org)"}


def assert_fallback(result: MapImage) -> None:
    image = decode(result)
    assert not result.base_map
    assert image.size == SIZE
    assert_outlines_and_car(image)
    assert count(near(image, ImageColor.getrgb(BACKGROUND), tolerance=0)) > image.width * image.height // 3
    assert count(near(image, TILE_GRID, tolerance=2)) == 0
    # A scale bar bottom-left; no attribution bottom-right, since no tiles were shown.
    assert dark_pixels(image, (0, image.height - 40, image.width // 3, image.height)) > 20
    assert dark_pixels(image, (image.width - 200, image.height - 30, image.width, image.height)) == 0


def test_dead_tile_server_gives_outlines_on_a_plain_background(make_renderer: MakeRenderer) -> None:
    assert_fallback(make_renderer(DEAD_TILES).render(RANGE, CAR))


def test_failing_tile_server_gives_a_plain_map_and_nothing_is_cached(
    tiles: TileServer, make_renderer: MakeRenderer, tmp_path: Path
) -> None:
    renderer = make_renderer(tiles.template)
    tiles.status = 500

    assert_fallback(renderer.render(RANGE, CAR))
    assert not list((tmp_path / "tiles").glob("*.tile"))

    tiles.status = 200  # the server recovers: the next map has tiles again
    assert renderer.render(RANGE, CAR).base_map


@pytest.mark.parametrize("status", [500, 200])
def test_tile_url_stays_out_of_the_logs(
    status: int, tiles: TileServer, make_renderer: MakeRenderer, caplog: pytest.LogCaptureFixture
) -> None:
    # Tile providers other than OSM put an API key in the URL. (httpx's own request log is bot/logs.py's
    # business: it keeps httpx quiet.)
    tiles.status = status
    for url in (tiles.template + "?apikey=s3cr3t-key", DEAD_TILES + "?apikey=s3cr3t-key"):
        with caplog.at_level(logging.DEBUG, logger="bot.rangemap"):
            make_renderer(url).render(RANGE, CAR)

    ours = [record.getMessage() for record in caplog.records if record.name == "bot.rangemap"]
    assert ours  # the fallback was logged
    assert not [message for message in ours if "s3cr3t-key" in message]


def test_tile_cache_stays_within_its_bound(
    tiles: TileServer, make_renderer: MakeRenderer, tmp_path: Path
) -> None:
    bound = len(plain_tile()) * 5 // 2  # room for two tiles; a map needs more
    renderer = make_renderer(tiles.template, cache_max_bytes=bound)

    result = renderer.render(RANGE, CAR)

    assert result.base_map
    assert tiles.requests > 2
    sizes = [p.stat().st_size for p in (tmp_path / "tiles").iterdir()]
    assert 0 < sum(sizes) <= bound
    assert len(sizes) == 2


def test_tile_cache_evicts_the_least_recently_used(tmp_path: Path) -> None:
    a, b, c = (bytes([n]) * 100 for n in range(3))
    cache = TileCache(tmp_path, max_bytes=250)
    cache.put("a", a)
    cache.put("b", b)
    assert cache.get("a") == a  # "a" is now the more recently used
    cache.put("c", c)

    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (a, c)
    assert cache.total_bytes == 200


def test_tile_cache_order_survives_a_restart(tmp_path: Path) -> None:
    cache = TileCache(tmp_path, max_bytes=250)
    cache.put("old", b"o" * 100)
    cache.put("new", b"n" * 100)
    by_content = {p.read_bytes()[:1]: p for p in tmp_path.iterdir()}
    os.utime(by_content[b"o"], (1_000_000, 1_000_000))
    os.utime(by_content[b"n"], (2_000_000, 2_000_000))

    reopened = TileCache(tmp_path, max_bytes=250)
    reopened.put("newest", b"x" * 100)

    assert reopened.get("old") is None
    assert reopened.get("new") == b"n" * 100
    assert TileCache(tmp_path, max_bytes=100).total_bytes == 100  # a smaller bound evicts at start


@pytest.mark.parametrize(
    "empty",
    [
        RangeMap(center=None, quality=None, polylines=()),
        RangeMap(center=CAR, quality="AVERAGE", polylines=(RangePolyline("COMFORT", ()),)),
    ],
)
def test_empty_range_map_is_unavailable(empty: RangeMap, make_renderer: MakeRenderer) -> None:
    with pytest.raises(RangeMapUnavailable):
        make_renderer(DEAD_TILES).render(empty, CAR)


def test_unknown_types_get_further_distinct_colours(make_renderer: MakeRenderer) -> None:
    polylines = (
        RangePolyline("ECO_PRO_PLUS", ring(60)),
        RangePolyline("SPORT", ring(30)),
        RangePolyline("COMFORT", ring(45)),
        RangePolyline("SPORT", ring(20)),
    )
    result = make_renderer(DEAD_TILES).render(RangeMap(CAR, None, polylines), CAR)

    sport_hex, sport_name = OTHER_COLOURS[0]
    assert result.legend == (("ECO_PRO_PLUS", "green"), ("SPORT", sport_name), ("COMFORT", "blue"))
    assert len({name for _, name in result.legend}) == 3
    assert count(near(decode(result), ImageColor.getrgb(sport_hex))) > 200


def test_map_without_car_fits_the_outlines(make_renderer: MakeRenderer) -> None:
    image = decode(make_renderer(DEAD_TILES).render(RANGE, None))

    assert count(near(image, RED)) == 0
    left, top, right, bottom = near(image, GREEN).getbbox() or (0, 0, 0, 0)
    # Fitted: the larger ring stays inside the picture and fills a good part of it.
    assert left > 0 and top > 0 and right < image.width and bottom < image.height
    assert max((right - left) / image.width, (bottom - top) / image.height) > 0.4


async def test_render_async_leaves_the_event_loop_free(
    tiles: TileServer, make_renderer: MakeRenderer
) -> None:
    renderer = make_renderer(tiles.template, tile_timeout=30.0)
    tiles.gate = threading.Event()
    events: list[str] = []

    async def render() -> MapImage:
        result = await renderer.render_async(RANGE, CAR)
        events.append("rendered")
        return result

    task = asyncio.create_task(render())
    assert await asyncio.to_thread(tiles.asked.wait, 20.0)  # the render is now held by the tile server
    for _ in range(5):
        await asyncio.sleep(0)
        events.append("tick")
    tiles.gate.set()
    result = await task

    assert events == ["tick"] * 5 + ["rendered"]
    assert result.base_map


def real_range_map(car_dir: str) -> RangeMap:
    path = REAL_RESPONSES / "bimmer_connected" / car_dir / "range_maps.json"
    if not path.exists():
        pytest.skip("the real recorded responses (../shared) are not here")
    return RangeMap.from_api(json.loads(path.read_text()))


def test_real_i3_range_map_renders(tiles: TileServer, make_renderer: MakeRenderer) -> None:
    range_map = real_range_map("I01_NOREX")
    assert range_map.center is not None

    result = make_renderer(tiles.template).render(range_map, range_map.center)

    assert result.base_map
    assert [kind for kind, _ in result.legend] == ["ECO_PRO_PLUS", "COMFORT"]
    image = decode(result)
    assert count(near(image, GREEN)) and count(near(image, BLUE)) and count(near(image, RED))


def test_real_phev_empty_range_map_is_unavailable(make_renderer: MakeRenderer) -> None:
    with pytest.raises(RangeMapUnavailable):
        make_renderer(DEAD_TILES).render(real_range_map("G30_PHEV_OS7"), None)


@given(metres_per_px=st.floats(0.01, 10_000), max_px=st.integers(40, 1000))
def test_scale_bar_is_a_round_distance_that_fits(metres_per_px: float, max_px: int) -> None:
    metres, length, label = _scale_bar(metres_per_px, max_px)

    mantissa = metres / 10 ** math.floor(math.log10(metres))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))
    assert metres <= metres_per_px * max_px * (1 + 1e-9)
    assert metres > metres_per_px * max_px / 2.5  # the longest such distance
    assert abs(length - metres / metres_per_px) <= 0.5
    value, unit = label.split()
    assert float(value) * (1000 if unit == "km" else 1) == pytest.approx(metres)
    assert unit == ("km" if metres >= 1000 else "m")


@given(metres_per_px=st.floats(0.01, 10_000), max_px=st.integers(40, 1000))
def test_a_miles_users_scale_bar_is_a_round_distance_in_miles_or_feet(
    metres_per_px: float, max_px: int
) -> None:
    metres, length, label = _scale_bar(metres_per_px, max_px, miles=True)

    value, unit = label.split()
    assert unit in ("mi", "ft") and (unit == "mi") == (metres >= METRES_PER_MILE)
    mantissa = float(value) / 10 ** math.floor(math.log10(float(value)))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 5))
    assert metres == pytest.approx(float(value) * (METRES_PER_MILE if unit == "mi" else 0.3048))
    assert metres <= metres_per_px * max_px * (1 + 1e-9)
    assert metres > metres_per_px * max_px / 2.5  # the longest such distance
    assert abs(length - metres / metres_per_px) <= 0.5


@given(
    lat=st.floats(-70, 70),
    lon=st.floats(-179.9, 179.9),
    range_km=st.floats(1, 400),
    points=st.integers(8, 144),
)
def test_range_ring_keeps_the_straight_line_reach_all_round(
    lat: float, lon: float, range_km: float, points: int
) -> None:
    ring = range_ring((lat, lon), range_km, points=points)

    (line,) = ring.polylines
    assert ring.center == (lat, lon) and len(line.points) == points
    for point in line.points:
        assert reach_km(RangePolyline(line.type, (point,)), (lat, lon)) == pytest.approx(
            range_km / ROAD_FACTOR, rel=1e-6
        )
        assert -90 <= point[0] <= 90 and -180 <= point[1] <= 180
