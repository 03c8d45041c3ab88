"""The sandbox's HTTP face: a Starlette app under Telegram's URL layout, so python-telegram-bot talks to it
unchanged through `base_url(f"{root}/bot")` and `base_file_url(f"{root}/file/bot")`:

    POST|GET /bot{token}/{method}           the Bot API (form, multipart or JSON parameters)
    GET      /file/bot{token}/{file_path}   file downloads (getFile's file_path)
    /_sandbox/...                           the user side: send, press, read a chat (for the demo page)
    GET      /_sandbox/{token}/chat         the demo's chat page (static files in web/); / leads there

Only requests addressed to a loopback name are answered (`_LoopbackHostsOnly`). Injected faults are
applied here: an error or 429 instead of the method, or a connection cut after it ran.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.sandbox.methods import MESSAGE_METHODS, BotApiMethods
from bot.sandbox.params import ApiError, Params, read_params
from bot.sandbox.state import DEFAULT_LANGUAGE_CODE, ApiCall, Fault, SandboxState

if TYPE_CHECKING:
    from bot.sandbox.server import BotApiServer

WEB_DIR = Path(__file__).with_name("web")
# The chat page loads nothing but its own files, and bot texts can never run as script.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def sandbox_app(
    server: BotApiServer, state: SandboxState, methods: BotApiMethods, log: Callable[[ApiCall], None]
) -> Starlette:
    """The server's ASGI app: the Bot API and file routes, the user side and the chat page, on loopback
    names only. `log` records each Bot API call (the server's, so that a subclass can watch them)."""
    logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)
    return Starlette(
        routes=_Http(server, state, methods, log).routes(),
        middleware=[Middleware(_LoopbackHostsOnly)],
    )


