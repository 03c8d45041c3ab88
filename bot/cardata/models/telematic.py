"""One key's reading (`TelematicValue`) and the telematicData answer of REST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from bot.cardata.errors import BadResponse
from bot.cardata.models._read import _datetime, _number, _object
from bot.values import EnumT, enum_of, str_of

TRUE_STRINGS = frozenset({"true", "1", "yes", "on"})
FALSE_STRINGS = frozenset({"false", "0", "no", "off"})


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
        return cls(value=value, unit=str_of(data, "unit"), timestamp=_datetime(data.get("timestamp")))

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

    def enum(self, enum: type[EnumT]) -> EnumT | str | None:
        return enum_of(enum, self.value)

    def to_json(self) -> dict[str, str | None]:
        return {
            "value": self.value,
            "unit": self.unit,
            "timestamp": None if self.timestamp is None else self.timestamp.isoformat(),
        }


def telematic_values(data: Any) -> dict[str, TelematicValue]:
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
    return telematic_values(inner)
