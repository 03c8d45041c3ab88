"""The vehicle API's answers, built from a car's state: the JSON bodies of the GET endpoints, remote
services accepted (executeService, with the checks the real servers made) and followed
(serviceExecutionStatus), POIs sent to the car, and the error body they all share."""

from __future__ import annotations

import copy
import hmac
import json
import re
import secrets
import threading
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse

from bot.bmw.simulator import fleet
from bot.bmw.simulator.accounts import Account, Accounts
from bot.bmw.simulator.car import PROFILE_KINDS, ServiceRequest, SimVehicle
from bot.bmw.simulator.engine import TimeEngine

# serviceType -> the capability flag of the vehicles list that must allow it
SERVICE_CAPABILITY = {
    "DOOR_LOCK": "doorLock",
    "DOOR_UNLOCK": "doorUnlock",
    "CLIMATE_NOW": "climateNow",
    "CLIMATE_CONTROL": "climateControl",
    "CHARGE_NOW": "chargeNow",
    "LIGHT_FLASH": "lightFlash",
    "HORN_BLOW": "hornBlow",
    "VEHICLE_FINDER": "vehicleFinder",
    "CHARGING_CONTROL": "chargingControl",
}
PROFILE_TIMERS = {
    "weeklyPlanner": {"timer1", "timer2", "timer3", "overrideTimer"},
    "twoTimesTimer": {"timer1", "timer2"},
}
WEEKDAYS = {"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class ApiError(Exception):
    """An answer of the vehicle API: HTTP `code` with `{"error": {"code": code, "description": ...}}`."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "description": self.description}}


def error_response(code: int, description: str) -> JSONResponse:
    return JSONResponse(ApiError(code, description).body(), code)


def parse_form(body: bytes) -> dict[str, str]:
    """A urlencoded body as a dict, whatever the Content-Type says (the write-up's curl misspells it)."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


class Bodies:
    """The answers of the vehicle endpoints for an authenticated `username`; ApiError for refusals."""

    def __init__(
        self, lock: threading.RLock, vehicles: dict[str, SimVehicle], accounts: Accounts, engine: TimeEngine
    ) -> None:
        self._lock = lock
        self._vehicles = vehicles  # the simulator's cars by VIN, shared
        self.accounts, self.engine = accounts, engine

    def _car_of(self, username: str, vin: str) -> SimVehicle:
        car = self._vehicles.get(vin)
        if car is None or car.owner != username:
            raise ApiError(404, "Vehicle not found")
        self.engine.sync(car)
        return car

    def vehicles_body(self, username: str) -> dict[str, Any]:
        with self._lock:
            account = self.accounts.account(username)
            return {"vehicles": [copy.deepcopy(self._vehicles[vin].info) for vin in account.vins]}

    def status_body(self, username: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return {"vehicleStatus": copy.deepcopy(self._car_of(username, vin).status)}

    def last_trip_body(self, username: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return {"lastTrip": copy.deepcopy(self._car_of(username, vin).last_trip)}

    def all_trips_body(self, username: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return {"allTrips": copy.deepcopy(self._car_of(username, vin).all_trips)}

    def charging_profile_body(self, username: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._car_of(username, vin).charging_profile)

    def destinations_body(self, username: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return {"destinations": copy.deepcopy(self._car_of(username, vin).destinations)}

    def range_map_body(self, username: str, vin: str) -> dict[str, Any]:
        with self._lock:
            car = self._car_of(username, vin)
            return fleet.range_map(vin, car.status)

    def execute_service(self, username: str, vin: str, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            car = self._car_of(username, vin)
            service = form.get("serviceType", "")
            capability = SERVICE_CAPABILITY.get(service)
            if capability is None or not car.supports(capability):
                raise ApiError(400, f"Service {service} not supported by vehicle")
            data = None
            if service == "DOOR_UNLOCK":
                self._check_security_answer(self.accounts.account(username), form.get("bmwSkAnswer"))
            elif service == "LIGHT_FLASH" and not form.get("count", "1").isdigit():
                raise ApiError(400, "Invalid parameter count: a number of flashes is required")
            elif service == "CHARGING_CONTROL":
                data = self._checked_profile(car, form.get("data"))
            request = ServiceRequest(
                service, secrets.token_hex(12).upper() + "@bmw.de", self.engine.now(), car.service_mode, data
            )
            car.services.append(request)
            return {
                "executionStatus": {
                    "serviceType": service,
                    "status": "INITIATED",
                    "eventId": request.event_id,
                }
            }

    def service_status_body(self, username: str, vin: str, service_type: str | None) -> dict[str, Any]:
        with self._lock:
            car = self._car_of(username, vin)
            if not service_type:
                raise ApiError(400, "Parameter serviceType is required")
            latest = [r for r in car.services if r.service_type == service_type]
            if not latest:
                raise ApiError(404, f"No service request of type {service_type} found")
            request = latest[-1]
            status = self.engine.service_status(request)
            body: dict[str, Any] = {
                "serviceType": service_type,
                "status": status,
                "eventId": request.event_id,
            }
            if status != "INITIATED":
                result = "STATUS_CHANGED" if status == "EXECUTED" else "STATUS_UNKNOWN"
                body["extendedStatus"] = {"result": result}
            return {"executionStatus": body}

    def send_poi(self, username: str, vin: str, form: dict[str, str]) -> None:
        with self._lock:
            car = self._car_of(username, vin)
            if not car.supports("sendPoi"):
                raise ApiError(400, "Service SEND_POI_TO_CAR not supported by vehicle")
            try:
                poi = json.loads(form.get("data") or form.get("body") or "")["poi"]
                lat, lon = poi["lat"], poi["lon"]
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError(400, 'POI data must be JSON {"poi": {"lat": ..., "lon": ..., ...}}') from exc
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)) or not (
                -90 <= lat <= 90 and -180 <= lon <= 180
            ):
                raise ApiError(400, "POI lat and lon must be valid coordinates")
            now = self.engine.now()
            car.pois.append({**poi, "createdAt": fleet.car_time(now)})
            destination = {"lat": lat, "lon": lon}
            destination.update({key: poi[key] for key in ("country", "city", "street") if poi.get(key)})
            car.destinations.insert(
                0, {**destination, "type": "DESTINATION", "createdAt": fleet.car_time(now)}
            )

    def _check_security_answer(self, account: Account, answer: str | None) -> None:
        if account.security_answer is None:
            return
        if not answer:
            raise ApiError(
                500, "(SmartPhoneUtil-A-2013) Action is forbidden. secretKnowledge is missing but required!"
            )
        if not hmac.compare_digest(answer.encode(), account.security_answer.encode()):
            raise ApiError(500, "(SmartPhoneUtil-A-2014) Action is forbidden. secretKnowledge is wrong!")

    def _checked_profile(self, car: SimVehicle, text: str | None) -> dict[str, Any]:
        """The CHARGING_CONTROL `data`, checked against the car's profile kind; ApiError(400) if invalid."""
        kind = PROFILE_KINDS.get(car.info["chargingControl"])
        if kind is None:
            raise ApiError(400, "Service CHARGING_CONTROL not supported by vehicle")
        try:
            data = json.loads(text or "")
        except ValueError as exc:
            raise ApiError(400, "Invalid charging profile: data is not JSON") from exc
        if not isinstance(data, dict) or list(data) != [kind] or not isinstance(data[kind], dict):
            raise ApiError(400, f'Invalid charging profile: expected {{"{kind}": {{...}}}}')
        profile: dict[str, Any] = data[kind]
        for key, value in profile.items():
            if key.startswith("timer") or key == "overrideTimer":
                self._check_timer(kind, key, value)
        if profile.get("chargingMode", "IMMEDIATE_CHARGING") not in (
            "IMMEDIATE_CHARGING",
            "DELAYED_CHARGING",
        ):
            raise ApiError(400, "Invalid charging profile: unknown chargingMode")
        if profile.get("chargingPreferences", "NO_PRESELECTION") not in (
            "NO_PRESELECTION",
            "CHARGING_WINDOW",
        ):
            raise ApiError(400, "Invalid charging profile: unknown chargingPreferences")
        if not isinstance(profile.get("climatizationEnabled", False), bool):
            raise ApiError(400, "Invalid charging profile: climatizationEnabled must be true or false")
        window = profile.get("preferredChargingWindow", {})
        if not isinstance(window, dict) or not all(
            _HHMM.match(str(window[key])) for key in ("startTime", "endTime") if key in window
        ):
            raise ApiError(400, "Invalid charging profile: preferredChargingWindow times must be HH:MM")
        return profile

    @staticmethod
    def _check_timer(kind: str, name: str, timer: Any) -> None:
        if name not in PROFILE_TIMERS[kind] or not isinstance(timer, dict):
            raise ApiError(400, f"Invalid charging profile: {kind} has no timer {name}")
        if "departureTime" in timer and not _HHMM.match(str(timer["departureTime"])):
            raise ApiError(400, f"Invalid charging profile: {name}.departureTime must be HH:MM")
        if not isinstance(timer.get("timerEnabled", False), bool):
            raise ApiError(400, f"Invalid charging profile: {name}.timerEnabled must be true or false")
        weekdays = timer.get("weekdays", [])
        if kind == "twoTimesTimer" and "weekdays" in timer:
            raise ApiError(400, f"Invalid charging profile: twoTimesTimer {name} has no weekdays")
        if not isinstance(weekdays, list) or not set(weekdays) <= WEEKDAYS:
            raise ApiError(400, f"Invalid charging profile: {name}.weekdays must be day names")
