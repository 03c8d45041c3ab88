"""Charge ends at once, delivered end to end through a Bot API server enforcing Telegram's 30 messages/s,
for both backends, against the best possible: every end read, then 30 messages a second.

    .venv/bin/python -m benchmarks.push_fanout [--pushes 200] [--limit 30] [--backend both] [--debounce 2]

Per backend, in this one process, two runs of N owners whose charges end at the same moment:
  baseline — the backend's own path up to the push, the push replaced by a note of when it was handed the
             end: when the bot had read each end. The best possible delivery follows from those times and
             the limit: no push before its end was read, none faster than `--limit` a second.
  measured — N other owners, the same ends, pushed through the real path (`bot.chat.notify.pusher`: its
             pacing, the Application's bot with its AIORateLimiter) to the sandbox, which runs in a process
             of its own, as Telegram would, and answers 429 with retry_after beyond `--limit` messages in any
             second. End to end: from the charges' end to the sandbox accepting the last push. Then every
             owner's chat is counted: no push may be lost or doubled.
The fraction printed is best / measured (1.0: as fast as the limit allows).

i Remote: N i3s charging at 99 %; the simulator (in-process, httpx's ASGI transport) moves its clock on and
one watcher cycle finds every charge finished (further cycles run while pushes are pending). CarData: the
CarData simulator and its TLS MQTT broker in a process of their own (benchmarks/cardata_stream.py's
`serve`), 2N owners linked as /link does and streaming; their drivers stop N charges at once; the stream
brings each end and the detector decides it after `--debounce` seconds (CARDATA_CHARGE_DEBOUNCE_SECONDS,
120 s in life), which the baseline waits too. The connect pacing is off so that the streams connect in
seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from telegram.ext import Application

from benchmarks.bot_overhead import BOT_TOKEN, PASSWORD
from benchmarks.cardata_stream import UNLIMITED, client_id, serve
from benchmarks.report import result
from bot.alerts import CarAlert
from bot.app import build_application
from bot.bmw.client import BMWClient
from bot.bmw.models import Region
from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET, Simulator, fleet
from bot.car_status import ChargeNotice, Notice, NoticeKind
from bot.cardata.auth import Approved
from bot.cardata.client import CarDataClient
from bot.cardata_backend import CarDataBackend
from bot.chat import notify
from bot.config import Settings, load_settings
from bot.garage import Garage
from bot.sandbox import BotApiServer
from bot.servers import BackgroundServer
from bot.watcher import MAX_BACKOFF_SECONDS, Watcher
from tests.support.watcher import FINISHED, STOPPED

FIRST_USER = 10_000
LINKS_AT_ONCE = 20
WAIT_SECONDS = 120.0  # the longest wait for a run's pushes, beyond the debounce

Push = Callable[[Notice | CarAlert], Awaitable[None]]


def serve_sandbox(conn: Connection, limit: float) -> None:
    """Child process: the sandbox with a flood limit; answers "open" (chats), "calls", "chats" and "sent"
    (chat id, arrival time and text of every accepted sendMessage) requests."""
    server = BotApiServer(flood_limit_per_second=limit)
    server.add_bot(BOT_TOKEN)
    with BackgroundServer(server.app) as http:
        conn.send(http.url)
        while (request := conn.recv()) != "stop":
            kind, argument = request
            if kind == "open":  # each user's first message opens the chat a push goes to
                for tg_id in argument:
                    server.user_message(BOT_TOKEN, tg_id, text="/start")
                conn.send(None)
            elif kind == "calls":
                conn.send([(c.time, c.ok, c.error_code) for c in server.calls_to("sendMessage")])
            elif kind == "sent":
                conn.send(
                    [
                        (c.params.get("chat_id"), c.time, c.params.get("text") or "")
                        for c in server.calls_to("sendMessage")
                        if c.ok
                    ]
                )
            elif kind == "chats":
                conn.send(
                    [[m["text"] or "" for m in server.chat(BOT_TOKEN, i) if m["from_bot"]] for i in argument]
                )


def ask(conn: Connection, kind: str, argument: Any = None) -> Any:
    conn.send((kind, argument))
    return conn.recv()


async def ask_async(conn: Connection, request: object) -> Any:
    """A request to a child process without holding up this process's event loop (its streams)."""
    return await asyncio.get_running_loop().run_in_executor(
        None, lambda: (conn.send(request), conn.recv())[1]
    )


