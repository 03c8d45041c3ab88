"""MQTT sessions that a cancel cannot leave open (docs/cardata.md, "A stream stopped while it connects").

aiomqtt connects in a thread, which a cancel does not stop, and then waits for the CONNACK. Cancelled in
either (an unlink, a relink, a stop), `async with aiomqtt.Client(...)` raises without its `__aexit__`, and
paho's socket stays open, watched by the loop and pinging: BMW counts it as the account's one stream until the
process ends, and every new connection is refused (CONNACK 5) as if another app held it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiomqtt

HANG_UP_WAIT = 5.0  # s; a connect takes well under one, its CONNACK is awaited for up to 30


class MqttSessions:
    """`async with sessions.open(client)`: `async with client`, except that a cancel while it connects lets
    the connect finish on its own and then hangs up."""

    def __init__(self) -> None:
        self._hanging_up: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def open(self, client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
        entering = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.shield(entering)
        except asyncio.CancelledError:
            hang_up = asyncio.create_task(_hang_up(client, entering), name="cardata-late-session")
            self._hanging_up.add(hang_up)
            hang_up.add_done_callback(self._hanging_up.discard)
            raise
        try:
            yield client
        finally:
            await client.__aexit__(None, None, None)

    async def aclose(self) -> None:
        """Wait, at most `HANG_UP_WAIT` s, for the sessions cancelled while connecting to hang up (beyond it,
        the process's end closes their sockets)."""
        if self._hanging_up:
            await asyncio.wait(set(self._hanging_up), timeout=HANG_UP_WAIT)


async def _hang_up(client: aiomqtt.Client, entering: asyncio.Future[Any]) -> None:
    try:
        await entering
    except Exception:  # refused or dropped: aiomqtt closed it already
        return
    with contextlib.suppress(aiomqtt.MqttError):
        await client.__aexit__(None, None, None)
