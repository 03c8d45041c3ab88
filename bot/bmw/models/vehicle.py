"""An entry of the account's vehicles list: identity and capability flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from bot.bmw.errors import BadResponse
from bot.bmw.models._read import _int, _list
from bot.values import str_of

# Capability flags of a vehicles-list entry (the API's own names), as documented and seen in real bodies.
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


def _flag_on(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.upper() not in _FLAG_OFF


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
            model=str_of(entry, "model"),
            brand=str_of(entry, "brand"),
            drive_train=str_of(entry, "driveTrain"),
            body_type=str_of(entry, "bodytype"),
            license_plate=str_of(entry, "licensePlate"),
            year=_int(entry, "yearOfConstruction"),
            color=str_of(entry, "color"),
            charging_control=str_of(entry, "chargingControl"),
            capabilities=frozenset(flag for flag in CAPABILITY_FLAGS if _flag_on(entry.get(flag))),
            raw=entry,
        )

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        """The write-up shows a bare array; real servers answered `{"vehicles": [...]}`. Both are read."""
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
