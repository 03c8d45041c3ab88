"""The user side of the sandbox in Python: act as Telegram users and read their chats with the bot.

    sandbox = Sandbox(server, token)
    alice = sandbox.user(42, "Alice")
    alice.send("/start")
    menu = await alice.wait_for_bot_message("Choose")
    alice.press(menu, "Status")

Every call goes straight to the `BotApiServer` state (thread-safe), so tests can drive users from their
own event loop while the server answers the bot from uvicorn's thread. Reads return snapshots: call
`messages` again to see later changes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from bot.sandbox.server import BotApiServer
from bot.sandbox.state import DEFAULT_LANGUAGE_CODE

POLL_INTERVAL = 0.02  # seconds between checks in wait_for; the server pushes nothing to the driver


@dataclass(frozen=True)
class Button:
    text: str
    callback_data: str | None = None
    url: str | None = None
    copy_text: str | None = None  # a CopyTextButton: pressing it copies this text on the user's side
    style: str | None = None  # "danger", "success", "primary" (Bot API 9.4); None: the client's default


@dataclass(frozen=True)
class CallbackAnswer:
    query_id: str
    text: str | None
    show_alert: bool


@dataclass
class ChatMessage:
    """One message of a chat, either side, as it stands now (edits applied, deletions flagged)."""

    message_id: int
    from_bot: bool
    text: str | None
    caption: str | None
    buttons: list[list[Button]]
    photo: bytes | None
    location: tuple[float, float] | None
    venue: dict[str, Any] | None
    deleted: bool
    edits: int
    date: dt.datetime
    parse_mode: str | None = None
    sticker: str | None = None
    document: bytes | None = None
    document_name: str | None = None
    disable_notification: bool = False  # the bot sent it to arrive without a sound

    def button(self, text: str) -> Button:
        """The button labelled exactly `text`, else the first whose label contains it."""
        flat = [button for row in self.buttons for button in row]
        for candidate in [b for b in flat if b.text == text] + [b for b in flat if text in b.text]:
            return candidate
        raise LookupError(
            f"no button {text!r} on message {self.message_id}; buttons: {[b.text for b in flat]}"
        )

    def describe(self) -> str:
        """One transcript line. A deleted user message is not quoted: bots delete the passwords they read."""
        if self.deleted and not self.from_bot:
            body = "[removed]"
        elif self.text is not None:
            body = self.text
        elif self.photo is not None:
            body = f"[photo {len(self.photo)} bytes] {self.caption or ''}".rstrip()
        elif self.document is not None:
            body = f"[document {self.document_name} {len(self.document)} bytes] {self.caption or ''}".rstrip()
        elif self.venue is not None:
            body = f"[venue {self.venue.get('title')}, {self.venue.get('address')}]"
        elif self.location is not None:
            body = f"[location {self.location[0]}, {self.location[1]}]"
        elif self.sticker is not None:
            body = f"[sticker {self.sticker}]"
        else:
            body = "[message]"
        line = f"#{self.message_id} {'bot' if self.from_bot else 'user'}: {body}"
        if self.buttons:
            line += " " + " ".join("[" + " | ".join(b.text for b in row) + "]" for row in self.buttons)
        if self.edits:
            line += f" (edited {self.edits}x)"
        if self.deleted:
            line += " (deleted)"
        return line


class Sandbox:
    """One bot's users, for tests and scripts."""

    def __init__(self, server: BotApiServer, token: str) -> None:
        self.server = server
        self.token = token

    def together(self) -> AbstractContextManager[None]:
        """`with sandbox.together(): ...`: what users do in the block reaches the bot in one batch."""
        return self.server.together(self.token)

    def user(
        self,
        user_id: int,
        first_name: str = "Alice",
        username: str | None = None,
        *,
        language_code: str = DEFAULT_LANGUAGE_CODE,
    ) -> SandboxUser:
        """A user whose Telegram app reports `language_code` (an IETF tag such as "en-US")."""
        self.server.register_user(self.token, user_id, first_name, username, language_code)
        return SandboxUser(self, user_id, first_name, username)

    def channel_post(self, chat_id: int, text: str, title: str = "Channel") -> ChatMessage:
        """A post in a channel that has the bot in it (a negative id): an update with no user."""
        self.server.add_group(self.token, chat_id, title, "channel")
        return _chat_message(self.server, self.server.channel_post(self.token, chat_id, text))

    def chat(self, chat_id: int) -> list[ChatMessage]:
        """Any chat's messages as they stand now (a private chat's id is its user's)."""
        return [_chat_message(self.server, item) for item in self.server.chat(self.token, chat_id)]


