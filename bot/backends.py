"""The car backends' seam: the `Backend` protocol the garage asks, both backends' statuses converted into the
neutral shapes of bot/car_status.py, and the BMW CarData backend.

A linked account has one backend (the store's `users.backend`, a `BackendName` of bot/capabilities.py): the
i Remote API (`IRemoteBackend`, bot/iremote.py) or BMW CarData (`CarDataBackend` below, over bot/cardata/).
Neither the garage nor the chat asks which: they ask capabilities, the backend's (`Backend.capabilities`) or
a car's (`StoredVehicle.capabilities`: the i Remote API's flag names, e.g. "doorLock"; CarData cars get
`CARDATA_CAPABILITIES`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.alerts import Alerter, Reading
from bot.bmw.models import VehicleStatus
from bot.capabilities import CARDATA_CAPABILITIES, BackendName
from bot.car_status import CarPosition, CarStatus, Part, Refreshed, charge_over_at, charge_rate, estimated
from bot.cardata import models as cd
from bot.cardata.auth import DeviceFlow, DeviceOutcome
from bot.cardata.client import CarDataClient
from bot.cardata.errors import BudgetSpent, CarDataError
from bot.cardata.events import DEFAULT_DEBOUNCE_SECONDS, ChargeDetector, ChargeEvent
from bot.cardata.late import LateReads
from bot.cardata.models import BasicData, CarState, ChargingSession, Tokens
from bot.cardata.storage import CarDataLink, CarDataStore
from bot.cardata.stream import CONNECTS_PER_MINUTE, DEFAULT_MQTT_URL, HELD_RETRY, OnBlocked, StreamSupervisor
from bot.drives import Parked, drive_between
from bot.history import BMW_HISTORY, ChargeSession, usable_kwh
from bot.store import StoredVehicle

log = logging.getLogger(__name__)
HISTORY_CACHE_SECONDS = 3600.0
# How often CarData cars' timed alerts ("N minutes after", the evening reminder) are checked between stream
# messages: at most this late, as the i Remote watcher's alerts are at most a poll late.
ALERT_TICK_SECONDS = 60.0


@runtime_checkable
class Backend(Protocol):
    """What the garage needs of a car backend, whichever it is. Linking differs (e-mail and password, or a
    device code) and stays with each; so do what only one offers behind a capability (the i Remote API's
    `CAR_CALLS`). A new backend: docs/where-to-change.md."""

    @property
    def name(self) -> BackendName:
        """As stored in users.backend."""

    @property
    def capabilities(self) -> frozenset[str]:
        """The most any of its cars can have; a car's own set may be smaller."""

    async def start(self) -> None:
        """At start, once the garage's push path is set (a stream starts listening)."""

    async def aclose(self) -> None: ...
    async def unlink(self, owner: int) -> None:
        """Let go of the owner's link (sessions, streams, BMW's side); the garage wipes the rows."""

    def account_name(self, owner: int) -> str | None:
        """What names the linked account to its owner; None when it has no name."""

    async def read(self, owner: int, vin: str) -> CarStatus:
        """What the car last reported, in the neutral shape."""

    async def refresh(self, owner: int, vin: str, *, own: bool) -> Refreshed:
        """A status fresh from BMW on request; `own`: asked by the owner (not a person it is shared with),
        whose budget, where there is one, it may spend."""

    def calls_spent(self, owner: int) -> BudgetSpent | None:
        """Why the owner has no Refresh left today; None while they have one, and without a budget."""

    async def charging_history(self, owner: int, vin: str, days: int) -> list[ChargingSession]:
        """BMW's own charging sessions of the last `days` days, newest first (`CHARGING_HISTORY`)."""


# --- statuses in the neutral shape --------------------------------------------------------------------------

# i Remote updateReason values of a car that was parked (not VEHICLE_MOVING, not a charging report).
PARKED_REASONS = frozenset(
    {
        "VEHICLE_SHUTDOWN",
        "VEHICLE_SHUTDOWN_SECURED",
        "VEHICLE_SECURED",
        "VEHICLE_UNSECURED",
        "DOOR_STATE_CHANGED",
    }
)
MOVING = "VEHICLE_MOVING"


