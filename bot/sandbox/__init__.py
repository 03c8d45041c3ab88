"""A Telegram Bot API emulator on loopback, and a driver that acts as the bot's users.

Used by the tests (the real python-telegram-bot Application talks to it over HTTP) and by the
"try it without Telegram" demo, whose chat page uses the server's `/_sandbox/` routes.
"""

from bot.sandbox.driver import Button, CallbackAnswer, ChatMessage, Sandbox, SandboxUser
from bot.sandbox.server import ApiCall, ApiError, BotApiServer

__all__ = [
    "ApiCall",
    "ApiError",
    "BotApiServer",
    "Button",
    "CallbackAnswer",
    "ChatMessage",
    "Sandbox",
    "SandboxUser",
]
