"""The charging profile (weekly planner or two departure timers) and the rules for editing it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

from bot.bmw.models._read import _bool, _dict, _str, _top

PROFILE_KINDS = ("weeklyPlanner", "twoTimesTimer")
_WINDOW_KEY = "preferredChargingWindow"


def _is_timer(key: str, value: Any) -> bool:
    return (key.startswith("timer") or key == "overrideTimer") and isinstance(value, dict)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Write an edited value back; None removes it (the API's own examples omit fields they do not set)."""
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
