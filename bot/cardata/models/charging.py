"""BMW's charging history: its sessions and pages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from bot.cardata.errors import BadResponse
from bot.cardata.models._read import _datetime, _float, _object, _within
from bot.cardata.models.keys import KM_PER_MILE, MAX_MILEAGE
from bot.values import str_of

# No charge lasts longer (an i3 from empty at 2.3 kW: under a day); a longer duration from BMW is no duration.
MAX_CHARGE_SECONDS = 7 * 24 * 3600.0


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
        if mileage is not None and (str_of(data, "mileageUnits") or "KM").upper() == "MI":
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
            next_token=str_of(data, "next_token") or str_of(data, "nextToken") or None,
        )
