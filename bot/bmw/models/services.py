"""Remote services: their types and the execution status the car moves through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from bot.bmw.models._read import _enum, _str, _top


class ServiceType(StrEnum):
    CHARGE_NOW = "CHARGE_NOW"
    CLIMATE_NOW = "CLIMATE_NOW"
    DOOR_LOCK = "DOOR_LOCK"
    DOOR_UNLOCK = "DOOR_UNLOCK"
    LIGHT_FLASH = "LIGHT_FLASH"
    HORN_BLOW = "HORN_BLOW"
    VEHICLE_FINDER = "VEHICLE_FINDER"
    CHARGING_CONTROL = "CHARGING_CONTROL"


class ExecutionState(StrEnum):
    INITIATED = "INITIATED"
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    EXECUTED = "EXECUTED"
    NOT_EXECUTED = "NOT_EXECUTED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATES = frozenset({ExecutionState.EXECUTED, ExecutionState.NOT_EXECUTED, ExecutionState.TIMED_OUT})


@dataclass(frozen=True)
class ExecutionStatus:
    service_type: str | None  # a ServiceType when known
    status: str | None  # an ExecutionState when known; real servers sometimes omit it
    event_id: str | None

    @classmethod
    def from_api(cls, body: Any) -> Self:
        data = _top(body, "executionStatus")
        return cls(
            service_type=_enum(ServiceType, _str(data, "serviceType")),
            status=_enum(ExecutionState, _str(data, "status")),
            event_id=_str(data, "eventId"),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES
