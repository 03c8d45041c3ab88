"""A loopback emulation of the Telegram Bot API: the methods our bot uses, with Telegram's answers.

`BotApiServer` keeps the state (bots, chats, pending updates, files, commands) and serves it as a
Starlette app under Telegram's URL layout, so python-telegram-bot talks to it unchanged through
`base_url(f"{root}/bot")` and `base_file_url(f"{root}/file/bot")`:

    POST|GET /bot{token}/{method}           the Bot API (form, multipart or JSON parameters)
    GET      /file/bot{token}/{file_path}   file downloads (getFile's file_path)
    /_sandbox/...                           the user side: send, press, read a chat (for the demo page)
    GET      /_sandbox/{token}/chat             the demo's chat page (static files in web/); / leads there

The user side is also a Python API (`register_user`, `add_group`, `user_message`, `user_press`, `chat`, ...)
that `bot.sandbox.driver` wraps for tests. The server runs in uvicorn's thread while callers use their own
thread and event loop, so every piece of state is guarded by one lock and coroutines waiting in the
server's loop (long polls, webhook delivery) are woken thread-safely.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import io
import json
import logging
import math
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError
from starlette.applications import Starlette
from starlette.datastructures import Headers, UploadFile
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

# Telegram's limits (docs/telegram.md).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10000
MAX_PHOTO_RATIO = 20

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)

# Methods that post or change a message: the ones Telegram's flood control counts.
MESSAGE_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendLocation", "sendVenue"}
    | {"editMessageText", "editMessageCaption", "editMessageReplyMarkup"}
)
CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}
)
GROUP_KINDS = frozenset({"group", "supergroup", "channel"})
# Update types delivered when allowed_updates is empty (Telegram's default excludes these three).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji"}
    | {"code", "pre", "blockquote"}
)
_HTML_TAG = re.compile(r"<(/?)([^\s>/]*)[^>]*>")
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
# Webhook retries back off quickly: tests wait on them, and a loopback receiver recovers fast.
WEBHOOK_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
FAULT_KINDS = frozenset({"error", "flood", "drop"})
WEB_DIR = Path(__file__).with_name("web")
# The chat page loads nothing but its own files, and bot texts can never run as script.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class ApiError(Exception):
    """A Bot API error answer: `{"ok": false, "error_code": code, "description": ...}`."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    @classmethod
    def bad_request(cls, what: str) -> ApiError:
        return cls(400, f"Bad Request: {what}")

    @classmethod
    def flood(cls, retry_after: int) -> ApiError:
        return cls(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass(frozen=True)
class ApiCall:
    """One Bot API call as received (parameters as sent, minus secrets and file contents) and its outcome."""

    method: str
    params: dict[str, Any]
    time: float
    ok: bool
    error_code: int | None
    description: str | None = None


@dataclass
class _Fault:
    kind: str
    status: int
    retry_after: int


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    media_type: str
    width: int
    height: int

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "width": self.width,
            "height": self.height,
        }


@dataclass
class _Message:
    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo: _StoredFile | None = None
    location: tuple[float, float] | None = None
    venue: dict[str, str] | None = None
    sticker: str | None = None
    sender: dict[str, Any] | None = (
        None  # who wrote a user's message in a group (a private chat has one user)
    )
    edit_date: int | None = None
    edits: int = 0
    deleted: bool = False

    def content(self) -> tuple[Any, ...]:
        """What 'message is not modified' compares."""
        return (self.text, self.caption, self.parse_mode, self.reply_markup)

    def buttons(self) -> list[list[dict[str, Any]]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])


@dataclass
class _CallbackQuery:
    query_id: str
    user_id: int
    answered: bool = False


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = None


class _Signal:
    """Wakes coroutines waiting in the server's event loop, from any thread. Use under the server lock."""

    def __init__(self) -> None:
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def waiter(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        entry = (asyncio.get_running_loop(), asyncio.Event())
        self._waiters.add(entry)
        return entry

    def discard(self, entry: tuple[asyncio.AbstractEventLoop, asyncio.Event]) -> None:
        self._waiters.discard(entry)

    def notify(self) -> None:
        for loop, event in self._waiters:
            # A loop that has already shut down has nobody left to wake.
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)


class _RateWindow:
    """At most `per_second` accepted messages in a sliding window; answers the retry_after of a 429."""

    def __init__(self, per_second: float) -> None:
        # Rates below 1/s need a longer window to allow even one message.
        self.window = max(1.0, 1.0 / per_second)
        self.capacity = max(1, round(per_second * self.window))
        self._stamps: deque[float] = deque()

    def retry_after(self, now: float) -> int | None:
        while self._stamps and self._stamps[0] <= now - self.window:
            self._stamps.popleft()
        if len(self._stamps) < self.capacity:
            return None
        return max(1, math.ceil(self._stamps[0] + self.window - now))

    def record(self, now: float) -> None:
        self._stamps.append(now)


