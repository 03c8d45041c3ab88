"""The simulator: its cars and the parts that keep the rest, behind the methods tests and demos steer it by.

- accounts.py: accounts, the client credentials and OAuth tokens
- engine.py:   the clock, charging progress, remote services falling due
- bodies.py:   the vehicle API's answers built from a car's state
- faults.py:   fault injection and the request log
- app.py:      the HTTP face (`Simulator.app`), which holds the simulator and calls these parts

State is shared between the server thread and the test thread, so every part works under one re-entrant
lock.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from bot.bmw.simulator import fleet
from bot.bmw.simulator.accounts import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_ANSWER,
    DEFAULT_USERNAME,
    Accounts,
)
from bot.bmw.simulator.app import simulator_app
from bot.bmw.simulator.bodies import Bodies
from bot.bmw.simulator.car import SimVehicle
from bot.bmw.simulator.engine import TimeEngine
from bot.bmw.simulator.faults import Fault, Faults, RequestLog, RequestRecord
from bot.car_status import FIELDS


class Simulator:
    """The simulated BMW i Remote API: its state, and `app`, its ASGI face."""

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
        self._lock = threading.RLock()
        self.engine = TimeEngine(
            self._lock,
            service_seconds=service_seconds,
            charge_percent_per_minute=charge_percent_per_minute,
            clock=clock,
        )
        self.accounts = Accounts(
            self._lock, self.engine.now, api_key=api_key, api_secret=api_secret, token_ttl=token_ttl
        )
        self._vehicles: dict[str, SimVehicle] = {}
        self.bodies = Bodies(self._lock, self._vehicles, self.accounts, self.engine)
        self.faults = Faults(self._lock)
        self.log = RequestLog(self._lock, self.engine.now, make=RequestRecord)
        self._next_serial = 400001
        self.app = simulator_app(self)

    # -- clock ------------------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulator time in epoch seconds: the clock plus everything `advance()` added."""
        return self.engine.now()

    def advance(self, seconds: float) -> None:
        self.engine.advance(seconds)

    @property
    def service_seconds(self) -> float:
        """How long a remote service takes from INITIATED to its end; settable while running."""
        return self.engine.service_seconds

    @service_seconds.setter
    def service_seconds(self, seconds: float) -> None:
        self.engine.service_seconds = seconds

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
            if username in self.accounts:
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
            self.accounts.add(username, password, security_answer, vins)
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
        for field in FIELDS.values():  # the bot's field table: each reading the spec leaves out, its sample
            if field.iremote is not None and field.sample is not None:
                status.setdefault(field.iremote, field.sample)
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
            self.engine.sync(car)
            return car

    def set_status(self, vin: str, **fields: Any) -> None:
        """Overwrite vehicleStatus fields. chargingLevelHv re-bases the charge (and the electric range unless
        given); chargingStatus="CHARGING" starts a charge now (plugging the car in unless told otherwise)."""
        with self._lock:
            self.engine.set_status(self.vehicle(vin), fields)

    def plug_in(self, vin: str, *, charging: bool = True) -> None:
        """Connect the cable; charging=False leaves the car waiting (delayed charging) for CHARGE_NOW."""
        with self._lock:
            self.engine.plug_in(self.vehicle(vin), charging=charging)

    def unplug(self, vin: str) -> None:
        """Pull the cable; a running charge ends early as FINISHED_NOT_FULL / CONNECTOR_REMOVAL."""
        with self._lock:
            self.engine.unplug(self.vehicle(vin))

    # -- tokens ------------------------------------------------------------------------------------------

    def expire_tokens(self, username: str | None = None) -> None:
        self.accounts.expire_tokens(username)

    def revoke_refresh_tokens(self, username: str | None = None) -> None:
        self.accounts.revoke_refresh_tokens(username)

    def change_password(self, username: str, password: str) -> None:
        self.accounts.change_password(username, password)

    # -- faults and the request log ---------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.add_fault(fault)

    def clear_faults(self) -> None:
        self.faults.clear_faults()

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log, oldest first (see faults.py's `RequestLog`)."""
        return self.log.requests

    def requests_to(self, path_fragment: str, method: str | None = None) -> list[RequestRecord]:
        return self.log.requests_to(path_fragment, method)

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
            accounts = self.accounts.snapshot()
            cars = [self.vehicle_view(vin) for vin in self._vehicles]
            return {"now": self.now(), "accounts": accounts, "vehicles": cars}
