"""The tests' one wait for a condition another task brings about (tests/support/waits.py)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.waits import until


async def test_until_returns_once_the_condition_holds() -> None:
    seen: list[int] = []
    asyncio.get_running_loop().call_later(0.05, seen.append, 1)
    await until(lambda: seen == [1], "the append", seconds=5.0)
    assert seen == [1]


async def test_until_fails_naming_what_never_happened() -> None:
    with pytest.raises(AssertionError, match="never happened: the green light"):
        await until(lambda: False, "the green light", seconds=0.1)
