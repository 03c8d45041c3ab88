"""What recording drives (bot/drives.py) adds to the cost of a CarData stream message, and that it calls BMW
never (issue 21).

    .venv/bin/python -m benchmarks.drive_bookkeeping [--cars 20] [--days 1] [--rounds 5]

One process, no network: a Store on a temporary file with `--cars` owners linked (rows), half of them live
cars, half quiet, and a `CarDataBackend` whose client's transport counts requests and answers none. A
scripted stream, built once and replayed identically in each run, on a simulated clock: live cars drive
(the odometer a km at a time, the position, the level), park and charge (the level a percent at a time);
quiet cars send a switch-off burst after each drive. Every message goes through the bot's own path,
`StreamSupervisor.apply` (merge, persist, the charge detector, the backend's listener), and each simulated
minute the detector decides what is due (a quiet car's burst: its drive) and `settle_drives` runs (a live
car's drive), as the backend's loops do.

Baseline first, then with: the same backend with its drive bookkeeping (`_moved`, `_close`) doing nothing.
Two figures: the stream's path per message (merge, persist, the detector, the listener: what the issue's
"per-message cost" is), and apart from it the minute's timed work per car, where a live car's drive closes.
Runs alternate, each on a fresh database; the best time per message of each (the run least disturbed by a
shared machine's other work; the medians are printed too), the ratio, and the BMW requests counted. The
charge history's bookkeeping (a recorded charge) runs in both: it is part of the detector's end of a charge,
not separable from it (a stand-in until costs land, issue 21).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.report import result
from bot.cardata import models as cd
from bot.cardata.client import CarDataClient
from bot.cardata.models import TelematicValue, Tokens
from bot.cardata.storage import CarDataLink
from bot.cardata_backend import CarDataBackend
from bot.crypto import generate_secret_key
from bot.drives import SETTLED_SECONDS, Parked
from bot.store import Store, StoredVehicle

T0 = 1_800_000_000.0
MINUTE = 60.0
Message = tuple[float, int, str, dict[str, TelematicValue]]  # when, owner, VIN, values


def _value(value: str, at: float, unit: str | None = None) -> TelematicValue:
    return TelematicValue(value, unit, datetime.fromtimestamp(at, UTC))


def script(cars: int, days: int) -> list[Message]:
    """Each car's days: at 8:00 a 20 km drive (a message a km on a live car, with the position and every
    3rd km the level), parked for the day, at 18:00 back, then a 30 % charge a percent at a time (a live
    car streams each; a quiet car reports at its switch-off)."""
    messages: list[Message] = []
    for owner in range(1, cars + 1):
        vin, live = f"WBY8P2C0{owner:09d}", owner % 2 == 0
        t, km, soc = T0, 20_000.0, 80.0
        first = {
            cd.MILEAGE: _value(f"{km:.0f}", t),
            cd.SOC_DISPLAYED: _value(f"{soc:.0f}", t, "%"),
            cd.LATITUDE: _value("48.17", t),
            cd.LONGITUDE: _value("11.55", t),
            cd.CHARGING_STATUS: _value("NOCHARGING", t),
        }
        if live:
            first[cd.SOC_TARGET] = _value("80", t, "%")
        messages.append((t, owner, vin, first))
        for day in range(days):
            for leg, start in enumerate((8, 18)):
                t = T0 + day * 86400 + start * 3600
                burst: dict[str, TelematicValue] = {}
                for step in range(20):
                    t += MINUTE
                    km += 1
                    soc -= 0.2
                    values = {
                        cd.MILEAGE: _value(f"{km:.0f}", t),
                        cd.LATITUDE: _value(f"{48.17 + step / 1000:.5f}", t),
                        cd.LONGITUDE: _value(f"{11.55 + step / 1000:.5f}", t),
                    }
                    if step % 3 == 0:
                        values[cd.SOC_DISPLAYED] = _value(f"{soc:.0f}", t, "%")
                    if live:
                        messages.append((t, owner, vin, values))
                    else:
                        burst.update(values)
                if leg == 1:  # home: a charge
                    t += 15 * MINUTE
                    if live:
                        messages.append((t, owner, vin, {cd.CHARGING_STATUS: _value("CHARGINGACTIVE", t)}))
                    for _ in range(30):
                        t += 6 * MINUTE
                        soc += 1
                        if live:
                            messages.append((t, owner, vin, {cd.SOC_DISPLAYED: _value(f"{soc:.0f}", t, "%")}))
                    end = {cd.CHARGING_STATUS: _value("CHARGINGENDED", t)}
                    if live:
                        messages.append((t, owner, vin, end))
                    else:
                        burst.update(end)
                if not live:  # the switch-off burst: a key a message, as an i3 sends it
                    burst[cd.SOC_DISPLAYED] = _value(f"{soc:.0f}", t, "%")
                    messages += [(t, owner, vin, {key: value}) for key, value in burst.items()]
    return sorted(messages, key=lambda message: message[0])


class WithoutDrives(CarDataBackend):
    """The baseline: the same backend, its drive bookkeeping doing nothing."""

    def _moved(self, owner: int, state: cd.CarState) -> None:
        return None

    def _close(self, owner: int, vin: str, now: Parked, seen_at: float, *, charging: bool = False) -> None:
        return None


def _minutes(messages: list[Message]) -> Iterator[tuple[float, list[Message]]]:
    """The messages of each simulated minute, with the minute's end."""
    batch: list[Message] = []
    minute_end = messages[0][0] + MINUTE
    for message in messages:
        while message[0] >= minute_end:
            yield minute_end, batch
            batch, minute_end = [], minute_end + MINUTE
        batch.append(message)
    yield minute_end, batch
    yield minute_end + SETTLED_SECONDS + MINUTE, []  # the last drives settle


