"""BMWClient's own cost per call, as a ratio to raw httpx GETs of the same URL with the same token.

    .venv/bin/python benchmarks/client_overhead.py [--calls N] [--rounds R]

Both sides read the vehicle status from the same simulator over loopback, one call after another, on one
pooled connection each; the baseline is measured in the same run. The ratio is the price of the client's
own work: token check, URL building, error mapping and parsing into a VehicleStatus.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable

import httpx

from benchmarks.report import result
from bot.bmw.client import BMWClient
from bot.bmw.models import Account
from bot.bmw.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    Simulator,
)
from bot.servers import BackgroundServer


async def per_call(calls: int, call: Callable[[], Awaitable[object]]) -> float:
    """Mean seconds per awaited call."""
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls


async def measure(url: str, calls: int, rounds: int) -> tuple[float, float]:
    """Best-of-rounds seconds per call: (client, raw httpx)."""
    account = Account(DEFAULT_USERNAME, DEFAULT_PASSWORD)
    async with (
        BMWClient(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET, base_url=url) as client,
        httpx.AsyncClient() as raw,
    ):
        token = await client.login(account)
        vin = (await client.vehicles(account))[0].vin
        status_url = f"{url}/webapi/v1/user/vehicles/{vin}/status"
        headers = {"Authorization": f"Bearer {token.access_token}"}

        async def raw_status() -> object:
            response = await raw.get(status_url, headers=headers)
            response.raise_for_status()
            return response.json()

        async def client_status() -> object:
            return await client.status(account, vin)

        client_times, raw_times = [], []
        # Interleaved rounds, so a slow moment of the machine hurts both sides alike.
        for _ in range(rounds):
            raw_times.append(await per_call(calls, raw_status))
            client_times.append(await per_call(calls, client_status))
        return min(client_times), min(raw_times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200, help="status calls per round and side")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per side; the best is kept")
    args = parser.parse_args()
    simulator = Simulator()
    simulator.add_default_account()
    with BackgroundServer(simulator.app) as server:
        client, raw = asyncio.run(measure(server.url, args.calls, args.rounds))
    print(f"status calls: {args.calls} x {args.rounds} rounds, best round per side")
    print(f"raw httpx GET : {raw * 1e3:8.3f} ms/call")
    print(f"BMWClient     : {client * 1e3:8.3f} ms/call")
    print(f"ratio         : {client / raw:8.2f} x")
    result(
        "BMW client, status call", f"{client * 1e3:.3f} ms", f"{raw * 1e3:.3f} ms (raw httpx)", client / raw
    )


if __name__ == "__main__":
    main()
