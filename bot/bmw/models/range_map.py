"""The range map: polylines of how far the car can go."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from bot.bmw.models._read import _point, _top
from bot.values import str_of


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
                polylines.append(RangePolyline(type=str_of(item, "type") or "UNKNOWN", points=points))
        center = _point(data.get("center"))
        return cls(center=center, quality=str_of(data, "quality"), polylines=tuple(polylines))

    @property
    def empty(self) -> bool:
        return not self.polylines
