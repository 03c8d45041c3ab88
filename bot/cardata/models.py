"""Typed views of BMW CarData's JSON: the device flow, tokens, REST bodies and stream messages.

Tolerant inside, strict at the top (as in bot/bmw/models/): a missing or mistyped field becomes None, an
unknown enum value is kept as its raw string, but a body that is not the documented shape at all raises
`BadResponse`. Telematic values arrive as strings with a unit and a timestamp (`{"value": "80", "unit": "%",
"timestamp": "..."}`); `TelematicValue` keeps the string and parses it on demand, so a value the bot does not
understand yet is never lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self, TypeVar

from bot.cardata.errors import BadResponse

# --- the telematic keys the bot reads -----------------------------------------------------------------------

CHARGING_STATUS = "vehicle.drivetrain.electricEngine.charging.status"
HV_STATUS = "vehicle.drivetrain.electricEngine.charging.hvStatus"
SOC_HEADER = "vehicle.drivetrain.batteryManagement.header"
SOC_DISPLAYED = "vehicle.powertrain.electric.battery.stateOfCharge.displayed"
SOC_TARGET = "vehicle.powertrain.electric.battery.stateOfCharge.target"
PORT_STATUS = "vehicle.body.chargingPort.status"
IS_PLUGGED = "vehicle.powertrain.tractionBattery.charging.port.anyPosition.isPlugged"
TIME_REMAINING = "vehicle.drivetrain.electricEngine.charging.timeRemaining"
ELECTRIC_RANGE = "vehicle.drivetrain.electricEngine.kombiRemainingElectricRange"
TOTAL_RANGE = "vehicle.drivetrain.lastRemainingRange"
MILEAGE = "vehicle.vehicle.travelledDistance"
FUEL_LITRES = "vehicle.drivetrain.fuelSystem.remainingFuel"
FUEL_PERCENT = "vehicle.drivetrain.fuelSystem.level"
LATITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.latitude"
LONGITUDE = "vehicle.cabin.infotainment.navigation.currentLocation.longitude"
HEADING = "vehicle.cabin.infotainment.navigation.currentLocation.heading"
REASON_CHARGING_END = "vehicle.drivetrain.electricEngine.charging.reasonChargingEnd"
HVPM_FINISH_REASON = "vehicle.drivetrain.electricEngine.charging.hvpmFinishReason"  # iDrive 6 cars (i3)
LAST_CHARGING_RESULT = "vehicle.drivetrain.electricEngine.charging.lastChargingResult"
DOOR_STATUS = "vehicle.cabin.door.status"
DOOR_LOCK = "vehicle.cabin.door.lock.status"
# Each window's state (CLOSED, OPEN, INTERMEDIATE), by the i Remote API's name for it (texts.OPEN_NAMES).
WINDOW_KEYS = {
    "vehicle.cabin.window.row1.driver.status": "windowDriverFront",
    "vehicle.cabin.window.row1.passenger.status": "windowPassengerFront",
    "vehicle.cabin.window.row2.driver.status": "windowDriverRear",
    "vehicle.cabin.window.row2.passenger.status": "windowPassengerRear",
}

# The keys of the plug, the charging state and the doors (each part's age: the newest of them).
PLUG_KEYS = (PORT_STATUS, IS_PLUGGED)
CHARGING_KEYS = (CHARGING_STATUS, HV_STATUS, TIME_REMAINING)
DOOR_KEYS = (DOOR_STATUS, DOOR_LOCK)
# Keys only a car that streams each change sends (iDrive 7 and later): an i3 has no charge target and no
# reasonChargingEnd (docs/cardata.md, "What the simulator reproduces").
LIVE_ONLY_KEYS = (SOC_TARGET, REASON_CHARGING_END)

# What the bot's container asks for: status, charge events and position.
BOT_KEYS: tuple[str, ...] = (
    CHARGING_STATUS,
    HV_STATUS,
    SOC_HEADER,
    SOC_DISPLAYED,
    SOC_TARGET,
    PORT_STATUS,
    IS_PLUGGED,
    TIME_REMAINING,
    ELECTRIC_RANGE,
    TOTAL_RANGE,
    MILEAGE,
    FUEL_LITRES,
    FUEL_PERCENT,
    LATITUDE,
    LONGITUDE,
    HEADING,
    REASON_CHARGING_END,
    HVPM_FINISH_REASON,
    LAST_CHARGING_RESULT,
    DOOR_STATUS,
    DOOR_LOCK,
    *WINDOW_KEYS,
)


class ChargingStatus(StrEnum):
    NOCHARGING = "NOCHARGING"
    INITIALIZATION = "INITIALIZATION"
    CHARGINGACTIVE = "CHARGINGACTIVE"
    CHARGINGPAUSED = "CHARGINGPAUSED"
    CHARGINGENDED = "CHARGINGENDED"
    CHARGINGERROR = "CHARGINGERROR"


class HvStatus(StrEnum):
    CHARGING = "CHARGING"
    FINISHED_FULLY_CHARGED = "FINISHED_FULLY_CHARGED"
    FINISHED_NOT_FULL = "FINISHED_NOT_FULL"
    INVALID = "INVALID"


class PortStatus(StrEnum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class MappingType(StrEnum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


# The streamed door status says LOCKED, UNLOCKED, SELECTIVELOCKED (the driver's door open to the key) or
# SECURED; the REST-only lock status writes the selective lock SELECTIVE-LOCKED. Only two of them are locked.
LOCKED_STATES = frozenset({"LOCKED", "SECURED"})
UNLOCKED_STATES = frozenset({"UNLOCKED", "SELECTIVELOCKED", "SELECTIVE-LOCKED", "SELECTIVE_LOCKED"})
OPEN_WINDOW_STATES = frozenset({"OPEN", "INTERMEDIATE"})  # INTERMEDIATE: part open
MILES_TO_KM = 1.609344
# A charge that reached its goal, in hvpmFinishReason's words and in reasonChargingEnd's (SP25).
GOAL_REACHED_REASONS = frozenset({"CHARGING_GOAL_REACHED", "HV_BATTERY_FULLY_CHARGED"})


class StreamBlock(StrEnum):
    """Why BMW lets nothing through a linked account's stream (docs/cardata.md, "Refusals")."""

    HELD = "held"  # CONNACK 5, also after the retry: another app holds the account's one stream
    NOT_CONFIGURED = "not_configured"  # SUBACK 0x80: the stream is not set up in BMW's portal


