"""While a quiet car (an i3, iDrive 6) charges, it streams nothing: /status shows what it last reported, as
old as it is, and an estimated level now, from that report, the time since and the car's charge rate. End to
end: the bot in the sandbox, CarData's simulator over HTTP and its stream over TLS MQTT. The bot's clock is
the simulator's, so the estimate follows simulated time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from telegram.ext import Application

from bot.car_status import Part
from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.sandbox.driver import SandboxUser
from tests.cardata.test_quiet import reported
from tests.chat.test_cardata import OWNER, cardata_of, choose, garage_of, link_cardata, texts_of
from tests.support.waits import until

# The device flow polled every second; the simulator's i3s gain 0.1 % a minute (6 % an hour), slower than
# the bot's default estimate of 11 % an hour, so a charge does not end (and report) within a test.
SLOW = {"poll_interval": 1, "charge_percent_per_minute": 0.1}
QUIET = pytest.mark.parametrize("cardata_simulator", [SLOW], indirect=True)
LIVE = pytest.mark.parametrize("cardata_simulator", [{**SLOW, "kind": "live"}], indirect=True)
HOUR = 3600.0


@pytest.fixture
async def linked(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> AsyncIterator[Application]:
    """Linked and streaming (the BEV at 64 %, not plugged in), the snapshot at linking decided on, on the
    simulator's clock."""
    await link_cardata(user, cardata_simulator)
    cardata = cardata_of(cardata_bot)
    await cardata.supervisor.wait_connected(OWNER)
    await until(reported(cardata_bot), "the snapshot at linking decided on")
    cardata.clock = cardata_simulator.now
    yield cardata_bot


async def plugged_in_and_reported(application: Application, sim: CardataSimulator) -> None:
    """The owner plugs the car in and switches it off: a quiet car reports once, charging at 64 %."""
    sim.plug_in(DEFAULT_BEV_VIN)
    at = sim.now()
    sim.switch_off(DEFAULT_BEV_VIN)

    def burst() -> bool:  # its charge level too: the burst's messages come one by one
        status = cardata_of(application).status(OWNER, DEFAULT_BEV_VIN)
        charge = status.reported_at.get(Part.CHARGE)
        return status.charging and charge is not None and charge.timestamp() >= int(at)

    await until(burst, "the burst")


async def status_text(user: SandboxUser) -> str:
    shown = len(texts_of(user, "🕒"))
    user.send("/status")
    await user.wait_for(lambda u: len(texts_of(u, "🕒")) > shown)
    return texts_of(user, "🕒")[-1]


@QUIET
async def test_a_quiet_i3_charging_shows_an_estimate_that_grows_to_100_at_most(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    await plugged_in_and_reported(linked, sim)
    text = await status_text(user)
    # Just reported: an estimate would only repeat the reported level.
    assert "🔋 64 %" in text and "⚡ charging" in text and "📈" not in text and "estimate" not in text, text

    sim.advance(2 * 60)  # 64.4 %: still 64 % as shown, nothing to add
    text = await status_text(user)
    assert "📈" not in text, text

    sim.advance(2 * HOUR)  # the car charges on, silently: its report stays as it was
    text = await status_text(user)
    assert "🔋 64 %" in text and "📈 ≈ 86 % now (estimate: 11 % an hour" in text, text

    sim.advance(2 * HOUR)  # 64 % + 4 h at 11 % an hour would be 108 %
    text = await status_text(user)
    assert "📈 ≈ 100 % now (estimate" in text, text


@LIVE
async def test_a_live_car_charging_shows_no_estimate(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    sim.plug_in(DEFAULT_BEV_VIN)
    status = cardata_of(linked).status
    await until(lambda: status(OWNER, DEFAULT_BEV_VIN).charging, "the charge streamed")
    sim.advance(HOUR)  # it streams every change: what it said last holds
    text = await status_text(user)
    assert "⚡ charging" in text and "≈" not in text and "estimate" not in text, text


@QUIET
async def test_a_german_owner_sees_the_estimate_in_german(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    choose(linked, language="de")
    await plugged_in_and_reported(linked, cardata_simulator)
    cardata_simulator.advance(HOUR / 2)
    text = await status_text(user)
    assert "📈 ≈ 70 % jetzt (geschätzt: 11 % pro Stunde seit der Meldung des Ladestands)" in text, text


# At BMW's 1 % a minute: a charge ends within the hour the stream's token lasts.
@pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)
async def test_the_estimate_goes_by_the_rate_of_the_cars_recorded_charges(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    sim.plug_in(DEFAULT_BEV_VIN)
    sim.advance(40 * 60)  # 64 % -> 100 %: the car reports, and the charge is recorded
    await until(
        lambda: bool(garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)), "the charge recorded"
    )
    [past] = garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)
    assert past.soc_start is not None and past.soc_end is not None
    rate = (past.soc_end - past.soc_start) / past.seconds * HOUR
    assert 15 < rate <= 60  # from the report before it (linking's, an hour older): rather slow than fast

    sim.unplug(DEFAULT_BEV_VIN)
    sim.set_soc(DEFAULT_BEV_VIN, 50)  # a drive
    await plugged_in_and_reported(linked, sim)
    sim.advance(HOUR / 2)  # the car is at 80 %, silent
    text = await status_text(user)
    assert f"📈 ≈ {50 + rate / 2:.0f} % now (estimate: {rate:.0f} % an hour" in text, text
