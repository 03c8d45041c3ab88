"""Typed views of the BMW i Remote API's JSON bodies.

Tolerant inside, strict at the top: real cars omit many fields (a conventional car sends 4–6 keys, a
PHEV sends `lastTrip: {}`), so a missing or mistyped field becomes None and an unknown enum value is kept
as its raw string. But a body that is not a JSON object, or lacks its documented top-level key, is not
this API at all and raises `BadResponse`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Self, TypeVar

from bot.bmw.errors import BadResponse


class Region(StrEnum):
    REST_OF_WORLD = "rest_of_world"
    USA = "usa"
    CHINA = "china"


# The three servers of the reference (Canadian accounts use the USA one).
SERVERS: dict[Region, str] = {
    Region.REST_OF_WORLD: "https://b2vapi.bmwgroup.com",
    Region.USA: "https://b2vapi.bmwgroup.us",
    Region.CHINA: "https://b2vapi.bmwgroup.cn:8592",
}


class ServiceType(StrEnum):
    CHARGE_NOW = "CHARGE_NOW"
    CLIMATE_NOW = "CLIMATE_NOW"
    DOOR_LOCK = "DOOR_LOCK"
    DOOR_UNLOCK = "DOOR_UNLOCK"
    LIGHT_FLASH = "LIGHT_FLASH"
    HORN_BLOW = "HORN_BLOW"
    VEHICLE_FINDER = "VEHICLE_FINDER"
    CHARGING_CONTROL = "CHARGING_CONTROL"


class ExecutionState(StrEnum):
    INITIATED = "INITIATED"
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    EXECUTED = "EXECUTED"
    NOT_EXECUTED = "NOT_EXECUTED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATES = frozenset({ExecutionState.EXECUTED, ExecutionState.NOT_EXECUTED, ExecutionState.TIMED_OUT})

# Capability flags of a vehicles-list entry (the API's own names), as seen in the reference and real bodies.
CAPABILITY_FLAGS = (
    "chargeNow",
    "chargingControl",
    "climateControl",
    "climateControlRES",
    "climateNow",
    "climateNowRES",
    "carCloud",
    "doorLock",
    "doorUnlock",
    "hasAlarmSystem",
    "hornBlow",
    "intermodalRouting",
    "ipa",
    "lastDestinations",
    "lightFlash",
    "rangeMap",
    "remote360",
    "remoteSoftwareUpgrade",
    "sendPoi",
    "smartSolution",
    "statisticsAvailable",
    "statisticsCommunityEnabled",
    "vehicleFinder",
)
_FLAG_OFF = frozenset({"NOT_SUPPORTED", "NOT_AVAILABLE", ""})

ELECTRIC_DRIVE_TRAINS = frozenset({"BEV", "BEV_REX", "PHEV"})
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


_E = TypeVar("_E", bound=StrEnum)


# --- tolerant field readers: wrong type or missing -> None --------------------------------------------


def _top(body: Any, key: str) -> dict[str, Any]:
    """The documented top-level object `body[key]`; anything else is not this API."""
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object with {key!r}")
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadResponse(f"expected {key!r} to be a JSON object")
    return value


def _dict(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # json reads integers of any size; one beyond a float is no reading
        return None
    # json also reads NaN, Infinity and 1e999 (as inf): none is a reading either, and round() fails on them.
    return number if math.isfinite(number) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = _float(data, key)
    return None if value is None else round(value)


def _bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    """The API's "2015-10-30T18:45:04+0100" form (Python 3.11 reads it); naive times are taken as UTC."""
    value = _str(data, key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _enum(enum: type[_E], value: str | None) -> _E | str | None:
    """The enum member when known, else the raw string: a new server value must never be fatal."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadResponse(f"expected a list of {what}")
    return value


def _flag_on(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.upper() not in _FLAG_OFF


# --- accounts and tokens ------------------------------------------------------------------------------


@dataclass
class Token:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float  # epoch seconds

    @classmethod
    def from_api(cls, body: Any, *, now: float) -> Self:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise BadResponse("the token answer has no access_token")
        # A missing lifetime is read as one hour: short enough to be safe, long enough not to hammer.
        expires_in = _float(body, "expires_in")
        return cls(
            access_token=body["access_token"],
            refresh_token=_str(body, "refresh_token"),
            expires_at=now + (expires_in if expires_in is not None else 3600.0),
        )


@dataclass
class Account:
    """One ConnectedDrive login. Mutable: the client stores a fresh token in `.token`."""

    username: str
    password: str = field(repr=False)
    region: Region = Region.REST_OF_WORLD
    token: Token | None = field(default=None, repr=False)


# --- vehicles -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vehicle:
    vin: str
    model: str | None
    brand: str | None
    drive_train: str | None
    body_type: str | None
    license_plate: str | None
    year: int | None
    color: str | None
    charging_control: str | None  # "WEEKLY_PLANNER", "TWO_TIMES_TIMER", "NOT_SUPPORTED"...
    capabilities: frozenset[str]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, entry: Any) -> Self:
        if not isinstance(entry, dict) or not isinstance(entry.get("vin"), str):
            raise BadResponse("a vehicle entry has no VIN")
        return cls(
            vin=entry["vin"],
            model=_str(entry, "model"),
            brand=_str(entry, "brand"),
            drive_train=_str(entry, "driveTrain"),
            body_type=_str(entry, "bodytype"),
            license_plate=_str(entry, "licensePlate"),
            year=_int(entry, "yearOfConstruction"),
            color=_str(entry, "color"),
            charging_control=_str(entry, "chargingControl"),
            capabilities=frozenset(flag for flag in CAPABILITY_FLAGS if _flag_on(entry.get(flag))),
            raw=entry,
        )

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        """The reference shows a bare array; real servers answered `{"vehicles": [...]}`. Both are read."""
        if isinstance(body, dict):
            if "vehicles" not in body:
                raise BadResponse("expected 'vehicles'")
            body = body["vehicles"]
        return [cls.from_api(entry) for entry in _list(body, "vehicles")]

    def supports(self, capability: str) -> bool:
        """`capability` is the API's flag name, e.g. "doorUnlock", "chargeNow", "sendPoi"."""
        return capability in self.capabilities

    @property
    def is_electric(self) -> bool:
        return self.drive_train in ELECTRIC_DRIVE_TRAINS


# --- status -------------------------------------------------------------------------------------------


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
        return cls(lat, lon, _int(data, "heading"), _str(data, "status"), impossible=sent and point is None)

    @property
    def usable(self) -> bool:
        return self.lat is not None and self.lon is not None and self.status in (None, "OK")


@dataclass(frozen=True)
class VehicleStatus:
    vin: str | None
    mileage: int | None  # km
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
    fuel_percent: float | None
    connection_status: str | None
    charging_status: str | None
    charging_time_remaining: int | None  # minutes, only while charging
    last_charging_end_reason: str | None
    last_charging_end_result: str | None
    position: Position | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _top(body, "vehicleStatus")
        position = _dict(data, "position")
        return cls(
            vin=_str(data, "vin"),
            mileage=_int(data, "mileage"),
            update_time=_datetime(data, "updateTime"),
            update_reason=_str(data, "updateReason"),
            door_lock_state=_str(data, "doorLockState"),
            doors={key: data[key] for key in _DOOR_KEYS if isinstance(data.get(key), str)},
            windows={key: data[key] for key in _WINDOW_KEYS if isinstance(data.get(key), str)},
            trunk=_str(data, "trunk"),
            hood=_str(data, "hood"),
            rear_window=_str(data, "rearWindow"),
            convertible_roof=_str(data, "convertibleRoofState"),
            charging_level_hv=_float(data, "chargingLevelHv"),
            remaining_range_electric=_float(data, "remainingRangeElectric"),
            max_range_electric=_float(data, "maxRangeElectric"),
            remaining_range_fuel=_float(data, "remainingRangeFuel"),
            remaining_fuel=_float(data, "remainingFuel"),
            max_fuel=_float(data, "maxFuel"),
            fuel_percent=_float(data, "fuelPercent"),
            connection_status=_str(data, "connectionStatus"),
            charging_status=_str(data, "chargingStatus"),
            charging_time_remaining=_int(data, "chargingTimeRemaining"),
            last_charging_end_reason=_str(data, "lastChargingEndReason"),
            last_charging_end_result=_str(data, "lastChargingEndResult"),
            position=None if position is None else Position.from_api(position),
            raw=data,
        )

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


# --- statistics ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LastTrip:
    efficiency_value: float | None
    total_distance: float | None  # km
    electric_distance: float | None  # km
    avg_electric_consumption: float | None  # kWh/100 km
    avg_recuperation: float | None  # kWh/100 km
    driving_mode_value: float | None
    acceleration_value: float | None
    anticipation_value: float | None
    total_consumption_value: float | None
    auxiliary_consumption_value: float | None
    avg_combined_consumption: float | None
    electric_distance_ratio: float | None  # percent
    saved_fuel: float | None
    date: datetime | None
    duration: int | None  # minutes

    @classmethod
    def from_api(cls, body: Any) -> Self | None:
        """None for `{"lastTrip": {}}` (a car with no recorded trip, e.g. the PHEVs)."""
        data = _top(body, "lastTrip")
        if not data:
            return None
        return cls(
            efficiency_value=_float(data, "efficiencyValue"),
            total_distance=_float(data, "totalDistance"),
            electric_distance=_float(data, "electricDistance"),
            avg_electric_consumption=_float(data, "avgElectricConsumption"),
            avg_recuperation=_float(data, "avgRecuperation"),
            driving_mode_value=_float(data, "drivingModeValue"),
            acceleration_value=_float(data, "accelerationValue"),
            anticipation_value=_float(data, "anticipationValue"),
            total_consumption_value=_float(data, "totalConsumptionValue"),
            auxiliary_consumption_value=_float(data, "auxiliaryConsumptionValue"),
            avg_combined_consumption=_float(data, "avgCombinedConsumption"),
            electric_distance_ratio=_float(data, "electricDistanceRatio"),
            saved_fuel=_float(data, "savedFuel"),
            date=_datetime(data, "date"),
            duration=_int(data, "duration"),
        )


@dataclass(frozen=True)
class CommunityStat:
    community_low: float | None
    community_average: float | None
    community_high: float | None
    user_average: float | None
    user_total: float | None
    user_high: float | None
    user_current_charge_cycle: float | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            community_low=_float(data, "communityLow"),
            community_average=_float(data, "communityAverage"),
            community_high=_float(data, "communityHigh"),
            user_average=_float(data, "userAverage"),
            user_total=_float(data, "userTotal"),
            user_high=_float(data, "userHigh"),
            user_current_charge_cycle=_float(data, "userCurrentChargeCycle"),
        )


