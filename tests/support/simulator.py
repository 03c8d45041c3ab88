"""Pytest fixtures for the BMW simulator: the state in-process, and the same simulator over loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.bmw.simulator import Simulator
from bot.servers import BackgroundServer


class _CurrentSimulator:
    """ASGI app forwarding to the running test's simulator: one uvicorn serves the whole session, as
    stopping a server costs a main-loop tick (~0.2 s) that hundreds of tests would otherwise pay."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise RuntimeError("no simulator is bound: use the simulator_url fixture")
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def _simulator_server() -> Iterator[tuple[str, _CurrentSimulator]]:
    current = _CurrentSimulator()
    with BackgroundServer(current) as server:
        yield server.url, current


@pytest.fixture
def simulator() -> Simulator:
    """A fresh simulator with the default account (demo@example.com, an i3 BEV and an i3 REX)."""
    sim = Simulator()
    sim.add_default_account()
    return sim


@pytest.fixture
def simulator_url(simulator: Simulator, _simulator_server: tuple[str, _CurrentSimulator]) -> Iterator[str]:
    """That simulator served by uvicorn on 127.0.0.1; yields its base URL. Steer it through `simulator`."""
    url, current = _simulator_server
    current.app = simulator.app
    yield url
    current.app = None
