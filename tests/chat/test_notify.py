"""Charge pushes fanned out against Telegram's limit: the sandbox counting its 30 messages in any second, as
a sliding window, and answering 429 beyond (benchmarks/push_fanout.py measures the whole rate)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bot.bmw.models import Region
from bot.chat.notify import PUSHES_PER_SECOND
from bot.sandbox import BotApiServer
from bot.servers import BackgroundServer
from tests.support.watcher import FINISHED, Cycles

OWNERS = 40


@pytest.fixture
def _bot_api_served(bot_token: str) -> Iterator[tuple[BotApiServer, BackgroundServer]]:
    """The sandbox of tests/support/sandbox.py, with Telegram's flood limit on."""
    server = BotApiServer(flood_limit_per_second=30)
    server.add_bot(bot_token)
    with BackgroundServer(server.app) as http:
        yield server, http


async def test_charge_ends_at_once_use_telegrams_second_and_reach_every_owner_once(
    bot, sandbox, simulator, bot_api
):
    """40 charges end in one watcher cycle. The first pushes leave together, as many as Telegram takes in a
    second less one for chat answers; the next waits until a second after an answer. None is refused, every
    owner has exactly one."""
    cycle = Cycles()
    garage = bot.bot_data.services.garage
    users = {}
    vins = []
    for i in range(OWNERS):
        tg_id = 700 + i
        login = (f"fan{i}@example.com", "fan-password")
        vins.append(simulator.add_account(*login)[0])
        users[tg_id] = sandbox.user(tg_id, f"User{i}")
        users[tg_id].send("/start")
        await garage.link(tg_id, f"User{i}", Region.REST_OF_WORLD, *login)
    for user in users.values():
        await user.wait_for(lambda u: bool(u.bot_messages))
    # The answers to /start are out and the second they count in at Telegram has passed: the fan-out has
    # Telegram's second to itself (a loaded machine let the last answers share it: a 429).
    await asyncio.sleep(1.1)
    await cycle(bot)
    for vin in vins:
        simulator.set_status(vin, chargingLevelHv=95)
        simulator.plug_in(vin, charging=True)
    await cycle(bot)
    simulator.advance(10 * 60)
    sends_before = len(bot_api.calls_to("sendMessage"))

    report = await cycle(bot)

    assert report.pushed == OWNERS and report.push_failures == 0
    assert {
        tg_id: len([m for m in u.bot_messages if FINISHED in (m.text or "")]) for tg_id, u in users.items()
    } == {tg_id: 1 for tg_id in users}
    sends = bot_api.calls_to("sendMessage")[sends_before:]
    assert [(c.error_code, c.params.get("text", "")[:20]) for c in sends if not c.ok] == []  # no 429
    # No second holds more than PUSHES_PER_SECOND of them: one of Telegram's 30 stays free for chat answers.
    # How soon they leave is speed, measured by benchmarks/push_fanout.py, not timed here.
    times = sorted(c.time for c in sends)
    assert all(later - first >= 1.0 for first, later in zip(times, times[PUSHES_PER_SECOND:], strict=False))
