"""Everything the simulator remembers: accounts, tokens, cars, the clock, faults and the request log.

Time is lazy: nothing runs in the background. Each read of a car first brings it up to "now" (charging
progress, remote services falling due, in time order), so `advance()` and wall-clock time behave the same
and idle cars cost nothing. State is shared between the server thread and the test thread, so every
public method holds one re-entrant lock.
"""

from __future__ import annotations

import copy
import hmac
import json
import math
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args
from urllib.parse import parse_qsl

from bot.bmw.simulator import fleet

DEFAULT_API_KEY = "demo-key"
DEFAULT_API_SECRET = "demo-secret"
DEFAULT_USERNAME = "demo@example.com"
DEFAULT_PASSWORD = "demo-password"
DEFAULT_SECURITY_ANSWER: str | None = None

ServiceMode = Literal["normal", "timed_out", "not_executed", "stuck"]
FaultKind = Literal["error", "timeout", "slow", "reset", "malformed"]
SERVICE_MODES: tuple[str, ...] = get_args(ServiceMode)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

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
UNSUPPORTED_FLAGS = {"NOT_SUPPORTED", "NOT_AVAILABLE"}
PROFILE_KINDS = {"WEEKLY_PLANNER": "weeklyPlanner", "TWO_TIMES_TIMER": "twoTimesTimer"}
PROFILE_TIMERS = {
    "weeklyPlanner": {"timer1", "timer2", "timer3", "overrideTimer"},
    "twoTimesTimer": {"timer1", "timer2"},
}
WEEKDAYS = {"MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"}
CLIMATE_SECONDS = 30 * 60  # how long CLIMATE_NOW keeps the cabin conditioned
SECRET_FIELDS = {"password", "bmwSkAnswer", "refresh_token", "access_token"}
MAX_REQUESTS = 10_000  # the log keeps the newest ones; a long demo must not grow without bound
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_TOKEN_ALPHABET = string.ascii_letters + string.digits


class ApiError(Exception):
    """An answer of the vehicle API: HTTP `code` with `{"error": {"code": code, "description": ...}}`."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "description": self.description}}


class OAuthError(Exception):
    """An OAuth answer: HTTP `code` with `{"error": error, "error_description": description}`."""

    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code, self.error, self.description = code, error, description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class Fault:
    path: str  # regex searched in the request path, e.g. r"/status$" or "executeService"
    kind: FaultKind
    status: int = 500  # for "error"
    delay: float = 30.0  # seconds of real time, for "timeout" and "slow"
    times: int | None = 1  # None = every matching request until cleared
    method: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}")
        if self.times is not None and self.times < 1:
            raise ValueError("fault times must be None or at least 1")
        re.compile(self.path)  # a bad pattern fails here, not on the first request

    def matches(self, method: str, path: str) -> bool:
        method_matches = self.method is None or self.method.upper() == method
        return method_matches and re.search(self.path, path) is not None


@dataclass
class RequestRecord:
    time: float
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    username: str | None
    status: int  # 0 when the connection was dropped without an answer


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


@dataclass
class _Account:
    username: str
    password: str
    security_answer: str | None
    vins: list[str]


@dataclass
class _Token:
    username: str
    expires_at: float


def parse_form(body: bytes) -> dict[str, str]:
    """A urlencoded body as a dict, whatever the Content-Type says (the write-up's curl misspells it)."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def redact(values: dict[str, str]) -> dict[str, str]:
    return {key: "***" if key in SECRET_FIELDS else value for key, value in values.items()}


def _new_token(length: int) -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))


