"""The car service: everything the chat layer may do with a Telegram user's cars, the coordinator of the rooms
that do it.

Every method takes the Telegram user id and checks that the VIN is one of that user's cars (their own, or one
shared with them: bot/sharing.py) before any request leaves the process, so no input can reach another user's
car. The request then goes to the owner's backend (bot/backends.py `Backend`): the i Remote API
(bot/iremote.py: sessions, tokens, a refused password) or BMW CarData (read-only, pushed by its stream). The
garage asks the backend's capabilities, never which backend it is; statuses and pushes come out in the neutral
shapes of bot/car_status.py. Logins are guarded by bot/login_guard.py; remote commands are rate limited,
one at a time per car, and recorded so that a restart can finish them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import tzinfo
from typing import TypeVar

from bot.alerts import AlertPrefs, CarAlert, ZoneOf
from bot.backends import Backend
from bot.bmw.client import budget
from bot.bmw.models import (
    Account,
    AllTrips,
    ChargingProfile,
    Destination,
    ExecutionStatus,
    LastTrip,
    Poi,
    RangeMap,
    Region,
    ServiceType,
    Vehicle,
    VehicleStatus,
)
from bot.capabilities import BackendName, Capability
from bot.car_status import CarStatus, Notice, Refreshed
from bot.cardata.auth import DeviceFlow, DeviceOutcome
from bot.cardata.errors import BudgetSpent
from bot.cardata.models import ChargingSession, StreamBlock, Tokens
from bot.cardata_backend import CarDataBackend
from bot.cardata_pushes import CarDataPushes
from bot.commands import RemoteCommands
from bot.costs import ChargePrice, Costing, Tariff, costing
from bot.drives import Drive
from bot.garage_errors import (
    CarNotLinked,
    NothingLinked,
    OwnerMustRelink,
    OwnerOnly,
    PasswordRefused,
    RemoteNotAllowed,
    UnsupportedByBackend,
)
from bot.history import ChargeSession
from bot.iremote import CarApi, IRemoteBackend, OnStatus
from bot.login_guard import LoginGuard
from bot.months import MileageMark
from bot.sharing import SharedAlerter, Sharing
from bot.store import CommandInFlight, NotifyPrefs, Store, StoredVehicle, UserSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
Notify = Callable[[Notice | CarAlert], Awaitable[None]]  # raises when the push should be tried again later


@asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """Reads inside end within `seconds`, the BMW client's retries included (TimeoutError after that): for a
    user waiting on an answer. The watcher keeps its own, longer patience."""
    with budget(seconds):
        async with asyncio.timeout(seconds):
            yield


class Garage:
    def __init__(
        self,
        store: Store,
        api: CarApi,
        *,
        cardata: CarDataBackend | None = None,
        zone_of: ZoneOf | None = None,
        commands_per_minute: int = 6,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.iremote = IRemoteBackend(store, api)
        self.cardata = cardata
        # The configured backends by the name each owner's account stores (CAR_BACKENDS; i Remote always, as
        # the watcher's and remote commands' API).
        self.backends: dict[BackendName, Backend] = {self.iremote.name: self.iremote}
        self.sharing = Sharing(store, wall_clock)
        self.logins = LoginGuard(store, clock=clock, wall_clock=wall_clock)
        # Where owners' pushes go (the chat's pusher), set by the wiring once the bot exists (bot/app.py).
        self.notify: Notify | None = None
        # Each owner's time zone (bot/chat/prefs.py, set by the wiring): their alerts' times are theirs.
        self.zone_of = zone_of
        if cardata is not None:
            self.backends[cardata.name] = cardata
            pushes = CarDataPushes(store, cardata, self._notify)
            cardata.bind(
                pushes.charge_event,
                pushes.relink_needed,
                SharedAlerter(store, self._notify, zone_of),
                on_blocked=pushes.stream_blocked,
            )
        self.commands = RemoteCommands(store, commands_per_minute, clock)

    async def start(self) -> None:
        """At start, once `notify` is set: the backends that push start listening (CarData's streams)."""
        for backend in self.backends.values():
            await backend.start()

    async def aclose(self) -> None:
        """At shutdown, after the last update: stop the streams, close the car APIs' connections."""
        for backend in reversed(self.backends.values()):
            await backend.aclose()

    def backend(self, tg_id: int) -> BackendName | None:
        """The backend of the user's account, for the wiring and tests; the chat asks a car's capabilities."""
        return self.store.backend(tg_id)

    def backend_of(self, tg_id: int) -> Backend:
        """The backend of the user's account: NothingLinked without one, UnsupportedByBackend when not
        configured."""
        backend = self._linked(tg_id)
        if backend is None:
            raise (
                NothingLinked
                if self.store.backend(tg_id) is None
                else UnsupportedByBackend("not in CAR_BACKENDS")
            )
        return backend

    def _linked(self, tg_id: int) -> Backend | None:
        """The backend of the user's account; None without one, or when it is not configured any more."""
        name = self.store.backend(tg_id)
        return None if name is None else self.backends.get(name)

    async def _replace(self, tg_id: int, by: Backend) -> None:
        """Before `by` stores a new link of the user: an earlier link of another backend lets go (a CarData
        stream stops, an i Remote session is forgotten); `by` takes over its own earlier link itself."""
        earlier = self._linked(tg_id)
        if earlier is not None and earlier is not by:
            await earlier.unlink(tg_id)

    # Linking -----------------------------------------------------------------------------------------------

    async def link(
        self, tg_id: int, first_name: str | None, region: Region, username: str, password: str
    ) -> list[Vehicle]:
        """Log in to the i Remote API and list the cars; only when both succeed is anything stored
        (encrypted), replacing the user's earlier link. LoginCoolDown, before anything reaches BMW, while this
        user or this e-mail is cooling down after failed logins, and instead of the AuthenticationError of the
        failure that begins a cool-down."""
        account = Account(username=username, password=password, region=region)
        async with self.logins.login(tg_id, username):
            await self.iremote.api.login(account)
        vehicles = await self.iremote.api.vehicles(account)
        await self._replace(tg_id, self.iremote)
        self.iremote.link(tg_id, first_name, account, vehicles)
        return vehicles

    # Linking with a device code (BMW CarData) ---------------------------------------------------------------

    async def start_device_flow(self, tg_id: int, client_id: str) -> DeviceFlow:
        """A device code from BMW for the owner's own client id (show `flow.code.url`, `.user_code` and
        `.expires_at`). CarDataError when BMW refuses (a wrong client id); UnsupportedByBackend without
        CarData; TooManyLoginCodes, before BMW is asked, past the login guard's limit (bot/login_guard.py)."""
        cardata = self._cardata()
        self.logins.take_login_code(tg_id)
        return await cardata.start_device_flow(client_id)

    async def wait_device_flow(self, flow: DeviceFlow) -> DeviceOutcome:
        """Until the owner approves (`Approved(tokens)`) or the flow ends (`Refused(reason)`: expired_token,
        access_denied, invalid_grant...), polling at BMW's interval. Cancel it to abandon the flow."""
        return await self._cardata().wait_device_flow(flow)

    async def finish_device_flow(
        self, tg_id: int, first_name: str | None, flow: DeviceFlow, tokens: Tokens
    ) -> list[StoredVehicle]:
        """Link the approved account: the PRIMARY cars found (model from their basic data) and the container
        found or made with the new tokens, then, all in one go, the link (tokens encrypted) and the cars
        stored, then a first snapshot of each taken and the stream started. Replaces an earlier account of
        this user (an i Remote one too) only then: [] when the account has no usable car, CarDataError when
        BMW fails on the way, or a cancellation, leave the earlier account exactly as it was."""
        cardata = self._cardata()
        try:
            link, found = await cardata.link(tg_id, flow.client_id, tokens)
        except BaseException:
            self.store.forget_cardata_calls_unless_linked(tg_id)
            raise
        if not found:
            self.store.forget_cardata_calls_unless_linked(tg_id)
            return []
        await self._replace(tg_id, cardata)
        self.store.use_cardata(link, first_name, [car.stored(tg_id, i) for i, car in enumerate(found)])
        await cardata.follow(tg_id, [car.vin for car in found])
        return self.store.vehicles(tg_id)

    # The account ------------------------------------------------------------------------------------------

    def needs_relink(self, tg_id: int) -> bool:
        """BMW kept refusing the stored password: the account is as good as gone until a new /link."""
        return self.store.password_refusals(tg_id)[1]

    async def unlink(self, tg_id: int) -> None:
        """Forget the user, linked or only with settings: a CarData stream stops and its container is retired
        (where the day's calls allow and no co-owner uses it), then every row about them goes."""
        if (backend := self._linked(tg_id)) is not None:
            await backend.unlink(tg_id)
        self.commands.forget(tg_id)  # the login codes' count stays: /unlink must not reset it
        self.store.delete_user(tg_id)

    def is_linked(self, tg_id: int) -> bool:
        return self.store.backend(tg_id) is not None

    def keeps_settings(self, tg_id: int) -> bool:
        """Whether anything of the user is kept even with no account linked: what /unlink then removes."""
        return self.store.keeps_settings(tg_id)

    def account_name(self, tg_id: int) -> str | None:
        """What names the linked account to its owner (the i Remote e-mail); None when there is none, or
        when it has no name (a CarData link)."""
        backend = self._linked(tg_id)
        return None if backend is None else backend.account_name(tg_id)

    # Notification and alert preferences --------------------------------------------------------------------

    def notify_prefs(self, tg_id: int) -> NotifyPrefs:
        return self.store.notify_prefs(tg_id)

    def save_notify_prefs(self, tg_id: int, prefs: NotifyPrefs) -> None:
        self.store.save_notify_prefs(tg_id, prefs)

    def alert_prefs(self, tg_id: int) -> AlertPrefs:
        return self.store.alert_prefs(tg_id)

    def save_alert_prefs(self, tg_id: int, prefs: AlertPrefs) -> None:
        self.store.save_alert_prefs(tg_id, prefs)

    # Settings (/settings) ----------------------------------------------------------------------------------

    def user_settings(self, tg_id: int) -> UserSettings | None:
        """What the user chose; None for a user the bot keeps no row of."""
        return self.store.user_settings(tg_id)

    def save_user_settings(self, tg_id: int, settings: UserSettings) -> None:
        self.store.save_user_settings(tg_id, settings)

    def save_language_code(self, tg_id: int, language_code: str | None) -> None:
        """The language Telegram reports for a known user, kept for pushes (which come without an update)."""
        self.store.save_language_code(tg_id, language_code)

    # Cars --------------------------------------------------------------------------------------------------

    # A car shared with a user (bot/sharing.py) is one of the cars they see, and its StoredVehicle is its
    # owner's (tg_id the owner's): every read below goes to the owner's account through `car(...).tg_id`.

    def cars(self, tg_id: int) -> list[StoredVehicle]:
        cars = self.store.vehicles_seen(tg_id)
        if not cars:
            raise NothingLinked
        return cars

    def all_cars(self, tg_id: int) -> list[StoredVehicle]:
        """The user's cars in their order, then those shared with them; none (rather than NothingLinked) when
        there are none."""
        return self.store.vehicles_seen(tg_id)

    def find_car(self, tg_id: int, vin: str) -> StoredVehicle | None:
        """That car when this user sees it, else None (a car unlinked or unshared since a button was sent)."""
        return self.store.vehicle_seen(tg_id, vin)

    def car(self, tg_id: int, vin: str | None = None) -> StoredVehicle:
        """The given car of this user, or the chosen one; CarNotLinked for any VIN the user does not see."""
        if vin is None:
            vin = self.store.selected_vin(tg_id)
            if vin is None:
                raise NothingLinked
        car = self.store.vehicle_seen(tg_id, vin)
        if car is None:
            raise NothingLinked if not self.store.vehicles_seen(tg_id) else CarNotLinked
        return car

    def may_command(self, tg_id: int, car: StoredVehicle) -> bool:
        """Whether the user may send that car remote commands (and places): their own car, or a car shared
        with them whose owner switched them on for them."""
        if car.tg_id == tg_id:
            return True
        share = self.store.share(car.tg_id, car.vin, tg_id)
        return share is not None and share.remote

    def select(self, tg_id: int, vin: str) -> StoredVehicle:
        if not self.store.select_vin(tg_id, vin):
            raise CarNotLinked
        return self.car(tg_id, vin)

    # Reads -------------------------------------------------------------------------------------------------

    async def status(self, tg_id: int, vin: str) -> CarStatus:
        """What the car last reported: the i Remote API is asked; a CarData car's is what its stream and
        snapshots said (no call to BMW; `CarStatus.empty` until the car has sent anything)."""
        owner = self.car(tg_id, vin).tg_id
        with self._owners_refusal(tg_id, owner):
            return await self.backend_of(owner).read(owner, vin)

    async def refresh(self, tg_id: int, vin: str) -> Refreshed:
        """A status fresh from BMW on the owner's request. For CarData one REST snapshot, from the day's
        budget (BudgetSpent, a CarDataError, when it is spent: its message says from when), with the calls
        left today; the i Remote API is simply asked (no budget). The budget is the owner's: a person the car
        is shared with gets what its stream last said, and spends none of it."""
        owner = self.car(tg_id, vin).tg_id
        with self._owners_refusal(tg_id, owner):
            return await self.backend_of(owner).refresh(owner, vin, own=owner == tg_id)

    def calls_spent(self, tg_id: int) -> BudgetSpent | None:
        """When a CarData owner has no Refresh left today: from when, and what their co-owners used when
        theirs are why (BudgetSpent.co_owner_calls); None while they have one, and without a budget."""
        backend = self._linked(tg_id)
        return None if backend is None else backend.calls_spent(tg_id)

    def charge_sessions(self, tg_id: int, vin: str) -> list[ChargeSession]:
        """The charges of this user's car that the bot recorded, newest first (no call to BMW)."""
        return self.store.charge_sessions(self.car(tg_id, vin).tg_id, vin)

    def costing(self, tg_id: int, vin: str, sessions: list[ChargeSession], zone: tzinfo) -> Costing:
        """What the car's charges cost: its owner's tariffs and prices (a person it is shared with sees the
        owner's), its home found among `sessions` (all it has), night windows in `zone`."""
        owner = self.car(tg_id, vin).tg_id
        return costing(sessions, self.store.tariffs(owner), zone, self.store.charge_prices(owner, vin))

    def tariff(self, tg_id: int) -> Tariff | None:
        """The user's home tariff now; None when none is set or it was cleared."""
        tariffs = self.store.tariffs(tg_id)
        return tariffs[-1] if tariffs and tariffs[-1].price is not None else None

    def save_tariff(self, tg_id: int, tariff: Tariff) -> None:
        self.store.save_tariff(tg_id, tariff)

    def save_charge_price(self, tg_id: int, vin: str, price: ChargePrice) -> bool:
        """Give one charge of the user's own car its price; False when the car is not theirs (shared)."""
        if self.car(tg_id, vin).tg_id != tg_id:
            return False
        self.store.save_charge_price(tg_id, vin, price)
        return True

    def drives(self, tg_id: int, vin: str, since: float | None = None) -> list[Drive]:
        """The drives of this user's car that the bot recorded (CarData cars), newest first; those that ended
        at `since` or later when given (no call to BMW)."""
        return self.store.drives(self.car(tg_id, vin).tg_id, vin, since)

    def mileage_marks(self, tg_id: int, vin: str) -> list[MileageMark]:
        """The car's mileage per month as the watcher read it (i Remote cars; bot/months.py)."""
        return self.store.mileage_marks(self.car(tg_id, vin).tg_id, vin)

    async def charging_history(
        self, tg_id: int, vin: str, days: int = 30, *, cached_only: bool = False
    ) -> list[ChargingSession] | None:
        """The car's charging sessions of the last `days` days, newest first (capability CHARGING_HISTORY:
        CarData; UnsupportedByBackend otherwise). One call of the day's budget, then cached for an hour. The
        budget is the owner's: a person the car is shared with (and `cached_only`) gets that hour's copy, or
        None when there is none."""
        owner = self.car(tg_id, vin).tg_id
        backend = self._able(owner, Capability.CHARGING_HISTORY)
        return await backend.charging_history(owner, vin, days, spend=owner == tg_id and not cached_only)

    async def poll_status(self, tg_id: int, vin: str) -> VehicleStatus:
        """The i Remote API's own status, for the watcher that polls it."""
        return await self._call(tg_id, vin, self.iremote.api.status)

    async def last_trip(self, tg_id: int, vin: str) -> LastTrip | None:
        return await self._call(tg_id, vin, self.iremote.api.last_trip)

    async def all_trips(self, tg_id: int, vin: str) -> AllTrips | None:
        return await self._call(tg_id, vin, self.iremote.api.all_trips)

    async def charging_profile(self, tg_id: int, vin: str) -> ChargingProfile | None:
        return await self._call(tg_id, vin, self.iremote.api.charging_profile)

    async def destinations(self, tg_id: int, vin: str) -> list[Destination]:
        return await self._call(tg_id, vin, self.iremote.api.destinations)

    async def range_map(self, tg_id: int, vin: str) -> RangeMap:
        return await self._call(tg_id, vin, self.iremote.api.range_map)

    async def send_poi(self, tg_id: int, vin: str, poi: Poi) -> None:
        if not self.may_command(tg_id, self.car(tg_id, vin)):
            raise RemoteNotAllowed
        await self._call(tg_id, vin, lambda account, v: self.iremote.api.send_poi(account, v, poi))

    # Remote commands ---------------------------------------------------------------------------------------

    async def execute(
        self,
        tg_id: int,
        vin: str,
        service: ServiceType,
        *,
        shown_in: tuple[int, int],
        security_answer: str | None = None,
        profile: ChargingProfile | None = None,
        on_status: OnStatus | None = None,
    ) -> ExecutionStatus:
        """One remote command: per-user rate limit, one command at a time per car, never retried here.

        It is recorded before it is sent, with `shown_in` (chat id, message id: where its progress shows)
        and then BMW's event id, so that a restart can finish it (`resume`).
        """
        car = self.car(tg_id, vin)
        if car.tg_id != tg_id and service is ServiceType.CHARGING_CONTROL:  # the schedule is the owner's
            raise OwnerOnly
        if not self.may_command(tg_id, car):
            raise RemoteNotAllowed
        self.commands.admit(tg_id, vin)

        async def sent(status: ExecutionStatus) -> None:
            if status.event_id is not None:
                self.store.command_sent(tg_id, vin, status.event_id)

        self.store.begin_command(tg_id, vin, str(service), *shown_in)
        with self.commands.running(tg_id, vin):
            return await self._call(
                tg_id,
                vin,
                lambda account, v: self.iremote.api.execute(
                    account,
                    v,
                    service,
                    security_answer=security_answer,
                    flash_count=2 if service is ServiceType.LIGHT_FLASH else None,
                    profile=profile,
                    on_status=on_status,
                    on_sent=sent,
                ),
            )

    async def resume(
        self, command: CommandInFlight, *, on_status: OnStatus | None = None
    ) -> ExecutionStatus | None:
        """Follow a command an earlier process sent to its end, never sending it again: its terminal status,
        or None when its outcome cannot be learned. That is so when the process ended before BMW answered
        the POST: BMW shows only the latest request of each type, with no time, so without the event id a
        status cannot be told apart from one of an earlier command (of this bot or of BMW's app)."""
        event_id = command.event_id
        with self.commands.running(command.tg_id, command.vin):
            if event_id is None:
                return None
            return await self._call(
                command.tg_id,
                command.vin,
                lambda account, v: self.iremote.api.follow(
                    account,
                    v,
                    ServiceType(command.service),
                    event_id=event_id,
                    started_at=command.started_at,
                    on_status=on_status,
                ),
            )

    def commands_in_flight(self) -> list[CommandInFlight]:
        """Commands an earlier process recorded as under way (to be finished with `resume`)."""
        return self.store.commands_in_flight()

    def forget_command(self, tg_id: int, vin: str) -> None:
        """Drop a recorded command that will not be followed (its car was unlinked meanwhile)."""
        self.store.end_command(tg_id, vin)

    def remember_security_answer(self, tg_id: int, answer: str | None) -> None:
        self.store.save_security_answer(tg_id, answer)

    def security_answer(self, tg_id: int) -> str | None:
        account = self.store.account(tg_id)
        return account.security_answer if account else None

    # Internals ---------------------------------------------------------------------------------------------

    def _able(self, owner: int, capability: Capability) -> Backend:
        """The owner's backend when it can do that; UnsupportedByBackend otherwise."""
        backend = self.backend_of(owner)
        if capability not in backend.capabilities:
            raise UnsupportedByBackend(f"{capability} not with {backend.name}")
        return backend

    def _cardata(self) -> CarDataBackend:
        if self.cardata is None:
            raise UnsupportedByBackend("BMW CarData is not configured (CAR_BACKENDS)")
        return self.cardata

    def stream_block(self, tg_id: int) -> StreamBlock | None:
        """Why BMW lets nothing through the stream of the owner's CarData account now (None: it flows)."""
        return None if self.cardata is None else self.cardata.supervisor.blocked(tg_id)

    def try_stream_now(self, tg_id: int) -> bool:
        """The owner's "Try now": connect their blocked stream at once; False when it is not blocked."""
        return self.cardata is not None and self.cardata.supervisor.try_now(tg_id)

    async def _notify(self, notice: Notice | CarAlert) -> None:
        if self.notify is None:
            raise RuntimeError("no push path yet")  # CarData's detector (or the alerter) tries again later
        await self.notify(notice)

    async def _call(self, tg_id: int, vin: str, method: Callable[[Account, str], Awaitable[T]]) -> T:
        """`method` of the i Remote API (CAR_CALLS) with the account of the car's owner (the user's own, or
        the owner's of a car shared with them)."""
        owner = self.car(tg_id, vin).tg_id
        self._able(owner, Capability.CAR_CALLS)
        with self._owners_refusal(tg_id, owner):
            return await self.iremote.call(owner, vin, method)

    @contextmanager
    def _owners_refusal(self, tg_id: int, owner: int) -> Iterator[None]:
        """A person a car is shared with learns that its owner must link again, never the owner's e-mail."""
        try:
            yield
        except PasswordRefused as exc:
            if owner == tg_id:
                raise
            raise OwnerMustRelink from exc
