"""The charge watcher: polls linked cars through the Garage and decides when a charge started or ended.

Real cars never reported FINISHED_FULLY_CHARGED / FINISHED_NOT_FULL: after a charge they read INVALID or
NOT_CHARGING with lastChargingEndReason/Result. So the end of a charge is CHARGING -> anything else, worded
from the end reason and result. An error ends a charge (pushed by default); a charge that
stops short while the cable is still in, for no reason the owner caused (a power cut, a charging window that
closed), is an interruption: a push the owner can opt into with /notify.

A short charge can begin and end between two polls (an idle car is polled every 15 minutes; an i3 adds a
percent a minute): the car then reads plugged in, not charging, its level higher than at the last poll
(`ChargeWatch.soc_seen`), with no session open. A rise of a whole percent with the cable in at either poll is
such a charge, pushed and recorded once like any other, from that poll's level and with no duration
(`start_unseen`): it starts at that poll's report, the earliest it can have begun (docs/exactly-once-push.md).

Exactly once, across restarts, with the store's `ChargeWatch` as the only memory: a transition is saved
(`charging_since` and `soc_at_start` kept, the event not yet in `last_event`) before its push leaves; after
the push, `last_event` records it and an ended session is cleared. A push that fails stays pending and goes
out on a later cycle; a restart between sending and recording repeats that one push once (Telegram offers
no idempotent send), and never loses it. A restart mid-charge continues the session from the store.
An ended session joins the charging history (bot/history.py) in the first write that holds its end (before
the push, or closing it when no push is wanted); the store keeps the first record of a session, so writing
it again after a restart or a failed push changes nothing.

Polling adapts: charging or plugged-in cars every `charge_poll_seconds`, idle cars every `idle_poll_seconds`,
failing cars back off exponentially (capped). An account whose stored password BMW keeps refusing is marked
by the garage and polled no more until a new /link (each poll would be another failed login at BMW); the
poll that set the mark tells the owner, once: the mark is on disk before that push leaves (when the owner's
own chat read set it, the answer to that read says it instead).

The alerts (bot/alerts.py) are decided from the same status reads, with the same exactly-once protocol: they
add no call to BMW and no poll.

Status calls run under one semaphore with a per-car timeout, so a slow or failing account holds one slot for
a bounded time and never delays the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from bot.alerts import AlertPrefs, AlertState, CarAlert, Reading
from bot.backends import from_vehicle_status
from bot.bmw.errors import BMWError
from bot.bmw.models import VehicleStatus
from bot.capabilities import BackendName
from bot.car_status import CHARGED_AT_LEAST, FIELDS, ChargeNotice, Notice, NoticeKind, RelinkNotice
from bot.garage import Garage
from bot.garage_errors import GarageError, PasswordRefused
from bot.history import ChargeSession, energy_kwh, usable_kwh
from bot.months import Month
from bot.sharing import SharedAlerter
from bot.store import ChargeWatch
from bot.store_errors import StoreFull, Unrecorded, Unsaved

log = logging.getLogger(__name__)

CHARGING = "CHARGING"
CONNECTED = "CONNECTED"
ERROR = "ERROR"
STATUS_TIMEOUT_SECONDS = 45.0  # the client retries GETs itself; this bounds one car's share of a slot
MAX_BACKOFF_SECONDS = 3600.0
MILEAGE_KEY = FIELDS["mileage_km"].iremote or ""  # the odometer in vehicleStatus, km
_OK_RESULTS = frozenset({"SUCCESS", "UNKNOWN"})
_OWNER_REASONS = frozenset({"END_REQUESTED_BY_DRIVER", "CONNECTOR_REMOVAL"})


class EventKind(StrEnum):
    STARTED = "started"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"


class Outcome(StrEnum):
    """How a finished charge ended, from the car's end reason and result."""

    FULL = "full"
    EARLY = "early"
    ERROR = "error"


@dataclass(frozen=True)
class ChargeTransition:
    """A charge start or end that polling saw between two statuses (bot/cardata/events.py decides the
    streamed ones)."""

    kind: EventKind
    tg_id: int
    vin: str
    status: VehicleStatus  # the status that showed the transition (or, on a retry, the latest one)
    charging_since: float  # epoch seconds: the car's report time when the charge was first seen
    soc_at_start: int | None
    seen_at: float  # epoch seconds: the car's report time of `status`
    outcome: Outcome | None = None  # FINISHED only
    unseen: bool = False  # it began and ended between two polls: how long it ran is not known

    @property
    def key(self) -> str:
        """What `last_event` records once this push is done."""
        return f"{self.kind}:{self.charging_since:.0f}"

    @property
    def charged_seconds(self) -> float:
        return max(0.0, self.seen_at - self.charging_since)

    @property
    def notice(self) -> ChargeNotice:
        """This event as the push path takes it, from either backend."""
        kind = NoticeKind(self.outcome or self.kind)
        return ChargeNotice(
            kind,
            self.tg_id,
            self.vin,
            from_vehicle_status(self.vin, self.status),
            soc_at_start=self.soc_at_start,
            charged_seconds=None if kind is NoticeKind.STARTED or self.unseen else self.charged_seconds,
        )


