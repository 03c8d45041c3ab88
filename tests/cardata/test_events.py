"""Charge events from stream states, on a real Store: debounce, complete vs stopped, exactly once on restart.

The detector is fed what the stream supervisor feeds it (a car state and the keys that changed) and runs on
an injected clock, so the 120 s debounce is exact without waiting. A "restart" is a new Store and detector
on the same database file. The same scenarios run end to end against the simulator's broker in
tests/cardata/test_stream.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cardata import models as m
from bot.cardata.events import ChargeDetector, ChargeEvent, ChargeEventKind
from bot.cardata.storage import CarDataLink
from bot.crypto import generate_secret_key
from bot.history import usable_kwh
from bot.store import Store

OWNER = 7
VIN = "WBY1Z21000V300001"
KEY = generate_secret_key()
T0 = 1_760_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Pushes(list[ChargeEvent]):
    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self._tried = asyncio.Event()

    async def __call__(self, event: ChargeEvent) -> None:
        self._tried.set()
        if self.failing:
            raise ConnectionError("Telegram is away")
        self.append(event)

    async def until(self, count: int) -> None:
        """Wait for `count` pushes in all; the 10 s bound only turns a hang into a failure."""
        async with asyncio.timeout(10.0):
            while len(self) < count:
                self._tried.clear()
                await self._tried.wait()


def _open(path: Path, clock: Clock, pushes: Pushes, debounce: float = 120.0) -> tuple[Store, ChargeDetector]:
    store = Store(path, [KEY], clock=clock)
    return store, ChargeDetector(store, pushes, debounce_seconds=debounce, clock=clock)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "bot.sqlite3"
    tokens = m.Tokens("at", "id", "rt", "gcid-1", T0 + 3600, T0 + 14 * 86400)
    with Store(path, [KEY]) as store:
        store.save_cardata_link(CarDataLink(OWNER, "client-id", tokens, "container-1"))
    return path


async def _send(store: Store, detector: ChargeDetector, state: m.CarState, **values: str) -> None:
    """What the supervisor does with a stream message: merge, persist, observe."""
    keys = {
        "status": m.CHARGING_STATUS,
        "soc": m.SOC_HEADER,
        "target": m.SOC_TARGET,
        "reason": m.REASON_CHARGING_END,
        "lat": m.LATITUDE,
        "lon": m.LONGITUDE,
    }
    changed = state.merge({keys[name]: m.TelematicValue(value) for name, value in values.items()})
    store.save_cardata_state(OWNER, state.vin, state.to_json())
    await detector.observe(OWNER, state, changed)
    await detector.drain()


async def test_started_then_complete_after_the_debounce(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED]
    await _send(store, detector, state, soc="79")
    await _send(store, detector, state, status="CHARGINGENDED")
    clock.now += 119
    await detector.tick()
    assert len(pushes) == 1  # still inside the debounce
    clock.now += 1
    await detector.tick()
    assert pushes[0].kind is ChargeEventKind.STARTED
    ended = pushes[1]
    assert ended.kind is ChargeEventKind.COMPLETE  # 79 % reached target 80 - 1 %
    assert (ended.soc_at_start, ended.soc, ended.target_soc, ended.session_start) == (40, 79, 80, T0)
    await detector.tick()
    clock.now += 1000
    await detector.tick()
    assert len(pushes) == 2


async def test_a_charge_that_ends_short_of_the_target_is_stopped_with_the_cars_reason(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
    await _send(store, detector, state, status="NOCHARGING", soc="55")
    # The reason arrives after the status change: it is read when the debounce ends.
    await _send(store, detector, state, reason="CONNECTOR_REMOVED")
    clock.now += 120
    await detector.tick()
    ended = pushes[-1]
    assert (ended.kind, ended.soc, ended.reason) == (ChargeEventKind.STOPPED, 55, "CONNECTOR_REMOVED")


async def test_a_flapping_state_pushes_no_end(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
    for _ in range(5):
        await _send(store, detector, state, status="CHARGINGPAUSED")
        clock.now += 60
        await detector.tick()
        await _send(store, detector, state, status="CHARGINGACTIVE")
        clock.now += 100
        await detector.tick()
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED]
    track = store.cardata_track(OWNER, VIN)
    assert track is not None and track.deadline is None and track.session_start == T0


async def test_a_debounce_running_at_a_restart_still_ends_the_charge_once(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="70", target="100")
    await _send(store, detector, state, status="CHARGINGENDED", soc="99")
    store.close()  # the process dies mid-debounce

    clock.now += 300
    store, detector = _open(path, clock, pushes)
    await detector.tick()
    await detector.tick()
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED, ChargeEventKind.COMPLETE]
    store, detector = _open(path, clock, pushes)
    await detector.tick()
    assert len(pushes) == 2


async def test_an_event_is_stored_before_its_push_and_a_failed_push_goes_out_once_after_a_restart(
    path: Path,
) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
    await _send(store, detector, state, status="CHARGINGENDED", soc="50")
    pushes.failing = True
    clock.now += 120
    await detector.tick()
    track = store.cardata_track(OWNER, VIN)
    assert track is not None and track.pending is not None  # on disk, not yet delivered
    assert ChargeEvent.from_json(track.pending).kind is ChargeEventKind.STOPPED

    pushes.failing = False
    store, detector = _open(path, clock, pushes)
    await detector.tick()
    await detector.tick()
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED, ChargeEventKind.STOPPED]
    track = store.cardata_track(OWNER, VIN)
    assert track is not None and track.pending is None and track.last_event == f"ended:{T0:.0f}"


async def test_a_new_charge_after_an_ended_one_is_a_new_session(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes, debounce=10)
    state = m.CarState(VIN)
    for soc in ("50", "60"):
        await _send(store, detector, state, status="CHARGINGACTIVE", soc=soc, target="100")
        clock.now += 5
        await _send(store, detector, state, status="CHARGINGPAUSED")
        clock.now += 10
        await detector.tick()
    kinds = [e.kind for e in pushes]
    assert kinds == [ChargeEventKind.STARTED, ChargeEventKind.STOPPED] * 2
    assert pushes[0].session_start != pushes[2].session_start


async def test_an_ended_charge_joins_the_history_once_with_its_numbers_pushed_or_not(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, lat="48.17754", lon="11.55635")
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
    clock.now += 3600
    await _send(store, detector, state, status="CHARGINGENDED", soc="79")
    pushes.failing = True  # the end is decided and recorded; its push waits
    clock.now += 120
    await detector.tick()
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED]

    pushes.failing = False
    store, detector = _open(path, clock, pushes)
    await detector.tick()
    clock.now += 1000
    await detector.tick()
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED, ChargeEventKind.COMPLETE]
    [session] = store.charge_sessions(OWNER, VIN)
    assert (session.started_at, session.ended_at) == (T0, T0 + 3600)  # ended when first seen, not debounced
    assert (session.soc_start, session.soc_end, session.ended, session.source) == (
        40,
        79,
        "complete",
        "cardata",
    )
    assert session.energy_kwh == round(0.39 * usable_kwh(None), 2)  # no model known: the 94 Ah i3's 27.2 kWh
    assert (session.lat, session.lon) == (48.17754, 11.55635)


async def test_a_stopped_charge_keeps_the_cars_reason_in_the_history(path: Path) -> None:
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
    await _send(store, detector, state, status="NOCHARGING", soc="55", reason="CONNECTOR_REMOVED")
    clock.now += 120
    await detector.tick()
    [session] = store.charge_sessions(OWNER, VIN)
    assert (session.ended, session.reason, session.lat) == ("stopped", "CONNECTOR_REMOVED", None)


# --- woken at each deadline ---------------------------------------------------------------------------------
# The detector runs on the real clock with an hour between polls: only a wake at the deadline (or at the
# retry) decides in time, so a detector that polls fails these within their 10 s bound.

NO_POLL = 3600.0


@contextlib.asynccontextmanager
async def _running(
    path: Path, pushes: Pushes, **options: float
) -> AsyncIterator[tuple[Store, ChargeDetector]]:
    store = Store(path, [KEY])
    detector = ChargeDetector(store, pushes, **options)
    task = asyncio.create_task(detector.run(interval=NO_POLL))
    try:
        yield store, detector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await detector.drain()
        store.close()


async def test_the_end_is_decided_when_its_debounce_runs_out_not_at_a_poll(path: Path) -> None:
    pushes = Pushes()
    async with _running(path, pushes, debounce_seconds=0.3) as (store, detector):
        state = m.CarState(VIN)
        await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
        stopped = time.time()
        await _send(store, detector, state, status="NOCHARGING", soc="55")
        await pushes.until(2)
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED, ChargeEventKind.STOPPED]
    assert pushes[1].at >= stopped + 0.3  # decided at the deadline, not before it


async def test_a_failed_push_is_tried_again_after_the_retry_time_not_at_a_poll(path: Path) -> None:
    pushes = Pushes()
    pushes.failing = True
    async with _running(path, pushes, retry_seconds=0.2) as (store, detector):
        state = m.CarState(VIN)
        await _send(store, detector, state, status="CHARGINGACTIVE", soc="40", target="80")
        pushes.failing = False
        await pushes.until(1)
        await detector.drain()
        track = store.cardata_track(OWNER, VIN)
        assert (
            track is not None
            and track.pending is None
            and track.last_event == f"started:{track.session_start:.0f}"
        )
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED]


async def test_a_debounce_running_at_a_restart_is_decided_at_its_deadline(path: Path) -> None:
    pushes = Pushes()
    async with _running(path, pushes, debounce_seconds=2.0) as (store, detector):
        state = m.CarState(VIN)
        await _send(store, detector, state, status="CHARGINGACTIVE", soc="70", target="100")
        await _send(store, detector, state, status="CHARGINGENDED", soc="99")
    with Store(path, [KEY]) as store:
        track = store.cardata_track(OWNER, VIN)
    assert track is not None and track.deadline is not None and track.deadline > time.time()  # still running

    async with _running(path, pushes, debounce_seconds=2.0):  # the restart: its first tick finds nothing due
        await pushes.until(2)
    assert [e.kind for e in pushes] == [ChargeEventKind.STARTED, ChargeEventKind.COMPLETE]


async def _report(
    store: Store, detector: ChargeDetector, state: m.CarState, values: dict[str, m.TelematicValue]
) -> None:
    """A quiet car's burst, a key a message, as the supervisor feeds it."""
    for key, value in values.items():
        changed = state.merge({key: value})
        store.save_cardata_state(OWNER, state.vin, state.to_json())
        await detector.observe(OWNER, state, changed)


