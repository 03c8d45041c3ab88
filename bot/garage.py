"""The car service: everything the chat layer may do with a Telegram user's cars.

Every method takes the Telegram user id and checks that the VIN is one of that user's linked cars before
any request leaves the process, so no input can reach another user's car. Live sessions (with their
tokens) are kept in memory and every token change is written back, encrypted, to the store.

No password guessing through the bot: after LOGIN_ATTEMPTS failed logins of one Telegram user, or of one
e-mail whoever tries it, linking waits out a cool-down that grows with each further failure. A linked account
whose stored password BMW refuses RELINK_AFTER_REFUSALS times in a row is not asked again until a new /link.

Each linked account has a backend (bot/backends.py): the i Remote API (`api`, a `CarApi`; linked with e-mail
and password, polled by bot/watcher.py, remote commands) or BMW CarData (`cardata`; linked with the OAuth
device flow, read-only, pushed by its stream). Statuses and pushes come out in the neutral shapes of
bot/car_status.py whatever the backend; what the i Remote API alone can do raises `UnsupportedByBackend`
for others.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from bot.alerts import AlertPrefs, CarAlert, ZoneOf
from bot.backends import (
    CARDATA,
    CARDATA_CAPABILITIES,
    IREMOTE,
    CarDataBackend,
    from_vehicle_status,
)
from bot.bmw.client import budget
from bot.bmw.errors import AuthenticationError
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
    Token,
    Vehicle,
    VehicleStatus,
)
from bot.car_status import CarStatus, ChargeNotice, Notice, NoticeKind, Refreshed, RelinkNotice, StreamBlocked
from bot.cardata.auth import DeviceFlow, DeviceOutcome
from bot.cardata.errors import BudgetSpent
from bot.cardata.events import ChargeEvent, ChargeEventKind
from bot.cardata.models import ChargingSession, StreamBlock, Tokens
from bot.history import ChargeSession
from bot.sharing import SharedAlerter, Sharing
from bot.store import (
    CommandInFlight,
    LoginAttempts,
    NotifyPrefs,
    Store,
    StoredToken,
    StoredVehicle,
    UserSettings,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
OnStatus = Callable[[ExecutionStatus], Awaitable[None]]
Notify = Callable[[Notice | CarAlert], Awaitable[None]]  # raises when the push should be tried again later
_NOTICE_KINDS = {
    ChargeEventKind.STARTED: NoticeKind.STARTED,
    ChargeEventKind.COMPLETE: NoticeKind.FULL,
    ChargeEventKind.STOPPED: NoticeKind.EARLY,
}

LOGIN_ATTEMPTS = 3  # failed logins before the first cool-down
# The cool-down after the 3rd failure in a row, the 4th, the 5th, and every later one.
LOGIN_COOL_DOWNS = (15 * 60.0, 60 * 60.0, 4 * 60 * 60.0, 24 * 60 * 60.0)
LOGIN_FORGET_SECONDS = 24 * 60 * 60.0  # failures are forgotten a day after the last one (or its cool-down)
# New CarData login codes (POST /device/code at BMW) one Telegram user may ask for within the window.
DEVICE_CODES_PER_WINDOW = 5
DEVICE_CODE_WINDOW_SECONDS = 10 * 60.0
RELINK_AFTER_REFUSALS = 3  # BMW refusals of a stored password in a row before the account waits for /link


class CarApi(Protocol):
    """The small interface a car backend offers the bot; `bot.bmw.client.BMWClient` is one."""

    async def aclose(self) -> None: ...
    async def login(self, account: Account) -> Token: ...
    async def vehicles(self, account: Account) -> list[Vehicle]: ...
    async def status(self, account: Account, vin: str) -> VehicleStatus: ...
    async def last_trip(self, account: Account, vin: str) -> LastTrip | None: ...
    async def all_trips(self, account: Account, vin: str) -> AllTrips | None: ...
    async def charging_profile(self, account: Account, vin: str) -> ChargingProfile | None: ...
    async def destinations(self, account: Account, vin: str) -> list[Destination]: ...
    async def range_map(self, account: Account, vin: str) -> RangeMap: ...
    async def send_poi(self, account: Account, vin: str, poi: Poi) -> None: ...
    async def execute(
        self,
        account: Account,
        vin: str,
        service: ServiceType,
        *,
        security_answer: str | None = None,
        flash_count: int | None = None,
        profile: ChargingProfile | None = None,
        on_status: OnStatus | None = None,
        on_sent: OnStatus | None = None,
    ) -> ExecutionStatus: ...
    async def follow(
        self,
        account: Account,
        vin: str,
        service: ServiceType,
        *,
        event_id: str,
        started_at: float,
        on_status: OnStatus | None = None,
    ) -> ExecutionStatus: ...


@asynccontextmanager
async def deadline(seconds: float) -> AsyncIterator[None]:
    """Reads inside end within `seconds`, the BMW client's retries included (TimeoutError after that): for a
    user waiting on an answer. The watcher keeps its own, longer patience."""
    with budget(seconds):
        async with asyncio.timeout(seconds):
            yield


class GarageError(Exception):
    """A refusal of the car service itself (not of BMW); the chat layer words it for the user."""


class NothingLinked(GarageError):
    pass


class CarNotLinked(GarageError):
    pass


class CommandInProgress(GarageError):
    pass


class TooManyCommands(GarageError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class TooManyLoginCodes(GarageError):
    """This user asked for DEVICE_CODES_PER_WINDOW new login codes within the window: none before
    `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class LoginCoolDown(GarageError):
    """Too many failed logins of this user or this e-mail: no login before `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class OwnerOnly(GarageError):
    """Only the car's owner may do that (a person it is shared with sees it, and no more: bot/sharing.py)."""


