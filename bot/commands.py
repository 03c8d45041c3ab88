"""Remote commands in flight: at most `per_minute` of one user a minute, one at a time per car, and each
recorded (bot/store/commands.py) until it ends, so that a restart finishes what a shutdown cancelled. Who may
command which car, and the call itself, are the garage's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bot.garage_errors import CommandInProgress, TooManyCommands
from bot.login_guard import RateLimit
from bot.store import Store


class RemoteCommands:
    def __init__(self, store: Store, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._rate = RateLimit(per_minute, 60.0, clock)
        self._running: set[str] = set()  # the VINs of the cars a command runs on
        self._command_tasks: set[asyncio.Task[object]] = set()

    def admit(self, tg_id: int, vin: str) -> None:
        """CommandInProgress while the car runs one; TooManyCommands past the user's rate."""
        if vin in self._running:  # the car is busy, whoever sent its command (an owner, a co-owner, a share)
            raise CommandInProgress
        wait = self._rate.take(tg_id)
        if wait is not None:
            raise TooManyCommands(wait)

    def forget(self, tg_id: int) -> None:
        """The user's rate, at /unlink."""
        self._rate.forget(tg_id)

    @contextmanager
    def running(self, tg_id: int, vin: str) -> Iterator[None]:
        """While a recorded command runs: its car is busy and `drain` may cancel it. Its record goes when it
        ends, unless it was cancelled (a shutdown): then the next start finishes it."""
        self._running.add(vin)
        task = asyncio.current_task()
        if task is not None:
            self._command_tasks.add(task)
        cancelled = False
        try:
            yield
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            if not cancelled:
                self.store.end_command(tg_id, vin)
            self._running.discard(vin)
            if task is not None:
                self._command_tasks.discard(task)

    async def drain(self, grace: float) -> int:
        """On shutdown: let running commands finish for up to `grace` seconds, then cancel the rest (their
        chat handlers tell the user); returns how many were cancelled."""
        if self._command_tasks:
            await asyncio.wait(set(self._command_tasks), timeout=grace)
        left = [task for task in self._command_tasks if not task.done()]
        for task in left:
            task.cancel()
        return len(left)
