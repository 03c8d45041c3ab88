"""The time engine: the controllable clock, charging progress, and remote services moving INITIATED ->
PENDING -> DELIVERED -> EXECUTED (or their failure modes) and acting on the car when they fall due.

Time is lazy: nothing runs in the background. Each read of a car first brings it up to "now" (`sync`:
charging progress, remote services falling due, in time order), so `advance()` and wall-clock time behave
the same and idle cars cost nothing. The caller holds the simulator's lock around everything but the clock.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from bot.bmw.simulator import fleet
from bot.bmw.simulator.car import PROFILE_KINDS, ServiceRequest, SimVehicle

CLIMATE_SECONDS = 30 * 60  # how long CLIMATE_NOW keeps the cabin conditioned


class TimeEngine:
    """Simulator time and everything that happens to the cars as it passes."""

    def __init__(
        self,
        lock: threading.RLock,
        *,
        service_seconds: float,
        charge_percent_per_minute: float,
        clock: Callable[[], float] | None,
    ) -> None:
        self._lock = lock
        self.service_seconds = service_seconds
        self.charge_percent_per_minute = charge_percent_per_minute
        self._clock = clock or time.time
        self._offset = 0.0

    # -- clock ------------------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulator time in epoch seconds: the clock plus everything `advance()` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += seconds

    # -- steering a car's charge -----------------------------------------------------------------------

    def set_status(self, car: SimVehicle, fields: dict[str, Any]) -> None:
        """See `Simulator.set_status`."""
        was_charging = car.status.get("chargingStatus") == "CHARGING"
        car.status.update(fields)
        if "chargingLevelHv" in fields:
            car.soc = float(fields["chargingLevelHv"])
            if "remainingRangeElectric" not in fields:
                self._write_range(car)
        if (
            fields.get("chargingStatus") == "CHARGING"
            and not was_charging
            and "connectionStatus" not in fields
        ):
            car.status["connectionStatus"] = "CONNECTED"
        self._write_time_remaining(car)

    def plug_in(self, car: SimVehicle, *, charging: bool) -> None:
        now = self.now()
        car.status["connectionStatus"] = "CONNECTED"
        if charging:
            self._start_charging(car, now)
        else:
            car.status["chargingStatus"] = "WAITING_FOR_CHARGING"
            self._stamp(car, now, None)

    def unplug(self, car: SimVehicle) -> None:
        status = car.status
        if status.get("chargingStatus") == "CHARGING":
            status["chargingStatus"] = "FINISHED_NOT_FULL"
            status["lastChargingEndReason"] = "CONNECTOR_REMOVAL"
            status["lastChargingEndResult"] = "SUCCESS"
            self._stamp(car, self.now(), "CHARGING_INTERRUPED")  # sic, as the API spells it
        elif status.get("chargingStatus") in ("WAITING_FOR_CHARGING", "NOT_CHARGING"):
            status["chargingStatus"] = "INVALID"
            self._stamp(car, self.now(), None)
        status["connectionStatus"] = "DISCONNECTED"
        self._write_time_remaining(car)

    # -- time: charging and remote services ------------------------------------------------------------

    def service_status(self, request: ServiceRequest) -> str:
        if request.result is not None:
            return request.result
        elapsed = self.now() - request.started
        if elapsed < self.service_seconds / 4:
            return "INITIATED"
        if elapsed < self.service_seconds / 2 or request.mode in ("stuck", "timed_out"):
            return "PENDING"
        return "DELIVERED"

    def sync(self, car: SimVehicle) -> None:
        """Bring the car to now: services fall due in time order, charging runs between them."""
        now = self.now()
        if car.status.get("chargingLevelHv") not in (None, int(car.soc)):
            car.soc = float(car.status["chargingLevelHv"])  # someone edited the status dict directly
        due = sorted(
            (r for r in car.services if r.result is None and r.mode != "stuck"),
            key=lambda r: r.started,
        )
        for request in due:
            at = request.started + self.service_seconds
            if at > now:
                break
            self._charge_until(car, at)
            request.result = self._execute(car, request, at)
        self._charge_until(car, now)
        # Keep the requests still running and the latest of each type (the one serviceExecutionStatus shows).
        latest = {r.service_type: r for r in car.services}
        car.services = [r for r in car.services if r.result is None or latest[r.service_type] is r]

    def _execute(self, car: SimVehicle, request: ServiceRequest, at: float) -> str:
        """The car acts on a request that fell due at `at`; returns its terminal status."""
        if request.mode == "timed_out":
            return "TIMED_OUT"
        if request.mode == "not_executed":
            return "NOT_EXECUTED"
        match request.service_type:
            case "DOOR_LOCK" | "DOOR_UNLOCK":
                car.status["doorLockState"] = "LOCKED" if request.service_type == "DOOR_LOCK" else "UNLOCKED"
                self._stamp(car, at, "DOOR_STATE_CHANGED")
            case "CLIMATE_NOW" | "CLIMATE_CONTROL":
                car.climate_until = at + CLIMATE_SECONDS
            case "CHARGE_NOW":
                if car.status.get("connectionStatus") != "CONNECTED":
                    return "NOT_EXECUTED"
                self._start_charging(car, at)
            case "CHARGING_CONTROL":
                kind = PROFILE_KINDS[car.info["chargingControl"]]
                merged = copy.deepcopy(car.charging_profile.get(kind, {}))
                for key, value in (request.data or {}).items():
                    if isinstance(value, dict) and isinstance(merged.get(key), dict):
                        merged[key].update(value)  # a partial timer keeps the fields it does not send
                    else:
                        merged[key] = value
                car.charging_profile = {kind: merged}
            case "VEHICLE_FINDER":
                if "position" in car.status:
                    car.status["position"]["status"] = "OK"
                self._stamp(car, at, None)
        return "EXECUTED"

    def _start_charging(self, car: SimVehicle, at: float) -> None:
        car.status.update(
            chargingStatus="CHARGING",
            connectionStatus="CONNECTED",
            lastChargingEndReason="UNKNOWN",
            lastChargingEndResult="UNKNOWN",
        )
        self._stamp(car, at, "CHARGING_STARTED")
        self._write_time_remaining(car)

    def _charge_until(self, car: SimVehicle, t: float) -> None:
        if t <= car.synced_at:
            return
        if car.status.get("chargingStatus") == "CHARGING" and "chargingLevelHv" in car.status:
            per_second = self.charge_percent_per_minute / 60
            full_at = car.synced_at + max(0.0, 100 - car.soc) / per_second
            if t >= full_at:
                car.soc = 100.0
                car.status.update(
                    chargingStatus="FINISHED_FULLY_CHARGED",
                    lastChargingEndReason="CHARGING_GOAL_REACHED",
                    lastChargingEndResult="SUCCESS",
                )
                self._stamp(car, full_at, "CHARGING_DONE")
            else:
                car.soc += per_second * (t - car.synced_at)
                self._stamp(car, t, None)  # a charging car keeps reporting
            car.status["chargingLevelHv"] = int(car.soc)
            self._write_range(car)
            self._write_time_remaining(car)
        car.synced_at = t

    def _write_range(self, car: SimVehicle) -> None:
        maximum = car.status.get("maxRangeElectric")
        if maximum is not None:
            remaining = round(maximum * car.soc / 100)
            car.status["remainingRangeElectric"] = remaining
            car.status["remainingRangeElectricMls"] = round(remaining * fleet.KM_TO_MILES)

    def _write_time_remaining(self, car: SimVehicle) -> None:
        # docs/i-remote-api.md: chargingTimeRemaining is present only while the car is actively charging.
        if car.status.get("chargingStatus") == "CHARGING":
            car.status["chargingTimeRemaining"] = math.ceil(
                max(0.0, 100 - car.soc) / self.charge_percent_per_minute
            )
        else:
            car.status.pop("chargingTimeRemaining", None)

    @staticmethod
    def _stamp(car: SimVehicle, at: float, reason: str | None) -> None:
        car.status["updateTime"] = fleet.car_time(at)
        car.status["internalDataTimeUTC"] = fleet.utc_time(at)
        if reason is not None:
            car.status["updateReason"] = reason
