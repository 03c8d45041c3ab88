"""A quiet car (an i3, iDrive 6) through BMW CarData, end to end: the bot in the sandbox, CarData's simulator
over HTTP and its stream over TLS MQTT. Such a car streams nothing while it charges: the end of a charge
comes as a burst (at 100 %, or at the next switch-off) with no active state before it, and is pushed once,
recorded once, across a restart; a switch-off after a drive is no charge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from telegram.ext import Application

from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.config import Settings
from bot.sandbox.driver import SandboxUser
from tests.chat.test_cardata import OWNER, cardata_of, garage_of, link_cardata, texts_of
from tests.support.bot import fast_client, running_bot
from tests.support.waits import until

# The device flow polled every second; the default account's two i3s are quiet, as real i3s are.
pytestmark = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)

FINISHED, STOPPED = "has finished charging", "stopped charging before it was full"
BEV = f"i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})"


def reported(application: Application, after: float | None = None) -> Callable[[], bool]:
    """Whether the detector has decided on the BEV's last report (one later than `after`, the time of an
    earlier one): the snapshot at linking, or a burst."""
    cardata = cardata_of(application)

    def decided() -> bool:
        # The report the detector last decided on, not the state's newest value: a burst's first message is
        # in the state before the detector has even begun to wait it out.
        track = cardata.store.cardata_track(OWNER, DEFAULT_BEV_VIN)
        return (
            track is not None
            and track.deadline is None
            and (after is None or (track.known_at is not None and track.known_at > after))
        )

    return decided


def reported_at(application: Application) -> float:
    """When the BEV last reported, as the bot knows it."""
    state = cardata_of(application).state(OWNER, DEFAULT_BEV_VIN)
    assert state is not None and state.updated_at is not None
    return state.updated_at.timestamp()


@pytest.fixture
async def linked(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> AsyncIterator[Application]:
    """Linked, streaming, and the snapshot taken at linking decided on (the level the bot knows: 64 %)."""
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    await until(reported(cardata_bot), "the snapshot at linking decided on")
    yield cardata_bot


async def test_a_quiet_i3_charged_to_100_is_pushed_once_and_recorded_once(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    sim.plug_in(DEFAULT_BEV_VIN)  # charging, silently
    sim.advance(40 * 60)  # 64 % -> 100 % at 1 % a minute: then the car reports, all its keys at once
    full = await user.wait_for_bot_message(FINISHED)
    text = full.text or ""
    assert BEV in text and "64 % → 100 %" in text and "charge goal reached" in text, text
    assert "charged for" not in text  # when a quiet car's charge began is not known

    before = reported_at(linked)
    sim.advance(60)
    sim.switch_off(DEFAULT_BEV_VIN)  # the same values again: no second charge
    await until(reported(linked, before), "the switch-off decided on")

    user.send("/history")
    shown = await user.wait_for_bot_message("Charging history of")
    charges = [line for line in (shown.text or "").splitlines() if " · " in line]
    # BMW's three charges of the past week and this one, recorded once (BMW's measured kWh joined to it).
    assert len(charges) == 4, shown.text
    assert charges[0].split(" · ")[1] == "64–100 %" and charges[0].endswith("🔋 complete"), shown.text
    assert len(garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)) == 1
    assert len(texts_of(user, FINISHED)) == 1 and not texts_of(user, STOPPED), user.transcript()


async def test_a_quiet_i3_stopped_by_the_owner_is_pushed_at_the_next_switch_off(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    sim.plug_in(DEFAULT_BEV_VIN)
    sim.advance(6 * 60)  # 70 %
    sim.finish_charging(DEFAULT_BEV_VIN)  # the owner stops it: a quiet car says nothing yet
    sim.advance(60)
    sim.switch_off(DEFAULT_BEV_VIN)
    stopped = await user.wait_for_bot_message(STOPPED)
    text = stopped.text or ""
    assert BEV in text and "64 % → 70 %" in text and "stopped by the driver" in text, text

    before = reported_at(linked)
    sim.advance(60)
    sim.switch_off(DEFAULT_BEV_VIN)  # switched on and off again: the same report
    await until(reported(linked, before), "the second switch-off decided on")
    assert len(texts_of(user, STOPPED)) == 1 and not texts_of(user, FINISHED), user.transcript()
    [session] = garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)
    assert (session.soc_start, session.soc_end, session.ended) == (64, 70, "stopped")


async def test_a_refresh_after_the_full_charge_and_the_unplug_pushes_that_charge_no_second_time(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    # The soak's doubled ends (benchmarks/README.md, "Soak"): the stream stamps a value in whole seconds,
    # a REST snapshot the same value in milliseconds, so the last charge's end reason read again by a
    # Refresh looked stamped after the burst that had brought it.
    sim = cardata_simulator
    sim.plug_in(DEFAULT_BEV_VIN)
    sim.advance(40 * 60)  # 100 %: the burst, pushed
    await user.wait_for_bot_message(FINISHED)
    await until(reported(linked), "the end burst decided on")
    sim.advance(3 * 60)
    sim.unplug(DEFAULT_BEV_VIN)  # NOCHARGING, kept for the next burst: a quiet car says nothing yet
    sim.advance(10 * 60)
    before = reported_at(linked)
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    user.press(status, "Refresh")  # the snapshot: unplugged, 100 %, the charge's end reason of 13 min ago
    await until(reported(linked, before), "the Refresh's snapshot decided on")
    await cardata_of(linked).detector.drain()
    assert "not plugged in" in (user.now(status).text or ""), user.transcript()
    assert len(texts_of(user, FINISHED)) == 1 and not texts_of(user, STOPPED), user.transcript()
    assert len(garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)) == 1


async def test_a_switch_off_after_a_drive_pushes_nothing(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    before = reported_at(linked)
    sim.move(DEFAULT_BEV_VIN, 48.2, 11.6)
    sim.set_soc(DEFAULT_BEV_VIN, 60)  # the drive used some charge
    sim.advance(60)
    sim.switch_off(DEFAULT_BEV_VIN)  # a burst: NOCHARGING, the last charge's end reason, 60 %
    await until(reported(linked, before), "the switch-off decided on")
    assert cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).mileage_km == 23421  # the burst was read
    assert not texts_of(user, FINISHED) and not texts_of(user, STOPPED), user.transcript()
    assert garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN) == []

    sim.plug_in(DEFAULT_BEV_VIN)  # the next charge is pushed, from the level of that switch-off
    sim.advance(45 * 60)
    full = await user.wait_for_bot_message(FINISHED)
    assert "60 % → 100 %" in (full.text or ""), full.text
    assert len(texts_of(user, FINISHED)) == 1 and not texts_of(user, STOPPED), user.transcript()


async def test_a_restart_between_the_burst_and_the_push_still_pushes_once(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    settings = cardata_bot_settings.model_copy(update={"cardata_charge_debounce_seconds": 3.0})
    async with running_bot(settings, fast_client(simulator_url)) as application:
        await link_cardata(user, sim)
        await cardata_of(application).supervisor.wait_connected(OWNER)
        await until(reported(application), "the snapshot at linking decided on")
        store = cardata_of(application).store
        sim.plug_in(DEFAULT_BEV_VIN)
        sim.advance(40 * 60)
        await until(
            lambda: (t := store.cardata_track(OWNER, DEFAULT_BEV_VIN)) is not None and t.deadline is not None,
            "the burst seen",
        )
        # stopped while the burst is still being waited out
    assert not texts_of(user, FINISHED)

    async with running_bot(settings, fast_client(simulator_url)) as application:
        full = await user.wait_for_bot_message(FINISHED)
        assert "64 % → 100 %" in (full.text or ""), full.text
        await cardata_of(application).detector.tick()
        assert len(garage_of(application).charge_sessions(OWNER, DEFAULT_BEV_VIN)) == 1

    assert len(texts_of(user, FINISHED)) == 1, user.transcript()


async def test_linked_while_charging_like_the_demos_i3_the_report_at_100_is_pushed_once(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    sim.set_soc(DEFAULT_BEV_VIN, 80)
    sim.plug_in(DEFAULT_BEV_VIN)  # charging when linked: the snapshot at linking shows it
    await link_cardata(user, sim)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    await until(reported(cardata_bot), "the snapshot at linking decided on")
    sim.advance(20 * 60)  # 100 %: the car reports
    full = await user.wait_for_bot_message(FINISHED)
    assert "80 % → 100 %" in (full.text or ""), full.text
    before = reported_at(cardata_bot)
    sim.advance(60)
    sim.switch_off(DEFAULT_BEV_VIN)
    await until(reported(cardata_bot, before), "the switch-off decided on")
    assert len(texts_of(user, FINISHED)) == 1 and not texts_of(user, STOPPED), user.transcript()
