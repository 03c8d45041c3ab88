"""A week in an hour (issue 20): one bot process with both backends, against both BMW simulators and the Bot
API sandbox on loopback, on a simulated clock, with owners living scripted days; then the targets.

    .venv/bin/python -m benchmarks.soak [--days 1] [--owners 100] [--step 5] [--faults] [--restart] [--kill]

The world (benchmarks/soak_world.py: the i Remote simulator, the CarData simulator and its TLS broker, the
sandbox with Telegram's 30 messages/s, the owners' scripts and the faults) runs in a process of its own, so
this process's memory, descriptors and tasks are the bot's. Each step (`--step` simulated minutes) the world
advances both simulators' clocks and plays what happens then; this process then runs the bot's timed work
at that simulated time, as the tests do: a watcher cycle, the CarData detector's, late reads' and alerts'
ticks, and every 6 simulated hours the CarData token renewal. What stays on the wall clock is in
benchmarks/README.md ("Soak").

With `--kill` the bot runs in spawned processes of its own instead (`bot_process`), this one only
orchestrating: the first is SIGKILLed mid-charge, the next goes on with the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Client, Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from telegram.ext import Application

from benchmarks.memory import rss_mb
from benchmarks.soak_world import BOT_TOKEN, DAY, PASSWORD, UNLIMITED, hhmm, serve
from benchmarks.stalls import Stalls
from bot.app import build_application, polling
from bot.bmw.models import Region
from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET
from bot.cardata import stream
from bot.cardata.auth import Approved
from bot.cardata.client import CarDataClient
from bot.cardata.pacing import Backoff
from bot.cardata_backend import CarDataBackend
from bot.chat import prefs
from bot.config import Settings, load_settings
from bot.garage import Garage
from bot.sharing import Sharing

RENEW_SECONDS = 6 * 3600  # the supervisor's token renewal (stream.py's RENEW_EVERY), on the simulated clock
LINKS_AT_ONCE = 20
STREAMS_UP_SECONDS = 30.0  # a bound, not a wait: on a busy machine 500 streams reconnecting take seconds
# The retry after a CONNACK 5 (CARDATA_STREAM_RETRY_SECONDS, 10 s on the wall clock): our own session
# closing at the token renewal's reconnect still counts for a moment, and 10 wall seconds stand for up to
# half a simulated hour here; scaled down as the tests do.
HELD_RETRY = 0.2
# The stream's other waits are wall seconds in the bot too, minutes in life: after a drop (1 s doubling to
# 60 s) and while another app holds it (1 to 16 min). Unscaled, a stream another app held from 15:00 to 16:00
# came back two to thirty simulated hours later, every evening's quiet end burst lost meanwhile (QoS 0).
# Scaled as HELD_RETRY is, a hundredth: a simulated hour passes in about 30 wall seconds here.
BACKOFF = Backoff(base=0.01, cap=0.6, stable_after=0.6)
BLOCKED_BACKOFF = Backoff(base=0.6, cap=9.0)
# wall s: streams_up waits for the renewals each step brings; 500 streams looking 50 times a second (0.02 s)
# loaded the event loop with their timers.
EXPIRY_CHECK = 0.25
RENEWAL_MARGIN = stream.ID_TOKEN_MARGIN
LAG_PROBE = 0.05  # s between two looks of the event-loop lag probe
RSS_GROWTH = 0.10  # target: after the first simulated day RSS grows by at most 10 %
LAG_P99_MS = 100.0
# --faults: the bot's disk is full from 20:00 to 20:30 each simulated day, as charges end (the store's
# simulate_full_disk: SQLite's page cap; what that does not simulate is in docs/exactly-once-push.md).
DISK_FULL_MINUTES = range(20 * 60, 20 * 60 + 30)
SETTLE_HOURS = 3  # after the last day: every car parked, 3 simulated hours for the last ends to arrive
EVENING = 19 * 60  # minute of the middle day when --restart and --kill strike: hundreds of cars charging
KILL_WINDOW = (0.2, 2.0)  # wall s after the checkpoint when the SIGKILL lands (drawn from the seed)
KILL_WINDOW_BOUND = 60.0  # wall s a checkpointed bot process lives on at most before it fails the soak
SILENCE = 600.0  # wall s a bot process may go without a word (a step, linking 1,000 owners) before it fails


async def no_wait(seconds: float) -> None:
    """The device flow's pause between token polls: the simulator approves each code at once."""