_E = TypeVar("_E", bound=StrEnum)
TRUE_STRINGS = frozenset({"true", "1", "yes", "on"})
FALSE_STRINGS = frozenset({"false", "0", "no", "off"})
REFRESH_LIFETIME = 14 * 24 * 3600.0  # BMW's refresh tokens last two weeks
TOKEN_LIFETIME = 3600.0  # access and id tokens: one hour
# No charge lasts longer (an i3 from empty at 2.3 kW: under a day); a longer duration from BMW is no duration.
MAX_CHARGE_SECONDS = 7 * 24 * 3600.0
MAX_MILEAGE = 10_000_000  # km or mi; more is no mileage
KM_PER_MILE = 1.609344


# --- tolerant readers ---------------------------------------------------------------------------------------


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    return _number(data.get(key))


def _within(value: float | None, low: float, high: float) -> float | None:
    """`value` when it lies in [low, high], else None: a number no car can mean is not shown as one."""
    return value if value is not None and low <= value <= high else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = _float(data, key)
    return None if value is None or abs(value) > 2**53 else round(value)


def _datetime(value: Any) -> datetime | None:
    """ISO 8601 text (naive read as UTC) or epoch seconds."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    seconds = _number(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _enum(enum: type[_E], value: str | None) -> _E | str | None:
    """The enum member when known, else the raw string: a new server value must never be fatal."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return value


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object for {what}")
    return body


