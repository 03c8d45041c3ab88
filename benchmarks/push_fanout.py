"""Charge-finished push fan-out against a Bot API server enforcing Telegram's 30 messages per second.

    .venv/bin/python -m benchmarks.push_fanout [--pushes 1000] [--limit 30]

N users each have one i3 charging at 99 %; after the simulator's clock moves on, one watcher cycle finds
every charge finished and pushes through the bot's real push path (`bot.chat.notify.pusher`, the
Application's bot with its AIORateLimiter) to the loopback sandbox, which answers 429 with retry_after
beyond `--limit` messages per second. The sandbox runs in a process of its own, as Telegram would: sharing
this process's interpreter lock would bunch the bot's evenly paced sends into bursts the limit refuses.
The achieved rate (accepted messages over the time from the first to
the last) is reported as a fraction of the limit, the baseline; then further cycles run until nothing is
pending, and every user's chat is counted: no push may be lost or duplicated. The BMW side runs in-process
(httpx's ASGI transport), so status polls cost little and the pushes are what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet

from benchmarks.bot_overhead import BOT_TOKEN, PASSWORD
from benchmarks.report import result
from bot.app import build_application
from bot.bmw.client import BMWClient
from bot.bmw.models import Region
from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET, Simulator, fleet
from bot.chat import notify
from bot.config import load_settings
from bot.sandbox import BotApiServer
from bot.servers import BackgroundServer
from bot.watcher import MAX_BACKOFF_SECONDS, Watcher
from tests.support.watcher import FINISHED

FIRST_USER = 10_000


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


async def fan_out(api_url: str, conn: Connection, folder: Path, pushes: int) -> dict[str, float]:
    simulator = Simulator()
    client = BMWClient(
        api_key=DEFAULT_API_KEY,
        api_secret=DEFAULT_API_SECRET,
        base_url="http://bmw.sim",
        transport=httpx.ASGITransport(simulator.app),
    )
    settings = load_settings(
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=api_url,
        database_path=folder / "bot.sqlite3",
        map_tile_cache_dir=folder / "tiles",
        bot_secret_key=Fernet.generate_key().decode(),
    )
    application = build_application(settings, car_api=client)
    garage = application.bot_data.services.garage
    users = [FIRST_USER + i for i in range(pushes)]
    ask(conn, "open", users)
    for i, tg_id in enumerate(users):
        login, vin = f"fan{i}@example.com", f"WBY1Z21000V{500_000 + i:06d}"
        simulator.add_account(login, PASSWORD, vehicles=[fleet.i3_bev(vin, now=simulator.now())])
        simulator.set_status(vin, chargingLevelHv=99)
        simulator.plug_in(vin, charging=True)
        await garage.link(tg_id, f"User{i}", Region.REST_OF_WORLD, login, PASSWORD)

    async with application:
        watcher = Watcher(
            garage, notify.pusher(application), charge_poll_seconds=60, idle_poll_seconds=900, concurrency=20
        )
        now = time.time() + 1e7

        async def cycle():
            nonlocal now
            now += 2 * MAX_BACKOFF_SECONDS  # every car is due
            return await watcher.cycle(now)

        await cycle()  # first sight: every car charging
        simulator.advance(10 * 60)  # every charge is finished
        sends_before = len(ask(conn, "calls"))
        report = await cycle()
        fan_calls = ask(conn, "calls")[sends_before:]
        extra_cycles = 0
        while report.push_failures and extra_cycles < 10:
            report = await cycle()
            extra_cycles += 1
    await client.aclose()

    accepted = [at for at, ok, _ in fan_calls if ok]
    refused = sum(code == 429 for _, _, code in fan_calls)
    counts = [sum(FINISHED in text for text in chat) for chat in ask(conn, "chats", users)]
    return {
        "rate": (len(accepted) - 1) / (max(accepted) - min(accepted)),
        "accepted": len(accepted),
        "refused": refused,
        "lost": sum(count == 0 for count in counts),
        "duplicated": sum(count > 1 for count in counts),
        "extra_cycles": extra_cycles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--pushes", type=int, default=1000, help="users with a finishing charge (default 1000)"
    )
    parser.add_argument("--limit", type=float, default=30.0, help="server's messages per second (default 30)")
    args = parser.parse_args()
    parent, child = multiprocessing.get_context("spawn").Pipe()
    sandbox = multiprocessing.get_context("spawn").Process(target=serve_sandbox, args=(child, args.limit))
    sandbox.start()
    child.close()  # so a sandbox that dies is an EOFError here, not a hang
    try:
        with tempfile.TemporaryDirectory() as folder:
            outcome = asyncio.run(fan_out(parent.recv(), parent, Path(folder), args.pushes))
    finally:
        parent.send("stop")
        sandbox.join(30)
    fraction = outcome["rate"] / args.limit
    print(f"{args.pushes} charge-finished pushes, server limit {args.limit:.0f} messages/s")
    print(
        f"achieved {outcome['rate']:.1f} messages/s = {fraction:.2f} of the limit; "
        f"{outcome['refused']:.0f} answered 429 and retried; "
        f"{outcome['extra_cycles']:.0f} extra watcher cycles for pushes still pending"
    )
    print(f"lost {outcome['lost']:.0f}, duplicated {outcome['duplicated']:.0f}")
    result(
        f"push fan-out, {args.pushes} pushes",
        f"{outcome['rate']:.1f} msg/s, lost {outcome['lost']:.0f}, dup {outcome['duplicated']:.0f}",
        f"{args.limit:.0f} msg/s (limit)",
        fraction,
        ">= 0.9, 0 lost/dup",
    )


if __name__ == "__main__":
    main()
