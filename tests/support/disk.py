"""A full disk, honestly: SQLite's own page cap (`Store.simulate_full_disk`), then the table under test filled
to its last page, so that its next row needs a page the cap does not give (docs/exactly-once-push.md).

Where the cap cannot refuse a write (one that shrinks a row, or that SQLite balances into a neighbouring
page's room), a real full disk still can: the write's WAL frames need room too. `refuse` is that case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.store import Store, StoreFull

FILL_LIMIT = 20_000  # far more rows than a page holds: a cap that never bites fails the test


def fill_up(write: Callable[[int], None]) -> int:
    """`write(1)`, `write(2)`, ... (each a filler row as large as the row under test) until the capped store
    refuses one; how many it took."""
    for number in range(1, FILL_LIMIT):
        try:
            write(number)
        except StoreFull:
            return number - 1
    raise AssertionError(f"{FILL_LIMIT} rows and the store is still not full: is it capped?")


def refuse(monkeypatch: pytest.MonkeyPatch, store: Store, method: str) -> Callable[[], None]:
    """Make `store.<method>` refuse every write as SQLite does on a full disk, until the returned function
    (space returns) is called."""
    write = getattr(store, method)
    full = [True]

    def refusing(*args: Any, **kwargs: Any) -> Any:
        if full:
            raise StoreFull("database or disk is full")
        return write(*args, **kwargs)

    monkeypatch.setattr(store, method, refusing)
    return lambda: full.clear()
