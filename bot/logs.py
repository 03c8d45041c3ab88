"""Logging: one line per event, text or JSON, with Telegram bot tokens masked in every record."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# A bot token appears in every Bot API URL (…/bot123:ABC…/getUpdates) that httpx or PTB may log.
_BOT_TOKEN = re.compile(r"\d{3,}:[A-Za-z0-9_-]{20,}")
_NOISY = ("httpx", "httpcore", "apscheduler", "uvicorn.access")
# python-telegram-bot logs whole updates and API results at DEBUG: they carry the text users send,
# passwords and security answers included. Its loggers never go below INFO, whatever LOG_LEVEL says.
_SECRET_BEARING = ("telegram",)


_HANDLER_NAME = "bot"
_OURS = "bot"  # our loggers' names start with the package's name


class LibrariesQuiet(logging.Filter):
    """Libraries' records below WARNING are dropped: amqtt and transitions alone print a screenful of INFO
    at start-up, before the demo's banner. LOG_LEVEL=DEBUG lets them through."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        return record.levelno >= logging.WARNING or name == _OURS or name.startswith(_OURS + ".")


def redact(text: str) -> str:
    return _BOT_TOKEN.sub("<bot-token>", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def formatException(self, ei) -> str:
        return redact(super().formatException(ei))


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if logging.getLevelName(level) > logging.DEBUG:
        handler.addFilter(LibrariesQuiet())
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler, so calling this twice (or under a test's log capture) stacks nothing.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != _HANDLER_NAME] + [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in _SECRET_BEARING:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
