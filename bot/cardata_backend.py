"""The BMW CarData backend: the REST client, the stream supervisor, the charge-event detector, the late reads,
the alerts decided from the stream and the drives closed from its reports, for every linked owner of the
process, behind the `Backend` protocol of bot/backends.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.alerts import Alerter, Reading
from bot.backends import from_car_state
from bot.capabilities import CARDATA_CAPABILITIES, BackendName
from bot.car_status import CarStatus, Refreshed, charge_over_at, charge_rate, estimated
from bot.cardata import models as cd
from bot.cardata.auth import DeviceFlow, DeviceOutcome
from bot.cardata.client import CarDataClient
from bot.cardata.errors import BudgetSpent, CarDataError
from bot.cardata.events import DEFAULT_DEBOUNCE_SECONDS, ChargeDetector, ChargeEvent
from bot.cardata.late import LateReads
from bot.cardata.models import BasicData, CarState, ChargingSession, Tokens
from bot.cardata.pacing import CONNECTS_PER_MINUTE
from bot.cardata.storage import CarDataLink, CarDataStore
from bot.cardata.stream import DEFAULT_MQTT_URL, HELD_RETRY, OnBlocked, StreamSupervisor
from bot.drives import SETTLED_SECONDS, Parked, drive_between
from bot.history import usable_kwh
from bot.store import StoredVehicle
from bot.store_errors import StoreFull

log = logging.getLogger(__name__)
HISTORY_CACHE_SECONDS = 3600.0
# How often CarData cars' timed alerts ("N minutes after", the evening reminder) are checked between stream
# messages: at most this late, as the i Remote watcher's alerts are at most a poll late.
ALERT_TICK_SECONDS = 60.0


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
    readings that arrive meanwhile are taken together (the latest state counts). No call to BMW.

    Drives are closed from the same reports (bot/drives.py): a quiet car's when the detector decided on its
    switch-off burst, a live car's at the tick once its mileage and position have settled."""

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
        # Each live car's newest report when `settle_drives` last found it settled: until it reports again,
        # there is nothing to look up (the check runs every minute for every car).
        self._settled: dict[tuple[int, str], datetime | None] = {}
        self._moving: set[tuple[int, str]] = set()  # live cars whose drive's start is kept: none to look up

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
        for car in [car for car in self._settled if car[0] == owner]:
            del self._settled[car]
        self._moving -= {car for car in self._moving if car[0] == owner}
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
        deadline (bot/cardata/late.py). Asked at every stream message: a live car, or one neither charging
        nor plugged in, is told apart from its state before its whole status is built."""
        state = self.state(owner, vin)
        if state is None or state.reports_changes or not (state.is_charging or state.plugged_in):
            return None
        status = from_car_state(vin, state)
        if not status.charging_unreported:
            return None
        over = charge_over_at(status, charge_rate(self.store.charge_sessions(owner, vin)))
        return None if over is None else over.timestamp()

    async def _snapshot(self, owner: int, vin: str) -> None:
        """One REST snapshot (one call of the day's reads) merged into the state like the stream's values."""
        await self.supervisor.apply(owner, vin, await self.client.telematic_data(owner, vin))

    async def charging_history(
        self, owner: int, vin: str, days: int, *, spend: bool
    ) -> list[ChargingSession] | None:
        """The charging sessions of the last `days` days, newest first: one call (one page) of the day's
        budget, then kept for HISTORY_CACHE_SECONDS (sessions change only when a charge ends). Without
        `spend` (a person the car is shared with, the monthly summary) only that copy, or None."""
        cached = self._history.get((owner, vin))
        now = time.monotonic()
        if cached is not None and now - cached[0] < HISTORY_CACHE_SECONDS:
            return cached[1]
        if not spend:
            return None
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
            await self._alert(owner, vin, now)  # one car's failure is its own: the tick goes on
            # A car is a few store reads and rarely a push: without a pause here a thousand cars held the
            # event loop for a few hundred milliseconds (benchmarks/README.md, "Soak").
            await asyncio.sleep(0)

    async def run_alerts(self) -> None:
        """`alert_tick` and `settle_drives` every `alert_tick_seconds`, forever (cancel to stop)."""
        while True:
            await asyncio.sleep(self._alert_tick)
            try:
                await self.alert_tick()
                await self.settle_drives()
            except Exception:
                log.exception("cardata: alert tick failed")

    async def _changed(self, owner: int, state: CarState, changed: set[str]) -> None:
        """The stream's listener: a live car's drive may have begun, the car's late read is due anew, its
        alerts are decided soon, in the background."""
        if cd.MILEAGE in changed and state.reports_changes:
            with contextlib.suppress(StoreFull):  # the drive's start is unknown: it is dated from its parking
                self._moved(owner, state)
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
            await self._alert(*car, self.clock())

    async def _alert(self, owner: int, vin: str, now: float) -> None:
        """Decide a car's alerts; what fails is logged (a full disk by the store, once a stretch) and decided
        again at its next change or tick."""
        if self._alerter is None:
            return
        async with self._alert_locks.setdefault((owner, vin), asyncio.Lock()):
            state = self.supervisor.state(owner, vin)
            if state is None:
                return
            try:
                await self._alerter.observe(owner, vin, Reading.of(from_car_state(vin, state)), now)
            except StoreFull:
                pass
            except Exception:
                log.exception("cardata: deciding alerts of owner %s failed", owner)

    # --- what the stream reports ----------------------------------------------------------------------------

    def _parked(self, owner: int, state: CarState) -> None:
        """A report the charge detector decided on: a quiet car's is its switch-off burst (or a snapshot of
        it parked), which closes the drive since its last one when the mileage grew (bot/drives.py). A live
        car's reports come one value at a time, while it drives too: `settle_drives` closes its drives."""
        at = state.updated_at
        if state.reports_changes or at is None:
            return
        lat, lon = state.position or (None, None)
        parked = Parked(at.timestamp(), state.mileage_km, state.soc, lat, lon)
        with contextlib.suppress(StoreFull):  # the next report closes this drive with its own: no km lost
            self._close(owner, state.vin, parked, at.timestamp())

    def _moved(self, owner: int, state: CarState) -> None:
        """A live car's mileage changed: its first rise since it parked is when its drive began, kept with its
        last parked report so that a restart before the drive settles keeps it."""
        car = (owner, state.vin)
        if car in self._moving:
            return  # its start is kept already: a km further on the same drive
        before = self.store.drive_mark(owner, state.vin)
        mileage, at = state.mileage_km, state.reported_at(cd.MILEAGE)
        if before is None or before.mileage_km is None or mileage is None:
            return
        if before.moved_at is not None:
            self._moving.add(car)
        elif mileage > before.mileage_km and at is not None:
            self.store.save_drive_mark(owner, state.vin, replace(before, moved_at=at.timestamp()))
            self._moving.add(car)

    async def settle_drives(self, now: float | None = None) -> None:
        """Close the drive of every live car whose mileage and position have not changed for SETTLED_SECONDS
        by `now` (default: the clock); its parked report is their last change. A settled car whose level
        or place changed without a drive (a charge) is parked anew there. No call to BMW."""
        now = self.clock() if now is None else now
        for owner, vin in self.supervisor.cars():
            state = self.supervisor.state(owner, vin)
            if state is None or not state.reports_changes:
                continue
            moved = state.reported_at(cd.MILEAGE, cd.LATITUDE, cd.LONGITUDE)
            if moved is None or now - moved.timestamp() < SETTLED_SECONDS:
                continue  # driving, or stopped for a moment
            if self._settled.get((owner, vin), False) == state.updated_at:
                continue  # no report since it was last found settled
            before = self.store.drive_mark(owner, vin)
            lat, lon = state.position or (None, None)
            parked = Parked(moved.timestamp(), state.mileage_km, state.soc, lat, lon)
            if before is not None and before.mileage_km == parked.mileage_km:
                if (before.soc, before.lat, before.lon) == (parked.soc, lat, lon):
                    self._settled[(owner, vin)] = state.updated_at
                    continue  # nothing new since it parked
                at = state.updated_at or moved
                parked = replace(parked, at=max(before.at, at.timestamp()))  # after what changed
            try:
                self._close(owner, vin, parked, now, charging=state.is_charging)
            except StoreFull:
                continue  # the store logs it, once a stretch; closed at a later tick
            self._settled[(owner, vin)] = state.updated_at

    def _close(self, owner: int, vin: str, now: Parked, seen_at: float, *, charging: bool = False) -> None:
        """Keep `now` as the car's last parked report, with the drive since the one before when the mileage
        grew; `seen_at`: when the bot saw the car so, up to which a charge makes the level used unknown, as
        does one under way (`charging`)."""
        before = self.store.drive_mark(owner, vin)
        if before is not None and now.at <= before.at:
            return  # the same report decided again (a restart), or an older one read late
        # A charge between the two reports (the charging history tells) leaves the level used unknown.
        charged = before is not None and (
            charging
            or any(
                s.ended_at > before.at and s.started_at < seen_at
                for s in self.store.charge_sessions(owner, vin)
            )
        )
        capacity = usable_kwh(self.store.cardata_model(owner, vin))
        drive = drive_between(owner, vin, before, now, charged=charged, capacity_kwh=capacity)
        self.store.save_drive_mark(owner, vin, now, drive)
        self._moving.discard((owner, vin))  # parked: the next drive's start is still to come

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
