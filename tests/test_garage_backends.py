"""The garage with both backends at once, against both simulators over loopback (CarData's stream over TLS):
linking CarData by the device flow, its status from the stream in the neutral CarStatus, a charge end pushed
once through the same push path as the i Remote watcher's, /notify honoured, unlink stopping the stream and
wiping every row; an i Remote account beside it keeps its full set and is the only one the watcher polls.
End to end, the bot built with both backends pushes a CarData charge end into the owner's chat once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from bot.app import build_application, polling
from bot.backends import Backend
from bot.bmw.models import Region
from bot.bmw.simulator import DEFAULT_PASSWORD, DEFAULT_USERNAME
from bot.capabilities import CARDATA_CAPABILITIES, BackendName, Capability
from bot.car_status import ChargeNotice, Notice, NoticeKind, Part
from bot.cardata.auth import Approved, Refusal, Refused
from bot.cardata.client import CarDataClient
from bot.cardata.simulator import (
    DEFAULT_BEV_VIN,
    DEFAULT_CLIENT_ID,
    DEFAULT_GCID,
    DEFAULT_REX_VIN,
    CardataBroker,
    CardataSimulator,
)
from bot.cardata_backend import CarDataBackend
from bot.config import ConfigError, Settings, load_settings
from bot.crypto import generate_secret_key
from bot.garage import Garage, UnsupportedByBackend
from bot.store import Store
from tests.support.bot import BEV_VIN as IREMOTE_BEV
from tests.support.bot import fast_client
from tests.support.waits import bounded, until

OWNER, IREMOTE_OWNER = 41, 42
# The cars stream every change (live, iDrive 7 and later): these tests follow a streamed charge.
LIVE = pytest.mark.parametrize("cardata_simulator", [{"kind": "live"}], indirect=True)
KEY = generate_secret_key()
DEBOUNCE = 0.3  # seconds a stopped charge must stay stopped; short, so the tests need not wait long


async def no_wait(seconds: float) -> None:
    """The device flow's pause between token polls: the code is approved before the first poll."""


@dataclass
class World:
    garage: Garage
    store: Store
    sim: CardataSimulator
    db_path: Path
    pushes: list[Notice] = field(default_factory=list)

    @property
    def cardata(self) -> CarDataBackend:
        assert self.garage.cardata is not None  # the fixture configures it
        return self.garage.cardata

    async def link_cardata(self, owner: int = OWNER) -> list[str]:
        """The device flow approved at BMW, up to the stream's subscription (QoS 0: nothing comes before)."""
        flow = await self.garage.start_device_flow(owner, DEFAULT_CLIENT_ID)
        self.sim.decide(flow.code.user_code, "approved")
        outcome = await self.garage.wait_device_flow(flow)
        assert isinstance(outcome, Approved)
        cars = await self.garage.finish_device_flow(owner, "Carla", flow, outcome.tokens)
        await self.cardata.supervisor.wait_connected(owner)
        return [car.vin for car in cars]

    def rows(self, table: str, tg_id: int) -> int:
        db = sqlite3.connect(self.db_path)
        try:
            return int(db.execute(f"SELECT count(*) FROM {table} WHERE tg_id = ?", (tg_id,)).fetchone()[0])
        finally:
            db.close()


@pytest.fixture
async def world(
    tmp_path: Path,
    simulator_url: str,
    cardata_simulator: CardataSimulator,
    cardata_url: str,
    cardata_broker: CardataBroker,
) -> AsyncIterator[World]:
    db_path = tmp_path / "bot.sqlite3"
    store = Store(db_path, [KEY])
    client = CarDataClient(store, api_url=cardata_url, auth_url=f"{cardata_url}/gcdm/oauth", sleep=no_wait)
    cardata = CarDataBackend(
        store,
        client,
        mqtt_url=cardata_broker.url,
        ca_file=cardata_broker.ca_file,
        debounce_seconds=DEBOUNCE,
        connect_interval=0.0,
    )
    garage = Garage(store, fast_client(simulator_url), cardata=cardata)
    world = World(garage, store, cardata_simulator, db_path)

    async def push(notice: Notice) -> None:
        world.pushes.append(notice)

    garage.notify = push
    await garage.start()
    try:
        yield world
    finally:
        try:
            async with bounded("the garage's close"):
                await garage.aclose()
        finally:
            store.close()


def charge_pushes(world: World) -> list[ChargeNotice]:
    return [p for p in world.pushes if isinstance(p, ChargeNotice)]