class SimulatorState:
    """The simulated BMW backend without its HTTP face (see `Simulator` in app.py)."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        service_seconds: float = 6.0,
        token_ttl: int = 28799,
        charge_percent_per_minute: float = 1.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if service_seconds < 0 or token_ttl <= 0 or charge_percent_per_minute <= 0:
            raise ValueError("service_seconds >= 0, token_ttl > 0 and charge_percent_per_minute > 0 required")
        self.api_key, self.api_secret = api_key, api_secret
        self.service_seconds = service_seconds
        self.token_ttl = token_ttl
        self.charge_percent_per_minute = charge_percent_per_minute
        self._clock = clock or time.time
        self._offset = 0.0
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}  # by casefolded username: e-mail logins ignore case
        self._vehicles: dict[str, SimVehicle] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> username
        self._faults: list[Fault] = []
        self._next_serial = 400001
        self.requests: list[RequestRecord] = []

    # -- clock ------------------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulator time in epoch seconds: the clock plus everything `advance()` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += seconds

    # -- accounts and cars -------------------------------------------------------------------------------

    def add_account(
        self,
        username: str,
        password: str,
        *,
        security_answer: str | None = None,
        vehicles: list[dict[str, Any]] | None = None,
    ) -> list[str]:
        """Register an account with its cars (specs as built by `fleet`); returns their VINs.

        vehicles=None gives a fresh copy of the default fleet (i3 BEV + i3 REX) with VINs of its own.
        """
        with self._lock:
            if username.casefold() in self._accounts:
                raise ValueError(f"account {username} exists")
            now = self.now()
            if vehicles is None:
                bev, rex = self._fresh_vin("WBY1Z2100"), self._fresh_vin("WBY1Z4100")
                vehicles = fleet.default_fleet(bev, rex, now=now)
            vins = [spec["vehicle"]["vin"] for spec in vehicles]
            if len(set(vins)) != len(vins) or any(vin in self._vehicles for vin in vins):
                raise ValueError("VINs must be unique across the simulator")
            for spec in vehicles:
                self._add_vehicle(copy.deepcopy(spec), username, now)
            self._accounts[username.casefold()] = _Account(username, password, security_answer, vins)
            return vins

    def add_default_account(self) -> list[str]:
        """demo@example.com / demo-password with the default fleet on the fixed VINs."""
        with self._lock:
            fleet_specs = fleet.default_fleet(fleet.DEFAULT_BEV_VIN, fleet.DEFAULT_REX_VIN, now=self.now())
            return self.add_account(
                DEFAULT_USERNAME,
                DEFAULT_PASSWORD,
                security_answer=DEFAULT_SECURITY_ANSWER,
                vehicles=fleet_specs,
            )

    def _fresh_vin(self, prefix: str) -> str:
        while True:
            vin = f"{prefix}0V{self._next_serial:06d}"
            self._next_serial += 1
            if vin not in self._vehicles:
                return vin

    def _add_vehicle(self, spec: dict[str, Any], owner: str, now: float) -> None:
        info = spec["vehicle"]
        status = spec.get("status", {})
        status["vin"] = info["vin"]
        self._vehicles[info["vin"]] = SimVehicle(
            vin=info["vin"],
            owner=owner,
            info=info,
            status=status,
            last_trip=spec.get("lastTrip", {}),
            all_trips=spec.get("allTrips", {}),
            charging_profile=spec.get("chargingProfile", {}),
            destinations=spec.get("destinations", []),
            soc=float(status.get("chargingLevelHv", 0)),
            synced_at=now,
        )

    def vehicle(self, vin: str) -> SimVehicle:
        """The car brought up to the current simulator time (KeyError for an unknown VIN)."""
        with self._lock:
            car = self._vehicles[vin]
            self._sync(car)
            return car

    def set_status(self, vin: str, **fields: Any) -> None:
        """Overwrite vehicleStatus fields. chargingLevelHv re-bases the charge (and the electric range unless
        given); chargingStatus="CHARGING" starts a charge now (plugging the car in unless told otherwise)."""
        with self._lock:
            car = self.vehicle(vin)
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

    def plug_in(self, vin: str, *, charging: bool = True) -> None:
        """Connect the cable; charging=False leaves the car waiting (delayed charging) for CHARGE_NOW."""
        with self._lock:
            car = self.vehicle(vin)
            now = self.now()
            car.status["connectionStatus"] = "CONNECTED"
            if charging:
                self._start_charging(car, now)
            else:
                car.status["chargingStatus"] = "WAITING_FOR_CHARGING"
                self._stamp(car, now, None)

    def unplug(self, vin: str) -> None:
        """Pull the cable; a running charge ends early as FINISHED_NOT_FULL / CONNECTOR_REMOVAL."""
        with self._lock:
            car = self.vehicle(vin)
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

    # -- tokens ------------------------------------------------------------------------------------------

    def expire_tokens(self, username: str | None = None) -> None:
        with self._lock:
            past = self.now() - 1
            for token in self._access.values():
                if username is None or token.username.casefold() == username.casefold():
                    token.expires_at = past

    def revoke_refresh_tokens(self, username: str | None = None) -> None:
        with self._lock:
            self._refresh = {
                token: owner
                for token, owner in self._refresh.items()
                if username is not None and owner.casefold() != username.casefold()
            }

    def change_password(self, username: str, password: str) -> None:
        """The owner changed the password at BMW: every session of the account ends, as BMW ends them."""
        with self._lock:
            self._accounts[username.casefold()].password = password
            self._access = {
                t: v for t, v in self._access.items() if v.username.casefold() != username.casefold()
            }
            self.revoke_refresh_tokens(username)

    def check_client(self, key: str, secret: str) -> None:
        if not (hmac.compare_digest(key, self.api_key) and hmac.compare_digest(secret, self.api_secret)):
            raise OAuthError(
                401,
                "invalid_client",
                "Client authentication failed (e.g., login failure, unknown client, "
                "no client authentication included or unsupported authentication method)",
            )

    def issue_token(self, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint after the client check: password and refresh_token grants."""
        with self._lock:
            grant = form.get("grant_type")
            if grant == "password":
                account = self._accounts.get(form.get("username", "").casefold())
                if account is None or not hmac.compare_digest(form.get("password", ""), account.password):
                    raise OAuthError(401, "invalid_grant", "Bad user credentials")
                username = account.username
            elif grant == "refresh_token":
                owner = self._refresh.pop(form.get("refresh_token", ""), None)
                if owner is None:
                    raise OAuthError(401, "invalid_grant", "Invalid refresh token")
                username = owner
            else:
                raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
            now = self.now()
            # Drop tokens long expired so a simulator running for days keeps a small table.
            self._access = {t: v for t, v in self._access.items() if v.expires_at > now - self.token_ttl}
            access, refresh = _new_token(32), _new_token(48)
            self._access[access] = _Token(username, now + self.token_ttl)
            self._refresh[refresh] = username
            return {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "refresh_token": refresh,
                "scope": "authenticate_user vehicle_data remote_services",
            }

    def authenticate(self, authorization: str | None) -> str:
        """The username behind an `Authorization: Bearer` header, or OAuthError invalid_token."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not value:
                raise OAuthError(
                    401, "invalid_token", "Full authentication is required to access this resource"
                )
            token = self._access.get(value.strip())
            if token is None:
                raise OAuthError(401, "invalid_token", "Invalid access token")
            if token.expires_at <= self.now():
                raise OAuthError(401, "invalid_token", "Access token expired")
            return token.username

    def requester(self, form: dict[str, str], authorization: str | None) -> str | None:
        """Who a request is from, for the log: the bearer's owner, else the token request's user."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            if scheme.lower() == "bearer" and value.strip() in self._access:
                return self._access[value.strip()].username
            if form.get("grant_type") == "refresh_token":
                return self._refresh.get(form.get("refresh_token", ""))
            return form.get("username")

    # -- faults and the request log ---------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, used up by one."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None

    def record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        username: str | None,
        status: int,
    ) -> None:
        with self._lock:
            self.requests.append(
                RequestRecord(self.now(), method, path, redact(query), redact(form), username, status)
            )
            if len(self.requests) > MAX_REQUESTS:
                del self.requests[: MAX_REQUESTS // 2]

    def requests_to(self, path_fragment: str, method: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [
                r
                for r in self.requests
                if path_fragment in r.path and (method is None or r.method == method.upper())
            ]

    # -- the vehicle API ---------------------------------------------------------------------------------

    def _car_of(self, username: str, vin: str) -> SimVehicle:
        car = self._vehicles.get(vin)
        if car is None or car.owner != username:
            raise ApiError(404, "Vehicle not found")
        self._sync(car)
        return car

    def vehicles_body(self, username: str) -> dict[str, Any]:
        with self._lock:
            account = self._accounts[username.casefold()]
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
                self._check_security_answer(self._accounts[username.casefold()], form.get("bmwSkAnswer"))
            elif service == "LIGHT_FLASH" and not form.get("count", "1").isdigit():
                raise ApiError(400, "Invalid parameter count: a number of flashes is required")
            elif service == "CHARGING_CONTROL":
                data = self._checked_profile(car, form.get("data"))
            request = ServiceRequest(
                service, secrets.token_hex(12).upper() + "@bmw.de", self.now(), car.service_mode, data
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
            status = self._service_status(request)
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
            now = self.now()
            car.pois.append({**poi, "createdAt": fleet.car_time(now)})
            destination = {"lat": lat, "lon": lon}
            destination.update({key: poi[key] for key in ("country", "city", "street") if poi.get(key)})
            car.destinations.insert(
                0, {**destination, "type": "DESTINATION", "createdAt": fleet.car_time(now)}
            )

    def _check_security_answer(self, account: _Account, answer: str | None) -> None:
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

    # -- time: charging and remote services ------------------------------------------------------------

    def _service_status(self, request: ServiceRequest) -> str:
        if request.result is not None:
            return request.result
        elapsed = self.now() - request.started
        if elapsed < self.service_seconds / 4:
            return "INITIATED"
        if elapsed < self.service_seconds / 2 or request.mode in ("stuck", "timed_out"):
            return "PENDING"
        return "DELIVERED"

    def _sync(self, car: SimVehicle) -> None:
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

    # -- control surface views ---------------------------------------------------------------------------

    def vehicle_view(self, vin: str) -> dict[str, Any]:
        """One car as JSON for the control surface."""
        with self._lock:
            car = self.vehicle(vin)
            return {
                "vin": car.vin,
                "owner": car.owner,
                "model": car.info.get("model"),
                "service_mode": car.service_mode,
                "climate_until": car.climate_until,
                "pois": copy.deepcopy(car.pois),
                "status": copy.deepcopy(car.status),
            }

    def snapshot(self) -> dict[str, Any]:
        """Accounts (no passwords or answers) and every car, as JSON for /_sim/state."""
        with self._lock:
            accounts = [
                {
                    "username": a.username,
                    "has_security_answer": a.security_answer is not None,
                    "vins": list(a.vins),
                }
                for a in self._accounts.values()
            ]
            cars = [self.vehicle_view(vin) for vin in self._vehicles]
            return {"now": self.now(), "accounts": accounts, "vehicles": cars}

    def requests_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self.requests]