def from_vehicle_status(vin: str, s: VehicleStatus) -> CarStatus:
    """An i Remote status: one snapshot, so every reported part has the snapshot's time."""
    has_tank = bool(s.max_fuel or s.remaining_range_fuel or s.remaining_fuel)  # real BEVs report 0 l of fuel
    position = None
    if s.position is not None:
        p = s.position
        position = CarPosition(
            p.lat, p.lon, p.heading, hidden=p.status not in (None, "OK"), impossible=p.impossible
        )
    return CarStatus(
        vin=vin,
        soc=s.charging_level_hv,
        electric_range_km=s.remaining_range_electric,
        fuel_range_km=s.remaining_range_fuel if has_tank else None,
        fuel_litres=s.remaining_fuel if has_tank else None,
        fuel_percent=s.fuel_percent if has_tank else None,
        charging=s.is_charging,
        charging_state=s.charging_status,
        minutes_left=s.charging_time_remaining,
        plugged_in=None if s.connection_status is None else s.is_plugged_in,
        open_items=tuple(s.open_items),
        lock_state=s.door_lock_state,
        locked=None if s.door_lock_state is None else s.door_lock_state != "UNLOCKED",
        waiting=s.charging_status == "WAITING_FOR_CHARGING",
        charge_finished=(s.charging_status or "").startswith("FINISHED_"),
        moving=s.update_reason == MOVING,
        parked_at=s.update_time if s.update_reason in PARKED_REASONS else None,
        mileage_km=s.mileage,
        position=position,
        end_reason=s.last_charging_end_reason,
        end_result=s.last_charging_end_result,
        reported_at={} if s.update_time is None else dict.fromkeys(Part, s.update_time),
        snapshot=True,
    )


# The CarData keys each part of a status is read from (its age: the newest of them).
_PART_KEYS: dict[Part, tuple[str, ...]] = {
    Part.CHARGE: (
        cd.SOC_DISPLAYED,
        cd.SOC_HEADER,
        cd.ELECTRIC_RANGE,
        cd.TOTAL_RANGE,
        cd.FUEL_LITRES,
        cd.FUEL_PERCENT,
    ),
    Part.CHARGING: cd.CHARGING_KEYS,
    Part.PLUG: cd.PLUG_KEYS,
    Part.DOORS: cd.DOOR_KEYS,
    Part.MILEAGE: (cd.MILEAGE,),
    Part.POSITION: (cd.LATITUDE, cd.LONGITUDE),
}


def from_car_state(vin: str, state: CarState | None) -> CarStatus:
    """What CarData's stream and snapshots last said, each part as old as the car's newest report of it."""
    if state is None:
        return CarStatus(vin=vin)
    reported = {part: at for part, keys in _PART_KEYS.items() if (at := state.reported_at(*keys)) is not None}
    has_tank = state.fuel_litres is not None or state.fuel_percent is not None
    electric, total = state.electric_range_km, state.total_range_km
    fuel_range = None  # the REX: its total range less the electric one
    if has_tank and total is not None and electric is not None:
        fuel_range = max(0.0, total - electric)
    has_tank = bool(fuel_range or state.fuel_litres)  # a BEV may report 0 for a tank it does not have
    status = state.charging_status or state.hv_status
    lat_lon = state.position
    # The last change of its door (lock) status stands for parking: CarData streams no "moving".
    parked = state.values.get(cd.DOOR_STATUS) or state.values.get(cd.DOOR_LOCK)
    quiet = not state.reports_changes
    minutes = state.minutes_remaining
    mileage = state.mileage_km
    return CarStatus(
        vin=vin,
        soc=state.soc,
        target_soc=state.target_soc,
        electric_range_km=electric,
        fuel_range_km=fuel_range if has_tank else None,
        fuel_litres=state.fuel_litres if has_tank else None,
        fuel_percent=state.fuel_percent if has_tank else None,
        charging=state.is_charging,
        charging_state=None if status is None else str(status),
        minutes_left=round(minutes) if state.is_charging and minutes is not None and minutes > 0 else None,
        plugged_in=True if state.is_charging else state.plugged_in,
        # CarData streams the windows but no door's own state: only an open window is worth saying.
        open_items=state.open_windows or None,
        lock_state=state.lock_state,
        locked=state.locked,
        # Better no "not charging" alert than one for a car waiting for its window.
        waiting=state.charging_status == cd.ChargingStatus.CHARGINGPAUSED,
        charge_finished=str(state.hv_status or "").startswith("FINISHED_"),
        parked_at=None if parked is None else parked.timestamp,
        end_reported_at=state.reported_at(cd.REASON_CHARGING_END, cd.HVPM_FINISH_REASON),
        plug_as_of=_oldest(state, cd.PLUG_KEYS, cd.CHARGING_KEYS) if quiet else None,
        doors_as_of=_oldest(state, cd.DOOR_KEYS, tuple(cd.WINDOW_KEYS)) if quiet else None,
        newest_report=state.updated_at,
        mileage_km=None if mileage is None else round(mileage),
        position=None if lat_lon is None else CarPosition(lat_lon[0], lat_lon[1], state.heading),
        end_reason=state.end_reason,
        end_result=state.last_charging_result,
        reported_at=reported,
        reports_rarely=quiet,
    )


