"""1,000 CarData owners streaming through one bot process: memory, CPU per 1,000 messages/s, and the time
from a stream message to the stored charge event.

    .venv/bin/python -m benchmarks.cardata_stream [--owners 1000] [--rate 1000] [--seconds 10] [--samples 200]

The CarData simulator (HTTP and its MQTT broker over TLS) runs in a process of its own, as BMW would: N
accounts with one car each. This process links every owner through the device flow, then runs what the bot
runs: the store, the client's token keeper, one `StreamSupervisor` (one TLS connection per gcid, no connect
pacing here) and the `ChargeDetector`. Then:
  memory  — resident set size with every stream connected, against the same process before the streams;
  CPU     — first `--seconds` with nothing arriving: the cores the connected streams take idle; then the
            simulator sends `--rate` messages/s (door status changes, spread over the cars) for `--seconds`;
            this process's CPU time per message received beyond idle, as cores used at 1,000 messages/s;
  latency — `--samples` cars start charging one by one; each CHARGINGACTIVE message becomes a stored
            "charging started" event (written before its push); the time from the simulator's publish to
            the push callback, p50 and p95.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from benchmarks.memory import open_files, rss_mb
from benchmarks.report import result
from bot.cardata.auth import Approved
from bot.cardata.client import CarDataClient
from bot.cardata.events import ChargeDetector, ChargeEvent
from bot.cardata.pacing import OutageBreaker
from bot.cardata.simulator import CardataBroker, CardataSimulator, i3_bev
from bot.cardata.storage import CarDataLink
from bot.cardata.stream import StreamStats, StreamSupervisor
from bot.crypto import generate_secret_key
from bot.servers import BackgroundServer
from bot.store import Store, StoredVehicle

UNLIMITED = 1_000_000  # connection attempts a minute


def client_id(owner: int) -> str:
    return f"bench-client-{owner:05d}"


def serve(conn: Connection, owners: int) -> None:
    """Child process: the simulator and its broker; answers "load" (rate, seconds), "plug" (VINs) and "end"
    (VINs, seconds between them: each car's running charge ended by its driver), the last two with the time
    of each change."""
    sim = CardataSimulator(auto_approve_seconds=0, daily_quota=1_000_000)
    # Live cars (iDrive 7 and later) stream every change: the load this measures; an i3 streams far less.
    vins = [
        sim.add_account(client_id(n), cars=[i3_bev(f"WBY8P2C0{n:09d}", "live")])[1][0] for n in range(owners)
    ]
    # The per-IP connect limit (BMW's, and the bot's own limiter below) is off: this measures the stream, not
    # how long a thousand owners wait to connect.
    broker = CardataBroker(sim, tick=0.01, connects_per_minute=UNLIMITED)
    with BackgroundServer(sim.app) as http, broker:
        conn.send((http.url, broker.url, str(broker.ca_file), vins))
        while (request := conn.recv()) != "stop":
            kind, argument = request
            if kind == "load":
                rate, seconds = argument
                sent, start = 0, time.monotonic()
                while (elapsed := time.monotonic() - start) < seconds:
                    due = int(elapsed * rate)
                    while sent < due:  # alternate each car's door: every call is one changed key
                        sim.set_locked(vins[sent % len(vins)], (sent // len(vins)) % 2 == 1)
                        sent += 1
                    time.sleep(0.002)
                conn.send(sent)
            elif kind == "plug":
                stamps = []
                for vin in argument:
                    stamps.append(time.time())
                    sim.plug_in(vin)
                    time.sleep(0.01)
                conn.send(stamps)
            elif kind == "end":
                vins_to_end, spacing = argument
                stamps = []
                for vin in vins_to_end:
                    stamps.append(time.time())
                    sim.finish_charging(vin)
                    time.sleep(spacing)
                conn.send(stamps)


@dataclass
class World:
    """The simulator's process, as seen from the bot's side: its URLs, CA, each owner's VIN, and the pipe."""

    conn: Connection
    child: multiprocessing.Process
    url: str
    mqtt_url: str
    ca_file: str
    vins: list[str]

    async def ask(self, request: object) -> object:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: (self.conn.send(request), self.conn.recv())[1])

    def close(self) -> None:
        self.conn.send("stop")
        self.child.join(20)


def start_world(owners: int) -> World:
    conn, child_conn = multiprocessing.Pipe()
    child = multiprocessing.Process(target=serve, args=(child_conn, owners), daemon=True)
    child.start()
    url, mqtt_url, ca_file, vins = conn.recv()
    return World(conn, child, url, mqtt_url, ca_file, vins)


async def link_all(world: World, store: Store, client: CarDataClient) -> None:
    """Every owner links through the device flow, 20 at a time, and their car is stored as the garage does."""
    slots = asyncio.Semaphore(20)

    async def link(owner: int) -> None:
        async with slots:
            flow = await client.auth.start(client_id(owner))
            outcome = await client.auth.poll(flow)
            assert isinstance(outcome, Approved), outcome
            store.save_cardata_link(CarDataLink(owner, client_id(owner), outcome.tokens))
            # the owner's car, as the garage stores it at linking (the stream writes no other car's state)
            vin = world.vins[owner]
            store.save_vehicles(owner, [StoredVehicle(owner, vin, None, None, None, frozenset(), 0)])

    await asyncio.gather(*(link(n) for n in range(len(world.vins))))


