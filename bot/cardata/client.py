"""REST client of BMW CarData on one pooled httpx.AsyncClient, with a persisted daily call budget per account.

BMW allows 50 calls a day per account (gcid) and answers more with 403 `CU-429` until the next day. The bot
spends at most `daily_calls` of them on normal reads and keeps the rest for linking (mappings, container,
basic data), so an owner who used up the day's reads can still link again. Co-owners (several owners who
linked the same account) share it: each is guaranteed an equal share of the reads, and a read is refused
when it would leave too few for another's unspent share (docs/cardata.md). The count lives in the store (it
survives a restart and an unlink). BMW's reset is disputed (midnight UTC, or 24 h after the day's first call):
a day is a UTC date, and the day before's calls still count until 24 h after its first call, so the bot never
spends a call either rule refuses; a spent budget raises `BudgetSpent` with the time calls surely work
again. The token endpoint is not the REST API and costs no budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from bot.cardata.auth import DEFAULT_AUTH_URL, CarDataAuth, Clock, Sleep, TokenKeeper
from bot.cardata.errors import (
    BadResponse,
    BudgetSpent,
    CarDataError,
    CarDataUnavailable,
    ContainerLimit,
    KeysRefused,
    NotLinked,
    NotYourCar,
    VehicleNotFound,
)
from bot.cardata.models import (
    BOT_KEYS,
    BasicData,
    ChargingHistory,
    Container,
    TelematicValue,
    Tokens,
    VehicleMapping,
    primary_vins,
    telematic_data_from_api,
)
from bot.cardata.storage import AccountCalls, CarDataLink, CarDataStore

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api-cardata.bmwgroup.com"
BMW_DAILY_CALLS = 50
DEFAULT_DAILY_CALLS = 40
MAX_CONTAINERS = 10
CONTAINER_NAME = "bmw-telegram-bot"
CONTAINER_PURPOSE = "Status and charge notifications for the owner's Telegram bot"
DAY_SECONDS = 24 * 3600.0
QUOTA_ERROR = "CU-429"
# BMW's error ids that are a refusal of their own (Guide §3.4): each its own error class.
REFUSALS: dict[str, type[CarDataError]] = {
    "CU-124": ContainerLimit,
    "CU-104": NotYourCar,
    "CU-402": KeysRefused,
}


def budget_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def next_budget_day(now: float, first_call_at: float | None = None) -> datetime:
    """When a spent budget is surely usable again: the later of BMW's two possible resets, the next UTC
    midnight or 24 h after the day's first call (`first_call_at`, when known). Which one BMW uses is
    disputed (docs/cardata.md)."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = today + timedelta(days=1)
    if first_call_at is None:
        return midnight
    return max(midnight, datetime.fromtimestamp(first_call_at + DAY_SECONDS, UTC))


