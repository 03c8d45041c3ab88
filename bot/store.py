"""The bot's storage: one SQLite file (WAL) through sqlite-utils, schema and migrations, encrypted secrets.

Every secret (BMW e-mail, password, tokens, security answer) is encrypted with BOT_SECRET_KEY (bot/crypto.py)
before it reaches SQLite. Rows are read by column name into the dataclasses below; where a table's columns
are a dataclass's fields, the dataclass is the column list. One connection is shared by the event-loop
thread and worker threads; a lock serialises it. Rows of one Telegram user live in several tables keyed by
`tg_id`; there are no SQL foreign keys, so each method that removes a parent row removes its children in the
same transaction.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from datetime import date, timedelta
from functools import cache
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from sqlite_utils import Database, Migrations

from bot.alerts import AlertPrefs, AlertState
from bot.capabilities import BackendName
from bot.cardata.models import Tokens
from bot.cardata.storage import AccountCalls, CarDataLink, ChargeTrack, EndedCharge
from bot.crypto import Secrets
from bot.history import ChargeSession

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

log = logging.getLogger(__name__)


class StoreError(Exception):
    """The database cannot be used as it is."""


class DatabaseInUse(StoreError):
    """Another process holds the database for itself (a running bot, or rotate-key)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path} is in use by another process (a running bot, or rotate-key)")
        self.path = path


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
class UserSettings:
    """What a user chose in /settings; None is "not chosen": the default that follows their Telegram
    language_code (or, for the time zone, the server's). `language_code` is the last one Telegram sent, kept
    for messages sent without an update (pushes)."""

    language_code: str | None = None
    units: str | None = None  # "km" or "mi"
    clock: int | None = None  # 24 or 12
    language: str | None = None  # "en" or "de"
    time_zone: str | None = None  # an IANA name
    quiet: bool = False  # quiet hours on: pushes inside the window arrive without a sound
    quiet_start: int | None = None  # minutes after midnight, in `time_zone`
    quiet_end: int | None = None


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


@dataclass(frozen=True)
class LoginAttempts:
    """Failed logins through /link of one subject (a Telegram user, or an e-mail by its keyed hash)."""

    failures: int = 0  # in a row, since the last success or since the record was forgotten
    blocked_until: float | None = None  # Unix time: no login before this
    forget_at: float = 0.0  # Unix time: from then on the record counts as clean and is removed


@dataclass(frozen=True)
class CommandInFlight:
    """A remote command between "about to be sent" and its outcome shown to the user, kept so that a restart
    finishes its progress message instead of forgetting it (and never sends it again)."""

    tg_id: int
    vin: str
    service: str  # a ServiceType value
    chat_id: int  # where its progress message is
    message_id: int
    started_at: float  # Unix time, just before it was sent
    event_id: str | None  # BMW's id of the request, once the POST was answered


@dataclass(frozen=True)
class Share:
    """One car of its owner that another Telegram user (the member) sees through /share."""

    owner: int
    vin: str
    member: int
    remote: bool  # the owner lets the member send remote commands (i Remote cars)
    since: float  # Unix time


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


def m003_login_attempts_and_refusals(db: Database) -> None:
    # Failed /link logins per subject: "user:<tg_id>" (tg_id set, so /unlink removes it) or
    # "email:<keyed hash>" (tg_id NULL: shared by everyone who tries that e-mail). Never an e-mail itself.
    db.create_table(
        "login_attempts",
        {"subject": str, "tg_id": int, "failures": int, "blocked_until": float, "forget_at": float},
        pk="subject",
        not_null=["failures", "forget_at"],
    )
    # BMW's refusals of a linked account's stored password, in a row; at the limit the account waits for a
    # new /link (relink_needed_at set) and nothing polls it meanwhile.
    db.table("accounts").add_column("password_refusals", int, not_null_default=0)
    db.table("accounts").add_column("relink_needed_at", float)


def m004_commands_in_flight(db: Database) -> None:
    # One command per car and user at a time (the garage enforces it), hence the key.
    db.create_table(
        "commands_in_flight",
        {
            "tg_id": int,
            "vin": str,
            "service": str,
            "chat_id": int,
            "message_id": int,
            "started_at": float,
            "event_id": str,
        },
        pk=("tg_id", "vin"),
        not_null=["service", "chat_id", "message_id", "started_at"],
    )


def m005_cardata(db: Database) -> None:
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


def m006_charge_sessions(db: Database) -> None:
    # The charging history (bot/history.py): one row per charge, keyed by its start so that writing the
    # same session again changes nothing. Read per car, newest first.
    db.create_table(
        "charge_sessions",
        {
            "tg_id": int,
            "vin": str,
            "started_at": float,
            "ended_at": float,
            "soc_start": float,
            "soc_end": float,
            "energy_kwh": float,
            "ended": str,
            "reason": str,
            "lat": float,
            "lon": float,
            "source": str,
        },
        pk=("tg_id", "vin", "started_at"),
        not_null=["ended_at", "ended", "source"],
    )


def m007_alerts(db: Database) -> None:
    # A user's alerts; no row: AlertPrefs' defaults. Columns are AlertPrefs' fields.
    db.create_table(
        "alert_prefs",
        {
            "tg_id": int,
            "level_on": bool,
            "level_percent": int,
            "stall_on": bool,
            "stall_minutes": int,
            "plug_on": bool,
            "plug_percent": int,
            "plug_minute": int,
            "open_on": bool,
            "open_minutes": int,
        },
        pk="tg_id",
        not_null=[
            "level_on",
            "level_percent",
            "stall_on",
            "stall_minutes",
            "plug_on",
            "plug_percent",
            "plug_minute",
            "open_on",
            "open_minutes",
        ],
    )
    # One car's alert memory (bot/alerts.py); no row: AlertState(). Columns are AlertState's fields.
    db.create_table(
        "alert_states",
        {
            "tg_id": int,
            "vin": str,
            "charge_since": float,
            "charge_soc_at_start": float,
            "charged_on_plug": bool,
            "stall_since": float,
            "parked_at": float,
            "open_since": float,
            "done_level": str,
            "done_stall": str,
            "done_plug": str,
            "done_open": str,
        },
        pk=("tg_id", "vin"),
        not_null=["charged_on_plug"],
    )


def m008_user_settings(db: Database) -> None:
    # NULL (or 0 for quiet) is "not chosen": see UserSettings.
    users = db.table("users")
    for column, kind in (
        ("language_code", str),
        ("units", str),
        ("clock", int),
        ("language", str),
        ("time_zone", str),
        ("quiet_start", int),
        ("quiet_end", int),
    ):
        users.add_column(column, kind)
    users.add_column("quiet", bool, not_null_default=0)


def m009_account_backends(db: Database) -> None:
    # The backend of the user's linked account (bot/capabilities.py): "iremote" (the accounts table) or
    # "cardata" (cardata_accounts). Every account linked before this version is an i Remote one.
    db.table("users").add_column("backend", str, not_null_default="iremote")