class SandboxUser:
    """A Telegram user in a private chat with the bot, or (see `in_group`) in a group with it."""

    def __init__(
        self,
        sandbox: Sandbox,
        user_id: int,
        first_name: str,
        username: str | None,
        chat_id: int | None = None,
    ) -> None:
        self._sandbox = sandbox
        self._server = sandbox.server
        self._token = sandbox.token
        self.id = user_id
        self.first_name = first_name
        self.username = username
        self.chat_id = user_id if chat_id is None else chat_id

    def in_group(self, chat_id: int, title: str = "Group", kind: str = "group") -> SandboxUser:
        """The same user writing in a group (or supergroup) with the bot; the group is created if new."""
        self._server.add_group(self._token, chat_id, title, kind)
        return SandboxUser(self._sandbox, self.id, self.first_name, self.username, chat_id)

    def _in(self) -> int | None:
        """The chat_id argument of the server's user side: None for the private chat."""
        return None if self.chat_id == self.id else self.chat_id

    # ----- acting ---------------------------------------------------------------------------------------

    def send(self, text: str) -> ChatMessage:
        """A text message (a "/command" carries its bot_command entity)."""
        return self._message(self._server.user_message(self._token, self.id, text=text, chat_id=self._in()))

    def send_location(self, lat: float, lon: float) -> ChatMessage:
        return self._message(
            self._server.user_message(self._token, self.id, location=(lat, lon), chat_id=self._in())
        )

    def send_venue(self, lat: float, lon: float, title: str, address: str) -> ChatMessage:
        venue = {"title": title, "address": address}
        return self._message(
            self._server.user_message(
                self._token, self.id, location=(lat, lon), venue=venue, chat_id=self._in()
            )
        )

    def send_sticker(self) -> ChatMessage:
        """Something the bot has no handler for."""
        return self._message(
            self._server.user_message(self._token, self.id, sticker="🚗", chat_id=self._in())
        )

    def edit(self, message: ChatMessage, text: str) -> None:
        self._server.user_edit(self._token, self.id, message.message_id, text)

    def press(self, message: ChatMessage, button: str) -> str:
        """Press a callback button of the message as it is now, by label (exact or part) or exact data."""
        current = self._current(message.message_id)
        if current.deleted:
            raise LookupError(f"message {message.message_id} was deleted; its buttons are gone")
        by_data = [b for row in current.buttons for b in row if b.callback_data == button]
        target = by_data[0] if by_data else current.button(button)
        if target.callback_data is None:
            does = f"copies {target.copy_text!r}" if target.copy_text is not None else f"opens {target.url!r}"
            raise ValueError(f"button {target.text!r} {does}; it sends no callback query")
        return self._server.user_press(
            self._token, self.id, message.message_id, target.callback_data, chat_id=self._in()
        )

    def press_data(self, message_id: int, data: str) -> str:
        """A forged press: any callback_data, on any message id (even one that never existed)."""
        return self._server.user_press(self._token, self.id, message_id, data, chat_id=self._in())

    # ----- reading --------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[ChatMessage]:
        return self._sandbox.chat(self.chat_id)

    @property
    def bot_messages(self) -> list[ChatMessage]:
        return [message for message in self.messages if message.from_bot and not message.deleted]

    def last_bot_message(self) -> ChatMessage | None:
        visible = self.bot_messages
        return visible[-1] if visible else None

    def callback_answers(self) -> list[CallbackAnswer]:
        return [
            CallbackAnswer(answer["query_id"], answer["text"], answer["show_alert"])
            for answer in self._server.callback_answers(self._token, self.id)
        ]

    # A timeout argument (not asyncio.timeout) so the failure can carry the transcript.
    async def wait_for(self, predicate: Callable[[SandboxUser], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until `predicate(self)` holds; on timeout fail with the chat transcript."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            if loop.time() > deadline:
                raise AssertionError(
                    f"condition not met within {timeout} s; chat so far:\n{self.transcript()}"
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def wait_for_bot_message(self, contains: str, timeout: float = 10.0) -> ChatMessage:  # noqa: ASYNC109
        """The first visible bot message whose text or caption contains `contains` (sent or edited so)."""
        found: list[ChatMessage] = []

        def match(user: SandboxUser) -> bool:
            found[:] = [m for m in user.bot_messages if contains in (m.text or "") + (m.caption or "")]
            return bool(found)

        try:
            await self.wait_for(match, timeout)
        except AssertionError as error:
            raise AssertionError(f"no bot message containing {contains!r}. {error}") from None
        return found[0]

    def transcript(self) -> str:
        lines = [message.describe() for message in self.messages]
        return "\n".join(lines) if lines else "(no messages)"

    def now(self, message: ChatMessage) -> ChatMessage:
        """That message as it stands now (edited, deleted)."""
        return self._current(message.message_id)

    # ----- helpers --------------------------------------------------------------------------------------

    def _current(self, message_id: int) -> ChatMessage:
        for message in self.messages:
            if message.message_id == message_id:
                return message
        raise LookupError(f"no message {message_id} in chat {self.chat_id}")

    def _message(self, item: dict[str, Any]) -> ChatMessage:
        return _chat_message(self._server, item)


def _chat_message(server: BotApiServer, item: dict[str, Any]) -> ChatMessage:
    """A ChatMessage from the server's chat JSON (the same JSON the demo page reads)."""
    photo, document = item["photo"], item["document"]
    return ChatMessage(
        message_id=item["message_id"],
        from_bot=item["from_bot"],
        text=item["text"],
        caption=item["caption"],
        buttons=[[Button(**button) for button in row] for row in item["buttons"]],
        photo=server.file_bytes(photo["file_id"]) if photo else None,
        location=tuple(item["location"]) if item["location"] else None,
        venue=item["venue"],
        deleted=item["deleted"],
        edits=item["edits"],
        date=dt.datetime.fromtimestamp(item["date"], dt.UTC),
        parse_mode=item["parse_mode"],
        sticker=item["sticker"],
        document=server.file_bytes(document["file_id"]) if document else None,
        document_name=document["file_name"] if document else None,
        disable_notification=item["disable_notification"],
    )
