"""Per-update overhead of the bot, as a ratio to a bare python-telegram-bot echo bot on the same server.

    .venv/bin/python -m benchmarks.bot_overhead [--updates N] [--rounds R]

Both bots long-poll the same loopback Bot API sandbox from this process; the simulator answers BMW calls
over loopback. One user sends one update at a time and waits for the bot's last API call for it (the
median of a round; the updates are spaced to stay under the 30 messages/s the AIORateLimiter enforces):
  /help   — one sendMessage, like the echo bot: the bot's own per-update cost (handler chain, allow-list,
            concurrency, AIORateLimiter) against the bare library's;
  /status — the whole feature: "Asking…" message, status from the simulator, the edited answer.
The echo bot is built bare (no rate limiter); rounds alternate between the bots and the best is kept.
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
from bot.bmw.models import Region
from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET, Simulator
from bot.config import Settings, load_settings
from bot.sandbox import ApiCall, BotApiServer, Sandbox
from bot.servers import BackgroundServer
from tests.support.bot import fast_client

BOT_TOKEN = "7000000001:benchmark-bot-token-0123456789abcdef"
ECHO_TOKEN = "7000000002:benchmark-echo-token-0123456789abcdef"
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


def bot_application(world: World, settings: Settings) -> Application:
    return build_application(settings, car_api=fast_client(world.simulator_url))


async def link_users(world: World, application: Application, tg_ids: list[int]) -> None:
    """Each user gets a simulator account of their own and links it (through the garage: no chat needed)."""
    garage = application.bot_data["services"].garage
    for tg_id in tg_ids:
        login = f"user{tg_id}@example.com"
        world.simulator.add_account(login, PASSWORD)
        await garage.link(tg_id, f"User{tg_id}", Region.REST_OF_WORLD, login, PASSWORD)


async def round_trips(
    world: World, sandbox: Sandbox, text: str, method: str, count: int, gap: float
) -> float:
    """Median seconds from a user's message to the bot's `method` call that answers it, one at a time.

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
    return statistics.median(times)


async def measure(world: World, updates: int, rounds: int) -> dict[str, float]:
    best: dict[str, float] = {}
    async with polling(bot_application(world, world.settings())) as bot, polling(echo_application(world)):
        await link_users(world, bot, [1])
        # Warm-up: connections, the BMW login, PTB's first-call paths.
        await round_trips(world, world.sandbox, "/status", "editMessageText", 3, 0.1)
        await round_trips(world, world.echo_sandbox, "hello", "sendMessage", 3, 0.1)
        for _ in range(rounds):
            for name, sandbox, text, method, gap in (
                ("echo", world.echo_sandbox, "hello", "sendMessage", 0.05),
                ("help", world.sandbox, "/help", "sendMessage", 0.05),
                ("status", world.sandbox, "/status", "editMessageText", 0.1),  # two messages each
            ):
                seconds = await round_trips(world, sandbox, text, method, updates, gap)
                best[name] = min(best.get(name, seconds), seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=50, help="updates per round and kind (default 50)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the best is kept (default 3)")
    args = parser.parse_args()
    with world() as w:
        best = asyncio.run(measure(w, args.updates, args.rounds))
    echo, help_, status = best["echo"], best["help"], best["status"]
    print(f"{args.updates} updates x {args.rounds} rounds, one at a time; median round trip, best round")
    print(f"echo bot (bare PTB) : {echo * 1e3:7.2f} ms per update")
    print(f"bot /help           : {help_ * 1e3:7.2f} ms per update = {help_ / echo:.2f}x echo")
    print(f"bot /status         : {status * 1e3:7.2f} ms per update = {status / echo:.2f}x echo")
    result(
        "per-update overhead (/help)",
        f"{help_ * 1e3:.2f} ms",
        f"{echo * 1e3:.2f} ms",
        help_ / echo,
        "<= 1.3x",
    )
    result(
        "/status round trip",
        f"{status * 1e3:.2f} ms",
        f"{echo * 1e3:.2f} ms",
        status / echo,
        "(3 calls vs 1)",
    )


if __name__ == "__main__":
    main()
