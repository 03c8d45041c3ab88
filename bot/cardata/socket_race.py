"""aiomqtt's one known race, kept out of the error log (docs/cardata.md, "A socket closed before the loop
watched it").

paho asks, from the thread aiomqtt connects in, for the loop to watch the socket (`add_reader`,
`add_writer`, through `call_soon_threadsafe`). When the broker closes the connection first (it dropped every
stream at once, or refuses for a while), the loop gets there with a descriptor that is gone, and asyncio logs
the EBADF at ERROR with a traceback: a thousand of them in an outage, for streams that have already ended
and reconnect on their own."""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


class _QuietSocketRace:
    """The loop's exception handler: the race at INFO, everything else to the handler before it."""

    def __init__(self, previous: Handler | None) -> None:
        self._previous = previous

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        # asyncio names a Handle's callback only in its repr; `_callback` is what that repr reads.
        callback = getattr(context.get("handle"), "_callback", None)
        watching = callback in (loop.add_reader, loop.add_writer)
        if watching and isinstance(exc, OSError) and exc.errno == errno.EBADF:
            log.info("cardata: a stream's socket closed before the loop watched it; the stream reconnects")
        elif self._previous is not None:
            self._previous(loop, context)
        else:
            loop.default_exception_handler(context)


def quiet_closed_socket_race(loop: asyncio.AbstractEventLoop) -> None:
    """Log the race at INFO on `loop`; every other failure in a callback goes where it went before. Once per
    loop, however often it is called."""
    previous = loop.get_exception_handler()
    if not isinstance(previous, _QuietSocketRace):
        loop.set_exception_handler(_QuietSocketRace(previous))
