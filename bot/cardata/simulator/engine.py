"""The cars' physics: what each simulated car reports, when, and how it charges.

Time is lazy, as in the i Remote simulator (bot/bmw/simulator/engine.py): each read of a car first brings
it up to "now" in time order (charge gained one percent at a time, a flapping charge resuming), so
`advance()` and wall-clock time behave the same. Every change of a streamed key of a *live* car is queued as
a stream message stamped with the simulated time it happened; a *quiet* car queues a burst of all its keys
when it is switched off and when a charge ends at 100 % (fleet.py); the stream (stream.py) drains the queue.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.cardata.models import keys as cd
from bot.cardata.simulator import fleet
from bot.cardata.simulator.core import Core
from bot.cardata.simulator.fleet import CarKind, CarSpec
from bot.cardata.simulator.wire import StreamMessage

MAX_QUEUED_MESSAGES = 10_000


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
    bursts_lost: int = 0  # the next bursts that never reach the stream (`lose_next_burst`)

    @property
    def status(self) -> str:
        return self.values[cd.CHARGING_STATUS][0]

    @property
    def plugged(self) -> bool:
        return self.values[cd.PORT_STATUS][0] == "CONNECTED"


class Engine(Core):
    """The cars and their behaviour over simulated time."""

    def __init__(self, *, charge_percent_per_minute: float, **rest: Any) -> None:
        super().__init__(**rest)
        self.charge_percent_per_minute = charge_percent_per_minute
        self._cars: dict[str, SimCar] = {}
        self._outbox: deque[StreamMessage] = deque(maxlen=MAX_QUEUED_MESSAGES)
        self.published: deque[StreamMessage] = deque(maxlen=MAX_QUEUED_MESSAGES)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the simulator clock only moves forward")
        with self._lock:
            self._offset += seconds
            self._sync_all()
        self._changed()

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
        """A quiet car reports: every streamable key it has, as of `t`, one message each (none of them when
        the burst is lost: telematicData has it all the same)."""
        lost, car.bursts_lost = car.bursts_lost > 0, max(0, car.bursts_lost - 1)
        for key, (value, unit, _) in list(car.values.items()):
            if key not in fleet.REST_ONLY_KEYS:
                car.values[key] = (value, unit, t)
                if not lost:
                    self._outbox.append(StreamMessage(car.gcid, car.vin, key, value, unit, t))

    def _write_charge(self, car: SimCar, t: float, *, quiet: bool = False) -> None:
        """The keys derived from the state of charge: SoC, target, ranges, time remaining."""
        soc = str(math.floor(car.soc + 1e-9))
        self._put(car, cd.SOC_HEADER, soc, "%", t, quiet=quiet)
        self._put(car, cd.SOC_DISPLAYED, soc, "%", t, quiet=quiet)
        self._put(car, cd.SOC_TARGET, str(car.target), "%", t, quiet=quiet)
        electric = round(car.soc * car.spec.range_per_percent)
        self._put(car, cd.ELECTRIC_RANGE, str(electric), "km", t, quiet=quiet)
        if car.spec.fuel_range_km:
            self._put(car, cd.TOTAL_RANGE, str(electric + car.spec.fuel_range_km), "km", t, quiet=quiet)
        minutes = 0
        if car.status in ("CHARGINGACTIVE", "CHARGINGPAUSED"):
            minutes = math.ceil(max(0.0, car.target - car.soc) / self.charge_percent_per_minute)
        self._put(car, cd.TIME_REMAINING, str(minutes), "min", t, quiet=quiet)

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
                    self._put(car, cd.CHARGING_STATUS, "CHARGINGACTIVE", None, until)

    def _start_charge(self, car: SimCar, t: float) -> None:
        self._plug(car, t)
        car.session_start = (t, car.soc)
        self._put(car, cd.CHARGING_STATUS, "CHARGINGACTIVE", None, t)
        self._put(car, cd.HV_STATUS, "CHARGING", None, t)
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
        self._put(
            car, cd.REASON_CHARGING_END, fleet.SP25_END_REASONS.get(reason, reason), None, t, again=True
        )
        self._put(car, cd.HVPM_FINISH_REASON, reason, None, t, again=True)
        self._put(car, cd.LAST_CHARGING_RESULT, result, None, t, again=True)
        self._put(car, cd.CHARGING_STATUS, status, None, t)
        self._put(car, cd.HV_STATUS, "FINISHED_FULLY_CHARGED" if full else "FINISHED_NOT_FULL", None, t)
        self._write_charge(car, t)
        if car.session_start is not None:
            started, soc = car.session_start
            car.history.append(charging_session(car.spec, started, t, soc, car.soc, mileage_of(car)))
            car.session_start = None
        if car.kind == "quiet" and car.soc >= 100:
            self._burst(car, t)

    def _plug(self, car: SimCar, t: float) -> None:
        self._put(car, cd.PORT_STATUS, "CONNECTED", None, t)
        self._put(car, cd.IS_PLUGGED, "true", None, t)

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
                self._put(car, cd.CHARGING_STATUS, "NOCHARGING", None, t)
                self._put(car, cd.HV_STATUS, "INVALID", None, t)
            self._put(car, cd.PORT_STATUS, "DISCONNECTED", None, t)
            self._put(car, cd.IS_PLUGGED, "false", None, t)

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
            self._put(car, cd.CHARGING_STATUS, "CHARGINGPAUSED", None, t)
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
            self._put(car, cd.DOOR_LOCK, fleet.DOOR_STATES[door], None, t)
            self._put(car, cd.DOOR_STATUS, door, None, t)

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

    def lose_next_burst(self, vin: str) -> None:
        """The car's next burst is lost on the way (BMW streams with QoS 0): the car reported it, REST reads
        show it, the stream never brings it."""

        def act(car: SimCar, t: float) -> None:
            car.bursts_lost += 1

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
            for key, (value, unit) in car.spec.served.items():
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
            old_lat = float(car.values[cd.LATITUDE][0])
            old_lon = float(car.values[cd.LONGITUDE][0])
            km = _distance_km(old_lat, old_lon, lat, lon)
            mileage = int(car.values[cd.MILEAGE][0]) + round(km)
            self._put(car, cd.MILEAGE, str(mileage), None, t)
            self._put(car, cd.LATITUDE, f"{lat:.6f}", "degrees", t)
            self._put(car, cd.LONGITUDE, f"{lon:.6f}", "degrees", t + 1)
            if heading is not None:
                self._put(car, cd.HEADING, str(heading), "degrees", t + 1)

        self._act(vin, act)


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(a))


def mileage_of(car: SimCar) -> int:
    return int(car.values[cd.MILEAGE][0])


def charging_session(
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


def past_sessions(spec: CarSpec, now: float) -> list[dict[str, Any]]:
    """Three charges in the past week, oldest first, so the history has something on a fresh account."""
    sessions = []
    mileage = int(spec.served[cd.MILEAGE][0])
    for days, start_soc in ((6, 22.0), (4, 31.0), (2, 18.0)):
        start = now - days * 86400
        end = start + (spec.target - start_soc) * 60
        sessions.append(charging_session(spec, start, end, start_soc, spec.target, mileage - 30 * days))
    return sessions
