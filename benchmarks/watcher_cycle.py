"""One charge-watcher cycle over many simulated cars, per car, as a ratio to bare BMW client status calls.

    .venv/bin/python benchmarks/watcher_cycle.py [--cars 10000] [--charging 0.2] [--concurrency 20]
    .venv/bin/python benchmarks/watcher_cycle.py --cars 1000        # quick

The simulator runs in-process (httpx's ASGI transport), one account per two cars (an i3 BEV and an i3 REX),
a share of the cars charging; the store is a temporary file. After a first cycle (first sight of every car)
some charging cars are unplugged and some idle cars unlocked, so the measured cycle also decides transitions
and alerts (every alert is on for every owner) and pushes them (to a counting stub: Telegram is not part of
this). The baseline, measured in the same run with the same
concurrency, is the same number of status calls made directly with the BMW client: the simulator's own
service time plus the client's, without the watcher's logic. API calls per car per hour come from the calls
the cycle made and the next poll time it stored for each car.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from benchmarks.report import result
from bot.alerts import AlertPrefs, CarAlert
from bot.bmw.client import BMWClient
from bot.bmw.models import Account, Region
from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET, Simulator
from bot.bmw.simulator.fleet import car_time
from bot.car_status import Notice
from bot.config import Settings
from bot.crypto import generate_secret_key
from bot.garage import Garage
from bot.store import Store
from bot.watcher import Watcher

PASSWORD = "bench-password"


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts status calls per VIN on their way to the in-process simulator."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.status_calls: Counter[str] = Counter()
        self.other_calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.rstrip("/").split("/")
        if parts[-1] == "status":
            self.status_calls[parts[-2]] += 1
        else:
            self.other_calls += 1
        return await self.inner.handle_async_request(request)


def client(transport: httpx.AsyncBaseTransport) -> BMWClient:
    return BMWClient(
        api_key=DEFAULT_API_KEY,
        api_secret=DEFAULT_API_SECRET,
        base_url="http://simulator",
        transport=transport,
    )


async def bounded(concurrency: int, calls: list[Callable[[], Awaitable[object]]]) -> float:
    """Seconds to run all `calls` with at most `concurrency` at a time."""
    slots = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with slots:
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(one(call) for call in calls))
    return time.perf_counter() - started


async def run(cars: int, charging_share: float, concurrency: int, folder: Path) -> None:
    settings = Settings(watcher_concurrency=concurrency)
    sim = Simulator()
    users = {tg_id: f"driver{tg_id}@example.com" for tg_id in range(1, cars // 2 + 1)}
    owners: dict[str, int] = {}
    for tg_id, username in users.items():
        for vin in sim.add_account(username, PASSWORD):
            owners[vin] = tg_id
    vins = sorted(owners)
    charging = set(vins[: round(len(vins) * charging_share)])
    for vin in charging:
        sim.set_status(vin, chargingLevelHv=5)  # far from full: still charging when measured
        sim.plug_in(vin, charging=True)

    counting = CountingTransport(httpx.ASGITransport(app=sim.app))
    store = Store(folder / "bot.sqlite3", [generate_secret_key()])
    api = client(counting)
    garage = Garage(store, api)
    await bounded(
        concurrency,
        [
            lambda tg_id=tg_id, username=username: garage.link(
                tg_id, None, Region.REST_OF_WORLD, username, PASSWORD
            )
            for tg_id, username in users.items()
        ],
    )
    for tg_id in users:  # the worst case for the cycle: every owner has every alert on
        store.save_alert_prefs(tg_id, AlertPrefs(level_on=True, plug_on=True))
    pushed: list[Notice] = []
    alerted: list[CarAlert] = []

    async def push(event: Notice | CarAlert) -> None:
        (alerted if isinstance(event, CarAlert) else pushed).append(event)

    watcher = Watcher(
        garage,
        push,
        charge_poll_seconds=settings.charge_poll_seconds,
        idle_poll_seconds=settings.idle_poll_seconds,
        concurrency=concurrency,
    )
    now = time.time()
    first = await watcher.cycle(now)  # first sight of every car
    ended = sorted(charging)[: len(charging) // 10]
    for vin in ended:
        sim.unplug(vin)
    unlocked = sorted(set(vins) - charging)[: len(vins) // 20]
    for vin in unlocked:  # left unlocked just now: due at the measured cycle, half an hour later
        sim.set_status(
            vin, doorLockState="UNLOCKED", updateReason="VEHICLE_SHUTDOWN", updateTime=car_time(now)
        )
    alerted.clear()

    # Baseline: the same status calls with the BMW client alone (its own pool, logged-in accounts).
    bare_transport = CountingTransport(httpx.ASGITransport(app=sim.app))
    bare = client(bare_transport)
    accounts = {tg_id: Account(username, PASSWORD, Region.REST_OF_WORLD) for tg_id, username in users.items()}
    await bounded(concurrency, [lambda a=a: bare.login(a) for a in accounts.values()])
    baseline = await bounded(concurrency, [lambda v=v: bare.status(accounts[owners[v]], v) for v in vins])

    counting.status_calls.clear()
    later = now + 2 * settings.idle_poll_seconds  # every car is due
    started = time.perf_counter()
    report = await watcher.cycle(later)
    measured = time.perf_counter() - started
    assert report.polled == len(vins) and report.failed == 0 and first.failed == 0, (first, report)
    assert len(pushed) == len(ended) and sum(bare_transport.status_calls.values()) == len(vins)
    assert sorted(a.vin for a in alerted) == unlocked, len(alerted)

    watches = {w.vin: w for w in store.watches_due(float("inf"))}
    print(f"{len(vins)} cars on {len(users)} accounts, {len(charging)} charging, concurrency {concurrency}")
    print(f"baseline (BMW client alone): {baseline / len(vins) * 1e3:8.3f} ms per car")
    print(
        f"watcher cycle:               {measured / len(vins) * 1e3:8.3f} ms per car"
        f"  = {measured / baseline:.2f}x baseline ({len(pushed)} end-of-charge pushes and"
        f" {len(alerted)} alerts decided)"
    )
    per_car, base_per_car = measured / len(vins) * 1e3, baseline / len(vins) * 1e3
    result(
        "watcher cycle, per car",
        f"{per_car:.3f} ms",
        f"{base_per_car:.3f} ms (client alone)",
        measured / baseline,
    )
    for label, group in (
        ("charging", [v for v in vins if v in charging and v not in ended]),
        ("idle", [v for v in vins if v not in charging]),
    ):
        calls = sum(counting.status_calls[v] for v in group) / len(group)
        interval = statistics.median(watches[v].next_poll_at - later for v in group)
        print(
            f"{label:>8} cars: {calls:.2f} status calls per car per cycle, next poll in {interval:.0f} s"
            f" -> {calls * 3600 / interval:.1f} BMW API calls per car per hour"
        )
        result(f"watcher, {label} car", f"{calls * 3600 / interval:.1f} calls/h", "-", None)
    await bare.aclose()
    await api.aclose()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cars", type=int, default=10_000, help="simulated cars (two per account)")
    parser.add_argument("--charging", type=float, default=0.2, help="share of the cars charging")
    parser.add_argument("--concurrency", type=int, default=Settings().watcher_concurrency)
    args = parser.parse_args()
    if args.cars < 20:
        parser.error("--cars must be at least 20")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args.cars, args.charging, args.concurrency, Path(folder)))


if __name__ == "__main__":
    main()
