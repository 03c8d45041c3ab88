"""A car's basic data (brand, model, drive train, battery size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from bot.cardata.models._read import _float, _object, _str


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
