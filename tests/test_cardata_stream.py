"""The CarData stream against the simulator's broker over loopback MQTT with real TLS (its CA trusted through
`ca_file` only): last known values, one connection per gcid, reconnects after a drop and after the id token
expired, and charge events pushed once, across a restart too.

The client, the token keeper and the charge detector run on the simulator's clock; `sim.advance()` moves
all of them, so the one-hour token lifetime and the 120 s debounce pass without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.cardata import models as m
from bot.cardata.auth import Approved
from bot.cardata.client import CarDataClient
from bot.cardata.events import ChargeDetector, ChargeEvent, ChargeEventKind
from bot.cardata.simulator import (
    DEFAULT_BEV_VIN,
    DEFAULT_CLIENT_ID,
    DEFAULT_GCID,
    CardataBroker,
    CardataSimulator,
)
from bot.cardata.stream import Backoff, MqttEndpoint, StreamSupervisor
from bot.config import ConfigError, load_settings
from bot.crypto import generate_secret_key
from bot.store import Store

OWNER, OTHER_OWNER = 1, 2
KEY = generate_secret_key()
BEV = DEFAULT_BEV_VIN


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for something the stream brings; the 20 s bound only turns a hang into a failure naming it."""
    try:
        async with asyncio.timeout(20.0):
            while not condition():  # noqa: ASYNC110 (the broker and the stream run on other tasks and threads)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


@dataclass
class Bot:
    """The CarData side of one bot process: store, client, detector, supervisor."""

    store: Store
    client: CarDataClient
    detector: ChargeDetector
    supervisor: StreamSupervisor
    ticker: asyncio.Task[None]

    async def stop(self) -> None:
        await self.supervisor.aclose()
        self.ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.ticker
        await self.detector.drain()
        await self.client.aclose()
        self.store.close()


@dataclass
class World:
    sim: CardataSimulator
    url: str
    broker: CardataBroker
    path: Path
    pushes: list[ChargeEvent] = field(default_factory=list)
    relinks: list[int] = field(default_factory=list)
    bots: list[Bot] = field(default_factory=list)

    def start_bot(self, *, start_streams: bool = True, debounce: float = 120.0, poll: float = 0.02) -> Bot:
        store = Store(self.path, [KEY], clock=self.sim.now)
        client = CarDataClient(store, api_url=self.url, auth_url=f"{self.url}/gcdm/oauth", clock=self.sim.now)

        async def push(event: ChargeEvent) -> None:
            self.pushes.append(event)

        async def relink(owner: int) -> None:
            self.relinks.append(owner)

        detector = ChargeDetector(store, push, debounce_seconds=debounce, clock=self.sim.now)
        supervisor = StreamSupervisor(
            store,
            client.tokens,
            detector,
            mqtt_url=self.broker.url,
            ca_file=self.broker.ca_file,
            connect_interval=0.0,
            backoff=Backoff(base=0.05, cap=0.5),
            on_relink=relink,
        )
        if start_streams:
            supervisor.start()
        bot = Bot(store, client, detector, supervisor, asyncio.create_task(detector.run(interval=poll)))
        self.bots.append(bot)
        return bot

    async def link(self, bot: Bot, owner: int) -> None:
        flow = await bot.client.auth.start(DEFAULT_CLIENT_ID)
        self.sim.decide(flow.code.user_code, "approved")
        outcome = await bot.client.auth.poll(flow)
        assert isinstance(outcome, Approved)
        await bot.client.link(owner, DEFAULT_CLIENT_ID, outcome.tokens)

    def kinds(self) -> list[ChargeEventKind]:
        return [e.kind for e in self.pushes]


@pytest.fixture
async def world(
    cardata_simulator: CardataSimulator, cardata_url: str, cardata_broker: CardataBroker, tmp_path: Path
) -> AsyncIterator[World]:
    assert cardata_broker.url.startswith("mqtts://")  # real TLS, its CA trusted through ca_file only
    world = World(cardata_simulator, cardata_url, cardata_broker, tmp_path / "bot.sqlite3")
    yield world
    for bot in world.bots:
        with contextlib.suppress(Exception):
            await bot.stop()


async def _linked_bot(world: World, *, debounce: float = 120.0, poll: float = 0.02) -> Bot:
    bot = world.start_bot(start_streams=False, debounce=debounce, poll=poll)
    await world.link(bot, OWNER)
    # What the garage does after linking: one REST read gives every key a value before the stream runs.
    await bot.supervisor.apply(OWNER, BEV, await bot.client.telematic_data(OWNER, BEV))
    bot.supervisor.add(OWNER)
    await bot.supervisor.wait_connected(OWNER)
    return bot


def _subscribed(bot: Bot) -> int:
    """Connections that got as far as the subscription (messages published before it are not delivered)."""
    stats = bot.supervisor.stats(OWNER)
    return 0 if stats is None else stats.connects


