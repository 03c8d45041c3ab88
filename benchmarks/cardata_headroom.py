"""Headroom (issue 20, point 6): 10,000 CarData owners, a public instance's size, in one bot process.

    .venv/bin/python -m benchmarks.cardata_headroom [--owners 10000] [--paced-minutes 3] [--rate 1000]
        [--seconds 10] [--samples 200]

The simulator's process and the linking are cardata_stream.py's. Then, for one process (one IP at BMW):
  paced   — the real `StreamSupervisor` at the process's defaults (`CONNECTS_PER_MINUTE`, 0.2 s apart) for
            `--paced-minutes` of wall time: streams connected each minute, the rate, and the time every
            owner's stream would take to come up at that rate (measured over a stretch, then computed);
  model   — the real `ConnectPacer` on a simulated clock, with what each stream does with it: BMW drops a
            stream when its 1 h id token expires, so each one reconnects (paced like any other) 5 minutes
            before, and waits its turn while down. Hours of pacing in milliseconds: the time until every
            stream has connected once, how many are up at once, and the most owners that can all stay up;
  lifted  — cardata_stream.py's measure with the connect limits lifted: RSS with every stream up, the
            time to connect them all, CPU per 1,000 messages/s, message -> stored event p50/p95.
File descriptors: one a TLS connection on each side (the simulator runs in its own process), so the soft
`ulimit -n` is raised towards the hard one when it is short (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cardata_stream import World, every_stats, link_all, measure, start_world
from benchmarks.report import result
from bot.cardata.client import CarDataClient
from bot.cardata.pacing import CONNECTS_PER_MINUTE, ConnectPacer
from bot.cardata.simulator.stream import STREAM_LINGER
from bot.cardata.stream import ID_TOKEN_MARGIN, StreamSupervisor
from bot.crypto import generate_secret_key
from bot.store import Store

CONNECT_INTERVAL = 0.2  # s: the supervisor's default spacing of connection attempts
ID_TOKEN_LIFETIME = 3600.0  # s: BMW's id token, the MQTT password (docs/cardata.md)
MODEL_HOURS = 12.0
FD_SPARE = 1000  # descriptors beyond one a stream: the store, the HTTP client, the interpreter


def raise_fd_limit(owners: int) -> tuple[int, int]:
    """Raise the soft limit on open files towards what `owners` streams need (never above the hard one);
    the simulator's process, started after, inherits it. Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = owners + FD_SPARE
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft, hard


async def paced(world: World, store: Store, client: CarDataClient, minutes: float) -> float:
    """Streams connected per minute by the real supervisor at the process's default pacing, over `minutes`."""
    owners = len(world.vins)
    supervisor = StreamSupervisor(store, client.tokens, None, mqtt_url=world.mqtt_url, ca_file=world.ca_file)
    started = time.monotonic()
    supervisor.start()
    streams = every_stats(supervisor, owners)

    def connected() -> int:
        return sum(1 for s in streams if s.connects)

    for minute in range(1, int(minutes) + 1):
        await asyncio.sleep(started + minute * 60 - time.monotonic())
        print(f"  after {minute} min at the default pacing: {connected()} streams up")
    elapsed = time.monotonic() - started
    up = connected()
    # A stream cancelled at the pacer or mid-connect may leave its gcid held at the broker for a while
    # (CONNACK 5 to the next try): so this runs after the other measures.
    await supervisor.aclose()
    return up / elapsed * 60


