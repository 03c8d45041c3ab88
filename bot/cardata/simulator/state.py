"""Everything the CarData simulator remembers: accounts, device codes, tokens, containers, quota, cars.

Time is lazy, as in the i Remote simulator (bot/bmw/simulator/state.py): each read of a car first brings
it up to "now" in time order (charge gained one percent at a time, a flapping charge resuming), so
`advance()` and wall-clock time behave the same. Every change of a streamed key of a *live* car is queued as
a stream message stamped with the simulated time it happened; a *quiet* car queues a burst of all its keys
when it is switched off and when a charge ends at 100 % (fleet.py); the broker (broker.py) drains the queue.
State is shared between the HTTP thread, the broker thread and the test thread: public methods hold one
lock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.bmw.simulator import Fault
from bot.bmw.simulator.faults import Faults, RequestLog
from bot.cardata.simulator import fleet
from bot.cardata.simulator.fleet import CarKind, CarSpec

DEFAULT_CLIENT_ID = "6f1c2b9e-3d4a-4e8b-9c7d-2a5b8e1f0c31"
DEFAULT_GCID = "b2f7e4a1-5c3d-4f6e-8a9b-0c1d2e3f4a5b"

SCOPE = "authenticate_user openid cardata:api:read cardata:streaming:read"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ACCESS_TTL = 3600
ID_TTL = 3600
REFRESH_TTL = 14 * 86400
DEVICE_CODE_TTL = 300
POLL_INTERVAL = 5
# s a gcid's stream still counts as taken after it closed: a CONNACK 5 within ~10 s of one's own disconnect is
# the old session still counting (docs/cardata.md); our assumed value.
STREAM_LINGER = 5.0
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5: each slow_down adds 5 s to the interval
DAILY_QUOTA = 50
MAX_CONTAINERS = 10
CONTAINER_ID_LENGTH = 13  # BMW's container ids (Guide §3.4)
HISTORY_PAGE = 5
MAX_QUEUED_MESSAGES = 10_000
SECRET_FIELDS = {"code_verifier", "device_code", "refresh_token", "access_token", "id_token"}
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels, no look-alikes
FAULT_KINDS = ("error", "timeout", "slow")  # of the i Remote simulator's Fault kinds, those served here

Decision = Literal["approved", "denied"]


class RestError(Exception):
    """A REST answer: HTTP `status` with `{"exveErrorId", "exveErrorMsg", "exveNote"}`."""

    def __init__(self, status: int, error_id: str, message: str, note: str = "") -> None:
        super().__init__(message)
        self.status, self.error_id, self.message, self.note = status, error_id, message, note

    def body(self) -> dict[str, str]:
        return {"exveErrorId": self.error_id, "exveErrorMsg": self.message, "exveNote": self.note}


class OAuthError(Exception):
    """An OAuth answer: HTTP `status` (400 unless said) with `{"error", "error_description"}`.

    The device flow's answers carry the status of BMW's device-flow spec v1.6: `authorization_pending` and
    `access_denied` 403, `expired_token` 401, `slow_down` 400.
    """

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def iso(t: float) -> str:
    """Epoch seconds as CarData's ISO timestamps, e.g. "2025-10-05T12:34:56.000Z"."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(t * 1000) % 1000:03d}Z"


def iso_seconds(t: float) -> str:
    """Epoch seconds as a stream value's timestamp: whole seconds, e.g. "2025-10-01T10:12:39Z"."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """An ISO timestamp (a trailing Z allowed) or epoch seconds, as epoch seconds; ValueError otherwise."""
    try:
        return float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class StreamMessage:
    """One stream message: MQTT topic `{gcid}/{vin}`, one key, BMW's payload shape (inside it `topic` is the
    VIN alone, `entityId` the gcid, no `unit` where the key has none, the value's time in whole seconds)."""

    gcid: str
    vin: str
    key: str
    value: str
    unit: str | None
    time: float

    @property
    def topic(self) -> str:
        return f"{self.gcid}/{self.vin}"

    def payload(self) -> dict[str, Any]:
        entry = {"timestamp": iso_seconds(self.time), "value": self.value}
        if self.unit is not None:
            entry["unit"] = self.unit
        return {
            "vin": self.vin,
            "entityId": self.gcid,
            "topic": self.vin,
            "timestamp": iso(self.time),
            "data": {self.key: entry},
        }


@dataclass
class RequestRecord:
    time: float
    method: str  # CONNECT for a stream connection attempt, SUBSCRIBE for its subscription
    path: str  # "mqtt" for the stream
    query: dict[str, str]
    form: dict[str, str]
    gcid: str | None
    # HTTP status; for CONNECT the CONNACK code (0 accepted, 3 over the per-IP limit, 4 bad token, 5 not
    # authorised), for SUBSCRIBE the SUBACK code (0 granted, 0x80 refused)
    status: int


