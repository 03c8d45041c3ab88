"""How often the CarData stream may try BMW's broker: the process's connection attempts paced
(`ConnectPacer`), all of them paused while BMW refuses many accounts at once (`OutageBreaker`), and each
stream's reconnects backed off (`Backoff`). The supervisor that uses them: bot/cardata/stream.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Connection attempts the process makes per minute: BMW publishes no number, 30 is our conservative guess.
CONNECTS_PER_MINUTE = 30
_MINUTE = 60.0
# An outage: BMW refuses or fails this many different accounts' connections within a minute; then no stream
# tries for a few minutes (OUTAGE_PAUSE to twice that, jittered) before one probes.
OUTAGE_ACCOUNTS = 5
OUTAGE_PAUSE = 180.0


class ConnectPacer:
    """The process's connection attempts: at most `per_minute` in any 60 s (BMW limits attempts per IP per
    minute), and at least `interval` seconds apart, so that many streams starting at once are staggered."""

    def __init__(
        self,
        per_minute: int,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._per_minute = per_minute
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._attempts: deque[float] = deque()  # the times of the attempts of the last minute
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            while (delay := self._delay()) > 0:
                await self._sleep(delay)
            self._attempts.append(self._clock())

    def _delay(self) -> float:
        now = self._clock()
        while self._attempts and self._attempts[0] <= now - _MINUTE:
            self._attempts.popleft()
        delay = self._attempts[-1] + self._interval - now if self._attempts else 0.0
        if len(self._attempts) >= self._per_minute:
            delay = max(delay, self._attempts[0] + _MINUTE - now)
        return delay


class OutageBreaker:
    """When BMW refuses or fails the connections of `accounts` different gcids within `window` seconds, it is
    an outage, not their links: no stream tries for `pause` seconds (plus up to as much again, jittered, so
    that many bots do not all come back at once), then one stream probes and the others wait for its outcome:
    connected, all go on; refused too, the pause starts again. So a restart during an outage never sends
    thousands of owners' attempts to BMW."""

    def __init__(
        self,
        accounts: int = OUTAGE_ACCOUNTS,
        window: float = _MINUTE,
        pause: float = OUTAGE_PAUSE,
        *,
        rng: random.Random,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._accounts = accounts
        self._window = window
        self._pause = pause
        self._rng = rng
        self._clock = clock
        self._sleep = sleep
        self._failed: dict[str, float] = {}  # gcid -> when its last attempt failed
        self._closed_at: float | None = None  # while open: when the next probe may go
        self._probing = False
        self._settled = asyncio.Event()  # the probe's outcome is known

    @property
    def open(self) -> bool:
        return self._closed_at is not None

    async def wait(self) -> None:
        """Return at once while BMW answers; during an outage, after the pause, as the probe or after it."""
        while self._closed_at is not None:
            if (delay := self._closed_at - self._clock()) > 0:
                await self._sleep(delay)
            elif not self._probing:
                self._probing = True
                return
            else:
                settled = self._settled
                # A probe whose stream was stopped never tells: after a pause another one goes.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(settled.wait(), self._pause)
                if not settled.is_set():
                    self._probing = False

    def failed(self, gcid: str) -> None:
        now = self._clock()
        if self._probing:
            self._trip(now)
            return
        self._failed = {g: t for g, t in self._failed.items() if t > now - self._window}
        self._failed[gcid] = now
        if self._closed_at is None and len(self._failed) >= self._accounts:
            log.warning(
                "cardata: BMW refused %s accounts' streams within a minute; pausing", len(self._failed)
            )
            self._trip(now)

    def succeeded(self) -> None:
        self._failed.clear()
        if self._closed_at is not None:
            log.info("cardata: BMW's broker answers again")
            self._closed_at, self._probing = None, False
            self._tell()

    def _trip(self, now: float) -> None:
        self._closed_at = now + self._pause + self._rng.uniform(0.0, self._pause)
        self._probing = False
        self._tell()

    def _tell(self) -> None:
        self._settled.set()
        self._settled = asyncio.Event()


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt n (0-based): full jitter over min(cap, base * 2**n)."""

    base: float = 1.0
    cap: float = 60.0  # evcc backs off at most 1 min
    # A connection that lasted this long counts as healthy: the next failure starts again from `base`.
    stable_after: float = 60.0

    def delay(self, failures: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * 2.0 ** min(failures, 30)))


# While BMW lets nothing through (another app holds the stream, or it is not set up in the portal): at least
# `base` (a minute), then up to `cap` more, jittered, so that many owners' retries spread out and BMW's per-IP
# limit is not spent on streams that stay blocked.
BLOCKED_BACKOFF = Backoff(base=60.0, cap=900.0)
