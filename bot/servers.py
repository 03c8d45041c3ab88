"""Run an ASGI app with uvicorn on loopback, in a background thread.

The BMW simulator and the Bot API sandbox are both served this way in tests, benchmarks and the demo,
so the bot talks to them over real HTTP while the caller keeps its own event loop.
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound and listening: a client may connect (its connection waits in the backlog) as soon
    as this returns, before uvicorn serves it, so a server can announce its address without a race."""
    # IPPROTO_TCP explicitly: only then does asyncio set TCP_NODELAY on accepted connections; without it
    # every loopback answer waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen()
    return sock


def serve(app: ASGIApp, sock: socket.socket, *, log_level: str) -> None:
    """Serve `app` on a socket from `listening_socket`, in the foreground, until interrupted."""
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])


class BackgroundServer:
    """`with BackgroundServer(app) as server: server.url` — uvicorn in a daemon thread."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"):
        # Binding here (not in uvicorn) makes port 0 usable: the caller learns the port before start().
        self._sock = listening_socket(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        config = uvicorn.Config(
            app, log_level=log_level, lifespan="off", access_log=False, timeout_keep_alive=30
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"asgi:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _run(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self, timeout: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
