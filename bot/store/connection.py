"""The one SQLite connection every area of the Store shares: opening it (WAL, secure delete, migrations,
the key check), the lock that serialises it, the write transaction, reading rows into records, and the
lock file that keeps a second process out."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import cache
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from sqlite_utils import Database

from bot.crypto import Secrets
from bot.store.schema import _STEPS, MIGRATIONS, follow_alert_fields
from bot.store_errors import DatabaseInUse, StoreError, StoreFull

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)


# A full disk is logged once a stretch, not per refused write: again after this long at the soonest.
FULL_LOG_SECONDS = 600.0
# SQLite's largest max_page_count: no cap below what the file system allows.
_NO_PAGE_CAP = 1073741823
_LOGIN_SUBJECT_PURPOSE = "login-attempts"  # renaming it orphans every stored e-mail subject


@contextmanager
def exclusive_use(path: str | Path) -> Iterator[None]:
    """Hold `<database>.lock` while this process is the database's only user (the running bot, rotate-key);
    DatabaseInUse when another process holds it. The kernel releases it when the process ends, however it
    ends, so no stale lock outlives a crash (a heartbeat cannot tell a bot stopped a minute ago from one
    running)."""
    path = Path(path)
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(path) from None
        yield
    finally:
        os.close(fd)  # releases the lock


_Record = TypeVar("_Record", bound="DataclassInstance")


@cache
def _field_names(cls: type[DataclassInstance]) -> tuple[str, ...]:
    """A dataclass's fields: where they are its table's columns too, this is the one list of them."""
    return tuple(f.name for f in fields(cls))


def _params(names: Iterable[str]) -> str:
    """Named parameters for these columns, `:a, :b`, filled from a dict (often a dataclass's `vars`)."""
    return ", ".join(f":{name}" for name in names)


def _booleans(record: _Record) -> _Record:
    """SQLite gives booleans back as 0 and 1: the fields whose default is a bool become bools again."""
    flags = {f.name: bool(getattr(record, f.name)) for f in fields(record) if isinstance(f.default, bool)}
    return replace(record, **flags)


def _end_shares(db: Database, where: str, params: Sequence[Any]) -> int:
    """Delete the shares matching `where` (shares as s) and their people's alert memory of those cars, unless
    they own that VIN too; how many shares ended."""
    db.execute(
        f"DELETE FROM alert_states WHERE (tg_id, vin) IN (SELECT s.tg_id, s.vin FROM shares s WHERE {where})"
        " AND NOT EXISTS"
        " (SELECT 1 FROM vehicles v WHERE v.tg_id = alert_states.tg_id AND v.vin = alert_states.vin)",
        params,
    )
    return db.execute(f"DELETE FROM shares AS s WHERE {where}", params).rowcount


class Connection:
    """The connection and its plumbing; the areas (accounts, vehicles, ...) are its subclasses."""

    def __init__(
        self, path: str | Path, secret_keys: Sequence[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets = Secrets(secret_keys)
        self._subject_key = self._secrets.derive_key(_LOGIN_SUBJECT_PURPOSE)
        self._clock = clock
        self._lock = threading.RLock()
        self._refused = 0  # writes refused for want of room since the log said so
        self._full_told_at: float | None = None
        self._tell_room = False  # the log said the database is full, and not yet that it takes writes again

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the start; SQLite gives the -wal and -shm files the same mode.
        path.touch(mode=0o600, exist_ok=True)
        self._db = Database(sqlite3.connect(path, check_same_thread=False), execute_plugins=False)
        try:
            self._db.enable_wal()
            # NORMAL is durable enough in WAL mode (a power cut may lose the last commits, never corrupt).
            self._db.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows are overwritten with zeros, not merely unlinked: see _forget_deleted.
            self._db.execute("PRAGMA secure_delete=ON")
            self._migrate()
            self._check_key()
        except BaseException:
            self._db.close()
            raise

    def _migrate(self) -> None:
        known = {step.__name__ for step in _STEPS}
        unknown = [m.name for m in MIGRATIONS.applied(self._db) if m.name not in known]
        if unknown:
            raise StoreError(
                f"the database was written by a newer version of the bot (migration {unknown[0]})"
            )
        MIGRATIONS.apply(self._db)
        follow_alert_fields(self._db)

    def _check_key(self) -> None:
        # Fail at start-up, before any new secret is written with a key that cannot read the old ones.
        for row in self._rows("SELECT password_enc FROM accounts LIMIT 1"):
            self._secrets.decrypt(row["password_enc"])

        for row in self._rows("SELECT client_id_enc FROM cardata_accounts LIMIT 1"):
            self._secrets.decrypt(row["client_id_enc"])

    @property
    def secrets(self) -> Secrets:
        """BOT_SECRET_KEY's keys, for the parts that derive their own keys from it (car refs)."""
        return self._secrets

    @property
    def schema_version(self) -> int:
        """How many migrations this database has applied (SCHEMA_VERSION once open)."""
        with self._lock:
            return len(MIGRATIONS.applied(self._db))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------------------

    def simulate_full_disk(self, full: bool = True) -> None:
        """For tests and the soak: SQLite's own `max_page_count`, set to the database's size now, makes every
        write that needs a new page fail with SQLITE_FULL, the error a full disk gives; `full=False` lifts the
        cap. Only this connection is capped. What it does not simulate: docs/exactly-once-push.md."""
        with self._lock:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0] if full else _NO_PAGE_CAP
            self._db.execute(f"PRAGMA max_page_count = {int(pages)}")

    @contextmanager
    def _write(self) -> Iterator[Database]:
        """One transaction (a savepoint inside another); StoreFull when there is no room for it."""
        with self._lock:
            outermost = not self._db.conn.in_transaction
            try:
                with self._db.atomic() as db:
                    yield db
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                    raise
                self._note_full()
                raise StoreFull(str(exc)) from None
            if outermost and self._tell_room:
                log.info("the database takes writes again (%d refused for want of room)", self._refused)
                self._refused, self._tell_room = 0, False

    def _note_full(self) -> None:
        self._refused += 1
        now = self._clock()
        if self._full_told_at is None or now - self._full_told_at >= FULL_LOG_SECONDS:
            self._full_told_at, self._tell_room = now, True
            log.warning("the database is full: changes are not saved until there is room again; reads work")

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """The rows, read by column name (`row["vin"]`); inside `_write` they see its transaction."""
        with self._lock:
            cursor = self._db.conn.cursor()
            cursor.row_factory = sqlite3.Row
            return cursor.execute(sql, params).fetchall()

    def _forget_deleted(self) -> None:
        """After removing secrets: copy the WAL into the database and truncate it. With secure_delete the
        removed values are zeros in the database file, and the old WAL frames that still held them are gone
        (the -shm holds page numbers only)."""
        with self._lock:
            busy = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:  # another connection reads (a backup?): the next checkpoint finishes the job
            log.warning("the WAL could not be truncated now; removed data leaves it at the next checkpoint")

    def _records(self, cls: type[_Record], sql: str, params: Sequence[Any] = ()) -> list[_Record]:
        """The rows as `cls` objects, each field from the column of its name (other columns are ignored).
        Names are matched once per query, not per row, so a long list (the watcher's) costs what unpacking
        tuples costs; sqlite3.Row objects would make `watches_due` about 10 % slower."""
        with self._lock:
            cursor = self._db.conn.execute(sql, params)
            columns = tuple(column[0] for column in cursor.description)
            rows = cursor.fetchall()
        names = _field_names(cls)
        if columns == names:
            return [cls(*row) for row in rows]
        pick = itemgetter(*(columns.index(name) for name in names))
        return [cls(*pick(row)) for row in rows]
