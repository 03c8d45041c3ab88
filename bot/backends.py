"""The car backends' seam: the `Backend` protocol the garage asks, both backends' statuses converted into the
neutral shapes of bot/car_status.py (the BMW CarData backend itself: bot/cardata_backend.py).

A linked account has one backend (the store's `users.backend`, a `BackendName` of bot/capabilities.py): the
i Remote API (`IRemoteBackend`, bot/iremote.py) or BMW CarData (`CarDataBackend`, bot/cardata_backend.py,
over bot/cardata/). Neither the garage nor the chat asks which: they ask capabilities, the backend's
(`Backend.capabilities`) or a car's (`StoredVehicle.capabilities`: the i Remote API's flag names, e.g.
"doorLock"; CarData cars get `CARDATA_CAPABILITIES`).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol, runtime_checkable

from bot.bmw.models import VehicleStatus
from bot.capabilities import BackendName
from bot.car_status import (
    FIELDS,
    CarPosition,
    CarStatus,
    Part,
    Refreshed,
    with_readings,
)
from bot.cardata import models as cd
from bot.cardata.errors import BudgetSpent
from bot.cardata.models import CarState, ChargingSession
from bot.history import BMW_HISTORY, ChargeSession

log = logging.getLogger(__name__)


@runtime_checkable
class Backend(Protocol):
    """What the garage needs of a car backend, whichever it is. Linking differs (e-mail and password, or a
    device code) and stays with each; so do what only one offers behind a capability (the i Remote API's
    `CAR_CALLS`). A new backend: docs/where-to-change.md."""

    @property
    def name(self) -> BackendName:
        """As stored in users.backend."""

    @property
    def capabilities(self) -> frozenset[str]:
        """The most any of its cars can have; a car's own set may be smaller."""

    async def start(self) -> None:
        """At start, once the garage's push path is set (a stream starts listening)."""

    async def aclose(self) -> None: ...
    async def unlink(self, owner: int) -> None:
        """Let go of the owner's link (sessions, streams, BMW's side); the garage wipes the rows."""

    def account_name(self, owner: int) -> str | None:
        """What names the linked account to its owner; None when it has no name."""

    async def read(self, owner: int, vin: str) -> CarStatus:
        """What the car last reported, in the neutral shape."""

    async def refresh(self, owner: int, vin: str, *, own: bool) -> Refreshed:
        """A status fresh from BMW on request; `own`: asked by the owner (not a person it is shared with),
        whose budget, where there is one, it may spend."""

    def calls_spent(self, owner: int) -> BudgetSpent | None:
        """Why the owner has no Refresh left today; None while they have one, and without a budget."""

    async def charging_history(
        self, owner: int, vin: str, days: int, *, spend: bool
    ) -> list[ChargingSession] | None:
        """BMW's own charging sessions of the last `days` days, newest first (`CHARGING_HISTORY`); without
        `spend`, only what was fetched lately (None when nothing was): no call of the owner's budget."""


# --- statuses in the neutral shape --------------------------------------------------------------------------

# i Remote updateReason values of a car that was parked (not VEHICLE_MOVING, not a charging report).
PARKED_REASONS = frozenset(
    {
        "VEHICLE_SHUTDOWN",
        "VEHICLE_SHUTDOWN_SECURED",
        "VEHICLE_SECURED",
        "VEHICLE_UNSECURED",
        "DOOR_STATE_CHANGED",
    }
)
MOVING = "VEHICLE_MOVING"


def from_vehicle_status(vin: str, s: VehicleStatus) -> CarStatus:
    """An i Remote status: one snapshot, so every reported part has the snapshot's time."""
    has_tank = bool(s.max_fuel or s.remaining_range_fuel or s.remaining_fuel)  # real BEVs report 0 l of fuel
    position = None
    if s.position is not None:
        p = s.position
        position = CarPosition(
            p.lat, p.lon, p.heading, hidden=p.status not in (None, "OK"), impossible=p.impossible
        )
    readings = {field.name: s.reading(field.iremote) for field in FIELDS.values() if field.iremote}
    if not has_tank:
        readings.update(fuel_litres=None, fuel_percent=None)
    neutral = CarStatus(
        vin=vin,
        fuel_range_km=s.remaining_range_fuel if has_tank else None,
        charging=s.is_charging,
        charging_state=s.charging_status,
        minutes_left=s.charging_time_remaining,
        plugged_in=None if s.connection_status is None else s.is_plugged_in,
        open_items=tuple(s.open_items),
        lock_state=s.door_lock_state,
        locked=None if s.door_lock_state is None else s.door_lock_state != "UNLOCKED",
        waiting=s.charging_status == "WAITING_FOR_CHARGING",
        charge_finished=(s.charging_status or "").startswith("FINISHED_"),
        moving=s.update_reason == MOVING,
        parked_at=s.update_time if s.update_reason in PARKED_REASONS else None,
        position=position,
        end_reason=s.last_charging_end_reason,
        end_result=s.last_charging_end_result,
        reported_at={} if s.update_time is None else dict.fromkeys(Part, s.update_time),
        snapshot=True,
    )
    return with_readings(neutral, readings)


