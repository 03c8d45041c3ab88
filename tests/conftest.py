"""Shared fixtures: the BMW simulator and the loopback Bot API server, each from its own support module.

Every test has a time limit (pytest-timeout, `timeout` in pyproject.toml): a hang fails with the test's name,
the threads' stacks and, since our tests are asyncio, the stacks of the event loop's tasks.
"""

from __future__ import annotations

import asyncio
import io
import signal
import threading
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest
import pytest_timeout  # type: ignore[import-untyped]

pytest_plugins = [
    "tests.support.simulator",
    "tests.support.sandbox",
    "tests.support.bot",
    "tests.support.tiles",
    "tests.support.cardata",
]


_LAST_RESORT = pytest.StashKey[threading.Timer]()


@pytest.hookimpl(wrapper=True, optionalhook=True)  # -p no:timeout (e.g. under a debugger) still runs
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> Generator[None, bool, bool]:
    """Around pytest-timeout's signal handler, which fails the test and prints the threads' stacks: print
    the event loop's tasks too (a hung asyncio test sits in select(), only they show what it waits for).
    pytest-timeout stops its clock once the test failed; should its teardown hang as well, the run ends
    after the limit once more, with the tasks and stacks, instead of waiting forever."""
    armed = yield
    timed_out = signal.getsignal(signal.SIGALRM)
    if callable(timed_out):  # the signal method: the handler runs in the main thread, the loop's own

        def dump_tasks_then_fail(signum: int, frame: FrameType | None) -> None:
            loop = _running_loop()
            _print_tasks(item, loop, "timed out")
            try:
                timed_out(signum, frame)
            finally:
                last_resort = threading.Timer(settings.timeout, _give_up, (item, settings, loop))
                last_resort.daemon = True
                item.stash[_LAST_RESORT] = last_resort
                last_resort.start()

        signal.signal(signal.SIGALRM, dump_tasks_then_fail)
    return armed


def _give_up(item: pytest.Item, settings: Any, loop: asyncio.AbstractEventLoop | None) -> None:
    """The timed-out test's teardown hangs too: its tasks, then pytest-timeout's thread method (the threads'
    stacks, the captured output, and the run ends)."""
    _print_tasks(item, loop, "timed out, and its teardown hangs")
    pytest_timeout.timeout_timer(item, settings)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        last_resort = item.stash.get(_LAST_RESORT, None)
        if last_resort is not None:  # the test timed out, but its teardown ended after all
            last_resort.cancel()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # none runs: the threads' stacks say it all
        return None


def _print_tasks(item: pytest.Item, loop: asyncio.AbstractEventLoop | None, what: str) -> None:
    tasks = asyncio.all_tasks(loop) if loop is not None and not loop.is_closed() else set()
    out = io.StringIO()
    for task in tasks:
        task.print_stack(file=out)
    terminal = item.config.get_terminal_writer()
    terminal.sep("+", title=f"{item.nodeid} {what}: its {len(tasks)} asyncio tasks")
    terminal.write(out.getvalue())