async def test_linking_by_device_flow_stores_the_primary_cars_read_only(world: World) -> None:
    flow = await world.garage.start_device_flow(OWNER, DEFAULT_CLIENT_ID)
    assert flow.code.user_code and flow.code.url and flow.code.expires_at > 0
    world.sim.decide(flow.code.user_code, "denied")
    assert await world.garage.wait_device_flow(flow) == Refused(Refusal.DENIED)
    assert not world.garage.is_linked(OWNER)

    vins = await world.link_cardata()

    assert sorted(vins) == sorted([DEFAULT_BEV_VIN, DEFAULT_REX_VIN])
    cars = world.garage.cars(OWNER)
    assert {car.vin: car.model for car in cars} == {
        DEFAULT_BEV_VIN: "i3 120Ah",
        DEFAULT_REX_VIN: "i3 94 (+REX)",
    }
    assert all(car.capabilities == CARDATA_CAPABILITIES for car in cars)
    assert not any(cap in CARDATA_CAPABILITIES for cap in ("doorLock", "rangeMap", "sendPoi"))
    assert world.garage.is_linked(OWNER) and world.garage.backend(OWNER) == BackendName.CARDATA
    assert world.garage.account_name(OWNER) is None
    # The tokens and the client id are stored encrypted, the cars are never polled by the watcher.
    link = world.store.cardata_link(OWNER)
    assert link is not None and link.tokens.gcid == DEFAULT_GCID and link.container_id
    raw = world.db_path.read_bytes() + world.db_path.with_name("bot.sqlite3-wal").read_bytes()
    assert link.tokens.access_token.encode() not in raw and DEFAULT_CLIENT_ID.encode() not in raw
    assert world.rows("charge_watches", OWNER) == 0
    # Only the i Remote API reads trips, maps and the rest.
    with pytest.raises(UnsupportedByBackend):
        await world.garage.range_map(OWNER, DEFAULT_BEV_VIN)


@LIVE
async def test_status_comes_from_the_stream_with_the_age_of_each_part(world: World) -> None:
    await world.link_cardata()
    first = await world.garage.status(OWNER, DEFAULT_BEV_VIN)  # the snapshot taken at linking
    assert first.soc == 64 and first.position is not None and first.position.usable
    assert first.lock_state == "SECURED" and first.open_items is None and not first.charging
    assert set(first.reported_at) >= {Part.CHARGE, Part.POSITION, Part.MILEAGE}

    world.sim.plug_in(DEFAULT_BEV_VIN, charging=True)
    world.sim.move(DEFAULT_REX_VIN, 48.2, 11.6)

    await until(lambda: world.cardata.status(OWNER, DEFAULT_BEV_VIN).charging, "CHARGINGACTIVE streamed")
    bev = await world.garage.status(OWNER, DEFAULT_BEV_VIN)
    assert bev.plugged_in and bev.charging_state == "CHARGINGACTIVE"
    assert bev.reported_at[Part.CHARGING] > first.reported_at[Part.CHARGING]
    assert bev.reported_at[Part.POSITION] == first.reported_at[Part.POSITION]  # not sent again: as old

    def moved() -> bool:
        position = world.cardata.status(OWNER, DEFAULT_REX_VIN).position
        return position is not None and (position.lat, position.lon) == (48.2, 11.6)

    await until(moved, "the REX's new position, latitude and longitude")
    rex = await world.garage.status(OWNER, DEFAULT_REX_VIN)
    assert rex.fuel_litres == 6.5 and rex.fuel_range_km is not None

    # Refresh spends one call of the day's budget and says how many are left.
    left = world.cardata.client.calls_left(OWNER)
    refreshed = await world.garage.refresh(OWNER, DEFAULT_BEV_VIN)
    assert refreshed.calls_left == left - 1 and refreshed.status.charging


@LIVE
async def test_a_charge_end_is_pushed_once_through_the_push_path(world: World) -> None:
    await world.link_cardata()
    world.sim.plug_in(DEFAULT_BEV_VIN, charging=True)
    await until(lambda: world.store.cardata_track(OWNER, DEFAULT_BEV_VIN) is not None, "the charge seen")
    world.sim.set_soc(DEFAULT_BEV_VIN, 80)  # the target: the car ends the charge itself

    await until(lambda: len(charge_pushes(world)) == 1, "the charge-complete push")
    notice = charge_pushes(world)[0]
    assert notice.kind is NoticeKind.FULL and notice.tg_id == OWNER and notice.vin == DEFAULT_BEV_VIN
    assert notice.status.soc == 80 and notice.soc_at_start == 64 and notice.charged_seconds is not None
    # "started" is off by default (as for i Remote cars), and later ticks push nothing again.
    await world.cardata.detector.tick()
    assert len(charge_pushes(world)) == 1
    track = world.store.cardata_track(OWNER, DEFAULT_BEV_VIN)
    assert track is not None and track.pending is None and track.last_event is not None


