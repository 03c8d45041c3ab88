"""The charging profile (weekly planner or two departure timers) and the rules for editing it."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Self, TypedDict, Unpack

from bot.bmw.models._read import _bool, _dict, _top
from bot.values import str_of

PROFILE_KINDS = ("weeklyPlanner", "twoTimesTimer")
TWO_TIMES_TIMER = "twoTimesTimer"  # its timers have no weekdays
_WINDOW_KEY = "preferredChargingWindow"
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
TIMER_ORDER = ("timer1", "timer2", "timer3", "overrideTimer")
IMMEDIATE, DELAYED = "IMMEDIATE_CHARGING", "DELAYED_CHARGING"
DAY_MINUTES = 24 * 60
WindowEdge = Literal["start", "end"]


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
        return cls(str_of(data, "departureTime"), _bool(data, "timerEnabled"), weekdays)

    def to_api(self, raw: Mapping[str, Any], *, with_weekdays: bool) -> dict[str, Any]:
        data = dict(raw)
        _put(data, "departureTime", self.departure_time)
        _put(data, "timerEnabled", self.enabled)
        if with_weekdays:
            _put(data, "weekdays", None if self.weekdays is None else list(self.weekdays))
        else:
            data.pop("weekdays", None)
        return data


class TimerChanges(TypedDict, total=False):
    """The fields of a Timer an edit can change."""

    departure_time: str | None
    enabled: bool | None
    weekdays: tuple[str, ...] | None


def shift_time(value: str | None, minutes: int) -> str:
    """HH:MM moved by `minutes` around the clock; an unset time counts as midnight."""
    hours, mins = map(int, (value or "00:00").split(":"))
    total = (hours * 60 + mins + minutes) % DAY_MINUTES
    return f"{total // 60:02d}:{total % 60:02d}"


@dataclass(frozen=True)
class ChargingWindow:
    enabled: bool | None
    start_time: str | None  # "HH:MM"
    end_time: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        return cls(_bool(data, "enabled"), str_of(data, "startTime"), str_of(data, "endTime"))

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
            charging_mode=str_of(data, "chargingMode"),
            charging_preferences=str_of(data, "chargingPreferences"),
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
            data[key] = timer.to_api(_dict(data, key) or {}, with_weekdays=self.has_weekdays)
        if self.window is None:
            data.pop(_WINDOW_KEY, None)
        else:
            data[_WINDOW_KEY] = self.window.to_api(_dict(data, _WINDOW_KEY) or {})
        return {self.kind: data}

    # --- the rules of editing: each edit returns a new profile; LookupError/ValueError for one that
    # does not fit this profile (no such timer, no window, weekdays on a two-times timer).

    @property
    def has_weekdays(self) -> bool:
        return self.kind != TWO_TIMES_TIMER

    @property
    def timer_keys(self) -> list[str]:
        """The timers in display order; a timer's 1-based position here is its number."""
        rank = {key: i for i, key in enumerate(TIMER_ORDER)}
        return sorted(self.timers, key=lambda key: (rank.get(key, len(rank)), key))

    def timer_at(self, number: int) -> str:
        """The key of the timer numbered `number` (1-based)."""
        if number < 1:
            raise IndexError(number)
        return self.timer_keys[number - 1]

    @property
    def window_on(self) -> bool:
        """The window's own flag; windows without one (two-times timers, PHEVs) follow chargingPreferences."""
        if self.window is not None and self.window.enabled is not None:
            return self.window.enabled
        return self.charging_preferences == "CHARGING_WINDOW"

    def window_time(self, edge: WindowEdge) -> str | None:
        window = self._window()
        return window.start_time if edge == "start" else window.end_time

    def with_timer(self, key: str, **changes: Unpack[TimerChanges]) -> ChargingProfile:
        return replace(self, timers={**self.timers, key: replace(self.timers[key], **changes)})

    def toggle_timer(self, key: str) -> ChargingProfile:
        return self.with_timer(key, enabled=not self.timers[key].enabled)

    def shift_departure(self, key: str, minutes: int) -> ChargingProfile:
        return self.with_timer(key, departure_time=shift_time(self.timers[key].departure_time, minutes))

    def toggle_weekday(self, key: str, day: str) -> ChargingProfile:
        if not self.has_weekdays or day not in WEEKDAYS:
            raise ValueError(day)
        chosen = set(self.timers[key].weekdays or ()) ^ {day}
        return self.with_timer(key, weekdays=tuple(d for d in WEEKDAYS if d in chosen))

    def toggle_window(self) -> ChargingProfile:
        window = self._window()
        on = not self.window_on
        # The flag where the window has one; chargingPreferences is what the car acts on in any case.
        window = window if window.enabled is None else replace(window, enabled=on)
        return replace(
            self, window=window, charging_preferences="CHARGING_WINDOW" if on else "NO_PRESELECTION"
        )

    def set_window_time(self, edge: WindowEdge, value: str) -> ChargingProfile:
        window = self._window()
        edited = replace(window, start_time=value) if edge == "start" else replace(window, end_time=value)
        return replace(self, window=edited)

    def shift_window(self, edge: WindowEdge, minutes: int) -> ChargingProfile:
        return self.set_window_time(edge, shift_time(self.window_time(edge), minutes))

    def toggle_mode(self) -> ChargingProfile:
        return replace(self, charging_mode=DELAYED if self.charging_mode == IMMEDIATE else IMMEDIATE)

    def toggle_climatization(self) -> ChargingProfile:
        return replace(self, climatization_enabled=not self.climatization_enabled)

    def _window(self) -> ChargingWindow:
        if self.window is None:
            raise LookupError("this profile has no charging window")
        return self.window