class World:
    """The world process, asked one request at a time (off the event loop: its answers take a while)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def call(self, kind: str, argument: Any = None) -> Any:
        self.conn.send((kind, argument))
        answer = self.conn.recv()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def ask(self, kind: str, argument: Any = None) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self.call, kind, argument)


@dataclass
class Report:
    """What the bot side of the soak tells: collected and printed here, or, in a bot process of its own
    (--kill), sent to the soak's process, which collects them with a Report of its own (`follow`)."""

    conn: Connection | None = None
    days: list[dict[str, Any]] = field(default_factory=list)  # a day's figures, or a life's until its kill
    errors: Counter[str] = field(default_factory=Counter)

    def __call__(self, kind: str, value: Any) -> None:
        if self.conn is not None:
            self.conn.send((kind, value))
        elif kind == "say":
            print(value, flush=True)
        elif kind == "day":
            self.days.append(value)
        elif kind == "errors":
            self.errors.update(value)


@dataclass
class Progress:
    """Where the bot side stands: what the next bot process needs to go on after a kill."""

    step: int = 0  # the next step to run
    days: int = 0  # whole days reported
    last_renew: float | None = None  # simulated time of the last token renewal; None: nobody linked yet
    life: int = 1  # which bot process (with --kill, the second starts after the first was killed)


class Errors(logging.Handler):
    """Warnings and errors the bot logs, by logger and message template (never their arguments: no secret
    reaches the report)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kinds: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        what = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else ""
        self.kinds[f"{record.levelname} {record.name}: {str(record.msg)[:70]} {what}".strip()] += 1


@dataclass
class Lag:
    """Event-loop lag: how late a sleep of LAG_PROBE wakes, sampled all along; and of each late wake, how much
    this process ran meanwhile (CPU time): a loop held by its own work runs all along, a process waiting for
    a core (the machine's other load) or blocked in a system call does not."""

    samples: list[float] = field(default_factory=list)
    on_cpu: list[float] = field(default_factory=list)  # per sample: CPU time used / wall time, 0..1 or more

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started, cpu = loop.time(), time.process_time()
            await asyncio.sleep(LAG_PROBE)
            wall = loop.time() - started
            self.samples.append(max(0.0, wall - LAG_PROBE) * 1000)
            self.on_cpu.append((time.process_time() - cpu) / wall if wall > 0 else 0.0)

    def p99(self) -> float:
        return _p99(self.samples)

    def p99_busy(self) -> float:
        """The p99 of the lag of wakes during which the process ran at least half the time: its own work."""
        return _p99([lag for lag, cpu in zip(self.samples, self.on_cpu, strict=True) if cpu >= 0.5])

    def clear(self) -> None:
        self.samples.clear()
        self.on_cpu.clear()


class Collections:
    """The garbage collector's pauses by generation (count, seconds in all, the longest), from gc.callbacks:
    a full collection walks every object the bot keeps and holds the event loop meanwhile."""

    def __init__(self) -> None:
        self.count: Counter[int] = Counter()
        self.seconds: Counter[int] = Counter()
        self.longest: dict[int, float] = {}
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation, took = info["generation"], time.perf_counter() - self._started
        self.count[generation] += 1
        self.seconds[generation] += took
        self.longest[generation] = max(self.longest.get(generation, 0.0), took)

    def line(self) -> str:
        return ", ".join(
            f"gen {g} {self.count[g]}x {self.seconds[g]:.1f} s (longest {self.longest[g] * 1000:.0f} ms)"
            for g in sorted(self.count)
        )

    def clear(self) -> None:
        self.count.clear()
        self.seconds.clear()
        self.longest.clear()


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Phases:
    """Wall seconds of each part of the soak's steps, summed over a day: where a day's time goes."""

    seconds: Counter[str] = field(default_factory=Counter)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] += time.monotonic() - started

    def line(self) -> str:
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.most_common())


def process_figures(database: Path) -> dict[str, float]:
    fds = os.listdir("/proc/self/fd")
    sockets = 0
    for fd in fds:
        try:
            sockets += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue  # closed meanwhile
    wal = database.with_name(database.name + "-wal")
    return {
        "rss_mb": rss_mb(),
        "fds": len(fds),
        "sockets": sockets,
        "tasks": len(asyncio.all_tasks()),
        "db_mb": database.stat().st_size / 1e6,
        "wal_mb": wal.stat().st_size / 1e6 if wal.exists() else 0.0,
    }