def m010_cardata_relink_asked(db: Database) -> None:
    # When the owner was asked to link CarData again after a refused refresh: asked once, not at each start.
    db.table("cardata_accounts").add_column("relink_asked_at", float)


def m011_cardata_calls_per_account(db: Database) -> None:
    # BMW counts calls per account (gcid), and co-owners who linked the same account share it: the day's
    # count is the account's, kept across unlink and re-link; cardata_calls keeps only each linked owner's own
    # use, for the fair share (docs/cardata.md), and goes with the link. A linked owner's count becomes their
    # account's by the sum, not the max: co-owners' counts are distinct calls against one quota (the max
    # would forget all but one), capped at BMW's 50 (a CU-429 raised each co-owner's count to 50). The counts
    # of owners no longer linked cannot be placed on an account and go.
    db.create_table(
        "cardata_account_calls",
        {"gcid": str, "day": str, "calls": int},
        pk=("gcid", "day"),
        not_null=["calls"],
    )
    db.execute(
        "INSERT INTO cardata_account_calls (gcid, day, calls)"
        " SELECT a.gcid, c.day, min(sum(c.calls), 50) FROM cardata_calls c"
        " JOIN cardata_accounts a ON a.tg_id = c.tg_id GROUP BY a.gcid, c.day"
    )
    db.execute("DELETE FROM cardata_calls WHERE tg_id NOT IN (SELECT tg_id FROM cardata_accounts)")


def m012_cardata_first_call(db: Database) -> None:
    # When the account's first call of the day was made: BMW's quota may reset 24 h after it rather than at
    # midnight UTC, so "calls work again by" names the later of the two (docs/cardata.md). Unknown (NULL)
    # for the days counted before.
    db.table("cardata_account_calls").add_column("first_call_at", float)


def m013_cardata_last_report(db: Database) -> None:
    # The last report the charge detector decided on (level, end reason, when): a quiet car's charge ends
    # unseen, and is told from what changed since (docs/cardata.md). NULL until the next report is decided on.
    for column, kind in (("known_soc", float), ("known_reason", str), ("known_at", float)):
        db.table("cardata_tracks").add_column(column, kind)


def m014_cardata_stream_held_told(db: Database) -> None:
    # When the owner was told that another app holds their car's stream (BMW refuses ours with CONNACK 5):
    # told once per episode, not at each start; cleared when the stream connects again.
    db.table("cardata_accounts").add_column("stream_held_told_at", float)


def m015_cardata_late_read(db: Database) -> None:
    # When the bot read a quiet car's snapshot because its charge should have ended and BMW streamed nothing:
    # one such read per charge, across restarts (docs/cardata.md). NULL: none for the charge under way.
    db.table("cardata_tracks").add_column("late_read_at", float)


def m016_cardata_stream_block_told(db: Database) -> None:
    # Why BMW lets nothing through the owner's stream, as they were told: another app holds it (CONNACK 5) or
    # it is not set up in BMW's portal (SUBACK 0x80). A new reason within one episode is told too. An owner
    # told before this column existed was told about another app.
    db.table("cardata_accounts").add_column("stream_block_told", str)
    db.execute("UPDATE cardata_accounts SET stream_block_told = 'held' WHERE stream_held_told_at IS NOT NULL")


def m017_shares(db: Database) -> None:
    # /share (docs/telegram.md): who (tg_id) sees which owner's car, and the owners' (tg_id) open invitations,
    # by the SHA-256 of their token only: the link itself is never stored. A share is about two users: either
    # one's /unlink ends it.
    db.create_table(
        "shares",
        {"tg_id": int, "owner": int, "vin": str, "remote": bool, "since": float},
        pk=("owner", "vin", "tg_id"),
        not_null=["remote", "since"],
        defaults={"remote": False},
    )
    db.create_table(
        "share_invites",
        {"token_hash": str, "tg_id": int, "vin": str, "expires_at": float},
        pk="token_hash",
        not_null=["tg_id", "vin", "expires_at"],
    )


MIGRATIONS = Migrations("bmw_telegram_bot")
_STEPS = [
    MIGRATIONS()(step)
    for step in (
        m001_users_accounts_vehicles,
        m002_charge_watches,
        m003_login_attempts_and_refusals,
        m004_commands_in_flight,
        m005_cardata,
        m006_charge_sessions,
        m007_alerts,
        m008_user_settings,
        m009_account_backends,
        m010_cardata_relink_asked,
        m011_cardata_calls_per_account,
        m012_cardata_first_call,
        m013_cardata_last_report,
        m014_cardata_stream_held_told,
        m015_cardata_late_read,
        m016_cardata_stream_block_told,
        m017_shares,
    )
]
SCHEMA_VERSION = len(_STEPS)

_SECRET_COLUMNS = (
    "username_enc",
    "password_enc",
    "access_token_enc",
    "refresh_token_enc",
    "security_answer_enc",
)
_USER_SUBJECT = "user:"
_LOGIN_SUBJECT_PURPOSE = "login-attempts"  # renaming it orphans every stored e-mail subject
_REFUSALS_QUERY = (
    "SELECT password_refusals, relink_needed_at IS NOT NULL AS waiting FROM accounts WHERE tg_id = ?"
)
# A CarData link's rows, the owner's own calls of the day among them; not cardata_account_calls: BMW's count
# of the account's calls goes on, whoever unlinks.
_CARDATA_LINK_TABLES = ("cardata_accounts", "cardata_calls", "cardata_states", "cardata_tracks")
_CARDATA_SECRET_COLUMNS = ("client_id_enc", "access_token_enc", "id_token_enc", "refresh_token_enc")
_CARDATA_COLUMNS = (
    "tg_id, client_id_enc, gcid, access_token_enc, id_token_enc, refresh_token_enc, expires_at,"
    " refresh_expires_at, container_id"
)
_TRACK_COLUMNS = (
    "tg_id, vin, status, session_start, soc_at_start, deadline, pending, last_event, known_soc, known_reason,"
    " known_at, late_read_at"
)
# The cars a user sees, by the named parameter :me: their own, then (with `shared` 1) those shared with them
# whose VIN they do not own too; each row is the owner's (its tg_id is the owner's).
_SEEN = (
    "SELECT v.*, 0 AS shared FROM vehicles v WHERE v.tg_id = :me"
    " UNION ALL SELECT v.*, 1 AS shared FROM shares s JOIN vehicles v ON v.tg_id = s.owner AND v.vin = s.vin"
    " WHERE s.tg_id = :me AND s.vin NOT IN (SELECT vin FROM vehicles WHERE tg_id = :me)"
)
_TRACK_SELECT = _TRACK_COLUMNS.replace("tg_id", "tg_id AS owner", 1)  # read by ChargeTrack's field names


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


