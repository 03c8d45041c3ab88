"""The soak's stall sampler (benchmarks/stalls.py, `--stalls`): a loop held by some work is found and the
place named, the collector's share apart; a sample in the bot's code is charged to the bot's frame, with
the library's frame it stood in."""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from types import FrameType

from benchmarks import stalls
from benchmarks.stalls import GC, Stalls, place
from tests.support.waits import until


def hold(seconds: float) -> None:
    """Keep the event loop's thread busy, a collection in the middle."""
    half = time.monotonic() + seconds / 2
    while time.monotonic() < half:
        pass
    gc.collect()
    while time.monotonic() < half + seconds / 2:
        pass


async def test_a_held_loop_is_one_stall_charged_to_where_it_was_held() -> None:
    sampler = Stalls()
    sampler.start()
    try:
        await asyncio.sleep(0.05)  # the sampler's first beats
        hold(0.5)
        await until(lambda: sampler.count >= 1, "the stall was counted")
    finally:
        sampler.stop()
    held = [
        where for where in sampler.places if where.startswith("tests/test_stalls.py:") and " hold" in where
    ]
    assert held and sampler.places[held[0]].stalls == 1, sampler.lines()
    assert sampler.places[GC].stalls == 1, sampler.lines()  # the collection, which no sample can see
    lines = sampler.lines()
    assert lines[0].startswith("stalls over 40 ms: 1,") and any(" hold" in line for line in lines[1:]), lines


def test_a_sample_in_the_bots_code_names_the_bot_frame_and_the_library_frame_below() -> None:
    caught: list[FrameType] = []

    def library() -> None:
        caught.append(sys._getframe())

    scope = {"library": library}
    bot_file = str(stalls.ROOT / "bot" / "cardata" / "stream.py")
    exec(compile("def apply():\n    library()\n", bot_file, "exec"), scope)  # a frame in bot/
    scope["apply"]()
    line = library.__code__.co_firstlineno + 1
    assert place(caught[0]) == f"bot/cardata/stream.py:2 apply > tests/test_stalls.py:{line} library"
