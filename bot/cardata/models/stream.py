"""A stream message, and why a stream lets nothing through."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from bot.cardata.errors import BadResponse
from bot.cardata.models._read import _datetime, _object
from bot.cardata.models.telematic import TelematicValue, telematic_values
from bot.values import str_of


class StreamBlock(StrEnum):
    """Why BMW lets nothing through a linked account's stream (docs/cardata.md, "Refusals")."""

    HELD = "held"  # CONNACK 5, also after the retry: another app holds the account's one stream
    NOT_CONFIGURED = "not_configured"  # SUBACK 0x80: the stream is not set up in BMW's portal


@dataclass(frozen=True)
class StreamMessage:
    """A message: `{"vin", "entityId", "topic", "timestamp", "data": {key: {timestamp, value, unit}}}`"""

    vin: str
    timestamp: datetime | None
    values: dict[str, TelematicValue]

    @classmethod
    def from_api(cls, body: Any, *, topic_vin: str | None = None) -> Self:
        """`topic_vin`, the VIN of the topic `{gcid}/{vin}` it came on, wins over the body's: the broker
        decides what reaches whom by topic, so a body naming another car must not write into that one."""
        data = _object(body, "a stream message")
        vin = topic_vin or str_of(data, "vin")
        if not vin:
            raise BadResponse("a stream message without a VIN")
        return cls(
            vin=vin, timestamp=_datetime(data.get("timestamp")), values=telematic_values(data.get("data"))
        )
