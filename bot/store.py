"""The bot's storage: one SQLite file (WAL) through sqlite-utils, schema and migrations, encrypted secrets.

Every secret (BMW e-mail, password, tokens, security answer) is Fernet-encrypted with BOT_SECRET_KEY before it
reaches SQLite. One connection is shared by the event-loop thread and worker threads; a lock serialises it.
Rows of one Telegram user live in several tables keyed by `tg_id`; there are no SQL foreign keys, so each
method that removes a parent row removes its children in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlite_utils import Database, Migrations

from bot.cardata.models import Tokens
from bot.cardata.storage import CarDataLink, ChargeTrack


class StoreError(Exception):
    """The database cannot be used as it is."""


class SecretKeyMismatch(StoreError):
    """BOT_SECRET_KEY cannot decrypt what is stored: the key changed since the secrets were written."""

    def __init__(self) -> None:
        super().__init__(
            "BOT_SECRET_KEY cannot decrypt the stored secrets: the key changed. Put the old key back, or set "
            "BOT_SECRET_KEY to 'new,old' and run rotate-key."
        )


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    refresh_token: str | None
    expires_at: float  # Unix time


@dataclass(frozen=True)
class StoredAccount:
    tg_id: int
    region: str
    username: str
    password: str
    token: StoredToken | None
    security_answer: str | None


@dataclass(frozen=True)
class StoredVehicle:
    tg_id: int
    vin: str
    model: str | None
    license_plate: str | None
    drive_train: str | None
    capabilities: frozenset[str]
    position: int  # order in the account's list


@dataclass(frozen=True)
class NotifyPrefs:
    finished: bool = True
    started: bool = False
    interrupted: bool = False


@dataclass(frozen=True)
class ChargeWatch:
    """The watcher's memory of one car of one user, persisted so that a restart neither misses nor repeats."""

    vin: str
    tg_id: int
    charging_status: str | None
    connection_status: str | None
    charging_since: float | None  # when the current charge began
    soc_at_start: int | None  # state of charge when it began
    last_event: str | None  # the last push sent, e.g. "finished:<charging_since>", for exactly-once
    next_poll_at: float
    failures: int


def generate_secret_key() -> str:
    """A new BOT_SECRET_KEY value."""
    return Fernet.generate_key().decode()


# --- schema -------------------------------------------------------------------------------------------------
# Migrations are append-only: never edit one that has shipped, add the next one.


def m001_users_accounts_vehicles(db: Database) -> None:
    # Notification columns are NULL until the user chooses, so NULL means "NotifyPrefs default".
    db.create_table(
        "users",
        {
            "tg_id": int,
            "first_name": str,
            "selected_vin": str,
            "notify_finished": bool,
            "notify_started": bool,
            "notify_interrupted": bool,
        },
        pk="tg_id",
    )
    db.create_table(
        "accounts",
        {
            "tg_id": int,
            "region": str,
            "username_enc": str,
            "password_enc": str,
            "access_token_enc": str,
            "refresh_token_enc": str,
            "token_expires_at": float,
            "security_answer_enc": str,
        },
        pk="tg_id",
        not_null=["region", "username_enc", "password_enc"],
    )
    db.create_table(
        "vehicles",
        {
            "tg_id": int,
            "vin": str,
            "model": str,
            "license_plate": str,
            "drive_train": str,
            "capabilities": str,  # JSON array, sorted
            "position": int,
        },
        pk=("tg_id", "vin"),
        not_null=["capabilities", "position"],
    )


def m002_charge_watches(db: Database) -> None:
    db.create_table(
        "charge_watches",
        {
            "tg_id": int,
            "vin": str,
            "charging_status": str,
            "connection_status": str,
            "charging_since": float,
            "soc_at_start": int,
            "last_event": str,
            "next_poll_at": float,
            "failures": int,
        },
        pk=("tg_id", "vin"),
        not_null=["next_poll_at", "failures"],
    )
    # The watcher's query: due rows in this order, so a LIMIT stops the index scan early.
    db.table("charge_watches").create_index(["next_poll_at", "tg_id", "vin"])
    # Cars linked before this version get a watch that is due at once.
    db.execute(
        "INSERT INTO charge_watches (tg_id, vin, next_poll_at, failures)"
        " SELECT tg_id, vin, 0, 0 FROM vehicles"
    )