@LIVE
async def test_notify_preferences_govern_cardata_pushes(world: World) -> None:
    await world.link_cardata()
    prefs = world.garage.notify_prefs(OWNER)
    world.garage.save_notify_prefs(OWNER, replace(prefs, started=True, finished=False))
    world.sim.plug_in(DEFAULT_BEV_VIN, charging=True)
    await until(lambda: len(charge_pushes(world)) == 1, "the charging-started push")
    assert charge_pushes(world)[0].kind is NoticeKind.STARTED

    world.sim.finish_charging(DEFAULT_BEV_VIN)  # stopped by the driver at 64 %, short of the 80 % target
    await until(
        lambda: (
            (t := world.store.cardata_track(OWNER, DEFAULT_BEV_VIN)) is not None
            and t.last_event is not None
            and t.last_event.startswith("ended")
        ),
        "the end decided",
    )
    assert [p.kind for p in charge_pushes(world)] == [NoticeKind.STARTED]  # "finished" is off: no push

    world.garage.save_notify_prefs(OWNER, replace(prefs, started=True, finished=True))
    world.sim.start_charging(DEFAULT_BEV_VIN)  # still plugged in
    await until(lambda: len(charge_pushes(world)) == 2, "the second start")
    world.sim.finish_charging(DEFAULT_BEV_VIN)
    await until(lambda: len(charge_pushes(world)) == 3, "the stopped push")
    stopped = charge_pushes(world)[2]
    assert stopped.kind is NoticeKind.EARLY
    assert stopped.status.end_reason == "CUSTOMER_INTERACTION_STOP_CHARGING"  # a live car's (SP25) words


async def test_unlink_stops_the_stream_retires_the_container_and_wipes_every_row(world: World) -> None:
    await world.link_cardata()
    cardata = world.cardata
    assert world.sim.containers(DEFAULT_GCID)["containers"][0]["state"] == "ACTIVE"

    await world.garage.unlink(OWNER)

    assert not world.garage.is_linked(OWNER) and cardata.supervisor.stats(OWNER) is None
    assert all(c["state"] != "ACTIVE" for c in world.sim.containers(DEFAULT_GCID)["containers"])
    for table in ("users", "vehicles", "cardata_accounts", "cardata_states", "cardata_tracks"):
        assert world.rows(table, OWNER) == 0, table
    # The stream is gone: a charge now reaches no one and leaves no row.
    world.sim.plug_in(DEFAULT_BEV_VIN, charging=True)
    await asyncio.sleep(0.3)
    assert world.rows("cardata_states", OWNER) == 0 and not world.pushes


