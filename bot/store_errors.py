"""The store's errors, for the rooms that write through a storage Protocol (the watcher, the CarData stream
and detector, the alerts, the chat) without knowing SQLite; and what a writer remembers when a full disk
refused a write: a push's record (`Unrecorded`), a decision's new row (`Unsaved`); docs/exactly-once-push.md,
"A full disk"."""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Generic, TypeVar


class StoreError(Exception):
    """The database cannot be used as it is."""


class StoreFull(StoreError):
    """SQLite had no room for a write (SQLITE_FULL, what a full disk gives): nothing of it was written, reads
    still work, and the same write succeeds once there is room (docs/exactly-once-push.md)."""


class DatabaseInUse(StoreError):
    """Another process holds the database for itself (a running bot, or rotate-key)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is in use by another process (a running bot, or rotate-key)")
        self.path = path


Item = TypeVar("Item", bound=Hashable)


class Unrecorded(Generic[Item]):
    """The pushes that went out while their record found no room: per item pushed about (a car, a car's
    alert kind), the key of the push delivered, until a later write records it. A push found here is
    recorded, not pushed again; only a restart before then repeats it once, as any push between leaving
    and being recorded."""

    def __init__(self) -> None:
        self._keys: dict[Item, str] = {}

    def pushed(self, item: Item, key: str) -> None:
        self._keys[item] = key

    def key(self, item: Item) -> str | None:
        return self._keys.get(item)

    def owes(self, item: Item, key: str) -> bool:
        """Whether the push `key` about `item` went out already and only its record is owed."""
        return self._keys.get(item) == key

    def recorded(self, item: Item) -> None:
        self._keys.pop(item, None)


Row = TypeVar("Row")


class Unsaved(Generic[Item, Row]):
    """What a writer decided but a full disk kept from being written, per item, with the stored row it was
    decided from: the next decision starts from it while the stored row is still that one (`same`), so a
    change seen meanwhile (a charge begun) is not forgotten. A restart forgets it."""

    def __init__(self, same: Callable[[Row, Row], bool] = operator.eq) -> None:
        self._rows: dict[Item, tuple[Row, Row]] = {}
        self._same = same

    def hold(self, item: Item, stored: Row, decided: Row) -> None:
        self._rows[item] = (stored, decided)

    def start(self, item: Item, stored: Row) -> Row:
        """Where the next decision about `item` starts, read `stored` from the store now."""
        held = self._rows.pop(item, None)
        return held[1] if held is not None and self._same(held[0], stored) else stored