def m010_cardata(db: Database) -> None:
    # A CarData link per user: their own client id and the tokens (all encrypted), the bot's container.
    db.create_table(
        "cardata_accounts",
        {
            "tg_id": int,
            "client_id_enc": str,
            "gcid": str,
            "access_token_enc": str,
            "id_token_enc": str,
            "refresh_token_enc": str,
            "expires_at": float,
            "refresh_expires_at": float,
            "container_id": str,
        },
        pk="tg_id",
        not_null=[
            "client_id_enc",
            "gcid",
            "access_token_enc",
            "id_token_enc",
            "refresh_token_enc",
            "expires_at",
            "refresh_expires_at",
        ],
    )
    # Calls spent per UTC day; kept across unlink and re-link, since BMW's own count is too.
    db.create_table(
        "cardata_calls", {"tg_id": int, "day": str, "calls": int}, pk=("tg_id", "day"), not_null=["calls"]
    )
    # Last known values of each car (CarState.to_json), so a restart shows a status at once.
    db.create_table(
        "cardata_states", {"tg_id": int, "vin": str, "state": str}, pk=("tg_id", "vin"), not_null=["state"]
    )
    # The charge-event detector's memory (bot/cardata/events.py).
    db.create_table(
        "cardata_tracks",
        {
            "tg_id": int,
            "vin": str,
            "status": str,
            "session_start": float,
            "soc_at_start": float,
            "deadline": float,
            "pending": str,
            "last_event": str,
        },
        pk=("tg_id", "vin"),
    )
    # The detector's query: due debounces and undelivered events; partial indexes keep it small.
    db.execute(
        "CREATE INDEX idx_cardata_tracks_deadline ON cardata_tracks (deadline) WHERE deadline IS NOT NULL"
    )
    db.execute("CREATE INDEX idx_cardata_tracks_pending ON cardata_tracks (tg_id) WHERE pending IS NOT NULL")


MIGRATIONS = Migrations("bmw_telegram_bot")
_STEPS = [MIGRATIONS()(step) for step in (m001_users_accounts_vehicles, m002_charge_watches, m010_cardata)]
SCHEMA_VERSION = len(_STEPS)

_SECRET_COLUMNS = (
    "username_enc",
    "password_enc",
    "access_token_enc",
    "refresh_token_enc",
    "security_answer_enc",
)
_CARDATA_SECRET_COLUMNS = ("client_id_enc", "access_token_enc", "id_token_enc", "refresh_token_enc")
_CARDATA_COLUMNS = (
    "tg_id, client_id_enc, gcid, access_token_enc, id_token_enc, refresh_token_enc, expires_at,"
    " refresh_expires_at, container_id"
)
_TRACK_COLUMNS = "tg_id, vin, status, session_start, soc_at_start, deadline, pending, last_event"
_VEHICLE_COLUMNS = "tg_id, vin, model, license_plate, drive_train, capabilities, position"
_WATCH_COLUMNS = (
    "vin, tg_id, charging_status, connection_status, charging_since, soc_at_start, last_event,"
    " next_poll_at, failures"
)


