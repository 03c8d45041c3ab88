"""Trip statistics: the last trip and all trips against the community."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from bot.bmw.models._read import _datetime, _dict, _float, _int, _top


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
