"""Range map render time with a cold tile cache against a warm one, as a ratio measured in the same run.

    .venv/bin/python -m benchmarks.rangemap_render [--renders N] [--tile-delay SECONDS]

(Run from the repository root with -m: it borrows the tests' tile server and range map.) The tile server
is on loopback and waits `--tile-delay` before each tile, standing in for the network. Cold: every render
starts with an empty cache directory, so it downloads all its tiles. Warm: one renderer whose cache
already holds them, so the tile server is not asked at all (the request counts are printed to show it).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.report import result
from bot.rangemap import RangeMapRenderer
from tests.support.tiles import CAR, RANGE, TileServer


def renderer(tiles: TileServer, cache_dir: Path) -> RangeMapRenderer:
    return RangeMapRenderer(
        tile_url=tiles.template,
        cache_dir=cache_dir,
        cache_max_bytes=50_000_000,
        user_agent="rangemap-benchmark/1",
    )


def timed_render(renderer: RangeMapRenderer) -> float:
    started = time.perf_counter()
    result = renderer.render(RANGE, CAR)
    elapsed = time.perf_counter() - started
    if not result.base_map:
        raise SystemExit("the local tile server did not answer: no base map")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--renders", type=int, default=5, help="renders timed on each side (default 5)")
    parser.add_argument("--tile-delay", type=float, default=0.03, help="seconds per tile (default 0.03)")
    args = parser.parse_args()

    with TileServer(delay=args.tile_delay) as tiles, tempfile.TemporaryDirectory() as tmp:
        cold: list[float] = []
        for n in range(args.renders):
            cold_renderer = renderer(tiles, Path(tmp) / f"cold-{n}")
            try:
                cold.append(timed_render(cold_renderer))
            finally:
                cold_renderer.close()
        cold_requests = tiles.requests

        warm_renderer = renderer(tiles, Path(tmp) / "warm")
        try:
            timed_render(warm_renderer)  # fills the cache, not timed
            before = tiles.requests
            warm = [timed_render(warm_renderer) for _ in range(args.renders)]
            warm_requests = tiles.requests - before
        finally:
            warm_renderer.close()

    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print(f"{args.renders} renders each, {args.tile_delay * 1000:.0f} ms per tile from the tile server")
    for side, seconds, requests in (("cold", cold_s, cold_requests), ("warm", warm_s, warm_requests)):
        fetched = requests / args.renders
        print(f"{side} cache: median {seconds * 1000:7.1f} ms, {fetched:.0f} tiles fetched a render")
    print(f"cold / warm: {cold_s / warm_s:.1f}x")
    result(
        "range map, warm tile cache",
        f"{warm_s * 1e3:.1f} ms",
        f"{cold_s * 1e3:.1f} ms (cold)",
        warm_s / cold_s,
    )


if __name__ == "__main__":
    main()