@dataclass
class _Account:
    gcid: str
    client_id: str
    vins: list[str]
    secondary: list[str]
    mapped_since: float
    quota_day: str = ""
    calls: int = 0


@dataclass
class _DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    challenge: str
    expires_at: float
    approve_at: float | None  # automatic approval time (the demo), None = wait for the control surface
    interval: int
    last_poll: float | None = None
    decision: Decision | None = None
    used: bool = False


@dataclass
class _Token:
    gcid: str
    client_id: str
    expires_at: float


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


@dataclass(eq=False)
class SimCar:
    vin: str
    gcid: str
    spec: CarSpec
    kind: CarKind
    soc: float
    target: int  # where a charge ends: 100 on a quiet car, which has no target
    values: dict[str, tuple[str, str | None, float]]  # key -> (value, unit, time it last changed)
    synced_at: float
    resume_at: float | None = None  # a flapping charge goes back to CHARGINGACTIVE at this time
    session_start: tuple[float, float] | None = None  # (time, soc) of the running charge
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.values[fleet.CHARGING_STATUS][0]

    @property
    def plugged(self) -> bool:
        return self.values[fleet.PORT_STATUS][0] == "CONNECTED"


class CardataState:
    """The simulated CarData backend without its HTTP face (see `CardataSimulator` in app.py)."""

    def __init__(
        self,
        *,
        charge_percent_per_minute: float = 1.0,
        auto_approve_seconds: float | None = None,
        daily_quota: int = DAILY_QUOTA,
        poll_interval: int = POLL_INTERVAL,
        stream_linger: float = STREAM_LINGER,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if charge_percent_per_minute <= 0 or daily_quota < 0 or poll_interval < 1 or stream_linger < 0:
            raise ValueError(
                "charge_percent_per_minute > 0, daily_quota >= 0, poll_interval >= 1, stream_linger >= 0"
                " required"
            )
        if auto_approve_seconds is not None and auto_approve_seconds < 0:
            raise ValueError("auto_approve_seconds must be None or >= 0")
        self.charge_percent_per_minute = charge_percent_per_minute
        self.auto_approve_seconds = auto_approve_seconds
        self.daily_quota = daily_quota
        self.poll_interval = poll_interval  # the device flow's: BMW's 5 s, shorter in tests and the demo
        self.stream_linger = stream_linger
        self._clock = clock or time.time
        self._offset = 0.0
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}  # by gcid
        self._clients: dict[str, str] = {}  # client id -> gcid
        self._cars: dict[str, SimCar] = {}
        self._device_codes: dict[str, _DeviceCode] = {}
        self._access: dict[str, _Token] = {}
        self._id_tokens: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}
        self._containers: dict[str, Container] = {}
        self._outbox: deque[StreamMessage] = deque(maxlen=MAX_QUEUED_MESSAGES)
        self._drops: list[str | None] = []  # gcids whose stream the broker must drop (None = all)
        self._held: set[str] = set()  # gcids whose stream "another app" holds (`hold_stream`)
        self._unconfigured: set[str] = set()  # gcids whose subscriptions are refused (`unconfigure_stream`)
        self._closed_at: dict[str, float] = {}  # when each gcid's last stream closed (`stream_linger`)
        self._faults = Faults(self._lock)
        self._next_serial = 600001
        self._log = RequestLog(self._lock, self.now, make=RequestRecord, secret_fields=SECRET_FIELDS)
        self.published: deque[StreamMessage] = deque(maxlen=MAX_QUEUED_MESSAGES)
        # Called after anything that may change the stream (the broker wakes up on it); never under a
        # long operation, and it must not call back into the state.
        self.on_change: Callable[[], None] | None = None

    # -- clock ------------------------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += seconds
            self._sync_all()
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- accounts and cars -------------------------------------------------------------------------------

    def add_account(
        self,
        client_id: str,
        gcid: str | None = None,
        *,
        vins: list[str] | None = None,
        cars: list[CarSpec] | None = None,
    ) -> tuple[str, list[str]]:
        """Register an account (gcid, its CarData client id) with its cars; returns (gcid, VINs).

        `cars` gives the specs; else `vins` names them (BEV, REX, BEV, ... in turn); else a fresh copy of
        the default fleet. Every account also has one SECONDARY mapping (a car it cannot read).
        """
        with self._lock:
            gcid = gcid or str(uuid.uuid4())
            if gcid in self._accounts or client_id in self._clients:
                raise ValueError("gcid or client id already registered")
            if cars is None:
                names = vins or [self._fresh_vin("WBY8P2C0"), self._fresh_vin("WBY1Z8C5")]
                cars = [(fleet.i3_bev if i % 2 == 0 else fleet.i3_rex)(vin) for i, vin in enumerate(names)]
            car_vins = [spec.vin for spec in cars]
            if len(set(car_vins)) != len(car_vins) or any(vin in self._cars for vin in car_vins):
                raise ValueError("VINs must be unique across the simulator")
            now = self.now()
            for spec in cars:
                absent = fleet.ABSENT_KEYS[spec.kind]
                self._cars[spec.vin] = SimCar(
                    vin=spec.vin,
                    gcid=gcid,
                    spec=spec,
                    kind=spec.kind,
                    soc=float(spec.soc),
                    target=spec.target if spec.kind == "live" else 100,
                    values={
                        key: (value, unit, now - 3600)
                        for key, (value, unit) in spec.values.items()
                        if key not in absent
                    },
                    synced_at=now,
                    history=_past_sessions(spec, now),
                )
                self._write_charge(self._cars[spec.vin], now - 3600, quiet=True)
            secondary = [self._fresh_vin("WBY7Z8C5")]
            self._accounts[gcid] = _Account(gcid, client_id, car_vins, secondary, now - 400 * 86400)
            self._clients[client_id] = gcid
            return gcid, car_vins

    def add_default_account(self, kind: CarKind = "quiet") -> list[str]:
        """DEFAULT_CLIENT_ID / DEFAULT_GCID: the i3 BEV and the i3 REX on their fixed VINs, both `kind`."""
        with self._lock:
            _, vins = self.add_account(DEFAULT_CLIENT_ID, DEFAULT_GCID, cars=fleet.default_fleet(kind=kind))
            self._accounts[DEFAULT_GCID].secondary = [fleet.DEFAULT_SECONDARY_VIN]
            return vins

    def _fresh_vin(self, prefix: str) -> str:
        while True:
            vin = f"{prefix}{self._next_serial:09d}"[:17]
            self._next_serial += 1
            if vin not in self._cars:
                return vin

    def car(self, vin: str) -> SimCar:
        """The car brought up to the current simulator time (KeyError for an unknown VIN)."""
        with self._lock:
            car = self._cars[vin]
            self._sync(car, self.now())
            return car

    def value(self, vin: str, key: str) -> str | None:
        with self._lock:
            entry = self.car(vin).values.get(key)
            return entry[0] if entry else None

    # -- the car's behaviour -----------------------------------------------------------------------------

    def _put(
        self,
        car: SimCar,
        key: str,
        value: str,
        unit: str | None,
        t: float,
        *,
        quiet: bool = False,
        again: bool = False,
    ) -> None:
        """Set a telematic value the car has; on a live car a change of a streamed key (any write with
        again=True) is streamed, a quiet car keeps it for its next burst."""
        if key in fleet.ABSENT_KEYS[car.kind]:
            return
        old = car.values.get(key)
        if not again and old is not None and old[0] == value and old[1] == unit:
            return
        car.values[key] = (value, unit, t)
        if not quiet and car.kind == "live" and key not in fleet.REST_ONLY_KEYS:
            self._outbox.append(StreamMessage(car.gcid, car.vin, key, value, unit, t))

    def _burst(self, car: SimCar, t: float) -> None:
        """A quiet car reports: every streamable key it has, as of `t`, one message each."""
        for key, (value, unit, _) in list(car.values.items()):
            if key not in fleet.REST_ONLY_KEYS:
                car.values[key] = (value, unit, t)
                self._outbox.append(StreamMessage(car.gcid, car.vin, key, value, unit, t))

    def _write_charge(self, car: SimCar, t: float, *, quiet: bool = False) -> None:
        """The keys derived from the state of charge: SoC, target, ranges, time remaining."""
        soc = str(math.floor(car.soc + 1e-9))
        self._put(car, fleet.SOC, soc, "%", t, quiet=quiet)
        self._put(car, fleet.SOC_DISPLAYED, soc, "%", t, quiet=quiet)
        self._put(car, fleet.SOC_TARGET, str(car.target), "%", t, quiet=quiet)
        electric = round(car.soc * car.spec.range_per_percent)
        self._put(car, fleet.ELECTRIC_RANGE, str(electric), "km", t, quiet=quiet)
        if car.spec.fuel_range_km:
            self._put(car, fleet.TOTAL_RANGE, str(electric + car.spec.fuel_range_km), "km", t, quiet=quiet)
        minutes = 0
        if car.status in ("CHARGINGACTIVE", "CHARGINGPAUSED"):
            minutes = math.ceil(max(0.0, car.target - car.soc) / self.charge_percent_per_minute)
        self._put(car, fleet.TIME_REMAINING, str(minutes), "min", t, quiet=quiet)

    def _sync_all(self) -> None:
        now = self.now()
        for car in self._cars.values():
            self._sync(car, now)

    def _sync(self, car: SimCar, now: float) -> None:
        """Bring the car to `now`: whole percents gained while charging, a flap resuming, in time order."""
        rate = self.charge_percent_per_minute / 60  # percent per second
        while car.synced_at < now:
            t = car.synced_at
            step_end = math.inf
            level = 0.0
            if car.status == "CHARGINGACTIVE":
                level = min(math.floor(car.soc + 1e-9) + 1.0, float(car.target))
                step_end = t + max(0.0, level - car.soc) / rate
            until = min(now, step_end, car.resume_at if car.resume_at is not None else math.inf)
            if car.status == "CHARGINGACTIVE":
                car.soc = level if until == step_end else car.soc + rate * (until - t)
            car.synced_at = until
            if until == step_end:
                self._write_charge(car, until)  # the last percent arrives before the end of the charge
                if car.soc >= car.target:
                    self._end_charge(car, until, "CHARGINGENDED", fleet.GOAL_REACHED)
            if car.resume_at is not None and until >= car.resume_at:
                car.resume_at = None
                if car.status == "CHARGINGPAUSED":
                    self._put(car, fleet.CHARGING_STATUS, "CHARGINGACTIVE", None, until)

    def _start_charge(self, car: SimCar, t: float) -> None:
        self._plug(car, t)
        car.session_start = (t, car.soc)
        self._put(car, fleet.CHARGING_STATUS, "CHARGINGACTIVE", None, t)
        self._put(car, fleet.HV_STATUS, "CHARGING", None, t)
        self._write_charge(car, t)
        if car.soc >= car.target:
            self._end_charge(car, t, "CHARGINGENDED", fleet.GOAL_REACHED)

    def _end_charge(self, car: SimCar, t: float, status: str, reason: str) -> None:
        """End the charge; `reason` in the quiet cars' words (fleet.py), a live car says it in SP25's. A quiet
        car reports the end of a charge at 100 % at once, any other end at its next switch-off."""
        car.resume_at = None
        full = car.soc >= car.target
        # This charge's end reason comes first, and comes even when it equals the last charge's.
        result = "FAILED" if status == "CHARGINGERROR" else "SUCCESS"
        self._put(car, fleet.END_REASON, fleet.SP25_END_REASONS.get(reason, reason), None, t, again=True)
        self._put(car, fleet.HVPM_FINISH_REASON, reason, None, t, again=True)
        self._put(car, fleet.LAST_RESULT, result, None, t, again=True)
        self._put(car, fleet.CHARGING_STATUS, status, None, t)
        self._put(car, fleet.HV_STATUS, "FINISHED_FULLY_CHARGED" if full else "FINISHED_NOT_FULL", None, t)
        self._write_charge(car, t)
        if car.session_start is not None:
            started, soc = car.session_start
            car.history.append(_session(car.spec, started, t, soc, car.soc, _mileage(car)))
            car.session_start = None
        if car.kind == "quiet" and car.soc >= 100:
            self._burst(car, t)

    def _plug(self, car: SimCar, t: float) -> None:
        self._put(car, fleet.PORT_STATUS, "CONNECTED", None, t)
        self._put(car, fleet.PLUGGED, "true", None, t)

    def _charging(self, car: SimCar) -> bool:
        return car.status in ("CHARGINGACTIVE", "CHARGINGPAUSED")

    def _act(self, vin: str, action: Callable[[SimCar, float], None]) -> None:
        with self._lock:
            car = self.car(vin)
            action(car, self.now())
        self._changed()

    def report(self, vin: str, key: str, value: str, unit: str | None = None) -> None:
        """The car reports `value` for `key` as it is (a future or hostile value too), streamed like any
        change: at once from a live car, at the next burst from a quiet one."""
        self._act(vin, lambda car, t: self._put(car, key, value, unit, t))

    def plug_in(self, vin: str, *, charging: bool = True) -> None:
        """Connect the cable; charging=False leaves the car plugged in and waiting."""

        def act(car: SimCar, t: float) -> None:
            if charging and not self._charging(car):
                self._start_charge(car, t)
            else:
                self._plug(car, t)

        self._act(vin, act)

    def unplug(self, vin: str) -> None:
        """Pull the cable: a running charge ends early (CONNECTOR_REMOVED) and the car reads NOCHARGING."""

        def act(car: SimCar, t: float) -> None:
            if self._charging(car):
                self._end_charge(car, t, "NOCHARGING", fleet.CONNECTOR_REMOVED)
            else:
                self._put(car, fleet.CHARGING_STATUS, "NOCHARGING", None, t)
                self._put(car, fleet.HV_STATUS, "INVALID", None, t)
            self._put(car, fleet.PORT_STATUS, "DISCONNECTED", None, t)
            self._put(car, fleet.PLUGGED, "false", None, t)

        self._act(vin, act)

    def start_charging(self, vin: str) -> None:
        """Start charging now (plugging the car in first when needed)."""

        def act(car: SimCar, t: float) -> None:
            if not self._charging(car):
                self._start_charge(car, t)

        self._act(vin, act)

    def finish_charging(
        self, vin: str, *, status: str = "CHARGINGENDED", reason: str = fleet.BY_DRIVER
    ) -> None:
        """End the running charge now with this status (CHARGINGENDED, CHARGINGERROR...) and reason, in the
        quiet cars' words (a live car says fleet.SP25_END_REASONS' instead; any other reason as given)."""
        if status in ("CHARGINGACTIVE", "CHARGINGPAUSED"):
            raise ValueError("a charge ends in a state other than CHARGINGACTIVE or CHARGINGPAUSED")

        def act(car: SimCar, t: float) -> None:
            if not self._charging(car):
                raise ValueError("the car is not charging")
            self._end_charge(car, t, status, reason)

        self._act(vin, act)

    def flap(self, vin: str, seconds: float = 5.0) -> None:
        """CHARGINGACTIVE -> CHARGINGPAUSED now -> CHARGINGACTIVE after `seconds`, as real cars flap."""
        if seconds <= 0:
            raise ValueError("seconds must be > 0")

        def act(car: SimCar, t: float) -> None:
            if car.status != "CHARGINGACTIVE":
                raise ValueError("only an active charge flaps")
            self._put(car, fleet.CHARGING_STATUS, "CHARGINGPAUSED", None, t)
            car.resume_at = t + seconds

        self._act(vin, act)

    def set_soc(self, vin: str, soc: float, target: int | None = None) -> None:
        if not 0 <= soc <= 100 or (target is not None and not 0 < target <= 100):
            raise ValueError("soc in 0..100 and target in 1..100 required")

        def act(car: SimCar, t: float) -> None:
            if target is not None and car.kind == "quiet":
                raise ValueError("a quiet car (an i3) has no charge target: it charges to 100 %")
            car.soc = float(soc)
            if target is not None:
                car.target = target
            if car.status == "CHARGINGACTIVE" and car.soc >= car.target:
                self._end_charge(car, t, "CHARGINGENDED", fleet.GOAL_REACHED)
            else:
                self._write_charge(car, t)

        self._act(vin, act)

    def set_locked(self, vin: str, locked: bool, state: str | None = None) -> None:
        """Lock (SECURED) or unlock; `state` one of fleet.DOOR_STATES instead (SELECTIVELOCKED: only the
        driver's door unlocked), the REST-only lock status following in its own words."""
        door = state or ("SECURED" if locked else "UNLOCKED")
        if door not in fleet.DOOR_STATES:
            raise ValueError(f"state must be one of {', '.join(fleet.DOOR_STATES)}")

        def act(car: SimCar, t: float) -> None:
            self._put(car, fleet.LOCK_STATUS, fleet.DOOR_STATES[door], None, t)
            self._put(car, fleet.DOOR_STATUS, door, None, t)

        self._act(vin, act)

    def set_window(self, vin: str, which: str, state: str) -> None:
        """A window (fleet.WINDOWS, e.g. "row1.driver") reads CLOSED, OPEN or INTERMEDIATE (half open)."""
        if which not in fleet.WINDOW_STATUS or state not in fleet.WINDOW_STATES:
            windows, states = ", ".join(fleet.WINDOWS), ", ".join(fleet.WINDOW_STATES)
            raise ValueError(f"window must be one of {windows}; state one of {states}")
        self._act(vin, lambda car, t: self._put(car, fleet.WINDOW_STATUS[which], state, None, t))

    def switch_off(self, vin: str) -> None:
        """The driver switches the car off: a quiet car reports (a burst of all its keys); a live car has
        streamed everything already."""

        def act(car: SimCar, t: float) -> None:
            if car.kind == "quiet":
                self._burst(car, t)

        self._act(vin, act)

    def set_kind(self, vin: str, kind: CarKind) -> None:
        """Make the car quiet or live (fleet.py) from now on: it drops the keys that kind does not have and
        gains those it has (as its spec starts them); a quiet car's charge then ends at 100 %."""
        if kind not in fleet.CAR_KINDS:
            raise ValueError(f"kind must be one of {', '.join(fleet.CAR_KINDS)}")

        def act(car: SimCar, t: float) -> None:
            car.kind = kind
            car.target = car.spec.target if kind == "live" else 100
            for key in fleet.ABSENT_KEYS[kind]:
                car.values.pop(key, None)
            for key, (value, unit) in car.spec.values.items():
                if key not in car.values and key not in fleet.ABSENT_KEYS[kind]:
                    car.values[key] = (value, unit, t)
            self._write_charge(car, t, quiet=True)

        self._act(vin, act)

    def move(self, vin: str, lat: float, lon: float, heading: int | None = None) -> None:
        """Drive to (lat, lon): mileage grows by the distance; latitude and longitude come 1 s apart. A quiet
        car reports it all when switched off (switch_off) after the drive."""
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError("lat in -90..90 and lon in -180..180 required")

        def act(car: SimCar, t: float) -> None:
            old_lat = float(car.values[fleet.LATITUDE][0])
            old_lon = float(car.values[fleet.LONGITUDE][0])
            km = _distance_km(old_lat, old_lon, lat, lon)
            mileage = int(car.values[fleet.MILEAGE][0]) + round(km)
            self._put(car, fleet.MILEAGE, str(mileage), None, t)
            self._put(car, fleet.LATITUDE, f"{lat:.6f}", "degrees", t)
            self._put(car, fleet.LONGITUDE, f"{lon:.6f}", "degrees", t + 1)
            if heading is not None:
                self._put(car, fleet.HEADING, str(heading), "degrees", t + 1)

        self._act(vin, act)

    # -- the stream's side -------------------------------------------------------------------------------

    def drain_messages(self) -> list[StreamMessage]:
        """Bring every car to now and hand over the stream messages queued since the last call."""
        with self._lock:
            self._sync_all()
            messages = list(self._outbox)
            self._outbox.clear()
            self.published.extend(messages)
            return messages

    def stream_login(self, gcid: str | None, password: str | None, *, live: bool = False) -> int:
        """The CONNACK code for (user name, password): 4 unless a gcid and a valid id token issued to it; then
        5 while the gcid's stream is taken (`live`: the broker has one open; or another app holds it) or
        closed less than `stream_linger` seconds ago; else 0 (docs/cardata.md: the values are assumptions)."""
        with self._lock:
            token = self._id_tokens.get(password or "")
            lingers = self.now() < self._closed_at.get(gcid or "", -math.inf) + self.stream_linger
            if token is None or token.gcid != gcid or token.expires_at <= self.now():
                code = 4
            elif live or gcid in self._held or lingers:
                code = 5
            else:
                code = 0
            self.record("CONNECT", "mqtt", {}, {}, gcid, code)
            return code

    def stream_closed(self, gcid: str) -> None:
        """The broker closed the gcid's stream: BMW still counts it as taken for `stream_linger` seconds."""
        with self._lock:
            self._closed_at[gcid] = self.now()

    def hold_stream(self, gcid: str) -> None:
        """Another app (Home Assistant, evcc...) takes the gcid's stream: ours is dropped, and every
        connection for the gcid is refused with CONNACK 5 until `release_stream`."""
        with self._lock:
            self._held.add(gcid)
        self.drop_connections(gcid)

    def release_stream(self, gcid: str) -> None:
        """The other app lets go of the gcid's stream; it counts as taken for `stream_linger` seconds more."""
        with self._lock:
            if gcid in self._held:
                self._held.discard(gcid)
                self._closed_at[gcid] = self.now()

    def unconfigure_stream(self, gcid: str) -> None:
        """The account's stream is not set up in BMW's portal (no keys ticked under "Configure data stream",
        or the client not subscribed to "CarData Stream"): a live stream is dropped, and every subscription
        is refused with SUBACK 0x80 until `configure_stream`."""
        with self._lock:
            self._unconfigured.add(gcid)
        self.drop_connections(gcid)

    def configure_stream(self, gcid: str) -> None:
        """The owner set the stream up in the portal: subscriptions are granted again."""
        with self._lock:
            self._unconfigured.discard(gcid)

    def stream_subscribe(self, gcid: str, ours: bool) -> bool:
        """SUBSCRIBE by the gcid's connection to a topic that is `ours` (its gcid, its cars) or not: whether
        it is granted (logged with its SUBACK code, 0 or 0x80)."""
        with self._lock:
            granted = ours and gcid not in self._unconfigured
            self.record("SUBSCRIBE", "mqtt", {}, {}, gcid, 0 if granted else 0x80)
            return granted

    def id_token_valid(self, password: str) -> bool:
        with self._lock:
            token = self._id_tokens.get(password)
            return token is not None and token.expires_at > self.now()

    def vins_of(self, gcid: str) -> list[str]:
        with self._lock:
            account = self._accounts.get(gcid)
            return list(account.vins) if account else []

    def drop_connections(self, gcid: str | None = None) -> None:
        """Ask the broker to drop the stream of `gcid` (None: every stream)."""
        with self._lock:
            self._drops.append(gcid)
        self._changed()

    def take_drops(self) -> list[str | None]:
        with self._lock:
            drops, self._drops = self._drops, []
            return drops

    # -- OAuth -------------------------------------------------------------------------------------------

    def device_code(self, form: dict[str, str], base_url: str) -> dict[str, Any]:
        """POST /gcdm/oauth/device/code."""
        with self._lock:
            client_id = form.get("client_id", "")
            if client_id not in self._clients:
                raise OAuthError("invalid_client", "Unknown client id", 401)
            if form.get("response_type") != "device_code":
                raise OAuthError("unsupported_response_type", "response_type must be device_code")
            scopes = set(form.get("scope", "").split())
            if not scopes or not scopes <= set(SCOPE.split()):
                raise OAuthError("invalid_request", f"scope must be within: {SCOPE}")
            challenge = form.get("code_challenge", "")
            if form.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
                raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
            now = self.now()
            user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            code = _DeviceCode(
                device_code=secrets.token_urlsafe(48),
                user_code=user_code,
                client_id=client_id,
                challenge=challenge,
                expires_at=now + DEVICE_CODE_TTL,
                approve_at=None if self.auto_approve_seconds is None else now + self.auto_approve_seconds,
                interval=self.poll_interval,
            )
            self._device_codes[code.device_code] = code
            verification = f"{base_url}/oneid/link"
            return {
                "user_code": user_code,
                "device_code": code.device_code,
                "interval": self.poll_interval,
                "expires_in": DEVICE_CODE_TTL,
                "verification_uri": verification,
                "verification_uri_complete": f"{verification}?user_code={user_code}",
            }

    def decide(self, user_code: str, decision: Decision) -> None:
        """The owner approves or denies a device code in the portal (ValueError: no such pending code)."""
        with self._lock:
            for code in self._device_codes.values():
                if code.user_code == user_code.upper() and not code.used and code.expires_at > self.now():
                    code.decision = decision
                    return
            raise ValueError("no pending device code with that user code")

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            now = self.now()
            return [
                c.user_code
                for c in self._device_codes.values()
                if not c.used and c.decision is None and c.expires_at > now
            ]

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """POST /gcdm/oauth/token: the device-code and refresh-token grants."""
        with self._lock:
            grant = form.get("grant_type")
            if grant == DEVICE_GRANT:
                return self._device_grant(form)
            if grant == "refresh_token":
                return self._refresh_grant(form)
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _device_grant(self, form: dict[str, str]) -> dict[str, Any]:
        code = self._device_codes.get(form.get("device_code", ""))
        if code is None or code.used or code.client_id != form.get("client_id"):
            raise OAuthError("invalid_grant", "Unknown or used device code")
        now = self.now()
        if code.expires_at <= now:
            raise OAuthError("expired_token", "The device code has expired", 401)
        if code.decision == "denied":
            code.used = True
            raise OAuthError("access_denied", "The user denied the request", 403)
        too_fast = code.last_poll is not None and now - code.last_poll < code.interval
        code.last_poll = now
        if too_fast:
            code.interval += SLOW_DOWN_STEP
            raise OAuthError("slow_down", f"Poll at most every {code.interval} s")
        if code.decision is None and code.approve_at is not None and now >= code.approve_at:
            code.decision = "approved"
        if code.decision is None:
            raise OAuthError("authorization_pending", "The user has not yet approved the request", 403)
        code.used = True
        if not hmac.compare_digest(s256(form.get("code_verifier", "")), code.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        return self._issue(self._clients[code.client_id], code.client_id)

    def _refresh_grant(self, form: dict[str, str]) -> dict[str, Any]:
        token = self._refresh.pop(form.get("refresh_token", ""), None)
        if token is None or token.client_id != form.get("client_id") or token.expires_at <= self.now():
            raise OAuthError("invalid_grant", "Refresh token expired, revoked or unknown")
        return self._issue(token.gcid, token.client_id)

    def _issue(self, gcid: str, client_id: str) -> dict[str, Any]:
        now = self.now()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "cardata-sim"}).encode())
        claims = {
            "sub": gcid,
            "aud": client_id,
            "iat": int(now),
            "exp": int(now + ID_TTL),
            "jti": uuid.uuid4().hex,
        }
        id_token = f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(secrets.token_bytes(64))}"
        self._access[access] = _Token(gcid, client_id, now + ACCESS_TTL)
        self._id_tokens[id_token] = _Token(gcid, client_id, now + ID_TTL)
        self._refresh[refresh] = _Token(gcid, client_id, now + REFRESH_TTL)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "id_token": id_token,
            "gcid": gcid,
            "scope": SCOPE,
        }

    def expire_tokens(self, gcid: str | None = None) -> None:
        """Access and id tokens end now (the broker drops the streams they opened)."""
        with self._lock:
            past = self.now() - 1
            for token in (*self._access.values(), *self._id_tokens.values()):
                if gcid is None or token.gcid == gcid:
                    token.expires_at = past
        self._changed()

    def revoke_refresh_tokens(self, gcid: str | None = None) -> None:
        with self._lock:
            self._refresh = {k: t for k, t in self._refresh.items() if gcid is not None and t.gcid != gcid}

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """One login's refresh token ends; the account's other logins (a co-owner's) keep theirs."""
        with self._lock:
            self._refresh.pop(refresh_token, None)

    # -- REST --------------------------------------------------------------------------------------------

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
                running = _session(car.spec, started, self.now(), soc, car.soc, _mileage(car))
                listed.append({k: v for k, v in running.items() if k != "endTime"})
            sessions = [s for s in listed if lower <= s["startTime"] <= upper]
            page = sessions[offset : offset + HISTORY_PAGE]
            more = offset + HISTORY_PAGE < len(sessions)
            return {"data": page, "next_token": str(offset + HISTORY_PAGE) if more else None}

    def basic_data(self, gcid: str, vin: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._readable_car(gcid, vin).spec.basic_data)

    # -- faults ------------------------------------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Make matching OAuth or REST requests fail ("error": `status`; "timeout": 504 after `delay` s) or
        answer late ("slow"); the stream fails through drop_connections and expire_tokens instead."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}")
        self._faults.add_fault(fault)

    def clear_faults(self) -> None:
        self._faults.clear_faults()

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, used up by one."""
        return self._faults.take_fault(method, path)

    # -- the request log and a view for tests ------------------------------------------------------------

    def requester(self, authorization: str | None, form: dict[str, str]) -> str | None:
        """Who a request is from, for the log: the bearer's gcid, else the client id's account."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            token = self._access.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is not None:
                return token.gcid
            return self._clients.get(form.get("client_id", ""))

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.requests

    def record(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        gcid: str | None,
        status: int,
    ) -> None:
        self._log.record(method, path, query, form, gcid, status)

    def requests_to(self, path_fragment: str, method: str | None = None) -> list[RequestRecord]:
        return self._log.requests_to(path_fragment, method)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self._sync_all()
            return {
                "now": self.now(),
                "accounts": [
                    {
                        "gcid": a.gcid,
                        "vins": list(a.vins),
                        "secondary": list(a.secondary),
                        "calls_today": self.calls_today(a.gcid),
                    }
                    for a in self._accounts.values()
                ],
                "pending_user_codes": self.pending_user_codes(),
                "vehicles": [
                    {
                        "vin": car.vin,
                        "gcid": car.gcid,
                        "kind": car.kind,
                        "soc": round(car.soc, 3),
                        "target": car.target,
                        "values": {
                            k: {"value": v, "unit": u, "timestamp": iso(t)}
                            for k, (v, u, t) in car.values.items()
                        },
                    }
                    for car in self._cars.values()
                ],
            }

    def requests_json(self) -> list[dict[str, Any]]:
        return self._log.requests_json()


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


