"""Tolerant field readers of the i Remote models (those CarData's share too: bot/values.py): a wrong type or
a missing key reads as None."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.bmw.errors import BadResponse
from bot.values import str_of


def _top(body: Any, key: str) -> dict[str, Any]:
    """The documented top-level object `body[key]`; anything else is not this API."""
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object with {key!r}")
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadResponse(f"expected {key!r} to be a JSON object")
    return value


def _dict(data: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = data.get(key)
    return value if isinstance(value, dict) else None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # json reads integers of any size; one beyond a float is no reading
        return None
    # json also reads NaN, Infinity and 1e999 (as inf): none is a reading either, and round() fails on them.
    return number if math.isfinite(number) else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = _float(data, key)
    return None if value is None else round(value)


def _bool(data: Mapping[str, Any], key: str) -> bool | None:
    value = data.get(key)
    return value if isinstance(value, bool) else None


def _datetime(data: Mapping[str, Any], key: str) -> datetime | None:
    """The API's "2015-10-30T18:45:04+0100" form (Python 3.11 reads it); naive times are taken as UTC."""
    value = str_of(data, key)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise BadResponse(f"expected a list of {what}")
    return value


def on_earth(lat: float, lon: float) -> bool:
    """Coordinates of a place: anything else breaks map projections and Telegram refuses it as a location."""
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


def _point(data: Any) -> tuple[float, float] | None:
    """(lat, lon) of a place, or None (missing, not numbers, or no place on Earth)."""
    if not isinstance(data, dict):
        return None
    lat, lon = _float(data, "lat"), _float(data, "lon")
    return None if lat is None or lon is None or not on_earth(lat, lon) else (lat, lon)
