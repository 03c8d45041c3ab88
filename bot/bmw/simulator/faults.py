"""Fault injection and the request log: the faults tests configure, the log they read, and `Gate`, the
outermost ASGI layer that writes the one and applies the other to API traffic."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Collection
from dataclasses import Field, asdict, dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, get_args
from urllib.parse import parse_qsl

import anyio
import httpx
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.bmw.simulator.accounts import Accounts
from bot.bmw.simulator.bodies import error_response, parse_form

FaultKind = Literal["error", "timeout", "slow", "reset", "malformed"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
SECRET_FIELDS = {"password", "bmwSkAnswer", "refresh_token", "access_token"}


class _Logged(Protocol):
    """What the log needs of a record class: a dataclass with the request's method and path."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    method: str
    path: str


_R = TypeVar("_R", bound=_Logged)
MAX_REQUESTS = 10_000  # the log keeps the newest ones; a long demo must not grow without bound


@dataclass
class Fault:
    path: str  # regex searched in the request path, e.g. r"/status$" or "executeService"
    kind: FaultKind
    status: int = 500  # for "error"
    delay: float = 30.0  # seconds of real time, for "timeout" and "slow"
    times: int | None = 1  # None = every matching request until cleared
    method: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        if self.times is not None and self.times < 1:
            raise ValueError("fault times must be None or at least 1")
        re.compile(self.path)  # a bad pattern fails here, not on the first request

    def matches(self, method: str, path: str) -> bool:
        method_matches = self.method is None or self.method.upper() == method
        return method_matches and re.search(self.path, path) is not None


@dataclass
class RequestRecord:
    time: float
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    username: str | None
    status: int  # 0 when the connection was dropped without an answer


def redact(values: dict[str, str], secrets: Collection[str] = SECRET_FIELDS) -> dict[str, str]:
    return {key: "***" if key in secrets else value for key, value in values.items()}


class Faults:
    """The configured faults, each used up by the requests it matches."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._faults: list[Fault] = []

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None


class RequestLog(Generic[_R]):
    """Every API request with its answer's status, secrets redacted, in simulator time. `make` builds a
    record from (time, method, path, query, form, who, status): the CarData simulator names `who` gcid."""

    def __init__(
        self,
        lock: threading.RLock,
        now: Callable[[], float],
        *,
        make: Callable[..., _R],
        secret_fields: Collection[str] = SECRET_FIELDS,
    ) -> None:
        self._lock = lock
        self.now = now
        self._make = make
        self._secrets = secret_fields
        self.requests: list[_R] = []

    def record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        who: str | None,
        status: int,
    ) -> None:
        with self._lock:
            query, form = redact(query, self._secrets), redact(form, self._secrets)
            self.requests.append(self._make(self.now(), method, path, query, form, who, status))
            if len(self.requests) > MAX_REQUESTS:
                del self.requests[: MAX_REQUESTS // 2]

    def requests_to(self, path_fragment: str, method: str | None = None) -> list[_R]:
        with self._lock:
            return [
                r
                for r in self.requests
                if path_fragment in r.path and (method is None or r.method == method.upper())
            ]

    def requests_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self.requests]


class Gate:
    """Outermost layer for API traffic: writes the request log and injects the configured faults.

    The `/_sim/` control surface passes straight through: it is neither logged nor faulted, so tests can
    steer the simulator while the API misbehaves.
    """

    def __init__(self, app: ASGIApp, accounts: Accounts, faults: Faults, log: RequestLog) -> None:
        self.app, self.accounts, self.faults, self.log = app, accounts, faults, log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sim/"):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        form = parse_form(body)
        username = self.accounts.requester(form, Headers(scope=scope).get("authorization"))
        status = 0
        replayed = False
        recorded = False

        def note() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
                self.log.record(method, path, query, form, username, status)

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def noting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                note()  # before the answer leaves: whoever got the answer finds the request in the log
            await send(message)

        fault = self.faults.take_fault(method, path)
        try:
            if fault is None:
                await self.app(scope, replay, noting)
            else:
                await self._inject(fault, scope, replay, noting, send)
        finally:
            note()  # requests that never got an answer (resets) are logged too

    async def _inject(self, fault: Fault, scope: Scope, receive: Receive, noting: Send, send: Send) -> None:
        match fault.kind:
            case "error":
                await error_response(fault.status, "Simulated server fault")(scope, receive, noting)
            case "timeout":
                await anyio.sleep(fault.delay)
                await error_response(504, "Gateway Timeout")(scope, receive, noting)
            case "slow":
                await anyio.sleep(fault.delay)
                await self.app(scope, receive, noting)
            case "malformed":
                chunks: list[bytes] = []

                async def keep(message: Message) -> None:
                    if message["type"] == "http.response.body":
                        chunks.append(message.get("body", b""))

                await self.app(scope, receive, keep)
                whole = b"".join(chunks)
                # Any proper prefix of a JSON object is invalid JSON; an empty answer gets a fragment.
                truncated = whole[: len(whole) // 2] if len(whole) > 1 else b'{"'
                await Response(truncated, 200, media_type="application/json")(scope, receive, noting)
            case "reset":
                # Headers promising a body, then an exception: uvicorn drops the connection, and an
                # in-process httpx.ASGITransport caller gets the error httpx raises for a dropped peer.
                headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                raise httpx.RemoteProtocolError("simulated connection reset")


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