def settings_for(info: dict[str, Any], folder: Path, secret_key: str) -> Settings:
    return load_settings(
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=info["telegram_url"],
        bmw_api_url=info["bmw_url"],
        bmw_api_key=DEFAULT_API_KEY,
        bmw_api_secret=DEFAULT_API_SECRET,
        database_path=folder / "bot.sqlite3",
        map_tile_cache_dir=folder / "tiles",
        map_tile_url="http://127.0.0.1:9/{z}/{x}/{y}.png",  # no map is drawn; nothing leaves loopback
        bot_secret_key=secret_key,  # the same for every bot process on this database
        car_backends="iremote,cardata",
    )


def build(settings: Settings, info: dict[str, Any], clock: SimClock) -> Application:
    """The Application as `python -m bot run` builds it, its CarData backend on the simulated clock (its
    budget day, token lifetimes, charge estimates) and without the connect pacing (see README)."""
    application = build_application(settings)
    services = application.bot_data.services
    store = services.garage.store
    client = CarDataClient(
        store,
        api_url=info["cardata_url"],
        auth_url=f"{info['cardata_url']}/gcdm/oauth",
        sleep=no_wait,
        clock=clock,
    )
    cardata = CarDataBackend(
        store,
        client,
        mqtt_url=info["mqtt_url"],
        ca_file=info["ca_file"],
        debounce_seconds=settings.cardata_charge_debounce_seconds,
        connect_interval=0.0,
        connects_per_minute=UNLIMITED,
        stream_retry_seconds=HELD_RETRY,
        clock=clock,
    )
    # The stream looks at its id token's expiry every 30 wall seconds (stream.EXPIRY_CHECK); a simulated hour
    # passes in a few wall seconds here, so it looks several times a step instead, else the broker drops each
    # stream at the token's expiry and the cars' messages meanwhile are lost (see README).
    cardata.supervisor._expiry_check = EXPIRY_CHECK
    cardata.supervisor._backoff, cardata.supervisor._blocked_backoff = BACKOFF, BLOCKED_BACKOFF
    # The charge detector's debounce (120 s) runs on the wall clock in the bot; ticked at simulated times it
    # found every deadline due at once, and decided a burst of a thousand cars' keys (one a message) while
    # its messages were still coming in: the end reason or level that came after the decision no longer
    # counted, and the end was lost. On the simulated clock it is 120 simulated seconds, as in life.
    cardata.detector._clock = clock
    services.garage = Garage(
        store,
        services.garage.iremote.api,
        cardata=cardata,
        zone_of=lambda tg_id: prefs.stored(store.user_settings(tg_id)).zone,
        commands_per_minute=settings.remote_commands_per_minute,
    )
    return application


def renew_a_step_early(step_seconds: int) -> None:
    """A stream renews its id token ID_TOKEN_MARGIN (5 min) before expiry; here it looks only at steps, with
    its clock a step ahead (see streams_up), and a token renewed then counts its hour from that step: it
    would renew a step late, just as the broker drops it at expiry, and the cars' messages meanwhile are
    lost. So the margin is a step longer (see README)."""
    stream.ID_TOKEN_MARGIN = RENEWAL_MARGIN + step_seconds


