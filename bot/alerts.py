"""Alerts about a car: charge level reached, plugged in but not charging, forgot to plug in, left unlocked or
open, and the monthly summary (its figures in bot/months.py).

Decided from what a backend already reads (the i Remote watcher's status, or CarData's stream state):
no call of their own, no Telegram, no SQLite.

Each kind is one row of `ALERT_SPECS`: its prefs fields, step, bounds and decision function
(docs/where-to-change.md). `decide` is pure: (the car's alert memory, a `Reading`, the owner's `AlertPrefs`,
now) -> (new memory, the alerts to send). Each alert belongs to an occurrence (a charging session, a stretch
of being plugged in without charging, an evening, a stretch of being parked unlocked or open) named by a key;
an alert is due while its occurrence lasts and its key is not yet `done`. `Alerter` runs the protocol of the
charge push (docs/exactly-once-push.md) over a store: the new memory is written before the pushes leave, and
each alert's key is recorded as done after its push. A failed push is tried again at the next reading while
its occurrence lasts (a car locked meanwhile needs no "left unlocked" any more); a restart between a push and
its record repeats that one push once.

Times are checked when a reading comes: "N minutes after" is noticed at the first reading after N minutes
(for i Remote cars, the watcher's next poll: at most `IDLE_POLL_SECONDS` later for a parked car). A car that
reports only now and then (a quiet CarData car) proves nothing by its silence: "not charging" and "left
open" fire only when its reports themselves span the N minutes (docs/cardata.md, "Alerts"), which for
"left open" they never do: each report is a switch-off, a parking anew.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any, Protocol

from bot.car_status import CHARGED_AT_LEAST, CarStatus
from bot.months import Month, summary_due
from bot.store_errors import StoreFull, Unrecorded, Unsaved

log = logging.getLogger(__name__)

# The owner's reminder is checked at the first reading after its time, unless that comes this much later
# (the bot was down all evening): a reminder at 2 a.m. helps nobody.
REMINDER_LATE_SECONDS = 3 * 3600.0
DAY_MINUTES = 24 * 60
# The last charge ended as its owner wanted: no "not charging" alert for the rest of that plug-in.
# CarData's SP25 cars say the same in their own words (docs/cardata.md).
_CHARGE_ENDED_OK = frozenset(
    {
        "CHARGING_GOAL_REACHED",
        "END_REQUESTED_BY_DRIVER",
        "HV_BATTERY_FULLY_CHARGED",
        "CUSTOMER_INTERACTION_STOP_CHARGING",
    }
)


class AlertKind(StrEnum):
    LEVEL = "level"  # the charge reached the owner's level
    STALL = "stall"  # plugged in, not charging, not waiting for a charging window
    PLUG = "plug"  # the owner's evening reminder: low and not plugged in
    OPEN = "open"  # parked and unlocked, or a door or window open
    MONTHLY = "monthly"  # last month in one message, on the 1st at 9:00 (bot/months.py)


@dataclass(frozen=True)
class AlertPrefs:
    """One owner's alerts (for all their cars): on or off, and each one's value."""

    level_on: bool = False
    level_percent: int = 80
    stall_on: bool = True
    stall_minutes: int = 15
    plug_on: bool = False
    plug_percent: int = 50
    plug_minute: int = 21 * 60  # minutes after local midnight
    open_on: bool = True
    open_minutes: int = 10
    monthly_on: bool = False


@dataclass(frozen=True)
class AlertState:
    """One car's alert memory; its fields are the columns of the store's `alert_states` (besides the key)."""

    charge_since: float | None = None  # the charging session being watched for the level (epoch seconds)
    charge_soc_at_start: float | None = None
    charged_on_plug: bool = False  # the car charged since it was plugged in
    stall_since: float | None = None
    soc_seen: float | None = None  # the level at the last reading of the car parked, not charging
    parked_at: float | None = None  # the car's last report while parked
    open_since: float | None = None
    done_level: str | None = None  # the key of each kind's last occurrence dealt with (pushed or moot)
    done_stall: str | None = None
    done_plug: str | None = None
    done_open: str | None = None
    done_monthly: str | None = None


@dataclass(frozen=True)
class Reading:
    """What the alerts need to know of a car, from either backend."""

    soc: float | None
    charging: bool
    plugged_in: bool | None
    waiting: bool  # plugged in and waiting for its charging window
    charge_ended_ok: bool  # the car says its last charge ended full or as its owner asked
    locked: bool | None
    open_items: tuple[str, ...]  # API keys of open doors and windows (texts.OPEN_NAMES words them)
    moving: bool
    reported_at: float | None  # epoch seconds of the car's report
    parked_at: float | None  # when the car last reported being parked, locked, or a door moving, if known
    # For a car that reports only now and then: as of when its plug and charging state, and its locks,
    # doors and windows, are known (None: until now, as for a polled car or one that streams each change).
    plug_as_of: float | None = None
    plug_from: float | None = None  # from when both are known as they are (the newer of the two reports)
    doors_as_of: float | None = None
    charge_ended_at: float | None = None  # when the car last said why a charge ended, if it says when

    @classmethod
    def of(cls, status: CarStatus) -> Reading:
        """A car's status, whichever backend read it (bot/backends.py converts both)."""
        return cls(
            soc=status.soc,
            charging=status.charging,
            plugged_in=status.plugged_in,
            waiting=status.waiting,
            charge_ended_ok=status.charge_finished or status.end_reason in _CHARGE_ENDED_OK,
            locked=status.locked,
            open_items=status.open_items or (),
            moving=status.moving,
            reported_at=_epoch(status.updated_at),
            parked_at=_epoch(status.parked_at),
            plug_as_of=_epoch(status.plug_as_of),
            plug_from=_epoch(status.plug_from),
            doors_as_of=_epoch(status.doors_as_of),
            charge_ended_at=_epoch(status.end_reported_at),
        )


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    key: str  # the occurrence: recorded as done once pushed
    soc: float | None = None
    value: int | None = None  # the owner's level (LEVEL, PLUG) or minutes (STALL, OPEN)
    locked: bool | None = None  # OPEN: the car's lock
    open_items: tuple[str, ...] = ()  # OPEN: what is open