# --- device flow and tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCode:
    """The answer to `/device/code`: what the owner must open and type, and how to poll."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float  # epoch seconds
    interval: float  # seconds between token polls

    @property
    def url(self) -> str:
        """The link to show: the complete form (user code filled in) where BMW gives one."""
        return self.verification_uri_complete or self.verification_uri

    @classmethod
    def from_api(cls, body: Any, *, now: float) -> Self:
        data = _object(body, "the device code")
        device_code, user_code = _str(data, "device_code"), _str(data, "user_code")
        uri = _str(data, "verification_uri")
        if not (device_code and user_code and uri):
            raise BadResponse("the device code answer lacks device_code, user_code or verification_uri")
        expires_in = _float(data, "expires_in")
        interval = _float(data, "interval")
        return cls(
            device_code=device_code,
            user_code=user_code,
            verification_uri=uri,
            verification_uri_complete=_str(data, "verification_uri_complete"),
            expires_at=now + (expires_in if expires_in is not None and expires_in > 0 else 300.0),
            interval=interval if interval is not None and 0 < interval <= 300 else 5.0,
        )


@dataclass(frozen=True)
class Tokens:
    """An owner's tokens: access (REST, 1 h), id (the MQTT password, 1 h), refresh (2 weeks), and gcid."""

    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    gcid: str
    expires_at: float  # access and id token, epoch seconds
    refresh_expires_at: float

    @classmethod
    def from_api(cls, body: Any, *, now: float, previous: Tokens | None = None) -> Self:
        """A token answer; a refresh answer that omits the gcid or refresh token keeps `previous`'s."""
        data = _object(body, "the token answer")
        access, id_token = _str(data, "access_token"), _str(data, "id_token")
        refresh = _str(data, "refresh_token") or (previous.refresh_token if previous else None)
        gcid = _str(data, "gcid") or (previous.gcid if previous else None)
        if not (access and id_token and refresh and gcid):
            raise BadResponse("the token answer lacks access_token, id_token, refresh_token or gcid")
        expires_in = _float(data, "expires_in")
        refresh_in = _float(data, "refresh_expires_in")
        renewed_refresh = _str(data, "refresh_token") is not None
        if refresh_in is not None and refresh_in > 0:
            refresh_expires_at = now + refresh_in
        elif renewed_refresh or previous is None:
            refresh_expires_at = now + REFRESH_LIFETIME
        else:
            refresh_expires_at = previous.refresh_expires_at
        return cls(
            access_token=access,
            id_token=id_token,
            refresh_token=refresh,
            gcid=gcid,
            expires_at=now + (expires_in if expires_in is not None and expires_in > 0 else TOKEN_LIFETIME),
            refresh_expires_at=refresh_expires_at,
        )


# --- REST bodies --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VehicleMapping:
    vin: str
    mapping_type: MappingType | str | None
    mapped_since: datetime | None

    @property
    def primary(self) -> bool:
        """Only a car mapped to the owner as PRIMARY user gives data."""
        return self.mapping_type == MappingType.PRIMARY

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        """The live endpoint answers a JSON array, BMW's spec one object: both are read."""
        if isinstance(body, dict):
            inner = body.get("mappings")
            items: list[Any] = inner if isinstance(inner, list) else [body]
        elif isinstance(body, list):
            items = body
        else:
            raise BadResponse("expected the vehicle mappings as a list")
        mappings = []
        for item in items:
            if isinstance(item, dict) and (vin := _str(item, "vin")):
                mappings.append(
                    cls(
                        vin=vin,
                        mapping_type=_enum(MappingType, _str(item, "mappingType")),
                        mapped_since=_datetime(item.get("mappedSince")),
                    )
                )
        return mappings


