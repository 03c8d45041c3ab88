"""One car's last known values, merged from REST and the stream, read as the bot needs them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

from bot.car_status import FIELDS, Field, Unit
from bot.cardata.models.keys import (
    CHARGING_STATUS,
    DOOR_LOCK,
    DOOR_STATUS,
    HEADING,
    HV_STATUS,
    HVPM_FINISH_REASON,
    IS_PLUGGED,
    KM_PER_MILE,
    LAST_CHARGING_RESULT,
    LATITUDE,
    LIVE_ONLY_KEYS,
    LOCKED_STATES,
    LONGITUDE,
    OPEN_WINDOW_STATES,
    PORT_STATUS,
    REASON_CHARGING_END,
    TIME_REMAINING,
    TOTAL_RANGE,
    UNLOCKED_STATES,
    WINDOW_KEYS,
    ChargingStatus,
    HvStatus,
    PortStatus,
)
from bot.cardata.models.telematic import TelematicValue, telematic_values


@dataclass
class CarState:
    """The last known value of each key of one car, each with its timestamp; merged from REST and stream."""

    vin: str
    values: dict[str, TelematicValue] = field(default_factory=dict)

    def merge(self, values: Mapping[str, TelematicValue]) -> set[str]:
        """Take each value unless the stored one is newer (the stream may reorder); the keys changed."""
        changed = set()
        for key, value in values.items():
            old = self.values.get(key)
            if old is not None and old.timestamp and value.timestamp and value.timestamp < old.timestamp:
                continue
            if old != value:
                self.values[key] = value
                changed.add(key)
        return changed

    def to_json(self) -> dict[str, dict[str, str | None]]:
        return {key: value.to_json() for key, value in self.values.items()}

    @classmethod
    def from_json(cls, vin: str, data: Any) -> Self:
        return cls(vin, telematic_values(data))

    def _get(self, *keys: str) -> TelematicValue | None:
        for key in keys:
            value = self.values.get(key)
            if value is not None and value.value is not None:
                return value
        return None

    def _number(self, *keys: str) -> float | None:
        value = self._get(*keys)
        return None if value is None else value.number

    def reading(self, field: Field) -> float | None:
        """A reading of the field table (bot/car_status.py FIELDS): its first key with a value, in the field's
        unit. BMW sends a distance without a unit, which means km; one in miles is converted, one in any
        other unit is no reading."""
        value = self._get(*field.cardata)
        number = None if value is None else value.number
        if number is None or value is None or field.unit is not Unit.KM:
            return number
        unit = (value.unit or "km").strip().lower()
        return number * KM_PER_MILE if unit in ("mi", "miles") else number if unit == "km" else None

    def reported_at(self, *keys: str) -> datetime | None:
        """When the car last reported any of these keys (with a value); None: never."""
        times = [v.timestamp for key in keys if (v := self.values.get(key)) and v.value and v.timestamp]
        return max(times) if times else None

    @property
    def reports_changes(self) -> bool:
        """Whether the car streams each change (iDrive 7 and later), so its values hold until it says
        otherwise. A quiet car (iDrive 6, every i3) reports only at switch-off and at a full charge: its
        values are as of their own times, however old."""
        return any(self._get(key) is not None for key in LIVE_ONLY_KEYS)

    @property
    def updated_at(self) -> datetime | None:
        times = [v.timestamp for v in self.values.values() if v.timestamp is not None]
        return max(times) if times else None

    @property
    def charging_status(self) -> ChargingStatus | str | None:
        value = self._get(CHARGING_STATUS)
        return None if value is None else value.enum(ChargingStatus)

    @property
    def hv_status(self) -> HvStatus | str | None:
        value = self._get(HV_STATUS)
        return None if value is None else value.enum(HvStatus)

    @property
    def is_charging(self) -> bool:
        if self.charging_status is not None:
            return self.charging_status == ChargingStatus.CHARGINGACTIVE
        return self.hv_status == HvStatus.CHARGING

    @property
    def soc(self) -> float | None:
        """State of charge in %: the displayed one, else the battery management's."""
        return self.reading(FIELDS["soc"])

    @property
    def target_soc(self) -> float | None:
        return self.reading(FIELDS["target_soc"])

    @property
    def plugged_in(self) -> bool | None:
        port = self._get(PORT_STATUS)
        if port is not None and port.value in (PortStatus.CONNECTED, PortStatus.DISCONNECTED):
            return port.value == PortStatus.CONNECTED
        plugged = self._get(IS_PLUGGED)
        return None if plugged is None else plugged.boolean

    @property
    def minutes_remaining(self) -> float | None:
        return self._number(TIME_REMAINING)

    @property
    def electric_range_km(self) -> float | None:
        return self.reading(FIELDS["electric_range_km"])

    @property
    def total_range_km(self) -> float | None:
        return self._number(TOTAL_RANGE)

    @property
    def mileage_km(self) -> float | None:
        """The odometer in km."""
        return self.reading(FIELDS["mileage_km"])

    @property
    def fuel_litres(self) -> float | None:
        return self.reading(FIELDS["fuel_litres"])

    @property
    def fuel_percent(self) -> float | None:
        return self.reading(FIELDS["fuel_percent"])

    @property
    def position(self) -> tuple[float, float] | None:
        lat, lon = self._number(LATITUDE), self._number(LONGITUDE)
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return lat, lon

    @property
    def heading(self) -> float | None:
        return self._number(HEADING)

    @property
    def soc_reported_at(self) -> datetime | None:
        """When the car sent the state of charge `soc` is."""
        value = self._get(*FIELDS["soc"].cardata)
        return None if value is None else value.timestamp

    @property
    def end_reason(self) -> str | None:
        """Why the last charge ended: `reasonChargingEnd` (cars from SP25 on) or `hvpmFinishReason` (iDrive 6,
        every i3), the newer where a car sends both."""
        value = self._newest_value(REASON_CHARGING_END, HVPM_FINISH_REASON)
        return None if value is None else value.value

    @property
    def end_reason_reported_at(self) -> datetime | None:
        """When the car sent `end_reason`."""
        value = self._newest_value(REASON_CHARGING_END, HVPM_FINISH_REASON)
        return None if value is None else value.timestamp

    @property
    def last_charging_result(self) -> str | None:
        value = self._get(LAST_CHARGING_RESULT)
        return None if value is None else value.value

    @property
    def door_status(self) -> str | None:
        value = self._get(DOOR_STATUS)
        return None if value is None else value.value

    @property
    def door_lock(self) -> str | None:
        value = self._get(DOOR_LOCK)
        return None if value is None else value.value

    @property
    def lock_state(self) -> str | None:
        """The newer of the lock status (REST snapshots only) and the door status (streamed too): a car
        unlocked since the last snapshot streams its door status alone."""
        return self._newest(DOOR_LOCK, DOOR_STATUS)

    @property
    def locked(self) -> bool | None:
        """Whether the car is locked: LOCKED or SECURED; UNLOCKED and a selective lock are not; None for a
        state not known (yet)."""
        state = (self.lock_state or "").upper()
        return True if state in LOCKED_STATES else False if state in UNLOCKED_STATES else None

    @property
    def open_windows(self) -> tuple[str, ...] | None:
        """The open (or part open) windows by their i Remote names; None when the car reported none."""
        reported = {name: value for key, name in WINDOW_KEYS.items() if (value := self._get(key)) is not None}
        if not reported:
            return None
        return tuple(n for n, v in reported.items() if (v.value or "").upper() in OPEN_WINDOW_STATES)

    def _newest(self, *keys: str) -> str | None:
        value = self._newest_value(*keys)
        return None if value is None else value.value

    def _newest_value(self, *keys: str) -> TelematicValue | None:
        known = [v for v in (self._get(key) for key in keys) if v is not None]
        if not known:
            return None
        epoch = datetime.min.replace(tzinfo=UTC)
        return max(known, key=lambda v: v.timestamp or epoch)