def _stamped(at: float, soc: str, reason: str, reason_at: float | None = None) -> dict[str, m.TelematicValue]:
    """A quiet car's report at `at`: not charging, its level and its last end reason (stamped `reason_at`)."""
    stamp = datetime.fromtimestamp(at, UTC)
    return {
        m.CHARGING_STATUS: m.TelematicValue("NOCHARGING", None, stamp),
        m.SOC_HEADER: m.TelematicValue(soc, "%", stamp),
        m.HVPM_FINISH_REASON: m.TelematicValue(reason, None, datetime.fromtimestamp(reason_at or at, UTC)),
    }


async def test_an_end_reason_stamped_before_its_report_is_a_charge_that_ended_unseen(path: Path) -> None:
    # A car that keeps when each value changed (unlike the simulator, which restamps a burst): the same end
    # reason as last time, but stamped after the last report and before this one, tells of a new charge.
    clock, pushes = Clock(), Pushes()
    store, detector = _open(path, clock, pushes)
    state = m.CarState(VIN)
    await _report(store, detector, state, _stamped(T0, "50", "END_REQUESTED_BY_DRIVER"))
    clock.now += 121
    await detector.tick()  # the first report: where the next is compared from, nothing to push
    assert pushes == []

    clock.now += 1000
    await _report(store, detector, state, _stamped(clock.now, "50", "END_REQUESTED_BY_DRIVER", T0 + 500))
    clock.now += 121
    await detector.tick()
    [event] = pushes
    assert (event.kind, event.soc_at_start, event.soc, event.reason, event.unseen) == (
        ChargeEventKind.STOPPED,
        50,
        50,
        "END_REQUESTED_BY_DRIVER",
        True,
    )

    clock.now += 1000  # switched off again: every value restamped, the same reason, the same level
    await _report(store, detector, state, _stamped(clock.now, "50", "END_REQUESTED_BY_DRIVER"))
    clock.now += 121
    await detector.tick()
    assert len(pushes) == 1
