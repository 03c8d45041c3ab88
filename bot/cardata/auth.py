"""OAuth 2.0 device code flow with PKCE (S256) against BMW's customer portal, and the token lifecycle.

Every owner brings their own client id (BMW has no app registration). Linking: `start()` gives the URL and
user code to show, `wait()` polls the token endpoint at BMW's interval until the owner approves or the flow
ends in a typed `Refused`. Afterwards `TokenKeeper` hands out tokens that are valid for at least a margin,
refreshing (and persisting) them ahead of expiry; a refused refresh is `RelinkNeeded`.
Logs name the outcome only, never a token or client id.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx

from bot.cardata.errors import (
    BadResponse,
    CarDataError,
    CarDataUnavailable,
    ClientNotSubscribed,
    NotLinked,
    RelinkNeeded,
    UnknownClient,
)
from bot.cardata.models import DeviceCode, Tokens
from bot.cardata.storage import CarDataStore

log = logging.getLogger(__name__)

DEFAULT_AUTH_URL = "https://customer.bmwgroup.com/gcdm/oauth"
SCOPE = "authenticate_user openid cardata:api:read cardata:streaming:read"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5: slow_down adds 5 s to the interval
# Tokens are renewed when they have less than this left, so no request or MQTT session races the expiry.
TOKEN_MARGIN = 600.0
# Renewals asked of BMW at once. Every stream's id token can come due in the same minute (owners linked
# together, a restart); hundreds of requests queued in one HTTP pool cost its bookkeeping a walk over them all
# at each answer, and their answers came back to be written all at once, holding the event loop.
REFRESHES_AT_ONCE = 4

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Refusal(StrEnum):
    """How a device flow ended without tokens."""

    EXPIRED = "expired_token"  # the owner did not approve in time
    DENIED = "access_denied"  # the owner declined
    INVALID_GRANT = "invalid_grant"  # BMW refused the grant (users report it even after approving: retry)
    INVALID_CLIENT = "invalid_client"  # the client id is unknown (mistyped, or not subscribed)
    INVALID_REQUEST = "invalid_request"  # e.g. a scope the client is not subscribed to
    OTHER = "other"


@dataclass
class DeviceFlow:
    """A started link: what to show the owner, and what polling needs (kept secret).

    `interval` starts as BMW's and grows by 5 s with each `slow_down`, so every later poll honours it.
    """

    client_id: str = field(repr=False)
    code: DeviceCode
    verifier: str = field(repr=False)
    interval: float = 0.0

    def __post_init__(self) -> None:
        self.interval = self.interval or self.code.interval


@dataclass(frozen=True)
class Approved:
    tokens: Tokens


@dataclass(frozen=True)
class Refused:
    reason: Refusal


DeviceOutcome = Approved | Refused


def pkce_pair() -> tuple[str, str]:
    """A code verifier (RFC 7636: 43–128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class CarDataAuth:
    def __init__(
        self,
        http: httpx.AsyncClient,
        auth_url: str = DEFAULT_AUTH_URL,
        *,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = auth_url.rstrip("/")
        self._clock = clock
        self._sleep = sleep

    async def start(self, client_id: str) -> DeviceFlow:
        """Ask BMW for a device code; raises CarDataError (a refused client id is a 4xx `CarDataError`)."""
        verifier, challenge = pkce_pair()
        form = {
            "client_id": client_id,
            "response_type": "device_code",
            "scope": SCOPE,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        status, body = await self._post("/device/code", form)
        if status != 200:
            raise _refusal_error(body, status)
        return DeviceFlow(client_id, DeviceCode.from_api(body, now=self._clock()), verifier)

    async def poll(self, flow: DeviceFlow) -> DeviceOutcome | None:
        """One token poll: the outcome, or None while the owner has not decided (after `slow_down` too)."""
        form = {
            "grant_type": DEVICE_GRANT,
            "device_code": flow.code.device_code,
            "client_id": flow.client_id,
            "code_verifier": flow.verifier,
        }
        status, body = await self._post("/token", form)
        if status == 200:
            return Approved(Tokens.from_api(body, now=self._clock()))
        error = _error_code(body)
        if error == "authorization_pending":
            return None
        if error == "slow_down":
            flow.interval += SLOW_DOWN_STEP
            return None
        if status >= 500:
            raise CarDataUnavailable(status_code=status)
        try:
            return Refused(Refusal(error or Refusal.OTHER))
        except ValueError:
            return Refused(Refusal.OTHER)

    async def wait(self, flow: DeviceFlow) -> DeviceOutcome:
        """Poll at BMW's interval until approved, refused or expired. Network trouble only costs a poll."""
        while True:
            await self._sleep(flow.interval)
            if self._clock() >= flow.code.expires_at:
                return Refused(Refusal.EXPIRED)
            try:
                result = await self.poll(flow)
            except CarDataUnavailable:
                log.info("cardata: token poll failed, trying again")
                continue
            if result is not None:
                log.info(
                    "cardata: device flow ended: %s",
                    "approved" if isinstance(result, Approved) else result.reason,
                )
                return result

    async def refresh(self, client_id: str, tokens: Tokens) -> Tokens:
        """New access, id and refresh tokens; `RelinkNeeded` when BMW refuses or the refresh token expired."""
        if self._clock() >= tokens.refresh_expires_at:
            raise RelinkNeeded()
        form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": client_id}
        status, body = await self._post("/token", form)
        if status == 200:
            return Tokens.from_api(body, now=self._clock(), previous=tokens)
        if status >= 500 or status == 429:
            raise CarDataUnavailable(status_code=status)
        log.info("cardata: refresh refused (%s, %s)", status, _error_code(body) or "no error code")
        raise RelinkNeeded(status_code=status)

    async def _post(self, path: str, form: dict[str, str]) -> tuple[int, Any]:
        try:
            response = await self._http.post(f"{self._url}{path}", data=form)
        except httpx.HTTPError as exc:
            raise CarDataUnavailable() from exc
        if response.status_code >= 500:
            raise CarDataUnavailable(status_code=response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise BadResponse(status_code=response.status_code) from None
        return response.status_code, body


def _error_code(body: Any) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, str) else None


def _refusal_error(body: Any, status: int) -> CarDataError:
    code = _error_code(body)
    if code == "invalid_client":
        return UnknownClient(status_code=status, error_id=code)
    if code == "invalid_request":
        return ClientNotSubscribed(status_code=status, error_id=code)
    return CarDataError(status_code=status, error_id=code)


class TokenKeeper:
    """Valid tokens for each owner, from the store, refreshed ahead of expiry once even under concurrency."""

    def __init__(self, auth: CarDataAuth, store: CarDataStore, *, clock: Clock = time.time) -> None:
        self._auth = auth
        self._store = store
        self._clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        self._refreshing = asyncio.Semaphore(REFRESHES_AT_ONCE)

    async def tokens(
        self, owner: int, *, margin: float = TOKEN_MARGIN, stale: Tokens | None = None
    ) -> Tokens:
        """Tokens valid for at least `margin` s; renews `stale` ones (a server refused them) if stored."""
        return await self._renewed(owner, lambda tokens: self._needs_refresh(tokens, margin, stale))

    async def keep_alive(self, owner: int, refresh_margin: float) -> Tokens:
        """Renew the owner's tokens when their refresh token has less than `refresh_margin` s left, whether
        or not they are in use: one unused for its two weeks expires, and the owner must link again."""
        return await self._renewed(
            owner, lambda tokens: tokens.refresh_expires_at - self._clock() < refresh_margin
        )

    async def _renewed(self, owner: int, needed: Callable[[Tokens], bool]) -> Tokens:
        link = self._store.cardata_link(owner)
        if link is None:
            raise NotLinked()
        if not needed(link.tokens):
            return link.tokens
        async with self._locks.setdefault(owner, asyncio.Lock()):
            link = self._store.cardata_link(owner)
            if link is None:
                raise NotLinked()
            if not needed(link.tokens):
                return link.tokens  # another task renewed them meanwhile
            async with self._refreshing:
                tokens = await self._auth.refresh(link.client_id, link.tokens)
            if not self._store.save_cardata_tokens(owner, tokens, link.tokens):
                # The owner linked again (or unlinked) while BMW answered: the link as it is now wins.
                log.info("cardata: renewed tokens of owner %s dropped, the link changed meanwhile", owner)
                link = self._store.cardata_link(owner)
                if link is None:
                    raise NotLinked()
                return link.tokens
            log.info("cardata: tokens renewed for owner %s", owner)
            return tokens

    def expires_in(self, tokens: Tokens) -> float:
        """Seconds the access and id token have left."""
        return tokens.expires_at - self._clock()

    def _needs_refresh(self, tokens: Tokens, margin: float, stale: Tokens | None) -> bool:
        if stale is not None and stale.access_token == tokens.access_token:
            return True
        return self.expires_in(tokens) < margin