def _stat(data: Mapping[str, Any], key: str) -> CommunityStat | None:
    value = _dict(data, key)
    return None if value is None else CommunityStat.from_api(value)


@dataclass(frozen=True)
class AllTrips:
    avg_electric_consumption: CommunityStat | None
    avg_recuperation: CommunityStat | None
    chargecycle_range: CommunityStat | None  # km
    total_electric_distance: CommunityStat | None  # km
    avg_combined_consumption: CommunityStat | None
    battery_size_max: float | None  # Wh
    saved_co2: float | None  # kg
    saved_co2_green_energy: float | None  # kg
    total_saved_fuel: float | None
    reset_date: datetime | None

    @classmethod
    def from_api(cls, body: Any) -> Self | None:
        """None for `{"allTrips": {}}`."""
        data = _top(body, "allTrips")
        if not data:
            return None
        return cls(
            avg_electric_consumption=_stat(data, "avgElectricConsumption"),
            avg_recuperation=_stat(data, "avgRecuperation"),
            chargecycle_range=_stat(data, "chargecycleRange"),
            total_electric_distance=_stat(data, "totalElectricDistance"),
            avg_combined_consumption=_stat(data, "avgCombinedConsumption"),
            battery_size_max=_float(data, "batterySizeMax"),
            saved_co2=_float(data, "savedCO2"),
            saved_co2_green_energy=_float(data, "savedCO2greenEnergy"),
            total_saved_fuel=_float(data, "totalSavedFuel"),
            reset_date=_datetime(data, "resetDate"),
        )