def _connects(world: World) -> int:
    return len([r for r in world.sim.requests_to("mqtt", "CONNECT") if r.status == 0])


async def test_messages_update_the_last_known_state_which_a_restart_shows_at_once(world: World) -> None:
    bot = await _linked_bot(world)
    world.sim.set_locked(BEV, False)
    world.sim.move(BEV, 48.2, 11.6, heading=90)  # latitude and longitude come as two messages
    await until(
        lambda: (s := bot.supervisor.state(OWNER, BEV)) is not None and s.position == (48.2, 11.6), "pos"
    )
    state = bot.supervisor.state(OWNER, BEV)
    assert state is not None and state.door_status == "UNLOCKED" and state.heading == 90
    await bot.stop()

    restarted = world.start_bot()  # reads the store before any connection is made
    shown = restarted.supervisor.state(OWNER, BEV)
    assert shown is not None and shown.position == (48.2, 11.6) and shown.door_status == "UNLOCKED"


async def test_one_connection_per_gcid_serves_every_owner_of_that_account(world: World) -> None:
    first = world.start_bot(start_streams=False)
    await world.link(first, OWNER)
    await world.link(first, OTHER_OWNER)  # a second Telegram user linked the same BMW account
    first.supervisor.start()
    await first.supervisor.wait_connected(OWNER)
    world.sim.set_locked(BEV, False)
    for owner in (OWNER, OTHER_OWNER):
        await until(
            lambda o=owner: getattr(first.supervisor.state(o, BEV), "door_status", None) == "UNLOCKED", "lock"
        )
    assert _connects(world) == 1
    assert world.broker.connected_gcids() == {DEFAULT_GCID}


async def test_the_stream_reconnects_after_the_broker_dropped_it(world: World) -> None:
    bot = await _linked_bot(world)
    world.sim.drop_connections()
    await until(lambda: _subscribed(bot) == 2, "reconnect")
    assert _connects(world) == 2
    world.sim.set_locked(BEV, False)
    await until(lambda: getattr(bot.supervisor.state(OWNER, BEV), "door_status", None) == "UNLOCKED", "lock")
    stats = bot.supervisor.stats(OWNER)
    assert stats is not None and stats.drops == 1 and stats.connects == 2


async def test_after_the_hour_the_broker_drops_the_stream_and_it_comes_back_with_a_fresh_id_token(
    world: World,
) -> None:
    bot = await _linked_bot(world)
    before = bot.store.cardata_link(OWNER)
    world.sim.advance(3600)  # the id token expires: the broker drops the connection
    await until(lambda: _subscribed(bot) == 2, "reconnect")
    after = bot.store.cardata_link(OWNER)
    assert before and after and after.tokens.id_token != before.tokens.id_token
    assert [
        r for r in world.sim.requests_to("/gcdm/oauth/token") if r.form.get("grant_type") == "refresh_token"
    ]
    world.sim.set_locked(BEV, False)
    await until(lambda: getattr(bot.supervisor.state(OWNER, BEV), "door_status", None) == "UNLOCKED", "lock")


async def test_an_id_token_the_broker_refuses_is_renewed_before_the_next_attempt(world: World) -> None:
    bot = await _linked_bot(world)
    world.sim.expire_tokens(DEFAULT_GCID)  # BMW ends it early: our clock still thinks it valid
    await until(lambda: _subscribed(bot) == 2, "reconnect")
    stats = bot.supervisor.stats(OWNER)
    assert stats is not None and stats.refused >= 1
    refused = [r for r in world.sim.requests_to("mqtt", "CONNECT") if r.status != 0]
    assert len(refused) == stats.refused == 1  # one refusal, then a fresh token, not a retry loop


async def test_charge_started_then_stopped_with_the_reason_and_a_flap_in_between_pushes_nothing(
    world: World,
) -> None:
    bot = await _linked_bot(world)
    world.sim.plug_in(BEV)
    await until(lambda: world.kinds() == [ChargeEventKind.STARTED], "started")
    resumed_at = world.sim.now() + 30
    world.sim.flap(BEV, seconds=30)
    world.sim.advance(30)  # CHARGINGPAUSED for 30 s, then CHARGINGACTIVE again: well inside the debounce

    def resumed() -> bool:
        state = bot.supervisor.state(OWNER, BEV)
        status = None if state is None else state.values.get(m.CHARGING_STATUS)
        stamp = None if status is None else status.timestamp
        return (
            stamp is not None and stamp.timestamp() >= resumed_at - 0.01 and status.value == "CHARGINGACTIVE"
        )

    await until(resumed, "the charge resumed")
    world.sim.advance(200)
    await bot.detector.tick()
    assert world.kinds() == [ChargeEventKind.STARTED]  # the pause ended no charge
    world.sim.finish_charging(BEV, status="CHARGINGENDED", reason="END_REQUESTED_BY_DRIVER")
    await asyncio.sleep(0)  # let the stream deliver the end before the debounce runs out
    await until(lambda: _status(world) == "CHARGINGENDED", "end seen")
    world.sim.advance(121)
    await until(lambda: len(world.pushes) == 2, "ended")
    assert world.kinds() == [ChargeEventKind.STARTED, ChargeEventKind.STOPPED]
    assert world.pushes[1].reason == "END_REQUESTED_BY_DRIVER"


