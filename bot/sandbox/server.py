"""A loopback emulation of the Telegram Bot API: the methods our bot uses, with Telegram's answers.

`BotApiServer` is what tests, benchmarks and the demo hold: `app` to serve (uvicorn), the settings of
each bot (`add_bot`, faults to `inject`), the log of `calls`, and the user side as a Python API
(`register_user`, `add_group`, `user_message`, `user_press`, `chat`, ...) that `bot.sandbox.driver` wraps
for tests. The server runs in uvicorn's thread while callers use their own thread and event loop, so
every piece of state is guarded by one lock. Its parts:

- params.py:   parameters read and checked as Telegram does, its error texts, HTML parse-mode checks
- state.py:    bots, users, chats, messages, pending updates, webhooks, files, commands
- methods.py:  the Bot API methods (sendMessage, editMessageText, getUpdates, setWebhook...)
- webhooks.py: delivery of updates to a webhook
- routes.py:   the HTTP routes: the Bot API, files, the /_sandbox/ user side and the chat page
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any

from bot.sandbox.methods import BotApiMethods
from bot.sandbox.params import ApiError, command_entities, html_visible_text
from bot.sandbox.routes import sandbox_app
from bot.sandbox.state import (
    DEFAULT_LANGUAGE_CODE,
    FAULT_KINDS,
    GROUP_KINDS,
    ApiCall,
    Bot,
    CallbackQuery,
    Chat,
    Fault,
    SandboxState,
    chat_json,
    scope_key,
)

# With the text rules that tests check directly (command entities, HTML parsing).
__all__ = ["ApiCall", "ApiError", "BotApiServer", "command_entities", "html_visible_text"]


class BotApiServer:
    """The Bot API emulator. Thread-safe: serve `app` in one thread, drive users and read from another."""

    def __init__(
        self, *, flood_limit_per_second: float | None = None, per_chat_limit_per_second: float | None = None
    ) -> None:
        self.flood_limit_per_second = flood_limit_per_second
        self.per_chat_limit_per_second = per_chat_limit_per_second
        self._state = SandboxState()
        self._methods = BotApiMethods(self._state)
        self.app = sandbox_app(self, self._state, self._methods, self._log)

    @property
    def calls(self) -> list[ApiCall]:
        """Every Bot API call so far, in order."""
        return self._state.calls

    # ----- configuration and inspection -------------------------------------------------------------

    def add_bot(self, token: str, *, username: str = "bmw_i3_bot", first_name: str = "BMW i3") -> None:
        with self._state.lock:
            self._state.bots[token] = Bot(
                token,
                username,
                first_name,
                flood_limit=self.flood_limit_per_second,
                per_chat_limit=self.per_chat_limit_per_second,
            )

    @property
    def token(self) -> str:
        """The first bot's token: most setups serve exactly one bot."""
        with self._state.lock:
            if not self._state.bots:
                raise LookupError("no bot added: call add_bot(token) first")
            return next(iter(self._state.bots))

    def inject(
        self, method: str, kind: str, *, times: int = 1, status: int = 500, retry_after: int = 1
    ) -> None:
        """Make the next `times` calls of `method` fail: "error" answers `status`, "flood" a 429 with
        `retry_after`, "drop" handles the call and then cuts the connection before the answer arrives."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}, not {kind!r}")
        if method.lower() not in self._methods.handlers:
            raise ValueError(f"unknown Bot API method {method!r}")
        HTTPStatus(status)  # a ValueError now rather than a failed answer later
        with self._state.lock:
            queue = self._state.faults.setdefault(method.lower(), deque())
            queue.extend(Fault(kind, status, retry_after) for _ in range(times))

    @contextmanager
    def together(self, token: str) -> Iterator[None]:
        """The updates users make inside the block reach the bot together, when it ends: one getUpdates
        batch, or webhook posts back to back (as when Telegram delivers a burst or a user types ahead)."""
        with self._state.lock:
            self._state.bot(token).held += 1
        try:
            yield
        finally:
            with self._state.lock:
                bot = self._state.bot(token)
                bot.held -= 1
                bot.updates_changed.notify()

    def webhook_secret(self, token: str) -> str | None:
        """The secret token of the bot's webhook, as setWebhook registered it (the call log masks it)."""
        with self._state.lock:
            hook = self._state.bot(token).webhook
            return hook.secret_token if hook else None

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._state.lock:
            return [call for call in self._state.calls if call.method.lower() == method.lower()]

    def commands(
        self, token: str, *, scope: dict[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, str]]:
        with self._state.lock:
            return list(self._state.bot(token).commands.get((scope_key(scope), language_code), []))

    # ----- the user side (the driver and the /_sandbox/ routes) -----------------------------------------

    def register_user(
        self,
        token: str,
        user_id: int,
        first_name: str = "Alice",
        username: str | None = None,
        language_code: str = DEFAULT_LANGUAGE_CODE,
    ) -> None:
        """Name a user (and the language their Telegram app reports); their private chat with the bot opens
        with their first message."""
        user: dict[str, Any] = {"id": user_id, "first_name": first_name, "language_code": language_code}
        if username:
            user["username"] = username
        with self._state.lock:
            bot = self._state.bot(token)
            bot.users[user_id] = user
            if user_id in bot.chats:
                bot.chats[user_id].user = user

    def add_group(self, token: str, chat_id: int, title: str = "Group", kind: str = "group") -> None:
        """A group, supergroup or channel (negative `chat_id`, as Telegram's) that has the bot in it."""
        if kind not in GROUP_KINDS or chat_id >= 0:
            raise ValueError(f"a group is one of {sorted(GROUP_KINDS)} with a negative id")
        with self._state.lock:
            bot = self._state.bot(token)
            if chat_id not in bot.chats:
                group = {"id": chat_id, "title": title, "type": kind}
                bot.chats[chat_id] = Chat({}, group=group)

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
        with self._state.lock:
            bot = self._state.bot(token)
            chat, sender = bot.chat_of(user_id, chat_id)
            message = chat.new_message(
                from_bot=False,
                text=text,
                location=location,
                venue=venue,
                sticker=sticker,
                sender=sender,
            )
            bot.push_update("message", bot.message_json(message))
            return chat_json(message)

    def channel_post(self, token: str, chat_id: int, text: str) -> dict[str, Any]:
        """A post in a channel added with `add_group`: a `channel_post` update, from no user."""
        with self._state.lock:
            bot = self._state.bot(token)
            chat = bot.chats.get(chat_id)
            if chat is None or chat.group is None or chat.group["type"] != "channel":
                raise LookupError(f"no channel {chat_id}: add it with add_group(..., kind='channel')")
            message = chat.new_message(from_bot=False, text=text)
            bot.push_update("channel_post", bot.message_json(message))
            return chat_json(message)

    def user_edit(self, token: str, user_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The user edits one of their text messages: an `edited_message` update."""
        with self._state.lock:
            bot = self._state.bot(token)
            message = bot.user_chat(user_id).messages.get(message_id)
            if message is None or message.from_bot or message.deleted or message.text is None:
                raise LookupError(f"user {user_id} has no text message {message_id} to edit")
            message.text = text
            message.edit_date = int(time.time())
            message.edits += 1
            bot.push_update("edited_message", bot.message_json(message))
            return chat_json(message)

    def user_press(
        self, token: str, user_id: int, message_id: int, data: str, *, chat_id: int | None = None
    ) -> str:
        """The user presses a callback button (or forges a press): a `callback_query` update; its id.

        A forged press may come from a user who never wrote to the bot: like a first message, it opens
        the chat. `chat_id` names a group added with `add_group` (the message is in that group).
        """
        with self._state.lock:
            bot = self._state.bot(token)
            chat, sender = bot.chat_of(user_id, chat_id)
            query_id = str(bot.id * 1_000_000 + bot.next_query)
            bot.next_query += 1
            bot.queries[query_id] = CallbackQuery(query_id, user_id)
            query: dict[str, Any] = {
                "id": query_id,
                "from": {"language_code": DEFAULT_LANGUAGE_CODE, **(sender or chat.user), "is_bot": False},
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
        with self._state.lock:
            chat = self._state.bot(token).chats.get(chat_id)
            return [chat_json(message) for message in chat.messages.values()] if chat else []

    def callback_answers(self, token: str, user_id: int) -> list[dict[str, Any]]:
        """answerCallbackQuery answers to the user's presses, in the order the bot gave them."""
        with self._state.lock:
            return [answer for answer in self._state.bot(token).answers if answer["user_id"] == user_id]

    def file_bytes(self, file_id: str) -> bytes:
        with self._state.lock:
            return self._state.files[file_id].data

    def _log(self, call: ApiCall) -> None:
        """Record one Bot API call (the routes call this; benchmarks/bot_overhead.py counts through it)."""
        with self._state.lock:
            self._state.calls.append(call)