# --- charging profile ---------------------------------------------------------------------------------

PROFILE_KINDS = ("weeklyPlanner", "twoTimesTimer")
_WINDOW_KEY = "preferredChargingWindow"


def _is_timer(key: str, value: Any) -> bool:
    return (key.startswith("timer") or key == "overrideTimer") and isinstance(value, dict)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Write an edited value back; None removes it (the reference omits fields it does not set)."""
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


@dataclass(frozen=True)
class Timer:
    departure_time: str | None  # "HH:MM", the car's local time
    enabled: bool | None
    weekdays: tuple[str, ...] | None  # "MONDAY"...; None on twoTimesTimer profiles

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        days = data.get("weekdays")
        weekdays = tuple(day for day in days if isinstance(day, str)) if isinstance(days, list) else None
        return cls(_str(data, "departureTime"), _bool(data, "timerEnabled"), weekdays)

    def to_api(self, raw: Mapping[str, Any], *, with_weekdays: bool) -> dict[str, Any]:
        data = dict(raw)
        _put(data, "departureTime", self.departure_time)
        _put(data, "timerEnabled", self.enabled)
        if with_weekdays:
            _put(data, "weekdays", None if self.weekdays is None else list(self.weekdays))
        else:
            data.pop("weekdays", None)
        return data


@dataclass(frozen=True)
class ChargingWindow:
    enabled: bool | None
    start_time: str | None  # "HH:MM"
    end_time: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(_bool(data, "enabled"), _str(data, "startTime"), _str(data, "endTime"))

    def to_api(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        data = dict(raw)
        _put(data, "enabled", self.enabled)
        _put(data, "startTime", self.start_time)
        _put(data, "endTime", self.end_time)
        return data


@dataclass(frozen=True)
class ChargingProfile:
    kind: str  # "weeklyPlanner" or "twoTimesTimer"
    climatization_enabled: bool | None
    charging_mode: str | None  # "IMMEDIATE_CHARGING", "DELAYED_CHARGING"...
    charging_preferences: str | None  # "CHARGING_WINDOW", "NO_PRESELECTION"...
    timers: dict[str, Timer]  # "timer1", "timer2", "timer3", "overrideTimer"
    window: ChargingWindow | None
    raw: dict[str, Any] = field(repr=False, compare=False)  # the object under `kind`, as read

    @classmethod
    def from_api(cls, body: Any) -> Self | None:
        """None for an empty body (no profile); a body with neither kind is not a charging profile."""
        if isinstance(body, dict) and not body:
            return None
        kind = next((k for k in PROFILE_KINDS if isinstance(body, dict) and k in body), PROFILE_KINDS[0])
        data = _top(body, kind)
        timers = {key: Timer.from_api(value) for key, value in data.items() if _is_timer(key, value)}
        window = _dict(data, _WINDOW_KEY)
        return cls(
            kind=kind,
            climatization_enabled=_bool(data, "climatizationEnabled"),
            charging_mode=_str(data, "chargingMode"),
            charging_preferences=_str(data, "chargingPreferences"),
            timers=timers,
            window=None if window is None else ChargingWindow.from_api(window),
            raw=data,
        )

    def to_api(self) -> dict[str, Any]:
        """The CHARGING_CONTROL `data` object: the shape read, with this profile's (edited) values applied."""
        data = copy.deepcopy(self.raw)
        _put(data, "climatizationEnabled", self.climatization_enabled)
        _put(data, "chargingMode", self.charging_mode)
        _put(data, "chargingPreferences", self.charging_preferences)
        for key in [k for k, v in data.items() if _is_timer(k, v) and k not in self.timers]:
            del data[key]
        for key, timer in self.timers.items():
            data[key] = timer.to_api(_dict(data, key) or {}, with_weekdays=self.kind != "twoTimesTimer")
        if self.window is None:
            data.pop(_WINDOW_KEY, None)
        else:
            data[_WINDOW_KEY] = self.window.to_api(_dict(data, _WINDOW_KEY) or {})
        return {self.kind: data}