async def run(
    kind: type[CarDataBackend], messages: list[Message], cars: int, folder: Path
) -> tuple[float, float, int]:
    """Seconds spent per stream message (its path alone), seconds of the minute's timed work per car and
    minute (the detector's tick and `settle_drives`), and the BMW requests made."""
    requests = 0

    def count(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        return httpx.Response(503)

    store = Store(folder / f"{kind.__name__}-{time.monotonic_ns()}.sqlite3", [generate_secret_key()])
    for owner in range(1, cars + 1):
        tokens = Tokens("at", "id", "rt", f"gcid-{owner}", T0 + 86400 * 30, T0 + 86400 * 60)
        store.save_cardata_link(CarDataLink(owner, f"client-{owner}", tokens, f"container-{owner}"))
        vin = f"WBY8P2C0{owner:09d}"
        store.save_vehicles(owner, [StoredVehicle(owner, vin, "i3 120Ah", None, "BEV", frozenset(), 0)])
    client = CarDataClient(store, api_url="http://127.0.0.1:9", transport=httpx.MockTransport(count))
    backend = kind(store, client, debounce_seconds=0.0)

    async def pushed(_: object) -> None:  # the chat's push: not measured here
        return None

    backend.bind(pushed, pushed)
    try:
        streamed = ticked = 0.0
        minutes = 0
        for minute_end, batch in _minutes(messages):
            started = time.perf_counter()
            for _, owner, vin, values in batch:
                await backend.supervisor.apply(owner, vin, values)
            between = time.perf_counter()
            await backend.detector.tick(minute_end + 86400)  # whatever is due, as the detector's loop
            await backend.settle_drives(minute_end)
            streamed, ticked = streamed + between - started, ticked + time.perf_counter() - between
            minutes += 1
        drives = sum(len(store.drives(owner, f"WBY8P2C0{owner:09d}")) for owner in range(1, cars + 1))
        per_tick = ticked / minutes / cars
        print(
            f"  {kind.__name__}: {streamed / len(messages) * 1e6:.0f} µs a message,"
            f" {per_tick * 1e6:.1f} µs a car and minute, {drives} drives recorded"
        )
    finally:
        await client.aclose()
        store.close()
    return streamed / len(messages), per_tick, requests


async def main(args: argparse.Namespace) -> None:
    messages = script(args.cars, args.days)
    print(
        f"{len(messages)} stream messages of {args.cars} cars over {args.days} day(s), {args.rounds} rounds"
    )
    without: list[float] = []
    with_drives: list[float] = []
    ticks: dict[bool, list[float]] = {False: [], True: []}
    calls = 0
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.rounds):
            for kind, times in ((WithoutDrives, without), (CarDataBackend, with_drives)):  # baseline first
                seconds, per_tick, requests = await run(kind, messages, args.cars, Path(folder))
                times.append(seconds)
                ticks[kind is CarDataBackend].append(per_tick)
                calls += requests
    base, measured = min(without), min(with_drives)
    medians = statistics.median(with_drives) / statistics.median(without)
    print(f"BMW requests: {calls}; the medians' ratio {medians:.2f}x")
    result(
        "drive bookkeeping per stream message",
        f"{measured * 1e6:.0f} µs, {calls} BMW calls",
        f"{base * 1e6:.0f} µs",
        measured / base,
        "<= 1.05x, 0 calls",
    )
    # Not per message: a live car's drive closes on the minute's tick, when it has settled (a write per drive,
    # and one per change of a parked car's level or place, e.g. each percent of a charge).
    result(
        "the minute's timed work per car (detector and drives)",
        f"{min(ticks[True]) * 1e6:.1f} µs",
        f"{min(ticks[False]) * 1e6:.1f} µs",
        min(ticks[True]) / min(ticks[False]),
        "-",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cars", type=int, default=20)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
