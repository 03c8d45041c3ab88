"""Updates per second the bot handles with 100 users writing at once, as a ratio to an echo bot.

    .venv/bin/python -m benchmarks.throughput [--users 100] [--each 2] [--command /help]

All users send their updates at once; the time runs until the bot's last answer. Two baselines, measured
in the same run on the same loopback sandbox: the bare echo bot, and the echo bot with the same
AIORateLimiter as ours. The limiter keeps every bot of this token under Telegram's ~30 messages per second,
so against the bare echo bot the ratio shows what Telegram's limit costs, and against the limited echo bot
what our own code costs. /status also asks the simulator and sends two calls per update.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from telegram.ext import Application

from benchmarks.bot_overhead import (
    World,
    bot_application,
    echo_application,
    link_users,
    world,
)
from benchmarks.report import result
from bot.app import polling
from bot.sandbox import Sandbox

FIRST_USER = 1000


async def burst(
    world: World, application: Application, sandbox: Sandbox, text: str, users: int, each: int
) -> float:
    """Updates per second: everyone sends `each` updates at once; until the last answer is out."""
    # A /status answered within a second is one message too; a slower one's placeholder counts as its answer.
    method = "sendMessage"
    people = [sandbox.user(FIRST_USER + i, f"User{i}") for i in range(users)]
    done = world.api.ok_calls[method] + users * each
    started = time.perf_counter()
    for _ in range(each):
        for person in people:
            person.send(text)
    await world.api.wait_until(lambda calls: calls[method] >= done, timeout=600)
    return users * each / (time.perf_counter() - started)


async def measure(world: World, users: int, each: int, command: str) -> dict[str, float]:
    rates: dict[str, float] = {}
    bot = bot_application(world, world.settings())
    async with polling(bot):
        await link_users(world, bot, [FIRST_USER + i for i in range(users)])
        rates["bot"] = await burst(world, bot, world.sandbox, command, users, each)
    for name, rate_limited in (("echo", False), ("echo+limiter", True)):
        async with polling(echo_application(world, rate_limited=rate_limited)) as echo:
            rates[name] = await burst(world, echo, world.echo_sandbox, "hello", users, each)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100, help="users writing at once (default 100)")
    parser.add_argument("--each", type=int, default=2, help="updates per user (default 2)")
    parser.add_argument("--command", default="/help", choices=["/help", "/status"])
    args = parser.parse_args()
    with world() as w:
        rates = asyncio.run(measure(w, args.users, args.each, args.command))
    print(
        f"{args.users} users x {args.each} updates at once ({args.command} to the bot, text to the echo bots)"
    )
    for name, rate in rates.items():
        print(f"{name:>13}: {rate:8.1f} updates/s")
    result(
        f"throughput, {args.users} users ({args.command})",
        f"{rates['bot']:.1f} upd/s",
        f"{rates['echo+limiter']:.1f} upd/s (echo, same limiter)",
        rates["bot"] / rates["echo+limiter"],
        f"(bare echo {rates['echo']:.0f} upd/s)",
    )


if __name__ == "__main__":
    main()