# Raises when a push should be tried again later; a RelinkNotice push (BMW no longer takes the stored
# password of `username`: polling stopped until its owner links again) is never repeated.
Push = Callable[[Notice | CarAlert], Awaitable[None]]


@dataclass
class CycleReport:
    polled: int = 0
    failed: int = 0  # status calls that failed or timed out
    pushed: int = 0
    push_failures: int = 0
    alerts_pushed: int = 0
    alert_failures: int = 0


class Watcher:
    def __init__(
        self,
        garage: Garage,
        push: Push,
        *,
        charge_poll_seconds: float,
        idle_poll_seconds: float,
        concurrency: int,
        status_timeout: float = STATUS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._garage = garage
        self._store = garage.store
        self._push = push
        self._charge_poll = charge_poll_seconds
        self._idle_poll = idle_poll_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._status_timeout = status_timeout
        self._clock = clock
        self._alerter = SharedAlerter(self._store, push, garage.zone_of)  # the owner's and shared
        # Two cycles over the same car could both see one transition; cycles run one at a time.
        self._running = asyncio.Lock()
        # The event each car's push delivered while the disk had no room to record it: recorded, not pushed
        # again, at a later poll (docs/exactly-once-push.md, "A full disk").
        self._unrecorded: Unrecorded[tuple[int, str]] = Unrecorded()
        # Each car's watch a full disk kept from being written, with the stored row it was decided from: the
        # next poll starts from it while that row is unchanged, so a charge begun meanwhile is not lost.
        self._unsaved: Unsaved[tuple[int, str], ChargeWatch] = Unsaved(_same_row)
        # Each car's last mileage mark written (month, km): a parked car's polls write none (a write per poll
        # cost a third more per cycle; benchmarks/watcher_cycle.py).
        self._marked: dict[tuple[int, str], tuple[str, float]] = {}

    async def cycle(self, now: float | None = None) -> CycleReport:
        """Poll every car whose watch is due at `now` (default: the clock) and push what changed."""
        async with self._running:
            now = self._clock() if now is None else now
            report = CycleReport()
            watches = self._store.watches_due(now)
            alerts = self._store.alerts_due(now)
            results = await asyncio.gather(
                *(self._watch_car(watch, now, report, alerts) for watch in watches), return_exceptions=True
            )
            for result in results:
                # A full disk is the store's to log, once a stretch; the car is looked at again next cycle.
                if isinstance(result, BaseException) and not isinstance(result, StoreFull):
                    log.error("watcher: a car's check failed", exc_info=result)
            return report

    async def _watch_car(
        self,
        watch: ChargeWatch,
        now: float,
        report: CycleReport,
        alerts: tuple[dict[tuple[int, str], AlertState], dict[int, AlertPrefs]],
    ) -> None:
        relink: RelinkNotice | None = None
        async with self._slots:
            try:
                async with asyncio.timeout(self._status_timeout):
                    status = await self._garage.poll_status(watch.tg_id, watch.vin)
            except (BMWError, GarageError, TimeoutError) as exc:
                report.failed += 1
                failures = watch.failures + 1
                log.info(
                    "watcher: status failed for user %s (%s), try %d",
                    watch.tg_id,
                    type(exc).__name__,
                    failures,
                )
                self._store.save_watch(
                    replace(watch, failures=failures, next_poll_at=now + self._backoff(watch, failures))
                )
                if isinstance(exc, PasswordRefused) and exc.just_marked:
                    relink = RelinkNotice(watch.tg_id, exc.username)
                else:
                    return
        # Outside the slot: a push waiting on Telegram's rate limit must not hold up other cars' polls.
        if relink is not None:
            await self._tell_relink(relink, report)
            return
        report.polled += 1
        self._mark_mileage(watch, status, now)
        try:
            await self._observe(watch, status, now, report)
        finally:  # the alerts hear of each reading, even one whose charge state found no room on disk
            await self._alert(watch, status, now, report, alerts)

    async def _tell_relink(self, relink: RelinkNotice, report: CycleReport) -> None:
        log.warning(
            "watcher: BMW keeps refusing the password of user %s; polling stops until /link", relink.tg_id
        )
        try:
            await self._push(relink)
        except Exception as exc:
            # Not repeated: the mark says the owner was told, and every chat read tells them too.
            report.push_failures += 1
            log.warning("watcher: re-link push to user %s failed (%s)", relink.tg_id, type(exc).__name__)
            return
        report.pushed += 1

    async def _observe(
        self, watch: ChargeWatch, status: VehicleStatus, now: float, report: CycleReport
    ) -> None:
        stored, car = watch, (watch.tg_id, watch.vin)
        watch = self._unsaved.start(car, stored)
        seen_at = status.update_time.timestamp() if status.update_time else now
        since, soc_at_start, last_event = watch.charging_since, watch.soc_at_start, watch.last_event
        unseen = watch.start_unseen
        event: ChargeTransition | None = None
        if status.is_charging:
            if since is None or watch.charging_status != CHARGING:
                # A new session. An older session's end push still pending is dropped: the car charges again.
                since, soc_at_start, unseen = seen_at, _soc(status), False
                if watch.charging_status is None:
                    # First sight of this car: it did not start charging now, so there is nothing to announce.
                    last_event = f"{EventKind.STARTED}:{since:.0f}"
            event = ChargeTransition(
                EventKind.STARTED, watch.tg_id, watch.vin, status, since, soc_at_start, seen_at
            )
            if event.key == last_event:
                event = None
        else:
            if since is None and (start := _unseen_start(watch, status)) is not None:
                # A charge that began and ended since the last poll. Stored as the session's start, that
                # poll's report keys it: a retry or a restart decides the same event.
                (since, soc_at_start), unseen = start, True
            if since is not None:  # the charge ended now, or in an earlier cycle whose push failed
                kind, outcome = _ending(status)
                event = ChargeTransition(
                    kind, watch.tg_id, watch.vin, status, since, soc_at_start, seen_at, outcome, unseen
                )

        interval = self._charge_poll if status.is_plugged_in or event is not None else self._idle_poll
        pending = replace(
            _level_seen(watch, status, seen_at),
            charging_status=status.charging_status,
            connection_status=status.connection_status,
            charging_since=since,
            soc_at_start=soc_at_start,
            start_unseen=unseen,
            last_event=last_event,
            next_poll_at=now + interval,
            failures=0,
        )
        try:
            if event is None:
                self._store.save_watch(pending)
                return
            done = _settled(pending, event)
            ended = None if event.kind is EventKind.STARTED else self._session(event)
            if not self._store.push_recipients(watch.tg_id, watch.vin, event.kind.value):  # owner's or shared
                self._store.save_watch(done, ended)
                return
            if self._unrecorded.owes(car, event.key):  # pushed already; only its record waited for room
                self._store.save_watch(done, ended)
                self._unrecorded.recorded(car)
                return
            self._store.save_watch(pending, ended)  # the transition is on disk before the push leaves
        except StoreFull:
            self._unsaved.hold(car, stored, pending)  # the store logs it, once a stretch
            raise
        try:
            await self._push(event.notice)
        except Exception as exc:
            report.push_failures += 1
            log.warning(
                "watcher: %s push to user %s failed (%s); retrying next cycle",
                event.kind,
                watch.tg_id,
                type(exc).__name__,
            )
            return
        report.pushed += 1
        try:
            self._store.save_watch(done)
        except StoreFull:
            self._unrecorded.pushed(car, event.key)  # a restart meanwhile repeats it once, as at step 3
            raise

    def _mark_mileage(self, watch: ChargeWatch, status: VehicleStatus, now: float) -> None:
        """The month's mileage mark (bot/months.py): BMW's trip statistics are not per month, so the monthly
        summary counts an i Remote car's km from the mileage read in each month of its owner's zone."""
        mileage = status.reading(MILEAGE_KEY)
        if mileage is None:
            return
        zone = self._garage.zone_of(watch.tg_id) if self._garage.zone_of is not None else None
        mark = (str(Month.of(now, zone)), mileage)
        # A watch that never saw the car is a (re)link's: its marks may have gone with an unlink.
        if watch.charging_status is None or self._marked.get((watch.tg_id, watch.vin)) != mark:
            try:
                self._store.mark_mileage(watch.tg_id, watch.vin, mark[0], now, mark[1])
            except StoreFull:
                return  # the store logs it, once a stretch; marked at a later poll, the charge watched now
            self._marked[(watch.tg_id, watch.vin)] = mark

    def _session(self, event: ChargeTransition) -> ChargeSession:
        """The ended charge of `event`, for the history; its kWh estimated from the model's battery."""
        car = self._store.vehicle(event.tg_id, event.vin)
        soc_end, position = _soc(event.status), event.status.position
        here = position if position is not None and position.usable else None
        return ChargeSession(
            tg_id=event.tg_id,
            vin=event.vin,
            started_at=event.charging_since,  # of an unseen charge: the report before it, its earliest start
            ended_at=max(event.charging_since, event.seen_at),
            soc_start=event.soc_at_start,
            soc_end=soc_end,
            energy_kwh=energy_kwh(event.soc_at_start, soc_end, usable_kwh(car.model if car else None)),
            ended=(event.outcome or event.kind).value,
            reason=event.status.last_charging_end_reason,
            lat=here.lat if here else None,
            lon=here.lon if here else None,
            source=BackendName.IREMOTE,
        )

    async def _alert(
        self,
        watch: ChargeWatch,
        status: VehicleStatus,
        now: float,
        report: CycleReport,
        alerts: tuple[dict[tuple[int, str], AlertState], dict[int, AlertPrefs]],
    ) -> None:
        states, prefs = alerts
        done = await self._alerter.observe(
            watch.tg_id,
            watch.vin,
            Reading.of(from_vehicle_status(watch.vin, status)),
            now,
            state=states.get((watch.tg_id, watch.vin), AlertState()),
            prefs=prefs.get(watch.tg_id, AlertPrefs()),
        )
        report.alerts_pushed += done.pushed
        report.alert_failures += done.failed

    def _backoff(self, watch: ChargeWatch, failures: int) -> float:
        plugged = watch.charging_status == CHARGING or watch.connection_status == CONNECTED
        base = self._charge_poll if plugged else self._idle_poll
        return min(base * 2.0**failures, max(base, MAX_BACKOFF_SECONDS))


def _soc(status: VehicleStatus) -> int | None:
    return None if status.charging_level_hv is None else round(status.charging_level_hv)


def _unseen_start(watch: ChargeWatch, status: VehicleStatus) -> tuple[float, int] | None:
    """Where a charge that began and ended since the last poll starts (that poll's report time and level),
    when `status`, not charging and with no session open, shows one: its level up by a whole percent, with
    the cable in at either poll. With the cable out at both, a higher level is no charge: an i3 REX's range
    extender only holds the level, a long descent regenerates a little. Nothing before a level was read:
    the first poll after /link tells nothing."""
    level = _soc(status)
    if watch.soc_seen is None or watch.seen_at is None or level is None:
        return None
    if not (status.is_plugged_in or watch.connection_status == CONNECTED):
        return None
    return (watch.seen_at, watch.soc_seen) if level >= watch.soc_seen + CHARGED_AT_LEAST else None


def _level_seen(watch: ChargeWatch, status: VehicleStatus, seen_at: float) -> ChargeWatch:
    """The watch with `status` (reported at `seen_at`) as the level the next poll is compared with; a level
    that reads None tells nothing, so the last one read stays."""
    level = _soc(status)
    return watch if level is None else replace(watch, soc_seen=level, seen_at=seen_at)


def _ending(status: VehicleStatus) -> tuple[EventKind, Outcome | None]:
    result = status.last_charging_end_result
    if status.charging_status == ERROR or (result is not None and result not in _OK_RESULTS):
        return EventKind.FINISHED, Outcome.ERROR
    full = (
        status.charging_status == "FINISHED_FULLY_CHARGED"
        or status.last_charging_end_reason == "CHARGING_GOAL_REACHED"
        or (status.charging_level_hv or 0) >= 100
    )
    if full:
        return EventKind.FINISHED, Outcome.FULL
    stopped_by_owner = (
        status.charging_status == "FINISHED_NOT_FULL"
        or status.connection_status != "CONNECTED"
        or status.last_charging_end_reason in _OWNER_REASONS
    )
    return (EventKind.FINISHED, Outcome.EARLY) if stopped_by_owner else (EventKind.INTERRUPTED, None)


def _same_row(before: ChargeWatch, now: ChargeWatch) -> bool:
    """Whether the stored watch is still the row `before` was read as, its schedule aside (a failed poll's
    backoff may have been written since)."""
    return replace(before, next_poll_at=now.next_poll_at, failures=now.failures) == now


def _settled(watch: ChargeWatch, event: ChargeTransition) -> ChargeWatch:
    """The watch once `event` is dealt with (pushed, or not wanted): an ended session is closed."""
    if event.kind is EventKind.STARTED:
        return replace(watch, last_event=event.key)
    return replace(watch, last_event=event.key, charging_since=None, soc_at_start=None, start_unseen=False)