class CarDataClient:
    """One per process, for any number of owners. `auth` runs the device flow, `tokens` keeps tokens fresh."""

    def __init__(
        self,
        store: CarDataStore,
        *,
        api_url: str = DEFAULT_API_URL,
        auth_url: str = DEFAULT_AUTH_URL,
        daily_calls: int = DEFAULT_DAILY_CALLS,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < daily_calls <= BMW_DAILY_CALLS:
            raise ValueError(f"daily_calls must be 1..{BMW_DAILY_CALLS}")
        self._store = store
        self._api = api_url.rstrip("/")
        self._daily_calls = daily_calls
        self.clock = clock  # the budget's wall clock (a test's: the simulator's)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        self.auth = CarDataAuth(self._http, auth_url, clock=clock, sleep=sleep)
        self.tokens = TokenKeeper(self.auth, store, clock=clock)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- budget ---------------------------------------------------------------------------------------------

    def calls_left(self, owner: int, *, linking: bool = False) -> int:
        """Calls the owner can still make today: normal reads, or (linking) up to BMW's own limit."""
        return self._left(self._calls(owner), linking=linking)

    def spent(self, owner: int) -> BudgetSpent | None:
        """The BudgetSpent a read would raise now (None while the owner has reads left), with the calls the
        co-owners used when theirs are why."""
        calls = self._calls(owner)
        return None if self._left(calls, linking=False) else self._spent(calls)

    def _calls(self, owner: int) -> AccountCalls:
        gcid = self._link(owner).tokens.gcid
        return self._store.cardata_calls(gcid, owner, budget_day(self.clock()))

    def _left(self, calls: AccountCalls, *, linking: bool) -> int:
        used = calls.total + self._carried(calls)
        if linking:
            return max(0, BMW_DAILY_CALLS - used)
        # The reads left to the account, less what each co-owner is still owed of their equal share.
        share = self._daily_calls // (1 + len(calls.others))
        owed = sum(max(0, share - used) for used in calls.others)
        return max(0, self._daily_calls - used - owed)

    def _carried(self, calls: AccountCalls) -> int:
        """The day before's calls while BMW may still count them: its quota may run 24 h from a day's first
        call rather than to midnight UTC (docs/cardata.md), so they count until then, today's on top."""
        first = calls.day_before_first_call_at
        return calls.day_before if first is not None and self.clock() < first + DAY_SECONDS else 0

    def _spent(
        self, calls: AccountCalls, status_code: int | None = None, error_id: str | None = None
    ) -> BudgetSpent:
        # The co-owners' use is why when, had they made no call, the owner would have reads left.
        by_others = sum(calls.others)
        alone = replace(calls, total=calls.total - by_others, others=(0,) * len(calls.others))
        why = by_others if self._left(alone, linking=False) else 0
        again = next_budget_day(self.clock(), calls.first_call_at)
        before = calls.day_before_first_call_at
        if before is not None and self._left(replace(calls, day_before=0), linking=False):
            again = datetime.fromtimestamp(before + DAY_SECONDS, UTC)  # the day before's calls are why
        return BudgetSpent(
            again,
            co_owner_calls=why,
            status_code=status_code,
            error_id=error_id,
        )

    def _spend(self, owner: int, gcid: str, *, linking: bool) -> None:
        day = budget_day(self.clock())
        if not self._store.spend_cardata_call(
            gcid, owner, day, lambda c: self._left(c, linking=linking) > 0, self.clock()
        ):
            raise self._spent(self._store.cardata_calls(gcid, owner, day))

    # --- linking --------------------------------------------------------------------------------------------

    async def link(self, owner: int, client_id: str, tokens: Tokens) -> list[str]:
        """Store a new link (after the device flow) once `check_link` went well; the PRIMARY VINs. Replaces
        any earlier link of that owner."""
        link, vins = await self.check_link(owner, client_id, tokens)
        self._store.save_cardata_link(link)
        return vins

    async def check_link(self, owner: int, client_id: str, tokens: Tokens) -> tuple[CarDataLink, list[str]]:
        """A new link (after the device flow) tried at BMW with its own tokens, nothing stored: the PRIMARY
        VINs and, when there are some, the bot's container found or made. Up to three calls from the linking
        reserve. The owner's stored link is neither used nor changed, so a failure leaves it working; the
        caller stores the new one once everything went well."""
        vins = primary_vins(await self.mappings(owner, linking=True, tokens=tokens))
        container_id = await self.ensure_container(owner, tokens) if vins else None
        return CarDataLink(owner, client_id, tokens, container_id), vins

    async def mappings(
        self, owner: int, *, linking: bool = False, tokens: Tokens | None = None
    ) -> list[VehicleMapping]:
        body = await self._call(owner, "GET", "/customers/vehicles/mappings", linking=linking, tokens=tokens)
        return VehicleMapping.list_from_api(body)

    async def ensure_container(
        self, owner: int, tokens: Tokens | None = None, *, linking: bool = True
    ) -> str:
        """The bot's container id: found by its name among the account's active ones (a co-owner or an
        earlier link made it), else created (≤ 10). `tokens`: a new link's (`check_link`); None: the stored
        link's. From the linking reserve unless `linking=False` (the day's reads)."""
        body = await self._call(owner, "GET", "/customers/containers", linking=linking, tokens=tokens)
        existing = [c for c in Container.list_from_api(body) if c.active]
        ours = next((c for c in existing if c.name == CONTAINER_NAME), None)
        if ours is None:
            if len(existing) >= MAX_CONTAINERS:
                raise ContainerLimit()
            body = await self._call(
                owner,
                "POST",
                "/customers/containers",
                linking=linking,
                json={
                    "name": CONTAINER_NAME,
                    "purpose": CONTAINER_PURPOSE,
                    "technicalDescriptors": list(BOT_KEYS),
                },
                tokens=tokens,
            )
            ours = Container.from_api(body)
        return ours.container_id

    async def delete_container(self, owner: int) -> None:
        """Retire the bot's container (at unlink), from the linking reserve; nothing when none was made."""
        container_id = self._link(owner).container_id
        if container_id is None:
            return
        path = f"/customers/containers/{quote(container_id, safe='')}"
        await self._call(owner, "DELETE", path, linking=True, body=False)

    # --- reads ----------------------------------------------------------------------------------------------

    async def telematic_data(self, owner: int, vin: str) -> dict[str, TelematicValue]:
        """The car's values through the bot's container. BMW answers a read through a container it lost
        (deleted in the portal, purged) as it answers one of an unknown car, 404: the bot then looks for its
        container once, makes it again when it is gone and reads again, all within the day's reads."""
        link = self._link(owner)
        if link.container_id is None:
            raise NotLinked()
        try:
            return await self._telematic_data(owner, vin, link.container_id)
        except VehicleNotFound:
            container_id = await self.ensure_container(owner, linking=False)
            if container_id == link.container_id:
                raise  # the container is there: BMW does not know the car
        log.info("cardata: the container was lost and made again for owner %s", owner)
        self._store.replace_cardata_container(link.tokens.gcid, link.container_id, container_id)
        return await self._telematic_data(owner, vin, container_id)

    async def _telematic_data(self, owner: int, vin: str, container_id: str) -> dict[str, TelematicValue]:
        path = f"/customers/vehicles/{_vin(vin)}/telematicData"
        body = await self._call(owner, "GET", path, params={"containerId": container_id})
        return telematic_data_from_api(body)

    async def charging_history(
        self, owner: int, vin: str, start: datetime, end: datetime, *, next_token: str | None = None
    ) -> ChargingHistory:
        params = {"from": _iso(start), "to": _iso(end)}
        if next_token:
            params["nextToken"] = next_token
        body = await self._call(
            owner, "GET", f"/customers/vehicles/{_vin(vin)}/chargingHistory", params=params
        )
        return ChargingHistory.from_api(body)

    async def basic_data(
        self, owner: int, vin: str, *, linking: bool = False, tokens: Tokens | None = None
    ) -> BasicData:
        path = f"/customers/vehicles/{_vin(vin)}/basicData"
        body = await self._call(owner, "GET", path, linking=linking, tokens=tokens)
        return BasicData.from_api(body)

    # --- plumbing -------------------------------------------------------------------------------------------

    def _link(self, owner: int) -> CarDataLink:
        link = self._store.cardata_link(owner)
        if link is None:
            raise NotLinked()
        return link

    async def _call(
        self,
        owner: int,
        method: str,
        path: str,
        *,
        linking: bool = False,
        params: dict[str, str] | None = None,
        json: Any = None,
        body: bool = True,
        tokens: Tokens | None = None,
    ) -> Any:
        """One API call: spend budget, send with a fresh token, renew it once when refused with 401. Its JSON
        body, or (`body=False`, e.g. a DELETE's 204) None. `tokens`: a new link's, not stored yet
        (`check_link`): fresh from the device flow, sent as they are and never renewed."""
        renewable = tokens is None
        if tokens is None:
            tokens = await self.tokens.tokens(owner)
        for attempt in range(2):
            self._spend(owner, tokens.gcid, linking=linking)
            response = await self._send(method, path, tokens, params, json)
            if response.status_code == 401 and attempt == 0 and renewable:
                tokens = await self.tokens.tokens(owner, stale=tokens)
                continue
            break
        # The path names the car: VINs are personal data, logged at DEBUG only (as bot/bmw/client.py does).
        log.debug("cardata: %s %s -> %s", method, path.split("?")[0], response.status_code)
        if response.status_code >= 400:
            raise self._error(owner, tokens.gcid, response)
        if not body:
            return None
        try:
            return response.json()
        except ValueError:
            raise BadResponse(status_code=response.status_code) from None

    async def _send(
        self, method: str, path: str, tokens: Tokens, params: dict[str, str] | None, json: Any
    ) -> httpx.Response:
        headers = {
            "x-version": "v1",
            "Authorization": f"Bearer {tokens.access_token}",
            "Accept": "application/json",
        }
        try:
            return await self._http.request(
                method, f"{self._api}{path}", headers=headers, params=params, json=json
            )
        except httpx.HTTPError as exc:
            raise CarDataUnavailable() from exc

    def _error(self, owner: int, gcid: str, response: httpx.Response) -> CarDataError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error_id = body.get("exveErrorId") if isinstance(body, dict) else None
        error_id = error_id if isinstance(error_id, str) else None
        if error_id == QUOTA_ERROR or status == 429:
            day = budget_day(self.clock())
            # BMW counts calls we could not see (another client of the same account): trust its word.
            self._store.exhaust_cardata_calls(gcid, day, BMW_DAILY_CALLS)
            return self._spent(self._store.cardata_calls(gcid, owner, day), status, error_id)
        if status >= 500:
            return CarDataUnavailable(status_code=status, error_id=error_id)
        if error_id in REFUSALS:
            return REFUSALS[error_id](status_code=status, error_id=error_id)
        if status == 404:
            return VehicleNotFound(status_code=status, error_id=error_id)
        return CarDataError(status_code=status, error_id=error_id)


def _vin(vin: str) -> str:
    return quote(vin, safe="")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