def decide(
    state: AlertState, reading: Reading, prefs: AlertPrefs, now: float, zone: tzinfo | None = None
) -> tuple[AlertState, list[Alert]]:
    """The car's new alert memory and the alerts due now. `zone`: the owner's time zone for an alert at a time
    of day (None: the server's)."""
    alerts = []
    for spec in ALERT_SPECS:
        state, alert = spec.decision(state, reading, prefs, now, zone)
        if alert is not None:
            alerts.append(alert)
    return state, alerts


def settle(state: AlertState, alert: Alert) -> AlertState:
    """The memory once `alert` was pushed: its occurrence is done."""
    return _with(state, **{ALERT_SPEC[alert.kind].done: alert.key})


def _level(
    state: AlertState, reading: Reading, prefs: AlertPrefs, now: float, zone: tzinfo | None
) -> tuple[AlertState, Alert | None]:
    if reading.charging and state.charge_since is None:
        # A new session, or the first sight of a car already charging: it started where it is now.
        state = _with(state, charge_since=_since(reading, now), charge_soc_at_start=reading.soc)
    if state.charge_since is None:
        return state, None
    key = f"{AlertKind.LEVEL}:{state.charge_since:.0f}"
    start, soc, target = state.charge_soc_at_start, reading.soc, prefs.level_percent
    reached = start is not None and soc is not None and start < target <= soc
    if prefs.level_on and reached and key != state.done_level:
        # Still due after the charge ended (it crossed the level between two readings): the session stays
        # open until the push is done.
        return state, Alert(AlertKind.LEVEL, key, soc=soc, value=target)
    if not reading.charging:
        state = _with(state, charge_since=None, charge_soc_at_start=None)
    return state, None


