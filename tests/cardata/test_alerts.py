"""Alerts of CarData cars as real ones report (issue 17): a quiet car (iDrive 6, every i3) reports only at
switch-off and at a full charge, so its values are as old as its last report, and "plugged in but not
charging" or "left open" must not fire on them; a live car, which streams each change, still gets both.
/alerts says which delay applies: CarData's reports, not the i Remote polling. Through the sandbox, the
CarData simulator over HTTP and its stream over TLS MQTT.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from telegram.ext import Application

from bot.car_status import CarStatus
from bot.cardata.simulator import DEFAULT_BEV_VIN, DEFAULT_REX_VIN, CardataBroker, CardataSimulator
from bot.cardata.simulator.fleet import REST_ONLY_KEYS
from bot.cardata.simulator.wire import StreamMessage
from bot.chat import texts
from bot.sandbox.driver import SandboxUser
from tests.chat.test_cardata import OWNER, cardata_of, linked, texts_of
from tests.support.waits import until

__all__ = ["linked"]  # the fixture, shared with tests/chat/test_cardata.py

QUIET = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1, "kind": "quiet"}], indirect=True)
LIVE = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True)
CAR = f"i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})"
REX = f"i3 94 (+REX) (…{DEFAULT_REX_VIN[-4:]})"


async def switched_off(app: Application, sim: CardataSimulator, shows: Callable[[CarStatus], bool]) -> None:
    """The quiet car is switched off: wait until its burst (one message a key) has brought what `shows`."""
    sim.switch_off(DEFAULT_BEV_VIN)
    at = datetime.fromtimestamp(sim.now(), UTC).replace(microsecond=0)
    cardata = cardata_of(app)

    def all_in() -> bool:  # every part of the status from this burst, not only the first messages of it
        status = cardata.status(OWNER, DEFAULT_BEV_VIN)
        return shows(status) and all(reported >= at for reported in status.reported_at.values())

    await until(all_in, "the switch-off burst")


@QUIET
async def test_a_quiet_cars_stale_plug_state_fires_no_not_charging_alert(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, cardata = cardata_simulator, cardata_of(linked)
    sim.plug_in(DEFAULT_BEV_VIN, charging=False)  # plugged in, waiting: a quiet car says nothing
    await switched_off(linked, sim, lambda s: s.plugged_in is True and s.charging_state == "NOCHARGING")
    sim.start_charging(DEFAULT_BEV_VIN)  # not reported: the car is quiet while it charges
    sim.advance(20 * 60)  # 1 %/min: 84 %
    sim.finish_charging(DEFAULT_BEV_VIN)  # the owner stops it below 100 %: reported at the next switch-off
    sim.advance(30 * 60)  # (within the id token's hour: the stream stays up)
    await cardata.alert_tick(sim.now())  # the plug state is 50 min old: it says nothing of now
    assert not texts_of(user, "is plugged in but"), user.transcript()

    # Still plugged in, the charge ended by the driver: it did charge.
    await switched_off(linked, sim, lambda s: s.plugged_in is True and s.charging_state == "CHARGINGENDED")
    await cardata.alert_tick(sim.now() + 60 * 60)
    assert not texts_of(user, "is plugged in but"), user.transcript()


@QUIET
async def test_a_quiet_cars_burst_read_a_message_at_a_time_after_a_refresh_fires_no_not_charging(
    linked: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_broker: CardataBroker,
) -> None:
    """The soak's quiet i3s (issue 20): a Refresh while the car charges reads its plug state as of the
    plug-in; the burst at 100 % then comes a key a message, its charging state before its plug state, its
    level and end reason last. Decided between those messages, the car read "not charging" (the burst's
    state) as of the plug-in (the snapshot's plug), then both as of the burst: plugged in and not charging
    for the whole charge. The last charge ended with the cable pulled, so nothing else held the alert back
    until the burst's end reason and level came."""
    sim, cardata = cardata_simulator, cardata_of(linked)
    sim.plug_in(DEFAULT_BEV_VIN)  # a charge stopped short by pulling the cable (within the id token's hour)
    sim.advance(10 * 60)
    sim.unplug(DEFAULT_BEV_VIN)
    await switched_off(linked, sim, lambda s: s.end_reason == "CONNECTOR_REMOVED")
    sim.advance(5 * 60)
    sim.plug_in(DEFAULT_BEV_VIN)  # charging, silently: 74 % -> 100 % at 1 % a minute
    sim.advance(5 * 60)
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    user.press(status, "Refresh")
    await until(lambda: cardata.status(OWNER, DEFAULT_BEV_VIN).charging, "the Refresh read the charge")
    sim.lose_next_burst(DEFAULT_BEV_VIN)  # so that this test hands its messages to the broker one by one
    sim.advance(22 * 60)  # 100 %: the car reports, every key as of now
    car = sim.car(DEFAULT_BEV_VIN)
    for key, (value, unit, at) in list(car.values.items()):
        if key in REST_ONLY_KEYS:
            continue
        message = StreamMessage(car.gcid, car.vin, key, value, unit, at)
        cardata_broker.publish(message.topic, json.dumps(message.payload()).encode())

        def applied(key: str = key, at: float = at) -> bool:
            state = cardata.state(OWNER, DEFAULT_BEV_VIN)
            value = None if state is None else state.values.get(key)
            return (
                value is not None
                and value.timestamp is not None
                and value.timestamp.timestamp() >= math.floor(at)
            )

        await until(applied, f"the burst's {key}")
        await cardata.alert_tick(sim.now())  # decided with this message in, before the next one
    await user.wait_for_bot_message("has finished charging")
    await cardata.alert_tick(sim.now() + 60)
    assert not texts_of(user, "is plugged in but"), user.transcript()


@QUIET
async def test_a_quiet_cars_switch_off_report_fires_no_left_open_alert(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, cardata = cardata_simulator, cardata_of(linked)
    sim.set_locked(DEFAULT_BEV_VIN, False)
    # The driver switches off, still inside: the burst says UNLOCKED.
    await switched_off(linked, sim, lambda status: status.lock_state == "UNLOCKED")
    sim.set_locked(DEFAULT_BEV_VIN, True)  # then locks the car, which a quiet car does not report
    sim.advance(60 * 60)
    await cardata.alert_tick(sim.now())
    assert not texts_of(user, "is not closed up"), user.transcript()


@LIVE
async def test_a_live_cars_fresh_plug_state_still_fires_not_charging(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, cardata = cardata_simulator, cardata_of(linked)
    sim.plug_in(DEFAULT_BEV_VIN, charging=False)  # streamed at once: plugged in, not charging
    await until(lambda: cardata.status(OWNER, DEFAULT_BEV_VIN).plugged_in is True, "the plug streamed")
    await cardata.alert_tick(sim.now() + 14 * 60)  # on in /alerts by default, after 15 min
    assert not texts_of(user, "is plugged in but")
    sim.advance(15 * 60)  # nothing streamed meanwhile: a live car would have said so
    await cardata.alert_tick(sim.now())
    alert = await user.wait_for_bot_message("is plugged in but")
    assert alert.text == f"🔌 <b>{CAR}</b> is plugged in but has not been charging for 15 min.\n🔋 64 %"


@LIVE
async def test_a_live_cars_open_window_on_a_locked_car_is_left_open(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, cardata = cardata_simulator, cardata_of(linked)
    sim.set_locked(DEFAULT_BEV_VIN, True, "LOCKED")
    sim.set_window(DEFAULT_BEV_VIN, "row2.passenger", "OPEN")
    await until(lambda: cardata.status(OWNER, DEFAULT_BEV_VIN).open_items, "the window streamed")
    sim.advance(10 * 60)
    await cardata.alert_tick(sim.now())
    alert = await user.wait_for_bot_message("is not closed up")
    assert "unlocked" not in (alert.text or "")  # LOCKED is locked
    assert alert.text == (
        f"⚠️ <b>{CAR}</b> has been parked for 10 min and is not closed up:\n🚪 open: "
        f"{texts.OPEN_NAMES['windowPassengerRear']}"
    )


@QUIET
async def test_alerts_of_a_quiet_car_say_what_cardata_reports_and_when(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/alerts")
    menu = await user.wait_for_bot_message("Alerts about your cars")
    text = menu.text or ""
    assert texts.ALERTS_TIMING not in text  # no i Remote polling here
    assert texts.ALERTS_TIMING_CARDATA in text
    # The owner's two i3s are both quiet: what that means is said once, naming both.
    assert text.count("reports to BMW CarData") + text.count("report to BMW CarData") == 1, text
    both = texts.ALERTS_QUIET_CARS.format(2, cars=f"<b>{CAR}</b>, <b>{REX}</b>")
    assert both in text
    user.press(menu, "alr:level:on")  # the menu stays honest when edited
    await user.wait_for(lambda u: "✅ <b>Charge level</b>" in (u.now(menu).text or ""))
    assert both in (user.now(menu).text or "")


@LIVE
async def test_alerts_of_a_live_car_say_cardata_reports_each_change(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/alerts")
    menu = await user.wait_for_bot_message("Alerts about your cars")
    assert texts.ALERTS_TIMING_CARDATA in (menu.text or "")
    assert texts.ALERTS_TIMING not in (menu.text or "")
    assert "only when switched off" not in (menu.text or "")


@QUIET
async def test_the_alerts_tick_over_every_car_lets_the_bot_do_other_work_between_cars(
    linked: Application, cardata_simulator: CardataSimulator
) -> None:
    """The timed alerts are decided for every streamed car in turn. Each car is a few store reads, so a
    thousand cars held the event loop for a few hundred milliseconds at each tick, in which no chat was
    answered and no stream message handled (the soak's event-loop lag p99 was 206 ms at 1,000 owners)."""
    cardata = cardata_of(linked)
    assert len(cardata.supervisor.cars()) == 2  # the BEV and the REX
    tick = asyncio.create_task(cardata.alert_tick(cardata_simulator.now()))
    seen_during: list[bool] = []

    async def other_work() -> None:  # a chat answer, a stream message: whatever else is ready
        seen_during.append(not tick.done())

    await asyncio.gather(tick, other_work())
    assert seen_during == [True]
