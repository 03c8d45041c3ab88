"""Bounded waits for fixtures' teardowns: a step that hangs fails naming itself instead of hanging the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

TEARDOWN_SECONDS = 30.0  # well above any clean stop (well under a second), well below the per-test limit


@asynccontextmanager
async def bounded(what: str, seconds: float = TEARDOWN_SECONDS) -> AsyncIterator[None]:
    """`async with bounded("the garage's close"): ...` cancels the block after `seconds` and fails."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise AssertionError(f"{what} did not end within {seconds:g} s") from None