async def test_an_i_remote_account_beside_keeps_its_full_set_and_alone_is_polled(world: World) -> None:
    await world.link_cardata()
    await world.garage.link(IREMOTE_OWNER, "Ivo", Region.REST_OF_WORLD, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    assert world.garage.backend(IREMOTE_OWNER) == BackendName.IREMOTE
    assert world.garage.account_name(IREMOTE_OWNER) == DEFAULT_USERNAME
    status = await world.garage.status(IREMOTE_OWNER, IREMOTE_BEV)
    assert status.open_items == () and status.soc is not None
    assert set(status.reported_at) == set(Part)  # one snapshot: every part as old as it
    assert "doorLock" in world.garage.car(IREMOTE_OWNER, IREMOTE_BEV).capabilities
    assert {w.tg_id for w in world.store.watches_due(1e12)} == {IREMOTE_OWNER}

    # Linking i Remote replaces the owner's CarData link: its stream stops, its rows go.
    await world.garage.link(OWNER, "Carla", Region.REST_OF_WORLD, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    assert world.garage.backend(OWNER) == BackendName.IREMOTE and world.store.cardata_link(OWNER) is None
    assert world.cardata.supervisor.stats(OWNER) is None


@LIVE
async def test_the_bot_with_both_backends_pushes_a_cardata_charge_end_into_the_chat_once(
    bot_settings: Settings, cardata_env: dict[str, str], cardata_simulator: CardataSimulator, sandbox
) -> None:
    settings = bot_settings.model_copy(
        update={
            "car_backends": (BackendName.CARDATA, BackendName.IREMOTE),
            "cardata_auth_url": cardata_env["CARDATA_AUTH_URL"],
            "cardata_api_url": cardata_env["CARDATA_API_URL"],
            "cardata_mqtt_url": cardata_env["CARDATA_MQTT_URL"],
            "cardata_ca_file": Path(cardata_env["CARDATA_CA_FILE"]),
            "cardata_charge_debounce_seconds": DEBOUNCE,
        }
    )
    user = sandbox.user(OWNER, "Carla")
    user.send("/start")  # the owner has a chat with the bot (linking is the chat's part: test_chat_link)
    async with polling(build_application(settings, car_api=fast_client(settings.bmw_api_url or ""))) as app:
        garage: Garage = app.bot_data.services.garage
        cardata = garage.cardata
        assert cardata is not None  # CAR_BACKENDS has it
        await user.wait_for_bot_message("")
        flow = await garage.start_device_flow(OWNER, DEFAULT_CLIENT_ID)
        cardata_simulator.decide(flow.code.user_code, "approved")
        approved = await cardata.client.auth.poll(flow)  # one poll: the flow's wait would pause 5 s first
        assert isinstance(approved, Approved)
        await garage.finish_device_flow(OWNER, "Carla", flow, approved.tokens)
        await cardata.supervisor.wait_connected(OWNER)

        cardata_simulator.plug_in(DEFAULT_BEV_VIN, charging=True)
        await until(lambda: garage.store.cardata_track(OWNER, DEFAULT_BEV_VIN) is not None, "the charge seen")
        cardata_simulator.set_soc(DEFAULT_BEV_VIN, 80)

        push = await user.wait_for_bot_message("has finished charging")
        assert "64 % → 80 %" in push.text and DEFAULT_BEV_VIN[-4:] in push.text
        await cardata.detector.tick()
        assert len([m for m in user.bot_messages if "finished charging" in (m.text or "")]) == 1


@LIVE
async def test_charging_history_spends_one_call_then_is_cached(world: World) -> None:
    await world.link_cardata()
    world.sim.plug_in(DEFAULT_BEV_VIN, charging=True)
    await until(lambda: world.cardata.status(OWNER, DEFAULT_BEV_VIN).charging, "the charge streamed")
    world.sim.finish_charging(DEFAULT_BEV_VIN)
    left = world.cardata.client.calls_left(OWNER)

    sessions = await world.garage.charging_history(OWNER, DEFAULT_BEV_VIN)
    again = await world.garage.charging_history(OWNER, DEFAULT_BEV_VIN)

    assert sessions == again and sessions and sessions[0].start_soc == 64
    assert world.cardata.client.calls_left(OWNER) == left - 1
    await world.garage.link(IREMOTE_OWNER, "Ivo", Region.REST_OF_WORLD, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    with pytest.raises(UnsupportedByBackend):  # the i Remote API has none
        await world.garage.charging_history(IREMOTE_OWNER, IREMOTE_BEV)


async def test_both_backends_offer_the_garage_one_shape_and_it_asks_capabilities(world: World) -> None:
    await world.link_cardata()
    await world.garage.link(IREMOTE_OWNER, "Ivo", Region.REST_OF_WORLD, DEFAULT_USERNAME, DEFAULT_PASSWORD)
    for owner, name in ((OWNER, BackendName.CARDATA), (IREMOTE_OWNER, BackendName.IREMOTE)):
        backend = world.garage.backend_of(owner)
        assert isinstance(backend, Backend) and backend.name is name
        assert all(car.capabilities <= backend.capabilities for car in world.garage.cars(owner))
    # What only the i Remote API does, it alone offers; CarData's own reads, CarData alone.
    assert Capability.CAR_CALLS in world.garage.backend_of(IREMOTE_OWNER).capabilities
    assert Capability.CAR_CALLS not in world.garage.backend_of(OWNER).capabilities
    assert Capability.CHARGING_HISTORY not in world.garage.backend_of(IREMOTE_OWNER).capabilities
    with pytest.raises(UnsupportedByBackend):
        await world.garage.last_trip(OWNER, DEFAULT_BEV_VIN)
    refreshed = await world.garage.refresh(IREMOTE_OWNER, IREMOTE_BEV)
    assert refreshed.calls_left is None and refreshed.status.soc is not None  # no budget
    assert world.garage.calls_spent(IREMOTE_OWNER) is None


def test_car_backends_setting() -> None:
    assert load_settings().car_backends == (BackendName.CARDATA, BackendName.IREMOTE)  # both, CarData first
    assert load_settings(car_backends=" iremote ,IREMOTE").car_backends == (BackendName.IREMOTE,)
    with pytest.raises(ConfigError, match="CAR_BACKENDS"):
        load_settings(car_backends="cardata,bimmer")
