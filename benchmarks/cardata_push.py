"""Time from CarData's "charging ended" stream message to the push in the owner's chat, with 1,000 CarData
owners connected through one bot process.

    .venv/bin/python -m benchmarks.cardata_push [--owners 1000] [--samples 100] [--spacing 0.2] [--debounce 2]

Three processes, as in production. The CarData simulator and its MQTT broker over TLS (benchmarks/
cardata_stream.py's `serve`: N accounts with one i3 each) and the Bot API sandbox with Telegram's 30
messages/s limit (benchmarks/push_fanout.py's `serve_sandbox`) each run in a process of their own; this one
runs the bot's side: its store, the garage with the CarData backend (REST client, one `StreamSupervisor`
for every owner, the charge detector, the alerts) and the Application's pusher (`bot.chat.notify.pusher`,
the garage's `notify`). Every owner links as /link does (the device flow, approved by the simulator at
once, then `Garage.finish_device_flow`: container, cars, first snapshot, stream) and stays connected.

Then `--samples` cars start charging, and their charges end one by one, `--spacing` seconds apart (the
driver stops them: a "charging stopped" push each). Measured per car: from the simulator's end of the
charge (its stream message leaves within the broker's 10 ms tick) to the sandbox receiving the push's
sendMessage, less the debounce (`--debounce`, CARDATA_CHARGE_DEBOUNCE_SECONDS: a stop must last that long
to count). What remains is the stream, the detector's wake at the deadline, the store
writes of the exactly-once protocol, the push pacing and the Bot API call. Only the connect pacing that
BMW's per-IP limit asks for (0.2 s between connections, at most CARDATA_CONNECTS_PER_MINUTE) is off, here and
in the simulator's broker, so that 1,000 streams connect in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from cryptography.fernet import Fernet

from benchmarks.bot_overhead import BOT_TOKEN
from benchmarks.cardata_stream import serve
from benchmarks.push_fanout import link_streams, serve_sandbox, with_unpaced_cardata
from benchmarks.report import result
from bot.chat import notify
from bot.config import load_settings

STOPPED = "stopped charging"  # the words of the push a driver's stop brings (texts.CHARGE_HEADLINES)


async def ask(conn: Connection, request: object) -> object:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: (conn.send(request), conn.recv())[1])


async def measure(
    bmw: Connection,
    telegram: Connection,
    owners: int,
    samples: int,
    spacing: float,
    debounce: float,
    folder: Path,
) -> list[float]:
    url, mqtt_url, ca_file, vins = bmw.recv()
    api_url = telegram.recv()
    settings = load_settings(
        telegram_bot_token=BOT_TOKEN,
        telegram_api_url=api_url,
        database_path=folder / "bot.sqlite3",
        map_tile_cache_dir=folder / "tiles",
        bot_secret_key=Fernet.generate_key().decode(),
        car_backends="iremote",  # the CarData backend is made below, without the connect pacing
    )
    application, garage = with_unpaced_cardata(settings, url, mqtt_url, ca_file, debounce)
    store, cardata = garage.store, garage.cardata
    assert cardata is not None
    users = list(range(1, owners + 1))
    await ask(telegram, ("open", users))  # each owner has talked to the bot: their chat exists

    async with application:
        garage.notify = notify.pusher(application)
        await garage.start()
        started = time.monotonic()
        await link_streams(garage, users)
        took = time.monotonic() - started
        print(f"linked {owners} CarData owners, every stream connected over TLS, in {took:.0f} s")

        chosen = users[:samples]
        await ask(bmw, ("plug", vins[:samples]))

        def charging() -> int:
            tracks = (store.cardata_track(owner, vin) for owner, vin in zip(chosen, vins, strict=False))
            return sum(track is not None and track.session_start is not None for track in tracks)

        deadline = time.monotonic() + 60
        while charging() < samples and time.monotonic() < deadline:  # noqa: ASYNC110 (the stream fills it)
            await asyncio.sleep(0.05)
        print(f"{charging()}/{samples} charges seen starting")

        ended = await ask(bmw, ("end", (vins[:samples], spacing)))
        assert isinstance(ended, list)
        arrived: dict[int, float] = {}
        deadline = time.monotonic() + debounce + 60
        while len(arrived) < samples and time.monotonic() < deadline:
            sent = await ask(telegram, ("sent", None))
            assert isinstance(sent, list)
            arrived = {int(chat): at for chat, at, text in sent if STOPPED in text}
            await asyncio.sleep(0.2)
        await garage.aclose()
    store.close()
    return sorted(
        (arrived[owner] - stamp - debounce) * 1000
        for owner, stamp in zip(chosen, ended, strict=True)
        if owner in arrived
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--owners", type=int, default=1000, help="CarData owners connected (default 1000)")
    parser.add_argument("--samples", type=int, default=100, help="charges ended and timed (default 100)")
    parser.add_argument("--spacing", type=float, default=0.2, help="seconds between two ends (default 0.2)")
    parser.add_argument("--debounce", type=float, default=2.0, help="the charge debounce, s (default 2)")
    args = parser.parse_args()
    samples = min(args.samples, args.owners)
    spawn = multiprocessing.get_context("spawn")
    bmw, bmw_child = spawn.Pipe()
    telegram, telegram_child = spawn.Pipe()
    simulator = spawn.Process(target=serve, args=(bmw_child, args.owners), daemon=True)
    sandbox = spawn.Process(target=serve_sandbox, args=(telegram_child, 30.0), daemon=True)
    simulator.start()
    sandbox.start()
    bmw_child.close()  # so a child that dies is an EOFError here, not a hang
    telegram_child.close()
    try:
        with tempfile.TemporaryDirectory() as folder:
            latencies = asyncio.run(
                measure(bmw, telegram, args.owners, samples, args.spacing, args.debounce, Path(folder))
            )
    finally:
        for conn, child in ((bmw, simulator), (telegram, sandbox)):
            conn.send("stop")
            child.join(30)
    if not latencies:
        raise SystemExit("no push arrived")
    p50 = statistics.median(latencies)
    p95 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
    print(
        f"stream 'charging ended' -> push in the chat, less the {args.debounce:g} s debounce: "
        f"{len(latencies)}/{samples} pushes, p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    result(
        f"CarData: charging ended -> push in chat, {args.owners} owners",
        f"p50 {p50:.0f} ms",
        f"p95 {p95:.0f} ms",
        p95 / p50,
        "p95 <= 500 ms after the debounce",
    )


if __name__ == "__main__":
    main()
