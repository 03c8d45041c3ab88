"""A quiet car (an i3, iDrive 6) reports the end of a charge in one burst, and BMW streams at QoS 0: when that
burst is lost and the charge should be over, the bot reads the car once (the call 🔄 Refresh makes) and
pushes the end it shows, saying BMW had not reported it. End to end: the bot in the sandbox, CarData's
simulator over HTTP and its stream over TLS MQTT, the bot's clock the simulator's. The late reads are
ticked by hand after each jump of the simulated clock (their loop sleeps on the real one).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from telegram.ext import Application

from bot.cardata.late import LATE_MARGIN_SECONDS
from bot.cardata.models.keys import CHARGING_STATUS
from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.config import Settings
from bot.sandbox.driver import SandboxUser
from tests.cardata.test_estimate import plugged_in_and_reported
from tests.cardata.test_quiet import FINISHED, STOPPED, reported
from tests.chat.test_cardata import (
    OWNER,
    cardata_of,
    choose,
    garage_of,
    link_cardata,
    texts_of,
    until,
)
from tests.support.bot import fast_client, running_bot

# The device flow polled every second; the default account's i3s are quiet and charge 1 % a minute, so a
# charge reported at 64 % says 36 minutes are left.
QUIET = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)
LIVE = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True)
MINUTE = 60.0
READ_LATE = "BMW had not reported it; read from the car at"
ZONE = "Europe/Berlin"


def snapshots(sim: CardataSimulator) -> int:
    """How many telematic snapshots the bot has read (linking's and Refresh's included)."""
    return len(sim.requests_to("/telematicData", "GET"))


async def link(application: Application, user: SandboxUser, sim: CardataSimulator) -> None:
    """Linked and streaming, the snapshot at linking decided on, on the simulator's clock."""
    await link_cardata(user, sim)
    cardata = cardata_of(application)
    await cardata.supervisor.wait_connected(OWNER)
    await until(reported(application), "the snapshot at linking decided on")
    cardata.clock = sim.now
    choose(application, time_zone=ZONE)


