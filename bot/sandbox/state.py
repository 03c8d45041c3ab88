"""The sandbox's state: bots, their users, chats and messages, pending updates, webhooks, files, commands.

`SandboxState` holds it all under one lock. Each bot token is a `Bot` with its own world (Telegram
keeps bots apart); groups and channels are `Chat`s with a group JSON. The server runs in uvicorn's
thread while callers use their own, so `Signal` wakes coroutines waiting in the server's loop (long
polls, webhook delivery) thread-safely.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.params import ApiError, command_entities

GROUP_KINDS = frozenset({"group", "supergroup", "channel"})
# Update types delivered when allowed_updates is empty (Telegram's default excludes these three).
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
FAULT_KINDS = frozenset({"error", "flood", "drop"})
DEFAULT_LANGUAGE_CODE = "en"  # what a user's Telegram app reports unless registered otherwise


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
class Fault:
    kind: str
    status: int
    retry_after: int


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    media_type: str
    width: int
    height: int
    file_name: str | None = None  # a document's

    def photo_size(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "width": self.width,
            "height": self.height,
        }


@dataclass
class Message:
    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    text: str | None = None
    caption: str | None = None
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    photo: StoredFile | None = None
    document: StoredFile | None = None
    location: tuple[float, float] | None = None
    venue: dict[str, str] | None = None
    sticker: str | None = None
    sender: dict[str, Any] | None = (
        None  # who wrote a user's message in a group (a private chat has one user)
    )
    edit_date: int | None = None
    edits: int = 0
    deleted: bool = False
    disable_notification: bool = False  # sent to arrive without a sound

    def content(self) -> tuple[Any, ...]:
        """What 'message is not modified' compares."""
        return (self.text, self.caption, self.parse_mode, self.reply_markup)

    def buttons(self) -> list[list[dict[str, Any]]]:
        return (self.reply_markup or {}).get("inline_keyboard", [])


@dataclass
class CallbackQuery:
    query_id: str
    user_id: int
    answered: bool = False


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = None


class Signal:
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


class RateWindow:
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
class Chat:
    """A private chat with `user`, or, when `group` is set, a group, supergroup or channel (its chat JSON)."""

    user: dict[str, Any]
    messages: dict[int, Message] = field(default_factory=dict)
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

    def new_message(self, *, from_bot: bool, **content: Any) -> Message:
        message = Message(self.next_message_id, self.id, from_bot, int(time.time()), **content)
        self.messages[message.message_id] = message
        self.next_message_id += 1
        return message


class Bot:
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
        self.chats: dict[int, Chat] = {}
        self.updates: list[dict[str, Any]] = []
        self.next_update_id = 100_000_001
        self.held = 0  # while above 0, new updates wait: they then arrive together (one getUpdates batch)
        self.allowed_updates: list[str] = []
        self.updates_changed = Signal()
        self.poll_generation = 0
        self.webhook: Webhook | None = None
        self.queries: dict[str, CallbackQuery] = {}
        self.next_query = 1
        self.answers: list[dict[str, Any]] = []
        self.commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self.flood = RateWindow(flood_limit) if flood_limit else None
        self.per_chat_limit = per_chat_limit
        self.chat_windows: dict[int, RateWindow] = {}

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

    def chat(self, chat_id: int) -> Chat:
        if chat_id not in self.chats:
            raise ApiError.bad_request("chat not found")
        return self.chats[chat_id]

    def message_json(self, message: Message) -> dict[str, Any]:
        chat = self.chats[message.chat_id]
        body: dict[str, Any] = {"message_id": message.message_id}
        if message.from_bot:
            body["from"] = self.user
        elif chat.group is None or message.sender is not None:
            body["from"] = {
                "language_code": DEFAULT_LANGUAGE_CODE,
                **(message.sender or chat.user),
                "is_bot": False,
            }
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
        if message.document is not None:
            body["document"] = {
                "file_id": message.document.file_id,
                "file_unique_id": message.document.file_unique_id,
                "file_size": len(message.document.data),
                "mime_type": message.document.media_type,
                **({"file_name": message.document.file_name} if message.document.file_name else {}),
            }
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

    def flood_windows(self, chat_id: int, now: float) -> list[RateWindow]:
        """The rate windows a message to `chat_id` counts in; a 429 if any of them is full."""
        windows = [self.flood] if self.flood else []
        if self.per_chat_limit:
            windows.append(self.chat_windows.setdefault(chat_id, RateWindow(self.per_chat_limit)))
        waits = [wait for window in windows if (wait := window.retry_after(now)) is not None]
        if waits:
            raise ApiError.flood(max(waits))
        return windows

    def open_chat(self, user_id: int) -> Chat:
        if user_id not in self.chats:
            self.chats[user_id] = Chat(self.users.get(user_id) or {"id": user_id, "first_name": "Alice"})
        return self.chats[user_id]

    def chat_of(self, user_id: int, chat_id: int | None) -> tuple[Chat, dict[str, Any] | None]:
        """Where a user acts and the sender to name there: their private chat (None: the chat's user), or a
        group added with `add_group` (the user, as registered)."""
        if chat_id is None or chat_id == user_id:
            return self.open_chat(user_id), None
        chat = self.chats.get(chat_id)
        if chat is None or chat.group is None or chat.group["type"] == "channel":
            raise LookupError(f"no group {chat_id}: add it with add_group")
        return chat, self.users.get(user_id) or {"id": user_id, "first_name": "Alice"}

    def user_chat(self, user_id: int) -> Chat:
        chat = self.chats.get(user_id)
        if chat is None:
            raise LookupError(f"user {user_id} has not talked to the bot yet")
        return chat


class SandboxState:
    """What the server keeps, under one lock: the bots by token, the files sent (by file_id, for every bot),
    the faults waiting per method and the log of calls."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.bots: dict[str, Bot] = {}
        self.files: dict[str, StoredFile] = {}
        self.faults: dict[str, deque[Fault]] = {}
        self.calls: list[ApiCall] = []

    def bot(self, token: str) -> Bot:
        bot = self.bots.get(token)
        if bot is None:
            raise LookupError("no bot with this token")
        return bot


def scope_key(scope: Any) -> str:
    """Commands are stored per scope; the default scope and no scope are the same."""
    if not isinstance(scope, dict) or scope.get("type", "default") == "default":
        return "default"
    return json.dumps(scope, sort_keys=True)


def chat_json(message: Message) -> dict[str, Any]:
    """A message as the sandbox's user side sees it (the driver's ChatMessage, the demo page's bubbles)."""
    return {
        "message_id": message.message_id,
        "from_bot": message.from_bot,
        "date": message.date,
        "text": message.text,
        "caption": message.caption,
        "parse_mode": message.parse_mode,
        "buttons": [
            [
                {
                    "text": b["text"],
                    "callback_data": b.get("callback_data"),
                    "url": b.get("url"),
                    "copy_text": (b.get("copy_text") or {}).get("text"),
                    "style": b.get("style"),
                }
                for b in row
            ]
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
        "document": None
        if message.document is None
        else {
            "file_id": message.document.file_id,
            "url": f"/_sandbox/files/{message.document.file_id}",
            "file_name": message.document.file_name,
        },
        "location": None if message.location is None else list(message.location),
        "venue": message.venue,
        "sticker": message.sticker,
        "deleted": message.deleted,
        "edits": message.edits,
        "disable_notification": message.disable_notification,
    }
