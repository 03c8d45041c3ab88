"""Places: the destinations last sent to the car, and a place to send to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from bot.bmw.errors import BadResponse
from bot.bmw.models._read import _datetime, _list, _point
from bot.values import str_of


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
            country=str_of(data, "country"),
            city=str_of(data, "city"),
            street=str_of(data, "street"),
            type=str_of(data, "type"),
            created_at=_datetime(data, "createdAt"),
        )

    @classmethod
    def list_from_api(cls, body: Any) -> list[Self]:
        if not isinstance(body, dict) or "destinations" not in body:
            raise BadResponse("expected 'destinations'")
        items = _list(body["destinations"], "destinations")
        return [cls.from_api(item) for item in items if isinstance(item, dict)]


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