class OwnerMustRelink(GarageError):
    """BMW no longer accepts the stored password of the account of a car shared with the user."""


class RemoteNotAllowed(GarageError):
    """A person the car is shared with, whom its owner has not allowed remote commands."""


class UnsupportedByBackend(GarageError):
    """The backend of this user's account cannot do that (CarData is read-only, has no trips...)."""


class PasswordRefused(GarageError):
    """BMW no longer accepts the account's stored password; only a new /link helps. `just_marked`: this
    refusal made the account wait for a re-link (exactly one caller sees it, and tells the owner)."""

    def __init__(self, username: str, *, just_marked: bool = False) -> None:
        super().__init__("BMW refused the stored password")
        self.username = username
        self.just_marked = just_marked


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
        self.api = api
        self.cardata = cardata
        self.sharing = Sharing(store, wall_clock)
        # Where owners' pushes go (the chat's pusher), set by the wiring once the bot exists (bot/app.py).
        self.notify: Notify | None = None
        # Each owner's time zone (bot/chat/prefs.py, set by the wiring): their alerts' times are theirs.
        self.zone_of = zone_of
        if cardata is not None:
            cardata.bind(
                self._cardata_event,
                self._cardata_relink,
                SharedAlerter(store, self._notify, zone_of),
                on_blocked=self._cardata_blocked,
            )
        self._commands_per_minute = commands_per_minute
        self._clock = clock
        self._wall_clock = wall_clock  # cool-downs are stored, so they are in Unix time
        # Logins of one subject (user, e-mail) run one at a time, so parallel tries cannot all pass the check
        # before the first failure counts. Weak values: a lock lives only while a login holds or awaits it.
        self._login_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._sessions: dict[int, Account] = {}
        self._recent_commands: dict[int, deque[float]] = {}
        self._recent_codes: dict[int, deque[float]] = {}
        self._running: set[str] = set()  # the VINs of the cars a command runs on
        self._command_tasks: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        """At start, once `notify` is set: the backends that push start listening (CarData's streams)."""
        if self.cardata is not None:
            await self.cardata.start()

    async def aclose(self) -> None:
        """At shutdown, after the last update: stop the streams, close the car APIs' connections."""
        if self.cardata is not None:
            await self.cardata.aclose()
        await self.api.aclose()

    def backend(self, tg_id: int) -> str | None:
        """The backend of the user's account, for the wiring and tests; the chat asks a car's capabilities."""
        return self.store.backend(tg_id)

    # Linking -----------------------------------------------------------------------------------------------

    async def link(
        self, tg_id: int, first_name: str | None, region: Region, username: str, password: str
    ) -> list[Vehicle]:
        """Log in and list the cars; only when both succeed is anything stored (encrypted). LoginCoolDown,
        before anything reaches BMW, while this user or this e-mail is cooling down after failed logins, and
        instead of the AuthenticationError of the failure that begins a cool-down."""
        subjects = self.store.login_subjects(tg_id, username)
        user_lock, email_lock = (self._login_lock(subject) for subject in subjects)
        async with user_lock, email_lock:
            self.check_login(tg_id, username)
            account = Account(username=username, password=password, region=region)
            try:
                await self.api.login(account)
            except AuthenticationError:
                self._login_failed(subjects)
                self.check_login(tg_id, username)  # LoginCoolDown when this failure began one
                raise
            self.store.forget_login_attempts(subjects)
        vehicles = await self.api.vehicles(account)
        if self.cardata is not None and self.store.backend(tg_id) == CARDATA:
            await self.cardata.unlink(tg_id)  # the new account replaces the CarData link
        self.store.upsert_user(tg_id, first_name)
        self.store.save_account(tg_id, region=region.value, username=username, password=password)
        self._save_token(tg_id, account.token)
        self.store.save_vehicles(
            tg_id,
            [
                StoredVehicle(
                    tg_id=tg_id,
                    vin=v.vin,
                    model=v.model,
                    license_plate=v.license_plate,
                    drive_train=v.drive_train,
                    capabilities=v.capabilities,
                    position=i,
                )
                for i, v in enumerate(vehicles)
            ],
        )
        self._sessions[tg_id] = account
        return vehicles

    def check_login(self, tg_id: int, username: str | None = None) -> None:
        """LoginCoolDown while this user, or (when given) this e-mail, may not try to log in."""
        now = self._wall_clock()
        subjects = self.store.login_subjects(tg_id, username)
        until = max(self.store.login_attempts(subject, now).blocked_until or now for subject in subjects)
        if until > now:
            raise LoginCoolDown(until - now)

    # Linking with a device code (BMW CarData) ---------------------------------------------------------------

    async def start_device_flow(self, tg_id: int, client_id: str) -> DeviceFlow:
        """Ask BMW for a device code for the owner's own client id: show `flow.code.url` (the verification
        link, complete form where BMW gives one), `flow.code.user_code` and `flow.code.expires_at` (epoch s).
        CarDataError when BMW refuses (a wrong client id: its message says so); UnsupportedByBackend without
        CarData; TooManyLoginCodes, before BMW is asked, once this user had DEVICE_CODES_PER_WINDOW codes
        (asked for, whatever BMW answered) within DEVICE_CODE_WINDOW_SECONDS."""
        cardata = self._cardata()
        wait = self._take_slot(self._recent_codes, tg_id, DEVICE_CODES_PER_WINDOW, DEVICE_CODE_WINDOW_SECONDS)
        if wait is not None:
            raise TooManyLoginCodes(wait)
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
        self._sessions.pop(tg_id, None)
        self.store.use_cardata(
            link,
            first_name,
            [
                StoredVehicle(
                    tg_id=tg_id,
                    vin=car.vin,
                    model=car.basic.model_name if car.basic else None,
                    license_plate=None,
                    drive_train=car.basic.drive_train if car.basic else None,
                    capabilities=CARDATA_CAPABILITIES,
                    position=i,
                )
                for i, car in enumerate(found)
            ],
        )
        await cardata.follow(tg_id, [car.vin for car in found])
        return self.store.vehicles(tg_id)

    # The account ------------------------------------------------------------------------------------------

    def needs_relink(self, tg_id: int) -> bool:
        """BMW kept refusing the stored password: the account is as good as gone until a new /link."""
        return self.store.password_refusals(tg_id)[1]

    async def unlink(self, tg_id: int) -> None:
        """Forget the user, linked or only with settings: a CarData stream stops and its container is retired
        (where the day's calls allow and no co-owner uses it), then every row about them goes."""
        if self.cardata is not None and self.store.backend(tg_id) == CARDATA:
            await self.cardata.unlink(tg_id)
        self._sessions.pop(tg_id, None)
        self._recent_commands.pop(tg_id, None)  # the login codes' count stays: /unlink must not reset it
        self.store.delete_user(tg_id)

    def is_linked(self, tg_id: int) -> bool:
        return self.store.backend(tg_id) is not None

    def keeps_settings(self, tg_id: int) -> bool:
        """Whether anything of the user is kept even with no account linked: what /unlink then removes."""
        return self.store.keeps_settings(tg_id)

    def account_name(self, tg_id: int) -> str | None:
        """What names the linked account to its owner (the i Remote e-mail); None when there is none, or
        when it has no name (a CarData link)."""
        account = self.store.account(tg_id) if self.store.backend(tg_id) == IREMOTE else None
        return account.username if account else None

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
        if self._is_cardata(owner):
            return self._cardata().status(owner, vin)
        return from_vehicle_status(vin, await self.poll_status(tg_id, vin))

    async def refresh(self, tg_id: int, vin: str) -> Refreshed:
        """A status fresh from BMW on the owner's request. For CarData one REST snapshot, from the day's
        budget (BudgetSpent, a CarDataError, when it is spent: its message says from when), with the calls
        left today; the i Remote API is simply asked (no budget). The budget is the owner's: a person the car
        is shared with gets what its stream last said, and spends none of it."""
        owner = self.car(tg_id, vin).tg_id
        if self._is_cardata(owner):
            if owner != tg_id:
                return Refreshed(self._cardata().status(owner, vin))
            status, calls_left = await self._cardata().refresh(tg_id, vin)
            return Refreshed(status, calls_left)
        return Refreshed(await self.status(tg_id, vin))

    def calls_spent(self, tg_id: int) -> BudgetSpent | None:
        """When a CarData owner has no Refresh left today: from when, and what their co-owners used when
        theirs are why (BudgetSpent.co_owner_calls); None while they have one, and without a budget."""
        return self._cardata().calls_spent(tg_id) if self._is_cardata(tg_id) else None

    def charge_sessions(self, tg_id: int, vin: str) -> list[ChargeSession]:
        """The charges of this user's car that the bot recorded, newest first (no call to BMW)."""
        return self.store.charge_sessions(self.car(tg_id, vin).tg_id, vin)

    async def charging_history(self, tg_id: int, vin: str, days: int = 30) -> list[ChargingSession]:
        """The car's charging sessions of the last `days` days, newest first (capability "chargingHistory":
        CarData; UnsupportedByBackend otherwise). One call of the day's budget, then cached for an hour."""
        owner = self.car(tg_id, vin).tg_id
        if not self._is_cardata(owner):
            raise UnsupportedByBackend("no charging history with the i Remote API")
        return await self._cardata().charging_history(owner, vin, days)

    async def poll_status(self, tg_id: int, vin: str) -> VehicleStatus:
        """The i Remote API's own status, for the watcher that polls it."""
        return await self._call(tg_id, vin, self.api.status)

    async def last_trip(self, tg_id: int, vin: str) -> LastTrip | None:
        return await self._call(tg_id, vin, self.api.last_trip)

    async def all_trips(self, tg_id: int, vin: str) -> AllTrips | None:
        return await self._call(tg_id, vin, self.api.all_trips)

    async def charging_profile(self, tg_id: int, vin: str) -> ChargingProfile | None:
        return await self._call(tg_id, vin, self.api.charging_profile)

    async def destinations(self, tg_id: int, vin: str) -> list[Destination]:
        return await self._call(tg_id, vin, self.api.destinations)

    async def range_map(self, tg_id: int, vin: str) -> RangeMap:
        return await self._call(tg_id, vin, self.api.range_map)

    async def send_poi(self, tg_id: int, vin: str, poi: Poi) -> None:
        if not self.may_command(tg_id, self.car(tg_id, vin)):
            raise RemoteNotAllowed
        await self._call(tg_id, vin, lambda account, v: self.api.send_poi(account, v, poi))

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
        if vin in self._running:  # the car is busy, whoever sent its command (an owner, a co-owner, a share)
            raise CommandInProgress
        self._take_command_slot(tg_id)

        async def sent(status: ExecutionStatus) -> None:
            if status.event_id is not None:
                self.store.command_sent(tg_id, vin, status.event_id)

        self.store.begin_command(tg_id, vin, str(service), *shown_in)
        with self._command(tg_id, vin):
            return await self._call(
                tg_id,
                vin,
                lambda account, v: self.api.execute(
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
        with self._command(command.tg_id, command.vin):
            if event_id is None:
                return None
            return await self._call(
                command.tg_id,
                command.vin,
                lambda account, v: self.api.follow(
                    account,
                    v,
                    ServiceType(command.service),
                    event_id=event_id,
                    started_at=command.started_at,
                    on_status=on_status,
                ),
            )

    @contextmanager
    def _command(self, tg_id: int, vin: str) -> Iterator[None]:
        """While a recorded command runs: its car is busy and `drain` may cancel it. Its record goes when it
        ends, unless it was cancelled (a shutdown): then the next start finishes it."""
        self._running.add(vin)
        task = asyncio.current_task()
        if task is not None:
            self._command_tasks.add(task)
        cancelled = False
        try:
            yield
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if not cancelled:
                self.store.end_command(tg_id, vin)
            self._running.discard(vin)
            if task is not None:
                self._command_tasks.discard(task)

    def commands_in_flight(self) -> list[CommandInFlight]:
        """Commands an earlier process recorded as under way (to be finished with `resume`)."""
        return self.store.commands_in_flight()

    def forget_command(self, tg_id: int, vin: str) -> None:
        """Drop a recorded command that will not be followed (its car was unlinked meanwhile)."""
        self.store.end_command(tg_id, vin)

    async def drain(self, grace: float) -> int:
        """On shutdown: let running commands finish for up to `grace` seconds, then cancel the rest (their
        chat handlers tell the user); returns how many were cancelled."""
        if self._command_tasks:
            await asyncio.wait(set(self._command_tasks), timeout=grace)
        left = [task for task in self._command_tasks if not task.done()]
        for task in left:
            task.cancel()
        return len(left)

    def remember_security_answer(self, tg_id: int, answer: str | None) -> None:
        self.store.save_security_answer(tg_id, answer)

    def security_answer(self, tg_id: int) -> str | None:
        account = self.store.account(tg_id)
        return account.security_answer if account else None

    # Internals ---------------------------------------------------------------------------------------------

    def _login_lock(self, subject: str) -> asyncio.Lock:
        lock = self._login_locks.get(subject)
        if lock is None:
            lock = self._login_locks[subject] = asyncio.Lock()
        return lock

    def _login_failed(self, subjects: list[str]) -> None:
        now = self._wall_clock()
        for subject in subjects:
            failures = self.store.login_attempts(subject, now).failures + 1
            blocked_until = None
            if failures >= LOGIN_ATTEMPTS:
                step = min(failures - LOGIN_ATTEMPTS, len(LOGIN_COOL_DOWNS) - 1)
                blocked_until = now + LOGIN_COOL_DOWNS[step]
            forget_at = (blocked_until or now) + LOGIN_FORGET_SECONDS
            self.store.save_login_attempts(subject, LoginAttempts(failures, blocked_until, forget_at), now)

    def _take_command_slot(self, tg_id: int) -> None:
        wait = self._take_slot(self._recent_commands, tg_id, self._commands_per_minute, 60.0)
        if wait is not None:
            raise TooManyCommands(wait)

    def _take_slot(
        self, taken: dict[int, deque[float]], tg_id: int, limit: int, window: float
    ) -> float | None:
        """One of `limit` uses per `window` seconds of this user: None when taken, else the seconds until
        the oldest use leaves the window."""
        now = self._clock()
        recent = taken.setdefault(tg_id, deque())
        while recent and now - recent[0] >= window:
            recent.popleft()
        if len(recent) >= limit:
            return window - (now - recent[0])
        recent.append(now)
        return None

    def _session(self, tg_id: int) -> Account:
        account = self._sessions.get(tg_id)
        if account is None:
            stored = self.store.account(tg_id)
            if stored is None:
                raise NothingLinked
            token = stored.token
            account = Account(
                username=stored.username,
                password=stored.password,
                region=Region(stored.region),
                token=Token(token.access_token, token.refresh_token, token.expires_at) if token else None,
            )
            self._sessions[tg_id] = account
        return account

    def _is_cardata(self, tg_id: int) -> bool:
        return self.store.backend(tg_id) == CARDATA

    def _cardata(self) -> CarDataBackend:
        if self.cardata is None:
            raise UnsupportedByBackend("BMW CarData is not configured (CAR_BACKENDS)")
        return self.cardata

    async def _cardata_event(self, event: ChargeEvent) -> None:
        """A charge event the CarData detector decided (already on disk): pushed if the owner wants it."""
        kind = _NOTICE_KINDS[event.kind]
        if not self.store.push_recipients(event.owner, event.vin, kind.preference):  # the owner's or shared
            return
        if self.store.vehicle(event.owner, event.vin) is None:  # unlinked since
            return
        # How long it ran: not known of a start, nor of a charge that ended unseen or was read late.
        charged = None
        if kind is not NoticeKind.STARTED and not event.unseen and event.read_at is None:
            # It ended when first seen stopped, a debounce before the decision.
            charged = max(0.0, event.at - self._cardata().debounce_seconds - event.session_start)
        status = self._cardata().status(event.owner, event.vin)
        read_at = None if event.read_at is None else datetime.fromtimestamp(event.read_at, UTC)
        notice = ChargeNotice(kind, event.owner, event.vin, status, event.soc_at_start, charged, read_at)
        await self._notify(notice)

    async def _cardata_relink(self, owner: int) -> None:
        """CarData refused the owner's refresh token: they left the stream until a new /link (co-owners of
        the account stream on); tell them once.
        Each start tries the stored link and is refused again, so the ask is stored (a new link clears it)."""
        if not self.store.mark_cardata_relink_asked(owner):
            return
        try:
            await self._notify(RelinkNotice(owner))
        except Exception as exc:  # the stream is stopped either way; the next start asks again
            self.store.mark_cardata_relink_asked(owner, asked=False)
            log.warning("cardata: re-link push to user %s failed (%s)", owner, type(exc).__name__)

    async def _cardata_blocked(self, owner: int, block: StreamBlock | None) -> None:
        """BMW lets nothing through the stream of the owner's account, for `block` (None: it flows again):
        told once per episode and reason; the mark is stored, so a restart during it does not tell again, and
        cleared when the stream is back."""
        if block is None:
            self.store.mark_cardata_stream_block_told(owner, None)
            return
        if not self.store.mark_cardata_stream_block_told(owner, block):
            return
        try:
            await self._notify(StreamBlocked(owner, block))
        except Exception as exc:  # told at the next refusal after a restart, or the next episode
            self.store.mark_cardata_stream_block_told(owner, None)
            log.warning("cardata: blocked-stream push to user %s failed (%s)", owner, type(exc).__name__)

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
        """`method` with the account of the car's owner (the user's own, or the owner's of a car shared with
        them); a shared person learns that the owner must link again, never the owner's e-mail."""
        owner = self.car(tg_id, vin).tg_id
        try:
            return await self._owners_call(owner, vin, method)
        except PasswordRefused as exc:
            if owner == tg_id:
                raise
            raise OwnerMustRelink from exc

    async def _owners_call(self, tg_id: int, vin: str, method: Callable[[Account, str], Awaitable[T]]) -> T:
        if self._is_cardata(tg_id):  # only the i Remote API has trips, maps, commands...
            raise UnsupportedByBackend("not with BMW CarData")
        account = self._session(tg_id)
        refusals, relink_needed = self.store.password_refusals(tg_id)
        if relink_needed:  # asking again would only bring the account closer to a lock-out at BMW
            raise PasswordRefused(account.username)
        before = account.token
        try:
            result = await method(account, vin)
        except AuthenticationError as exc:
            # Counted only while this is still the user's account (not one replaced by a /link meanwhile).
            marked = self._sessions.get(tg_id) is account and self.store.count_password_refusal(
                tg_id, RELINK_AFTER_REFUSALS
            )
            raise PasswordRefused(account.username, just_marked=marked) from exc
        finally:
            # The client refreshes tokens transparently; keep the newest one (encrypted) across restarts.
            if account.token is not before and self._sessions.get(tg_id) is account:
                self._save_token(tg_id, account.token)
        if refusals:
            self.store.clear_password_refusals(tg_id)
        return result

    def _save_token(self, tg_id: int, token: Token | None) -> None:
        stored = StoredToken(token.access_token, token.refresh_token, token.expires_at) if token else None
        self.store.save_token(tg_id, stored)