def _mileage(car: SimCar) -> int:
    return int(car.values[fleet.MILEAGE][0])


def _session(
    spec: CarSpec, start: float, end: float, soc_start: float, soc_end: float, mileage: int
) -> dict[str, Any]:
    """A chargingHistory entry: times in epoch seconds, energy from the battery size (90 % efficient), the
    mileage (a required integer in BMW's spec) when it began."""
    capacity = float(spec.basic_data.get("hvsMaxEnergyAbsolute") or 0)
    energy = max(0.0, soc_end - soc_start) / 100 * capacity / 0.9
    return {
        "startTime": int(start),
        "endTime": int(end),
        "displayedStartSoc": math.floor(soc_start + 1e-9),
        "displayedSoc": math.floor(soc_end + 1e-9),
        "energyConsumedFromPowerGridKwh": round(energy, 2),
        "totalChargingDurationSec": int(end - start),
        "isPreconditioningActivated": False,
        "mileage": mileage,
        "mileageUnits": "KM",
    }


def _past_sessions(spec: CarSpec, now: float) -> list[dict[str, Any]]:
    """Three charges in the past week, oldest first, so the history has something on a fresh account."""
    sessions = []
    mileage = int(spec.values[fleet.MILEAGE][0])
    for days, start_soc in ((6, 22.0), (4, 31.0), (2, 18.0)):
        start = now - days * 86400
        end = start + (spec.target - start_soc) * 60
        sessions.append(_session(spec, start, end, start_soc, spec.target, mileage - 30 * days))
    return sessions
