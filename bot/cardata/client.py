"""REST client of BMW CarData on one pooled httpx.AsyncClient, with a persisted daily call budget per owner.

BMW allows 50 calls a day per owner and answers more with 403 `CU-429` until the next day. The bot spends at
most `daily_calls` of them on normal reads and keeps the rest for linking (mappings, container, basic data),
so an owner who used up the day's reads can still link again. The count lives in the store (it survives a
restart); a day is a UTC date, and a spent budget raises `BudgetSpent` with the next UTC midnight (BMW says
only "the next day"; midnight UTC is the earliest moment a new day can have begun anywhere in the EU).
The token endpoint is not the REST API and costs no budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
    NotLinked,
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
from bot.cardata.storage import CarDataLink, CarDataStore

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api-cardata.bmwgroup.com"
BMW_DAILY_CALLS = 50
DEFAULT_DAILY_CALLS = 40
MAX_CONTAINERS = 10
CONTAINER_NAME = "bmw-telegram-bot"
CONTAINER_PURPOSE = "Status and charge notifications for the owner's Telegram bot"
QUOTA_ERROR = "CU-429"


def budget_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).date().isoformat()


def next_budget_day(now: float) -> datetime:
    """When a spent budget is usable again: the next UTC midnight."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=1)


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
        self._clock = clock
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
        """Calls still possible today: normal reads, or (linking) up to BMW's own limit."""
        limit = BMW_DAILY_CALLS if linking else self._daily_calls
        return max(0, limit - self._store.cardata_calls(owner, budget_day(self._clock())))

    def _spend(self, owner: int, *, linking: bool) -> None:
        now = self._clock()
        limit = BMW_DAILY_CALLS if linking else self._daily_calls
        if not self._store.spend_cardata_call(owner, budget_day(now), limit):
            raise BudgetSpent(next_budget_day(now))

    # --- linking --------------------------------------------------------------------------------------------

    async def link(self, owner: int, client_id: str, tokens: Tokens) -> list[str]:
        """Store a new link (after the device flow), find or make the bot's container; the PRIMARY VINs.

        Three calls from the linking reserve. Replaces any earlier link of that owner.
        """
        self._store.save_cardata_link(CarDataLink(owner, client_id, tokens))
        await self.ensure_container(owner)
        return primary_vins(await self.mappings(owner, linking=True))

    async def mappings(self, owner: int, *, linking: bool = False) -> list[VehicleMapping]:
        body = await self._call(owner, "GET", "/customers/vehicles/mappings", linking=linking)
        return VehicleMapping.list_from_api(body)

    async def containers(self, owner: int) -> list[Container]:
        body = await self._call(owner, "GET", "/customers/containers", linking=True)
        return Container.list_from_api(body)

    async def ensure_container(self, owner: int) -> str:
        """The bot's container id: stored, else found by its name among the owner's, else created (≤ 10)."""
        link = self._link(owner)
        if link.container_id:
            return link.container_id
        existing = [c for c in await self.containers(owner) if c.active]
        ours = next((c for c in existing if c.name == CONTAINER_NAME), None)
        if ours is None:
            if len(existing) >= MAX_CONTAINERS:
                raise ContainerLimit()
            body = await self._call(
                owner,
                "POST",
                "/customers/containers",
                linking=True,
                json={
                    "name": CONTAINER_NAME,
                    "purpose": CONTAINER_PURPOSE,
                    "technicalDescriptors": list(BOT_KEYS),
                },
            )
            ours = Container.from_api(body)
        self._store.save_cardata_container(owner, ours.container_id)
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
        container_id = self._link(owner).container_id
        if container_id is None:
            raise NotLinked()
        body = await self._call(
            owner,
            "GET",
            f"/customers/vehicles/{_vin(vin)}/telematicData",
            params={"containerId": container_id},
        )
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

    async def basic_data(self, owner: int, vin: str, *, linking: bool = False) -> BasicData:
        body = await self._call(owner, "GET", f"/customers/vehicles/{_vin(vin)}/basicData", linking=linking)
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
    ) -> Any:
        """One API call: spend budget, send with a fresh token, renew it once when refused with 401. Its JSON
        body, or (`body=False`, e.g. a DELETE's 204) None."""
        tokens = await self.tokens.tokens(owner)
        for attempt in range(2):
            self._spend(owner, linking=linking)
            response = await self._send(method, path, tokens, params, json)
            if response.status_code == 401 and attempt == 0:
                tokens = await self.tokens.tokens(owner, stale=tokens)
                continue
            break
        # The path names the car: VINs are personal data, logged at DEBUG only (as bot/bmw/client.py does).
        log.debug("cardata: %s %s -> %s", method, path.split("?")[0], response.status_code)
        if response.status_code >= 400:
            raise self._error(owner, response)
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

    def _error(self, owner: int, response: httpx.Response) -> CarDataError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error_id = body.get("exveErrorId") if isinstance(body, dict) else None
        error_id = error_id if isinstance(error_id, str) else None
        if error_id == QUOTA_ERROR or status == 429:
            now = self._clock()
            # BMW counts calls we could not see (another client of the same owner): trust its word.
            self._store.exhaust_cardata_calls(owner, budget_day(now), BMW_DAILY_CALLS)
            return BudgetSpent(next_budget_day(now), status_code=status, error_id=error_id)
        if status >= 500:
            return CarDataUnavailable(status_code=status, error_id=error_id)
        if status == 404:
            return VehicleNotFound(status_code=status, error_id=error_id)
        return CarDataError(status_code=status, error_id=error_id)


def _vin(vin: str) -> str:
    return quote(vin, safe="")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
