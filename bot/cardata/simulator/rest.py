"""The CarData simulator's REST API: the daily quota, mappings, containers and what a car's readings, charging
history and basic data answer."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.cardata.simulator.engine import Engine, SimCar, charging_session, mileage_of
from bot.cardata.simulator.oauth import OAuth
from bot.cardata.simulator.wire import RestError, iso, parse_time

DAILY_QUOTA = 50
MAX_CONTAINERS = 10
CONTAINER_ID_LENGTH = 13  # BMW's container ids (Guide §3.4)
HISTORY_PAGE = 5


@dataclass
class Container:
    container_id: str
    gcid: str
    name: str
    purpose: str
    descriptors: list[str]
    created: float
    state: str = "ACTIVE"

    def summary(self) -> dict[str, Any]:
        return {
            "containerId": self.container_id,
            "name": self.name,
            "purpose": self.purpose,
            "state": self.state,
            "created": iso(self.created),
        }


class Rest(OAuth, Engine):
    """The REST calls, each charged to the caller's daily quota by `authenticate`."""

    def __init__(self, *, daily_quota: int, **rest: Any) -> None:
        super().__init__(**rest)
        self.daily_quota = daily_quota
        self._containers: dict[str, Container] = {}

    def authenticate(self, authorization: str | None) -> str:
        """The gcid behind `Authorization: Bearer`, after charging one call to its daily quota."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            token = self._access.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is None or token.expires_at <= self.now():
                raise RestError(401, "CU-401", "Unauthorized", "Access token missing, invalid or expired")
            account = self._accounts[token.gcid]
            day = datetime.fromtimestamp(self.now(), UTC).date().isoformat()
            if account.quota_day != day:
                account.quota_day, account.calls = day, 0
            if account.calls >= self.daily_quota:
                raise RestError(
                    403, "CU-429", "API rate limit reached", "The daily quota resets at 00:00 UTC"
                )
            account.calls += 1
            return token.gcid

    def spend_quota(self, gcid: str, calls: int | None = None) -> int:
        """Use up `calls` of today's quota (None: all of it); returns the calls left today."""
        with self._lock:
            account = self._accounts[gcid]
            day = datetime.fromtimestamp(self.now(), UTC).date().isoformat()
            if account.quota_day != day:
                account.quota_day, account.calls = day, 0
            account.calls = min(
                self.daily_quota, account.calls + (self.daily_quota if calls is None else calls)
            )
            return self.daily_quota - account.calls

    def calls_today(self, gcid: str) -> int:
        with self._lock:
            account = self._accounts[gcid]
            day = datetime.fromtimestamp(self.now(), UTC).date().isoformat()
            return account.calls if account.quota_day == day else 0

    def mappings(self, gcid: str) -> list[dict[str, Any]]:
        with self._lock:
            account = self._accounts[gcid]
            since = iso(account.mapped_since)
            return [{"vin": v, "mappedSince": since, "mappingType": "PRIMARY"} for v in account.vins] + [
                {"vin": v, "mappedSince": since, "mappingType": "SECONDARY"} for v in account.secondary
            ]

    def make_secondary(self, vin: str) -> None:
        """The car's account is now only its SECONDARY user (e.g. it sold the car and stays a driver): BMW
        answers CU-104 to its reads."""
        with self._lock:
            account = self._accounts[self.car(vin).gcid]
            account.vins.remove(vin)
            account.secondary.append(vin)

    def create_container(self, gcid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            name, purpose, keys = body.get("name"), body.get("purpose"), body.get("technicalDescriptors")
            if not (isinstance(name, str) and name and isinstance(purpose, str) and purpose):
                raise RestError(400, "CU-400", "Bad Request", "name and purpose are required")
            if not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
                raise RestError(400, "CU-400", "Bad Request", "technicalDescriptors must list keys")
            unknown = [k for k in keys if not k.startswith("vehicle.")]
            if unknown:
                raise RestError(400, "CU-402", "Invalid key", f"unknown descriptors: {', '.join(unknown)}")
            active = [c for c in self._containers.values() if c.gcid == gcid and c.state == "ACTIVE"]
            if len(active) >= MAX_CONTAINERS:
                raise RestError(
                    403, "CU-124", "Container limit reached", f"at most {MAX_CONTAINERS} containers per user"
                )
            container = Container(
                uuid.uuid4().hex[:CONTAINER_ID_LENGTH],
                gcid,
                name,
                purpose,
                list(dict.fromkeys(keys)),
                self.now(),
            )
            self._containers[container.container_id] = container
            return self.container(gcid, container.container_id)

    def containers(self, gcid: str) -> dict[str, Any]:
        with self._lock:
            return {"containers": [c.summary() for c in self._containers.values() if c.gcid == gcid]}

    def container(self, gcid: str, container_id: str) -> dict[str, Any]:
        with self._lock:
            container = self._own_container(gcid, container_id)
            return {**container.summary(), "technicalDescriptors": list(container.descriptors)}

    def delete_container(self, gcid: str, container_id: str) -> None:
        with self._lock:
            self._own_container(gcid, container_id).state = "DELETED"

    def _own_container(self, gcid: str, container_id: str) -> Container:
        container = self._containers.get(container_id)
        if container is None or container.gcid != gcid:
            raise RestError(404, "CU-404", "Not Found", "no such container")
        return container

    def _readable_car(self, gcid: str, vin: str) -> SimCar:
        account = self._accounts[gcid]
        if vin in account.secondary:
            raise RestError(403, "CU-104", "Forbidden", "only the PRIMARY user may read this vehicle")
        if vin not in account.vins:
            raise RestError(403, "CU-104", "Forbidden", "vehicle not mapped to this user")
        return self.car(vin)

    def telematic_data(self, gcid: str, vin: str, container_id: str | None) -> dict[str, Any]:
        with self._lock:
            car = self._readable_car(gcid, vin)
            if not container_id:
                raise RestError(400, "CU-400", "Bad Request", "containerId is required")
            container = self._own_container(gcid, container_id)
            if container.state != "ACTIVE":
                raise RestError(404, "CU-404", "Not Found", "the container is inactive")
            data = {
                key: {"value": value, "unit": unit, "timestamp": iso(t)}
                for key in container.descriptors
                if key in car.values
                for value, unit, t in [car.values[key]]
            }
            return {"telematicData": data}

    def charging_history(
        self, gcid: str, vin: str, start: str | None, end: str | None, next_token: str | None
    ) -> dict[str, Any]:
        with self._lock:
            car = self._readable_car(gcid, vin)
            try:
                lower = parse_time(start) if start else -math.inf
                upper = parse_time(end) if end else math.inf
                offset = int(next_token) if next_token else 0
            except ValueError as exc:
                raise RestError(400, "CU-400", "Bad Request", "from, to or nextToken malformed") from exc
            listed = list(car.history)
            if car.session_start is not None:  # a charge still running: listed without endTime
                started, soc = car.session_start
                running = charging_session(car.spec, started, self.now(), soc, car.soc, mileage_of(car))
                listed.append({k: v for k, v in running.items() if k != "endTime"})
            sessions = [s for s in listed if lower <= s["startTime"] <= upper]
            page = sessions[offset : offset + HISTORY_PAGE]
            more = offset + HISTORY_PAGE < len(sessions)
            return {"data": page, "next_token": str(offset + HISTORY_PAGE) if more else None}

    def basic_data(self, gcid: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._readable_car(gcid, vin).spec.basic_data)
