"""Async client of the BMW i Remote API (docs/i-remote-api.md: regions, OAuth, vehicle data, remote services).

One `BMWClient` per process: it owns one pooled `httpx.AsyncClient` and serves any number of `Account`s,
caching each account's token on the account itself. Every exception leaving it is a `BMWError`.
Logs carry the method, path and status only: never a password, token or security answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from bot.bmw.errors import (
    ApiCredentialsError,
    AuthenticationError,
    BadResponse,
    BMWError,
    BMWUnavailable,
    NotSupported,
    OtherRequest,
    SecurityAnswerRequired,
    ServiceTimeout,
    VehicleNotFound,
    WrongSecurityAnswer,
)
from bot.bmw.models import (
    SERVERS,
    Account,
    AllTrips,
    ChargingProfile,
    Destination,
    ExecutionStatus,
    LastTrip,
    Poi,
    RangeMap,
    ServiceType,
    Token,
    Vehicle,
    VehicleStatus,
)

log = logging.getLogger(__name__)

TOKEN_PATH = "/webapi/oauth/token/"
VEHICLES_PATH = "/webapi/v1/user/vehicles/"
SCOPE = "remote_services vehicle_data"
# A token is renewed this long before it expires, so a request never races its expiry.
TOKEN_MARGIN = 60.0
POLL_GROWTH = 1.5
OnStatus = Callable[[ExecutionStatus], Awaitable[None]]
_SECRET_MISSING = "secretKnowledge is missing but required"
# The event-loop time by which the caller needs an answer (see `budget`); None: the client's own patience.
_DEADLINE: ContextVar[float | None] = ContextVar("bmw_deadline", default=None)


@contextmanager
def budget(seconds: float) -> Iterator[None]:
    """Calls made inside try a retry only when it can start within `seconds` from now, so a caller who
    bounds them (asyncio.timeout) gets the failure itself, not a retry cut off half-way. The caller
    keeps the bound: a request in flight is not shortened here."""
    token = _DEADLINE.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


class BMWClient:
    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        service_deadline: float = 300.0,
        poll_initial: float = 2.0,
        poll_max: float = 10.0,
        get_retries: int = 3,
        retry_backoff: float = 0.5,
    ) -> None:
        self._base_url = base_url.rstrip("/") if base_url else None
        self._basic = httpx.BasicAuth(api_key, api_secret)
        self._http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
        )
        self._service_deadline = service_deadline
        self._poll_initial = poll_initial
        self._poll_max = poll_max
        self._get_retries = get_retries
        self._retry_backoff = retry_backoff
        # One lock per login, so concurrent calls of one account renew its token once, not once each. Weak
        # values: a lock lives only while a call holds or awaits it, so e-mails tried once leave nothing.
        self._auth_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- authentication -------------------------------------------------------------------------------

    async def login(self, account: Account) -> Token:
        """Password grant; stores the new token on the account."""
        async with self._auth_lock(account):
            return await self._password_grant(account)

    async def _valid_token(self, account: Account) -> Token:
        token = account.token
        if token is not None and _fresh(token):
            return token
        async with self._auth_lock(account):
            # Another task may have renewed it while this one waited for the lock.
            token = account.token
            if token is not None and _fresh(token):
                return token
            return await self._renew(account)

    async def _reauthenticate(self, account: Account, stale: Token) -> None:
        """After a 401: renew the token the server refused, unless another task already did."""
        async with self._auth_lock(account):
            if account.token is stale or account.token is None:
                await self._renew(account)

    async def _renew(self, account: Account) -> Token:
        token = account.token
        if token is not None and token.refresh_token:
            try:
                return await self._grant(
                    account, grant_type="refresh_token", refresh_token=token.refresh_token
                )
            except AuthenticationError:
                log.info("refresh token refused; logging in again with the password")
        return await self._password_grant(account)

    async def _password_grant(self, account: Account) -> Token:
        return await self._grant(
            account, grant_type="password", username=account.username, password=account.password
        )

    async def _grant(self, account: Account, **form: str) -> Token:
        response = await self._transmit(
            "POST", self._url(account, TOKEN_PATH), retries=0, data={**form, "scope": SCOPE}, auth=self._basic
        )
        if response.status_code in (400, 401, 403):
            error = _json_or_none(response)
            code = error.get("error") if isinstance(error, dict) else None
            if code == "invalid_client":
                raise ApiCredentialsError(status_code=response.status_code)
            raise AuthenticationError(status_code=response.status_code)
        account.token = Token.from_api(self._body(response), now=time.time())
        return account.token

    def _auth_lock(self, account: Account) -> asyncio.Lock:
        lock = self._auth_locks.get(account.username)
        if lock is None:
            lock = self._auth_locks[account.username] = asyncio.Lock()
        return lock

    # --- vehicle data ---------------------------------------------------------------------------------

    async def vehicles(self, account: Account) -> list[Vehicle]:
        return Vehicle.list_from_api(await self._request(account, "GET", VEHICLES_PATH))

    async def status(self, account: Account, vin: str) -> VehicleStatus:
        return VehicleStatus.from_api(await self._get(account, vin, "status"))

    async def last_trip(self, account: Account, vin: str) -> LastTrip | None:
        return LastTrip.from_api(await self._get(account, vin, "statistics/lastTrip"))

    async def all_trips(self, account: Account, vin: str) -> AllTrips | None:
        return AllTrips.from_api(await self._get(account, vin, "statistics/allTrips"))

    async def charging_profile(self, account: Account, vin: str) -> ChargingProfile | None:
        return ChargingProfile.from_api(await self._get(account, vin, "chargingprofile"))

    async def destinations(self, account: Account, vin: str) -> list[Destination]:
        return Destination.list_from_api(await self._get(account, vin, "destinations"))

    async def range_map(self, account: Account, vin: str) -> RangeMap:
        return RangeMap.from_api(await self._get(account, vin, "rangemap"))

    async def _get(self, account: Account, vin: str, endpoint: str) -> Any:
        return await self._request(account, "GET", _vehicle_path(vin, endpoint))

    # --- remote services ------------------------------------------------------------------------------

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
    ) -> ExecutionStatus:
        """Send one remote service and follow it to EXECUTED / NOT_EXECUTED / TIMED_OUT.

        The POST is sent once: a car command is not idempotent, so a failure is reported, never repeated
        blindly. `on_sent` sees the POST's answer (its event id), `on_status` each change of status. Raises
        ServiceTimeout after `service_deadline`.
        """
        if service is ServiceType.CHARGING_CONTROL and profile is None:
            raise ValueError("CHARGING_CONTROL needs a profile")
        form = {"serviceType": str(service)}
        if security_answer is not None:
            form["bmwSkAnswer"] = security_answer
        if flash_count is not None:
            form["count"] = str(flash_count)
        if profile is not None:
            form["data"] = json.dumps(profile.to_api())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._service_deadline
        status = ExecutionStatus.from_api(
            await self._request(account, "POST", _vehicle_path(vin, "executeService"), data=form)
        )
        if on_sent is not None:
            await on_sent(status)
        return await self._follow(account, vin, service, status, deadline, on_status)

    async def follow(
        self,
        account: Account,
        vin: str,
        service: ServiceType,
        *,
        event_id: str,
        started_at: float,
        on_status: OnStatus | None = None,
    ) -> ExecutionStatus:
        """Follow a service sent earlier (by another process: its POST answered `event_id` at Unix time
        `started_at`) to its end, without sending it again.

        serviceExecutionStatus shows the latest request of a type, so a later one of the same type hides
        this one's outcome: OtherRequest then. The deadline counts from `started_at`; at least one poll is
        made however late it is. Raises ServiceTimeout past the deadline.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(started_at + self._service_deadline - time.time(), 0.0)
        # The first look may retry like any read: there is no earlier status to fall back on.
        status = await self._poll(account, vin, service, retries=self._get_retries)
        return await self._follow(account, vin, service, status, deadline, on_status, event_id=event_id)

    async def _follow(
        self,
        account: Account,
        vin: str,
        service: ServiceType,
        status: ExecutionStatus,
        deadline: float,
        on_status: OnStatus | None,
        *,
        event_id: str | None = None,
    ) -> ExecutionStatus:
        """Poll the service from `status` on until it is terminal or `deadline` (loop time) has passed."""
        loop = asyncio.get_running_loop()
        notified: str | None = None
        interval = self._poll_initial
        while True:
            if event_id is not None and status.event_id not in (None, event_id):
                raise OtherRequest()
            # A status without `status` (seen on real servers) is no news: only real changes are reported.
            if on_status is not None and status.status is not None and status.status != notified:
                notified = status.status
                await on_status(status)
            if status.terminal:
                return status
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ServiceTimeout(last_status=status.status)
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * POLL_GROWTH, self._poll_max)
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0.0)):
                    status = await self._poll(account, vin, service)
            except TimeoutError:
                raise ServiceTimeout(last_status=status.status) from None
            except (BMWUnavailable, BadResponse) as exc:
                # The command is already on its way: a flaky poll must not hide its outcome.
                log.info("polling %s failed (%s); still waiting", service, type(exc).__name__)

    async def _poll(
        self, account: Account, vin: str, service: ServiceType, *, retries: int = 0
    ) -> ExecutionStatus:
        body = await self._request(
            account,
            "GET",
            _vehicle_path(vin, "serviceExecutionStatus"),
            params={"serviceType": str(service)},
            retries=retries,  # none by default: polling is itself the retry loop
        )
        return ExecutionStatus.from_api(body)

    async def send_poi(self, account: Account, vin: str, poi: Poi) -> None:
        await self._request(
            account, "POST", _vehicle_path(vin, "sendpoi"), data={"data": json.dumps(poi.to_api())}
        )

    # --- HTTP -----------------------------------------------------------------------------------------

    def _url(self, account: Account, path: str) -> str:
        return (self._base_url or SERVERS[account.region]) + path

    async def _request(
        self,
        account: Account,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        retries: int | None = None,
    ) -> Any:
        """An authorised API call: the parsed JSON body (None for 204), or a BMWError.

        GETs are retried on network errors and 5xx; POSTs are not. Either is repeated once after a 401,
        since the server refused it before doing anything.
        """
        if retries is None:
            retries = self._get_retries if method == "GET" else 0
        url = self._url(account, path)

        async def send(token: Token) -> httpx.Response:
            headers = {"Authorization": f"Bearer {token.access_token}"}
            return await self._transmit(
                method, url, retries=retries, params=params, data=data, headers=headers
            )

        token = await self._valid_token(account)
        response = await send(token)
        if response.status_code == 401:
            await self._reauthenticate(account, token)
            response = await send(await self._valid_token(account))
        return self._body(response)

    async def _transmit(self, method: str, url: str, *, retries: int, **kwargs: Any) -> httpx.Response:
        """Send with up to `retries` repeats on network errors and 5xx, backing off with jitter, and only
        while a repeat can start within the caller's `budget`."""
        path = httpx.URL(url).path
        attempt = 0
        while True:
            # Exponential backoff with jitter, so many clients do not retry in lockstep.
            backoff = self._retry_backoff * 2**attempt * random.uniform(0.5, 1.0)
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                log.warning("%s %s failed: %s", method, path, type(exc).__name__)
                if attempt >= retries or not _retry_fits(backoff):
                    raise BMWUnavailable() from exc
            else:
                log.debug("%s %s -> %d", method, path, response.status_code)
                if response.status_code < 500 or attempt >= retries or not _retry_fits(backoff):
                    return response
            await asyncio.sleep(backoff)
            attempt += 1

    def _body(self, response: httpx.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError as exc:
                raise BadResponse(status_code=status) from exc
        raise _error_for(response)


def _retry_fits(backoff: float) -> bool:
    deadline = _DEADLINE.get()
    return deadline is None or asyncio.get_running_loop().time() + backoff < deadline


def _fresh(token: Token) -> bool:
    return time.time() < token.expires_at - TOKEN_MARGIN


def _vehicle_path(vin: str, endpoint: str) -> str:
    return f"{VEHICLES_PATH}{quote(vin, safe='')}/{endpoint}"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_for(response: httpx.Response) -> BMWError:
    """Map an error answer to the caller's error. The description is read, never passed on."""
    status = response.status_code
    body = _json_or_none(response)
    description = ""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # API errors: {"error": {"code": n, "description": "..."}}
            description = str(error.get("description", ""))
        else:  # OAuth errors: {"error": "...", "error_description": "..."}
            description = str(body.get("error_description", ""))
    # The security-answer refusals come as HTTP 500, so they are recognised before the status classes.
    if "secretKnowledge" in description:
        if _SECRET_MISSING in description:
            return SecurityAnswerRequired(status_code=status)
        return WrongSecurityAnswer(status_code=status)
    if status == 401:
        return AuthenticationError(status_code=status)
    if status == 404:
        return VehicleNotFound(status_code=status)
    if status == 400 and response.request.url.path.endswith("/executeService"):
        return NotSupported(status_code=status)
    if status == 429 or status >= 500:
        return BMWUnavailable(status_code=status)
    return BMWError(f"BMW refused the request (HTTP {status}).", status_code=status)