def every_stats(supervisor: StreamSupervisor, owners: int) -> list[StreamStats]:
    """Each stream's counters, looked up once: a lookup scans the streams, so 10,000 of them in every poll
    would take the event loop for seconds (the counters are updated in place)."""
    return [s for n in range(owners) if (s := supervisor.stats(n)) is not None]


async def measure(
    world: World, store: Store, client: CarDataClient, rate: float, seconds: float, samples: int
) -> None:
    """Every linked owner streams with the connect limits lifted: RSS, time to connect, CPU per 1,000
    messages/s and the message -> stored event latency (printed, and as summary lines)."""
    owners = len(world.vins)
    pushed: dict[str, float] = {}

    async def push(event: ChargeEvent) -> None:
        pushed[event.vin] = time.time()

    detector = ChargeDetector(store, push)
    supervisor = StreamSupervisor(
        store,
        client.tokens,
        detector,
        mqtt_url=world.mqtt_url,
        ca_file=world.ca_file,
        connect_interval=0.0,
        connects_per_minute=UNLIMITED,
        # thousands of TLS handshakes at once fail some: no outage pause for that here
        outage=OutageBreaker(accounts=UNLIMITED, rng=random.Random()),
    )
    before = rss_mb()
    started = time.monotonic()
    supervisor.start()
    await asyncio.gather(*(supervisor.wait_connected(n) for n in range(owners)))
    took = time.monotonic() - started
    after = rss_mb()
    print(f"connected {owners} streams over TLS in {took:.1f} s ({owners / took:.0f} a second)")
    print(
        f"memory: {before:.0f} MB before the streams, {after:.0f} MB with them "
        f"({(after - before) * 1024 / owners:.1f} kB a stream); {open_files()} open files"
    )

    streams = every_stats(supervisor, owners)

    def received() -> int:
        return sum(s.messages for s in streams)

    # Idle: what the streams cost with nothing arriving (each client's keep-alive timer wakes every second).
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    idle = (time.process_time() - cpu) / (time.monotonic() - wall)
    print(f"idle: {idle:.2f} cores with {owners} streams up and no messages")

    first, cpu, wall = received(), time.process_time(), time.monotonic()
    sent = await world.ask(("load", (rate, seconds)))
    assert isinstance(sent, int)
    while received() - first < sent and time.monotonic() - wall < seconds + 30:  # noqa: ASYNC110 (counters)
        await asyncio.sleep(0.01)
    got, cpu, wall = received() - first, time.process_time() - cpu, time.monotonic() - wall
    cores = (cpu - idle * wall) / got * 1000 if got else float("nan")  # the messages' own, idle cost apart
    print(f"load: {sent} sent, {got} received in {wall:.1f} s ({got / wall:.0f} msg/s); CPU {cpu:.1f} s")
    print(f"CPU per 1,000 messages/s: {cores:.2f} cores on top of the idle {idle:.2f}")

    plugged = await world.ask(("plug", world.vins[:samples]))
    assert isinstance(plugged, list)
    deadline = time.monotonic() + 60
    while len(pushed) < samples and time.monotonic() < deadline:  # noqa: ASYNC110 (filled by the pushes)
        await asyncio.sleep(0.01)
    latencies = sorted(
        (pushed[vin] - stamp) * 1000
        for vin, stamp in zip(world.vins[:samples], plugged, strict=True)
        if vin in pushed
    )
    if latencies:
        p50 = statistics.median(latencies)
        p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        shown, ratio = (f"p50 {p50:.1f} ms", f"p95 {p95:.1f} ms"), p95 / p50
    else:  # a process past its capacity: nothing within the minute
        shown, ratio = ("none within 60 s", "-"), None
    print(f"message -> stored event: {len(latencies)}/{samples} events, {', '.join(shown)}")

    result(
        f"CarData stream: RSS, {owners} owners",
        f"{after:.0f} MB",
        f"{before:.0f} MB (no streams)",
        after / before,
        "-",
    )
    result(f"CarData stream: connect {owners} owners, limits lifted", f"{took:.1f} s", "-", None, "-")
    result(f"CarData stream: CPU idle, {owners} streams up", f"{idle:.2f} cores", "-", None, "-")
    result(
        "CarData stream: CPU per 1,000 msg/s, beyond idle",
        f"{cores:.2f} cores",
        f"{got / wall:.0f} msg/s achieved",
        cores,
        "-",
    )
    result("CarData stream: message -> stored event", *shown, ratio, "-")
    await supervisor.aclose()


async def run(owners: int, rate: float, seconds: float, samples: int, folder: Path) -> None:
    world = start_world(owners)
    store = Store(folder / "bot.sqlite3", [generate_secret_key()])
    client = CarDataClient(store, api_url=world.url, auth_url=f"{world.url}/gcdm/oauth")
    await link_all(world, store, client)
    await measure(world, store, client, rate, seconds, samples)
    await client.aclose()
    store.close()
    world.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args.owners, args.rate, args.seconds, min(args.samples, args.owners), Path(folder)))


if __name__ == "__main__":
    main()