_VEHICLE_FIELDS = _field_names(StoredVehicle)
_WATCH_FIELDS = _field_names(ChargeWatch)
_WATCH_COLUMNS = ", ".join(_WATCH_FIELDS)
_LOGIN_FIELDS = _field_names(LoginAttempts)
_COMMAND_COLUMNS = ", ".join(_field_names(CommandInFlight))
_SESSION_FIELDS = _field_names(ChargeSession)
_SESSION_COLUMNS = ", ".join(_SESSION_FIELDS)
_PREF_COLUMNS = {name: f"notify_{name}" for name in _field_names(NotifyPrefs)}  # field -> users column
_ALERT_PREF_FIELDS = _field_names(AlertPrefs)
_ALERT_PREF_COLUMNS = ", ".join(_ALERT_PREF_FIELDS)
_ALERT_STATE_FIELDS = _field_names(AlertState)
_ALERT_STATE_COLUMNS = ", ".join(_ALERT_STATE_FIELDS)
_SETTINGS_FIELDS = _field_names(UserSettings)
_SETTINGS_QUERY = f"SELECT {', '.join(_SETTINGS_FIELDS)} FROM users WHERE tg_id = ?"
_CHOSEN_SETTINGS = _SETTINGS_FIELDS[1:]  # what /settings saves; language_code comes from Telegram
_SHARE_COLUMNS = "s.owner, s.vin, s.tg_id AS member, s.remote, s.since"  # Share's fields


