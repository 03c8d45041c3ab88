"""Telegram's limits and hiccups, for every request the bot makes: python-telegram-bot's AIORateLimiter
(30 messages a second, 20 a minute to a group, a 429 waited out and tried again), which also tries a request
again after Telegram's own server error (a 5xx, or a connection that failed).

Without that, a reply that met a 502 was lost: the soak's 20 injected 502s each left an owner's /status
unanswered (benchmarks/README.md, "Soak"). A push is tried again by its own protocol anyway
(docs/exactly-once-push.md); a reply has no second chance. A 5xx can come after Telegram did send the
message: a reply shown twice is the lesser harm than one never shown. A time-out is not tried again: the
request may still be on its way, and the chat's own time limit is already running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import NetworkError
from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

RETRY_AFTER_429 = 5  # tries after a 429 (AIORateLimiter's max_retries: its default 0 tries none)
SERVER_ERROR_RETRIES = 2
SERVER_ERROR_PAUSE = 0.5  # seconds before the first try again; doubled each time


class RateLimiter(AIORateLimiter):
    def __init__(self) -> None:
        super().__init__(max_retries=RETRY_AFTER_429)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        attempt = 0
        while True:
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
            # Exactly NetworkError: Telegram's 5xx or a failed connection. Its subclass TimedOut is not
            # tried again (see above).
            except NetworkError as exc:
                if type(exc) is not NetworkError or attempt == SERVER_ERROR_RETRIES:
                    raise
                # The cause's name, not its words: an HTTP library's message could name the URL (the token).
                why = "server error" if exc.__cause__ is None else type(exc.__cause__).__name__
                log.info("telegram: %s failed (%s), tried again", endpoint, why)
                await asyncio.sleep(SERVER_ERROR_PAUSE * 2**attempt)
                attempt += 1
