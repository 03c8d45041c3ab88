"""In-order updates per chat, concurrency across chats: the Application's update processor.

A conversation's next step must see the state its previous step stored: a password typed right after the
e-mail (both in one getUpdates batch) has to reach the password step, not the e-mail step. So the updates of
one chat run one after another, in arrival order, while different chats run side by side. Car work that
takes minutes runs in its own task (bot/chat/remote.py), so it never holds up its user's next update.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable
from inspect import iscoroutine
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

log = logging.getLogger(__name__)
MAX_CONCURRENT_UPDATES = 256


def chat_key(update: object) -> int | None:
    """The chat an update belongs to (its user when it has no chat); None for anything else."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    return update.effective_user.id if update.effective_user is not None else None


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Each chat's updates in arrival order; at most `max_concurrent_updates` chats at a time.

    The first update of an idle chat runs here and then runs the updates that queued behind it meanwhile.
    A queued update returns at once, giving back its slot of `max_concurrent_updates`: one chat flooding the
    bot holds one slot, not all of them. A chat's queue exists only while the chat has work.

    Arrival order holds because PTB starts one task per update in arrival order and its semaphore wakes them
    first come, first served.
    """

    def __init__(self, max_concurrent_updates: int = MAX_CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._queues: dict[int, deque[Awaitable[Any]]] = {}

    @property
    def busy_chats(self) -> int:
        return len(self._queues)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = chat_key(update)
        if key is None:
            await coroutine
            return
        queue = self._queues.get(key)
        if queue is not None:  # an earlier update of this chat is running: it runs this one next
            queue.append(coroutine)
            return
        queue = self._queues[key] = deque([coroutine])
        try:
            while queue:
                try:
                    await queue.popleft()
                except Exception:  # PTB's process_update routes handler errors itself; this is a last resort
                    log.exception("an update of a chat failed outside its handlers")
        finally:
            del self._queues[key]
            for left in queue:  # only when cancelled: never started, so never awaited
                if iscoroutine(left):
                    left.close()

    async def initialize(self) -> None:
        """Nothing to set up: a chat's queue is made by its first update."""

    async def shutdown(self) -> None:
        """Nothing to free: each queue is gone once its chat is idle."""