def _stall(
    state: AlertState, reading: Reading, prefs: AlertPrefs, now: float, zone: tzinfo | None
) -> tuple[AlertState, Alert | None]:
    level, before = reading.soc, state.soc_seen
    if level is not None and not (reading.charging or reading.moving):  # no write per percent under way
        state = _with(state, soc_seen=level)
    if not reading.plugged_in:
        return _with(state, charged_on_plug=False, stall_since=None), None
    ended, since = reading.charge_ended_at, state.stall_since
    # A level up since the last reading is a charge too: one that began and ended between two polls, whose
    # car's end reason may be a day old.
    rose = level is not None and before is not None and level >= before + CHARGED_AT_LEAST
    if reading.charging or rose or (ended is not None and since is not None and ended > since):
        # Charging, or a charge ended since the car was seen not charging: a quiet car reports no start.
        state = _with(state, charged_on_plug=True, stall_since=None)
        if reading.charging:
            return state, None
    full = reading.soc is not None and reading.soc >= 100
    if reading.waiting or full or (state.charged_on_plug and reading.charge_ended_ok):
        return _with(state, stall_since=None), None
    as_of = now if reading.plug_as_of is None else min(reading.plug_as_of, now)
    if state.stall_since is None:
        # A quiet car's stretch begins at its first report of both: its burst's "not charging" beside a
        # Refresh's plug state from the start of the charge says nothing of the time between.
        seen = reading.plug_from if reading.plug_from is not None else reading.reported_at
        state = _with(state, stall_since=now if seen is None else min(seen, now))
    assert state.stall_since is not None
    key = f"{AlertKind.STALL}:{state.stall_since:.0f}"
    if prefs.stall_on and as_of - state.stall_since >= prefs.stall_minutes * 60 and key != state.done_stall:
        return state, Alert(AlertKind.STALL, key, soc=reading.soc, value=prefs.stall_minutes)
    return state, None


