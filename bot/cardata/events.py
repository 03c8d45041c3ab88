"""Charge events from the stream: "charging started", and a charge that ended, *complete* or *stopped*.

CHARGINGACTIVE -> any other state starts a debounce (the state flaps for a moment, e.g. on a phase switch):
only when no CHARGINGACTIVE arrives before the deadline did the charge end. Then it is *complete* when the
state of charge reached the target - 1 % (with no target known: the car said FINISHED_FULLY_CHARGED or
that the goal was reached, or the battery is full), else *stopped*, with the car's end reason
(`reasonChargingEnd`, or an i3's `hvpmFinishReason`) when it sent one. Values are read at the deadline, so
keys that follow the status change (SoC, reason) count.

Exactly once across restarts, with the same protocol as bot/watcher.py, the store's `ChargeTrack` being the
only memory: an event is written to the track (`pending`) before its push leaves; after the push,
`last_event` records its key and `pending` is cleared. A push that fails stays pending and is tried again;
a restart between sending and recording repeats that one push once (Telegram offers no idempotent send),
and never loses it. The debounce deadline is stored too, so a restart mid-debounce still decides the end.
The write that ends a session also records it in the charging history (`EndedCharge`), so it is recorded
exactly once, pushed or not.

A car that streams nothing while it charges (a *quiet* car, iDrive 6: every i3) reports a charge's end in a
burst of its keys, with no active state before it (docs/cardata.md). Every report that comes with no charge
known is waited out like a stop (a burst comes a key a message) and then compared with the last report decided
on, kept in the track: the level up by at least 1 %, or a new end reason, is a charge that ended unseen; a
value counts only when the car sent it after that report. An end reason is new when it differs from the one
last reported, or when the car stamped it earlier than the report that brings it (it kept when the charge
ended); the same reason restamped with its report, as the simulator restamps a whole burst, is only the last
charge's again. Such an event starts at the last report, with its level. A level that rose under an older
charging state is a charge whose start the stream lost (QoS 0): it is decided when the car reports its
state again, not at each rise.

A quiet car's end burst that never came may be read from the car once (bot/cardata/late.py, noted on the
track by `claim_late_read`): its snapshot is decided on like a report, and the event says when it was read.

Each report decided on (its charge recorded, if any) is told to `on_report`: the backend closes drives there
(bot/drives.py).

`run` sleeps until the earliest stored deadline or retry time and is woken when a new one is set, so an end
is decided as its debounce runs out, not at the next poll (benchmarks/README.md has the latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from bot.car_status import CHARGED_AT_LEAST
from bot.cardata.models import (
    CHARGING_STATUS,
    GOAL_REACHED_REASONS,
    HV_STATUS,
    HVPM_FINISH_REASON,
    REASON_CHARGING_END,
    SOC_DISPLAYED,
    SOC_HEADER,
    CarState,
    HvStatus,
)
from bot.cardata.storage import CarDataStore, ChargeTrack, EndedCharge
from bot.store_errors import StoreFull, Unrecorded

log = logging.getLogger(__name__)

DEFAULT_DEBOUNCE_SECONDS = 120.0
PUSH_RETRY_SECONDS = 30.0
POLL_SECONDS = 60.0  # `run`'s longest sleep: catches up with a clock that jumps (a wall clock set, a test's)
COMPLETE_TOLERANCE = 1.0  # % below the target still counts as complete
# What a report that tells of a charge carries: the charging state, the level, the end reason.
REPORT_KEYS = frozenset(
    {CHARGING_STATUS, HV_STATUS, SOC_DISPLAYED, SOC_HEADER, REASON_CHARGING_END, HVPM_FINISH_REASON}
)


class ChargeEventKind(StrEnum):
    STARTED = "started"
    COMPLETE = "complete"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ChargeEvent:
    kind: ChargeEventKind
    owner: int
    vin: str
    session_start: float  # epoch seconds: when the charge was first seen active (unseen: the report before)
    at: float  # epoch seconds: when the event was decided
    soc_at_start: float | None = None
    soc: float | None = None
    target_soc: float | None = None
    reason: str | None = None  # reasonChargingEnd, for an ended charge when the car sent one
    unseen: bool = False  # it ended with no active state seen (a quiet car): how long it ran is not known
    # When the bot read the end from the car itself, BMW having streamed nothing of it (bot/cardata/late.py).
    read_at: float | None = None

    @property
    def key(self) -> str:
        """What `last_event` records once pushed: one start and one end per session."""
        phase = "started" if self.kind is ChargeEventKind.STARTED else "ended"
        return f"{phase}:{self.session_start:.0f}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Self:
        data: dict[str, Any] = json.loads(text)
        return cls(**{**data, "kind": ChargeEventKind(data["kind"])})


Push = Callable[[ChargeEvent], Awaitable[None]]  # raises when the push should be tried again later
StateOf = Callable[[int, str], CarState | None]
# Told of each report decided on, after its charge (if any) is recorded: where drives are closed.
OnReport = Callable[[int, CarState], None]


class ChargeDetector:
    """Feed it every changed car state (`observe`) and call `tick` (or `run`) for deadlines and retries."""

    def __init__(
        self,
        store: CarDataStore,
        push: Push,
        *,
        debounce_seconds: float = DEFAULT_DEBOUNCE_SECONDS,
        retry_seconds: float = PUSH_RETRY_SECONDS,
        state_of: StateOf | None = None,
        on_report: OnReport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._on_report = on_report
        self._push = push
        self._debounce = debounce_seconds
        self._retry = retry_seconds
        self._state_of = state_of or self._stored_state
        self._clock = clock
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}
        self._deliveries: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._retry_at: dict[tuple[int, str], float] = {}
        # A full disk (docs/exactly-once-push.md): cars whose report could not be written, and when to look at
        # them again from their state; the event each car's push delivered while its record found no room.
        self._unwritten: dict[tuple[int, str], float] = {}
        self._unrecorded: Unrecorded[tuple[int, str]] = Unrecorded()
        self._wake = asyncio.Event()  # a deadline or retry time was set that `run` may sleep past

    # --- input ----------------------------------------------------------------------------------------------

    async def observe(self, owner: int, state: CarState, changed: set[str]) -> None:
        """A car's state changed; only the charging state, level and end reason matter here. Pushes run in the
        background."""
        if not changed & REPORT_KEYS:
            return
        try:
            await self._observe(owner, state)
        except StoreFull:  # the store logs it, once a stretch
            self._unwritten[(owner, state.vin)] = self._clock() + self._retry

    async def _observe(self, owner: int, state: CarState) -> None:
        now = self._clock()
        async with self._lock(owner, state.vin):
            stored = self._store.cardata_track(owner, state.vin)
            track = stored or ChargeTrack(owner, state.vin)
            status = state.charging_status or state.hv_status
            track = replace(track, status=None if status is None else str(status))
            event = None
            if state.is_charging:
                if track.session_start is not None and track.deadline is not None:
                    track = replace(track, deadline=None)  # it flapped: the same charge goes on
                    log.info("cardata: charge of %s resumed within the debounce", owner)
                elif track.session_start is None:  # a report being waited out was this charge's start
                    track = replace(track, session_start=now, soc_at_start=state.soc, deadline=None)
                    event = ChargeEvent(
                        ChargeEventKind.STARTED,
                        owner,
                        state.vin,
                        now,
                        now,
                        soc_at_start=state.soc,
                        soc=state.soc,
                    )
            elif (
                track.deadline is None
            ):  # a stop, or a report with no charge known: decided once it is all in
                track = replace(track, deadline=now + self._debounce)
                self._wake.set()
            if event is not None:
                track = replace(track, pending=event.to_json())
            if track != stored:
                self._store.save_cardata_track(track)
        if event is not None:
            self._deliver_soon(owner, state.vin)

    # --- deadlines and retries ------------------------------------------------------------------------------

    async def claim_late_read(self, owner: int, vin: str, now: float) -> bool:
        """Whether the car's charge under way may have its one late read (bot/cardata/late.py) now; noted on
        its track first, so neither a second look nor a restart reads again for the same charge."""
        async with self._lock(owner, vin):
            track = self._store.cardata_track(owner, vin) or ChargeTrack(owner, vin)
            if track.late_read_at is not None:
                return False
            self._store.save_cardata_track(replace(track, late_read_at=now))
            return True

    async def tick(self, now: float | None = None) -> None:
        """End the charges whose debounce ran out, push what is pending; waits for those pushes."""
        await self._decide(self._clock() if now is None else now)
        await self.drain()

    async def run(self, interval: float = POLL_SECONDS) -> None:
        """Decide what is due at each deadline and retry time, and at least every `interval` seconds (cancel
        to stop). Pushes run in the background: a slow one holds up no other car's deadline."""
        while True:
            self._wake.clear()  # what is set from here on is seen by the `_next_due` below or wakes the sleep
            now = self._clock()
            try:
                await self._decide(now)
                due = self._next_due(now)
            except Exception:
                log.exception("cardata: charge detector tick failed")
                due = now + self._retry
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(interval, max(0.0, due - self._clock()))):
                    await self._wake.wait()

    async def drain(self) -> None:
        """Wait for the pushes under way."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries.values()), return_exceptions=True)

    async def _decide(self, now: float) -> None:
        for car in [car for car, at in self._unwritten.items() if at <= now]:
            state = self._state_of(*car)
            del self._unwritten[car]
            if state is not None:
                await self.observe(car[0], state, set(REPORT_KEYS))
        for track in self._store.cardata_tracks_due(now):
            car = (track.owner, track.vin)
            if track.deadline is not None and track.deadline <= now:
                try:
                    await self._end(track.owner, track.vin, now)
                except StoreFull:
                    continue  # its deadline is still on disk: decided at a later tick
            elif self._retry_at.get(car, 0.0) > now:
                continue
            self._deliver_soon(*car)

    def _next_due(self, after: float) -> float:
        """When the next debounce runs out, a failed push is tried again or an unwritten report looked at
        again, later than `after` (a past retry was just taken, or its car has nothing pending any more);
        infinity when nothing waits."""
        retries = [at for at in (*self._retry_at.values(), *self._unwritten.values()) if at > after]
        deadline = self._store.cardata_next_deadline(after)
        return min([*retries, deadline] if deadline is not None else retries, default=math.inf)

    async def _end(self, owner: int, vin: str, now: float) -> None:
        async with self._lock(owner, vin):
            track = self._store.cardata_track(owner, vin)
            if track is None or track.deadline is None or track.deadline > now:
                return
            state = self._state_of(owner, vin) or CarState(vin)
            if track.session_start is None:
                self._end_unseen(track, state, now)
            else:
                self._end_seen(track, state, now)
            if self._on_report is not None:
                try:
                    self._on_report(owner, state)
                except Exception:  # the charge is decided: a failing listener holds up no other car
                    log.exception("cardata: a decided report of owner %s was not taken", owner)

    def _end_seen(self, track: ChargeTrack, state: CarState, now: float) -> None:
        """End the charge under way at its debounce's deadline."""
        owner, vin = track.owner, track.vin
        if track.session_start is None or track.deadline is None:
            return
        soc, target = state.soc, state.target_soc
        complete = _complete(state)
        read_at = _read_late(track, state)
        event = ChargeEvent(
            ChargeEventKind.COMPLETE if complete else ChargeEventKind.STOPPED,
            owner,
            vin,
            track.session_start,
            now,
            soc_at_start=track.soc_at_start,
            soc=soc,
            target_soc=target,
            reason=None if complete else state.end_reason,
            read_at=read_at,
        )
        # Read late, it ended when the car last reported (its snapshot's time), not when the bot saw it.
        reported_at = _epoch(state.updated_at) if read_at is not None else None
        ended_at = track.deadline - self._debounce if reported_at is None else reported_at
        ended = EndedCharge(
            owner,
            vin,
            started_at=track.session_start,
            ended_at=max(track.session_start, ended_at),
            soc_start=track.soc_at_start,
            soc_end=soc,
            outcome=event.kind.value,
            reason=state.end_reason,
            position=state.position,
        )
        # The charge joins the history in the write that ends its session: once, whatever the push does.
        self._store.end_cardata_charge(
            replace(
                _known(track, state),
                session_start=None,
                soc_at_start=None,
                deadline=None,
                pending=event.to_json(),
            ),
            ended,
        )
        log.info("cardata: charge of %s ended: %s", owner, event.kind)

    def _end_unseen(self, track: ChargeTrack, state: CarState, now: float) -> None:
        """Decide a report that came with no charge known (the module's docstring); it is the next one's
        starting point. The first report of a car (the snapshot at linking) tells nothing."""
        if _charging_unseen(track, state):  # decided at its end; the last report stays the starting point
            self._store.save_cardata_track(replace(track, deadline=None))
            return
        known = replace(_known(track, state), deadline=None)
        reported_at = _epoch(state.updated_at)
        if track.known_at is None or reported_at is None or not _ended_since(track, state, reported_at):
            self._store.save_cardata_track(known)
            return
        soc, complete = state.soc, _complete(state)
        event = ChargeEvent(
            ChargeEventKind.COMPLETE if complete else ChargeEventKind.STOPPED,
            track.owner,
            track.vin,
            track.known_at,
            now,
            soc_at_start=track.known_soc,
            soc=soc,
            target_soc=state.target_soc,
            reason=None if complete else state.end_reason,
            unseen=True,
            read_at=_read_late(track, state),
        )
        ended = EndedCharge(
            track.owner,
            track.vin,
            started_at=track.known_at,
            ended_at=max(track.known_at, reported_at),
            soc_start=track.known_soc,
            soc_end=soc,
            outcome=event.kind.value,
            reason=state.end_reason,
            position=state.position,
        )
        self._store.end_cardata_charge(replace(known, pending=event.to_json()), ended)
        log.info("cardata: charge of %s ended unseen: %s", track.owner, event.kind)

    # --- delivery -------------------------------------------------------------------------------------------

    def _deliver_soon(self, owner: int, vin: str) -> None:
        car = (owner, vin)
        if car in self._deliveries:
            return  # the running delivery reads the track afresh after its push
        task = asyncio.create_task(self._deliver(owner, vin))
        self._deliveries[car] = task
        task.add_done_callback(lambda _: self._deliveries.pop(car, None))

    async def _deliver(self, owner: int, vin: str) -> None:
        car = (owner, vin)
        while True:
            track = self._store.cardata_track(owner, vin)
            if track is None or track.pending is None:
                return
            event = ChargeEvent.from_json(track.pending)
            if event.key != track.last_event and not self._unrecorded.owes(car, event.key):
                try:
                    await self._push(event)
                except Exception as exc:
                    self._retry_at[car] = self._clock() + self._retry
                    self._wake.set()
                    log.warning(
                        "cardata: %s push to %s failed (%s); trying again later",
                        event.kind,
                        owner,
                        type(exc).__name__,
                    )
                    return
            self._retry_at.pop(car, None)
            async with self._lock(owner, vin):
                current = self._store.cardata_track(owner, vin)
                if current is None:
                    return
                # A newer event may have been written while this one was pushed: it stays pending.
                pending = None if current.pending == track.pending else current.pending
                try:
                    self._store.save_cardata_track(replace(current, pending=pending, last_event=event.key))
                except StoreFull:
                    # Recorded at a later tick, not pushed again; a restart meanwhile repeats it.
                    self._unrecorded.pushed(car, event.key)
                    return
                self._unrecorded.recorded(car)
            if pending is None:
                return

    def _lock(self, owner: int, vin: str) -> asyncio.Lock:
        return self._locks.setdefault((owner, vin), asyncio.Lock())

    def _stored_state(self, owner: int, vin: str) -> CarState | None:
        values = self._store.cardata_states(owner).get(vin)
        return None if values is None else CarState.from_json(vin, values)