def _oldest(state: CarState, *groups: tuple[str, ...]) -> datetime | None:
    """The oldest of the groups' newest reports: as of when all of them are known (unreported: left out)."""
    return min((t for keys in groups if (t := state.reported_at(*keys)) is not None), default=None)


def from_bmw_history(tg_id: int, vin: str, session: ChargingSession) -> ChargeSession | None:
    """A charge of BMW's own CarData charging history (kWh measured from the grid); None when BMW gave no
    start, or the charge is still running (BMW lists it without an end). How it ended is unknown (""),
    unless `merge` finds it recorded."""
    if session.start is None or session.end is None:
        return None
    started, ended = session.start.timestamp(), session.end.timestamp()
    return ChargeSession(
        tg_id=tg_id,
        vin=vin,
        started_at=started,
        ended_at=ended,
        soc_start=session.start_soc,
        soc_end=session.end_soc,
        energy_kwh=session.energy_kwh,
        ended="",
        reason=None,
        lat=None,
        lon=None,
        source=BMW_HISTORY,
    )


# --- BMW CarData ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarDataCar:
    """A PRIMARY car found at linking, with its basic data where BMW gave it."""

    vin: str
    basic: BasicData | None

    def stored(self, owner: int, position: int) -> StoredVehicle:
        """As the garage keeps it: model and drive train from its basic data, CarData's capabilities."""
        basic = self.basic
        model, drive_train = (basic.model_name, basic.drive_train) if basic else (None, None)
        return StoredVehicle(owner, self.vin, model, None, drive_train, CARDATA_CAPABILITIES, position)


OnEvent = Callable[[ChargeEvent], Awaitable[None]]
OnRelink = Callable[[int], Awaitable[None]]


