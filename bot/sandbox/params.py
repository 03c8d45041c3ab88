"""What the sandbox's Bot API accepts: parameters read and checked as Telegram does, with its error texts.

`read_params` reads a request's parameters (query string plus a JSON, form or multipart body) into
`Params`, which types them and raises `ApiError` with Telegram's description when one is missing or
invalid. The checks several methods share live here too: text length after HTML parsing (and
Telegram's "can't parse entities" errors), inline keyboards, coordinates.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

# Telegram's limits (docs/telegram.md).
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_COPY_TEXT = 256  # a CopyTextButton's text, in characters
MAX_CALLBACK_ANSWER = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDES = 10000
MAX_PHOTO_RATIO = 20
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024  # what a bot may upload

# Telegram's error descriptions, word for word: callers match on them (bot/chat/common.py: "not modified").
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

CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}
)
HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji"}
    | {"code", "pre", "blockquote"}
)
_HTML_TAG = re.compile(r"<(/?)([^\s>/]*)[^>]*>")
_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
BOT_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")


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


class Params:
    """Typed access to parameters that arrive as strings (form, multipart, query) or as JSON values."""

    def __init__(
        self, values: dict[str, Any], files: dict[str, bytes], file_names: dict[str, str] | None = None
    ) -> None:
        self.values = values
        self.files = files
        self.file_names = file_names or {}  # an upload's file name, where the client sent one

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


def check_text(text: str, parse_mode: str | None, limit: int, too_long: str) -> None:
    visible = html_visible_text(text) if (parse_mode or "").upper() == "HTML" else text
    if len(visible) > limit:
        raise ApiError.bad_request(too_long)


def inline_keyboard(params: Params) -> dict[str, Any] | None:
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
        copy = button.get("copy_text")
        if copy is not None and not (
            isinstance(copy, dict) and 1 <= len(str(copy.get("text") or "")) <= MAX_COPY_TEXT
        ):
            raise ApiError.bad_request("BUTTON_COPY_TEXT_INVALID")
    return {"inline_keyboard": rows}


async def read_params(request: Request) -> Params:
    """Query string plus body, whichever encoding PTB or a curl user chose."""
    values: dict[str, Any] = dict(request.query_params)
    files: dict[str, bytes] = {}
    file_names: dict[str, str] = {}
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
                    if value.filename:
                        file_names[name] = value.filename
                else:
                    values[name] = value
    return Params(values, files, file_names)


def coordinates(params: Params) -> tuple[float, float]:
    latitude, longitude = params.number("latitude"), params.number("longitude")
    if not -90 <= latitude <= 90 or not -180 <= longitude <= 180:
        raise ApiError.bad_request("wrong latitude or longitude")
    return latitude, longitude