# --- destinations and range map -----------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    lat: float | None
    lon: float | None
    country: str | None
    city: str | None
    street: str | None
    type: str | None
    created_at: datetime | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        lat, lon = _point(data) or (None, None)
        return cls(
            lat=lat,
            lon=lon,
            country=_str(data, "country"),
            city=_str(data, "city"),
            street=_str(data, "street"),
            type=_str(data, "type"),
            created_at=_datetime(data, "createdAt"),
        )

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        if not isinstance(body, dict) or "destinations" not in body:
            raise BadResponse("expected 'destinations'")
        items = _list(body["destinations"], "destinations")
        return [cls.from_api(item) for item in items if isinstance(item, dict)]


def on_earth(lat: float, lon: float) -> bool:
    """Coordinates of a place: anything else breaks map projections and Telegram refuses it as a location."""
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def _point(data: Any) -> tuple[float, float] | None:
    """(lat, lon) of a place, or None (missing, not numbers, or no place on Earth)."""
    if not isinstance(data, dict):
        return None
    lat, lon = _float(data, "lat"), _float(data, "lon")
    return None if lat is None or lon is None or not on_earth(lat, lon) else (lat, lon)


@dataclass(frozen=True)
class RangePolyline:
    type: str  # "ECO_PRO_PLUS", "COMFORT"...
    points: tuple[tuple[float, float], ...]  # (lat, lon)