class _SimulatedClock:
    """Time that moves only when the pacer sleeps: hours of pacing run in milliseconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += max(delay, 0.0)


@dataclass(frozen=True)
class Pacing:
    all_once: float | None  # s until every stream had connected once (None: not within the hours)
    up_at_end: int  # streams up at the end: the steady state
    longest_wait: float  # s: the longest a stream was down waiting for its turn, in the last hour


async def pacing_model(owners: int, hours: float = MODEL_HOURS) -> Pacing:
    """Every stream asks to connect at 0 (a restart, or BMW's broker dropping everyone) through the real
    `ConnectPacer` at the defaults, in turn (its lock is first come, first served); their id tokens were
    issued over the last hour, evenly. Connected, a stream stays up until 5 min before its id token expires
    (`ID_TOKEN_MARGIN`), renews it and asks again, down until its turn; a token with less than that left
    when its turn comes is renewed then. As `StreamSupervisor._run` does."""
    clock = _SimulatedClock()
    pacer = ConnectPacer(CONNECTS_PER_MINUTE, CONNECT_INTERVAL, clock=clock, sleep=clock.sleep)
    expires = {n: (n + 1) * ID_TOKEN_LIFETIME / owners for n in range(owners)}
    asking = [(0.0, n) for n in range(owners)]  # (since when, stream): down and waiting for its turn
    up: dict[int, tuple[float, float]] = {}  # each stream's last connection: (up, down)
    all_once: float | None = None
    longest = 0.0
    end = hours * 3600
    while asking and asking[0][0] < end and clock.now < end:
        since, stream = heapq.heappop(asking)
        clock.now = max(clock.now, since)
        await pacer.wait()
        if clock.now > end - 3600:
            longest = max(longest, clock.now - since)
        if expires[stream] - clock.now < ID_TOKEN_MARGIN:
            expires[stream] = clock.now + ID_TOKEN_LIFETIME
        drop = expires[stream] - ID_TOKEN_MARGIN
        up[stream] = (clock.now, drop)
        if all_once is None and len(up) == owners:
            all_once = clock.now
        expires[stream] = drop + ID_TOKEN_LIFETIME  # renewed just before the drop
        heapq.heappush(asking, (drop, stream))
    return Pacing(all_once, sum(1 for start, drop in up.values() if start <= end < drop), longest)


async def most_owners_kept_up(high: int, wait: float = 60.0) -> int:
    """The most owners one process's pacer keeps streaming: each back within `wait` s of its hourly
    reconnect (bisected over the model)."""
    low = 1
    while low < high:
        middle = (low + high + 1) // 2
        if (await pacing_model(middle)).longest_wait <= wait:
            low = middle
        else:
            high = middle - 1
    return low


async def run(args: argparse.Namespace, folder: Path) -> None:
    owners = args.owners
    soft, hard = raise_fd_limit(owners)
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
        f"open files: soft {soft}, hard {hard}"
    )
    world = start_world(owners)
    store = Store(folder / "bot.sqlite3", [generate_secret_key()])
    client = CarDataClient(store, api_url=world.url, auth_url=f"{world.url}/gcdm/oauth")
    started = time.monotonic()
    await link_all(world, store, client)
    print(f"linked {owners} owners in {time.monotonic() - started:.0f} s")

    await measure(world, store, client, args.rate, args.seconds, args.samples)
    await asyncio.sleep(STREAM_LINGER + 1)  # the broker refuses a gcid for a few seconds after its close
    # Last: the supervisor is closed while streams wait at the pacer (see paced()).
    rate = await paced(world, store, client, args.paced_minutes)
    print(f"paced: {rate:.1f} streams a minute; every owner's stream up once in {owners / rate:.0f} min")
    await client.aclose()
    store.close()
    world.close()

    model = await pacing_model(owners)
    kept = await most_owners_kept_up(owners)
    once = "not within the hours" if model.all_once is None else f"{model.all_once / 60:.0f} min"
    print(
        f"model, {owners} streams at {CONNECTS_PER_MINUTE}/min: every one connected once after {once}; "
        f"{model.up_at_end} up after {MODEL_HOURS:.0f} h, the longest wait for a turn in the last hour "
        f"{model.longest_wait / 60:.1f} min; the most owners kept up (back within a minute): {kept}"
    )
    load = os.getloadavg()
    print(f"load at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")

    result(
        f"CarData headroom: connects at the default, over {args.paced_minutes:g} min",
        f"{rate:.1f}/min",
        f"{CONNECTS_PER_MINUTE}/min (the limiter)",
        rate / CONNECTS_PER_MINUTE,
    )
    result(
        f"CarData headroom: {owners} streams up once, default pacing", f"{owners / rate:.0f} min", "-", None
    )
    result(
        f"CarData headroom: streams up, {owners} owners, default pacing",
        f"{model.up_at_end} (model, after {MODEL_HOURS:.0f} h)",
        f"{kept} owners kept up",
        None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--owners", type=int, default=10_000)
    parser.add_argument("--paced-minutes", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    args.samples = min(args.samples, args.owners)
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    main()
