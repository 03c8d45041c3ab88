"""Bounded waits: a step that hangs, or a condition that never comes true, fails naming itself instead of
hanging the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

TEARDOWN_SECONDS = 30.0  # well above any clean stop (well under a second), well below the per-test limit
UNTIL_SECONDS = 20.0  # well above what a stream or a push takes (under a second), below the per-test limit


@asynccontextmanager
async def bounded(what: str, seconds: float = TEARDOWN_SECONDS) -> AsyncIterator[None]:
    """`async with bounded("the garage's close"): ...` cancels the block after `seconds` and fails."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{what} did not end within {seconds:g} s") from None


async def until(condition: Callable[[], bool], what: str, seconds: float = UNTIL_SECONDS) -> None:
    """Wait for what other tasks and threads bring about (the stream, the broker, a push); the bound only
    turns a hang into a failure naming `what`."""
    try:
        async with asyncio.timeout(seconds):
            while not condition():  # noqa: ASYNC110 (the condition is set on other tasks and threads)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
