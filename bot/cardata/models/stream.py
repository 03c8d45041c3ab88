"""A stream message; why a stream lets nothing through is `bot.car_status.StreamBlock` (re-exported)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from bot.car_status import StreamBlock
from bot.cardata.errors import BadResponse
from bot.cardata.models._read import _datetime, _object
from bot.cardata.models.telematic import TelematicValue, telematic_values
from bot.values import str_of

__all__ = ["StreamBlock", "StreamMessage"]


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
