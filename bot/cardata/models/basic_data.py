"""A car's basic data (brand, model, drive train, battery size)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from bot.cardata.models._read import _float, _object
from bot.values import str_of


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
            vin=str_of(data, "vin"),
            brand=str_of(data, "brand"),
            model_name=str_of(data, "modelName"),
            drive_train=str_of(data, "driveTrain"),
            propulsion_type=str_of(data, "propulsionType"),
            battery_kwh=_float(data, "hvsMaxEnergyAbsolute"),
        )