@pytest.fixture
async def linked(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> AsyncIterator[Application]:
    await link(cardata_bot, user, cardata_simulator)
    yield cardata_bot


async def charged_unreported(application: Application, sim: CardataSimulator) -> float:
    """Plugged in and reported charging at 64 % (36 minutes left, the car says), then charged to 100 % with
    its end burst lost: when the charge should be over, as the car said."""
    await plugged_in_and_reported(application, sim)
    over = sim.now() + 36 * MINUTE
    sim.lose_next_burst(DEFAULT_BEV_VIN)
    sim.advance(40 * MINUTE)  # 100 %: the car sent its burst; the stream never brought it
    assert sim.value(DEFAULT_BEV_VIN, CHARGING_STATUS) == "CHARGINGENDED"
    return over


def local_time(at: float) -> str:
    return f"{datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(ZONE)):%H:%M}"


@QUIET
async def test_a_lost_end_burst_is_read_once_from_the_car_and_pushed_once_saying_so(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, late = cardata_simulator, cardata_of(linked).late_reads
    over = await charged_unreported(linked, sim)
    before = snapshots(sim)
    await late.tick()  # the charge should be over, but the margin has not passed: BMW may still report
    assert snapshots(sim) == before

    sim.advance(over + LATE_MARGIN_SECONDS - sim.now() + MINUTE)
    read_at = sim.now()
    await late.tick(read_at)
    full = await user.wait_for_bot_message(FINISHED)
    text = full.text or ""
    assert "64 % → 100 %" in text and f"{READ_LATE} {local_time(read_at)}." in text, text
    assert "charged for" not in text  # when it ended is the car's word, how long it ran is not known
    assert snapshots(sim) == before + 1

    sim.advance(6 * 3600)  # nothing more to read: the charge is over
    await late.tick()
    await cardata_of(linked).detector.tick()
    assert snapshots(sim) == before + 1
    user.send("/history")
    shown = await user.wait_for_bot_message("Charging history of")
    charges = [line for line in (shown.text or "").splitlines() if " · " in line]
    assert charges[0].split(" · ")[1] == "64–100 %" and charges[0].endswith("🔋 complete"), shown.text
    assert len(garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)) == 1
    assert len(texts_of(user, FINISHED)) == 1 and not texts_of(user, STOPPED), user.transcript()


@QUIET
async def test_a_snapshot_that_still_shows_the_charge_is_the_one_read_of_that_charge(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, late = cardata_simulator, cardata_of(linked).late_reads
    await plugged_in_and_reported(linked, sim)
    sim.charge_percent_per_minute = 0.1  # slower than the car said (a cold battery): 36 minutes were not
    before = snapshots(sim)
    sim.advance(36 * MINUTE + LATE_MARGIN_SECONDS + MINUTE)
    await late.tick()
    assert snapshots(sim) == before + 1
    status = cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN)
    assert status.charging and status.soc == 69, status  # the snapshot: still charging

    sim.advance(6 * 3600)  # past what the snapshot's own time left says, and the estimate's 100 %
    await late.tick()
    assert snapshots(sim) == before + 1
    assert not texts_of(user, FINISHED) and not texts_of(user, READ_LATE), user.transcript()


@QUIET
async def test_no_late_read_when_the_days_reads_are_spent(
    cardata_bot_settings: Settings,
    simulator_url: str,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sim = cardata_simulator
    settings = cardata_bot_settings.model_copy(update={"cardata_daily_calls": 12})
    async with running_bot(settings, fast_client(simulator_url)) as application:
        await link(application, user, sim)
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        for left in range(cardata_of(application).client.calls_left(OWNER) - 1, -1, -1):
            user.press(status, "Refresh")
            await user.wait_for_bot_message(f"🔄 {left} of today's BMW calls left")
        over = await charged_unreported(application, sim)
        before = snapshots(sim)
        sim.advance(over + LATE_MARGIN_SECONDS - sim.now() + MINUTE)
        with caplog.at_level(logging.INFO, logger="bot.cardata.late"):
            await cardata_of(application).late_reads.tick()
        assert snapshots(sim) == before
        assert "no late read for owner 4242: the day's calls are spent" in caplog.text
        await cardata_of(application).detector.tick()
        assert not texts_of(user, FINISHED), user.transcript()


@QUIET
async def test_a_restart_between_the_snapshot_and_the_push_pushes_once_and_reads_once(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    settings = cardata_bot_settings.model_copy(update={"cardata_charge_debounce_seconds": 3.0})
    async with running_bot(settings, fast_client(simulator_url)) as application:
        await link(application, user, sim)
        over = await charged_unreported(application, sim)
        before = snapshots(sim)
        sim.advance(over + LATE_MARGIN_SECONDS - sim.now() + MINUTE)
        await cardata_of(application).late_reads.tick()
        track = cardata_of(application).store.cardata_track(OWNER, DEFAULT_BEV_VIN)
        assert track is not None and track.deadline is not None and track.late_read_at is not None
        read_at = track.late_read_at
        # stopped while the snapshot's end is still being waited out
    assert not texts_of(user, FINISHED)

    async with running_bot(settings, fast_client(simulator_url)) as application:
        cardata_of(application).clock = sim.now
        full = await user.wait_for_bot_message(FINISHED)
        assert f"{READ_LATE} {local_time(read_at)}." in (full.text or ""), full.text
        sim.advance(6 * 3600)
        await cardata_of(application).late_reads.tick()
        await cardata_of(application).detector.tick()
        assert len(garage_of(application).charge_sessions(OWNER, DEFAULT_BEV_VIN)) == 1

    assert snapshots(sim) == before + 1
    assert len(texts_of(user, FINISHED)) == 1, user.transcript()


@LIVE
async def test_a_live_car_is_never_read_late(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim, cardata = cardata_simulator, cardata_of(linked)
    sim.plug_in(DEFAULT_BEV_VIN)  # at 64 %, at most 36 minutes left, it streams
    await until(lambda: cardata.status(OWNER, DEFAULT_BEV_VIN).charging, "the charge streamed")
    sim.charge_percent_per_minute = 0.01  # slower than it said: not a percent more within the hour
    before = snapshots(sim)
    sim.advance(59 * MINUTE)  # it streams every change: its silence past its time left is no lost report
    await cardata.late_reads.tick()
    assert cardata.status(OWNER, DEFAULT_BEV_VIN).charging
    assert snapshots(sim) == before