def _plug(
    state: AlertState, reading: Reading, prefs: AlertPrefs, now: float, zone: tzinfo | None
) -> tuple[AlertState, Alert | None]:
    if not prefs.plug_on:
        return state, None
    moment = datetime.fromtimestamp(now, zone)  # naive local time when zone is None
    due = moment.replace(hour=prefs.plug_minute // 60, minute=prefs.plug_minute % 60, second=0, microsecond=0)
    if due > moment:
        due -= timedelta(days=1)
    key = f"{AlertKind.PLUG}:{due:%Y-%m-%d}"
    if key == state.done_plug or (moment - due).total_seconds() > REMINDER_LATE_SECONDS:
        return state, None
    low = reading.soc is not None and reading.soc < prefs.plug_percent
    if low and reading.plugged_in is False:
        return state, Alert(AlertKind.PLUG, key, soc=reading.soc, value=prefs.plug_percent)
    return _with(state, done_plug=key), None  # checked once an evening: nothing to remind of tonight


def _open(
    state: AlertState, reading: Reading, prefs: AlertPrefs, now: float, zone: tzinfo | None
) -> tuple[AlertState, Alert | None]:
    if reading.moving:
        return _with(state, parked_at=None, open_since=None), None
    if reading.parked_at is not None:
        state = _with(state, parked_at=min(reading.parked_at, now))
    elif state.parked_at is None:
        state = _with(state, parked_at=_since(reading, now))
    if reading.locked is not False and not reading.open_items:
        return _with(state, open_since=None), None
    if state.open_since is None:
        state = _with(state, open_since=state.parked_at)
    assert state.parked_at is not None and state.open_since is not None
    key = f"{AlertKind.OPEN}:{state.open_since:.0f}"
    # Still open N minutes after parking: as of the car's last report of its doors when it reports rarely.
    as_of = now if reading.doors_as_of is None else min(reading.doors_as_of, now)
    if prefs.open_on and as_of - state.parked_at >= prefs.open_minutes * 60 and key != state.done_open:
        alert = Alert(
            AlertKind.OPEN,
            key,
            soc=reading.soc,
            value=prefs.open_minutes,
            locked=reading.locked,
            open_items=reading.open_items,
        )
        return state, alert
    return state, None


def _monthly(
    state: AlertState, reading: Reading, prefs: AlertPrefs, now: float, zone: tzinfo | None
) -> tuple[AlertState, Alert | None]:
    """Last month's summary at the first reading on the 1st from 9:00 in the owner's zone; its key names the
    month, so it is pushed once per person and car whatever the reading says."""
    month = summary_due(now, zone) if prefs.monthly_on else None
    key = None if month is None else monthly_key(month)
    if key is None or key == state.done_monthly:
        return state, None
    return state, Alert(AlertKind.MONTHLY, key)


def monthly_key(month: Month) -> str:
    return f"{AlertKind.MONTHLY}:{month}"


def summarised(alert: Alert) -> Month | None:
    """The month a MONTHLY alert sums up."""
    return Month.parse(alert.key.removeprefix(f"{AlertKind.MONTHLY}:"))


def _with(state: AlertState, **changes: Any) -> AlertState:
    """`state` with these changes; the same object when nothing changes (most readings of a parked car), as
    the watcher decides for every car it polls."""
    if all(getattr(state, name) == value for name, value in changes.items()):
        return state
    return replace(state, **changes)


def _with_prefs(prefs: AlertPrefs, changes: dict[str, Any]) -> AlertPrefs:
    return replace(prefs, **changes)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _since(reading: Reading, now: float) -> float:
    """When the car reported what this reading shows (its own time when it sent one)."""
    return now if reading.reported_at is None else min(reading.reported_at, now)


# A kind's decision: (its car's memory, a reading, the owner's prefs, now, the owner's zone) -> (the new
# memory, its alert if one is due now). Pure; it reads and writes only its own fields of the memory.
Decision = Callable[[AlertState, Reading, AlertPrefs, float, tzinfo | None], tuple[AlertState, Alert | None]]


@dataclass(frozen=True)
class AlertSpec:
    """One alert kind: a row is all of it but its decision function and its sentences (`texts.ALERT_TEXTS`).
    /alerts' buttons, `decide` and `settle` read it. Its defaults are those of its `AlertPrefs` fields, whose
    columns the store adds by itself (bot/store/schema.py `follow_alert_fields`)."""

    kind: AlertKind
    switch: str  # the AlertPrefs field: on or off
    value: str | None  # the AlertPrefs field of its level (%) or minutes, set by ➖ ➕; None: a switch alone
    step: int
    low: int
    high: int
    done: str  # the AlertState field: the key of its last occurrence dealt with
    decision: Decision
    # The AlertPrefs field of its time of day (minutes after midnight), with its own earlier/later buttons.
    clock: str | None = None
    zoned: bool = False  # decided at a fixed time of the owner's day (besides one with a `clock`)

    def on(self, prefs: AlertPrefs) -> bool:
        return bool(getattr(prefs, self.switch))

    def setting(self, prefs: AlertPrefs) -> int | None:
        return None if self.value is None else int(getattr(prefs, self.value))

    @property
    def local(self) -> bool:
        """Whether its decision needs the owner's time zone."""
        return self.clock is not None or self.zoned

    def minute(self, prefs: AlertPrefs) -> int | None:
        return None if self.clock is None else int(getattr(prefs, self.clock))

    # The owner's changes in /alerts: each stays within its bounds, a time of day within the day.
    def switched(self, prefs: AlertPrefs) -> AlertPrefs:
        return _with_prefs(prefs, {self.switch: not self.on(prefs)})

    def stepped(self, prefs: AlertPrefs, steps: int) -> AlertPrefs:
        setting = self.setting(prefs)
        if self.value is None or setting is None:
            return prefs
        value = setting + steps * self.step
        return _with_prefs(prefs, {self.value: max(self.low, min(self.high, value))})

    def shifted(self, prefs: AlertPrefs, minutes: int) -> AlertPrefs:
        if self.clock is None:
            return prefs
        return _with_prefs(prefs, {self.clock: (int(getattr(prefs, self.clock)) + minutes) % DAY_MINUTES})


# In the order of /alerts and of the pushes of one reading.
ALERT_SPECS: tuple[AlertSpec, ...] = (
    AlertSpec(AlertKind.LEVEL, "level_on", "level_percent", 5, 10, 100, "done_level", _level),
    AlertSpec(AlertKind.STALL, "stall_on", "stall_minutes", 5, 5, 120, "done_stall", _stall),
    AlertSpec(AlertKind.PLUG, "plug_on", "plug_percent", 5, 10, 95, "done_plug", _plug, clock="plug_minute"),
    AlertSpec(AlertKind.OPEN, "open_on", "open_minutes", 5, 5, 120, "done_open", _open),
    AlertSpec(AlertKind.MONTHLY, "monthly_on", None, 0, 0, 0, "done_monthly", _monthly, zoned=True),
)
ALERT_SPEC: dict[AlertKind, AlertSpec] = {spec.kind: spec for spec in ALERT_SPECS}


# --- the protocol over a store ------------------------------------------------------------------------------


class AlertStore(Protocol):
    """What the alerts keep (bot/store/prefs.py implements it)."""

    def alert_prefs(self, tg_id: int) -> AlertPrefs: ...
    def alert_state(self, tg_id: int, vin: str) -> AlertState: ...
    def save_alert_state(self, tg_id: int, vin: str, state: AlertState) -> None:
        """Ignored when the car is no longer the user's."""


@dataclass(frozen=True)
class CarAlert:
    """An alert for the owner `tg_id` about their car `vin`: what the push gets."""

    tg_id: int
    vin: str
    alert: Alert


AlertPush = Callable[[CarAlert], Awaitable[None]]  # raises when the push should be tried again later
ZoneOf = Callable[[int], tzinfo]  # an owner's time zone, as chosen in /settings (default: the server's)


@dataclass
class AlertReport:
    pushed: int = 0
    failed: int = 0


class Alerter:
    """Decides a car's alerts from each new reading and pushes them exactly once (see the module's doc).

    The i Remote watcher calls `observe` after each status it reads. A stream backend (CarData) calls
    `observe(owner, vin, Reading.of(status), now)` on each state update and, for the timed alerts
    (minutes after, the evening reminder), at a steady tick with the last state it has."""

    def __init__(self, store: AlertStore, push: AlertPush, zone_of: ZoneOf | None = None) -> None:
        self._store = store
        self._push = push
        self._zone_of = zone_of  # None: the server's zone for everyone
        # Per (owner, car, kind): the alert pushed while its record found no room, laid over the stored memory
        # until a write carries it (docs/exactly-once-push.md, "A full disk").
        self._unrecorded: Unrecorded[tuple[int, str, AlertKind]] = Unrecorded()
        # Per (owner, car): the memory a full disk kept from being written, with the stored one it was decided
        # from; the next reading starts from it while that is unchanged, so a charge seen starting meanwhile
        # is not forgotten (its level alert comes once there is room).
        self._unsaved: Unsaved[tuple[int, str], AlertState] = Unsaved()

    async def observe(
        self,
        tg_id: int,
        vin: str,
        reading: Reading,
        now: float,
        *,
        state: AlertState | None = None,
        prefs: AlertPrefs | None = None,
    ) -> AlertReport:
        """`state` and `prefs`, when the caller read them already (the watcher reads a cycle's at once).
        StoreFull when the car's new memory finds no room: nothing is pushed, and the next reading decides
        again from that memory."""
        stored = self._store.alert_state(tg_id, vin) if state is None else state
        before = self._unsaved.start((tg_id, vin), stored)
        for spec in ALERT_SPECS:
            if (key := self._unrecorded.key((tg_id, vin, spec.kind))) is not None:
                before = _with(before, **{spec.done: key})
        prefs = self._store.alert_prefs(tg_id) if prefs is None else prefs
        # Only an alert at a time of day (the evening reminder, the monthly summary) needs the owner's zone:
        # read for it alone.
        timed = any(spec.local and spec.on(prefs) for spec in ALERT_SPECS)
        zone = self._zone_of(tg_id) if self._zone_of is not None and timed else None
        after, alerts = decide(before, reading, prefs, now, zone)
        report = AlertReport()
        if after != stored:
            try:
                self._store.save_alert_state(tg_id, vin, after)  # on disk before any push leaves
            except StoreFull:
                self._unsaved.hold((tg_id, vin), stored, after)
                raise
            self._recorded(tg_id, vin)
        for alert in alerts:
            try:
                await self._push(CarAlert(tg_id, vin, alert))
            except Exception as exc:
                report.failed += 1
                log.warning(
                    "alerts: %s push to user %s failed (%s); tried again at the next reading",
                    alert.kind,
                    tg_id,
                    type(exc).__name__,
                )
                continue
            report.pushed += 1
            after = settle(after, alert)
            try:
                self._store.save_alert_state(tg_id, vin, after)
            except StoreFull:  # the store logs it, once a stretch
                self._unrecorded.pushed((tg_id, vin, alert.kind), alert.key)
                continue
            self._recorded(tg_id, vin)
        return report

    def _recorded(self, tg_id: int, vin: str) -> None:
        """The car's memory was written, with every alert pushed so far."""
        for spec in ALERT_SPECS:
            self._unrecorded.recorded((tg_id, vin, spec.kind))
