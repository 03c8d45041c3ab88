"""Remote services: their types and the execution status the car moves through."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from bot.bmw.models._read import _top
from bot.values import enum_of, str_of


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
            service_type=enum_of(ServiceType, str_of(data, "serviceType")),
            status=enum_of(ExecutionState, str_of(data, "status")),
            event_id=str_of(data, "eventId"),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES
