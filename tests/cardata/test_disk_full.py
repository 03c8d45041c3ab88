"""A full disk under the CarData half of the bot: the stream, the charge detector and its pushes, end to end
(the simulator's broker over TLS, the Bot API sandbox). A charge that ends while nothing can be written is
pushed once, now or once there is room again; never lost, never twice (docs/exactly-once-push.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from telegram.ext import Application

from bot.cardata.events import PUSH_RETRY_SECONDS
from bot.cardata.simulator import DEFAULT_BEV_VIN, DEFAULT_REX_VIN, CardataSimulator
from bot.drives import SETTLED_SECONDS
from bot.sandbox import SandboxUser
from bot.store import Store, StoreFull
from tests.cardata.test_drives import mileage
from tests.cardata.test_live_drives import drive_to, streamed
from tests.chat.test_cardata import OWNER, cardata_of, charging, garage_of, link_cardata, texts_of
from tests.support.disk import refuse
from tests.support.waits import until

FINISHED = "has finished charging"
# The device flow polled every second; the cars stream every change (live), their charge seen as it starts.
pytestmark = pytest.mark.parametrize(
    "cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True
)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def _errors(logs: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]


def full_after_the_first_push(
    monkeypatch: pytest.MonkeyPatch, pusher: Any, store: Store, method: str
) -> Callable[[], None]:
    """The disk fills as `pusher`'s first push leaves: its record (`store.<method>`) finds no room until the
    returned function (space returns) is called."""
    push, rooms = pusher._push, []

    async def disk_fills_meanwhile(*args: Any) -> None:
        await push(*args)
        if not rooms:  # once
            store.simulate_full_disk()
            rooms.append(refuse(monkeypatch, store, method))

    def room() -> None:
        store.simulate_full_disk(False)
        rooms[0]()

    monkeypatch.setattr(pusher, "_push", disk_fills_meanwhile)
    return room


async def _charging(application: Application, user: SandboxUser, sim: CardataSimulator) -> None:
    await link_cardata(user, sim)
    await cardata_of(application).supervisor.wait_connected(OWNER)
    sim.plug_in(DEFAULT_BEV_VIN)
    await until(charging(application, DEFAULT_BEV_VIN), "the BEV's charge seen")


async def test_a_charge_that_ends_while_nothing_can_be_written_is_pushed_once_there_is_room(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator, logs, monkeypatch
) -> None:
    sim, cardata = cardata_simulator, cardata_of(cardata_bot)
    await _charging(cardata_bot, user, sim)
    store = cardata.store
    store.simulate_full_disk()
    rooms = [
        refuse(monkeypatch, store, "save_cardata_state"),
        refuse(monkeypatch, store, "save_cardata_track"),
    ]
    sim.set_soc(DEFAULT_BEV_VIN, 80)  # the target: complete, and reported while the disk is full
    state = cardata.supervisor.state
    await until(lambda: (s := state(OWNER, DEFAULT_BEV_VIN)) is not None and s.soc == 80, "the report")
    await cardata.detector.tick()
    assert not texts_of(user, FINISHED)  # nothing on disk, nothing pushed yet

    store.simulate_full_disk(False)
    for room in rooms:
        room()
    # What the full disk held back is looked at again when its retry is due.
    await cardata.detector.tick(time.time() + PUSH_RETRY_SECONDS)
    await user.wait_for_bot_message(FINISHED)
    await cardata.detector.tick()
    assert len(texts_of(user, FINISHED)) == 1, user.transcript()
    assert not _errors(logs)


async def test_a_charge_end_pushed_while_its_record_finds_no_room_is_not_pushed_again(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator, logs, monkeypatch
) -> None:
    sim, cardata = cardata_simulator, cardata_of(cardata_bot)
    await _charging(cardata_bot, user, sim)
    store, detector = cardata.store, cardata.detector
    room = full_after_the_first_push(monkeypatch, detector, store, "save_cardata_track")
    sim.set_soc(DEFAULT_BEV_VIN, 80)
    await user.wait_for_bot_message(FINISHED)
    for _ in range(3):
        await detector.tick()  # the end is still pending on disk: its record found no room
    assert store.cardata_track(OWNER, DEFAULT_BEV_VIN).pending is not None

    room()
    await detector.tick()
    assert store.cardata_track(OWNER, DEFAULT_BEV_VIN).pending is None  # recorded now
    await detector.tick()
    assert len(texts_of(user, FINISHED)) == 1, user.transcript()
    assert not _errors(logs)


NOT_CLOSED = "is not closed up"


async def _window_open(application: Application, user: SandboxUser, sim: CardataSimulator) -> None:
    """Both of the owner's cars locked with a window open, streamed: "left open" is due 10 min later."""
    await link_cardata(user, sim)
    cardata = cardata_of(application)
    await cardata.supervisor.wait_connected(OWNER)
    for vin in (DEFAULT_BEV_VIN, DEFAULT_REX_VIN):
        sim.set_locked(vin, True, "LOCKED")
        sim.set_window(vin, "row2.passenger", "OPEN")
    for vin in (DEFAULT_BEV_VIN, DEFAULT_REX_VIN):
        await until(lambda v=vin: cardata.status(OWNER, v).open_items, f"{vin}'s window streamed")


async def test_an_alert_pushed_while_its_record_finds_no_room_is_not_pushed_again(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator, logs, monkeypatch
) -> None:
    sim, cardata = cardata_simulator, cardata_of(cardata_bot)
    await _window_open(cardata_bot, user, sim)
    room = full_after_the_first_push(monkeypatch, cardata._alerter, cardata.store, "save_alert_state")
    sim.advance(10 * 60)
    await cardata.alert_tick(sim.now())
    await until(lambda: len(texts_of(user, NOT_CLOSED)) == 2, "both cars' alerts")
    sim.set_window(DEFAULT_BEV_VIN, "row1.driver", "OPEN")  # a stream change meanwhile, alerts decided anew
    for minutes in (1, 2, 3):
        await cardata.alert_tick(sim.now() + minutes * 60)
    room()  # room again: the records are written, and still nothing pushed twice
    await cardata.alert_tick(sim.now() + 4 * 60)
    await cardata.alert_tick(sim.now() + 5 * 60)
    assert len(texts_of(user, NOT_CLOSED)) == 2, user.transcript()
    assert not _errors(logs)


async def test_one_cars_alerts_refused_by_a_full_disk_leave_the_other_cars_alerts_alone(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator, logs, monkeypatch
) -> None:
    """Where one car's row finds no room and another's does (a write SQLite fits into a page it has), the
    alerts tick goes on to the next car; each car's alert comes once."""
    sim, cardata = cardata_simulator, cardata_of(cardata_bot)
    await _window_open(cardata_bot, user, sim)
    store = cardata.store
    first, second = cardata.supervisor.cars()
    save = store.save_alert_state
    full = [True]

    def refusing_the_first(tg_id: int, vin: str, state) -> None:
        if full and (tg_id, vin) == first:
            raise StoreFull("database or disk is full")
        save(tg_id, vin, state)

    def alerts_of(vin: str) -> list[str]:
        return [text for text in texts_of(user, NOT_CLOSED) if f"…{vin[-4:]})" in text]

    monkeypatch.setattr(store, "save_alert_state", refusing_the_first)
    sim.advance(10 * 60)
    await cardata.alert_tick(sim.now())
    await until(lambda: alerts_of(second[1]), "the second car's alert")
    full.clear()
    for minutes in (1, 2):
        await cardata.alert_tick(sim.now() + minutes * 60)
    await until(lambda: alerts_of(first[1]), "the first car's alert")
    assert (len(alerts_of(first[1])), len(alerts_of(second[1]))) == (1, 1), user.transcript()
    assert not _errors(logs)


async def test_a_live_drive_that_settles_while_nothing_can_be_written_is_recorded_once_there_is_room(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator, logs, monkeypatch
) -> None:
    sim, cardata = cardata_simulator, cardata_of(cardata_bot)
    await link_cardata(user, sim)
    await cardata.supervisor.wait_connected(OWNER)
    await until(streamed(cardata_bot), "the snapshot at linking")
    await cardata.settle_drives(sim.now())  # parked where it was linked: the drive starts here
    start_km = mileage(sim)
    room = refuse(monkeypatch, cardata.store, "save_drive_mark")  # the disk fills before the drive
    await drive_to(cardata_bot, sim, 48.2, 11.6)
    sim.advance(SETTLED_SECONDS + 1)
    await cardata.settle_drives(sim.now())  # settled, and nowhere to write it
    assert not garage_of(cardata_bot).drives(OWNER, DEFAULT_BEV_VIN)

    room()
    await cardata.settle_drives(sim.now() + 60)
    await cardata.settle_drives(sim.now() + 120)
    [drive] = garage_of(cardata_bot).drives(OWNER, DEFAULT_BEV_VIN)
    assert drive.km == mileage(sim) - start_km
    assert not _errors(logs)
