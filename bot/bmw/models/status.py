"""The car's status: charge, range, doors and windows, position."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from bot.bmw.models._read import _datetime, _dict, _float, _int, _point, _top
from bot.values import str_of

_OPEN_STATES = frozenset({"OPEN", "INTERMEDIATE"})
_DOOR_KEYS = ("doorDriverFront", "doorDriverRear", "doorPassengerFront", "doorPassengerRear")
# The sunroof is reported among the windows: an open roof is what a user asks "is anything open?" about.
_WINDOW_KEYS = (
    "windowDriverFront",
    "windowDriverRear",
    "windowPassengerFront",
    "windowPassengerRear",
    "sunroof",
)


@dataclass(frozen=True)
class Position:
    lat: float | None
    lon: float | None
    heading: int | None
    status: str | None  # "OK", "DRIVER_DISABLED", "VEHICLE_ACTIVE"...
    # BMW sent coordinates that name no place (NaN, a latitude beyond 90...): lat and lon are then None.
    impossible: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        point = _point(data)
        sent = data.get("lat") is not None or data.get("lon") is not None
        lat, lon = point or (None, None)
        return cls(lat, lon, _int(data, "heading"), str_of(data, "status"), impossible=sent and point is None)

    @property
    def usable(self) -> bool:
        return self.lat is not None and self.lon is not None and self.status in (None, "OK")


@dataclass(frozen=True)
class VehicleStatus:
    vin: str | None
    update_time: datetime | None
    update_reason: str | None
    door_lock_state: str | None
    doors: dict[str, str]
    windows: dict[str, str]
    trunk: str | None
    hood: str | None
    rear_window: str | None
    convertible_roof: str | None
    charging_level_hv: float | None  # percent
    remaining_range_electric: float | None  # km
    max_range_electric: float | None
    remaining_range_fuel: float | None
    remaining_fuel: float | None  # litres
    max_fuel: float | None
    connection_status: str | None
    charging_status: str | None
    charging_time_remaining: int | None  # minutes, only while charging
    last_charging_end_reason: str | None
    last_charging_end_result: str | None
    position: Position | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    # The same ranges in miles, as BMW computes them (…Mls fields), where the car reports them.
    remaining_range_electric_mls: float | None = None
    remaining_range_fuel_mls: float | None = None

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _top(body, "vehicleStatus")
        position = _dict(data, "position")
        return cls(
            vin=str_of(data, "vin"),
            update_time=_datetime(data, "updateTime"),
            update_reason=str_of(data, "updateReason"),
            door_lock_state=str_of(data, "doorLockState"),
            doors={key: data[key] for key in _DOOR_KEYS if isinstance(data.get(key), str)},
            windows={key: data[key] for key in _WINDOW_KEYS if isinstance(data.get(key), str)},
            trunk=str_of(data, "trunk"),
            hood=str_of(data, "hood"),
            rear_window=str_of(data, "rearWindow"),
            convertible_roof=str_of(data, "convertibleRoofState"),
            charging_level_hv=_float(data, "chargingLevelHv"),
            remaining_range_electric=_float(data, "remainingRangeElectric"),
            max_range_electric=_float(data, "maxRangeElectric"),
            remaining_range_fuel=_float(data, "remainingRangeFuel"),
            remaining_fuel=_float(data, "remainingFuel"),
            max_fuel=_float(data, "maxFuel"),
            connection_status=str_of(data, "connectionStatus"),
            charging_status=str_of(data, "chargingStatus"),
            charging_time_remaining=_int(data, "chargingTimeRemaining"),
            last_charging_end_reason=str_of(data, "lastChargingEndReason"),
            last_charging_end_result=str_of(data, "lastChargingEndResult"),
            position=None if position is None else Position.from_api(position),
            raw=data,
            remaining_range_electric_mls=_float(data, "remainingRangeElectricMls"),
            remaining_range_fuel_mls=_float(data, "remainingRangeFuelMls"),
        )

    def reading(self, key: str) -> float | None:
        """A number of the body by its key (the field table's, bot/car_status.py FIELDS)."""
        return _float(self.raw, key)

    @property
    def open_items(self) -> list[str]:
        """API keys of the doors, windows, trunk and hood that are OPEN or INTERMEDIATE."""
        items = {**self.doors, **self.windows, "trunk": self.trunk, "hood": self.hood}
        return [key for key, state in items.items() if state in _OPEN_STATES]

    @property
    def is_charging(self) -> bool:
        return self.charging_status == "CHARGING"

    @property
    def is_plugged_in(self) -> bool:
        return self.connection_status == "CONNECTED" or self.is_charging
