"""Drives of a live car (iDrive 7 and later) through BMW CarData, end to end: the bot in the sandbox,
CarData's simulator over HTTP and its stream over TLS MQTT. Such a car streams each change while it drives,
one value at a time: a drive closes once its mileage and position have settled for `SETTLED_SECONDS` on the
bot's clock, from the first mileage rise after parking; recorded once, across a restart too.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from telegram.ext import Application

from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.config import Settings
from bot.drives import SETTLED_SECONDS
from bot.sandbox.driver import SandboxUser
from tests.cardata.test_drives import mileage, trips
from tests.chat.test_cardata import OWNER, cardata_of, garage_of, link_cardata
from tests.support.bot import fast_client, running_bot
from tests.support.waits import until

pytestmark = pytest.mark.parametrize(
    "cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True
)


def streamed(application: Application, km: int | None = None, soc: int | None = None) -> Callable[[], bool]:
    """Whether the bot has the BEV's odometer at `km` (and level at `soc`) from the stream."""

    def arrived() -> bool:
        state = cardata_of(application).state(OWNER, DEFAULT_BEV_VIN)
        return (
            state is not None
            and km in (None, state.mileage_km)
            and soc in (None, state.soc)
            and state.position is not None
        )

    return arrived


async def drive_to(application: Application, sim: CardataSimulator, lat: float, lon: float) -> float:
    """Drive there (the car streams mileage and position as it goes); when the mileage rose."""
    at = sim.now()
    sim.move(DEFAULT_BEV_VIN, lat, lon)
    await until(streamed(application, mileage(sim)), "the drive streamed")
    return at


async def test_a_live_cars_drive_closes_once_its_mileage_and_position_settle(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    await link_cardata(user, sim)
    cardata = cardata_of(cardata_bot)
    await cardata.supervisor.wait_connected(OWNER)
    await until(streamed(cardata_bot), "the snapshot at linking")
    await cardata.settle_drives(sim.now())  # parked where it was linked: the first drive starts here
    start_km = mileage(sim)

    started = await drive_to(cardata_bot, sim, 48.2, 11.6)
    sim.advance(120)
    await drive_to(cardata_bot, sim, 48.25, 11.65)  # still the same drive: it did not settle between
    sim.set_soc(DEFAULT_BEV_VIN, 58)
    await until(streamed(cardata_bot, soc=58), "the level streamed")
    parked = sim.now() + 1  # the longitude comes a second after the mileage
    await cardata.settle_drives(sim.now() + SETTLED_SECONDS - 5)  # stopped, not yet settled
    assert not garage_of(cardata_bot).drives(OWNER, DEFAULT_BEV_VIN)

    km = mileage(sim) - start_km
    sim.advance(SETTLED_SECONDS + 1)
    await cardata.settle_drives(sim.now())
    await cardata.settle_drives(sim.now() + 60)  # decided again: the same drive
    [drive] = garage_of(cardata_bot).drives(OWNER, DEFAULT_BEV_VIN)
    assert drive.km == km and drive.started_at == pytest.approx(started, abs=1), drive
    # The stream stamps whole seconds, and a loaded machine lets the wall clock run on between two looks.
    assert drive.ended_at == pytest.approx(parked, abs=2), drive
    assert (drive.soc_start, drive.soc_end, drive.to_lat, drive.to_lon) == (64, 58, 48.25, 11.65), drive

    shown = (await trips(user)).text or ""
    assert f"1 drive, {km} km" in shown and "🔋 64 % → 58 %" in shown, shown
    # Its start is known, so the note on quiet cars' times is not shown.
    assert "The car reports only when it is parked" not in shown, shown


async def test_a_restart_mid_drive_neither_loses_nor_doubles_it(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await link_cardata(user, sim)
        cardata = cardata_of(application)
        await cardata.supervisor.wait_connected(OWNER)
        await until(streamed(application), "the snapshot at linking")
        await cardata.settle_drives(sim.now())
        start_km = mileage(sim)
        started = await drive_to(application, sim, 48.2, 11.6)

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        cardata = cardata_of(application)
        await cardata.supervisor.wait_connected(OWNER)
        sim.advance(SETTLED_SECONDS + 1)  # the longitude came a second after the mileage
        await cardata.settle_drives(sim.now())
        [drive] = garage_of(application).drives(OWNER, DEFAULT_BEV_VIN)
        assert drive.km == mileage(sim) - start_km and drive.started_at == pytest.approx(started, abs=1)

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        cardata = cardata_of(application)
        await cardata.supervisor.wait_connected(OWNER)
        await cardata.settle_drives(sim.now() + SETTLED_SECONDS)
        assert len(garage_of(application).drives(OWNER, DEFAULT_BEV_VIN)) == 1