class CarDataBackend:
    """BMW CarData for every linked owner of the process: the REST client, the stream supervisor and the
    charge-event detector, started and stopped together. Charge events and "link again" go to the callbacks
    the garage binds (`bind`): events are written to the store before the callback runs, and a callback that
    raises is called again later (bot/cardata/events.py), so each reaches its owner exactly once.

    The alerts (bot/alerts.py, with the `Alerter` the garage binds) are decided from the stream: at each
    change of a car's state, in the background (a push waiting on Telegram never holds up the stream), and
    every `alert_tick_seconds` for the timed ones. One car's alerts are decided one reading at a time, and
    readings that arrive meanwhile are taken together (the latest state counts). No call to BMW."""

    name = BackendName.CARDATA
    capabilities = CARDATA_CAPABILITIES

    def __init__(
        self,
        store: CarDataStore,
        client: CarDataClient,
        *,
        mqtt_url: str = DEFAULT_MQTT_URL,
        ca_file: str | Path | None = None,
        debounce_seconds: float = DEFAULT_DEBOUNCE_SECONDS,
        connect_interval: float = 0.2,
        connects_per_minute: int = CONNECTS_PER_MINUTE,
        stream_retry_seconds: float = HELD_RETRY,
        alert_tick_seconds: float = ALERT_TICK_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.detector = ChargeDetector(
            store, self._event, debounce_seconds=debounce_seconds, state_of=self.state, on_report=self._parked
        )
        self.supervisor = StreamSupervisor(
            store,
            client.tokens,
            self.detector,
            mqtt_url=mqtt_url,
            ca_file=ca_file,
            connect_interval=connect_interval,
            connects_per_minute=connects_per_minute,
            listener=self._changed,
            on_relink=self._relink,
            on_blocked=self._blocked,
            held_retry=stream_retry_seconds,
        )
        self.debounce_seconds = debounce_seconds
        self._on_event: OnEvent | None = None
        self._on_relink: OnRelink | None = None
        self._on_blocked: OnBlocked | None = None
        self._alerter: Alerter | None = None
        self._alert_tick = alert_tick_seconds
        self.clock = clock  # the wall clock (a test's: the simulator's)
        self.late_reads = LateReads(
            self.detector, client, self._charge_over_at, self._snapshot, clock=lambda: self.clock()
        )
        self._detecting: asyncio.Task[None] | None = None
        self._reading_late: asyncio.Task[None] | None = None
        self._ticking: asyncio.Task[None] | None = None
        self._alert_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._alerting: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._alerts_stale: set[tuple[int, str]] = set()
        self._history: dict[tuple[int, str], tuple[float, list[ChargingSession]]] = {}

    def bind(
        self,
        on_event: OnEvent,
        on_relink: OnRelink,
        alerter: Alerter | None = None,
        on_blocked: OnBlocked | None = None,
    ) -> None:
        self._on_event, self._on_relink, self._alerter = on_event, on_relink, alerter
        self._on_blocked = on_blocked

    async def start(self) -> None:
        """Stream every stored link (connections staggered), run the detector's deadlines and retries, the
        late reads' deadlines and the alerts' ticks."""
        self.supervisor.start()
        for owner, vin in self.supervisor.cars():
            self.late_reads.schedule(owner, vin)
        self._detecting = asyncio.create_task(self.detector.run(), name="cardata-charge-detector")
        self._reading_late = asyncio.create_task(self.late_reads.run(), name="cardata-late-reads")
        self._ticking = asyncio.create_task(self.run_alerts(), name="cardata-alerts")

    async def aclose(self) -> None:
        for task in (self._detecting, self._reading_late, self._ticking):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.supervisor.aclose()
        await self.detector.drain()
        while self._alerting:
            await asyncio.gather(*list(self._alerting.values()), return_exceptions=True)
        await self.client.aclose()

    # --- linking --------------------------------------------------------------------------------------------

    async def start_device_flow(self, client_id: str) -> DeviceFlow:
        return await self.client.auth.start(client_id)

    async def wait_device_flow(self, flow: DeviceFlow) -> DeviceOutcome:
        return await self.client.auth.wait(flow)

    async def link(self, owner: int, client_id: str, tokens: Tokens) -> tuple[CarDataLink, list[CarDataCar]]:
        """Try a new link at BMW with its own tokens, nothing stored (`CarDataClient.check_link`): the link
        to store and its PRIMARY cars with their basic data (from the linking reserve; a car whose basic
        data fails is listed without). The owner's stored link and its stream go on meanwhile."""
        link, vins = await self.client.check_link(owner, client_id, tokens)
        cars = []
        for vin in vins:
            try:
                basic = await self.client.basic_data(owner, vin, linking=True, tokens=tokens)
            except CarDataError as exc:
                log.info("cardata: no basic data for a car of owner %s (%s)", owner, type(exc).__name__)
                basic = None
            cars.append(CarDataCar(vin, basic))
        return link, cars

    async def follow(self, owner: int, vins: list[str]) -> None:
        """After (re-)linking, the link stored: the stream (again) with its tokens, then one snapshot per car
        (so the status shows at once)."""
        await self.supervisor.remove(owner)  # a re-link's earlier stream, on its earlier tokens or account
        self.supervisor.add(owner)
        for vin in vins:
            try:
                await self._snapshot(owner, vin)
            except CarDataError as exc:
                log.info("cardata: no first snapshot for owner %s (%s)", owner, type(exc).__name__)

    async def unlink(self, owner: int) -> None:
        """Stop the stream and retire the container where the day's calls allow and no co-owner (another
        owner linked to the same BMW account) still uses it; the caller wipes the rows."""
        await self.supervisor.remove(owner)
        self.late_reads.forget(owner)
        for car in [car for car in self._history if car[0] == owner]:
            del self._history[car]
        for car in [car for car in self._alert_locks if car[0] == owner]:
            del self._alert_locks[car]
        if self.store.cardata_link(owner) is None:
            return
        if self.store.cardata_container_shared(owner):  # a co-owner still reads through it
            return
        try:
            await self.client.delete_container(owner)
        except CarDataError as exc:  # the budget, or BMW: the container stays (found again by a new link)
            log.info("cardata: container of owner %s kept (%s)", owner, type(exc).__name__)

    # --- reads ----------------------------------------------------------------------------------------------

    def account_name(self, owner: int) -> str | None:
        return None  # a CarData link has no name of its own

    async def read(self, owner: int, vin: str) -> CarStatus:
        """`status`: what the stream and snapshots said (no call to BMW)."""
        return self.status(owner, vin)

    def state(self, owner: int, vin: str) -> CarState | None:
        """The car's last known values: the stream's, else the store's (after a restart, before streaming)."""
        state = self.supervisor.state(owner, vin)
        if state is None:
            values = self.store.cardata_states(owner).get(vin)
            state = None if values is None else CarState.from_json(vin, values)
        return state

    def status(self, owner: int, vin: str) -> CarStatus:
        """The car's last known status; a quiet car charging unreported with its estimated level now."""
        status = from_car_state(vin, self.state(owner, vin))
        if not status.charging_unreported:
            return status
        now = datetime.fromtimestamp(self.clock(), UTC)
        return estimated(status, now, charge_rate(self.store.charge_sessions(owner, vin)))

    def _charge_over_at(self, owner: int, vin: str) -> float | None:
        """When a quiet car charging unreported should be done (None for any other car): the late read's
        deadline (bot/cardata/late.py)."""
        status = from_car_state(vin, self.state(owner, vin))
        if not status.charging_unreported:
            return None
        over = charge_over_at(status, charge_rate(self.store.charge_sessions(owner, vin)))
        return None if over is None else over.timestamp()

    async def _snapshot(self, owner: int, vin: str) -> None:
        """One REST snapshot (one call of the day's reads) merged into the state like the stream's values."""
        await self.supervisor.apply(owner, vin, await self.client.telematic_data(owner, vin))

    async def charging_history(self, owner: int, vin: str, days: int) -> list[ChargingSession]:
        """The charging sessions of the last `days` days, newest first: one call (one page) of the day's
        budget, then kept for HISTORY_CACHE_SECONDS (sessions change only when a charge ends)."""
        cached = self._history.get((owner, vin))
        now = time.monotonic()
        if cached is not None and now - cached[0] < HISTORY_CACHE_SECONDS:
            return cached[1]
        end = datetime.now(UTC)
        history = await self.client.charging_history(owner, vin, end - timedelta(days=days), end)
        sessions = sorted(history.sessions, key=lambda s: s.start or end, reverse=True)
        self._history[(owner, vin)] = (now, sessions)
        return sessions

    def calls_spent(self, owner: int) -> BudgetSpent | None:
        """Why the owner has no reads left today (see CarDataClient.spent); None while they have."""
        return self.client.spent(owner)

    async def refresh(self, owner: int, vin: str, *, own: bool) -> Refreshed:
        """One REST snapshot (one call of the owner's day's budget) merged into the state, with the calls left
        today; a person the car is shared with gets what its stream last said, and spends none of it."""
        if not own:
            return Refreshed(self.status(owner, vin))
        await self._snapshot(owner, vin)
        return Refreshed(self.status(owner, vin), self.client.calls_left(owner))

    # --- alerts ---------------------------------------------------------------------------------------------

    async def alert_tick(self, now: float | None = None) -> None:
        """Decide every streamed car's alerts at `now` (default: the clock) from its last known state: the
        timed alerts come due between stream messages. Waits for their pushes."""
        now = self.clock() if now is None else now
        for owner, vin in self.supervisor.cars():
            await self._alert(owner, vin, now)
            # A car is a few store reads and rarely a push: without a pause here a thousand cars held the
            # event loop for a few hundred milliseconds (benchmarks/README.md, "Soak").
            await asyncio.sleep(0)

    async def run_alerts(self) -> None:
        """`alert_tick` every `alert_tick_seconds`, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self._alert_tick)
            try:
                await self.alert_tick()
            except Exception:
                log.exception("cardata: alert tick failed")

    async def _changed(self, owner: int, state: CarState, changed: set[str]) -> None:
        """The stream's listener: the car's late read is due anew, its alerts are decided soon, in the
        background."""
        self.late_reads.schedule(owner, state.vin)
        car = (owner, state.vin)
        self._alerts_stale.add(car)
        if car in self._alerting:
            return  # the running task takes this change too (it reads the state afresh)
        task = asyncio.create_task(self._alert_changes(car))
        self._alerting[car] = task
        task.add_done_callback(lambda _: self._alerting.pop(car, None))

    async def _alert_changes(self, car: tuple[int, str]) -> None:
        while car in self._alerts_stale:
            self._alerts_stale.discard(car)
            try:
                await self._alert(*car, self.clock())
            except Exception:
                log.exception("cardata: deciding alerts of owner %s failed", car[0])

    async def _alert(self, owner: int, vin: str, now: float) -> None:
        if self._alerter is None:
            return
        async with self._alert_locks.setdefault((owner, vin), asyncio.Lock()):
            state = self.supervisor.state(owner, vin)
            if state is not None:
                await self._alerter.observe(owner, vin, Reading.of(from_car_state(vin, state)), now)

    # --- what the stream reports ----------------------------------------------------------------------------

    def _parked(self, owner: int, state: CarState) -> None:
        """A report the charge detector decided on: a quiet car's is its switch-off burst (or a snapshot of
        it parked), which closes the drive since its last one when the mileage grew (bot/drives.py). A live
        car's reports come one value at a time, while it drives too: its drives are not recorded yet."""
        at = state.updated_at
        if state.reports_changes or at is None:
            return
        lat, lon = state.position or (None, None)
        now = Parked(at.timestamp(), state.mileage_km, state.soc, lat, lon)
        before = self.store.drive_mark(owner, state.vin)
        if before is not None and now.at <= before.at:
            return  # the same report decided again (a restart), or an older one read late
        # A charge between the two reports (the charging history tells) leaves the level used unknown.
        charged = before is not None and any(
            s.ended_at > before.at and s.started_at < now.at
            for s in self.store.charge_sessions(owner, state.vin)
        )
        capacity = usable_kwh(self.store.cardata_model(owner, state.vin))
        drive = drive_between(owner, state.vin, before, now, charged=charged, capacity_kwh=capacity)
        self.store.save_drive_mark(owner, state.vin, now, drive)

    async def _event(self, event: ChargeEvent) -> None:
        if self._on_event is None:
            raise RuntimeError("no one takes CarData charge events yet")  # the detector tries again later
        await self._on_event(event)

    async def _relink(self, owner: int) -> None:
        if self._on_relink is not None:
            await self._on_relink(owner)

    async def _blocked(self, owner: int, block: cd.StreamBlock | None) -> None:
        if self._on_blocked is not None:
            await self._on_blocked(owner, block)