@dataclass(frozen=True)
class Container:
    container_id: str
    name: str | None
    purpose: str | None
    state: str | None  # ACTIVE, or DELETED (older answers: INACTIVE)
    descriptors: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.state is None or self.state.upper() == "ACTIVE"

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _object(body, "a container")
        container_id = _str(data, "containerId")
        if not container_id:
            raise BadResponse("a container without containerId")
        descriptors = data.get("technicalDescriptors")
        return cls(
            container_id=container_id,
            name=_str(data, "name"),
            purpose=_str(data, "purpose"),
            state=_str(data, "state"),
            descriptors=tuple(d for d in descriptors if isinstance(d, str))
            if isinstance(descriptors, list)
            else (),
        )

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        """`{"containers": [...]}` or a bare array; entries without an id are skipped."""
        items = body.get("containers") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise BadResponse("expected a list of containers")
        return [
            cls.from_api(item)
            for item in items
            if isinstance(item, dict) and isinstance(item.get("containerId"), str) and item["containerId"]
        ]


@dataclass(frozen=True)
class TelematicValue:
    """One key's reading as BMW sends it: the string, its unit and when the car measured it."""

    value: str | None
    unit: str | None = None
    timestamp: datetime | None = None

    @classmethod
    def from_api(cls, data: Any) -> Self | None:
        if not isinstance(data, dict):
            return None
        raw = data.get("value")
        if isinstance(raw, bool):
            value: str | None = "true" if raw else "false"
        elif isinstance(raw, str):
            value = raw
        elif isinstance(raw, int | float) and _number(raw) is not None:
            value = str(raw)
        else:
            value = None
        return cls(value=value, unit=_str(data, "unit"), timestamp=_datetime(data.get("timestamp")))

    @property
    def number(self) -> float | None:
        return _number(self.value)

    @property
    def integer(self) -> int | None:
        number = self.number
        return None if number is None or abs(number) > 2**53 else round(number)

    @property
    def boolean(self) -> bool | None:
        text = (self.value or "").strip().lower()
        return True if text in TRUE_STRINGS else False if text in FALSE_STRINGS else None

    def enum(self, enum: type[_E]) -> _E | str | None:
        return _enum(enum, self.value)

    def to_json(self) -> dict[str, str | None]:
        return {
            "value": self.value,
            "unit": self.unit,
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
        }


def _values(data: Any) -> dict[str, TelematicValue]:
    if not isinstance(data, dict):
        return {}
    values = {}
    for key, raw in data.items():
        parsed = TelematicValue.from_api(raw)
        if isinstance(key, str) and parsed is not None:
            values[key] = parsed
    return values


def telematic_data_from_api(body: Any) -> dict[str, TelematicValue]:
    """`GET …/telematicData`: `{"telematicData": {key: {value, unit, timestamp}}}`."""
    data = _object(body, "telematic data")
    inner = data.get("telematicData")
    if not isinstance(inner, dict):
        raise BadResponse("expected 'telematicData' to be a JSON object")
    return _values(inner)