# The CarData keys each part of a status is read from (its age: the newest of them): the field table's of
# that part, and those of the readings composed here.
_COMPOSED_PART_KEYS: dict[Part, tuple[str, ...]] = {
    Part.CHARGE: (cd.TOTAL_RANGE,),
    Part.CHARGING: cd.CHARGING_KEYS,
    Part.PLUG: cd.PLUG_KEYS,
    Part.DOORS: cd.DOOR_KEYS,
    Part.POSITION: (cd.LATITUDE, cd.LONGITUDE),
}
_PART_KEYS: dict[Part, tuple[str, ...]] = {
    part: (
        *(key for field in FIELDS.values() if field.part is part for key in field.cardata),
        *_COMPOSED_PART_KEYS.get(part, ()),
    )
    for part in Part
}


def from_car_state(vin: str, state: CarState | None) -> CarStatus:
    """What CarData's stream and snapshots last said, each part as old as the car's newest report of it."""
    if state is None:
        return CarStatus(vin=vin)
    reported = {part: at for part, keys in _PART_KEYS.items() if (at := state.reported_at(*keys)) is not None}
    has_tank = state.fuel_litres is not None or state.fuel_percent is not None
    electric, total = state.electric_range_km, state.total_range_km
    fuel_range = None  # the REX: its total range less the electric one
    if has_tank and total is not None and electric is not None:
        fuel_range = max(0.0, total - electric)
    has_tank = bool(fuel_range or state.fuel_litres)  # a BEV may report 0 for a tank it does not have
    status = state.charging_status or state.hv_status
    lat_lon = state.position
    # The last change of its door (lock) status stands for parking: CarData streams no "moving".
    parked = state.values.get(cd.DOOR_STATUS) or state.values.get(cd.DOOR_LOCK)
    quiet = not state.reports_changes
    minutes = state.minutes_remaining
    readings = {field.name: state.reading(field) for field in FIELDS.values()}
    if not has_tank:
        readings.update(fuel_litres=None, fuel_percent=None)
    neutral = CarStatus(
        vin=vin,
        fuel_range_km=fuel_range if has_tank else None,
        charging=state.is_charging,
        charging_state=None if status is None else str(status),
        minutes_left=round(minutes) if state.is_charging and minutes is not None and minutes > 0 else None,
        plugged_in=True if state.is_charging else state.plugged_in,
        # CarData streams the windows but no door's own state: only an open window is worth saying.
        open_items=state.open_windows or None,
        lock_state=state.lock_state,
        locked=state.locked,
        # Better no "not charging" alert than one for a car waiting for its window.
        waiting=state.charging_status == cd.ChargingStatus.CHARGINGPAUSED,
        charge_finished=str(state.hv_status or "").startswith("FINISHED_"),
        parked_at=None if parked is None else parked.timestamp,
        end_reported_at=state.reported_at(cd.REASON_CHARGING_END, cd.HVPM_FINISH_REASON),
        plug_as_of=_oldest(state, cd.PLUG_KEYS, cd.CHARGING_KEYS) if quiet else None,
        plug_from=state.reported_at(*cd.PLUG_KEYS, *cd.CHARGING_KEYS) if quiet else None,
        doors_as_of=_oldest(state, cd.DOOR_KEYS, tuple(cd.WINDOW_KEYS)) if quiet else None,
        newest_report=state.updated_at,
        position=None if lat_lon is None else CarPosition(lat_lon[0], lat_lon[1], state.heading),
        end_reason=state.end_reason,
        end_result=state.last_charging_result,
        reported_at=reported,
        reports_rarely=quiet,
    )
    return with_readings(neutral, readings)


def _oldest(state: CarState, *groups: tuple[str, ...]) -> datetime | None:
    """The oldest of the groups' newest reports: as of when all of them are known (unreported: left out)."""
    return min((t for keys in groups if (t := state.reported_at(*keys)) is not None), default=None)


def from_bmw_history(tg_id: int, vin: str, session: ChargingSession) -> ChargeSession | None:
    """A charge of BMW's own CarData charging history (kWh measured from the grid); None when BMW gave no
    start, or the charge is still running (BMW lists it without an end). How it ended is unknown (""),
    unless `merge` finds it recorded."""
    if session.start is None or session.end is None:
        return None
    started, ended = session.start.timestamp(), session.end.timestamp()
    return ChargeSession(
        tg_id=tg_id,
        vin=vin,
        started_at=started,
        ended_at=ended,
        soc_start=session.start_soc,
        soc_end=session.end_soc,
        energy_kwh=session.energy_kwh,
        ended="",
        reason=None,
        lat=None,
        lon=None,
        source=BMW_HISTORY,
    )
