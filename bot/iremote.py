"""The i Remote API as a backend of the garage: each owner's live session (with its tokens), every token
change written back (encrypted) to the store, and the stored password given up on after BMW refused it
RELINK_AFTER_REFUSALS times in a row, until a new /link. The API itself is a `CarApi`
(`bot.bmw.client.BMWClient`); this room decides nothing about who may reach which car (the garage does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from bot.backends import from_vehicle_status
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
from bot.bmw.models.vehicle import CAPABILITY_FLAGS
from bot.capabilities import BackendName, Capability
from bot.car_status import CarStatus, Refreshed
from bot.cardata.errors import BudgetSpent
from bot.cardata.models import ChargingSession
from bot.garage_errors import NothingLinked, PasswordRefused, UnsupportedByBackend
from bot.store import Store, StoredToken, StoredVehicle

T = TypeVar("T")
OnStatus = Callable[[ExecutionStatus], Awaitable[None]]
RELINK_AFTER_REFUSALS = 3  # BMW refusals of a stored password in a row before the account waits for /link


class CarApi(Protocol):
    """The small interface the i Remote API offers the bot; `bot.bmw.client.BMWClient` is one."""

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


class IRemoteBackend:
    """The i Remote API for every owner linked with e-mail and password (a `bot.backends.Backend`)."""

    name = BackendName.IREMOTE
    capabilities = frozenset(CAPABILITY_FLAGS) | {
        Capability.STATUS,
        Capability.POSITION,
        Capability.CAR_CALLS,
    }

    def __init__(self, store: Store, api: CarApi) -> None:
        self.store = store
        self.api = api
        self._sessions: dict[int, Account] = {}

    async def start(self) -> None:
        """Nothing to start: bot/watcher.py polls these cars."""

    async def aclose(self) -> None:
        await self.api.aclose()

    # --- linking --------------------------------------------------------------------------------------------

    def link(self, tg_id: int, first_name: str | None, account: Account, vehicles: list[Vehicle]) -> None:
        """Store the account that just logged in (encrypted) with its cars, and keep its session."""
        self.store.upsert_user(tg_id, first_name)
        self.store.save_account(
            tg_id, region=account.region.value, username=account.username, password=account.password
        )
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

    async def unlink(self, owner: int) -> None:
        """Forget the owner's session; the garage wipes the rows."""
        self._sessions.pop(owner, None)

    def account_name(self, owner: int) -> str | None:
        account = self.store.account(owner)
        return account.username if account else None

    # --- reads ----------------------------------------------------------------------------------------------

    async def read(self, owner: int, vin: str) -> CarStatus:
        """The API is asked: one snapshot."""
        return from_vehicle_status(vin, await self.call(owner, vin, self.api.status))

    async def refresh(self, owner: int, vin: str, *, own: bool) -> Refreshed:
        """As `read`: the API has no budget to spend."""
        return Refreshed(await self.read(owner, vin))

    def calls_spent(self, owner: int) -> BudgetSpent | None:
        return None

    async def charging_history(
        self, owner: int, vin: str, days: int, *, spend: bool
    ) -> list[ChargingSession] | None:
        raise UnsupportedByBackend("no charging history with the i Remote API")

    async def call(self, owner: int, vin: str, method: Callable[[Account, str], Awaitable[T]]) -> T:
        """`method` with the owner's session; PasswordRefused once BMW refuses the stored password (and,
        after RELINK_AFTER_REFUSALS refusals in a row, before asking BMW again)."""
        account = self._session(owner)
        refusals, relink_needed = self.store.password_refusals(owner)
        if relink_needed:  # asking again would only bring the account closer to a lock-out at BMW
            raise PasswordRefused(account.username)
        before = account.token
        try:
            result = await method(account, vin)
        except AuthenticationError as exc:
            # Counted only while this is still the owner's account (not one replaced by a /link meanwhile).
            marked = self._sessions.get(owner) is account and self.store.count_password_refusal(
                owner, RELINK_AFTER_REFUSALS
            )
            raise PasswordRefused(account.username, just_marked=marked) from exc
        finally:
            # The client refreshes tokens transparently; keep the newest one (encrypted) across restarts.
            if account.token is not before and self._sessions.get(owner) is account:
                self._save_token(owner, account.token)
        if refusals:
            self.store.clear_password_refusals(owner)
        return result

    def _session(self, owner: int) -> Account:
        account = self._sessions.get(owner)
        if account is None:
            stored = self.store.account(owner)
            if stored is None:
                raise NothingLinked
            token = stored.token
            account = Account(
                username=stored.username,
                password=stored.password,
                region=Region(stored.region),
                token=Token(token.access_token, token.refresh_token, token.expires_at) if token else None,
            )
            self._sessions[owner] = account
        return account

    def _save_token(self, owner: int, token: Token | None) -> None:
        stored = StoredToken(token.access_token, token.refresh_token, token.expires_at) if token else None
        self.store.save_token(owner, stored)