@dataclass
class _Chat:
    """A private chat with `user`, or, when `group` is set, a group, supergroup or channel (its chat JSON)."""

    user: dict[str, Any]
    messages: dict[int, _Message] = field(default_factory=dict)
    next_message_id: int = 1
    group: dict[str, Any] | None = None

    @property
    def id(self) -> int:
        return int((self.group or self.user)["id"])

    def json(self) -> dict[str, Any]:
        if self.group is not None:
            return dict(self.group)
        chat = {"id": self.user["id"], "first_name": self.user["first_name"], "type": "private"}
        if "username" in self.user:
            chat["username"] = self.user["username"]
        return chat


class _Bot:
    """One bot token's world: its identity, chats, pending updates, webhook, commands and rate windows."""

    def __init__(
        self,
        token: str,
        username: str,
        first_name: str,
        *,
        flood_limit: float | None,
        per_chat_limit: float | None,
    ) -> None:
        prefix = token.split(":", 1)[0]
        self.id = int(prefix) if prefix.isdigit() else zlib.crc32(token.encode())
        self.user = {"id": self.id, "is_bot": True, "first_name": first_name, "username": username}
        self.users: dict[int, dict[str, Any]] = {}
        self.chats: dict[int, _Chat] = {}
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 100_000_001
        self.held = 0  # while above 0, new updates wait: they then arrive together (one getUpdates batch)
        self.allowed_updates: list[str] = []
        self.updates_changed = _Signal()
        self.poll_generation = 0
        self.webhook: _Webhook | None = None
        self.queries: dict[str, _CallbackQuery] = {}
        self.next_query = 1
        self.answers: list[dict[str, Any]] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.flood = _RateWindow(flood_limit) if flood_limit else None
        self.per_chat_limit = per_chat_limit
        self.chat_windows: dict[int, _RateWindow] = {}

    def me(self) -> dict[str, Any]:
        return {
            **self.user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def push_update(self, kind: str, payload: dict[str, Any]) -> None:
        self.updates.append({"update_id": self.next_update_id, kind: payload})
        self.next_update_id += 1
        self.updates_changed.notify()

    def deliverable(self, limit: int) -> list[dict[str, Any]]:
        """Pending updates in order, skipping (and forgetting) types the bot did not subscribe to."""
        if self.held:
            return []
        self.updates = [update for update in self.updates if self._wanted(update)]
        return self.updates[:limit]

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next(key for key in update if key != "update_id")
        return kind in self.allowed_updates if self.allowed_updates else kind not in OPT_IN_UPDATES

    def confirm(self, offset: int) -> None:
        if offset > 0:
            self.updates = [update for update in self.updates if update["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]

    def chat(self, chat_id: int) -> _Chat:
        if chat_id not in self.chats:
            raise ApiError.bad_request("chat not found")
        return self.chats[chat_id]

    def message_json(self, message: _Message) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        body: dict[str, Any] = {"message_id": message.message_id}
        if message.from_bot:
            body["from"] = self.user
        elif chat.group is None or message.sender is not None:
            body["from"] = {**(message.sender or chat.user), "is_bot": False, "language_code": "en"}
        else:  # a channel post: signed by the channel, from no user
            body["sender_chat"] = chat.json()
        body.update(chat=chat.json(), date=message.date)
        if message.edit_date is not None:
            body["edit_date"] = message.edit_date
        if message.text is not None:
            body["text"] = message.text
            if not message.from_bot and (entities := command_entities(message.text)):
                body["entities"] = entities
        if message.photo is not None:
            body["photo"] = [message.photo.photo_size()]
        if message.caption is not None:
            body["caption"] = message.caption
        if message.location is not None:
            body["location"] = {"latitude": message.location[0], "longitude": message.location[1]}
        if message.venue is not None:
            body["venue"] = {"location": body["location"], **message.venue}
        if message.sticker is not None:
            digest = hashlib.sha256(message.sticker.encode()).hexdigest()
            body["sticker"] = {
                "file_id": f"CAACAgIAAxk{digest[:40]}",
                "file_unique_id": f"AgAD{digest[:12]}",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "emoji": message.sticker,
            }
        if message.reply_markup is not None:
            body["reply_markup"] = message.reply_markup
        return body

    def flood_windows(self, chat_id: int, now: float) -> list[_RateWindow]:
        """The rate windows a message to `chat_id` counts in; a 429 if any of them is full."""
        windows = [self.flood] if self.flood else []
        if self.per_chat_limit:
            windows.append(self.chat_windows.setdefault(chat_id, _RateWindow(self.per_chat_limit)))
        waits = [wait for window in windows if (wait := window.retry_after(now)) is not None]
        if waits:
            raise ApiError.flood(max(waits))
        return windows


def command_entities(text: str) -> list[dict[str, Any]]:
    """bot_command entities for each /command in a user's text; offsets in UTF-16 units, as Telegram's."""

    def utf16(part: str) -> int:
        return len(part.encode("utf-16-le")) // 2

    return [
        {"type": "bot_command", "offset": utf16(text[: match.start()]), "length": utf16(match.group())}
        for match in _COMMAND.finditer(text)
    ]


def html_visible_text(text: str) -> str:
    """The text Telegram shows for parse_mode HTML, or ApiError with Telegram's 'can't parse entities'."""
    open_tags: list[str] = []
    position = 0
    while (start := text.find("<", position)) >= 0:
        offset = len(text[:start].encode())
        match = _HTML_TAG.match(text, start)
        if match is None:
            raise ApiError.bad_request(f"can't parse entities: Unclosed start tag at byte offset {offset}")
        closing, name = match.group(1) == "/", match.group(2).lower()
        if name not in HTML_TAGS:
            raise ApiError.bad_request(
                f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {offset}'
            )
        if not closing:
            open_tags.append(name)
        elif not open_tags or open_tags[-1] != name:
            expected = f'"</{open_tags[-1]}>"' if open_tags else "no end tag"
            raise ApiError.bad_request(
                f"can't parse entities: Unmatched end tag at byte offset {offset}, "
                f'expected {expected}, found "</{name}>"'
            )
        else:
            open_tags.pop()
        position = match.end()
    if open_tags:
        raise ApiError.bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{open_tags[-1]}\""
        )
    return html.unescape(_HTML_TAG.sub("", text))


class _Params:
    """Typed access to parameters that arrive as strings (form, multipart, query) or as JSON values."""

    def __init__(self, values: dict[str, Any], files: dict[str, bytes]) -> None:
        self.values = values
        self.files = files

    def text(self, name: str, *, required: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError.bad_request(required)
            return None
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, name: str, *, required: str | None = None) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            raise ApiError.bad_request(f"invalid {name} specified") from None

    def number(self, name: str) -> float:
        value = self.text(name, required=f"{name} is empty")
        try:
            return float(value or "")
        except ValueError:
            raise ApiError.bad_request(f"invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        return value is True or (isinstance(value, str) and value.lower() in {"true", "1"})

    def decoded(self, name: str) -> Any:
        value = self.values.get(name)
        if not isinstance(value, str) or value == "":
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError.bad_request(f"can't parse {name} JSON object") from None

    def chat_id(self) -> int:
        value = self.text("chat_id", required="chat_id is empty")
        try:
            return int(value or "")
        except ValueError:
            # Usernames (@channel) name public chats; the sandbox's groups and channels have none.
            raise ApiError.bad_request("chat not found") from None

    def loggable(self) -> dict[str, Any]:
        logged = {name: "***" if name == "secret_token" else value for name, value in self.values.items()}
        logged.update({name: f"<upload of {len(data)} bytes>" for name, data in self.files.items()})
        return logged


def _check_text(text: str, parse_mode: str | None, limit: int, too_long: str) -> None:
    visible = html_visible_text(text) if (parse_mode or "").upper() == "HTML" else text
    if len(visible) > limit:
        raise ApiError.bad_request(too_long)


def _inline_keyboard(params: _Params) -> dict[str, Any] | None:
    """The reply_markup to echo back: inline keyboards only (reply keyboards are not part of a message)."""
    markup = params.decoded("reply_markup")
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError.bad_request('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array')
    for button in (button for row in rows for button in row):
        if not isinstance(button, dict) or not button.get("text"):
            raise ApiError.bad_request("BUTTON_TEXT_INVALID")
        data = button.get("callback_data")
        if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise ApiError.bad_request("BUTTON_DATA_INVALID")
        url = button.get("url")
        if url is not None and not re.match(r"(https?|tg)://\S+$", str(url)):
            raise ApiError.bad_request("BUTTON_URL_INVALID")
    return {"inline_keyboard": rows}


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


Handler = Callable[[_Bot, _Params], Any]


class BotApiServer:
    """The Bot API emulator. Thread-safe: serve `app` in one thread, drive users and read from another."""

    def __init__(
        self, *, flood_limit_per_second: float | None = None, per_chat_limit_per_second: float | None = None
    ) -> None:
        self.flood_limit_per_second = flood_limit_per_second
        self.per_chat_limit_per_second = per_chat_limit_per_second
        self.calls: list[ApiCall] = []
        self._lock = threading.RLock()
        self._bots: dict[str, _Bot] = {}
        self._files: dict[str, _StoredFile] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageCaption": self._edit_message_caption,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "answerCallbackQuery": self._answer_callback_query,
                "sendPhoto": self._send_photo,
                "getFile": self._get_file,
                "sendLocation": self._send_location,
                "sendVenue": self._send_venue,
                "sendChatAction": self._send_chat_action,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
            }.items()
        }
        # getUpdates is the one method that waits (long polling): _api awaits it outside the lock.
        self._methods["getupdates"] = ("getUpdates", self._get_updates)
        logging.getLogger("uvicorn.error").addFilter(_DROP_FILTER)
        self.app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
                Route("/file/bot{token}/{file_path:path}", self._download, methods=["GET"]),
                Route("/_sandbox/files/{file_id}", self._sandbox_file, methods=["GET"]),
                Route("/_sandbox/{token}/users/{user_id:int}/messages", self._sandbox_send, methods=["POST"]),
                Route("/_sandbox/{token}/users/{user_id:int}/press", self._sandbox_press, methods=["POST"]),
                Route(
                    "/_sandbox/{token}/users/{user_id:int}/location", self._sandbox_location, methods=["POST"]
                ),
                Route("/_sandbox/{token}/users/{user_id:int}/chat", self._sandbox_chat, methods=["GET"]),
                Route("/_sandbox/{token}/bot", self._sandbox_bot, methods=["GET"]),
                Route("/_sandbox/{token}/chat", self._chat_page, methods=["GET"]),
                Mount("/_sandbox/web", StaticFiles(directory=WEB_DIR), name="web"),
                Route("/", self._home, methods=["GET"]),
            ],
            middleware=[Middleware(_LoopbackHostsOnly)],
        )

    # ----- configuration and inspection -------------------------------------------------------------

    def add_bot(self, token: str, *, username: str = "bmw_i3_bot", first_name: str = "BMW i3") -> None:
        with self._lock:
            self._bots[token] = _Bot(
                token,
                username,
                first_name,
                flood_limit=self.flood_limit_per_second,
                per_chat_limit=self.per_chat_limit_per_second,
            )

    @property
    def token(self) -> str:
        """The first bot's token: most setups serve exactly one bot."""
        with self._lock:
            if not self._bots:
                raise LookupError("no bot added: call add_bot(token) first")
            return next(iter(self._bots))

    def inject(
        self, method: str, kind: str, *, times: int = 1, status: int = 500, retry_after: int = 1
    ) -> None:
        """Make the next `times` calls of `method` fail: "error" answers `status`, "flood" a 429 with
        `retry_after`, "drop" handles the call and then cuts the connection before the answer arrives."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}, not {kind!r}")
        if method.lower() not in self._methods:
            raise ValueError(f"unknown Bot API method {method!r}")
        HTTPStatus(status)  # a ValueError now rather than a failed answer later
        with self._lock:
            queue = self._faults.setdefault(method.lower(), deque())
            queue.extend(_Fault(kind, status, retry_after) for _ in range(times))

    @contextmanager
    def together(self, token: str) -> Iterator[None]:
        """The updates users make inside the block reach the bot together, when it ends: one getUpdates
        batch, or webhook posts back to back (as when Telegram delivers a burst or a user types ahead)."""
        with self._lock:
            self._bot(token).held += 1
        try:
            yield
        finally:
            with self._lock:
                bot = self._bot(token)
                bot.held -= 1
                bot.updates_changed.notify()

    def webhook_secret(self, token: str) -> str | None:
        """The secret token of the bot's webhook, as setWebhook registered it (the call log masks it)."""
        with self._lock:
            hook = self._bot(token).webhook
            return hook.secret_token if hook else None

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._lock:
            return [call for call in self.calls if call.method.lower() == method.lower()]

    def commands(
        self, token: str, *, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        with self._lock:
            return list(self._bot(token).commands.get((_scope_key(scope), language_code), []))

    # ----- the user side (the driver and the /_sandbox/ routes) -----------------------------------------

    def register_user(
        self, token: str, user_id: int, first_name: str = "Alice", username: str | None = None
    ) -> None:
        """Name a user; their private chat with the bot opens with their first message."""
        user: dict[str, Any] = {"id": user_id, "first_name": first_name}
        if username:
            user["username"] = username
        with self._lock:
            bot = self._bot(token)
            bot.users[user_id] = user
            if user_id in bot.chats:
                bot.chats[user_id].user = user

    def add_group(self, token: str, chat_id: int, title: str = "Group", kind: str = "group") -> None:
        """A group, supergroup or channel (negative `chat_id`, as Telegram's) that has the bot in it."""
        if kind not in GROUP_KINDS or chat_id >= 0:
            raise ValueError(f"a group is one of {sorted(GROUP_KINDS)} with a negative id")
        with self._lock:
            bot = self._bot(token)
            if chat_id not in bot.chats:
                group = {"id": chat_id, "title": title, "type": kind}
                bot.chats[chat_id] = _Chat({}, group=group)

    def user_message(
        self,
        token: str,
        user_id: int,
        *,
        text: str | None = None,
        location: tuple[float, float] | None = None,
        venue: dict[str, str] | None = None,
        sticker: str | None = None,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends a message (one keyword's content): a `message` update. Returns its chat JSON.
        `chat_id` names a group added with `add_group`; by default the user writes in their private chat."""
        if text is None and location is None and sticker is None:
            raise ValueError("a message needs text, a location or a sticker")
        with self._lock:
            bot = self._bot(token)
            chat, sender = self._chat_of(bot, user_id, chat_id)
            message = self._new_message(
                chat,
                from_bot=False,
                text=text,
                location=location,
                venue=venue,
                sticker=sticker,
                sender=sender,
            )
            bot.push_update("message", bot.message_json(message))
            return _chat_json(message)

    def channel_post(self, token: str, chat_id: int, text: str) -> dict[str, Any]:
        """A post in a channel added with `add_group`: a `channel_post` update, from no user."""
        with self._lock:
            bot = self._bot(token)
            chat = bot.chats.get(chat_id)
            if chat is None or chat.group is None or chat.group["type"] != "channel":
                raise LookupError(f"no channel {chat_id}: add it with add_group(..., kind='channel')")
            message = self._new_message(chat, from_bot=False, text=text)
            bot.push_update("channel_post", bot.message_json(message))
            return _chat_json(message)

    def user_edit(self, token: str, user_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The user edits one of their text messages: an `edited_message` update."""
        with self._lock:
            bot = self._bot(token)
            message = self._user_chat(bot, user_id).messages.get(message_id)
            if message is None or message.from_bot or message.deleted or message.text is None:
                raise LookupError(f"user {user_id} has no text message {message_id} to edit")
            message.text = text
            message.edit_date = int(time.time())
            message.edits += 1
            bot.push_update("edited_message", bot.message_json(message))
            return _chat_json(message)

    def user_press(
        self, token: str, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> str:
        """The user presses a callback button (or forges a press): a `callback_query` update; its id.

        A forged press may come from a user who never wrote to the bot: like a first message, it opens
        the chat. `chat_id` names a group added with `add_group` (the message is in that group).
        """
        with self._lock:
            bot = self._bot(token)
            chat, sender = self._chat_of(bot, user_id, chat_id)
            query_id = str(bot.id * 1_000_000 + bot.next_query)
            bot.next_query += 1
            bot.queries[query_id] = _CallbackQuery(query_id, user_id)
            query: dict[str, Any] = {
                "id": query_id,
                "from": {**(sender or chat.user), "is_bot": False, "language_code": "en"},
                "chat_instance": str(zlib.crc32(f"{bot.id}:{chat.id}".encode())),
                "data": data,
            }
            message = chat.messages.get(message_id)
            # A press on a message the bot cannot see any more carries an InaccessibleMessage (date 0).
            query["message"] = (
                bot.message_json(message)
                if message is not None and not message.deleted
                else {"chat": chat.json(), "message_id": message_id, "date": 0}
            )
            bot.push_update("callback_query", query)
            return query_id

    def chat(self, token: str, chat_id: int) -> list[dict[str, Any]]:
        """A chat (a user's private chat: the user's id), both sides in order, current state, as the JSON
        the demo page reads."""
        with self._lock:
            chat = self._bot(token).chats.get(chat_id)
            return [_chat_json(message) for message in chat.messages.values()] if chat else []

    def callback_answers(self, token: str, user_id: int) -> list[dict[str, Any]]:
        """answerCallbackQuery answers to the user's presses, in the order the bot gave them."""
        with self._lock:
            return [answer for answer in self._bot(token).answers if answer["user_id"] == user_id]

    def file_bytes(self, file_id: str) -> bytes:
        with self._lock:
            return self._files[file_id].data

    # ----- HTTP: the Bot API ----------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        started = time.time()
        token, method = request.path_params["token"], request.path_params["method"]
        name, handler = self._methods.get(method.lower(), (method, None))
        bot = self._bots.get(token)
        params = _Params({}, {})
        fault: _Fault | None = None
        try:
            if bot is None:
                raise ApiError(401, "Unauthorized")
            if handler is None:
                raise ApiError(404, "Not Found")
            params = await _read_params(request)
            with self._lock:
                faults = self._faults.get(name.lower())
                fault = faults.popleft() if faults else None
            if fault is not None and fault.kind == "error":
                raise ApiError(fault.status, HTTPStatus(fault.status).phrase)
            if fault is not None and fault.kind == "flood":
                raise ApiError.flood(fault.retry_after)
            if name == "getUpdates":
                result = await self._get_updates(bot, params)
            else:
                with self._lock:
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

    def _log(self, call: ApiCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _bot(self, token: str) -> _Bot:
        bot = self._bots.get(token)
        if bot is None:
            raise LookupError("no bot with this token")
        return bot

    def _open_chat(self, bot: _Bot, user_id: int) -> _Chat:
        if user_id not in bot.chats:
            bot.chats[user_id] = _Chat(bot.users.get(user_id) or {"id": user_id, "first_name": "Alice"})
        return bot.chats[user_id]

    def _chat_of(self, bot: _Bot, user_id: int, chat_id: int | None) -> tuple[_Chat, dict[str, Any] | None]:
        """Where a user acts and the sender to name there: their private chat (None: the chat's user), or a
        group added with `add_group` (the user, as registered)."""
        if chat_id is None or chat_id == user_id:
            return self._open_chat(bot, user_id), None
        chat = bot.chats.get(chat_id)
        if chat is None or chat.group is None or chat.group["type"] == "channel":
            raise LookupError(f"no group {chat_id}: add it with add_group")
        return chat, bot.users.get(user_id) or {"id": user_id, "first_name": "Alice"}

    def _user_chat(self, bot: _Bot, user_id: int) -> _Chat:
        chat = bot.chats.get(user_id)
        if chat is None:
            raise LookupError(f"user {user_id} has not talked to the bot yet")
        return chat

    def _new_message(self, chat: _Chat, *, from_bot: bool, **content: Any) -> _Message:
        message = _Message(chat.next_message_id, chat.id, from_bot, int(time.time()), **content)
        chat.messages[message.message_id] = message
        chat.next_message_id += 1
        return message

    def _bot_message(self, bot: _Bot, params: _Params, *, missing: str) -> _Message:
        chat = bot.chat(params.chat_id())
        message = chat.messages.get(
            params.integer("message_id", required="message identifier is not specified") or 0
        )
        if message is None or message.deleted:
            raise ApiError.bad_request(missing)
        return message

    # ----- methods: the bot and its updates ------------------------------------------------------------

    def _get_me(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        return bot.me()

    def _true(self, bot: _Bot, params: _Params) -> bool:
        return True

    async def _get_updates(self, bot: _Bot, params: _Params) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        limit = min(max(params.integer("limit") or 100, 1), 100)
        deadline = loop.time() + max(params.integer("timeout") or 0, 0)
        allowed = params.decoded("allowed_updates")
        with self._lock:
            if bot.webhook is not None:
                raise ApiError(409, WEBHOOK_CONFLICT)
            if isinstance(allowed, list):
                bot.allowed_updates = [str(kind) for kind in allowed]
            bot.confirm(params.integer("offset") or 0)
            # A newer poll ends an older one, as on Telegram when two instances run.
            bot.poll_generation += 1
            generation = bot.poll_generation
            bot.updates_changed.notify()
        while True:
            with self._lock:
                if bot.poll_generation != generation:
                    raise ApiError(409, POLL_CONFLICT)
                if bot.webhook is not None:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                batch = bot.deliverable(limit)
                remaining = deadline - loop.time()
                if batch or remaining <= 0:
                    return batch
                waiter = bot.updates_changed.waiter()
            try:
                await asyncio.wait_for(waiter[1].wait(), remaining)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    bot.updates_changed.discard(waiter)

    def _set_webhook(self, bot: _Bot, params: _Params) -> bool:
        url = params.text("url")
        if url is None:
            return self._delete_webhook(bot, params)
        if not re.match(r"https?://[^/\s]+", url):
            raise ApiError.bad_request("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        allowed = params.decoded("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed]
        if params.flag("drop_pending_updates"):
            bot.updates.clear()
        self._stop_webhook(bot)
        hook = _Webhook(url, params.text("secret_token"), params.integer("max_connections") or 40)
        bot.webhook = hook
        hook.task = asyncio.get_running_loop().create_task(self._deliver(bot, hook))
        bot.updates_changed.notify()  # long polls still open end with 409
        return True

    def _delete_webhook(self, bot: _Bot, params: _Params) -> bool:
        self._stop_webhook(bot)
        if params.flag("drop_pending_updates"):
            bot.updates.clear()
        return True

    def _stop_webhook(self, bot: _Bot) -> None:
        if bot.webhook is not None and bot.webhook.task is not None:
            bot.webhook.task.cancel()
        bot.webhook = None

    def _get_webhook_info(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        hook = bot.webhook
        info: dict[str, Any] = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if bot.allowed_updates:
                info["allowed_updates"] = bot.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    async def _deliver(self, bot: _Bot, hook: _Webhook) -> None:
        """POST pending updates to the webhook one at a time, in order, retrying each until it is accepted."""
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
        failures = 0
        async with httpx.AsyncClient(timeout=10) as client:
            while bot.webhook is hook:
                with self._lock:
                    pending = bot.deliverable(1)
                    waiter = None if pending else bot.updates_changed.waiter()
                if waiter is not None:
                    try:
                        await waiter[1].wait()
                    finally:
                        with self._lock:
                            bot.updates_changed.discard(waiter)
                    continue
                update = pending[0]
                error = await _post_update(client, hook.url, update, headers)
                with self._lock:
                    if error is None:
                        bot.updates = [u for u in bot.updates if u["update_id"] != update["update_id"]]
                        failures = 0
                        continue
                    hook.last_error_date, hook.last_error_message = int(time.time()), error
                await asyncio.sleep(WEBHOOK_RETRY_DELAYS[min(failures, len(WEBHOOK_RETRY_DELAYS) - 1)])
                failures += 1

    # ----- methods: messages ---------------------------------------------------------------------------

    def _send_message(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        text = params.text("text", required="message text is empty") or ""
        parse_mode = params.text("parse_mode")
        _check_text(text, parse_mode, MAX_TEXT, "message is too long")
        message = self._new_message(
            chat, from_bot=True, text=text, parse_mode=parse_mode, reply_markup=_inline_keyboard(params)
        )
        return bot.message_json(message)

    def _edit_message_text(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        message = self._editable(bot, params)
        if message.text is None:
            raise ApiError.bad_request("there is no text in the message to edit")
        text = params.text("text", required="message text is empty") or ""
        parse_mode = params.text("parse_mode")
        _check_text(text, parse_mode, MAX_TEXT, "message is too long")
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        return self._apply_edit(
            bot, message, text=text, parse_mode=parse_mode, markup=_inline_keyboard(params)
        )

    def _edit_message_caption(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        message = self._editable(bot, params)
        if message.photo is None:
            raise ApiError.bad_request("there is no caption in the message to edit")
        caption = params.text("caption")
        parse_mode = params.text("parse_mode")
        _check_text(caption or "", parse_mode, MAX_CAPTION, "message caption is too long")
        return self._apply_edit(
            bot, message, caption=caption, parse_mode=parse_mode, markup=_inline_keyboard(params)
        )

    def _edit_message_reply_markup(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        message = self._editable(bot, params)
        return self._apply_edit(bot, message, markup=_inline_keyboard(params))

    def _editable(self, bot: _Bot, params: _Params) -> _Message:
        if params.text("inline_message_id") is not None:
            raise ApiError.bad_request("message to edit not found")  # no inline mode here
        message = self._bot_message(bot, params, missing="message to edit not found")
        if not message.from_bot:
            raise ApiError.bad_request("message can't be edited")
        return message

    def _apply_edit(
        self, bot: _Bot, message: _Message, *, markup: dict[str, Any] | None, **changes: str | None
    ) -> dict[str, Any]:
        before = message.content()
        message.reply_markup = markup
        for name, value in changes.items():
            setattr(message, name, value)
        if message.content() == before:
            raise ApiError.bad_request(NOT_MODIFIED)
        message.edit_date = int(time.time())
        message.edits += 1
        return bot.message_json(message)

    def _delete_message(self, bot: _Bot, params: _Params) -> bool:
        self._bot_message(bot, params, missing="message to delete not found").deleted = True
        return True

    def _answer_callback_query(self, bot: _Bot, params: _Params) -> bool:
        query = bot.queries.get(params.text("callback_query_id", required="query_id is empty") or "")
        if query is None or query.answered:
            raise ApiError.bad_request(QUERY_TOO_OLD)
        text = params.text("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER:
            raise ApiError.bad_request("MESSAGE_TOO_LONG")
        query.answered = True
        bot.answers.append(
            {
                "query_id": query.query_id,
                "user_id": query.user_id,
                "text": text,
                "show_alert": params.flag("show_alert"),
                "url": params.text("url"),
            }
        )
        return True

    def _send_photo(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        caption = params.text("caption")
        parse_mode = params.text("parse_mode")
        if caption is not None:
            _check_text(caption, parse_mode, MAX_CAPTION, "message caption is too long")
        photo = self._photo(params)
        message = self._new_message(
            chat,
            from_bot=True,
            photo=photo,
            caption=caption,
            parse_mode=parse_mode,
            reply_markup=_inline_keyboard(params),
        )
        return bot.message_json(message)

    def _photo(self, params: _Params) -> _StoredFile:
        """An uploaded photo (kept byte for byte) or one sent before, by file_id."""
        if "photo" in params.files:
            return self._store_photo(params.files["photo"])
        reference = params.text("photo", required="there is no photo in the request")
        if reference is not None and reference.startswith(("http://", "https://")):
            raise ApiError.bad_request("failed to get HTTP URL content")  # the sandbox is offline
        if reference not in self._files:
            raise ApiError.bad_request("wrong file identifier/HTTP URL specified")
        return self._files[reference]

    def _store_photo(self, data: bytes) -> _StoredFile:
        if len(data) > MAX_PHOTO_BYTES:
            raise ApiError.bad_request("file is too big")
        try:
            with Image.open(io.BytesIO(data)) as image:
                (width, height), kind = image.size, (image.format or "jpeg").lower()
        except (UnidentifiedImageError, OSError):
            raise ApiError.bad_request("IMAGE_PROCESS_FAILED") from None
        if width + height > MAX_PHOTO_SIDES or max(width, height) > MAX_PHOTO_RATIO * min(width, height):
            raise ApiError.bad_request("PHOTO_INVALID_DIMENSIONS")
        digest = hashlib.sha256(data).hexdigest()
        number = len(self._files)
        stored = _StoredFile(
            file_id=f"AgACAgIAAxkDAA{digest[:24]}{number:06d}",
            file_unique_id=f"AQAD{digest[:12]}",  # same bytes, same unique id
            file_path=f"photos/file_{number}.{'jpg' if kind == 'jpeg' else kind}",
            data=data,
            media_type=Image.MIME.get(kind.upper(), "application/octet-stream"),
            width=width,
            height=height,
        )
        self._files[stored.file_id] = stored
        return stored

    def _get_file(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        stored = self._files.get(params.text("file_id", required="file_id is empty") or "")
        if stored is None:
            raise ApiError.bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _send_location(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        location = _coordinates(params)
        message = self._new_message(
            chat, from_bot=True, location=location, reply_markup=_inline_keyboard(params)
        )
        return bot.message_json(message)

    def _send_venue(self, bot: _Bot, params: _Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        location = _coordinates(params)
        venue = {
            "title": params.text("title", required="title is empty") or "",
            "address": params.text("address", required="address is empty") or "",
        }
        message = self._new_message(
            chat, from_bot=True, location=location, venue=venue, reply_markup=_inline_keyboard(params)
        )
        return bot.message_json(message)

    def _send_chat_action(self, bot: _Bot, params: _Params) -> bool:
        bot.chat(params.chat_id())
        if params.text("action") not in CHAT_ACTIONS:
            raise ApiError.bad_request("wrong parameter action in request")
        return True

    def _set_my_commands(self, bot: _Bot, params: _Params) -> bool:
        commands = params.decoded("commands")
        if not isinstance(commands, list):
            raise ApiError.bad_request("commands is empty")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_NAME.fullmatch(str(command.get("command"))):
                raise ApiError.bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise ApiError.bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (_scope_key(params.decoded("scope")), params.text("language_code") or "")
        bot.commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def _get_my_commands(self, bot: _Bot, params: _Params) -> list[dict[str, str]]:
        return bot.commands.get((_scope_key(params.decoded("scope")), params.text("language_code") or ""), [])

    def _delete_my_commands(self, bot: _Bot, params: _Params) -> bool:
        bot.commands.pop((_scope_key(params.decoded("scope")), params.text("language_code") or ""), None)
        return True

    # ----- HTTP: files and the user side ---------------------------------------------------------------

    async def _download(self, request: Request) -> Response:
        with self._lock:
            known = request.path_params["token"] in self._bots
            path = request.path_params["file_path"]
            stored = next((f for f in self._files.values() if f.file_path == path), None)
        if not known:
            return JSONResponse(ApiError(401, "Unauthorized").body(), status_code=401)
        if stored is None:
            return JSONResponse(ApiError(404, "Not Found").body(), status_code=404)
        return Response(stored.data, media_type=stored.media_type)

    async def _sandbox_file(self, request: Request) -> Response:
        with self._lock:
            stored = self._files.get(request.path_params["file_id"])
        if stored is None:
            return JSONResponse({"error": "no such file"}, status_code=404)
        return Response(stored.data, media_type=stored.media_type)

    async def _sandbox_send(self, request: Request) -> Response:
        return await self._sandbox_action(
            request, lambda token, user_id, body: self.user_message(token, user_id, text=str(body["text"]))
        )

    async def _sandbox_press(self, request: Request) -> Response:
        return await self._sandbox_action(
            request,
            lambda token, user_id, body: {
                "callback_query_id": self.user_press(
                    token, user_id, int(body["message_id"]), str(body["data"])
                )
            },
        )

    async def _sandbox_location(self, request: Request) -> Response:
        return await self._sandbox_action(
            request,
            lambda token, user_id, body: self.user_message(
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
                    for m in self.chat(token, user_id)
                ],
                "callback_answers": self.callback_answers(token, user_id),
            },
        )

    async def _sandbox_bot(self, request: Request) -> Response:
        """The bot as its users see it: name and command menu (the chat page's header and Menu)."""
        with self._lock:
            bot = self._bots.get(request.path_params["token"])
            if bot is None:
                return JSONResponse({"error": "no bot with this token"}, status_code=404)
            return JSONResponse(
                {
                    "first_name": bot.user["first_name"],
                    "username": bot.user["username"],
                    "commands": bot.commands.get(("default", ""), []),
                }
            )

    async def _chat_page(self, request: Request) -> Response:
        with self._lock:
            known = request.path_params["token"] in self._bots
        if not known:
            return JSONResponse({"error": "no bot with this token"}, status_code=404)
        return FileResponse(
            WEB_DIR / "chat.html",
            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
        )

    async def _home(self, request: Request) -> Response:
        """The first bot's chat page: the one URL the demo prints."""
        try:
            token = self.token
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
            with self._lock:
                if body.get("first_name") or user_id not in self._bot(token).users:
                    self.register_user(
                        token, user_id, str(body.get("first_name") or "Alice"), body.get("username")
                    )
                return JSONResponse(action(token, user_id, body))
        except (KeyError, TypeError, ValueError) as error:  # KeyError first: it is also a LookupError
            return JSONResponse({"error": f"bad request: missing or invalid {error}"}, status_code=400)
        except LookupError as error:
            return JSONResponse({"error": str(error)}, status_code=404)


async def _read_params(request: Request) -> _Params:
    """Query string plus body, whichever encoding PTB or a curl user chose."""
    values: dict[str, Any] = dict(request.query_params)
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise ApiError.bad_request("can't parse JSON object") from None
        if isinstance(body, dict):
            values.update(body)
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        async with request.form() as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[name] = await value.read()
                else:
                    values[name] = value
    return _Params(values, files)


async def _post_update(
    client: httpx.AsyncClient, url: str, update: dict[str, Any], headers: dict[str, str]
) -> str | None:
    """POST one update; None when the webhook took it, else getWebhookInfo's last_error_message."""
    try:
        response = await client.post(url, json=update, headers=headers)
    except httpx.ConnectError:
        return "Connection refused"
    except httpx.TimeoutException:
        return "Read timeout expired"
    except httpx.HTTPError:
        return "Connection error"
    if response.is_success:
        return None
    return f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"


def _coordinates(params: _Params) -> tuple[float, float]:
    latitude, longitude = params.number("latitude"), params.number("longitude")
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise ApiError.bad_request("wrong latitude or longitude")
    return latitude, longitude


def _scope_key(scope: Any) -> str:
    """Commands are stored per scope; the default scope and no scope are the same."""
    if not isinstance(scope, dict) or scope.get("type", "default") == "default":
        return "default"
    return json.dumps(scope, sort_keys=True)


def _chat_json(message: _Message) -> dict[str, Any]:
    """A message as the sandbox's user side sees it (the driver's ChatMessage, the demo page's bubbles)."""
    return {
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text,
        "caption": message.caption,
        "parse_mode": message.parse_mode,
        "buttons": [
            [{"text": b["text"], "callback_data": b.get("callback_data"), "url": b.get("url")} for b in row]
            for row in message.buttons()
        ],
        "photo": None
        if message.photo is None
        else {
            "file_id": message.photo.file_id,
            "url": f"/_sandbox/files/{message.photo.file_id}",
            "width": message.photo.width,
            "height": message.photo.height,
        },
        "location": None if message.location is None else list(message.location),
        "venue": message.venue,
        "sticker": message.sticker,
        "deleted": message.deleted,
        "edits": message.edits,
    }