class Store:
    """The bot's database. Methods are short and synchronous: call them on the event loop or in threads."""

    def __init__(
        self, path: str | Path, secret_keys: Sequence[str], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._secrets = Secrets(secret_keys)
        self._subject_key = self._secrets.derive_key(_LOGIN_SUBJECT_PURPOSE)
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

    # --- users ----------------------------------------------------------------------------------------------

    def upsert_user(self, tg_id: int, first_name: str | None) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO users (tg_id, first_name) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET first_name = excluded.first_name",
                (tg_id, first_name),
            )

    def keeps_settings(self, tg_id: int) -> bool:
        """Whether the bot keeps choices of that user (/settings, /notify, /alerts), linked or not."""
        rows = self._rows(
            "SELECT 1 FROM users WHERE tg_id = ? UNION ALL SELECT 1 FROM alert_prefs WHERE tg_id = ? LIMIT 1",
            (tg_id, tg_id),
        )
        return bool(rows)

    def first_name(self, tg_id: int) -> str | None:
        rows = self._rows("SELECT first_name FROM users WHERE tg_id = ?", (tg_id,))
        return rows[0]["first_name"] if rows else None

    def user_ids(self) -> list[int]:
        return [row["tg_id"] for row in self._rows("SELECT tg_id FROM users ORDER BY tg_id")]

    def delete_user(self, tg_id: int) -> None:
        """Every row about that user, in one transaction."""
        with self._write() as db:
            for table in (
                "login_attempts",
                "commands_in_flight",
                "charge_watches",
                "vehicles",
                "accounts",
                "users",
                "cardata_accounts",
                "cardata_calls",
                "cardata_states",
                "cardata_tracks",
                "charge_sessions",
                "alert_prefs",
                "alert_states",
                "shares",
                "share_invites",
            ):
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))
            _end_shares(db, "s.owner = ?", (tg_id,))  # the people who saw their cars
        self._forget_deleted()

    # --- account and secrets --------------------------------------------------------------------------------

    def save_account(self, tg_id: int, *, region: str, username: str, password: str) -> None:
        """Link a BMW account, replacing any previous one: its token, answer, cars, selection and watches."""
        row = (tg_id, region, self._secrets.encrypt(username), self._secrets.encrypt(password))
        with self._write() as db:
            replaced = any(
                db.execute(f"SELECT 1 FROM {table} WHERE tg_id = ?", (tg_id,)).fetchone()
                for table in ("accounts", *_CARDATA_LINK_TABLES)
            )
            db.execute("INSERT INTO users (tg_id) VALUES (?) ON CONFLICT (tg_id) DO NOTHING", (tg_id,))
            db.execute(
                "UPDATE users SET selected_vin = NULL, backend = ? WHERE tg_id = ?",
                (BackendName.IREMOTE, tg_id),
            )
            for table in _CARDATA_LINK_TABLES:  # a CarData link it replaces (the caller stopped its stream)
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM charge_watches WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM alert_states WHERE tg_id = ?", (tg_id,))
            db.execute("DELETE FROM vehicles WHERE tg_id = ?", (tg_id,))
            db.execute(
                "INSERT OR REPLACE INTO accounts (tg_id, region, username_enc, password_enc)"
                " VALUES (?, ?, ?, ?)",
                row,
            )
        if replaced:  # a first link deletes no secret: no checkpoint to pay for
            self._forget_deleted()  # the replaced account's secrets

    def use_cardata(
        self, link: CarDataLink, first_name: str | None, vehicles: Sequence[StoredVehicle]
    ) -> None:
        """The user's account is now this CarData link with these cars, in one transaction, so a link fails
        or is made whole: an earlier CarData link it replaces (its car states and detector memory too when
        the gcid changed), or an i Remote account with its token, answer, watches; the cars and selection."""
        tg_id = link.owner
        with self._write() as db:
            replaced = any(
                db.execute(f"SELECT 1 FROM {table} WHERE tg_id = ?", (tg_id,)).fetchone()
                for table in ("accounts", "cardata_accounts")
            )
            self.save_cardata_link(link)  # a savepoint inside this transaction
            db.execute(
                "INSERT INTO users (tg_id, first_name, backend) VALUES (?, ?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE"
                " SET first_name = excluded.first_name, backend = excluded.backend, selected_vin = NULL",
                (tg_id, first_name, BackendName.CARDATA),
            )
            for table in ("charge_watches", "vehicles", "accounts"):
                db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (tg_id,))
            self.save_vehicles(tg_id, vehicles)
        if replaced:  # a first link deletes no secret: no checkpoint to pay for
            self._forget_deleted()  # the replaced link's or account's secrets

    def backend(self, tg_id: int) -> BackendName | None:
        """The backend of the user's linked account; None when nothing is linked."""
        rows = self._rows(
            "SELECT u.backend FROM users u WHERE u.tg_id = ? AND CASE u.backend"
            " WHEN ? THEN EXISTS (SELECT 1 FROM cardata_accounts c WHERE c.tg_id = u.tg_id)"
            " ELSE EXISTS (SELECT 1 FROM accounts a WHERE a.tg_id = u.tg_id) END",
            (tg_id, BackendName.CARDATA),
        )
        return BackendName(rows[0]["backend"]) if rows else None

    def account(self, tg_id: int) -> StoredAccount | None:
        rows = self._rows("SELECT * FROM accounts WHERE tg_id = ?", (tg_id,))
        if not rows:
            return None
        row, secrets = rows[0], self._secrets
        token = (
            None
            if row["access_token_enc"] is None
            else StoredToken(
                secrets.decrypt(row["access_token_enc"]),
                secrets.decrypt_opt(row["refresh_token_enc"]),
                float(row["token_expires_at"]),
            )
        )
        return StoredAccount(
            tg_id=tg_id,
            region=row["region"],
            username=secrets.decrypt(row["username_enc"]),
            password=secrets.decrypt(row["password_enc"]),
            token=token,
            security_answer=secrets.decrypt_opt(row["security_answer_enc"]),
        )

    def save_token(self, tg_id: int, token: StoredToken | None) -> None:
        """Replace (or with None, forget) the account's token; nothing happens when the account is gone."""
        if token is None:
            values: tuple[str | float | None, ...] = (None, None, None)
        else:
            values = (
                self._secrets.encrypt(token.access_token),
                self._secrets.encrypt_opt(token.refresh_token),
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
                (self._secrets.encrypt_opt(answer), tg_id),
            )
        self._forget_deleted()  # the previous answer

    def rotate(self) -> int:
        """Re-encrypt with the first key every secret under another key; returns how many it rewrote."""
        rewritten = 0
        with self._write() as db:
            for row in self._rows(f"SELECT tg_id, {', '.join(_SECRET_COLUMNS)} FROM accounts"):
                for column in _SECRET_COLUMNS:
                    token = row[column]
                    if token is None or self._secrets.is_primary(token):
                        continue
                    db.execute(
                        f"UPDATE accounts SET {column} = ? WHERE tg_id = ?",
                        (self._secrets.rotate(token), row["tg_id"]),
                    )
                    rewritten += 1
            cardata = f"SELECT tg_id, {', '.join(_CARDATA_SECRET_COLUMNS)} FROM cardata_accounts"
            for row in self._rows(cardata):
                for column in _CARDATA_SECRET_COLUMNS:
                    token = row[column]
                    if self._secrets.is_primary(token):
                        continue
                    db.execute(
                        f"UPDATE cardata_accounts SET {column} = ? WHERE tg_id = ?",
                        (self._secrets.rotate(token), row["tg_id"]),
                    )
                    rewritten += 1
        self._forget_deleted()  # the secrets under the old keys
        return rewritten

    # --- vehicles and selection -----------------------------------------------------------------------------

    def save_vehicles(self, tg_id: int, vehicles: Sequence[StoredVehicle]) -> None:
        """Replace the user's list of cars. New cars get a watch due now; a car that stays keeps its watch.
        Only cars of an i Remote account are watched (polled): a CarData account's stream reports itself."""
        vins = [v.vin for v in vehicles]
        if any(v.tg_id != tg_id for v in vehicles):
            raise ValueError("every vehicle must belong to the user whose list is saved")
        if len(set(vins)) != len(vins):
            raise ValueError("a VIN appears twice in the list")
        rows = [{**vars(v), "capabilities": json.dumps(sorted(v.capabilities))} for v in vehicles]
        now = self._clock()
        with self._write() as db:
            db.execute("DELETE FROM vehicles WHERE tg_id = ?", (tg_id,))
            db.conn.executemany(
                f"INSERT INTO vehicles ({', '.join(_VEHICLE_FIELDS)}) VALUES ({_params(_VEHICLE_FIELDS)})",
                rows,
            )
            linked = "SELECT 1 FROM vehicles v WHERE v.tg_id = {0}.tg_id AND v.vin = {0}.{1}"
            db.execute(
                "DELETE FROM charge_watches WHERE tg_id = ?"
                f" AND NOT EXISTS ({linked.format('charge_watches', 'vin')})",
                (tg_id,),
            )
            db.execute(
                "DELETE FROM alert_states WHERE tg_id = ?"
                f" AND NOT EXISTS ({linked.format('alert_states', 'vin')})",
                (tg_id,),
            )
            db.conn.executemany(
                "INSERT OR IGNORE INTO charge_watches (tg_id, vin, next_poll_at, failures) SELECT ?, ?, ?, 0"
                " WHERE NOT EXISTS (SELECT 1 FROM users WHERE tg_id = ? AND backend != ?)",
                [(tg_id, vin, now, tg_id, BackendName.IREMOTE) for vin in vins],
            )
            db.execute(
                f"UPDATE users SET selected_vin = NULL WHERE tg_id = ? AND selected_vin IS NOT NULL"
                f" AND NOT EXISTS ({linked.format('users', 'selected_vin')})",
                (tg_id,),
            )

    def vehicles(self, tg_id: int) -> list[StoredVehicle]:
        rows = self._rows("SELECT * FROM vehicles WHERE tg_id = ? ORDER BY position, vin", (tg_id,))
        return [_vehicle(row) for row in rows]

    def vehicle(self, tg_id: int, vin: str) -> StoredVehicle | None:
        """The car, or None when that VIN is not linked by this user."""
        rows = self._rows("SELECT * FROM vehicles WHERE tg_id = ? AND vin = ?", (tg_id, vin))
        return _vehicle(rows[0]) if rows else None

    def selected_vin(self, tg_id: int) -> str | None:
        """The chosen car, else the first car of the list (own cars before shared ones), else None."""
        rows = self._rows(
            f"SELECT seen.vin FROM ({_SEEN}) seen LEFT JOIN users u ON u.tg_id = :me"
            " ORDER BY seen.vin IS u.selected_vin DESC, seen.shared, seen.position, seen.vin LIMIT 1",
            {"me": tg_id},
        )
        return rows[0]["vin"] if rows else None

    def select_vin(self, tg_id: int, vin: str) -> bool:
        """Choose a car; False (and no change) when the VIN is not one this user sees."""
        with self._write() as db:
            seen = f"SELECT 1 FROM ({_SEEN}) WHERE vin = :vin"
            if db.execute(seen, {"me": tg_id, "vin": vin}).fetchone() is None:
                return False
            db.execute(
                "INSERT INTO users (tg_id, selected_vin) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET selected_vin = excluded.selected_vin",
                (tg_id, vin),
            )
            return True

    def vehicles_seen(self, tg_id: int) -> list[StoredVehicle]:
        """The user's own cars, then those shared with them (each with its owner's tg_id)."""
        rows = self._rows(f"SELECT * FROM ({_SEEN}) ORDER BY shared, position, vin", {"me": tg_id})
        return [_vehicle(row) for row in rows]

    def vehicle_seen(self, tg_id: int, vin: str) -> StoredVehicle | None:
        """That car when the user owns it or it is shared with them, else None."""
        rows = self._rows(f"SELECT * FROM ({_SEEN}) WHERE vin = :vin", {"me": tg_id, "vin": vin})
        return _vehicle(rows[0]) if rows else None

    # --- notification preferences ---------------------------------------------------------------------------

    def notify_prefs(self, tg_id: int) -> NotifyPrefs:
        rows = self._rows("SELECT * FROM users WHERE tg_id = ?", (tg_id,))
        if not rows:
            return NotifyPrefs()
        chosen = {name: rows[0][column] for name, column in _PREF_COLUMNS.items()}
        return NotifyPrefs(**{name: bool(value) for name, value in chosen.items() if value is not None})

    def save_notify_prefs(self, tg_id: int, prefs: NotifyPrefs) -> None:
        columns = _PREF_COLUMNS.values()
        with self._write() as db:
            db.execute(
                f"INSERT INTO users (tg_id, {', '.join(columns)})"
                f" VALUES (:tg_id, {_params(_PREF_COLUMNS)})"
                " ON CONFLICT (tg_id) DO UPDATE SET"
                f" {', '.join(f'{column} = excluded.{column}' for column in columns)}",
                {"tg_id": tg_id, **vars(prefs)},
            )

    # --- /settings ------------------------------------------------------------------------------------------

    def user_settings(self, tg_id: int) -> UserSettings | None:
        """The user's settings; None for a user the bot keeps no row of."""
        found = self._records(UserSettings, _SETTINGS_QUERY, (tg_id,))
        return found[0] if found else None

    def save_user_settings(self, tg_id: int, settings: UserSettings) -> None:
        """Store what the user chose (not language_code, which only Telegram sets)."""
        with self._write() as db:
            db.execute(
                f"INSERT INTO users (tg_id, {', '.join(_CHOSEN_SETTINGS)})"
                f" VALUES (:tg_id, {_params(_CHOSEN_SETTINGS)})"
                " ON CONFLICT (tg_id) DO UPDATE SET"
                f" {', '.join(f'{column} = excluded.{column}' for column in _CHOSEN_SETTINGS)}",
                {"tg_id": tg_id, **vars(settings)},
            )

    def save_language_code(self, tg_id: int, language_code: str | None) -> None:
        """Remember the language Telegram reports for a user we already know (no row for strangers)."""
        with self._write() as db:
            db.execute("UPDATE users SET language_code = ? WHERE tg_id = ?", (language_code, tg_id))

    # --- charge watches -------------------------------------------------------------------------------------

    def watches_due(self, now: float, limit: int | None = None) -> list[ChargeWatch]:
        """Watches whose next_poll_at <= now, most overdue first; none of an account waiting for a re-link."""
        return self._records(
            ChargeWatch,
            f"SELECT {_WATCH_COLUMNS} FROM charge_watches w WHERE next_poll_at <= ?"
            " AND NOT EXISTS (SELECT 1 FROM accounts a"
            " WHERE a.tg_id = w.tg_id AND a.relink_needed_at IS NOT NULL)"
            " ORDER BY next_poll_at, tg_id, vin LIMIT ?",
            (now, -1 if limit is None else limit),
        )

    def watch(self, tg_id: int, vin: str) -> ChargeWatch | None:
        sql = f"SELECT {_WATCH_COLUMNS} FROM charge_watches WHERE tg_id = ? AND vin = ?"
        found = self._records(ChargeWatch, sql, (tg_id, vin))
        return found[0] if found else None

    def save_watch(self, watch: ChargeWatch, ended: ChargeSession | None = None) -> None:
        """Store the watcher's state of a car, and with it the charge that `ended` (once: a session already
        recorded stays as it is); ignored when the car was unlinked meanwhile (no orphan)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO charge_watches ({_WATCH_COLUMNS})"
                f" SELECT {_params(_WATCH_FIELDS)}"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin)"
                " OR EXISTS (SELECT 1 FROM shares WHERE tg_id = :tg_id AND vin = :vin)",
                vars(watch),
            )
            if ended is not None:
                self._record_session(db, ended, "SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin")

    def watched_count(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM charge_watches")[0]["n"])

    # --- charging history (written with the watch or track that ends a charge) ------------------------------

    def _record_session(self, db: Database, session: ChargeSession, linked: str) -> None:
        """Add a session to the history, unless it is there already or `linked` (a query) finds nothing."""
        db.execute(
            f"INSERT OR IGNORE INTO charge_sessions ({_SESSION_COLUMNS})"
            f" SELECT {_params(_SESSION_FIELDS)} WHERE EXISTS ({linked})",
            vars(session),
        )

    def charge_sessions(self, tg_id: int, vin: str) -> list[ChargeSession]:
        """The car's recorded charge sessions, newest first."""
        return self._records(
            ChargeSession,
            f"SELECT {_SESSION_COLUMNS} FROM charge_sessions WHERE tg_id = ? AND vin = ?"
            " ORDER BY started_at DESC",
            (tg_id, vin),
        )

    # --- alerts (implements bot.alerts.AlertStore) ----------------------------------------------------------

    def alert_prefs(self, tg_id: int) -> AlertPrefs:
        sql = f"SELECT {_ALERT_PREF_COLUMNS} FROM alert_prefs WHERE tg_id = ?"
        found = self._records(AlertPrefs, sql, (tg_id,))
        return _booleans(found[0]) if found else AlertPrefs()

    def save_alert_prefs(self, tg_id: int, prefs: AlertPrefs) -> None:
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO alert_prefs (tg_id, {_ALERT_PREF_COLUMNS})"
                f" VALUES (:tg_id, {_params(_ALERT_PREF_FIELDS)})",
                {"tg_id": tg_id, **vars(prefs)},
            )

    def alert_state(self, tg_id: int, vin: str) -> AlertState:
        sql = f"SELECT {_ALERT_STATE_COLUMNS} FROM alert_states WHERE tg_id = ? AND vin = ?"
        found = self._records(AlertState, sql, (tg_id, vin))
        return _booleans(found[0]) if found else AlertState()

    def save_alert_state(self, tg_id: int, vin: str, state: AlertState) -> None:
        """Ignored when the car was unlinked meanwhile (no orphan)."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO alert_states (tg_id, vin, {_ALERT_STATE_COLUMNS})"
                f" SELECT :tg_id, :vin, {_params(_ALERT_STATE_FIELDS)}"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin)"
                " OR EXISTS (SELECT 1 FROM shares WHERE tg_id = :tg_id AND vin = :vin)",
                {"tg_id": tg_id, "vin": vin, **vars(state)},
            )

    def alerts_due(self, now: float) -> tuple[dict[tuple[int, str], AlertState], dict[int, AlertPrefs]]:
        """The stored alert memory of the cars whose watch is due (`watches_due`), and their owners' prefs, in
        two queries for a whole watcher cycle; a car or user missing has the defaults."""
        due = "SELECT tg_id, vin FROM charge_watches WHERE next_poll_at <= ?"
        with self._lock:
            states = self._db.conn.execute(
                f"SELECT tg_id, vin, {_ALERT_STATE_COLUMNS} FROM alert_states WHERE (tg_id, vin) IN ({due})",
                (now,),
            ).fetchall()
            prefs = self._db.conn.execute(
                f"SELECT tg_id, {_ALERT_PREF_COLUMNS} FROM alert_prefs"
                f" WHERE tg_id IN (SELECT tg_id FROM ({due}))",
                (now,),
            ).fetchall()
        return (
            {(row[0], row[1]): _booleans(AlertState(*row[2:])) for row in states},
            {row[0]: _booleans(AlertPrefs(*row[1:])) for row in prefs},
        )

    # --- shares (/share) ------------------------------------------------------------------------------------

    def open_invite(self, token_hash: str, owner: int, vin: str, expires_at: float, limit: int) -> bool:
        """Store an invitation to that car; False (nothing stored) while `limit` of its invitations are open.
        Expired ones are dropped first."""
        with self._write() as db:
            db.execute("DELETE FROM share_invites WHERE expires_at <= ?", (self._clock(),))
            (open_now,) = db.execute(
                "SELECT count(*) FROM share_invites WHERE tg_id = ? AND vin = ?", (owner, vin)
            ).fetchone()
            if open_now >= limit:
                return False
            db.execute(
                "INSERT INTO share_invites (token_hash, tg_id, vin, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, owner, vin, expires_at),
            )
            return True

    def invite(self, token_hash: str) -> tuple[int, str] | None:
        """(owner, VIN) of an open, unexpired invitation of a car still linked; None for anything else."""
        rows = self._rows(
            "SELECT i.tg_id AS owner, i.vin FROM share_invites i"
            " JOIN vehicles v ON v.tg_id = i.tg_id AND v.vin = i.vin"
            " WHERE i.token_hash = ? AND i.expires_at > ?",
            (token_hash, self._clock()),
        )
        return (rows[0]["owner"], rows[0]["vin"]) if rows else None

    def take_invite(self, token_hash: str, member: int, first_name: str | None) -> Share | None:
        """Use the invitation up and share its car with `member`, in one transaction: None (and the invitation
        gone all the same when it was the owner's own) when it is not open, expired, the member's own car's or
        one they already see."""
        now = self._clock()
        with self._write() as db:
            found = db.execute(
                "DELETE FROM share_invites WHERE token_hash = ? RETURNING tg_id, vin, expires_at",
                (token_hash,),
            ).fetchone()
            if found is None or found[2] <= now or found[0] == member:
                return None
            owner, vin = found[0], found[1]
            linked = db.execute("SELECT 1 FROM vehicles WHERE tg_id = ? AND vin = ?", (owner, vin)).fetchone()
            seen = db.execute(
                f"SELECT 1 FROM ({_SEEN}) WHERE vin = :vin", {"me": member, "vin": vin}
            ).fetchone()
            if linked is None or seen is not None:
                return None
            db.execute(
                "INSERT INTO users (tg_id, first_name) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET first_name = excluded.first_name",
                (member, first_name),
            )
            db.execute(
                "INSERT INTO shares (owner, vin, tg_id, remote, since) VALUES (?, ?, ?, 0, ?)",
                (owner, vin, member, now),
            )
        return Share(owner, vin, member, False, now)

    def shares(self, owner: int) -> list[Share]:
        """The owner's shares of cars still linked, by car and then in the order they began."""
        sql = (
            f"SELECT {_SHARE_COLUMNS} FROM shares s JOIN vehicles v ON v.tg_id = s.owner AND v.vin = s.vin"
            " WHERE s.owner = ? ORDER BY v.position, s.vin, s.since"
        )
        return [_booleans(share) for share in self._records(Share, sql, (owner,))]

    def members(self, owner: int, vin: str) -> list[Share]:
        """Who sees that car of the owner."""
        sql = f"SELECT {_SHARE_COLUMNS} FROM shares s WHERE s.owner = ? AND s.vin = ? ORDER BY s.since"
        return [_booleans(share) for share in self._records(Share, sql, (owner, vin))]

    def share(self, owner: int, vin: str, member: int) -> Share | None:
        sql = f"SELECT {_SHARE_COLUMNS} FROM shares s WHERE s.owner = ? AND s.vin = ? AND s.tg_id = ?"
        found = self._records(Share, sql, (owner, vin, member))
        return _booleans(found[0]) if found else None

    def memberships(self, member: int) -> list[Share]:
        """The cars shared with that user (of cars still linked)."""
        sql = (
            f"SELECT {_SHARE_COLUMNS} FROM shares s JOIN vehicles v ON v.tg_id = s.owner AND v.vin = s.vin"
            " WHERE s.tg_id = ? ORDER BY s.since"
        )
        return [_booleans(share) for share in self._records(Share, sql, (member,))]

    def end_share(self, owner: int, vin: str, member: int) -> bool:
        """False when there was no such share (revoked or left already)."""
        with self._write() as db:
            return _end_shares(db, "s.owner = ? AND s.vin = ? AND s.tg_id = ?", (owner, vin, member)) > 0

    def set_share_remote(self, owner: int, vin: str, member: int, remote: bool) -> bool:
        with self._write() as db:
            changed = db.execute(
                "UPDATE shares SET remote = ? WHERE owner = ? AND vin = ? AND tg_id = ?",
                (remote, owner, vin, member),
            )
            return changed.rowcount > 0

    def push_recipients(self, owner: int, vin: str, preference: str) -> list[int]:
        """Who wants that charge push (`preference`, a NotifyPrefs field) of the owner's car: the owner, then
        each person it is shared with, by their own /notify."""
        people = [owner, *(share.member for share in self.members(owner, vin))]
        return [tg_id for tg_id in people if getattr(self.notify_prefs(tg_id), preference)]

    def leave_shares(self, member: int) -> list[Share]:
        """End every share with that user; the ones that were ended (of cars still linked)."""
        left = self.memberships(member)
        with self._write() as db:
            _end_shares(db, "s.tg_id = ?", (member,))
        return left

    # --- refused logins -------------------------------------------------------------------------------------

    def login_subjects(self, tg_id: int, email: str | None = None) -> list[str]:
        """What failed logins count against: the Telegram user and, when given, the e-mail, as a keyed hash of
        its case-folded form (so one e-mail is one subject whatever its case, and no e-mail is stored)."""
        subjects = [f"{_USER_SUBJECT}{tg_id}"]
        if email is not None:
            digest = hmac.new(self._subject_key, email.strip().casefold().encode(), hashlib.sha256)
            subjects.append(f"email:{digest.hexdigest()}")
        return subjects

    def login_attempts(self, subject: str, now: float) -> LoginAttempts:
        found = self._records(
            LoginAttempts, "SELECT * FROM login_attempts WHERE subject = ? AND forget_at > ?", (subject, now)
        )
        return found[0] if found else LoginAttempts()

    def save_login_attempts(self, subject: str, attempts: LoginAttempts, now: float) -> None:
        """Store the subject's record and drop every forgotten one, so the table stays small."""
        tg_id = int(subject.removeprefix(_USER_SUBJECT)) if subject.startswith(_USER_SUBJECT) else None
        with self._write() as db:
            db.execute("DELETE FROM login_attempts WHERE forget_at <= ?", (now,))
            db.execute(
                f"INSERT OR REPLACE INTO login_attempts (subject, tg_id, {', '.join(_LOGIN_FIELDS)})"
                f" VALUES (:subject, :tg_id, {_params(_LOGIN_FIELDS)})",
                {"subject": subject, "tg_id": tg_id, **vars(attempts)},
            )

    def forget_login_attempts(self, subjects: Sequence[str]) -> None:
        with self._write() as db:
            db.conn.executemany("DELETE FROM login_attempts WHERE subject = ?", [(s,) for s in subjects])

    def password_refusals(self, tg_id: int) -> tuple[int, bool]:
        """BMW's refusals of the account's stored password in a row, and whether it waits for a re-link."""
        rows = self._rows(_REFUSALS_QUERY, (tg_id,))
        return (int(rows[0]["password_refusals"]), bool(rows[0]["waiting"])) if rows else (0, False)

    def count_password_refusal(self, tg_id: int, relink_after: int) -> bool:
        """One more refusal of the stored password; the `relink_after`-th in a row marks the account as
        waiting for a re-link. True only for the refusal that set the mark, so exactly one caller tells."""
        with self._write() as db:
            before = self._rows(_REFUSALS_QUERY, (tg_id,))
            if not before:
                return False
            refusals, marked = int(before[0]["password_refusals"]) + 1, bool(before[0]["waiting"])
            mark = not marked and refusals >= relink_after
            db.execute(
                "UPDATE accounts SET password_refusals = ?,"
                " relink_needed_at = CASE WHEN ? THEN ? ELSE relink_needed_at END WHERE tg_id = ?",
                (refusals, mark, self._clock(), tg_id),
            )
        return mark

    def clear_password_refusals(self, tg_id: int) -> None:
        """BMW took the stored password again (a re-link replaces the whole row anyway)."""
        with self._write() as db:
            db.execute(
                "UPDATE accounts SET password_refusals = 0 WHERE tg_id = ? AND relink_needed_at IS NULL",
                (tg_id,),
            )

    # --- remote commands in flight --------------------------------------------------------------------------

    def begin_command(self, tg_id: int, vin: str, service: str, chat_id: int, message_id: int) -> None:
        """Record a command about to be sent (started now), replacing an older record of that user and car."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO commands_in_flight ({_COMMAND_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (tg_id, vin, service, chat_id, message_id, self._clock()),
            )

    def command_sent(self, tg_id: int, vin: str, event_id: str) -> None:
        """BMW answered the command's POST with this request id."""
        with self._write() as db:
            db.execute(
                "UPDATE commands_in_flight SET event_id = ? WHERE tg_id = ? AND vin = ?",
                (event_id, tg_id, vin),
            )

    def end_command(self, tg_id: int, vin: str) -> None:
        """The command's outcome was shown: nothing is left to finish."""
        with self._write() as db:
            db.execute("DELETE FROM commands_in_flight WHERE tg_id = ? AND vin = ?", (tg_id, vin))

    def commands_in_flight(self) -> list[CommandInFlight]:
        """Every recorded command, oldest first."""
        return self._records(
            CommandInFlight, "SELECT * FROM commands_in_flight ORDER BY started_at, tg_id, vin"
        )

    # --- BMW CarData (implements bot.cardata.storage.CarDataStore) ------------------------------------------

    def cardata_link(self, owner: int) -> CarDataLink | None:
        rows = self._rows("SELECT * FROM cardata_accounts WHERE tg_id = ?", (owner,))
        return self._cardata_link(rows[0]) if rows else None

    def cardata_links(self) -> list[CarDataLink]:
        return [self._cardata_link(row) for row in self._rows("SELECT * FROM cardata_accounts")]

    def _cardata_link(self, row: sqlite3.Row) -> CarDataLink:
        decrypt = self._secrets.decrypt
        tokens = Tokens(
            access_token=decrypt(row["access_token_enc"]),
            id_token=decrypt(row["id_token_enc"]),
            refresh_token=decrypt(row["refresh_token_enc"]),
            gcid=row["gcid"],
            expires_at=row["expires_at"],
            refresh_expires_at=row["refresh_expires_at"],
        )
        return CarDataLink(row["tg_id"], decrypt(row["client_id_enc"]), tokens, row["container_id"])

    def save_cardata_link(self, link: CarDataLink) -> None:
        """Link (or re-link) an owner's CarData account; another gcid's car states, detector memory and the
        owner's calls counted on it go.
        A new link has not been refused: its owner is asked again when it is (`mark_cardata_relink_asked`)."""
        t, encrypt = link.tokens, self._secrets.encrypt
        row = (
            link.owner,
            encrypt(link.client_id),
            t.gcid,
            encrypt(t.access_token),
            encrypt(t.id_token),
            encrypt(t.refresh_token),
            t.expires_at,
            t.refresh_expires_at,
            link.container_id,
        )
        with self._write() as db:
            old = db.execute("SELECT gcid FROM cardata_accounts WHERE tg_id = ?", (link.owner,)).fetchone()
            if old is not None and old[0] != t.gcid:
                for table in ("cardata_calls", "cardata_states", "cardata_tracks"):
                    db.execute(f"DELETE FROM {table} WHERE tg_id = ?", (link.owner,))
            db.execute(
                f"INSERT OR REPLACE INTO cardata_accounts ({_CARDATA_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

    def replace_cardata_container(self, gcid: str, old: str, new: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE cardata_accounts SET container_id = ? WHERE gcid = ? AND container_id = ?",
                (new, gcid, old),
            )

    def save_cardata_tokens(self, owner: int, tokens: Tokens, renewed: Tokens) -> bool:
        # The ciphertexts differ at each encryption: the expiry times tell the renewed tokens apart.
        with self._write() as db:
            cursor = db.execute(
                "UPDATE cardata_accounts SET gcid = ?, access_token_enc = ?, id_token_enc = ?,"
                " refresh_token_enc = ?, expires_at = ?, refresh_expires_at = ?"
                " WHERE tg_id = ? AND expires_at = ? AND refresh_expires_at = ?",
                (
                    tokens.gcid,
                    self._secrets.encrypt(tokens.access_token),
                    self._secrets.encrypt(tokens.id_token),
                    self._secrets.encrypt(tokens.refresh_token),
                    tokens.expires_at,
                    tokens.refresh_expires_at,
                    owner,
                    renewed.expires_at,
                    renewed.refresh_expires_at,
                ),
            )
            return cursor.rowcount == 1

    def mark_cardata_relink_asked(self, owner: int, asked: bool = True) -> bool:
        """Mark (or unmark) the owner as asked to link CarData again since their link was refused; whether
        this changed the mark (False when it was so already, or when the owner has no link)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE cardata_accounts SET relink_asked_at = ?"
                " WHERE tg_id = ? AND (relink_asked_at IS NULL) = ?",
                (self._clock() if asked else None, owner, asked),
            )
            return cursor.rowcount == 1

    def mark_cardata_stream_block_told(self, owner: int, reason: str | None) -> bool:
        """Mark the owner as told why BMW lets nothing through their account's stream (`reason`; None: unmark,
        it flows); whether this changed the mark (False when it was so already, or when the owner has no
        link)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE cardata_accounts SET stream_block_told = ?, stream_held_told_at = ?"
                " WHERE tg_id = ? AND stream_block_told IS NOT ?",
                (reason, None if reason is None else self._clock(), owner, reason),
            )
            return cursor.rowcount == 1

    def cardata_container_shared(self, owner: int) -> bool:
        """Whether another linked owner of the same BMW account (a co-owner) reads through this owner's
        container (found again by its name, so they share it)."""
        rows = self._rows(
            "SELECT 1 FROM cardata_accounts a JOIN cardata_accounts b"
            " ON b.gcid = a.gcid AND b.container_id = a.container_id AND b.tg_id != a.tg_id"
            " WHERE a.tg_id = ? LIMIT 1",
            (owner,),
        )
        return bool(rows)

    def forget_cardata_calls_unless_linked(self, owner: int) -> None:
        """After a first CarData link failed: its calls' count goes with it (nothing else of it was stored,
        and /unlink would not find it)."""
        with self._write() as db:
            db.execute(
                "DELETE FROM cardata_calls WHERE tg_id = ?"
                " AND NOT EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (owner, owner),
            )

    def spend_cardata_call(
        self, gcid: str, owner: int, day: str, allowed: Callable[[AccountCalls], bool], now: float
    ) -> bool:
        with self._write() as db:
            # Days before yesterday are over for everyone (yesterday's calls may count until 24 h after its
            # first): an account nobody links any more leaves no row behind.
            db.execute("DELETE FROM cardata_account_calls WHERE day < ?", (_day_before(day),))
            db.execute("DELETE FROM cardata_calls WHERE tg_id = ? AND day < ?", (owner, day))
            if not allowed(self.cardata_calls(gcid, owner, day)):
                return False
            db.execute(
                "INSERT INTO cardata_account_calls (gcid, day, calls, first_call_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT (gcid, day) DO UPDATE SET calls = calls + 1",
                (gcid, day, now),
            )
            db.execute(
                "INSERT INTO cardata_calls (tg_id, day, calls) VALUES (?, ?, 1)"
                " ON CONFLICT (tg_id, day) DO UPDATE SET calls = calls + 1",
                (owner, day),
            )
            return True

    def cardata_calls(self, gcid: str, owner: int, day: str) -> AccountCalls:
        query = "SELECT calls, first_call_at FROM cardata_account_calls WHERE gcid = ? AND day = ?"
        total = self._rows(query, (gcid, day))
        before = self._rows(query, (gcid, _day_before(day)))
        own = self._rows("SELECT calls FROM cardata_calls WHERE tg_id = ? AND day = ?", (owner, day))
        others = self._rows(
            "SELECT coalesce(c.calls, 0) AS calls FROM cardata_accounts a"
            " LEFT JOIN cardata_calls c ON c.tg_id = a.tg_id AND c.day = ?"
            " WHERE a.gcid = ? AND a.tg_id != ? ORDER BY a.tg_id",
            (day, gcid, owner),
        )
        return AccountCalls(
            total=total[0]["calls"] if total else 0,
            own=own[0]["calls"] if own else 0,
            others=tuple(row["calls"] for row in others),
            first_call_at=total[0]["first_call_at"] if total else None,
            day_before=before[0]["calls"] if before else 0,
            day_before_first_call_at=before[0]["first_call_at"] if before else None,
        )

    def exhaust_cardata_calls(self, gcid: str, day: str, calls: int) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO cardata_account_calls (gcid, day, calls) VALUES (?, ?, ?)"
                " ON CONFLICT (gcid, day) DO UPDATE SET calls = max(calls, excluded.calls)",
                (gcid, day, calls),
            )

    def cardata_vins(self, owner: int) -> list[str]:
        return [row["vin"] for row in self._rows("SELECT vin FROM vehicles WHERE tg_id = ?", (owner,))]

    def cardata_states(self, owner: int) -> dict[str, Any]:
        rows = self._rows("SELECT vin, state FROM cardata_states WHERE tg_id = ? ORDER BY vin", (owner,))
        return {row["vin"]: json.loads(row["state"]) for row in rows}

    def save_cardata_state(self, owner: int, vin: str, values: dict[str, Any]) -> None:
        """Ignored when the owner is no longer linked (a late stream message must not leave an orphan)."""
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO cardata_states (tg_id, vin, state) SELECT ?, ?, ?"
                " WHERE EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = ?)",
                (owner, vin, json.dumps(values, separators=(",", ":")), owner),
            )

    def cardata_track(self, owner: int, vin: str) -> ChargeTrack | None:
        query = f"SELECT {_TRACK_SELECT} FROM cardata_tracks WHERE tg_id = ? AND vin = ?"
        tracks = self._records(ChargeTrack, query, (owner, vin))
        return tracks[0] if tracks else None

    def save_cardata_track(self, track: ChargeTrack) -> None:
        """Ignored when the owner is no longer linked."""
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO cardata_tracks ({_TRACK_COLUMNS})"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
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
                    track.known_soc,
                    track.known_reason,
                    track.known_at,
                    track.late_read_at,
                    track.owner,
                ),
            )

    def end_cardata_charge(self, track: ChargeTrack, ended: EndedCharge) -> None:
        with self._write() as db:  # one transaction: the inner write is a savepoint
            self.save_cardata_track(track)
            self._record_session(db, ended.session(), "SELECT 1 FROM cardata_accounts WHERE tg_id = :tg_id")

    def cardata_tracks_due(self, now: float) -> list[ChargeTrack]:
        return self._records(
            ChargeTrack,
            f"SELECT {_TRACK_SELECT} FROM cardata_tracks WHERE deadline <= ?"
            f" UNION SELECT {_TRACK_SELECT} FROM cardata_tracks WHERE pending IS NOT NULL",
            (now,),
        )

    def cardata_next_deadline(self, after: float) -> float | None:
        [row] = self._rows("SELECT MIN(deadline) FROM cardata_tracks WHERE deadline > ?", (after,))
        return None if row[0] is None else float(row[0])


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


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


def _params(names: Iterable[str]) -> str:
    """Named parameters for these columns, `:a, :b`, filled from a dict (often a dataclass's `vars`)."""
    return ", ".join(f":{name}" for name in names)


def _booleans(record: _Record) -> _Record:
    """SQLite gives booleans back as 0 and 1: the fields whose default is a bool become bools again."""
    flags = {f.name: bool(getattr(record, f.name)) for f in fields(record) if isinstance(f.default, bool)}
    return replace(record, **flags)


def _vehicle(row: sqlite3.Row) -> StoredVehicle:
    values = {name: row[name] for name in _VEHICLE_FIELDS}
    values["capabilities"] = frozenset(json.loads(values["capabilities"]))  # a sorted JSON array
    return StoredVehicle(**values)