class _Http:
    """The route handlers. They keep no state: the Bot API routes call the methods on the state, the
    user side calls the server's Python API (`user_message`, `user_press`, `chat`...)."""

    def __init__(
        self,
        server: BotApiServer,
        state: SandboxState,
        methods: BotApiMethods,
        log: Callable[[ApiCall], None],
    ) -> None:
        self._server = server
        self._state = state
        self._methods = methods
        self._log = log

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
            Route("/file/bot{token}/{file_path:path}", self._download, methods=["GET"]),
            Route("/_sandbox/files/{file_id}", self._sandbox_file, methods=["GET"]),
            Route("/_sandbox/{token}/users/{user_id:int}/messages", self._sandbox_send, methods=["POST"]),
            Route("/_sandbox/{token}/users/{user_id:int}/press", self._sandbox_press, methods=["POST"]),
            Route("/_sandbox/{token}/users/{user_id:int}/location", self._sandbox_location, methods=["POST"]),
            Route("/_sandbox/{token}/users/{user_id:int}/chat", self._sandbox_chat, methods=["GET"]),
            Route("/_sandbox/{token}/bot", self._sandbox_bot, methods=["GET"]),
            Route("/_sandbox/{token}/chat", self._chat_page, methods=["GET"]),
            Mount("/_sandbox/web", StaticFiles(directory=WEB_DIR), name="web"),
            Route("/", self._home, methods=["GET"]),
        ]

    # ----- HTTP: the Bot API ----------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        started = time.time()
        token, method = request.path_params["token"], request.path_params["method"]
        name, handler = self._methods.handlers.get(method.lower(), (method, None))
        bot = self._state.bots.get(token)
        params = Params({}, {})
        fault: Fault | None = None
        try:
            if bot is None:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            params = await read_params(request)
            with self._state.lock:
                faults = self._state.faults.get(name.lower())
                fault = faults.popleft() if faults else None
            if fault is not None and fault.kind == "error":
                raise ApiError(fault.status, HTTPStatus(fault.status).phrase)
            if fault is not None and fault.kind == "flood":
                raise ApiError.flood(fault.retry_after)
            if name == "getUpdates":
                result = await handler(bot, params)
            else:
                with self._state.lock:
                    now = time.monotonic()
                    windows = bot.flood_windows(params.chat_id(), now) if name in MESSAGE_METHODS else []
                    result = handler(bot, params)
                    for window in windows:  # only messages that went out count against the limits
                        window.record(now)
        except ApiError as error:
            self._log(ApiCall(name, params.loggable(), started, False, error.code, error.description))
            return JSONResponse(error.body(), status_code=error.code)
        if fault is not None and fault.kind == "drop":
            self._log(ApiCall(name, params.loggable(), started, False, None, "connection dropped"))
            return _DropConnection()
        self._log(ApiCall(name, params.loggable(), started, True, None))
        return JSONResponse({"ok": True, "result": result})

    # ----- HTTP: files and the user side ---------------------------------------------------------------

    async def _download(self, request: Request) -> Response:
        with self._state.lock:
            known = request.path_params["token"] in self._state.bots
            path = request.path_params["file_path"]
            stored = next((f for f in self._state.files.values() if f.file_path == path), None)
        if not known:
            return JSONResponse(ApiError(401, "Unauthorized").body(), status_code=401)
        if stored is None:
            return JSONResponse(ApiError(404, "Not Found").body(), status_code=404)
        return Response(stored.data, media_type=stored.media_type)

    async def _sandbox_file(self, request: Request) -> Response:
        with self._state.lock:
            stored = self._state.files.get(request.path_params["file_id"])
        if stored is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return Response(stored.data, media_type=stored.media_type)

    async def _sandbox_send(self, request: Request) -> Response:
        return await self._sandbox_action(
            request,
            lambda token, user_id, body: self._server.user_message(token, user_id, text=str(body["text"])),
        )

    async def _sandbox_press(self, request: Request) -> Response:
        return await self._sandbox_action(
            request,
            lambda token, user_id, body: {
                "callback_query_id": self._server.user_press(
                    token, user_id, int(body["message_id"]), str(body["data"])
                )
            },
        )

    async def _sandbox_location(self, request: Request) -> Response:
        return await self._sandbox_action(
            request,
            lambda token, user_id, body: self._server.user_message(
                token, user_id, location=(float(body["lat"]), float(body["lon"]))
            ),
        )

    async def _sandbox_chat(self, request: Request) -> Response:
        return await self._sandbox_action(
            request,
            lambda token, user_id, body: {
                # Like a Telegram client, the page gets no content of deleted messages.
                "messages": [
                    {key: m[key] for key in ("message_id", "from_bot", "date", "deleted")}
                    if m["deleted"]
                    else m
                    for m in self._server.chat(token, user_id)
                ],
                "callback_answers": self._server.callback_answers(token, user_id),
            },
        )

    async def _sandbox_bot(self, request: Request) -> Response:
        """The bot as its users see it: name and command menu (the chat page's header and Menu). As in
        Telegram, `?language_code=` gets the menu the bot set for that language, else its default one."""
        language = request.query_params.get("language_code", "").partition("-")[0].lower()
        with self._state.lock:
            bot = self._state.bots.get(request.path_params["token"])
            if bot is None:
                return JSONResponse({"error": "no bot with this token"}, status_code=404)
            commands = bot.commands.get(("default", language)) or bot.commands.get(("default", ""), [])
            return JSONResponse(
                {
                    "first_name": bot.user["first_name"],
                    "username": bot.user["username"],
                    "commands": commands,
                }
            )

    async def _chat_page(self, request: Request) -> Response:
        with self._state.lock:
            known = request.path_params["token"] in self._state.bots
        if not known:
            return JSONResponse({"error": "no bot with this token"}, status_code=404)
        return FileResponse(
            WEB_DIR / "chat.html",
            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
        )

    async def _home(self, request: Request) -> Response:
        """The first bot's chat page: the one URL the demo prints."""
        try:
            token = self._server.token
        except LookupError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        return RedirectResponse(f"/_sandbox/{token}/chat", status_code=307)

    async def _sandbox_action(
        self, request: Request, action: Callable[[str, int, dict[str, Any]], Any]
    ) -> Response:
        token, user_id = request.path_params["token"], request.path_params["user_id"]
        body: dict[str, Any] = {}
        if request.method == "POST":
            # JSON only: a cross-site form or text/plain POST from another web page cannot act as a user.
            if not request.headers.get("content-type", "").startswith("application/json"):
                return JSONResponse({"error": "send JSON (Content-Type: application/json)"}, status_code=415)
            try:
                parsed = await request.json()
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            body = parsed
        try:
            with self._state.lock:
                if body.get("first_name") or user_id not in self._state.bot(token).users:
                    self._server.register_user(
                        token,
                        user_id,
                        str(body.get("first_name") or "Alice"),
                        body.get("username"),
                        str(body.get("language_code") or DEFAULT_LANGUAGE_CODE),
                    )
                return JSONResponse(action(token, user_id, body))
        except (KeyError, TypeError, ValueError) as error:  # KeyError first: it is also a LookupError
            return JSONResponse({"error": f"bad request: missing or invalid {error}"}, status_code=400)
        except LookupError as error:
            return JSONResponse({"error": str(error)}, status_code=404)


class _DropConnection(Response):
    """Starts an answer, then fails so uvicorn closes the socket: the client sees the reply cut off."""

    def __init__(self) -> None:
        super().__init__(status_code=200, headers={"content-length": "1024"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        raise ConnectionDropped


class ConnectionDropped(Exception):
    """Raised on purpose to cut a connection (fault injection kind "drop")."""


class _HideDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


_DROP_FILTER = _HideDroppedConnections()

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})
_HOST_PORT = re.compile(r"(\[[^\]]*\]|[^:]*)(?::\d*)?")


def loopback_host(host: str) -> bool:
    """Whether a Host header names this machine's loopback (any port)."""
    match = _HOST_PORT.fullmatch(host.strip().lower())
    return match is not None and match.group(1) in LOOPBACK_HOSTS


class _LoopbackHostsOnly:
    """Answers only requests addressed to a loopback name. A web page whose own DNS name is rebound to
    127.0.0.1 reaches this port with its name in Host: it gets 421, never the chat page or `/` (which
    carry the bot token) nor the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not loopback_host(Headers(scope=scope).get("host", "")):
            refusal = Response(
                "This sandbox answers only to 127.0.0.1, localhost and [::1].\n",
                status_code=HTTPStatus.MISDIRECTED_REQUEST,
                media_type="text/plain",
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)
