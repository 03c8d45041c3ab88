"""The one late read of a quiet car whose charge should be over while the stream stayed silent.

A quiet car (iDrive 6, every i3) reports the end of a charge in one burst, and BMW streams at QoS 0: a burst
lost on the way would leave the end unpushed until the next switch-off. So when a quiet car known to charge
should be done (the car's own `timeRemaining` in its last report has run out, else its estimated level,
bot/car_status.py, reached 100 %) and LATE_MARGIN_SECONDS later nothing new came, the bot reads one telematic
snapshot, the call 🔄 Refresh makes, from the day's reads (never the linking reserve; none when they are
spent). The snapshot goes the stream's way (`StreamSupervisor.apply`): an end it shows is decided by the
charge detector like a burst, pushed and recorded once, marked as read late. One read per charge, noted on
the charge track before the call (`ChargeDetector.claim_late_read`), so a restart never reads again; a
snapshot that still shows the charge leaves its end to the car's next report.

Its own module, not the detector's: the detector decides on what the car reported and spends no call; this
spends the owner's budget and decides when. Each charging quiet car has one deadline, recomputed at each
change of its state; `run` sleeps until the earliest (docs/cardata.md, "A lost end burst").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from bot.cardata.client import CarDataClient
from bot.cardata.errors import CarDataError
from bot.cardata.events import ChargeDetector

log = logging.getLogger(__name__)

# After the charge should be over: the last percent can be slow (an i3 tapers near 100 %) and a burst takes a
# moment to come; an estimate from a slow default rate is late anyway.
LATE_MARGIN_SECONDS = 20 * 60.0
POLL_SECONDS = 60.0  # `run`'s longest sleep: catches up with a clock that jumps

Overdue = Callable[[int, str], float | None]  # when the car's charge should be over; None: no quiet charge
Read = Callable[[int, str], Awaitable[None]]  # one snapshot of the car, applied as the stream's messages are


class LateReads:
    """Tell it each car whose state changed (`schedule`); `tick` (or `run`) reads the cars that are due."""

    def __init__(
        self,
        detector: ChargeDetector,
        client: CarDataClient,
        overdue: Overdue,
        read: Read,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._detector = detector
        self._client = client
        self._overdue = overdue
        self._read = read
        self._clock = clock
        self._due: dict[tuple[int, str], float] = {}
        self._wake = asyncio.Event()

    def schedule(self, owner: int, vin: str) -> None:
        """The car's state changed: its deadline anew, or none when it is no quiet car charging unreported."""
        car = (owner, vin)
        over = self._overdue(owner, vin)
        if over is None:
            self._due.pop(car, None)
            return
        self._due[car] = over + LATE_MARGIN_SECONDS
        self._wake.set()

    def forget(self, owner: int) -> None:
        for car in [car for car in self._due if car[0] == owner]:
            del self._due[car]

    async def tick(self, now: float | None = None) -> None:
        """Read the cars whose deadline has passed, one after the other."""
        now = self._clock() if now is None else now
        for car in [car for car, at in self._due.items() if at <= now]:
            if self._due.get(car, math.inf) > now:
                continue  # taken by another tick meanwhile, or its report came
            del self._due[car]
            try:
                await self._late_read(*car, now)
            except Exception:
                log.exception("cardata: the late read for owner %s failed", car[0])

    async def run(self, interval: float = POLL_SECONDS) -> None:
        """`tick` at each deadline, and at least every `interval` seconds (cancel to stop)."""
        while True:
            self._wake.clear()
            await self.tick()
            due = min(self._due.values(), default=math.inf)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(interval, max(0.0, due - self._clock()))):
                    await self._wake.wait()

    async def _late_read(self, owner: int, vin: str, now: float) -> None:
        over = self._overdue(owner, vin)  # a report may have come since the deadline was set
        if over is None:
            return
        if over + LATE_MARGIN_SECONDS > now:
            self._due[(owner, vin)] = over + LATE_MARGIN_SECONDS
            return
        spent = self._client.spent(owner)
        if spent is not None:  # tried again once calls work again, if the charge is still unreported then
            log.info("cardata: no late read for owner %s: the day's calls are spent", owner)
            self._due[(owner, vin)] = spent.retry_at.timestamp()
            return
        if not await self._detector.claim_late_read(owner, vin, now):
            return  # this charge had its read
        log.info("cardata: a charge of owner %s should be over unreported; reading the car", owner)
        try:
            await self._read(owner, vin)
        except CarDataError as exc:
            log.info("cardata: the late read for owner %s failed (%s)", owner, type(exc).__name__)
