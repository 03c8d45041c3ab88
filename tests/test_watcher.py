"""The charge watcher end to end: the real bot against the loopback Bot API server and the simulator.

Cycles run directly (not on the JobQueue's timer) at a clock far ahead of the wall clock, so every car is due
on each cycle and the bot's own ticks, on the wall clock, find nothing due and never interleave.
"""

from __future__ import annotations

import time

from telegram.ext import Application

from bot import app
from bot.bmw.simulator import Fault
from bot.chat.rate_limit import SERVER_ERROR_RETRIES
from bot.store import Store
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot
from tests.support.disk import refuse
from tests.support.watcher import FINISHED, STOPPED, Cycles, short_charge_unseen


def _store(application: Application) -> Store:
    return application.bot_data.services.garage.store


def _labels(message) -> list[str]:
    return [button.text for row in message.buttons for button in row]


def _pushes(user, contains: str) -> list:
    return [m for m in user.bot_messages if m.text and contains in m.text]


async def _charge(simulator, vin: str = BEV_VIN, soc: int = 80) -> None:
    simulator.set_status(vin, chargingLevelHv=soc)
    simulator.plug_in(vin, charging=True)


async def test_full_charge_is_pushed_once_with_numbers_and_buttons(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(301)
    await link(alice)
    await cycle(bot)  # first sight: neither car charging
    await _charge(simulator, soc=80)
    report = await cycle(bot)
    assert report.polled == 2 and report.pushed == 0  # "started" is off by default
    watch = _store(bot).watch(301, BEV_VIN)
    assert watch.charging_status == "CHARGING" and watch.soc_at_start == 80 and watch.charging_since

    simulator.advance(25 * 60)  # 1 %/min: full after 20 minutes
    assert (await cycle(bot)).pushed == 1
    await cycle(bot)
    await cycle(bot)
    pushes = _pushes(alice, FINISHED)
    assert len(pushes) == 1
    push = pushes[0]
    car = simulator.vehicle(BEV_VIN).status
    assert "80 % → 100 %" in push.text
    assert f"{car['remainingRangeElectric']} km electric" in push.text
    assert "charged for 20 min" in push.text and "charge goal reached" in push.text
    assert BEV_VIN[-4:] in push.text and REX_VIN[-4:] not in push.text
    assert _labels(push) == ["🔄 Status", "🗺 Range map"]
    watch = _store(bot).watch(301, BEV_VIN)
    assert watch.charging_since is None and watch.last_event.startswith("finished:")

    alice.press(push, "Status")  # Status refreshes that car, in place of the push
    status = await alice.wait_for_bot_message("updated")
    assert status.message_id == push.message_id and "100 %" in status.text


async def test_no_push_when_switched_off_in_notify(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(302)
    await link(alice)
    alice.send("/notify")
    menu = await alice.wait_for_bot_message("Which messages")
    assert menu.button("✅ Charge finished") and menu.button("⬜ Charging started")
    alice.press(menu, "Charge finished")
    # The menu is edited in place.
    await alice.wait_for(lambda u: "⬜ Charge finished" in _labels(u.messages[-1]))
    assert any("Charge finished: off" in (a.text or "") for a in alice.callback_answers())
    assert not _store(bot).notify_prefs(302).finished

    await cycle(bot)
    await _charge(simulator, soc=90)
    await cycle(bot)
    simulator.advance(15 * 60)
    await cycle(bot)
    await cycle(bot)
    assert _pushes(alice, FINISHED) == []
    assert _store(bot).watch(302, BEV_VIN).charging_since is None  # the session is closed, not pending

    menu = alice.messages[-1]
    alice.press(menu, "Charge finished")  # back on: the next charge is pushed
    await alice.wait_for(lambda u: "✅ Charge finished" in _labels(u.messages[-1]))
    await _charge(simulator, soc=95)
    await cycle(bot)
    simulator.advance(10 * 60)
    await cycle(bot)
    assert len(_pushes(alice, FINISHED)) == 1


async def test_started_push_when_enabled_but_not_for_a_car_already_charging(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(303)
    await link(alice)
    alice.send("/notify")
    alice.press(await alice.wait_for_bot_message("Which messages"), "Charging started")
    await alice.wait_for(lambda u: _store(bot).notify_prefs(303).started)
    await _charge(simulator, REX_VIN, soc=40)  # charging before the watcher ever saw it
    await cycle(bot)
    assert _pushes(alice, "started charging") == []

    await _charge(simulator, BEV_VIN, soc=50)
    await cycle(bot)
    await cycle(bot)
    started = _pushes(alice, "started charging")
    assert len(started) == 1 and BEV_VIN[-4:] in started[0].text
    assert "50 %" in started[0].text and "to full" in started[0].text


async def test_unplugged_early_is_one_stopped_push(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(304)
    await link(alice)
    await cycle(bot)
    await _charge(simulator, soc=30)
    await cycle(bot)
    simulator.advance(10 * 60)
    simulator.unplug(BEV_VIN)
    await cycle(bot)
    await cycle(bot)
    stopped = _pushes(alice, STOPPED)
    assert len(stopped) == 1 and _pushes(alice, FINISHED) == []
    assert "30 % → 40 %" in stopped[0].text and "the cable was unplugged" in stopped[0].text
    assert "charged for 10 min" in stopped[0].text


async def test_real_car_endings_errors_and_an_interruption(bot, sandbox, simulator):
    """Real cars read INVALID/NOT_CHARGING after a charge, never FINISHED_*. An error is pushed by default; a
    charge that stops short with the cable still in, not by the owner, is an opt-in interruption."""
    cycle = Cycles()
    alice = sandbox.user(305)
    await link(alice)
    await cycle(bot)
    await _charge(simulator, soc=60)
    await cycle(bot)
    simulator.set_status(
        BEV_VIN,
        chargingStatus="NOT_CHARGING",
        lastChargingEndReason="END_REQUESTED_BY_DRIVER",
        lastChargingEndResult="SUCCESS",
    )
    await cycle(bot)
    assert len(_pushes(alice, STOPPED)) == 1 and "stopped by the driver" in _pushes(alice, STOPPED)[0].text

    await _charge(simulator, soc=70)
    await cycle(bot)
    simulator.set_status(
        BEV_VIN, chargingStatus="INVALID", connectionStatus="DISCONNECTED", lastChargingEndResult="FAILED"
    )
    await cycle(bot)
    assert len(_pushes(alice, "stopped charging with an error")) == 1

    await _charge(simulator, soc=70)
    await cycle(bot)
    simulator.set_status(BEV_VIN, chargingStatus="ERROR")
    await cycle(bot)
    assert len(_pushes(alice, "stopped charging with an error")) == 2

    await _charge(simulator, soc=70)
    await cycle(bot)
    simulator.set_status(BEV_VIN, chargingStatus="NOT_CHARGING", lastChargingEndReason="UNKNOWN")
    await cycle(bot)  # still plugged in, stopped short by nobody: "interrupted" is off by default
    assert _pushes(alice, "was interrupted") == []
    alice.send("/notify")
    alice.press(await alice.wait_for_bot_message("Which messages"), "Charging interrupted")
    await alice.wait_for(lambda u: _store(bot).notify_prefs(305).interrupted)
    await _charge(simulator, soc=70)
    await cycle(bot)
    simulator.set_status(BEV_VIN, chargingStatus="WAITING_FOR_CHARGING", lastChargingEndReason="UNKNOWN")
    await cycle(bot)
    await cycle(bot)
    assert len(_pushes(alice, "was interrupted")) == 1
    assert len(_pushes(alice, STOPPED)) == 1 and _pushes(alice, FINISHED) == []


async def test_restart_mid_charge_continues_the_session_and_pushes_once(
    bot_settings, sandbox, simulator, simulator_url
):
    cycle = Cycles()
    alice = sandbox.user(306)
    async with running_bot(bot_settings, fast_client(simulator_url)) as first:
        await link(alice)
        await cycle(first)
        await _charge(simulator, soc=80)
        await cycle(first)
        since = _store(first).watch(306, BEV_VIN).charging_since
    simulator.advance(5 * 60)
    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        await cycle(second)
        assert _store(second).watch(306, BEV_VIN).charging_since == since
        simulator.advance(20 * 60)
        await cycle(second)
        await cycle(second)
    async with running_bot(bot_settings, fast_client(simulator_url)) as third:
        await cycle(third)
    pushes = _pushes(alice, FINISHED)
    assert len(pushes) == 1 and "charged for 20 min" in pushes[0].text


async def test_push_that_failed_goes_out_once_on_a_later_cycle_even_after_restart(
    bot_settings, sandbox, simulator, simulator_url, bot_api
):
    cycle = Cycles()
    alice = sandbox.user(307)
    async with running_bot(bot_settings, fast_client(simulator_url)) as first:
        await link(alice)
        await cycle(first)
        await _charge(simulator, soc=90)
        await cycle(first)
        simulator.advance(15 * 60)
        # More 500s than the bot's own tries again of a request (bot/chat/rate_limit.py): the push fails.
        bot_api.inject("sendMessage", "error", status=500, times=SERVER_ERROR_RETRIES + 1)
        report = await cycle(first)
        assert report.push_failures == 1 and _pushes(alice, FINISHED) == []
        watch = _store(first).watch(307, BEV_VIN)
        assert watch.charging_status != "CHARGING" and watch.charging_since is not None  # persisted, unsent
    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        assert (await cycle(second)).pushed == 1
        await cycle(second)
    pushes = _pushes(alice, FINISHED)
    assert len(pushes) == 1 and "90 % → 100 %" in pushes[0].text


async def test_a_failing_account_does_not_hold_up_another(bot, sandbox, simulator):
    cycle = Cycles()
    bob_vins = simulator.add_account("bob@example.com", "bob-password")
    alice, bob = sandbox.user(308), sandbox.user(309, "Bob")
    await link(alice)
    await link(bob, "bob@example.com", "bob-password")
    await cycle(bot)
    await _charge(simulator, BEV_VIN, soc=90)
    await _charge(simulator, bob_vins[0], soc=90)
    await cycle(bot)
    simulator.add_fault(Fault(path=rf"{bob_vins[0]}/status$", kind="error", status=500, times=None))
    simulator.advance(15 * 60)
    report = await cycle(bot)
    assert report.failed == 1 and report.pushed == 1
    assert len(_pushes(alice, FINISHED)) == 1 and _pushes(bob, FINISHED) == []
    bob_watch = _store(bot).watch(309, bob_vins[0])
    assert bob_watch.failures == 1 and bob_watch.next_poll_at > cycle.now + 60  # backed off
    assert bob_watch.charging_status == "CHARGING"  # the charge is not forgotten meanwhile

    simulator.clear_faults()
    await cycle(bot)
    assert len(_pushes(bob, FINISHED)) == 1 and _store(bot).watch(309, bob_vins[0]).failures == 0
    assert len(_pushes(alice, FINISHED)) == 1


async def test_flood_limit_on_send_is_retried_and_the_push_arrives_once(bot, sandbox, simulator, bot_api):
    cycle = Cycles()
    alice = sandbox.user(310)
    await link(alice)
    await cycle(bot)
    await _charge(simulator, soc=95)
    await cycle(bot)
    simulator.advance(10 * 60)
    sends_before = len(bot_api.calls_to("sendMessage"))
    bot_api.inject("sendMessage", "flood", retry_after=1)
    report = await cycle(bot)
    assert report.pushed == 1 and report.push_failures == 0
    await cycle(bot)
    assert len(_pushes(alice, FINISHED)) == 1
    assert len(bot_api.calls_to("sendMessage")) - sends_before == 2  # the 429, then the retry


async def test_the_job_queue_runs_the_watcher_again_and_again(
    bot_settings, sandbox, simulator, simulator_url, monkeypatch
):
    monkeypatch.setattr(app, "TICK_SECONDS", 0.05)
    alice = sandbox.user(311)
    async with running_bot(bot_settings, fast_client(simulator_url)) as application:
        await link(alice)  # after the first ticks: only a later, re-booked tick can see these cars
        await alice.wait_for(lambda u: _store(application).watch(311, BEV_VIN).charging_status is not None)
        watch = _store(application).watch(311, BEV_VIN)
        assert watch.charging_status == "INVALID" and watch.next_poll_at > time.time() + 60  # idle: rarely


# --- a charge the watcher never saw running (docs/exactly-once-push.md) -------------------------------------


async def test_a_charge_begun_and_ended_between_two_idle_polls_is_pushed_once_and_recorded(
    bot, sandbox, simulator
):
    cycle = Cycles()
    alice = sandbox.user(312)
    await link(alice)
    simulator.set_status(BEV_VIN, chargingLevelHv=75)
    await cycle(bot)  # parked, unplugged, at 75 %: polled every 15 minutes
    assert _store(bot).watch(312, BEV_VIN).next_poll_at >= cycle.now + 15 * 60

    await short_charge_unseen(simulator, BEV_VIN, soc=75)  # the watcher never sees it charging
    assert (await cycle(bot)).pushed == 1
    for _ in range(3):
        assert (await cycle(bot)).pushed == 0
    [push] = _pushes(alice, FINISHED)
    assert "75 % → 80 %" in push.text and "charge goal reached" in push.text
    assert "charged for" not in push.text  # when it began is not known
    assert BEV_VIN[-4:] in push.text
    [session] = _store(bot).charge_sessions(312, BEV_VIN)
    assert (session.soc_start, session.soc_end, session.ended) == (75, 80, "full")

    alice.send("/history")
    listing = await alice.wait_for_bot_message("Charging history of")
    assert len([line for line in listing.text.splitlines() if "75–80 %" in line]) == 1

    # The next evening's charge is seen running: the usual push, with how long it ran.
    simulator.unplug(BEV_VIN)
    simulator.set_status(BEV_VIN, chargingLevelHv=60)
    await cycle(bot)
    await _charge(simulator, soc=90)
    await cycle(bot)
    simulator.advance(15 * 60)
    await cycle(bot)
    await cycle(bot)
    pushes = _pushes(alice, FINISHED)
    assert len(pushes) == 2 and "90 % → 100 %" in pushes[1].text and "charged for 10 min" in pushes[1].text
    assert len(_store(bot).charge_sessions(312, BEV_VIN)) == 2


async def test_an_unseen_charge_whose_push_failed_goes_out_once_after_a_restart_still_without_duration(
    bot_settings, sandbox, simulator, simulator_url, bot_api
):
    cycle = Cycles()
    alice = sandbox.user(313)
    async with running_bot(bot_settings, fast_client(simulator_url)) as first:
        await link(alice)
        simulator.set_status(BEV_VIN, chargingLevelHv=75)
        await cycle(first)
        await short_charge_unseen(simulator, BEV_VIN, soc=75)
        bot_api.inject("sendMessage", "error", status=500, times=SERVER_ERROR_RETRIES + 1)
        assert (await cycle(first)).push_failures == 1
        assert _pushes(alice, FINISHED) == []
    simulator.advance(60)
    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        assert (await cycle(second)).pushed == 1
        await cycle(second)
        assert len(_store(second).charge_sessions(313, BEV_VIN)) == 1
    [push] = _pushes(alice, FINISHED)
    assert "75 % → 80 %" in push.text and "charged for" not in push.text


async def test_an_unseen_charge_pushed_but_not_recorded_before_a_restart_is_repeated_once_never_lost(
    bot_settings, sandbox, simulator, simulator_url, monkeypatch
):
    """A process that stops between the push and its record (here: the record finds no room, and the bot
    restarts before it is written) sends that push once more, and only that once."""
    cycle = Cycles()
    alice = sandbox.user(314)
    async with running_bot(bot_settings, fast_client(simulator_url)) as first:
        await link(alice)
        simulator.set_status(BEV_VIN, chargingLevelHv=75)
        await cycle(first)
        await short_charge_unseen(simulator, BEV_VIN, soc=75)
        store, watcher = _store(first), first.bot_data.services.watcher
        push = watcher._push

        async def record_finds_no_room(notice) -> None:
            await push(notice)
            refuse(monkeypatch, store, "save_watch")

        monkeypatch.setattr(watcher, "_push", record_finds_no_room)
        await cycle(first)
        assert len(_pushes(alice, FINISHED)) == 1
    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        for _ in range(3):
            await cycle(second)
        assert len(_store(second).charge_sessions(314, BEV_VIN)) == 1
    pushes = _pushes(alice, FINISHED)
    assert len(pushes) == 2 and pushes[0].text == pushes[1].text and "75 % → 80 %" in pushes[0].text


async def test_the_first_poll_after_link_of_a_plugged_in_full_car_pushes_nothing(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(315)
    simulator.set_status(BEV_VIN, chargingLevelHv=80)
    await short_charge_unseen(simulator, BEV_VIN, soc=95)  # full before the bot knew the car
    await link(alice)
    await cycle(bot)
    await cycle(bot)
    assert _pushes(alice, FINISHED) == [] and _store(bot).charge_sessions(315, BEV_VIN) == []

    simulator.unplug(BEV_VIN)  # a drive, and the evening's short charge, unseen: that one is pushed
    simulator.set_status(BEV_VIN, chargingLevelHv=70)
    await cycle(bot)
    await short_charge_unseen(simulator, BEV_VIN, soc=70)
    await cycle(bot)
    [push] = _pushes(alice, FINISHED)
    assert "70 % → 75 %" in push.text


async def test_a_level_that_rose_with_the_cable_out_is_no_charge_nor_a_level_that_reads_none(
    bot, sandbox, simulator
):
    """A REX's range extender only holds the level, and a long descent regenerates a percent or two: a level
    up at two polls with the cable out at both is not a charge. A level that reads None tells nothing: the
    last one read stays what the next is compared with."""
    cycle = Cycles()
    alice = sandbox.user(316)
    await link(alice)
    simulator.set_status(REX_VIN, chargingLevelHv=40)
    await cycle(bot)
    simulator.set_status(REX_VIN, chargingLevelHv=43)
    simulator.advance(20 * 60)
    await cycle(bot)
    await cycle(bot)
    assert _pushes(alice, FINISHED) == [] and _store(bot).charge_sessions(316, REX_VIN) == []

    del simulator.vehicle(REX_VIN).status["chargingLevelHv"]
    await cycle(bot)
    await short_charge_unseen(simulator, REX_VIN, soc=43)
    del simulator.vehicle(REX_VIN).status["chargingLevelHv"]
    await cycle(bot)  # plugged in, its level unread
    assert _pushes(alice, FINISHED) == []
    simulator.set_status(REX_VIN, chargingLevelHv=48)
    await cycle(bot)
    [push] = _pushes(alice, FINISHED)
    assert REX_VIN[-4:] in push.text and "43 % → 48 %" in push.text


async def test_an_unseen_charge_that_stopped_short_is_an_interruption_pushed_only_when_opted_in(
    bot, sandbox, simulator
):
    cycle = Cycles()
    alice = sandbox.user(317)
    await link(alice)
    simulator.set_status(BEV_VIN, chargingLevelHv=50)
    await cycle(bot)

    async def stopped_short(soc: int) -> None:  # a power cut, the cable still in: nobody's doing
        simulator.set_status(BEV_VIN, chargingLevelHv=soc)
        simulator.plug_in(BEV_VIN, charging=True)
        simulator.advance(3 * 60 + 30)
        simulator.set_status(BEV_VIN, chargingStatus="NOT_CHARGING", lastChargingEndReason="UNKNOWN")

    await stopped_short(50)
    await cycle(bot)
    await cycle(bot)
    assert _pushes(alice, "was interrupted") == [] and _pushes(alice, FINISHED) == []
    assert [s.ended for s in _store(bot).charge_sessions(317, BEV_VIN)] == ["interrupted"]

    alice.send("/notify")
    alice.press(await alice.wait_for_bot_message("Which messages"), "Charging interrupted")
    await alice.wait_for(lambda u: _store(bot).notify_prefs(317).interrupted)
    simulator.unplug(BEV_VIN)
    await cycle(bot)
    await stopped_short(53)
    await cycle(bot)
    await cycle(bot)
    [push] = _pushes(alice, "was interrupted")
    assert "53 % → 56 %" in push.text and "charged for" not in push.text
    assert len(_store(bot).charge_sessions(317, BEV_VIN)) == 2