@dataclass(frozen=True)
class StreamMessage:
    """A message: `{"vin", "entityId", "topic", "timestamp", "data": {key: {timestamp, value, unit}}}`"""

    vin: str
    timestamp: datetime | None
    values: dict[str, TelematicValue]

    @classmethod
    def from_api(cls, body: Any, *, topic_vin: str | None = None) -> Self:
        """`topic_vin`, the VIN of the topic `{gcid}/{vin}` it came on, wins over the body's: the broker
        decides what reaches whom by topic, so a body naming another car must not write into that one."""
        data = _object(body, "a stream message")
        vin = topic_vin or _str(data, "vin")
        if not vin:
            raise BadResponse("a stream message without a VIN")
        return cls(vin=vin, timestamp=_datetime(data.get("timestamp")), values=_values(data.get("data")))


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
        return cls(vin, _values(data))

    def _get(self, *keys: str) -> TelematicValue | None:
        for key in keys:
            value = self.values.get(key)
            if value is not None and value.value is not None:
                return value
        return None

    def _number(self, *keys: str) -> float | None:
        value = self._get(*keys)
        return None if value is None else value.number

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
        return self._number(SOC_DISPLAYED, SOC_HEADER)

    @property
    def target_soc(self) -> float | None:
        return self._number(SOC_TARGET)

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
        return self._number(ELECTRIC_RANGE)

    @property
    def total_range_km(self) -> float | None:
        return self._number(TOTAL_RANGE)

    @property
    def mileage_km(self) -> float | None:
        """The odometer in km: BMW sends it without a unit, which means km; one in miles is converted."""
        value = self._get(MILEAGE)
        number = None if value is None else value.number
        if number is None or value is None:
            return None
        unit = (value.unit or "km").strip().lower()
        return number * MILES_TO_KM if unit in ("mi", "miles") else number if unit == "km" else None

    @property
    def fuel_litres(self) -> float | None:
        return self._number(FUEL_LITRES)

    @property
    def fuel_percent(self) -> float | None:
        return self._number(FUEL_PERCENT)

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
        value = self._get(SOC_DISPLAYED, SOC_HEADER)
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


# --- charging history and basic data ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargingSession:
    """One charge of BMW's history; a charge still running comes without `endTime` (Guide §3.4)."""

    start: datetime | None
    end: datetime | None
    start_soc: float | None
    end_soc: float | None
    energy_kwh: float | None  # drawn from the grid
    duration_seconds: float | None
    mileage_km: int | None = None  # when it began; BMW sends an integer in `mileageUnits` (KM or MI)

    @property
    def running(self) -> bool:
        return self.end is None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        mileage = _within(_float(data, "mileage"), 0, MAX_MILEAGE)
        if mileage is not None and (_str(data, "mileageUnits") or "KM").upper() == "MI":
            mileage *= KM_PER_MILE
        return cls(
            start=_datetime(data.get("startTime")),
            end=_datetime(data.get("endTime")),
            start_soc=_float(data, "displayedStartSoc"),
            end_soc=_float(data, "displayedSoc"),
            energy_kwh=_float(data, "energyConsumedFromPowerGridKwh"),
            duration_seconds=_within(_float(data, "totalChargingDurationSec"), 0, MAX_CHARGE_SECONDS),
            mileage_km=None if mileage is None else round(mileage),
        )


@dataclass(frozen=True)
class ChargingHistory:
    sessions: list[ChargingSession]
    next_token: str | None  # pass back for the next page; None on the last one

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _object(body, "the charging history")
        items = data.get("data")
        if not isinstance(items, list):
            raise BadResponse("expected 'data' to be a list of charging sessions")
        return cls(
            sessions=[ChargingSession.from_api(item) for item in items if isinstance(item, dict)],
            next_token=_str(data, "next_token") or _str(data, "nextToken") or None,
        )


@dataclass(frozen=True)
class BasicData:
    vin: str | None
    brand: str | None  # BMW, BMWi, BMW Motorrad, MINI, Rolls-Royce, Toyota-Supra
    model_name: str | None
    drive_train: str | None
    propulsion_type: str | None
    battery_kwh: float | None  # hvsMaxEnergyAbsolute, sent as a string

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _object(body, "basic data")
        return cls(
            vin=_str(data, "vin"),
            brand=_str(data, "brand"),
            model_name=_str(data, "modelName"),
            drive_train=_str(data, "driveTrain"),
            propulsion_type=_str(data, "propulsionType"),
            battery_kwh=_float(data, "hvsMaxEnergyAbsolute"),
        )


def primary_vins(mappings: Iterable[VehicleMapping]) -> list[str]:
    """The cars that give data, in BMW's order, each once."""
    return list(dict.fromkeys(m.vin for m in mappings if m.primary))
