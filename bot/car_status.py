"""What the chat shows of a car and pushes about it, whichever backend reported it.

Both backends produce these (bot/backends.py converts the i Remote API's `VehicleStatus` and CarData's
`CarState`), so the chat never asks which backend a car has. Each part of a status carries the time the car
reported it: a polled i Remote status is one snapshot (every part has its time), CarData's stream sends each
value on its own, so its parts can be of very different ages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from statistics import median
from typing import Any

from bot.history import ChargeSession

# An i3 on AC when its own past charges tell nothing: about 4.6 kW into a 42 kWh (120 Ah) pack, a modest
# home supply; rather too slow than too fast (docs/cardata.md, "While a quiet car charges").
DEFAULT_CHARGE_RATE = 11.0  # % per hour
RATE_SESSIONS = 10  # the newest recorded charges the rate is taken from
RATE_MIN_SECONDS = 10 * 60  # shorter charges say little about the rate
CHARGED_AT_LEAST = 1.0  # % more than the last level read with no charge under way: a charge happened since
# The words of a charge under way or about to go on: a quiet car plugged in with one has not been seen to end.
CHARGE_UNDER_WAY = frozenset({"INITIALIZATION", "CHARGINGPAUSED"})


class Part(StrEnum):
    """The parts of a status whose age is told apart."""

    CHARGE = "charge"  # state of charge, ranges, fuel
    CHARGING = "charging"  # charging state and time left
    PLUG = "plug"
    DOORS = "doors"  # open doors and windows, lock state
    MILEAGE = "mileage"
    POSITION = "position"


class Unit(StrEnum):
    """A reading's unit, as CLDR names it (the chat formats it in the user's locale with Babel)."""

    PERCENT = "concentr-percent"
    KM = "length-kilometer"  # shown in the user's unit; a CarData value sent in miles is converted
    LITRE = "volume-liter"

    @property
    def symbol(self) -> str:
        """As BMW CarData writes it beside a value."""
        return _SYMBOLS[self]


_SYMBOLS = {Unit.PERCENT: "%", Unit.KM: "km", Unit.LITRE: "l"}


@dataclass(frozen=True)
class Field:
    """A simple numeric reading of a status, declared once for both backends: the converters
    (bot/backends.py) fill the `CarStatus` attribute `name` from it, CarData's container asks for its keys,
    both simulators serve it, and /status gives it its own line where bot/chat/texts/status.py FIELD_LINES
    has one (docs/where-to-change.md, "A new read-only field")."""

    name: str  # the CarStatus attribute
    part: Part | None  # whose age it shares; None: it tells no age of its own
    iremote: str | None  # its key in the i Remote API's vehicleStatus; None: that API does not report it
    cardata: tuple[str, ...]  # its CarData telematic keys, the preferred first
    unit: Unit
    # What a simulated car reports when its spec does not say; None: only where the spec says (a tank).
    sample: float | None = None
    digits: int = 0  # decimals worth showing


FIELDS: Mapping[str, Field] = {
    field.name: field
    for field in (
        Field(
            "soc",
            Part.CHARGE,
            "chargingLevelHv",
            (
                "vehicle.powertrain.electric.battery.stateOfCharge.displayed",
                "vehicle.drivetrain.batteryManagement.header",
            ),
            Unit.PERCENT,
        ),
        # Only cars that stream each change have a charge target; an i3 has none (docs/cardata.md).
        Field(
            "target_soc",
            None,
            None,
            ("vehicle.powertrain.electric.battery.stateOfCharge.target",),
            Unit.PERCENT,
        ),
        Field(
            "electric_range_km",
            Part.CHARGE,
            "remainingRangeElectric",
            ("vehicle.drivetrain.electricEngine.kombiRemainingElectricRange",),
            Unit.KM,
        ),
        Field(
            "fuel_litres",
            Part.CHARGE,
            "remainingFuel",
            ("vehicle.drivetrain.fuelSystem.remainingFuel",),
            Unit.LITRE,
            digits=1,
        ),
        Field(
            "fuel_percent", Part.CHARGE, "fuelPercent", ("vehicle.drivetrain.fuelSystem.level",), Unit.PERCENT
        ),
        Field(
            "mileage_km",
            Part.MILEAGE,
            "mileage",
            ("vehicle.vehicle.travelledDistance",),
            Unit.KM,
            sample=23417,
        ),
    )
}


@dataclass(frozen=True)
class CarPosition:
    lat: float | None
    lon: float | None
    heading: float | None = None
    hidden: bool = False  # the car withholds it (its owner's privacy setting, or it is driving)
    impossible: bool = False  # coordinates came that name no place on Earth (NaN, latitude beyond 90...)

    @property
    def usable(self) -> bool:
        return self.lat is not None and self.lon is not None and not self.hidden


@dataclass(frozen=True)
class CarStatus:
    """The car's last known state. None: not reported (a CarData key not streamed yet, or not ticked)."""

    vin: str
    soc: float | None = None  # state of charge, %
    target_soc: float | None = None  # where charging stops, %
    electric_range_km: float | None = None
    fuel_range_km: float | None = None  # only for a car with a tank (the REX)
    fuel_litres: float | None = None
    fuel_percent: float | None = None
    charging: bool = False
    charging_state: str | None = None  # the backend's own word (CHARGING, CHARGINGENDED, FINISHED_NOT_FULL…)
    minutes_left: int | None = None  # until charging ends, while it charges
    plugged_in: bool | None = None
    # Open doors, windows, trunk, hood, as the i Remote API names them (bot/chat/texts/status.py OPEN_NAMES);
    # empty: all closed; None: not reported (CarData streams no per-door state).
    open_items: tuple[str, ...] | None = None
    lock_state: str | None = None  # SECURED, LOCKED, UNLOCKED, SELECTIVE_LOCKED…
    mileage_km: float | None = None
    position: CarPosition | None = None
    end_reason: str | None = None  # why the last charge ended (CHARGING_GOAL_REACHED, CONNECTOR_REMOVAL…)
    end_result: str | None = None  # how it ended (SUCCESS, FAILED…), where the car says
    reported_at: Mapping[Part, datetime] = field(default_factory=dict)  # when the car reported each part
    # What the alerts read besides (bot/alerts.py `Reading.of`):
    locked: bool | None = None  # None: not known; a selective lock is not locked
    waiting: bool = False  # plugged in and waiting for its charging window
    charge_finished: bool = False  # the car's charging state says its last charge finished (FINISHED_…)
    moving: bool = False  # reported while driving (the i Remote API says so; CarData never does)
    parked_at: datetime | None = None  # when the car last reported being parked, locked, or a door moving
    end_reported_at: datetime | None = None  # when the car last said why a charge ended, if it says when
    # A car that reports rarely: as of when its plug and charging state, and its locks, doors and windows, are
    # known (None: until now, as for a polled car or one that streams each change).
    plug_as_of: datetime | None = None
    # ... and from when its plug and charging state are both known as they are: the newer of the two reports
    # (a burst comes a key a message, beside a Refresh's older values).
    plug_from: datetime | None = None
    doors_as_of: datetime | None = None
    newest_report: datetime | None = None  # of any value, a part's or not (None: the newest part's)
    # The whole status is one snapshot (the i Remote API's poll): a value it lacks is unknown rather than
    # not reported yet, and the status has one age, the snapshot's.
    snapshot: bool = False
    # The car reports only now and then (a quiet CarData car: at switch-off and at a full charge), so its
    # values are as old as `reported_at` says, not confirmed since.
    reports_rarely: bool = False
    # A quiet car charging unreported: the level it should be at now (`estimated_soc`), by `charge_rate`.
    estimated_soc: float | None = None
    charge_rate: float | None = None  # % per hour

    @property
    def charging_unreported(self) -> bool:
        """A quiet car known to charge since its last report: that report says it charges, or that it is
        plugged in with a charge about to start or paused (its end not seen)."""
        under_way = self.charging or (self.plugged_in is True and self.charging_state in CHARGE_UNDER_WAY)
        return self.reports_rarely and under_way and self.soc is not None and Part.CHARGE in self.reported_at

    @property
    def updated_at(self) -> datetime | None:
        """The newest report of any value."""
        reports = [*self.reported_at.values(), *([self.newest_report] if self.newest_report else [])]
        return max(reports, default=None)

    @property
    def empty(self) -> bool:
        """Nothing reported yet (a CarData car whose stream has sent nothing and no snapshot was taken)."""
        return not self.reported_at