class Store:
    """The bot's database. Methods are short and synchronous: call them on the event loop or in threads."""

    def __init__(
        self, path: str | Path, secret_keys: Sequence[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        if isinstance(secret_keys, str):
            raise TypeError("secret_keys is a sequence of keys, not one key")
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        try:
            fernets = [Fernet(key) for key in secret_keys]
        except (ValueError, TypeError):
            raise ValueError("a secret key is not a Fernet key (see generate_secret_key)") from None
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)
        self._clock = clock
        self._lock = threading.RLock()

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Owner-only from the start; SQLite gives the -wal and -shm files the same mode.
        path.touch(mode=0o600, exist_ok=True)
        self._db = Database(sqlite3.connect(path, check_same_thread=False), execute_plugins=False)
        try:
            self._db.enable_wal()
            # NORMAL is durable enough in WAL mode (a power cut may lose the last commits, never corrupt).
            self._db.execute("PRAGMA synchronous=NORMAL")
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

    def _check_key(self) -> None:
        # Fail at start-up, before any new secret is written with a key that cannot read the old ones.
        row = self._db.execute("SELECT password_enc FROM accounts LIMIT 1").fetchone()
        if row is not None:
            self._decrypt(row[0])
        row = self._db.execute("SELECT client_id_enc FROM cardata_accounts LIMIT 1").fetchone()
        if row is not None:
            self._decrypt(row[0])

    @property
    def schema_version(self) -> int:
        """How many migrations this database has applied (SCHEMA_VERSION once open)."""
        with self._lock:
            return len(MIGRATIONS.applied(self._db))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- plumbing -------------------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Database]:
        with self._lock, self._db.atomic() as db:
            yield db

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def _encrypt_opt(self, value: str | None) -> str | None:
        return None if value is None else self._encrypt(value)

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyMismatch() from None

    def _decrypt_opt(self, token: str | None) -> str | None:
        return None if token is None else self._decrypt(token)

    # --- users ----------------------------------------------------------------------------------------------

    def upsert_user(self, tg_id: int, first_name: str | None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO users (tg_id, first_name) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET first_name = excluded.first_name",
                (tg_id, first_name),
            )

    def user_ids(self) -> list[int]:
        return [row[0] for row in self._rows("SELECT tg_id FROM users ORDER BY tg_id")]

    def delete_user(self, tg_id: int) -> None:
        """Every row about that user, in one transaction."""
        with self._write() as db:
            for table in (
                "charge_watches",
                "vehicles",
                "accounts",
                "users",
                "cardata_accounts",
                "cardata_calls",
                "cardata_states",
                "cardata_tracks",
            ):
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))

    # --- account and secrets --------------------------------------------------------------------------------

    def save_account(self, tg_id: int, *, region: str, username: str, password: str) -> None:
        """Link a BMW account, replacing any previous one: its token, answer, cars, selection and watches."""
        row = (tg_id, region, self._encrypt(username), self._encrypt(password))
        with self._write() as db:
            db.execute("INSERT INTO users (tg_id) VALUES (?) ON CONFLICT (tg_id) DO NOTHING", (tg_id,))
            db.execute("UPDATE users SET selected_vin = NULL WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM charge_watches WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM vehicles WHERE tg_id = ?", (tg_id,))
            db.execute(
                "INSERT OR REPLACE INTO accounts (tg_id, region, username_enc, password_enc)"
                " VALUES (?, ?, ?, ?)",
                row,
            )

    def account(self, tg_id: int) -> StoredAccount | None:
        rows = self._rows(
            "SELECT region, username_enc, password_enc, access_token_enc, refresh_token_enc,"
            " token_expires_at, security_answer_enc FROM accounts WHERE tg_id = ?",
            (tg_id,),
        )
        if not rows:
            return None
        region, username, password, access, refresh, expires_at, answer = rows[0]
        token = (
            None
            if access is None
            else StoredToken(self._decrypt(access), self._decrypt_opt(refresh), float(expires_at))
        )
        return StoredAccount(
            tg_id=tg_id,
            region=region,
            username=self._decrypt(username),
            password=self._decrypt(password),
            token=token,
            security_answer=self._decrypt_opt(answer),
        )

    def save_token(self, tg_id: int, token: StoredToken | None) -> None:
        """Replace (or with None, forget) the account's token; nothing happens when the account is gone."""
        if token is None:
            values: tuple[str | float | None, ...] = (None, None, None)
        else:
            values = (
                self._encrypt(token.access_token),
                self._encrypt_opt(token.refresh_token),
                token.expires_at,
            )
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET access_token_enc = ?, refresh_token_enc = ?, token_expires_at = ?"
                " WHERE tg_id = ?",
                (*values, tg_id),
            )

    def save_security_answer(self, tg_id: int, answer: str | None) -> None:
        """Replace (or forget) the account's security answer; nothing happens when the account is gone."""
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET security_answer_enc = ? WHERE tg_id = ?",
                (self._encrypt_opt(answer), tg_id),
            )

    def rotate(self) -> int:
        """Re-encrypt with the first key every secret under another key; returns how many it rewrote."""
        rewritten = 0
        with self._write() as db:
            rows = db.execute(f"SELECT tg_id, {', '.join(_SECRET_COLUMNS)} FROM accounts").fetchall()
            for tg_id, *tokens in rows:
                for column, token in zip(_SECRET_COLUMNS, tokens, strict=True):
                    if token is None or self._is_primary(token):
                        continue
                    try:
                        rotated = self._fernet.rotate(token.encode()).decode()
                    except InvalidToken:
                        raise SecretKeyMismatch() from None
                    db.execute(f"UPDATE accounts SET {column} = ? WHERE tg_id = ?", (rotated, tg_id))
                    rewritten += 1
            rows = db.execute(
                f"SELECT tg_id, {', '.join(_CARDATA_SECRET_COLUMNS)} FROM cardata_accounts"
            ).fetchall()
            for tg_id, *tokens in rows:
                for column, token in zip(_CARDATA_SECRET_COLUMNS, tokens, strict=True):
                    if self._is_primary(token):
                        continue
                    try:
                        rotated = self._fernet.rotate(token.encode()).decode()
                    except InvalidToken:
                        raise SecretKeyMismatch() from None
                    db.execute(f"UPDATE cardata_accounts SET {column} = ? WHERE tg_id = ?", (rotated, tg_id))
                    rewritten += 1
        return rewritten

    def _is_primary(self, token: str) -> bool:
        try:
            self._primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    # --- vehicles and selection -----------------------------------------------------------------------------

    def save_vehicles(self, tg_id: int, vehicles: Sequence[StoredVehicle]) -> None:
        """Replace the user's list of cars. New cars get a watch due now; a car that stays keeps its watch."""
        vins = [v.vin for v in vehicles]
        if any(v.tg_id != tg_id for v in vehicles):
            raise ValueError("every vehicle must belong to the user whose list is saved")
        if len(set(vins)) != len(vins):
            raise ValueError("a VIN appears twice in the list")
        rows = [
            (
                tg_id,
                v.vin,
                v.model,
                v.license_plate,
                v.drive_train,
                json.dumps(sorted(v.capabilities)),
                v.position,
            )
            for v in vehicles
        ]
        now = self._clock()
        with self._write() as db:
            db.execute("DELETE FROM vehicles WHERE tg_id = ?", (tg_id,))
            db.conn.executemany(
                f"INSERT INTO vehicles ({_VEHICLE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            linked = "SELECT 1 FROM vehicles v WHERE v.tg_id = {0}.tg_id AND v.vin = {0}.{1}"
            db.execute(
                "DELETE FROM charge_watches WHERE tg_id = ?"
                f" AND NOT EXISTS ({linked.format('charge_watches', 'vin')})",
                (tg_id,),
            )
            db.conn.executemany(
                "INSERT OR IGNORE INTO charge_watches (tg_id, vin, next_poll_at, failures)"
                " VALUES (?, ?, ?, 0)",
                [(tg_id, vin, now) for vin in vins],
            )
            db.execute(
                f"UPDATE users SET selected_vin = NULL WHERE tg_id = ? AND selected_vin IS NOT NULL"
                f" AND NOT EXISTS ({linked.format('users', 'selected_vin')})",
                (tg_id,),
            )

    def vehicles(self, tg_id: int) -> list[StoredVehicle]:
        rows = self._rows(
            f"SELECT {_VEHICLE_COLUMNS} FROM vehicles WHERE tg_id = ? ORDER BY position, vin", (tg_id,)
        )
        return [_vehicle(row) for row in rows]

    def vehicle(self, tg_id: int, vin: str) -> StoredVehicle | None:
        """The car, or None when that VIN is not linked by this user."""
        rows = self._rows(
            f"SELECT {_VEHICLE_COLUMNS} FROM vehicles WHERE tg_id = ? AND vin = ?", (tg_id, vin)
        )
        return _vehicle(rows[0]) if rows else None

    def selected_vin(self, tg_id: int) -> str | None:
        """The chosen car, else the first car of the list, else None."""
        rows = self._rows(
            "SELECT v.vin FROM vehicles v LEFT JOIN users u ON u.tg_id = v.tg_id WHERE v.tg_id = ?"
            " ORDER BY v.vin IS u.selected_vin DESC, v.position, v.vin LIMIT 1",
            (tg_id,),
        )
        return rows[0][0] if rows else None

    def select_vin(self, tg_id: int, vin: str) -> bool:
        """Choose a car; False (and no change) when the VIN is not one of this user's."""
        with self._write() as db:
            if (
                db.execute("SELECT 1 FROM vehicles WHERE tg_id = ? AND vin = ?", (tg_id, vin)).fetchone()
                is None
            ):
                return False
            db.execute(
                "INSERT INTO users (tg_id, selected_vin) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET selected_vin = excluded.selected_vin",
                (tg_id, vin),
            )
            return True

    # --- notification preferences ---------------------------------------------------------------------------

    def notify_prefs(self, tg_id: int) -> NotifyPrefs:
        rows = self._rows(
            "SELECT notify_finished, notify_started, notify_interrupted FROM users WHERE tg_id = ?", (tg_id,)
        )
        if not rows:
            return NotifyPrefs()
        chosen = dict(zip(("finished", "started", "interrupted"), rows[0], strict=True))
        return NotifyPrefs(**{name: bool(value) for name, value in chosen.items() if value is not None})

    def save_notify_prefs(self, tg_id: int, prefs: NotifyPrefs) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO users (tg_id, notify_finished, notify_started, notify_interrupted)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET notify_finished = excluded.notify_finished,"
                " notify_started = excluded.notify_started, notify_interrupted = excluded.notify_interrupted",
                (tg_id, prefs.finished, prefs.started, prefs.interrupted),
            )

    # --- charge watches -------------------------------------------------------------------------------------

    def watches_due(self, now: float, limit: int | None = None) -> list[ChargeWatch]:
        """Watches whose next_poll_at <= now, most overdue first."""
        rows = self._rows(
            f"SELECT {_WATCH_COLUMNS} FROM charge_watches WHERE next_poll_at <= ?"
            " ORDER BY next_poll_at, tg_id, vin LIMIT ?",
            (now, -1 if limit is None else limit),
        )
        return [ChargeWatch(*row) for row in rows]

    def watch(self, tg_id: int, vin: str) -> ChargeWatch | None:
        rows = self._rows(
            f"SELECT {_WATCH_COLUMNS} FROM charge_watches WHERE tg_id = ? AND vin = ?", (tg_id, vin)
        )
        return ChargeWatch(*rows[0]) if rows else None

    def save_watch(self, watch: ChargeWatch) -> None:
        """Store the watcher's state of a car; ignored when the car was unlinked meanwhile (no orphan)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO charge_watches ({_WATCH_COLUMNS})"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = ? AND vin = ?)",
                (
                    watch.vin,
                    watch.tg_id,
                    watch.charging_status,
                    watch.connection_status,
                    watch.charging_since,
                    watch.soc_at_start,
                    watch.last_event,
                    watch.next_poll_at,
                    watch.failures,
                    watch.tg_id,
                    watch.vin,
                ),
            )

    def watched_count(self) -> int:
        return int(self._rows("SELECT count(*) FROM charge_watches")[0][0])

    # --- BMW CarData (implements bot.cardata.storage.CarDataStore) ------------------------------------------

    def cardata_link(self, owner: int) -> CarDataLink | None:
        rows = self._rows(f"SELECT {_CARDATA_COLUMNS} FROM cardata_accounts WHERE tg_id = ?", (owner,))
        return self._cardata_link(rows[0]) if rows else None

    def cardata_links(self) -> list[CarDataLink]:
        return [
            self._cardata_link(row) for row in self._rows(f"SELECT {_CARDATA_COLUMNS} FROM cardata_accounts")
        ]

    def _cardata_link(self, row: tuple[Any, ...]) -> CarDataLink:
        owner, client_id, gcid, access, id_token, refresh, expires_at, refresh_expires_at, container_id = row
        tokens = Tokens(
            self._decrypt(access),
            self._decrypt(id_token),
            self._decrypt(refresh),
            gcid,
            expires_at,
            refresh_expires_at,
        )
        return CarDataLink(owner, self._decrypt(client_id), tokens, container_id)

    def save_cardata_link(self, link: CarDataLink) -> None:
        """Link (or re-link) an owner's CarData account; another gcid's car states and detector memory go."""
        t = link.tokens
        row = (
            link.owner,
            self._encrypt(link.client_id),
            t.gcid,
            self._encrypt(t.access_token),
            self._encrypt(t.id_token),
            self._encrypt(t.refresh_token),
            t.expires_at,
            t.refresh_expires_at,
            link.container_id,
        )
        with self._write() as db:
            old = db.execute("SELECT gcid FROM cardata_accounts WHERE tg_id = ?", (link.owner,)).fetchone()
            if old is not None and old[0] != t.gcid:
                db.execute("DELETE FROM cardata_states WHERE tg_id = ?", (link.owner,))
                db.execute("DELETE FROM cardata_tracks WHERE tg_id = ?", (link.owner,))
            db.execute(
                f"INSERT OR REPLACE INTO cardata_accounts ({_CARDATA_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def save_cardata_tokens(self, owner: int, tokens: Tokens) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE cardata_accounts SET gcid = ?, access_token_enc = ?, id_token_enc = ?,"
                " refresh_token_enc = ?, expires_at = ?, refresh_expires_at = ? WHERE tg_id = ?",
                (
                    tokens.gcid,
                    self._encrypt(tokens.access_token),
                    self._encrypt(tokens.id_token),
                    self._encrypt(tokens.refresh_token),
                    tokens.expires_at,
                    tokens.refresh_expires_at,
                    owner,
                ),
            )

    def save_cardata_container(self, owner: int, container_id: str) -> None:
        with self._write() as db:
            db.execute("UPDATE cardata_accounts SET container_id = ? WHERE tg_id = ?", (container_id, owner))

    def delete_cardata_link(self, owner: int) -> None:
        """Unlink CarData: tokens, states and detector memory go; the day's call count stays (BMW's too)."""
        with self._write() as db:
            for table in ("cardata_accounts", "cardata_states", "cardata_tracks"):
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (owner,))

    def spend_cardata_call(self, owner: int, day: str, limit: int) -> bool:
        with self._write() as db:
            db.execute("DELETE FROM cardata_calls WHERE tg_id = ? AND day < ?", (owner, day))
            db.execute(
                "INSERT INTO cardata_calls (tg_id, day, calls) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
                (owner, day),
            )
            cursor = db.execute(
                "UPDATE cardata_calls SET calls = calls + 1 WHERE tg_id = ? AND day = ? AND calls < ?",
                (owner, day, limit),
            )
            return cursor.rowcount == 1

    def cardata_calls(self, owner: int, day: str) -> int:
        rows = self._rows("SELECT calls FROM cardata_calls WHERE tg_id = ? AND day = ?", (owner, day))
        return int(rows[0][0]) if rows else 0

    def exhaust_cardata_calls(self, owner: int, day: str, calls: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO cardata_calls (tg_id, day, calls) VALUES (?, ?, ?)"
                " ON CONFLICT (tg_id, day) DO UPDATE SET calls = max(calls, excluded.calls)",
                (owner, day, calls),
            )

    def cardata_states(self, owner: int) -> dict[str, Any]:
        rows = self._rows("SELECT vin, state FROM cardata_states WHERE tg_id = ? ORDER BY vin", (owner,))
        return {vin: json.loads(state) for vin, state in rows}

    def save_cardata_state(self, owner: int, vin: str, values: dict[str, Any]) -> None:
        """Ignored when the owner is no longer linked (a late stream message must not leave an orphan)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO cardata_states (tg_id, vin, state) SELECT ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (owner, vin, json.dumps(values, separators=(",", ":")), owner),
            )

    def cardata_track(self, owner: int, vin: str) -> ChargeTrack | None:
        rows = self._rows(
            f"SELECT {_TRACK_COLUMNS} FROM cardata_tracks WHERE tg_id = ? AND vin = ?", (owner, vin)
        )
        return ChargeTrack(*rows[0]) if rows else None

    def save_cardata_track(self, track: ChargeTrack) -> None:
        """Ignored when the owner is no longer linked."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO cardata_tracks ({_TRACK_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (
                    track.owner,
                    track.vin,
                    track.status,
                    track.session_start,
                    track.soc_at_start,
                    track.deadline,
                    track.pending,
                    track.last_event,
                    track.owner,
                ),
            )

    def cardata_tracks_due(self, now: float) -> list[ChargeTrack]:
        rows = self._rows(
            f"SELECT {_TRACK_COLUMNS} FROM cardata_tracks WHERE deadline <= ?"
            f" UNION SELECT {_TRACK_COLUMNS} FROM cardata_tracks WHERE pending IS NOT NULL",
            (now,),
        )
        return [ChargeTrack(*row) for row in rows]


def _vehicle(row: tuple[Any, ...]) -> StoredVehicle:
    tg_id, vin, model, license_plate, drive_train, capabilities, position = row
    return StoredVehicle(
        tg_id, vin, model, license_plate, drive_train, frozenset(json.loads(capabilities)), position
    )
