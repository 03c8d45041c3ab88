"""What the chat shows of a car and pushes about it, whichever backend reported it.

Both backends produce these (bot/backends.py converts the i Remote API's `VehicleStatus` and CarData's
`CarState`), so the chat never asks which backend a car has. Each part of a status carries the time the car
reported it: a polled i Remote status is one snapshot (every part has its time), CarData's stream sends each
value on its own, so its parts can be of very different ages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Part(StrEnum):
    """The parts of a status whose age is told apart."""

    CHARGE = "charge"  # state of charge, ranges, fuel
    CHARGING = "charging"  # charging state and time left
    PLUG = "plug"
    DOORS = "doors"  # open doors and windows, lock state
    MILEAGE = "mileage"
    POSITION = "position"


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
    # Open doors, windows, trunk, hood, as the i Remote API names them (bot/chat/texts.py OPEN_NAMES);
    # empty: all closed; None: not reported (CarData streams no per-door state).
    open_items: tuple[str, ...] | None = None
    lock_state: str | None = None  # SECURED, LOCKED, UNLOCKED, SELECTIVE_LOCKED…
    mileage_km: int | None = None
    position: CarPosition | None = None
    end_reason: str | None = None  # why the last charge ended (CHARGING_GOAL_REACHED, CONNECTOR_REMOVAL…)
    end_result: str | None = None  # how it ended (SUCCESS, FAILED…), where the car says
    reported_at: Mapping[Part, datetime] = field(default_factory=dict)  # when the car reported each part
    # The car reports only now and then (a quiet CarData car: at switch-off and at a full charge), so its
    # values are as old as `reported_at` says, not confirmed since.
    reports_rarely: bool = False

    @property
    def updated_at(self) -> datetime | None:
        """The newest report of any part."""
        return max(self.reported_at.values(), default=None)

    @property
    def empty(self) -> bool:
        """Nothing reported yet (a CarData car whose stream has sent nothing and no snapshot was taken)."""
        return not self.reported_at


@dataclass(frozen=True)
class Refreshed:
    """A status read from the car's backend on the owner's request; `calls_left`: how many more such reads
    today's budget allows (None: no budget, as with the i Remote API)."""

    status: CarStatus
    calls_left: int | None = None


class NoticeKind(StrEnum):
    """What a charge push says (bot/chat/texts.py CHARGE_HEADLINES has a headline for each)."""

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

    @property
    def ended(self) -> bool:
        return self.kind is not NoticeKind.STARTED


@dataclass(frozen=True)
class RelinkNeeded:
    """The backend no longer accepts the stored link: nothing is read for this owner until a new /link.
    `username` names the account where it has a name (the i Remote e-mail; None for CarData)."""

    tg_id: int
    username: str | None = None


@dataclass(frozen=True)
class StreamHeld:
    """Another app (Home Assistant, evcc...) holds the stream of the owner's CarData account, and BMW allows
    one: nothing arrives until it lets go."""

    tg_id: int


Notice = ChargeNotice | RelinkNeeded | StreamHeld
