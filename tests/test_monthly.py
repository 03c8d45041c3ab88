"""The monthly summary end to end (issue 21, point 6, and point 7 for i Remote cars): switched on in /alerts,
decided by the watcher's polls on the 1st at 9:00 in each owner's zone, one message per car with a chart;
silent in quiet hours, once across a restart, in German for a German owner; on demand under /history.

The tests' month M begins a few weeks from now, so the watches the link books are due at every cycle in it;
the BMW simulator's clock stands on M's 10th, so the charge it reports ends in M; the watcher's cycles run at
the clocks each step names (its mileage marks are the polls' own).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from telegram.ext import Application

from bot.bmw.simulator import Simulator
from bot.charts import WIDTH
from bot.chat import prefs
from bot.costs import Tariff
from bot.history import usable_kwh
from bot.months import Month
from bot.sandbox.driver import ChatMessage, SandboxUser
from bot.store import Store, UserSettings
from tests.chat.test_share import invite, join
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot
from tests.support.charts import MESSAGE_TEXT_PX, PHONE_PHOTO_PX, ink_height_below_the_bars

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
M = Month.of(time.time() + 40 * 24 * 3600, BERLIN)
N = M.next
CHARGED_ON = datetime(
    M.year, M.month, 10, 12, tzinfo=BERLIN
).timestamp()  # the simulator's clock at the start
ALICE, BOB, CAROL = 901, 902, 903


@pytest.fixture
def simulator() -> Simulator:
    started = time.monotonic()
    sim = Simulator(clock=lambda: CHARGED_ON + time.monotonic() - started)
    sim.add_default_account()
    return sim


def _store(application: Application) -> Store:
    return application.bot_data.services.garage.store


def _at(zone: ZoneInfo, month: Month, day: int, hour: int, minute: int = 0) -> float:
    return datetime(month.year, month.month, day, hour, minute, tzinfo=zone).timestamp()


def named(month: Month, language: str = "en") -> str:
    """named(M) as a user of `language` reads it."""
    with prefs.using(prefs.Prefs(language=language, locale=language)):
        return prefs.month_year(month.first)


def summaries(user: SandboxUser, month: str) -> list[ChatMessage]:
    return [m for m in user.bot_messages if m.photo is not None and month in (m.caption or "")]


async def test_the_summary_comes_once_at_nine_on_the_first_in_each_owners_zone(
    bot_settings, sandbox, simulator: Simulator, simulator_url: str
) -> None:
    alice, bob, carol = sandbox.user(ALICE), sandbox.user(BOB), sandbox.user(CAROL)
    async with running_bot(bot_settings, fast_client(simulator_url)) as app:
        for user in (alice, bob, carol):
            await link(user)
        store = _store(app)
        store.save_user_settings(ALICE, UserSettings(time_zone="Europe/Berlin"))
        store.save_tariff(ALICE, Tariff(valid_from=0, price=0.30, currency="EUR"))  # Bob has none
        # Bob reads German, lives in New York and sleeps until 10:00: his summary at 9:00 comes silently.
        quiet = UserSettings(language="de", time_zone="America/New_York", quiet=True, quiet_start=22 * 60)
        store.save_user_settings(BOB, UserSettings(**{**vars(quiet), "quiet_end": 10 * 60}))
        alice.send("/alerts")
        menu = await alice.wait_for_bot_message("Alerts about your cars")
        assert "⬜ Monthly summary" in [b.text for row in menu.buttons for b in row]
        alice.press(menu, "Monthly summary")
        await alice.wait_for(
            lambda u: "✅ Monthly summary" in [b.text for row in u.now(menu).buttons for b in row]
        )
        store.save_alert_prefs(BOB, store.alert_prefs(ALICE))  # as Bob's own press would
        # Carol leaves it off.

        async def cycle(moment: float) -> None:
            app.bot_data.services.clock = lambda: moment  # quiet hours are the pushes' own time's
            await app.bot_data.services.watcher.cycle(moment)

        simulator.set_status(BEV_VIN, mileage=1000)
        await cycle(_at(BERLIN, M, 1, 0, 10))
        # A charge from 40 to 70 % on 10 November (the simulator's clock).
        simulator.set_status(BEV_VIN, chargingLevelHv=40)
        simulator.plug_in(BEV_VIN, charging=True)
        await cycle(_at(BERLIN, M, 10, 13))
        simulator.advance(30 * 60)
        simulator.set_status(BEV_VIN, chargingLevelHv=70)
        simulator.unplug(BEV_VIN)
        await cycle(_at(BERLIN, M, 10, 14))
        simulator.set_status(BEV_VIN, mileage=1480)
        await cycle(_at(BERLIN, M, len(M.days()), 20))
        simulator.set_status(BEV_VIN, mileage=1500)
        await cycle(_at(BERLIN, N, 1, 0, 5))
        await cycle(_at(BERLIN, N, 1, 8, 55))
        assert summaries(alice, named(M)) == []

        await cycle(_at(BERLIN, N, 1, 9, 10))  # the first poll from 9:00 (every 15 min)
        await alice.wait_for(lambda u: len(summaries(u, named(M))) == 2)  # one per car
        [bev] = [m for m in summaries(alice, named(M)) if BEV_VIN[-4:] in (m.caption or "")]
        kwh = round(0.3 * usable_kwh(store.vehicle(ALICE, BEV_VIN).model), 1)
        caption = bev.caption or ""
        assert "500 km" in caption and "1 charge" in caption and f"{kwh:.1f} kWh" in caption, caption
        with prefs.using(prefs.Prefs(language="en", locale="en")):
            cost = prefs.money(0.3 * usable_kwh(store.vehicle(ALICE, BEV_VIN).model) * 0.30, "EUR")
        assert f"≈ {cost}" in caption, caption  # the month's charge at her tariff
        assert not bev.disable_notification
        [rex] = [m for m in summaries(alice, named(M)) if REX_VIN[-4:] in (m.caption or "")]
        assert "0 km" in (rex.caption or "") and "No charge" in (rex.caption or ""), rex.caption
        with Image.open(io.BytesIO(bev.photo or b"")) as image:
            assert image.format == "PNG" and image.width == WIDTH
        assert ink_height_below_the_bars(bev.photo or b"") * PHONE_PHOTO_PX / WIDTH >= MESSAGE_TEXT_PX
        assert summaries(bob, named(M, "de")) == []  # 3:00 in New York

        await cycle(_at(BERLIN, N, 1, 9, 30))
        await cycle(_at(NEW_YORK, N, 1, 8, 55))
        assert summaries(bob, named(M, "de")) == []

    async with running_bot(bot_settings, fast_client(simulator_url)) as app:
        app.bot_data.services.clock = lambda: _at(NEW_YORK, N, 1, 9, 10)
        await app.bot_data.services.watcher.cycle(_at(NEW_YORK, N, 1, 9, 10))
        await bob.wait_for(lambda u: len(summaries(u, named(M, "de"))) == 2)
        await app.bot_data.services.watcher.cycle(_at(NEW_YORK, N, 1, 11))
        german = summaries(bob, named(M, "de"))
        assert all(m.disable_notification for m in german)  # 9:00 is in his quiet hours
        [bevs] = [m for m in german if BEV_VIN[-4:] in (m.caption or "")]
        assert "500 km" in (bevs.caption or "") and "1 Ladevorgang" in (bevs.caption or ""), bevs.caption
        assert "kein Tarif" in (bevs.caption or ""), bevs.caption
        # Not twice after the restart, and none for Carol, who left it off.
        assert len(summaries(alice, named(M))) == 2
        assert [m for u in (carol,) for m in u.bot_messages if m.photo is not None] == []


async def test_the_month_on_demand_under_history_and_a_month_without_data_says_so(
    bot, sandbox, simulator: Simulator
) -> None:
    alice = sandbox.user(ALICE)
    await link(alice)
    _store(bot).save_user_settings(ALICE, UserSettings(time_zone="Europe/Berlin"))
    watcher = bot.bot_data.services.watcher
    # Polled on the 2nd and the 20th: 120 km driven so far.
    simulator.set_status(BEV_VIN, mileage=2000)
    await watcher.cycle(_at(BERLIN, M, 2, 8))
    simulator.set_status(BEV_VIN, mileage=2120)
    await watcher.cycle(_at(BERLIN, M, 20, 8))
    clock: Callable[[], float] = lambda: _at(BERLIN, M, 20, 9)  # noqa: E731
    bot.bot_data.services.clock = clock

    alice.send("/history")
    listing = await alice.wait_for_bot_message("No charge of")
    alice.press(listing, "This month")
    now = await alice.wait_for_bot_message(f"{named(M)} so far")
    # The first poll of the month came on its 2nd: the km count from then, and say so.
    assert "120 km since" in (now.caption or "") and "No charge" in (now.caption or ""), now.caption
    alice.press(listing, "Last month")
    before = await alice.wait_for_bot_message(named(M.previous))
    assert "Nothing recorded" in (before.text or "") and "0 km" not in (before.text or ""), before.text
    assert before.photo is None


async def test_a_person_the_car_is_shared_with_gets_it_by_their_own_switch(
    bot, sandbox, simulator: Simulator
) -> None:
    """The owner left it off; the person Olga shared her BEV with switched it on: the summary of that car
    (not of her other car) reaches that person alone, in their zone."""
    owner, member = sandbox.user(ALICE, "Olga"), sandbox.user(BOB, "Max")
    await link(owner)
    await join(member, await invite(owner))
    store = _store(bot)
    for tg_id in (ALICE, BOB):
        store.save_user_settings(tg_id, UserSettings(time_zone="Europe/Berlin"))
    store.save_alert_prefs(BOB, replace(store.alert_prefs(BOB), monthly_on=True))
    watcher = bot.bot_data.services.watcher
    simulator.set_status(BEV_VIN, mileage=3000)
    await watcher.cycle(_at(BERLIN, M, 1, 0, 10))
    simulator.set_status(BEV_VIN, mileage=3042)
    await watcher.cycle(_at(BERLIN, N, 1, 9, 0))
    summary = await member.wait_for_bot_message(named(M))
    assert BEV_VIN[-4:] in (summary.caption or "") and "42 km" in (summary.caption or ""), summary.caption
    await watcher.cycle(_at(BERLIN, N, 1, 9, 30))
    assert len(summaries(member, named(M))) == 1 and summaries(owner, named(M)) == []