@dataclass
class Run:
    """One run: when the charges ended, and when the bot had read each end (baseline) or the sandbox
    accepted each push (measured), with the counts of the measured run."""

    ended: float
    times: list[float]
    read: list[float] = field(default_factory=list)  # measured: when the bot handed each end to the push
    refused: int = 0
    lost: int = 0
    doubled: int = 0


def best_possible(ended: float, reads: list[float], limit: float) -> float:
    """Seconds from the ends to the last push when each is sent as soon as its end is read, at `limit` a
    second."""
    sent = -float("inf")
    for read in sorted(reads):
        sent = max(read, sent + 1 / limit)
    return sent - ended


def best_in_window(ended: float, reads: list[float], limit: float) -> float:
    """The same under the sandbox's own rule, at most `limit` in any second: a first second may carry them
    all at once, so this best is lower than `best_possible` (which Telegram's "about 30 a second" is)."""
    window = round(limit)
    sent: list[float] = []
    for read in sorted(reads):
        earliest = max(read, sent[-1] if sent else read)
        if len(sent) >= window:
            earliest = max(earliest, sent[-window] + 1.0)
        sent.append(earliest)
    return sent[-1] - ended


def settings_in(folder: Path, api_url: str, **more: Any) -> Settings:
    folder.mkdir()
    return load_settings(
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=api_url,
        database_path=folder / "bot.sqlite3",
        map_tile_cache_dir=folder / "tiles",
        bot_secret_key=Fernet.generate_key().decode(),
        **more,
    )


def noting(read: dict[int, float], then: Push | None = None, done: set[int] | None = None) -> Push:
    """A push that notes when the bot first handed it an owner's charge end, then pushes it on (if `then`)
    and notes the owner in `done` once it went out."""

    async def push(notice: Notice | CarAlert) -> None:
        end = isinstance(notice, ChargeNotice) and notice.kind is not NoticeKind.STARTED
        if end:
            read.setdefault(notice.tg_id, time.time())
        if then is not None:
            await then(notice)
        if end and done is not None:
            done.add(notice.tg_id)

    return push


def counted(telegram: Connection, users: list[int], words: str, ended: float, sends_before: int) -> Run:
    """The measured run as the sandbox saw it: accepted pushes' times, 429s, and every user's chat."""
    calls = ask(telegram, "calls")[sends_before:]
    sent = ask(telegram, "sent")
    mine = set(users)
    times = [at for chat, at, text in sent if int(chat) in mine and words in text]
    counts = [sum(words in text for text in chat) for chat in ask(telegram, "chats", users)]
    return Run(
        ended,
        times,
        refused=sum(code == 429 for _, _, code in calls),
        lost=sum(count == 0 for count in counts),
        doubled=sum(count > 1 for count in counts),
    )


async def iremote_run(telegram: Connection, api_url: str, folder: Path, users: list[int], real: bool) -> Run:
    simulator = Simulator()
    client = BMWClient(
        api_key=DEFAULT_API_KEY,
        api_secret=DEFAULT_API_SECRET,
        base_url="http://bmw.sim",
        transport=httpx.ASGITransport(simulator.app),
    )
    application = build_application(settings_in(folder, api_url), car_api=client)
    garage = application.bot_data.services.garage
    if real:
        ask(telegram, "open", users)
    for tg_id in users:
        login, vin = f"fan{tg_id}@example.com", f"WBY1Z21000V{tg_id:06d}"
        simulator.add_account(login, PASSWORD, vehicles=[fleet.i3_bev(vin, now=simulator.now())])
        simulator.set_status(vin, chargingLevelHv=99)
        simulator.plug_in(vin, charging=True)
        await garage.link(tg_id, f"User{tg_id}", Region.REST_OF_WORLD, login, PASSWORD)

    read: dict[int, float] = {}
    async with application:
        push = noting(read, notify.pusher(application) if real else None)
        watcher = Watcher(garage, push, charge_poll_seconds=60, idle_poll_seconds=900, concurrency=20)
        now = time.time() + 1e7

        async def cycle():
            nonlocal now
            now += 2 * MAX_BACKOFF_SECONDS  # every car is due
            return await watcher.cycle(now)

        await cycle()  # first sight: every car charging
        sends_before = len(ask(telegram, "calls"))
        simulator.advance(10 * 60)  # every charge is finished
        ended = time.time()
        report = await cycle()
        for _ in range(10):
            if not report.push_failures:
                break
            report = await cycle()
    await client.aclose()
    if not real:
        return Run(ended, list(read.values()))
    return replace(counted(telegram, users, FINISHED, ended, sends_before), read=list(read.values()))


async def link_streams(garage: Garage, owners: list[int]) -> None:
    """Each owner links as /link does (the device flow, which the simulator approves at once), 20 at a time;
    then every stream is connected."""
    cardata = garage.cardata
    assert cardata is not None
    slots = asyncio.Semaphore(LINKS_AT_ONCE)

    async def link(owner: int) -> None:
        async with slots:
            flow = await garage.start_device_flow(owner, client_id(owner - 1))
            outcome = await garage.wait_device_flow(flow)
            assert isinstance(outcome, Approved), outcome
            await garage.finish_device_flow(owner, f"Owner {owner}", flow, outcome.tokens)

    await asyncio.gather(*(link(owner) for owner in owners))
    await asyncio.gather(*(cardata.supervisor.wait_connected(owner) for owner in owners))


def with_unpaced_cardata(
    settings: Settings, url: str, mqtt_url: str, ca_file: str, debounce: float
) -> tuple[Application, Garage]:
    """The Application `python -m bot run` builds, with a CarData backend on the simulator at `url` made here
    without the connect pacing (the benchmarks' streams all connect at once)."""
    application = build_application(settings)
    services = application.bot_data.services
    store = services.garage.store
    client = CarDataClient(store, api_url=url, auth_url=f"{url}/gcdm/oauth", sleep=no_wait)
    cardata = CarDataBackend(
        store,
        client,
        mqtt_url=mqtt_url,
        ca_file=ca_file,
        debounce_seconds=debounce,
        connect_interval=0.0,
        connects_per_minute=UNLIMITED,
    )
    services.garage = Garage(store, services.garage.iremote.api, cardata=cardata)
    return application, services.garage


async def cardata_runs(
    bmw: Connection, telegram: Connection, api_url: str, folder: Path, n: int, debounce: float
) -> tuple[Run, Run]:
    """Owners 1..n are the baseline, n+1..2n the measured run: one bot, one stream each."""
    url, mqtt_url, ca_file, vins = bmw.recv()
    settings = settings_in(folder, api_url, car_backends="iremote")  # CarData is made below, unpaced
    application, garage = with_unpaced_cardata(settings, url, mqtt_url, ca_file, debounce)
    store, cardata = garage.store, garage.cardata
    assert cardata is not None
    owners = list(range(1, 2 * n + 1))
    baseline_owners, measured_owners = owners[:n], owners[n:]
    await ask_async(telegram, ("open", measured_owners))
    read: dict[int, float] = {}

    async with application:
        baseline = set(baseline_owners)
        pushed: set[int] = set()  # known here: asking the sandbox meanwhile would slow its answers
        noted, real = noting(read), noting(read, notify.pusher(application), pushed)

        async def push(notice: Notice | CarAlert) -> None:
            await (noted if notice.tg_id in baseline else real)(notice)

        garage.notify = push
        await garage.start()
        await link_streams(garage, owners)
        await ask_async(bmw, ("plug", vins))

        def charging() -> int:
            tracks = (store.cardata_track(owner, vin) for owner, vin in zip(owners, vins, strict=True))
            return sum(track is not None and track.session_start is not None for track in tracks)

        deadline = time.monotonic() + WAIT_SECONDS
        while charging() < len(owners) and time.monotonic() < deadline:  # noqa: ASYNC110 (the stream fills it)
            await asyncio.sleep(0.05)

        async def end(chosen: list[int], done: Callable[[], Awaitable[bool]]) -> float:
            stamps = await ask_async(bmw, ("end", ([vins[owner - 1] for owner in chosen], 0.0)))
            deadline = time.monotonic() + debounce + WAIT_SECONDS
            while not await done() and time.monotonic() < deadline:  # noqa: ASYNC110 (another process)
                await asyncio.sleep(0.2)
            await cardata.detector.drain()
            return float(min(stamps))

        async def all_read() -> bool:
            return sum(owner in baseline for owner in read) >= n

        base_ended = await end(baseline_owners, all_read)
        sends_before = len(await ask_async(telegram, ("calls", None)))

        async def delivered() -> bool:
            return len(pushed) >= n

        ended = await end(measured_owners, delivered)
        await garage.aclose()
    store.close()
    measured = counted(telegram, measured_owners, STOPPED, ended, sends_before)
    mine = [at for owner, at in read.items() if owner not in baseline]
    return Run(base_ended, [at for owner, at in read.items() if owner in baseline]), replace(
        measured, read=mine
    )


