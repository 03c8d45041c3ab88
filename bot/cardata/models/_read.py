"""Tolerant readers of CarData's JSON (those the i Remote models share too are in bot/values.py): a wrong type
or a missing key reads as None."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.cardata.errors import BadResponse


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _float(data: Mapping[str, Any], key: str) -> float | None:
    return _number(data.get(key))


def _within(value: float | None, low: float, high: float) -> float | None:
    """`value` when it lies in [low, high], else None: a number no car can mean is not shown as one."""
    return value if value is not None and low <= value <= high else None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = _float(data, key)
    return None if value is None or abs(value) > 2**53 else round(value)


def _datetime(value: Any) -> datetime | None:
    """ISO 8601 text (naive read as UTC) or epoch seconds."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    seconds = _number(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object for {what}")
    return body
