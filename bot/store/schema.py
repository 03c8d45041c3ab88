"""The schema as migrations, in order. sqlite-utils records each applied one by its function's name in
`_sqlite_migrations`: renaming one would run it again."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import get_type_hints

from sqlite_utils import Database, Migrations

from bot.alerts import AlertPrefs, AlertState

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


def m019_drives(db: Database) -> None:
    # Drives of CarData cars (bot/drives.py, docs/cardata.md "Drives"), each once: keyed by car and the
    # report that closed it. `drive_marks` holds each car's last parked report, the next drive's start.
    columns = ("started_after", "ended_at", "km", "soc_start", "soc_end", "energy_kwh")
    places = ("from_lat", "from_lon", "to_lat", "to_lon")
    db.create_table(
        "drives",
        {"tg_id": int, "vin": str, **dict.fromkeys(columns + places, float), "charged": bool},
        pk=("tg_id", "vin", "ended_at"),
        not_null=["started_after", "km", "charged"],
    )
    marks = dict.fromkeys(("at", "mileage_km", "soc", "lat", "lon"), float)
    db.create_table("drive_marks", {"tg_id": int, "vin": str, **marks}, pk=("tg_id", "vin"), not_null=["at"])


def m020_costs(db: Database) -> None:
    # Costs (bot/costs.py): each owner's home tariffs, each from its moment on, so a later one leaves older
    # charges' costs (a NULL price: cleared); and the prices owners gave single charges away from home.
    night = {"night_start": int, "night_end": int, "night_price": float}
    tariff = {"tg_id": int, "valid_from": float, "price": float, "currency": str, **night}
    db.create_table("tariffs", tariff, pk=("tg_id", "valid_from"), not_null=["currency"])
    price = {"tg_id": int, "vin": str, "started_at": float, "price": float, "currency": str}
    db.create_table("charge_prices", price, pk=("tg_id", "vin", "started_at"), not_null=["price", "currency"])


def m021_monthly_summary(db: Database) -> None:
    # The monthly summary (bot/months.py): a mileage mark per car and month (the owner's zone) from the
    # watcher's polls (i Remote); its switch and memory are alert columns (`follow_alert_fields`).
    key, marks = (
        {"tg_id": int, "vin": str, "month": str},
        dict.fromkeys(("first_at", "first_km", "last_at", "last_km"), float),
    )
    db.create_table("mileage_marks", {**key, **marks}, pk=tuple(key), not_null=list(marks))


def m022_live_drives(db: Database) -> None:
    # A live car's drive starts at its first mileage rise after parking (bot/drives.py): kept with its last
    # parked report until the drive settles, then with the drive. NULL: not known (every quiet car's).
    db.table("drive_marks").add_column("moved_at", float)
    db.table("drives").add_column("started_at", float)


def m023_charge_watch_level(db: Database) -> None:
    # The level at the watcher's last poll and when the car reported it: a level up since, plugged in, is an
    # i Remote charge that began and ended between two polls (docs/exactly-once-push.md), and an open session
    # may be one. NULL until the next poll, which then pushes nothing.
    db.table("charge_watches").add_column("soc_seen", int)
    db.table("charge_watches").add_column("seen_at", float)
    db.table("charge_watches").add_column("start_unseen", bool, not_null_default=0)


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
        m019_drives,
        m020_costs,
        m021_monthly_summary,
        m022_live_drives,
        m023_charge_watch_level,
    )
]
SCHEMA_VERSION = len(_STEPS)


# --- tables that follow their dataclass ---------------------------------------------------------------------
# An alert kind is a row of bot/alerts.py ALERT_SPECS; its switch, value and memory are fields of AlertPrefs
# and AlertState, and these tables' columns are those fields. So a new kind needs no migration: a missing
# column is added, at the field's default, each time the store opens (after the migrations).
FOLLOWED = {"alert_prefs": AlertPrefs, "alert_states": AlertState}


def follow_alert_fields(db: Database) -> None:
    for table, shape in FOLLOWED.items():
        have, hints = db.table(table).columns_dict, get_type_hints(shape)
        for field in fields(shape):
            if field.name in have:
                continue
            kinds = [
                t for t in getattr(hints[field.name], "__args__", (hints[field.name],)) if t is not type(None)
            ]
            default = None if field.default is MISSING else field.default
            db.table(table).add_column(field.name, kinds[0], not_null_default=default)