def _complete(state: CarState) -> bool:
    """Whether an ended charge reached its goal: the target - 1 %; with no target known (an i3 has none) the
    car's own word, else a full battery."""
    soc, target = state.soc, state.target_soc
    if target is not None:
        return soc is not None and soc >= target - COMPLETE_TOLERANCE
    return (
        state.hv_status == HvStatus.FINISHED_FULLY_CHARGED
        or state.end_reason in GOAL_REACHED_REASONS
        or (soc is not None and soc >= 100.0 - COMPLETE_TOLERANCE)
    )


def _ended_since(track: ChargeTrack, state: CarState, reported_at: float) -> bool:
    """Whether `state`, reported at `reported_at` with no charge known, shows a charge that ended since the
    track's last report (the module's docstring)."""
    if state.is_charging or track.known_at is None:
        return False
    # In whole seconds: the stream stamps a value so, a REST snapshot in milliseconds (docs/cardata.md), and
    # the last burst's values read again by a Refresh are not stamped after it.
    since = math.floor(track.known_at)
    soc, soc_at = state.soc, _epoch(state.soc_reported_at)
    charged = (
        soc is not None
        and track.known_soc is not None
        and soc >= track.known_soc + CHARGED_AT_LEAST
        and soc_at is not None
        and math.floor(soc_at) > since
    )
    reason, reason_at = state.end_reason, _epoch(state.end_reason_reported_at)
    new_reason = (
        reason is not None
        and reason_at is not None
        and math.floor(reason_at) > since
        and (reason != track.known_reason or reason_at < reported_at)
    )
    return charged or new_reason