def with_readings(status: CarStatus, readings: Mapping[str, float | None]) -> CarStatus:
    """`status` with readings of the field table, each by its `Field.name` (bot/backends.py's converters)."""
    changes: dict[str, Any] = dict(readings)  # attributes by name: beyond what a type checker can follow
    return replace(status, **changes)


def charge_rate(sessions: Iterable[ChargeSession]) -> float:
    """The car's charge rate in % per hour: the median of its newest recorded charges (a quiet car's span
    from the report before its charge, so rather too slow than too fast), else DEFAULT_CHARGE_RATE."""
    rates = [
        (s.soc_end - s.soc_start) / s.seconds * 3600
        for s in list(sessions)[:RATE_SESSIONS]
        if s.soc_start is not None
        and s.soc_end is not None
        and s.soc_end > s.soc_start
        and s.seconds >= RATE_MIN_SECONDS
    ]
    return median(rates) if rates else DEFAULT_CHARGE_RATE


def estimated(status: CarStatus, now: datetime, rate: float) -> CarStatus:
    """`status` with the level a quiet car charging unreported should be at `now`: its last reported level
    plus `rate` (% per hour) since that report, at most 100 %. Any other car's status as it is."""
    if not status.charging_unreported or status.soc is None:
        return status
    hours = max(0.0, (now - status.reported_at[Part.CHARGE]).total_seconds() / 3600)
    soc = min(100.0, status.soc + rate * hours)
    return replace(status, estimated_soc=soc, charge_rate=rate)


