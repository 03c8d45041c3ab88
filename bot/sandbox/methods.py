"""The Bot API methods the sandbox answers (getMe, sendMessage, editMessageText, getUpdates, setWebhook...).

`BotApiMethods.handlers` maps each method name to its handler: `handler(bot, params)` returns the
`result` of Telegram's answer or raises `ApiError`. setWebhook starts the webhook's delivery task
(webhooks.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import mimetypes
import re
import time
from collections.abc import Callable
from typing import Any

from PIL import Image, UnidentifiedImageError

from bot.sandbox.params import (
    BOT_COMMAND_NAME,
    CHAT_ACTIONS,
    MAX_CALLBACK_ANSWER,
    MAX_CAPTION,
    MAX_DOCUMENT_BYTES,
    MAX_PHOTO_BYTES,
    MAX_PHOTO_RATIO,
    MAX_PHOTO_SIDES,
    MAX_TEXT,
    NOT_MODIFIED,
    POLL_CONFLICT,
    QUERY_TOO_OLD,
    WEBHOOK_CONFLICT,
    ApiError,
    Params,
    check_text,
    coordinates,
    inline_keyboard,
)
from bot.sandbox.state import Bot, Message, SandboxState, StoredFile, Webhook, scope_key
from bot.sandbox.webhooks import deliver

# Methods that post or change a message: the ones Telegram's flood control counts.
MESSAGE_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "sendLocation", "sendVenue"}
    | {"editMessageText", "editMessageCaption", "editMessageReplyMarkup"}
)

Handler = Callable[[Bot, Params], Any]


class BotApiMethods:
    """The Bot API methods, by name: each reads its parameters, checks them as Telegram does and changes the
    bot's state. They run under the state's lock (the routes take it), except getUpdates, which waits."""

    def __init__(self, state: SandboxState) -> None:
        self._state = state
        # Method names are case-insensitive on Telegram: the key is the lower case, the value its spelling.
        self.handlers: dict[str, tuple[str, Handler]] = {
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
                "sendDocument": self._send_document,
                "getFile": self._get_file,
                "sendLocation": self._send_location,
                "sendVenue": self._send_venue,
                "sendChatAction": self._send_chat_action,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
            }.items()
        }
        # getUpdates is the one method that waits (long polling): the route awaits it outside the lock.
        self.handlers["getupdates"] = ("getUpdates", self._get_updates)

    # ----- methods: the bot and its updates ------------------------------------------------------------

    def _get_me(self, bot: Bot, params: Params) -> dict[str, Any]:
        return bot.me()

    def _true(self, bot: Bot, params: Params) -> bool:
        return True

    async def _get_updates(self, bot: Bot, params: Params) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        limit = min(max(params.integer("limit") or 100, 1), 100)
        deadline = loop.time() + max(params.integer("timeout") or 0, 0)
        allowed = params.decoded("allowed_updates")
        with self._state.lock:
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
            with self._state.lock:
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
                with self._state.lock:
                    bot.updates_changed.discard(waiter)

    def _set_webhook(self, bot: Bot, params: Params) -> bool:
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
        hook = Webhook(url, params.text("secret_token"), params.integer("max_connections") or 40)
        bot.webhook = hook
        hook.task = asyncio.get_running_loop().create_task(deliver(self._state, bot, hook))
        bot.updates_changed.notify()  # long polls still open end with 409
        return True

    def _delete_webhook(self, bot: Bot, params: Params) -> bool:
        self._stop_webhook(bot)
        if params.flag("drop_pending_updates"):
            bot.updates.clear()
        return True

    def _stop_webhook(self, bot: Bot) -> None:
        if bot.webhook is not None and bot.webhook.task is not None:
            bot.webhook.task.cancel()
        bot.webhook = None

    def _get_webhook_info(self, bot: Bot, params: Params) -> dict[str, Any]:
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

    # ----- methods: messages ---------------------------------------------------------------------------

    def _send_message(self, bot: Bot, params: Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        text = params.text("text", required="message text is empty") or ""
        parse_mode = params.text("parse_mode")
        check_text(text, parse_mode, MAX_TEXT, "message is too long")
        message = chat.new_message(
            from_bot=True,
            text=text,
            parse_mode=parse_mode,
            reply_markup=inline_keyboard(params),
            disable_notification=params.flag("disable_notification"),
        )
        return bot.message_json(message)

    def _edit_message_text(self, bot: Bot, params: Params) -> dict[str, Any]:
        message = self._editable(bot, params)
        if message.text is None:
            raise ApiError.bad_request("there is no text in the message to edit")
        text = params.text("text", required="message text is empty") or ""
        parse_mode = params.text("parse_mode")
        check_text(text, parse_mode, MAX_TEXT, "message is too long")
        # Like Telegram, an edit without reply_markup removes the inline keyboard.
        return self._apply_edit(
            bot, message, text=text, parse_mode=parse_mode, markup=inline_keyboard(params)
        )

    def _edit_message_caption(self, bot: Bot, params: Params) -> dict[str, Any]:
        message = self._editable(bot, params)
        if message.photo is None and message.document is None:
            raise ApiError.bad_request("there is no caption in the message to edit")
        caption = params.text("caption")
        parse_mode = params.text("parse_mode")
        check_text(caption or "", parse_mode, MAX_CAPTION, "message caption is too long")
        return self._apply_edit(
            bot, message, caption=caption, parse_mode=parse_mode, markup=inline_keyboard(params)
        )

    def _edit_message_reply_markup(self, bot: Bot, params: Params) -> dict[str, Any]:
        message = self._editable(bot, params)
        return self._apply_edit(bot, message, markup=inline_keyboard(params))

    def _editable(self, bot: Bot, params: Params) -> Message:
        if params.text("inline_message_id") is not None:
            raise ApiError.bad_request("message to edit not found")  # no inline mode here
        message = self._bot_message(bot, params, missing="message to edit not found")
        if not message.from_bot:
            raise ApiError.bad_request("message can't be edited")
        return message

    def _bot_message(self, bot: Bot, params: Params, *, missing: str) -> Message:
        chat = bot.chat(params.chat_id())
        message = chat.messages.get(
            params.integer("message_id", required="message identifier is not specified") or 0
        )
        if message is None or message.deleted:
            raise ApiError.bad_request(missing)
        return message

    def _apply_edit(
        self, bot: Bot, message: Message, *, markup: dict[str, Any] | None, **changes: str | None
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

    def _delete_message(self, bot: Bot, params: Params) -> bool:
        self._bot_message(bot, params, missing="message to delete not found").deleted = True
        return True

    def _answer_callback_query(self, bot: Bot, params: Params) -> bool:
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

    def _send_photo(self, bot: Bot, params: Params) -> dict[str, Any]:
        return self._send_file(bot, params, photo=self._photo(params))

    def _send_document(self, bot: Bot, params: Params) -> dict[str, Any]:
        return self._send_file(bot, params, document=self._document(params))

    def _send_file(self, bot: Bot, params: Params, **file: StoredFile) -> dict[str, Any]:
        """A photo or a document (`file`: photo= or document=), with its caption and buttons."""
        chat = bot.chat(params.chat_id())
        caption = params.text("caption")
        parse_mode = params.text("parse_mode")
        if caption is not None:
            check_text(caption, parse_mode, MAX_CAPTION, "message caption is too long")
        markup = inline_keyboard(params)
        message = chat.new_message(
            from_bot=True,
            caption=caption,
            parse_mode=parse_mode,
            reply_markup=markup,
            disable_notification=params.flag("disable_notification"),
            **file,
        )
        return bot.message_json(message)

    def _photo(self, params: Params) -> StoredFile:
        """An uploaded photo (kept byte for byte) or one sent before, by file_id."""
        if "photo" in params.files:
            return self._store_photo(params.files["photo"])
        reference = params.text("photo", required="there is no photo in the request")
        if reference is not None and reference.startswith(("http://", "https://")):
            raise ApiError.bad_request("failed to get HTTP URL content")  # the sandbox is offline
        if reference not in self._state.files:
            raise ApiError.bad_request("wrong file identifier/HTTP URL specified")
        return self._state.files[reference]

    def _store_photo(self, data: bytes) -> StoredFile:
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
        number = len(self._state.files)
        stored = StoredFile(
            file_id=f"AgACAgIAAxkDAA{digest[:24]}{number:06d}",
            file_unique_id=f"AQAD{digest[:12]}",  # same bytes, same unique id
            file_path=f"photos/file_{number}.{'jpg' if kind == 'jpeg' else kind}",
            data=data,
            media_type=Image.MIME.get(kind.upper(), "application/octet-stream"),
            width=width,
            height=height,
        )
        self._state.files[stored.file_id] = stored
        return stored

    def _document(self, params: Params) -> StoredFile:
        """An uploaded document (kept byte for byte, with its file name) or one sent before, by file_id."""
        if "document" not in params.files:
            reference = params.text("document", required="there is no document in the request")
            if reference not in self._state.files:
                raise ApiError.bad_request("wrong file identifier/HTTP URL specified")
            return self._state.files[reference]
        data = params.files["document"]
        if not data:
            raise ApiError.bad_request("file must be non-empty")
        if len(data) > MAX_DOCUMENT_BYTES:
            raise ApiError.bad_request("file is too big")
        name = params.file_names.get("document")
        digest = hashlib.sha256(data).hexdigest()
        number = len(self._state.files)
        stored = StoredFile(
            file_id=f"BQACAgIAAxkDAA{digest[:24]}{number:06d}",
            file_unique_id=f"AgAD{digest[:12]}",
            file_path=f"documents/file_{number}{mimetypes.guess_extension(_media_type(name)) or ''}",
            data=data,
            media_type=_media_type(name),
            width=0,
            height=0,
            file_name=name,
        )
        self._state.files[stored.file_id] = stored
        return stored

    def _get_file(self, bot: Bot, params: Params) -> dict[str, Any]:
        stored = self._state.files.get(params.text("file_id", required="file_id is empty") or "")
        if stored is None:
            raise ApiError.bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _send_location(self, bot: Bot, params: Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        location = coordinates(params)
        message = chat.new_message(from_bot=True, location=location, reply_markup=inline_keyboard(params))
        return bot.message_json(message)

    def _send_venue(self, bot: Bot, params: Params) -> dict[str, Any]:
        chat = bot.chat(params.chat_id())
        location = coordinates(params)
        venue = {
            "title": params.text("title", required="title is empty") or "",
            "address": params.text("address", required="address is empty") or "",
        }
        message = chat.new_message(
            from_bot=True, location=location, venue=venue, reply_markup=inline_keyboard(params)
        )
        return bot.message_json(message)

    def _send_chat_action(self, bot: Bot, params: Params) -> bool:
        bot.chat(params.chat_id())
        if params.text("action") not in CHAT_ACTIONS:
            raise ApiError.bad_request("wrong parameter action in request")
        return True

    def _set_my_commands(self, bot: Bot, params: Params) -> bool:
        commands = params.decoded("commands")
        if not isinstance(commands, list):
            raise ApiError.bad_request("commands is empty")
        for command in commands:
            if not isinstance(command, dict) or not BOT_COMMAND_NAME.fullmatch(str(command.get("command"))):
                raise ApiError.bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description") or "")) <= 256:
                raise ApiError.bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (scope_key(params.decoded("scope")), params.text("language_code") or "")
        bot.commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    def _get_my_commands(self, bot: Bot, params: Params) -> list[dict[str, str]]:
        return bot.commands.get((scope_key(params.decoded("scope")), params.text("language_code") or ""), [])

    def _delete_my_commands(self, bot: Bot, params: Params) -> bool:
        bot.commands.pop((scope_key(params.decoded("scope")), params.text("language_code") or ""), None)
        return True


def _media_type(file_name: str | None) -> str:
    """As Telegram does, from the file name's extension."""
    guessed = mimetypes.guess_type(file_name or "")[0]
    return guessed or "application/octet-stream"
