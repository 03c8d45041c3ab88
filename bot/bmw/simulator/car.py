"""A simulated car and the remote-service requests it has been sent: the data every part of the simulator
works on (the time engine moves it, the bodies serve it, the control surface edits it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

ServiceMode = Literal["normal", "timed_out", "not_executed", "stuck"]
SERVICE_MODES: tuple[str, ...] = get_args(ServiceMode)

UNSUPPORTED_FLAGS = {"NOT_SUPPORTED", "NOT_AVAILABLE"}
# The vehicles list's chargingControl flag -> the key of the charging profile it serves
PROFILE_KINDS = {"WEEKLY_PLANNER": "weeklyPlanner", "TWO_TIMES_TIMER": "twoTimesTimer"}


@dataclass
class ServiceRequest:
    service_type: str
    event_id: str
    started: float
    mode: ServiceMode  # the car's service_mode when the request was made
    data: dict[str, Any] | None = None  # CHARGING_CONTROL: the validated profile
    result: str | None = None  # terminal status once the request fell due


@dataclass(eq=False)
class SimVehicle:
    """A simulated car. `status` is the vehicleStatus body served as is (derived fields kept current)."""

    vin: str
    owner: str
    info: dict[str, Any]  # the entry of GET /user/vehicles
    status: dict[str, Any]
    last_trip: dict[str, Any]
    all_trips: dict[str, Any]
    charging_profile: dict[str, Any]
    destinations: list[dict[str, Any]]
    soc: float  # chargingLevelHv with the fraction that charging accumulates
    synced_at: float  # simulator time the car was last brought up to date
    pois: list[dict[str, Any]] = field(default_factory=list)
    service_mode: ServiceMode = "normal"
    climate_until: float | None = None
    services: list[ServiceRequest] = field(default_factory=list)

    def supports(self, capability: str) -> bool:
        value = self.info.get(capability)
        return value not in UNSUPPORTED_FLAGS and value not in (None, False)