class SimClock:
    """The simulators' time in this process: the wall clock plus their offset, which each step moves on."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def evening_step(args: argparse.Namespace, later: int = 0) -> int:
    """The step that ends one step after 19:00 of the middle day (or `later` days after it), counted from the
    soak's start hour."""
    days = args.days if args.hours is None else 1
    return (((days - 1) // 2 + later) * DAY // 60 + EVENING - args.start_hour * 60) // args.step


def kill_day(args: argparse.Namespace) -> int:
    """With both, the graceful restart strikes on the middle day's evening and the kill on the next one's."""
    return 1 if args.restart else 0


async def link_everyone(garage: Garage, owners: list[dict[str, Any]]) -> None:
    slots = asyncio.Semaphore(LINKS_AT_ONCE)

    async def link(o: dict[str, Any]) -> None:
        async with slots:
            if o["backend"] == "iremote":
                await garage.link(
                    o["tg_id"], f"Owner{o['tg_id']}", Region.REST_OF_WORLD, o["login"], PASSWORD
                )
                return
            flow = await garage.start_device_flow(o["tg_id"], o["login"])
            outcome = await garage.wait_device_flow(flow)
            assert isinstance(outcome, Approved), outcome
            await garage.finish_device_flow(o["tg_id"], f"Owner{o['tg_id']}", flow, outcome.tokens)

    firsts = [o for o in owners if o["co_owner_of"] is None]
    await asyncio.gather(*(link(o) for o in firsts))
    await asyncio.gather(*(link(o) for o in owners if o["co_owner_of"] is not None))
    sharing = Sharing(garage.store)
    for o in owners:
        if o["member"] is not None:
            share = sharing.accept(sharing.invite(o["tg_id"], o["vin"]), o["member"], "Family")
            assert share is not None


@asynccontextmanager
async def running(settings: Settings, info: dict[str, Any], clock: SimClock) -> AsyncIterator[Application]:
    async with polling(build(settings, info, clock)) as application:
        yield application


def carriers(cardata: CarDataBackend, owners: list[int]) -> list[int]:
    """The owners whose tokens their account's stream uses: the first of its owners (the first to link it,
    until an /unlink and a new link put a co-owner first)."""
    streams = {owner: cardata.supervisor._stream_of(owner) for owner in owners}
    return [owner for owner, stream in streams.items() if stream is not None and stream.owners[0] == owner]


def renewing(cardata: CarDataBackend, owners: list[int], ahead: float) -> dict[int, int]:
    """The streams (not blocked at BMW) whose id token comes within the renewal margin `ahead` seconds from
    now, by owner: their connections so far (the renewal's reconnect is one more)."""
    due = {}
    for owner in owners:
        link = cardata.store.cardata_link(owner)
        stats = cardata.supervisor.stats(owner)
        if link is None or stats is None or cardata.supervisor.blocked(owner) is not None:
            continue
        if cardata.client.tokens.expires_in(link.tokens) - ahead < stream.ID_TOKEN_MARGIN:
            due[owner] = stats.connects
    return due


async def streams_up(cardata: CarDataBackend, owners: list[int], renewals: dict[int, int]) -> bool:
    """Wait (at most STREAMS_UP_SECONDS) until the streams that renew their id token at this step (`renewals`,
    with their connections before it) have reconnected, and every stream is connected. A stream renews a few
    minutes before expiry and reconnects: a few hundred milliseconds in a real hour, but here a simulated
    hour lasts seconds, and every account linked at the start renews at the same step: a burst published
    meanwhile would be lost to QoS 0 far more often than in life. A stream BMW blocks (held by another app)
    or that lost its link is not waited for. Whether every stream was up in time."""

    def renewed() -> bool:
        return all(
            (stats := cardata.supervisor.stats(owner)) is None or stats.connects > before
            for owner, before in renewals.items()
        )

    try:
        async with asyncio.timeout(STREAMS_UP_SECONDS):
            while not renewed():  # noqa: ASYNC110 (the streams' own tasks reconnect)
                await asyncio.sleep(0.01)
            for owner in owners:
                if cardata.supervisor.stats(owner) is not None and cardata.supervisor.blocked(owner) is None:
                    await cardata.supervisor.wait_connected(owner)  # a revoked link streams no more
    except TimeoutError:
        return False
    return True


async def tick(application: Application, now: float, phases: Phases) -> None:
    """The bot's timed work at simulated time `now`, as the JobQueue and the backends' loops would run it."""
    services = application.bot_data.services
    with phases.timed("watcher cycle"):
        await services.watcher.cycle(now)
    cardata = services.garage.cardata
    assert cardata is not None
    with phases.timed("CarData ticks"):
        await cardata.detector.tick(now)
        await cardata.late_reads.tick(now)
        await cardata.alert_tick(now)
        await cardata.settle_drives(now)  # with the alerts' tick, as the backend's own loop runs it


async def soak(args: argparse.Namespace, world: World, info: dict[str, Any], folder: Path) -> int:
    """The soak with the bot in this process."""
    started = time.monotonic()
    report = Report()
    await bot_side(args, world, info, folder, Fernet.generate_key().decode(), report, Progress(), started)
    tally = await world.ask("tally")
    return verdict(report.days, tally, report.errors, time.monotonic() - started)


async def bot_side(
    args: argparse.Namespace,
    world: World,
    info: dict[str, Any],
    folder: Path,
    secret_key: str,
    report: Report,
    progress: Progress,
    started: float,
) -> None:
    """The bot's part: build it, link everyone (unless `progress` says a bot process did before), then the
    steps from `progress` on, with the day reports. With --kill the first process stops asking the world
    for steps after the evening step (its checkpoint) and lives on until it is killed."""
    clock = SimClock(await world.ask("now") - time.time())
    renew_a_step_early(args.step * 60)
    settings = settings_for(info, folder, secret_key)
    owners: list[dict[str, Any]] = info["owners"]
    errors = Errors()
    logging.getLogger().addHandler(errors)
    lag = Lag()
    phases = Phases()
    collections = Collections()
    stalls = Stalls() if args.stalls else None
    steps_per_day = DAY // (args.step * 60)
    scripted = (args.hours or args.days * 24) * 60 // args.step
    total = scripted + SETTLE_HOURS * 60 // args.step
    restart_at = evening_step(args) if args.restart else None  # before it: 19:00
    # The first process is killed after the first step from the evening on that ends with cars charging.
    kill_after = evening_step(args, kill_day(args)) if args.kill and progress.life == 1 else None
    application_cm = running(settings, info, clock)
    application = await application_cm.__aenter__()
    try:
        garage = application.bot_data.services.garage
        if progress.last_renew is None:
            await link_everyone(garage, owners)
            report("say", f"{len(owners)} owners linked in {time.monotonic() - started:.0f} s")
            await world.ask("calls")  # linking's calls are not a day's
            progress.last_renew = clock()
        cardata = garage.cardata
        assert cardata is not None
        cardata_owners = [o["tg_id"] for o in owners if o["backend"] == "cardata"]
        probe = asyncio.create_task(lag.run(), name="soak-lag-probe")
        if stalls is not None:
            stalls.start()
        late_streams = 0  # steps that began with a stream still down after STREAMS_UP_SECONDS
        disk_full = False  # a new Application (restart, kill) opens the store uncapped
        for step in range(progress.step, total):
            if step == restart_at:
                report("say", "restart: a new Application on the same database, mid-charge")
                await application_cm.__aexit__(None, None, None)
                application_cm = running(settings.model_copy(), info, clock)
                application = await application_cm.__aenter__()
                cardata = application.bot_data.services.garage.cardata
                assert cardata is not None
                disk_full = False
            # The bot's clock moves first: a stream whose id token is due for renewal reconnects before the
            # simulators' step brings the cars' messages (see streams_up).
            renewals = renewing(cardata, carriers(cardata, cardata_owners), args.step * 60)
            clock.offset += args.step * 60
            with phases.timed("streams up"):
                late_streams += not await streams_up(cardata, cardata_owners, renewals)
            with phases.timed("world advance"):
                now = await world.ask("advance", step)
            clock.offset = now - time.time()
            if args.faults:
                full = int(now % DAY) // 60 in DISK_FULL_MINUTES
                if full != disk_full:
                    application.bot_data.services.garage.store.simulate_full_disk(full)
                    report("say", f"  {hhmm(now)}: the bot's disk {'full' if full else 'has room again'}")
                    disk_full = full
            with phases.timed("world act"):
                charging = await world.ask("act")
            with phases.timed("pause"):
                await asyncio.sleep(0.05)  # the stream's messages of this step reach the bot
            await tick(application, now, phases)
            if now - progress.last_renew >= RENEW_SECONDS:
                await cardata.supervisor.renew()
                progress.last_renew = now
            progress.step = step + 1
            report("step", step)  # alive (see `follow`)
            kill = kill_after is not None and step >= kill_after and charging > 0
            whole_day = (step + 1) % steps_per_day == 0 or step == total - 1
            if whole_day or kill:
                label = f"{progress.days + 1}" + ("" if whole_day else f" until the kill at {hhmm(now)}")
                day = await day_report(label, world, folder, lag, report, errors, owners, started)
                report("day", day | {"life": progress.life})
                progress.days += whole_day
                report("say", f"  steps that began with a stream down: {late_streams}")
                report("say", f"  wall time by part: {phases.line()}")
                report("say", f"  garbage collections: {collections.line()}")
                if stalls is not None:
                    report("say", "\n".join(f"  {line}" for line in stalls.lines()))
                    stalls.clear()
                lag.clear()
                collections.clear()
                phases = Phases()
            if kill:
                report("errors", dict(errors.kinds))
                report("checkpoint", progress)
                # Its streams, debounces and pushes carry on meanwhile; the soak's process kills it.
                await asyncio.sleep(KILL_WINDOW_BOUND)
                raise RuntimeError(f"not killed within {KILL_WINDOW_BOUND:.0f} s of its checkpoint")
        probe.cancel()
    finally:
        if stalls is not None:
            stalls.stop()
        await application_cm.__aexit__(*sys.exc_info())
        logging.getLogger().removeHandler(errors)
    report("errors", dict(errors.kinds))


def bot_process(
    args: argparse.Namespace,
    address: str,
    info: dict[str, Any],
    folder: Path,
    secret_key: str,
    progress: Progress,
    started: float,
    conn: Connection,
) -> None:
    """A spawned bot process (--kill): the bot side from `progress` on, on a connection of its own to the
    world; all it reports goes to the soak's process through `conn`, a failure with its traceback."""
    quiet_logging()
    report = Report(conn)
    try:
        with Client(address, family="AF_UNIX") as world:
            asyncio.run(bot_side(args, World(world), info, folder, secret_key, report, progress, started))
    except BaseException:
        report("failed", traceback.format_exc())
        raise
    report("done", None)


def killed_soak(
    args: argparse.Namespace, world: World, info: dict[str, Any], folder: Path, address: str
) -> int:
    """The soak with the bot in processes of its own: the first SIGKILLed at a random moment after its
    checkpoint mid-charge, the second going on from the next step on the same database."""
    started = time.monotonic()
    spawn = multiprocessing.get_context("spawn")
    secret_key = Fernet.generate_key().decode()
    report = Report()
    progress: Progress | None = Progress()
    lives = 0
    while progress is not None:
        lives += 1
        receiving, sending = spawn.Pipe(duplex=False)
        process = spawn.Process(
            target=bot_process,
            args=(args, address, info, folder, secret_key, progress, started, sending),
            name=f"soak-bot-{lives}",
        )
        process.start()
        sending.close()  # so a bot process that dies is an EOFError here, not a hang
        try:
            checkpoint = follow(process, receiving, report, "checkpoint" if lives == 1 else "done")
            if lives == 1:
                time.sleep(random.Random(args.seed).uniform(*KILL_WINDOW))
                killed_at = time.time()
                process.kill()
                after = killed_at - checkpoint["at"]
                process.join(30)
                assert process.exitcode == -9, process.exitcode
                before = world.call("killed", killed_at)
                report(
                    "say",
                    f"SIGKILL {after:.2f} s after the checkpoint at {before['at']} (simulated):"
                    f" Telegram had accepted {before['pushes']} charge-end pushes,"
                    f" {before['last_second']} of them in the last second",
                )
                progress = replace(checkpoint["progress"], life=2)
            else:
                progress = None
        finally:
            if process.is_alive():
                process.kill()
            process.join(30)
            receiving.close()
    return verdict(report.days, world.call("tally"), report.errors, time.monotonic() - started)


def follow(process: BaseProcess, conn: Connection, report: Report, until: str) -> Any:
    """Take what a bot process reports until it says `until` (returned): a process that fails, dies or
    falls silent for SILENCE seconds fails the soak, with its traceback when it has one."""
    while True:
        if not conn.poll(SILENCE):
            raise RuntimeError(f"{process.name} silent for {SILENCE:.0f} s")
        try:
            kind, value = conn.recv()
        except EOFError:
            process.join(30)
            raise RuntimeError(f"{process.name} died, exit code {process.exitcode}") from None
        if kind == "failed":
            raise RuntimeError(f"{process.name} failed:\n{value}")
        if kind == "checkpoint":
            value = {"progress": value, "at": time.time()}
        if kind == until:
            return value
        if kind == "done":
            raise RuntimeError(f"{process.name} ended before its {until}")
        report(kind, value)


async def day_report(
    day: str,
    world: World,
    folder: Path,
    lag: Lag,
    report: Report,
    errors: Errors,
    owners: list[dict[str, Any]],
    started: float,
) -> dict[str, Any]:
    figures: dict[str, Any] = process_figures(folder / "bot.sqlite3")
    calls = await world.ask("calls")
    iremote = sum(o["backend"] == "iremote" for o in owners)
    cardata_accounts = sum(o["backend"] == "cardata" and o["co_owner_of"] is None for o in owners)
    lags = {"lag_p99_ms": lag.p99(), "busy_p99_ms": lag.p99_busy()}
    figures.update(day=day, wall_s=time.monotonic() - started, calls=calls, **lags)
    per_car = ", ".join(f"{k} {n / max(1, iremote):.1f}" for k, n in sorted(calls["bmw"].items()))
    rest = ", ".join(f"{k} {n / max(1, cardata_accounts):.1f}" for k, n in sorted(calls["cardata"].items()))
    report(
        "say",
        f"day {day}: RSS {figures['rss_mb']:.1f} MB, fds {figures['fds']}, sockets {figures['sockets']},"
        f" tasks {figures['tasks']}, DB {figures['db_mb']:.2f} MB + WAL {figures['wal_mb']:.2f} MB,"
        f" loop lag p99 {figures['lag_p99_ms']:.0f} ms (on CPU: {figures['busy_p99_ms']:.0f} ms),"
        f" wall {figures['wall_s']:.0f} s\n"
        f"  i Remote calls per car: {per_car}\n"
        f"  CarData REST calls per account: {rest}; most by one account {calls['cardata_most']}"
        f" of 50, 429s {calls['cardata_429']}\n"
        f"  errors logged so far: {sum(errors.kinds.values())}",
    )
    return figures


def verdict(days: list[dict[str, Any]], tally: dict[str, Any], errors: Counter[str], wall: float) -> int:
    # RSS is judged per bot process life: a process started after a kill begins afresh.
    rss: dict[int, list[float]] = {}
    for d in days:
        rss.setdefault(d["life"], []).append(d["rss_mb"])
    growth = {life: (mb[0], max(mb)) for life, mb in rss.items()}
    lag_p99 = max(d["lag_p99_ms"] for d in days)
    over = any(d["calls"]["cardata_429"] or d["calls"]["cardata_most"] > 50 for d in days)
    resent = max(0, tally["commands_sent"] - tally["commands_confirmed"])
    alerts = tally["alerts"]
    alerts_lost = sum(f["lost"] for f in alerts.values())
    alerts_doubled = sum(f["doubled"] for f in alerts.values())
    per_kind = "".join(
        f"  {kind}: expected {f['expected']} (and {f['maybe']} that may come), delivered {f['delivered']},"
        f" lost {f['lost']}, doubled {f['doubled']}\n"
        for kind, f in alerts.items()
    )
    print(
        f"\npushes: expected {tally['expected']} (and {tally['maybe']} that may come), delivered"
        f" {tally['delivered']}, lost {tally['lost']}, doubled {tally['doubled']}\n"
        f"  in German while their owner chose it: {tally['german_ends']} ends, {tally['german_wrong']} not in"
        f" German ({tally['german_owners']} owners switched); /unlink {tally['unlinked']}, linked again"
        f" {tally['relinked']}\n{across(tally['kill'])}"
        f"  of the lost, in a report published while the account had no stream (QoS 0): "
        f"{tally['lost_unheard']}\n"
        f"alerts (the charge level switched on by {tally['alert_owners']} people; left open after an unlock;"
        f" none other expected): pushed {tally['alerts_by_kind']}\n"
        f"{per_kind}"
        f"  missed (chat, backend, expected, may, delivered): {tally['alerts_missed']}\n"
        f"commands: confirmed in the chat {tally['commands_confirmed']}, sent to BMW"
        f" {tally['commands_sent']}, re-sent {resent}\n"
        f"re-link: {tally['relink_told_once']} of {tally['relink_revoked']} owners whose CarData tokens BMW"
        f" revoked told once; other or repeated notices {tally['relink_wrong']}\n"
        f"chats: {tally['chats']}\nmissed (chat, backend, expected, may, delivered): {tally['missed']}\n"
        f"  what they were told, and their charges: {tally['missed_detail']}\n"
        f"Telegram refusals: {tally['telegram_refused']} {tally['refusals']}\nfaults: {tally['faults']}\n"
        f"errors by kind:"
    )
    for kind, n in errors.most_common(25):
        print(f"  {n:6d}  {kind}")
    per_life = "; ".join(f"life {life}: {a:.1f} -> peak {b:.1f} MB" for life, (a, b) in growth.items())
    checks = {
        f"RSS after day 1 grows <= 10 %, per bot process life ({per_life})": all(
            peak <= first * (1 + RSS_GROWTH) for first, peak in growth.values()
        ),
        f"0 pushes lost ({tally['lost']})": tally["lost"] == 0,
        f"0 pushes doubled ({tally['doubled']})": tally["doubled"] == 0,
        f"0 alerts lost ({alerts_lost})": alerts_lost == 0,
        f"0 alerts doubled ({alerts_doubled})": alerts_doubled == 0,
        f"charge ends in the owner's language ({tally['german_wrong']} not)": tally["german_wrong"] == 0,
        f"0 commands re-sent ({resent})": resent == 0,
        f"event-loop lag p99 <= {LAG_P99_MS:.0f} ms ({lag_p99:.0f} ms)": lag_p99 <= LAG_P99_MS,
        "CarData calls never over budget": not over,
        "each owner whose tokens BMW revoked told once to link again, nobody else": tally["relink_told_once"]
        == tally["relink_revoked"]
        and not tally["relink_wrong"],
    }
    if (kill := tally["kill"]) is not None:
        checks[
            f"the kill landed mid-charge ({kill['cars']} cars charging) and each chat had their ends after it"
            f" once ({kill['exactly']} of {kill['chats']})"
        ] = kill["cars"] > 0 and not kill["missed"]
    print(f"\ntargets ({wall:.0f} s wall):")
    for what, met in checks.items():
        print(f"  {'met ' if met else 'MISSED'}  {what}")
    return 0 if all(checks.values()) else 1


def across(kill: dict[str, Any] | None) -> str:
    if kill is None:
        return ""
    return (
        f"across the kill: {kill['cars']} cars charging at it, {kill['chats']} chats told of them;"
        f" their ends after it: expected {kill['expected']} (and {kill['maybe']} that may come), delivered"
        f" {kill['delivered']}, lost {kill['lost']}, doubled {kill['doubled']}\n"
        f"  missed (chat, backend, expected, may, delivered): {kill['missed']}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=1, help="simulated days (default 1)")
    parser.add_argument("--owners", type=int, default=100, help="owners, half on each backend (default 100)")
    parser.add_argument("--step", type=int, default=5, help="simulated minutes per step (default 5)")
    parser.add_argument("--hours", type=int, help="simulated hours instead of whole days (a smoke run)")
    parser.add_argument("--start-hour", type=int, default=0, help="UTC hour of day the soak begins at")
    parser.add_argument("--faults", action="store_true", help="the fault schedule (soak_world._faults)")
    parser.add_argument("--restart", action="store_true", help="a new Application at 19:00, mid-charge")
    parser.add_argument(
        "--kill",
        action="store_true",
        help="the bot in a process of its own, SIGKILLed mid-charge (19:00 + a step; --restart: a day later)",
    )
    parser.add_argument(
        "--stalls",
        action="store_true",
        help="where the event loop stalls: its stack sampled, the top places each day (benchmarks/stalls.py)",
    )
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    if 60 % args.step or args.owners < 2:
        parser.error("--step must divide 60 and --owners be at least 2")
    scripted = (args.hours or args.days * 24) * 60 // args.step
    if (args.restart or args.kill) and not 0 <= evening_step(args) < scripted:
        parser.error("--restart and --kill need the soak to run through 19:00 of its middle day")
    if args.kill and not evening_step(args, kill_day(args)) < scripted:
        parser.error("--restart with --kill needs the soak to run through 19:00 of the day after its middle")
    quiet_logging()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        address = str(Path(folder) / "world.sock") if args.kill else None
        parent, child = spawn.Pipe()
        process = spawn.Process(
            target=serve,
            args=(
                child,
                args.owners,
                scripted,
                args.step * 60,
                args.start_hour,
                args.faults,
                args.seed,
                address,
            ),
            daemon=True,
        )
        process.start()
        child.close()  # so a world that dies is an EOFError here, not a hang
        try:
            info = parent.recv()
            if address is not None:
                return killed_soak(args, World(parent), info, Path(folder), address)
            return asyncio.run(soak(args, World(parent), info, Path(folder)))
        finally:
            parent.send("stop")
            process.join(30)


def quiet_logging() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger().handlers[0].setLevel(logging.ERROR)  # warnings are counted (Errors), not printed


if __name__ == "__main__":
    raise SystemExit(main())
