"""The bot's storage: one SQLite file (WAL) through sqlite-utils, schema and migrations, encrypted secrets.

Every secret (BMW e-mail, password, tokens, security answer) is encrypted with BOT_SECRET_KEY (bot/crypto.py)
before it reaches SQLite. Rows are read by column name into the dataclasses of records.py; where a table's
columns are a dataclass's fields, the dataclass is the column list. One connection is shared by the
event-loop thread and worker threads; a lock serialises it. Rows of one Telegram user live in several tables
keyed by `tg_id`; there are no SQL foreign keys, so each method that removes a parent row removes its
children in the same transaction.

`Store` is composed of one module per area (accounts, vehicles, prefs, charging, costs, drives, mileage,
commands, shares, cardata) over the plumbing of connection.py; schema.py holds the migrations.
"""

from bot.store.accounts import _SECRET_COLUMNS, AccountRows
from bot.store.cardata import CarDataRows
from bot.store.charging import ChargingRows
from bot.store.commands import CommandRows
from bot.store.connection import exclusive_use
from bot.store.costs import CostRows
from bot.store.drives import DriveRows
from bot.store.mileage import MileageRows
from bot.store.prefs import PrefRows
from bot.store.records import (
    ChargeWatch,
    CommandInFlight,
    LoginAttempts,
    NotifyPrefs,
    Share,
    StoredAccount,
    StoredToken,
    StoredVehicle,
    UserSettings,
)
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION
from bot.store.shares import ShareRows
from bot.store.vehicles import VehicleRows
from bot.store_errors import DatabaseInUse, StoreError, StoreFull

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "_SECRET_COLUMNS",
    "ChargeWatch",
    "CommandInFlight",
    "DatabaseInUse",
    "LoginAttempts",
    "NotifyPrefs",
    "Share",
    "Store",
    "StoreError",
    "StoreFull",
    "StoredAccount",
    "StoredToken",
    "StoredVehicle",
    "UserSettings",
    "exclusive_use",
]


class Store(
    AccountRows,
    ShareRows,
    CarDataRows,
    DriveRows,
    MileageRows,
    ChargingRows,
    CostRows,
    VehicleRows,
    PrefRows,
    CommandRows,
):
    """The bot's database. Methods are short and synchronous: call them on the event loop or in threads."""
