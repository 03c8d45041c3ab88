"""What a car backend is called and what its cars can do: the one place both are named.

`BackendName` values are what the store keeps in `users.backend` and what CAR_BACKENDS lists, so they never
change. A car's capabilities (`StoredVehicle.capabilities`) are strings: the i Remote API's own flag names
(bot/bmw/models/vehicle.py `CAPABILITY_FLAGS`, e.g. "doorLock") and ours below; a StrEnum member equals its
string, so `Capability.RANGE_MAP in car.capabilities` reads either.
"""

from __future__ import annotations

from enum import StrEnum


class BackendName(StrEnum):
    IREMOTE = "iremote"  # the i Remote API: e-mail and password, polled, remote commands (bot/iremote.py)
    CARDATA = "cardata"  # BMW CarData: OAuth device flow, read-only, streamed (bot/cardata_backend.py)


class Capability(StrEnum):
    STATUS = "status"  # a status can be shown
    POSITION = "position"  # the status may carry the car's position
    STATUS_STREAM = "statusStream"  # the status is what the car last pushed (each part with its own age)
    RANGE_ESTIMATE = "rangeEstimate"  # no range polylines: a ring estimated from the electric range
    CHARGING_HISTORY = "chargingHistory"  # past charging sessions (CarData's chargingHistory)
    # Asked of the car on demand: trips, places, range polylines, the charging schedule, remote commands. A
    # backend's, not a car's: each car says which of them it has by the i Remote API's flags.
    CAR_CALLS = "carCalls"
    RANGE_MAP = "rangeMap"  # the i Remote API's flag: range polylines


CARDATA_CAPABILITIES = frozenset(
    {
        Capability.STATUS,
        Capability.POSITION,
        Capability.STATUS_STREAM,
        Capability.RANGE_ESTIMATE,
        Capability.CHARGING_HISTORY,
    }
)
