"""Per-update overhead of the bot, as a ratio to a bare python-telegram-bot echo bot on the same server.

    .venv/bin/python -m benchmarks.bot_overhead [--updates N] [--rounds R]

The bots long-poll the same loopback Bot API sandbox from this process; the simulator answers BMW calls
over loopback. One user sends one update at a time and waits for the bot's last API call for it (the
updates are spaced to stay under the 30 messages/s the AIORateLimiter enforces):
  /help   — one sendMessage, like the echo bot: the bot's own per-update cost (handler chain, allow-list,
            concurrency, AIORateLimiter) against the bare library's (median of a round, best round);
  /status — the whole feature (the status from the simulator, one message; "typing" only past 0.2 s), against
            the fair baseline: a bare echo bot making the same status call (the same client and settings,
            the same simulator) and sending the same one message (text and buttons); printed too against
            the same bot sending one short line instead. They take turns update by update, and the median
            and p95 are over every round.
The echo bots are built bare (no rate limiter); rounds alternate between the bots.
The module also holds the harness the other bot benchmarks share.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from telegram import Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ContextTypes,
    MessageHandler,
    filters,
)

from benchmarks.report import result
from bot.app import build_application, polling
from bot.backends import from_vehicle_status
from bot.bmw.client import BMWClient
from bot.bmw.models import Account, Region
from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET, Simulator
from bot.chat import keyboards, texts
from bot.config import Settings, load_settings
from bot.sandbox import ApiCall, BotApiServer, Sandbox
from bot.servers import BackgroundServer
from bot.store import StoredVehicle
from tests.support.bot import fast_client

BOT_TOKEN = "7000000001:benchmark-bot-token-0123456789abcdef"
ECHO_TOKEN = "7000000002:benchmark-echo-token-0123456789abcdef"
STATUS_ECHO_TOKEN = "7000000003:benchmark-status-echo-token-0123456789"
PASSWORD = "bench-password"


class CountingBotApi(BotApiServer):
    """The sandbox, counting successful calls per (token, method) and waking whoever waits on a count.

    Waiting on the server's own record of the bot's last call measures the round trip without polling.
    """

    def __init__(self, **limits: float | None) -> None:
        super().__init__(**limits)
        self.ok_calls: Counter[str] = Counter()
        self._changed = threading.Condition()

    def _log(self, call: ApiCall) -> None:
        super()._log(call)
        if call.ok:
            with self._changed:
                self.ok_calls[call.method] += 1
                self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[Counter[str]], bool], timeout: float = 60.0) -> None:  # noqa: ASYNC109
        def wait() -> None:
            with self._changed:
                if not self._changed.wait_for(lambda: predicate(self.ok_calls), timeout):
                    raise TimeoutError(
                        f"bot did not answer in {timeout} s; calls so far {dict(self.ok_calls)}"
                    )

        await asyncio.to_thread(wait)


@dataclass
class World:
    simulator: Simulator
    api: CountingBotApi
    api_url: str
    simulator_url: str
    folder: Path

    @property
    def sandbox(self) -> Sandbox:
        return Sandbox(self.api, BOT_TOKEN)

    @property
    def echo_sandbox(self) -> Sandbox:
        return Sandbox(self.api, ECHO_TOKEN)

    @property
    def status_echo_sandbox(self) -> Sandbox:
        return Sandbox(self.api, STATUS_ECHO_TOKEN)

    def settings(self, **overrides: object) -> Settings:
        return load_settings(
            telegram_bot_token=BOT_TOKEN,
            telegram_api_url=self.api_url,
            bmw_api_url=self.simulator_url,
            bmw_api_key=DEFAULT_API_KEY,
            bmw_api_secret=DEFAULT_API_SECRET,
            database_path=self.folder / "bot.sqlite3",
            map_tile_cache_dir=self.folder / "tiles",
            bot_secret_key=Fernet.generate_key().decode(),
            **overrides,
        )


@contextmanager
def world(flood_limit_per_second: float | None = None) -> Iterator[World]:
    """The simulator and the Bot API sandbox (both bots added) served on loopback, and a scratch folder."""
    simulator = Simulator()
    api = CountingBotApi(flood_limit_per_second=flood_limit_per_second)
    api.add_bot(BOT_TOKEN)
    api.add_bot(ECHO_TOKEN, username="echo_bot")
    api.add_bot(STATUS_ECHO_TOKEN, username="status_echo_bot")
    with (
        tempfile.TemporaryDirectory() as folder,
        BackgroundServer(simulator.app) as sim_server,
        BackgroundServer(api.app) as api_server,
    ):
        yield World(simulator, api, api_server.url, sim_server.url, Path(folder))


def echo_application(world: World, *, rate_limited: bool = False) -> Application:
    """The bare python-telegram-bot echo bot (concurrent updates, like ours), optionally rate limited."""

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(update.effective_message.text or "")

    builder = (
        ApplicationBuilder()
        .token(ECHO_TOKEN)
        .base_url(f"{world.api_url}/bot")
        .base_file_url(f"{world.api_url}/file/bot")
        .concurrent_updates(True)
    )
    if rate_limited:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=5))
    application = builder.build()
    application.add_handler(MessageHandler(filters.ALL, echo))
    return application


def status_echo_application(
    world: World, client: BMWClient, account: Account, car: StoredVehicle, ref: str
) -> Application:
    """The fair baseline of /status: a bare bot making the same BMW status call, then sending one message:
    for "/status" the bot's very message (text and buttons, formatted per update as the bot does), for
    anything else one short line."""

    async def status(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        assert message is not None
        answer = await client.status(account, car.vin)
        if message.text == "/status":
            await message.reply_text(
                texts.status(car, from_vehicle_status(car.vin, answer)),
                parse_mode=ParseMode.HTML,
                disable_web_page_preview=True,
                reply_markup=keyboards.car_actions(ref, car, several_cars=True),
            )
        else:
            await message.reply_text(f"{answer.charging_level_hv} %, {answer.remaining_range_electric} km")

    application = (
        ApplicationBuilder()
        .token(STATUS_ECHO_TOKEN)
        .base_url(f"{world.api_url}/bot")
        .base_file_url(f"{world.api_url}/file/bot")
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(MessageHandler(filters.ALL, status))
    return application


def bot_application(world: World, settings: Settings) -> Application:
    return build_application(settings, car_api=fast_client(world.simulator_url))


async def link_users(world: World, application: Application, tg_ids: list[int]) -> None:
    """Each user gets a simulator account of their own and links it (through the garage: no chat needed)."""
    garage = application.bot_data.services.garage
    for tg_id in tg_ids:
        login = f"user{tg_id}@example.com"
        world.simulator.add_account(login, PASSWORD)
        await garage.link(tg_id, f"User{tg_id}", Region.REST_OF_WORLD, login, PASSWORD)


async def round_trips(
    world: World, sandbox: Sandbox, text: str, method: str, count: int, gap: float
) -> float:
    """Median seconds from a user's message to the bot's `method` call that answers it, one at a time."""
    return statistics.median(await trip_times(world, sandbox, text, method, count, gap))


async def trip_times(
    world: World, sandbox: Sandbox, text: str, method: str, count: int, gap: float
) -> list[float]:
    """Seconds from a user's message to the bot's `method` call that answers it, one at a time.

    Trips start at least `gap` seconds apart, keeping the messages under the AIORateLimiter's 30 per second:
    a faster series would measure the limiter's pacing, not the bot.
    """
    user = sandbox.user(1)
    times = []
    for _ in range(count):
        done = world.api.ok_calls[method] + 1
        started = time.perf_counter()
        user.send(text)
        await world.api.wait_until(lambda calls, done=done: calls[method] >= done)
        times.append(time.perf_counter() - started)
        await asyncio.sleep(max(0.0, gap - times[-1]))
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1]


async def measure(world: World, updates: int, rounds: int) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The best round's median of echo and /help; every round's times of /status and its baseline."""
    best: dict[str, float] = {}
    times: dict[str, list[float]] = {"status": [], "status-echo": [], "line-echo": []}
    client = fast_client(world.simulator_url)
    async with polling(bot_application(world, world.settings())) as bot, polling(echo_application(world)):
        await link_users(world, bot, [1])
        account = Account("user1@example.com", PASSWORD, Region.REST_OF_WORLD)
        services = bot.bot_data.services
        car = services.garage.car(1)
        await client.login(account)
        status_echo = status_echo_application(world, client, account, car, services.refs.ref(1, car.vin))
        async with client, polling(status_echo):
            # Warm-up: connections, the BMW login, PTB's first-call paths.
            await round_trips(world, world.sandbox, "/status", "sendMessage", 3, 0.1)
            await round_trips(world, world.echo_sandbox, "hello", "sendMessage", 3, 0.1)
            await round_trips(world, world.status_echo_sandbox, "/status", "sendMessage", 3, 0.1)
            for _ in range(rounds):
                for name, sandbox, text in (
                    ("echo", world.echo_sandbox, "hello"),
                    ("help", world.sandbox, "/help"),
                ):
                    median = await round_trips(world, sandbox, text, "sendMessage", updates, 0.05)
                    best[name] = min(best.get(name, median), median)
                # /status and its baseline take turns update by update: both meet the same load, which on a
                # shared machine drifts within seconds. Spaced wider: a /status slower than 0.2 s makes two
                # calls (the action, the message).
                turns = (
                    ("line-echo", world.status_echo_sandbox, "/line"),
                    ("status-echo", world.status_echo_sandbox, "/status"),
                    ("status", world.sandbox, "/status"),
                )
                for _ in range(updates):
                    for name, sandbox, text in turns:
                        times[name] += await trip_times(world, sandbox, text, "sendMessage", 1, 0.1)
    return best, times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=50, help="updates per round and kind (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    with world() as w:
        best, times = asyncio.run(measure(w, args.updates, args.rounds))
    echo, help_ = best["echo"], best["help"]
    status, baseline = statistics.median(times["status"]), statistics.median(times["status-echo"])
    status95, baseline95 = p95(times["status"]), p95(times["status-echo"])
    line, line95 = statistics.median(times["line-echo"]), p95(times["line-echo"])
    print(f"{args.updates} updates x {args.rounds} rounds, one at a time")
    print(f"echo bot (bare PTB)               : {echo * 1e3:7.2f} ms per update (median, best round)")
    print(f"bot /help                         : {help_ * 1e3:7.2f} ms per update = {help_ / echo:.2f}x echo")
    print(
        f"echo + BMW status, same message   : {baseline * 1e3:7.2f} ms median, "
        f"{baseline95 * 1e3:7.2f} ms p95 (all rounds)"
    )
    print(f"echo + BMW status, one line       : {line * 1e3:7.2f} ms median, {line95 * 1e3:7.2f} ms p95")
    print(
        f"bot /status                       : {status * 1e3:7.2f} ms median = {status / baseline:.2f}x, "
        f"{status95 * 1e3:7.2f} ms p95 = {status95 / baseline95:.2f}x "
        f"({status / line:.2f}x and {status95 / line95:.2f}x the one line)"
    )
    result(
        "per-update overhead (/help)",
        f"{help_ * 1e3:.2f} ms",
        f"{echo * 1e3:.2f} ms",
        help_ / echo,
        "<= 1.3x",
    )
    same = "echo + BMW status, same message"
    result(
        "/status round trip, median",
        f"{status * 1e3:.2f} ms",
        f"{baseline * 1e3:.2f} ms ({same})",
        status / baseline,
        "<= 1.15x",
    )
    result(
        "/status round trip, p95",
        f"{status95 * 1e3:.2f} ms",
        f"{baseline95 * 1e3:.2f} ms ({same})",
        status95 / baseline95,
        "<= 1.3x",
    )
    line_baseline = "echo + BMW status, one line"
    result(
        "/status round trip, median",
        f"{status * 1e3:.2f} ms",
        f"{line * 1e3:.2f} ms ({line_baseline})",
        status / line,
        "-",
    )
    result(
        "/status round trip, p95",
        f"{status95 * 1e3:.2f} ms",
        f"{line95 * 1e3:.2f} ms ({line_baseline})",
        status95 / line95,
        "-",
    )


if __name__ == "__main__":
    main()