def _charging_unseen(track: ChargeTrack, state: CarState) -> bool:
    """Whether the level rose since the last report while the car's charging state is older than that
    level: it said it started charging and the stream lost it (QoS 0), and the charge goes on. A report of
    a charge's end states it with the level (a burst, a live car's status change)."""
    soc, soc_at = state.soc, _epoch(state.soc_reported_at)
    status_at = _epoch(state.reported_at(CHARGING_STATUS, HV_STATUS))
    return (
        soc is not None
        and soc_at is not None
        and track.known_soc is not None
        and soc >= track.known_soc + CHARGED_AT_LEAST
        and (status_at is None or status_at < soc_at)
    )


def _known(track: ChargeTrack, state: CarState) -> ChargeTrack:
    """The track with `state` as the last report decided on: no charge goes on, so the next may have its
    own late read."""
    return replace(
        track,
        known_soc=state.soc,
        known_reason=state.end_reason,
        known_at=_epoch(state.updated_at),
        late_read_at=None,
    )


def _read_late(track: ChargeTrack, state: CarState) -> float | None:
    """When the bot read the car for this charge's end, if the report decided on is that read's (a burst the
    stream brought after it is the car's own word)."""
    reported_at = _epoch(state.updated_at)
    if track.late_read_at is None or reported_at is None or reported_at > track.late_read_at:
        return None
    return track.late_read_at


def _epoch(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()
