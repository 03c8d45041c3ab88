"""The headroom benchmark's pacing model (benchmarks/cardata_headroom.py, issue 20 point 6): the process's
real `ConnectPacer` at its defaults on a simulated clock, with each stream's hourly reconnect for its id
token. It is what docs/cardata.md promises about one process's size, so it is pinned here (milliseconds)."""

from __future__ import annotations

from benchmarks.cardata_headroom import most_owners_kept_up, pacing_model


async def test_a_thousand_owners_come_up_in_half_an_hour_and_stay_up() -> None:
    model = await pacing_model(1000)
    assert model.all_once is not None and 32 * 60 < model.all_once < 34 * 60  # 1,000 at 30 a minute
    assert model.up_at_end >= 995  # only a stream in its reconnect is down
    assert model.longest_wait <= 60


async def test_ten_thousand_owners_never_all_stream_from_one_process() -> None:
    model = await pacing_model(10_000)
    assert model.all_once is not None and 330 * 60 < model.all_once < 336 * 60  # 5.5 hours for a first turn
    # 30 connects a minute, each good for 55 minutes: about 1,650 up, the others waiting hours for a turn
    assert 1600 <= model.up_at_end <= 1700
    assert model.longest_wait > 3600
    assert 1500 <= await most_owners_kept_up(10_000) <= 1650