def charge_over_at(status: CarStatus, rate: float) -> datetime | None:
    """When a quiet car charging unreported should be done: as its last report's own time left says, else
    when its estimated level (`estimated`, at `rate`) reaches 100 %. None for any other car."""
    if not status.charging_unreported or status.soc is None:
        return None
    if status.minutes_left is not None and Part.CHARGING in status.reported_at:
        return status.reported_at[Part.CHARGING] + timedelta(minutes=status.minutes_left)
    return status.reported_at[Part.CHARGE] + timedelta(hours=max(0.0, 100.0 - status.soc) / rate)


@dataclass(frozen=True)
class Refreshed:
    """A status read from the car's backend on the owner's request; `calls_left`: how many more such reads
    today's budget allows (None: no budget, as with the i Remote API)."""

    status: CarStatus
    calls_left: int | None = None


class NoticeKind(StrEnum):
    """What a charge push says (bot/chat/texts/notify.py CHARGE_HEADLINES has a headline for each)."""

    STARTED = "started"
    FULL = "full"  # finished: charged to the target (or full)
    EARLY = "early"  # stopped before the target: by the owner, or with the car's reason
    ERROR = "error"
    INTERRUPTED = "interrupted"  # i Remote: stopped short with the cable still in, for no owner's reason

    @property
    def preference(self) -> str:
        """The /notify switch (a NotifyPrefs field) that governs this push."""
        if self is NoticeKind.STARTED:
            return "started"
        return "interrupted" if self is NoticeKind.INTERRUPTED else "finished"


@dataclass(frozen=True)
class ChargeNotice:
    """A charge push for one owner's car, decided (and written down) by the backend that saw it."""

    kind: NoticeKind
    tg_id: int
    vin: str
    status: CarStatus  # the car as it was when the change was seen
    soc_at_start: float | None = None
    charged_seconds: float | None = None  # ended charges only, when known
    # A quiet car's end BMW did not stream: when the bot read it from the car (bot/cardata/late.py).
    read_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.kind is not NoticeKind.STARTED


@dataclass(frozen=True)
class RelinkNotice:
    """The backend no longer accepts the stored link: nothing is read for this owner until a new /link.
    `username` names the account where it has a name (the i Remote e-mail; None for CarData)."""

    tg_id: int
    username: str | None = None


class StreamBlock(StrEnum):
    """Why BMW lets nothing through a linked CarData account's stream (docs/cardata.md, "Refusals"); neutral,
    as the notice that tells it (`StreamBlocked`) is."""

    HELD = "held"  # CONNACK 5, also after the retry: another app holds the account's one stream
    NOT_CONFIGURED = "not_configured"  # SUBACK 0x80: the stream is not set up in BMW's portal


@dataclass(frozen=True)
class StreamBlocked:
    """BMW lets nothing through the stream of the owner's CarData account, for `reason`: another app (Home
    Assistant, evcc...) holds it and BMW allows one, or it is not set up in BMW's portal."""

    tg_id: int
    reason: StreamBlock


Notice = ChargeNotice | RelinkNotice | StreamBlocked