@dataclass(frozen=True)
class RangeMap:
    center: tuple[float, float] | None  # (lat, lon)
    quality: str | None
    polylines: tuple[RangePolyline, ...]

    @classmethod
    def from_api(cls, body: Any) -> Self:
        """`{"rangemap": {}}` (a PHEV) parses as an empty map."""
        data = _top(body, "rangemap")
        maps = data.get("rangemaps")
        polylines = []
        for item in maps if isinstance(maps, list) else []:
            if not isinstance(item, dict) or not isinstance(item.get("polyline"), list):
                continue
            points = tuple(p for p in map(_point, item["polyline"]) if p is not None)
            if points:
                polylines.append(RangePolyline(type=_str(item, "type") or "UNKNOWN", points=points))
        center = _point(data.get("center"))
        return cls(center=center, quality=_str(data, "quality"), polylines=tuple(polylines))

    @property
    def empty(self) -> bool:
        return not self.polylines


# --- remote services ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecutionStatus:
    service_type: str | None  # a ServiceType when known
    status: str | None  # an ExecutionState when known; real servers sometimes omit it
    event_id: str | None

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _top(body, "executionStatus")
        return cls(
            service_type=_enum(ServiceType, _str(data, "serviceType")),
            status=_enum(ExecutionState, _str(data, "status")),
            event_id=_str(data, "eventId"),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES


@dataclass(frozen=True)
class Poi:
    lat: float
    lon: float
    name: str | None = None
    street: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The sendpoi `data` object; the official app always sent rating -1."""
        poi: dict[str, Any] = {"lat": self.lat, "lon": self.lon, "rating": -1}
        optional = {
            "name": self.name,
            "street": self.street,
            "city": self.city,
            "postalCode": self.postal_code,
            "country": self.country,
        }
        poi.update({key: value for key, value in optional.items() if value is not None})
        return {"poi": poi}