async def no_wait(seconds: float) -> None:
    """The device flow's pause between token polls: the simulator approves each code at once."""


def report(name: str, baseline: Run, measured: Run, n: int, limit: float) -> None:
    best = best_possible(baseline.ended, baseline.times, limit)
    took = max(measured.times, default=float("nan")) - measured.ended
    read = max(baseline.times, default=float("nan")) - baseline.ended
    fraction = best / took
    print(
        f"{name}, {n} charge ends at once: every end read in {read:.2f} s (baseline), best possible "
        f"{best:.2f} s at {limit:.0f} msg/s; delivered end to end in {took:.2f} s = {fraction:.2f} of it"
    )
    if len(measured.times) > 1:
        rate = (len(measured.times) - 1) / (max(measured.times) - min(measured.times))
        print(f"  accepted at {rate:.1f} msg/s ({rate / limit:.2f} of the limit), 429s: {measured.refused}")
    own = best_possible(measured.ended, measured.read, limit)
    print(
        f"  this run's own ends read in {max(measured.read, default=float('nan')) - measured.ended:.2f} s: "
        f"best {own:.2f} s, delivered at {own / took:.2f} of it"
    )
    bunched = best_in_window(baseline.ended, baseline.times, limit)
    print(
        f"  at most {limit:.0f} in any second (the sandbox's rule): best {bunched:.2f} s, "
        f"{bunched / took:.2f} of it"
    )
    print(f"  delivered {len(measured.times)}, lost {measured.lost}, doubled {measured.doubled}")
    result(
        f"push fan-out, {name}, {n} ends",
        f"{took:.2f} s, lost {measured.lost}, dup {measured.doubled}, 429 {measured.refused}",
        f"{best:.2f} s (ends read, then {limit:.0f} msg/s)",
        fraction,
        ">= 0.95 of the best, 0 lost/dup",
    )


async def main_async(args: argparse.Namespace, telegram: Connection, folder: Path) -> None:
    api_url = telegram.recv()
    n = args.pushes
    if args.backend in ("iremote", "both"):
        baseline = await iremote_run(
            telegram, api_url, folder / "ir-base", [FIRST_USER + i for i in range(n)], False
        )
        users = [FIRST_USER + n + i for i in range(n)]
        measured = await iremote_run(telegram, api_url, folder / "ir-real", users, True)
        report("i Remote", baseline, measured, n, args.limit)
    if args.backend in ("cardata", "both"):
        spawn = multiprocessing.get_context("spawn")
        bmw, bmw_child = spawn.Pipe()
        world = spawn.Process(target=serve, args=(bmw_child, 2 * n), daemon=True)
        world.start()
        bmw_child.close()  # so a child that dies is an EOFError here, not a hang
        try:
            baseline, measured = await cardata_runs(bmw, telegram, api_url, folder / "cd", n, args.debounce)
        finally:
            bmw.send("stop")
            world.join(30)
        report("CarData", baseline, measured, n, args.limit)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pushes", type=int, default=200, help="charge ends at once, per run (default 200)")
    parser.add_argument("--limit", type=float, default=30.0, help="server's messages per second (default 30)")
    parser.add_argument("--backend", choices=("iremote", "cardata", "both"), default="both")
    parser.add_argument(
        "--debounce", type=float, default=2.0, help="CarData's charge debounce, s (default 2)"
    )
    args = parser.parse_args()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    sandbox = multiprocessing.get_context("spawn").Process(target=serve_sandbox, args=(child, args.limit))
    sandbox.start()
    child.close()  # so a sandbox that dies is an EOFError here, not a hang
    try:
        with tempfile.TemporaryDirectory() as folder:
            asyncio.run(main_async(args, parent, Path(folder)))
    finally:
        parent.send("stop")
        sandbox.join(30)


if __name__ == "__main__":
    main()
