"""The CarData simulator: its accounts and cars, composed of rooms that share one lock and one clock.

- core.py:   the lock, the clock, accounts, faults and the request log
- engine.py: the cars' physics (quiet and live reporting, bursts, charging)
- oauth.py:  the device-code flow and its tokens
- rest.py:   the quota, mappings, containers, telematic and basic data, charging history
- stream.py: what the broker (broker.py) asks: logins, subscriptions, queued messages, drops
- wire.py:   error answers, timestamps, stream messages, the request log's lines
- app.py:    the HTTP face (`CardataSimulator`), built on this state
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from bot.cardata.simulator import fleet
from bot.cardata.simulator.core import Account
from bot.cardata.simulator.engine import SimCar, past_sessions
from bot.cardata.simulator.fleet import CarKind, CarSpec
from bot.cardata.simulator.oauth import POLL_INTERVAL
from bot.cardata.simulator.rest import DAILY_QUOTA, Rest
from bot.cardata.simulator.stream import STREAM_LINGER, Stream
from bot.cardata.simulator.wire import iso

DEFAULT_CLIENT_ID = "6f1c2b9e-3d4a-4e8b-9c7d-2a5b8e1f0c31"
DEFAULT_GCID = "b2f7e4a1-5c3d-4f6e-8a9b-0c1d2e3f4a5b"


class CardataState(Rest, Stream):
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
        super().__init__(
            charge_percent_per_minute=charge_percent_per_minute,
            auto_approve_seconds=auto_approve_seconds,
            daily_quota=daily_quota,
            poll_interval=poll_interval,
            stream_linger=stream_linger,
            clock=clock,
        )
        self._next_serial = 600001

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
                        for key, (value, unit) in spec.served.items()
                        if key not in absent
                    },
                    synced_at=now,
                    history=past_sessions(spec, now),
                )
                self._write_charge(self._cars[spec.vin], now - 3600, quiet=True)
            secondary = [self._fresh_vin("WBY7Z8C5")]
            self._accounts[gcid] = Account(gcid, client_id, car_vins, secondary, now - 400 * 86400)
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
