"""Tolerant readers both backends' models share: a wrong type or a missing key reads as None, an unknown enum
value as its raw string. Each backend keeps the readers where the two APIs differ (numbers, times) in its
own models/_read.py."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, TypeVar

EnumT = TypeVar("EnumT", bound=StrEnum)


def str_of(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def enum_of(enum: type[EnumT], value: str | None) -> EnumT | str | None:
    """The enum member when known, else the raw string: a new server value must never be fatal."""
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return value