async def test_a_charge_that_reaches_its_target_is_complete(world: World) -> None:
    await _linked_bot(world)
    world.sim.set_soc(BEV, 77, target=80)
    world.sim.plug_in(BEV)
    await until(lambda: world.kinds() == [ChargeEventKind.STARTED], "started")
    world.sim.advance(4 * 60)  # 1 % a minute: the car reaches 80 % and ends the charge itself
    await until(lambda: _status(world) == "CHARGINGENDED", "end seen")
    world.sim.advance(121)
    await until(lambda: len(world.pushes) == 2, "ended")
    complete = world.pushes[1]
    assert (complete.kind, complete.soc, complete.target_soc, complete.reason) == (
        ChargeEventKind.COMPLETE,
        80,
        80,
        None,
    )


async def test_a_restart_during_the_debounce_pushes_the_end_exactly_once(world: World) -> None:
    bot = await _linked_bot(world)
    world.sim.plug_in(BEV)
    await until(lambda: world.kinds() == [ChargeEventKind.STARTED], "started")
    world.sim.unplug(BEV)
    await until(lambda: _status(world) == "NOCHARGING", "end seen")
    await bot.stop()  # the bot goes down with the debounce running

    world.sim.advance(121)
    again = world.start_bot()
    await until(lambda: len(world.pushes) == 2, "ended")
    await again.stop()
    assert world.kinds() == [ChargeEventKind.STARTED, ChargeEventKind.STOPPED]
    assert world.pushes[1].reason == "CONNECTOR_REMOVAL"

    third = world.start_bot()
    await third.supervisor.wait_connected(OWNER)
    await third.detector.tick()
    assert len(world.pushes) == 2


async def test_the_end_is_pushed_when_its_debounce_runs_out_with_no_poll_in_between(world: World) -> None:
    # The detector polls once an hour here: only its wake at the deadline pushes the end within the bound.
    await _linked_bot(world, debounce=0.3, poll=3600)
    world.sim.plug_in(BEV)
    await until(lambda: world.kinds() == [ChargeEventKind.STARTED], "started")
    world.sim.unplug(BEV)
    await until(lambda: len(world.pushes) == 2, "the end pushed at its deadline")
    assert world.kinds() == [ChargeEventKind.STARTED, ChargeEventKind.STOPPED]
    assert world.pushes[1].reason == "CONNECTOR_REMOVAL"


def _status(world: World) -> str | None:
    bot = world.bots[-1]
    state = bot.supervisor.state(OWNER, BEV)
    return None if state is None else str(state.charging_status)


async def test_a_refused_refresh_stops_the_stream_asks_for_a_new_link_and_a_new_link_streams(
    world: World,
) -> None:
    await _linked_bot(world)
    world.sim.revoke_refresh_tokens(DEFAULT_GCID)
    world.sim.advance(3600)  # the broker drops the stream; its id token cannot be renewed
    await until(lambda: world.relinks == [OWNER], "relink asked")
    assert DEFAULT_GCID not in world.broker.connected_gcids()
    bot = world.bots[-1]
    await world.link(bot, OWNER)  # the owner links again: the stream starts afresh
    bot.supervisor.add(OWNER)
    await until(lambda: _connects(world) == 2, "streaming again")
    await asyncio.wait_for(bot.supervisor.wait_connected(OWNER), 20)
    world.sim.set_locked(BEV, False)
    await until(lambda: getattr(bot.supervisor.state(OWNER, BEV), "door_status", None) == "UNLOCKED", "lock")


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("mqtts://customer.streaming-cardata.bmwgroup.com:9000", True),
        ("mqtt://127.0.0.1:1883", True),
        ("mqtt://localhost:1883", True),
        ("mqtt://[::1]:1883", True),
        ("mqtt://customer.streaming-cardata.bmwgroup.com:9000", False),  # a token would cross the net bare
        ("mqtt://10.0.0.5:1883", False),
        ("https://example.com", False),
    ],
)
def test_plain_mqtt_only_on_loopback(url: str, accepted: bool) -> None:
    if accepted:
        MqttEndpoint.parse(url)
        assert load_settings(cardata_mqtt_url=url).cardata_mqtt_url == url
    else:
        with pytest.raises(ValueError):
            MqttEndpoint.parse(url)
        with pytest.raises(ConfigError, match="CARDATA_MQTT_URL"):
            load_settings(cardata_mqtt_url=url)
