"""bot.store on a real SQLite file in a temporary folder."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from sqlite_utils import Database

from bot.alerts import AlertPrefs, AlertState
from bot.cardata.models import TelematicValue, Tokens
from bot.cardata.storage import AccountCalls, CarDataLink, ChargeTrack, EndedCharge
from bot.costs import ChargePrice, Tariff
from bot.crypto import SecretKeyMismatch, Secrets, generate_secret_key
from bot.drives import Drive, Parked
from bot.history import ChargeSession
from bot.store import (
    _SECRET_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    ChargeWatch,
    CommandInFlight,
    LoginAttempts,
    NotifyPrefs,
    Store,
    StoredToken,
    StoredVehicle,
    StoreError,
)

ALICE, BOB = 1001, 2002
SECRETS = {
    "username": "alice.owner@example.org",
    "password": "Pa55-word-that-is-long",
    "access": "access-token-7f3a9c1e2b",
    "refresh": "refresh-token-5d8e0b4a61",
    "answer": "the-name-of-my-first-cat",
}
CARDATA_SECRETS = {
    "client_id": "cardata-client-id-9a7c",
    "access": "cardata-access-4f1e",
    "id": "cardata-id-token-b83d",
    "refresh": "cardata-refresh-2c6a",
}


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"  # the folder does not exist yet


@pytest.fixture
def key() -> str:
    return generate_secret_key()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_path: Path, key: str, clock: FakeClock) -> Iterator[Store]:
    with Store(db_path, [key], clock=clock) as opened:
        yield opened


def car(tg_id: int, vin: str, position: int = 0, **fields: object) -> StoredVehicle:
    values: dict[str, object] = {
        "model": "i3 94 (+REX)",
        "license_plate": "M-I 3000",
        "drive_train": "BEV_REX",
        "capabilities": frozenset({"climateNow", "chargeNow", "vehicleFinder"}),
    }
    values.update(fields)
    return StoredVehicle(tg_id=tg_id, vin=vin, position=position, **values)  # type: ignore[arg-type]


def link_alice(store: Store) -> None:
    store.upsert_user(ALICE, "Alice")
    store.save_account(ALICE, region="EU", username=SECRETS["username"], password=SECRETS["password"])
    store.save_token(ALICE, StoredToken(SECRETS["access"], SECRETS["refresh"], 1_700_000_000.5))
    store.save_security_answer(ALICE, SECRETS["answer"])
    store.save_vehicles(ALICE, [car(ALICE, "WBY1Z21000V000001"), car(ALICE, "WBY1Z21000V000002", 1)])


def link_alice_cardata(store: Store) -> None:
    """A CarData link of Alice's with a row in each CarData table."""
    c = CARDATA_SECRETS
    tokens = Tokens(c["access"], c["id"], c["refresh"], "gcid-alice", 1_700_003_600.0, 1_701_209_600.0)
    store.save_cardata_link(CarDataLink(ALICE, c["client_id"], tokens, "container-1"))
    assert store.spend_cardata_call("gcid-alice", ALICE, "2026-05-04", lambda calls: True, 1_000.0)
    store.save_cardata_state(ALICE, "WBY1Z21000V000001", {"k": TelematicValue("1").to_json()})
    store.save_cardata_track(ChargeTrack(ALICE, "WBY1Z21000V000001", status="CHARGINGACTIVE"))
    ended = EndedCharge(ALICE, "WBY1Z21000V000001", 500.0, 900.0, 40, 80, "complete", None, (48.1, 11.5))
    store.end_cardata_charge(ChargeTrack(ALICE, "WBY1Z21000V000001", last_event="ended:500"), ended)
    store.save_drive_mark(ALICE, "WBY1Z21000V000001", PARKED, DRIVE)


PARKED = Parked(at=2_000.0, mileage_km=23_421, soc=60, lat=48.2, lon=11.6)
DRIVE = Drive(ALICE, "WBY1Z21000V000001", 900.0, 2_000.0, 21, 80, 60, 7.58, 48.1, 11.5, 48.2, 11.6)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, plain connection to the file, as another process would open it."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def tables(conn: sqlite3.Connection) -> list[str]:
    return [
        name
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not name.startswith(("_", "sqlite_"))
    ]


# The one table about no user: a BMW account's count of the day's calls, kept whoever unlinks.
ACCOUNT_TABLES = {"cardata_account_calls"}


def rows_per_table(path: Path, tg_id: int) -> dict[str, int]:
    """Rows about `tg_id` in every table of the bot about users (all of them carry tg_id)."""
    with raw(path) as conn:
        tables_about_users = [t for t in tables(conn) if t not in ACCOUNT_TABLES]
        return {
            t: conn.execute(f"SELECT count(*) FROM {t} WHERE tg_id = ?", (tg_id,)).fetchone()[0]
            for t in tables_about_users
        }


# --- opening ------------------------------------------------------------------------------------------------


def test_open_creates_folder_private_file_in_wal_mode_at_current_schema(store: Store, db_path: Path) -> None:
    assert store.schema_version == SCHEMA_VERSION
    assert stat.S_IMODE(db_path.stat().st_mode) & 0o077 == 0
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert set(rows_per_table(db_path, 0)) == {
            "users",
            "accounts",
            "vehicles",
            "charge_watches",
            "login_attempts",
            "commands_in_flight",
            "cardata_accounts",
            "cardata_calls",
            "cardata_states",
            "cardata_tracks",
            "charge_sessions",
            "drives",
            "drive_marks",
            "mileage_marks",
            "alert_prefs",
            "alert_states",
            "shares",
            "share_invites",
            "tariffs",
            "charge_prices",
        }
        assert set(tables(conn)) - set(rows_per_table(db_path, 0)) == ACCOUNT_TABLES
        indexed = {row[1] for row in conn.execute("SELECT * FROM pragma_index_list('charge_watches')")}
        columns = {
            column
            for index in indexed
            for (column,) in conn.execute(f"SELECT name FROM pragma_index_info('{index}')")
        }
        assert "next_poll_at" in columns


def test_reopening_keeps_data_and_applies_nothing_twice(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as first:
        link_alice(first)
    with Store(db_path, [key]) as second:
        assert second.schema_version == SCHEMA_VERSION
        assert second.account(ALICE) is not None
        assert [v.vin for v in second.vehicles(ALICE)] == ["WBY1Z21000V000001", "WBY1Z21000V000002"]


@pytest.mark.parametrize(
    ("keys", "error"),
    [([], ValueError), (["not-a-fernet-key"], ValueError), ("one-string", TypeError)],
)
def test_bad_key_lists_are_refused(db_path: Path, keys: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        Store(db_path, keys)  # type: ignore[arg-type]


# --- round trips --------------------------------------------------------------------------------------------


def test_users_round_trip(store: Store) -> None:
    store.upsert_user(BOB, "Bob")
    store.upsert_user(ALICE, None)
    store.upsert_user(ALICE, "Alice")  # an update, not a second row
    assert store.user_ids() == [ALICE, BOB]


def test_account_round_trip_with_token_and_answer(store: Store) -> None:
    assert store.account(ALICE) is None
    link_alice(store)
    account = store.account(ALICE)
    assert account is not None
    assert (account.tg_id, account.region, account.username, account.password) == (
        ALICE,
        "EU",
        SECRETS["username"],
        SECRETS["password"],
    )
    assert account.token == StoredToken(SECRETS["access"], SECRETS["refresh"], 1_700_000_000.5)
    assert account.security_answer == SECRETS["answer"]

    store.save_token(ALICE, StoredToken("only-access", None, 5.0))
    store.save_security_answer(ALICE, None)
    account = store.account(ALICE)
    assert account is not None
    assert account.token == StoredToken("only-access", None, 5.0)
    assert account.security_answer is None
    store.save_token(ALICE, None)
    assert store.account(ALICE).token is None  # type: ignore[union-attr]


def test_token_and_answer_of_a_missing_account_are_not_stored(store: Store, db_path: Path) -> None:
    store.save_token(BOB, StoredToken("a", "r", 1.0))
    store.save_security_answer(BOB, "x")
    assert store.account(BOB) is None
    assert sum(rows_per_table(db_path, BOB).values()) == 0


def test_vehicles_round_trip_in_list_order(store: Store) -> None:
    second = car(
        ALICE, "VIN_B", 1, model=None, license_plate=None, drive_train=None, capabilities=frozenset()
    )
    first = car(ALICE, "VIN_Z", 0)
    store.save_vehicles(ALICE, [second, first])
    assert store.vehicles(ALICE) == [first, second]
    assert store.vehicle(ALICE, "VIN_B") == second
    assert store.vehicle(ALICE, "VIN_unknown") is None
    assert store.vehicles(BOB) == []


def test_save_vehicles_refuses_foreign_rows_and_duplicate_vins(store: Store) -> None:
    store.save_vehicles(ALICE, [car(ALICE, "VIN_A")])
    with pytest.raises(ValueError):
        store.save_vehicles(ALICE, [car(BOB, "VIN_B")])
    with pytest.raises(ValueError):
        store.save_vehicles(ALICE, [car(ALICE, "VIN_B"), car(ALICE, "VIN_B", 1)])
    assert [v.vin for v in store.vehicles(ALICE)] == ["VIN_A"]


def test_notify_prefs_default_until_saved(store: Store) -> None:
    assert store.notify_prefs(ALICE) == NotifyPrefs()
    chosen = NotifyPrefs(finished=False, started=True, interrupted=True)
    store.save_notify_prefs(ALICE, chosen)
    store.upsert_user(ALICE, "Alice")  # renaming keeps the choice
    assert store.notify_prefs(ALICE) == chosen
    assert store.notify_prefs(BOB) == NotifyPrefs()


def test_watch_round_trip(store: Store) -> None:
    store.save_vehicles(ALICE, [car(ALICE, "VIN_A")])
    saved = ChargeWatch(
        vin="VIN_A",
        tg_id=ALICE,
        charging_status="CHARGING",
        connection_status="CONNECTED",
        charging_since=1234.5,
        soc_at_start=31,
        last_event="started:1234.5",
        next_poll_at=2000.0,
        failures=2,
        soc_seen=31,
        seen_at=1234.5,
        start_unseen=True,
    )
    store.save_watch(saved)
    assert store.watch(ALICE, "VIN_A") == saved
    assert store.watch(BOB, "VIN_A") is None
    assert store.watched_count() == 1


# --- linking, selection, watches ----------------------------------------------------------------------------


def test_linking_creates_due_watches_and_keeps_state_of_cars_that_stay(
    store: Store, clock: FakeClock
) -> None:
    store.save_vehicles(ALICE, [car(ALICE, "VIN_A"), car(ALICE, "VIN_B", 1)])
    assert [(w.vin, w.next_poll_at, w.failures) for w in store.watches_due(clock.now)] == [
        ("VIN_A", clock.now, 0),
        ("VIN_B", clock.now, 0),
    ]
    charging = ChargeWatch("VIN_A", ALICE, "CHARGING", "CONNECTED", 900.0, 40, "started:900.0", 1060.0, 0)
    store.save_watch(charging)

    clock.now = 1_500.0
    store.save_vehicles(ALICE, [car(ALICE, "VIN_A"), car(ALICE, "VIN_C", 1)])
    assert store.watch(ALICE, "VIN_A") == charging
    assert store.watch(ALICE, "VIN_B") is None
    assert store.watch(ALICE, "VIN_C") == ChargeWatch(
        "VIN_C", ALICE, None, None, None, None, None, 1_500.0, 0
    )
    assert store.watched_count() == 2


def test_save_watch_does_not_resurrect_an_unlinked_car(store: Store) -> None:
    store.save_vehicles(ALICE, [car(ALICE, "VIN_A")])
    stale = store.watch(ALICE, "VIN_A")
    assert stale is not None
    store.save_vehicles(ALICE, [])
    store.save_watch(stale)
    store.save_watch(ChargeWatch("VIN_A", BOB, None, None, None, None, None, 0.0, 0))
    assert store.watch(ALICE, "VIN_A") is None
    assert store.watched_count() == 0


def session(tg_id: int, vin: str, started_at: float, **fields: object) -> ChargeSession:
    values: dict[str, object] = {
        "ended_at": started_at + 3600,
        "soc_start": 40.0,
        "soc_end": 80.0,
        "energy_kwh": 10.88,
        "ended": "full",
        "reason": "CHARGING_GOAL_REACHED",
        "lat": 48.1,
        "lon": 11.5,
        "source": "iremote",
    }
    values.update(fields)
    return ChargeSession(tg_id=tg_id, vin=vin, started_at=started_at, **values)  # type: ignore[arg-type]


def test_a_session_saved_with_a_watch_is_recorded_once_for_a_linked_car_only(store: Store) -> None:
    store.save_vehicles(ALICE, [car(ALICE, "VIN_A")])
    watch = store.watch(ALICE, "VIN_A")
    assert watch is not None
    first, later = session(ALICE, "VIN_A", 1000.0), session(ALICE, "VIN_A", 9000.0, lat=None, lon=None)
    store.save_watch(watch, first)
    store.save_watch(watch, session(ALICE, "VIN_A", 1000.0, soc_end=90.0))  # the same session again
    store.save_watch(watch, later)
    store.save_watch(watch, session(BOB, "VIN_A", 5000.0))  # not Bob's car
    assert store.charge_sessions(ALICE, "VIN_A") == [later, first]  # newest first, the first record kept
    assert store.charge_sessions(BOB, "VIN_A") == []
    store.save_vehicles(ALICE, [])
    store.save_watch(watch, session(ALICE, "VIN_A", 20000.0))  # unlinked meanwhile: no orphan
    assert len(store.charge_sessions(ALICE, "VIN_A")) == 2


def test_two_users_can_link_the_same_car(store: Store) -> None:
    store.save_vehicles(ALICE, [car(ALICE, "SHARED")])
    store.save_vehicles(BOB, [car(BOB, "SHARED")])
    store.save_watch(ChargeWatch("SHARED", BOB, "CHARGING", None, None, None, None, 5.0, 0))
    assert store.watch(ALICE, "SHARED").charging_status is None  # type: ignore[union-attr]
    store.delete_user(BOB)
    assert store.vehicle(ALICE, "SHARED") is not None
    assert store.watch(ALICE, "SHARED") is not None


def test_selected_vin_falls_back_to_first_car_and_refuses_foreign_vins(store: Store) -> None:
    assert store.selected_vin(ALICE) is None
    store.save_vehicles(ALICE, [car(ALICE, "VIN_2", 1), car(ALICE, "VIN_1", 0)])
    store.save_vehicles(BOB, [car(BOB, "VIN_BOB")])
    assert store.selected_vin(ALICE) == "VIN_1"

    assert store.select_vin(ALICE, "VIN_2") is True
    assert store.selected_vin(ALICE) == "VIN_2"
    assert store.select_vin(ALICE, "VIN_BOB") is False
    assert store.select_vin(ALICE, "NO_SUCH_VIN") is False
    assert store.selected_vin(ALICE) == "VIN_2"
    assert store.selected_vin(BOB) == "VIN_BOB"

    store.save_vehicles(ALICE, [car(ALICE, "VIN_1"), car(ALICE, "VIN_3", 1)])  # the chosen car went away
    assert store.selected_vin(ALICE) == "VIN_1"
    store.save_vehicles(ALICE, [car(ALICE, "VIN_1"), car(ALICE, "VIN_3", 1), car(ALICE, "VIN_2", 2)])
    assert store.selected_vin(ALICE) == "VIN_1"  # and does not come back selected


def test_watches_due_most_overdue_first_with_limit(store: Store) -> None:
    store.save_vehicles(ALICE, [car(ALICE, vin, i) for i, vin in enumerate(["A", "B", "C", "D"])])
    store.save_vehicles(BOB, [car(BOB, "A")])
    for tg_id, vin, at in [(ALICE, "A", 30.0), (ALICE, "B", 10.0), (ALICE, "C", 50.0), (ALICE, "D", 20.0)]:
        store.save_watch(ChargeWatch(vin, tg_id, None, None, None, None, None, at, 0))
    store.save_watch(ChargeWatch("A", BOB, None, None, None, None, None, 10.0, 0))

    def due(now: float, limit: int | None = None) -> list[tuple[int, str]]:
        return [(w.tg_id, w.vin) for w in store.watches_due(now, limit)]

    assert due(30.0) == [(ALICE, "B"), (BOB, "A"), (ALICE, "D"), (ALICE, "A")]
    assert due(30.0, limit=2) == [(ALICE, "B"), (BOB, "A")]
    assert due(9.9) == []
    assert len(due(1e12)) == store.watched_count() == 5


# --- replacing and deleting ---------------------------------------------------------------------------------


def test_save_account_replaces_everything_of_the_old_account(store: Store) -> None:
    link_alice(store)
    store.select_vin(ALICE, "WBY1Z21000V000002")
    prefs = NotifyPrefs(started=True)
    store.save_notify_prefs(ALICE, prefs)
    store.save_vehicles(BOB, [car(BOB, "WBY1Z21000V000001")])

    store.save_account(ALICE, region="US", username="new@example.org", password="new password")
    account = store.account(ALICE)
    assert account is not None
    assert (account.region, account.username, account.password) == ("US", "new@example.org", "new password")
    assert account.token is None and account.security_answer is None
    assert store.vehicles(ALICE) == [] and store.selected_vin(ALICE) is None
    assert store.watch(ALICE, "WBY1Z21000V000001") is None
    assert store.notify_prefs(ALICE) == prefs  # a user setting, not part of the account
    assert store.watch(BOB, "WBY1Z21000V000001") is not None
    # The same cars on the new account: the old choice does not come back.
    store.save_vehicles(ALICE, [car(ALICE, "WBY1Z21000V000001"), car(ALICE, "WBY1Z21000V000002", 1)])
    assert store.selected_vin(ALICE) == "WBY1Z21000V000001"


def test_delete_user_removes_every_row_of_that_user_only(store: Store, db_path: Path) -> None:
    link_alice(store)
    link_alice_cardata(store)
    store.save_notify_prefs(ALICE, NotifyPrefs(interrupted=True))
    store.select_vin(ALICE, "WBY1Z21000V000002")
    store.upsert_user(BOB, "Bob")
    store.save_account(BOB, region="EU", username="bob@example.org", password="bob's password")
    store.save_vehicles(BOB, [car(BOB, "WBY1Z21000V000001"), car(BOB, "WBY1Z21000V000009", 1)])
    alice_subject, email_subject = store.login_subjects(ALICE, SECRETS["username"])
    for subject in (alice_subject, email_subject, *store.login_subjects(BOB)):
        store.save_login_attempts(subject, LoginAttempts(1, None, 1e12), 0.0)
    store.begin_command(ALICE, "WBY1Z21000V000001", "DOOR_LOCK", ALICE, 7)
    store.save_alert_prefs(ALICE, AlertPrefs(level_on=True))
    store.save_alert_state(ALICE, "WBY1Z21000V000001", AlertState(parked_at=1.0))
    store.mark_mileage(ALICE, "WBY1Z21000V000001", "2026-11", 1.0, 1000.0)
    store.mark_mileage(BOB, "WBY1Z21000V000001", "2026-11", 1.0, 1000.0)
    assert store.open_invite("hash", ALICE, "WBY1Z21000V000001", 1e12, limit=5)
    assert store.open_invite("hash-bob", BOB, "WBY1Z21000V000009", 1e12, limit=5)
    assert store.take_invite("hash-bob", ALICE, "Alice") is not None  # she sees Bob's car
    assert store.open_invite("hash-bob-2", BOB, "WBY1Z21000V000001", 1e12, limit=5)
    for tg_id in (ALICE, BOB):
        store.save_tariff(tg_id, Tariff(1.0, 0.3, "EUR"))
    store.save_charge_price(ALICE, "WBY1Z21000V000002", ChargePrice(1.0, 0.59, "EUR"))
    alice_before = rows_per_table(db_path, ALICE)
    bob_before = rows_per_table(db_path, BOB)
    assert all(alice_before.values()), alice_before  # she has rows in every table

    store.delete_user(ALICE)
    assert set(rows_per_table(db_path, ALICE).values()) == {0}
    # BMW's count of her account's calls goes on: a new link the same day must not find it reset.
    assert store.cardata_calls("gcid-alice", ALICE, "2026-05-04") == AccountCalls(
        total=1, first_call_at=1_000.0
    )
    assert rows_per_table(db_path, BOB) == bob_before
    assert store.user_ids() == [BOB]
    assert store.account(ALICE) is None and store.notify_prefs(ALICE) == NotifyPrefs()
    # The e-mail's count is nobody's row: unlinking does not reset it for whoever tries that e-mail next.
    assert store.login_attempts(email_subject, 0.0).failures == 1


def test_alert_memory_is_kept_for_linked_cars_only(store: Store) -> None:
    link_alice(store)
    first, second = "WBY1Z21000V000001", "WBY1Z21000V000002"
    state = AlertState(charge_since=5.0, charge_soc_at_start=40.0, charged_on_plug=True, done_open="open:1")
    store.save_alert_state(ALICE, first, state)
    store.save_alert_state(ALICE, second, AlertState(parked_at=3.0))
    store.save_alert_state(ALICE, "WBY1Z21000V000009", AlertState(parked_at=3.0))  # not hers: ignored
    store.save_alert_prefs(ALICE, AlertPrefs(level_on=True, stall_on=False, plug_minute=22 * 60))
    assert (
        store.alert_state(ALICE, first) == state and store.alert_state(ALICE, first).charged_on_plug is True
    )
    assert store.alert_state(ALICE, "WBY1Z21000V000009") == AlertState()
    assert store.alert_prefs(ALICE) == AlertPrefs(level_on=True, stall_on=False, plug_minute=22 * 60)
    assert store.alert_prefs(BOB) == AlertPrefs()
    states, prefs = store.alerts_due(1e12)
    assert states == {(ALICE, first): state, (ALICE, second): AlertState(parked_at=3.0)}
    assert prefs == {ALICE: store.alert_prefs(ALICE)}
    assert store.alerts_due(-1.0) == ({}, {})  # no watch due
    store.save_vehicles(ALICE, [car(ALICE, first)])  # the second car left the account: its memory goes
    assert store.alert_state(ALICE, second) == AlertState() and store.alert_state(ALICE, first) == state


# --- secrets ------------------------------------------------------------------------------------------------


def test_the_cardata_relink_ask_is_marked_once_and_a_new_link_clears_it(store: Store) -> None:
    assert not store.mark_cardata_relink_asked(ALICE)  # no link: nothing to mark
    link_alice_cardata(store)
    assert store.mark_cardata_relink_asked(ALICE) and not store.mark_cardata_relink_asked(ALICE)
    assert store.mark_cardata_relink_asked(ALICE, asked=False)  # the push failed: ask again later
    assert store.mark_cardata_relink_asked(ALICE)
    link = store.cardata_link(ALICE)
    assert link is not None
    store.save_cardata_link(link)  # a new link
    assert store.mark_cardata_relink_asked(ALICE)


def test_a_blocked_stream_is_told_once_per_reason_until_it_flows(store: Store) -> None:
    assert not store.mark_cardata_stream_block_told(ALICE, "held")  # no link: nothing to mark
    link_alice_cardata(store)
    assert store.mark_cardata_stream_block_told(ALICE, "held")
    assert not store.mark_cardata_stream_block_told(ALICE, "held")  # told already (a restart's refusal)
    assert store.mark_cardata_stream_block_told(ALICE, "not_configured")  # a new reason is news
    assert store.mark_cardata_stream_block_told(ALICE, None)  # it flows: the next episode is told
    assert not store.mark_cardata_stream_block_told(ALICE, None)
    assert store.mark_cardata_stream_block_told(ALICE, "not_configured")


def test_an_owner_told_of_a_held_stream_before_m016_is_not_told_again(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as store:
        link_alice_cardata(store)
    with Database(db_path) as db:  # as m014 left it: told, reason unknown
        db.execute("UPDATE cardata_accounts SET stream_held_told_at = 1.0, stream_block_told = NULL")
        db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm016_cardata_stream_block_told'")
        db.execute("ALTER TABLE cardata_accounts DROP COLUMN stream_block_told")
    with Store(db_path, [key]) as store:
        assert not store.mark_cardata_stream_block_told(ALICE, "held")
        assert store.mark_cardata_stream_block_told(ALICE, "not_configured")


def test_no_secret_is_ever_written_in_plain_text(db_path: Path, key: str) -> None:
    wal = db_path.with_name(db_path.name + "-wal")
    needles = [value.encode() for value in [*SECRETS.values(), *CARDATA_SECRETS.values()]]

    def assert_clean(path: Path) -> None:
        data = path.read_bytes()
        assert data, path
        assert [n for n in needles if n in data] == []

    store = Store(db_path, [key])
    link_alice(store)
    link_alice_cardata(store)
    store.save_account(BOB, region="EU", username=SECRETS["username"], password=SECRETS["password"])
    link_alice(store)  # ends with her cars, written after the last checkpoint
    assert b"WBY1Z21000V000001" in wal.read_bytes()  # the writes really are in the WAL being checked
    assert_clean(wal)
    assert_clean(db_path)
    store.close()  # checkpoints the WAL into the main file
    assert_clean(db_path)
    assert b"WBY1Z21000V000001" in db_path.read_bytes()


def test_a_changed_key_is_reported_at_open(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as store:
        link_alice(store)
    other = generate_secret_key()
    with pytest.raises(SecretKeyMismatch, match="key changed") as raised:
        Store(db_path, [other])
    assert other not in str(raised.value) and key not in str(raised.value)


def test_any_key_opens_a_database_without_secrets(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as store:
        store.upsert_user(ALICE, "Alice")
    with Store(db_path, [generate_secret_key()]) as store:
        assert store.user_ids() == [ALICE]


def test_rotation_moves_every_secret_to_the_first_key(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as store:
        link_alice(store)
        link_alice_cardata(store)
        store.save_account(BOB, region="EU", username="bob@example.org", password="bob's password")
    new = generate_secret_key()

    with Store(db_path, [new, key]) as store:
        assert store.account(ALICE).password == SECRETS["password"]  # type: ignore[union-attr]
        store.save_security_answer(BOB, "written with the new key")
        assert store.rotate() == 5 + 4 + 2  # Alice's five secrets and four CarData ones, Bob's two
        assert store.rotate() == 0

    with Store(db_path, [new]) as store:
        alice = store.account(ALICE)
        assert alice is not None
        assert (alice.username, alice.password, alice.security_answer) == (
            SECRETS["username"],
            SECRETS["password"],
            SECRETS["answer"],
        )
        assert alice.token == StoredToken(SECRETS["access"], SECRETS["refresh"], 1_700_000_000.5)
        assert store.account(BOB).security_answer == "written with the new key"  # type: ignore[union-attr]
        cardata = store.cardata_link(ALICE)
        assert cardata is not None and cardata.client_id == CARDATA_SECRETS["client_id"]
        assert cardata.tokens.id_token == CARDATA_SECRETS["id"]
    with pytest.raises(SecretKeyMismatch):
        Store(db_path, [key])


def ciphertexts(path: Path, tg_id: int | None = None) -> list[str]:
    """Every encrypted value stored (for one user, or for all), as it is in the file now."""
    where, params = ("WHERE tg_id = ?", (tg_id,)) if tg_id is not None else ("", ())
    with raw(path) as conn:
        rows = conn.execute(f"SELECT {', '.join(_SECRET_COLUMNS)} FROM accounts {where}", params).fetchall()
    return [value for row in rows for value in row if value is not None]


def assert_gone_from_disk(path: Path, values: list[str]) -> None:
    """None of `values` (nor a long piece of one) is in the database, its -wal or its -shm."""
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    found = {f.name: f.read_bytes() for f in files if f.exists()}
    assert values and found[path.name]
    pieces = [piece.encode() for value in values for piece in (value, value[20:60])]
    left = [name for name, data in found.items() if any(piece in data for piece in pieces)]
    assert left == [], "a removed secret is still on disk"


def test_forgotten_answer_and_replaced_account_leave_no_trace_on_disk(store: Store, db_path: Path) -> None:
    link_alice(store)
    store.upsert_user(BOB, "Bob")
    store.save_account(BOB, region="EU", username="bob@example.org", password="bob's password")
    answer = [v for v in ciphertexts(db_path, ALICE) if store.secrets.decrypt(v) == SECRETS["answer"]]
    bob = ciphertexts(db_path, BOB)

    store.save_security_answer(ALICE, None)
    assert store.account(ALICE).security_answer is None  # type: ignore[union-attr]
    assert_gone_from_disk(db_path, answer)
    old = ciphertexts(db_path, ALICE)
    store.save_account(ALICE, region="US", username="new@example.org", password="new password")
    assert_gone_from_disk(db_path, old)
    assert store.account(BOB).password == "bob's password"  # type: ignore[union-attr]
    assert all(value.encode() in db_path.read_bytes() for value in bob)  # the others are still there
    store.delete_user(BOB)
    assert_gone_from_disk(db_path, bob)


def test_rotation_leaves_no_secret_under_the_old_key_on_disk(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as store:
        link_alice(store)
    new = generate_secret_key()
    with Store(db_path, [new, key]) as store:
        old = ciphertexts(db_path)
        assert store.rotate() == 5
        assert_gone_from_disk(db_path, old)


def test_commands_in_flight_round_trip(store: Store, clock: FakeClock) -> None:
    link_alice(store)
    store.begin_command(ALICE, "WBY1Z21000V000001", "DOOR_LOCK", 55, 7)
    clock.now += 5
    store.begin_command(ALICE, "WBY1Z21000V000002", "CLIMATE_NOW", 55, 9)
    store.command_sent(ALICE, "WBY1Z21000V000002", "EVENT-2@bmw.de")
    assert store.commands_in_flight() == [
        CommandInFlight(ALICE, "WBY1Z21000V000001", "DOOR_LOCK", 55, 7, 1_000.0, None),
        CommandInFlight(ALICE, "WBY1Z21000V000002", "CLIMATE_NOW", 55, 9, 1_005.0, "EVENT-2@bmw.de"),
    ]
    store.end_command(ALICE, "WBY1Z21000V000001")
    assert [c.vin for c in store.commands_in_flight()] == ["WBY1Z21000V000002"]


# --- migrations ---------------------------------------------------------------------------------------------


def applied_migrations(path: Path) -> list[str]:
    with raw(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM _sqlite_migrations ORDER BY rowid")]


def test_an_empty_database_file_is_migrated_from_version_0(db_path: Path, key: str) -> None:
    db_path.parent.mkdir()
    sqlite3.connect(db_path).close()
    with Store(db_path, [key]) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert applied_migrations(db_path) == [
        "m001_users_accounts_vehicles",
        "m002_charge_watches",
        "m003_login_attempts_and_refusals",
        "m004_commands_in_flight",
        "m005_cardata",
        "m006_charge_sessions",
        "m007_alerts",
        "m008_user_settings",
        "m009_account_backends",
        "m010_cardata_relink_asked",
        "m011_cardata_calls_per_account",
        "m012_cardata_first_call",
        "m013_cardata_last_report",
        "m014_cardata_stream_held_told",
        "m015_cardata_late_read",
        "m016_cardata_stream_block_told",
        "m017_shares",
        "m019_drives",
        "m020_costs",
        "m021_monthly_summary",
        "m022_live_drives",
        "m023_charge_watch_level",
    ]


def test_a_version_1_database_is_upgraded_and_its_cars_get_watches(db_path: Path, key: str) -> None:
    db_path.parent.mkdir()
    with Database(db_path) as old:
        MIGRATIONS.apply(old, stop_before="m002_charge_watches")
        old.execute("INSERT INTO users (tg_id, first_name) VALUES (?, 'Alice')", (ALICE,))
        old.execute(
            "INSERT INTO vehicles (tg_id, vin, capabilities, position)"
            " VALUES (?, 'VIN_OLD', '[\"chargeNow\"]', 0)",
            (ALICE,),
        )
    assert applied_migrations(db_path) == ["m001_users_accounts_vehicles"]

    with Store(db_path, [key]) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.vehicle(ALICE, "VIN_OLD") == car(
            ALICE,
            "VIN_OLD",
            model=None,
            license_plate=None,
            drive_train=None,
            capabilities=frozenset({"chargeNow"}),
        )
        assert [(w.tg_id, w.vin) for w in store.watches_due(0.0)] == [(ALICE, "VIN_OLD")]
    assert applied_migrations(db_path)[:2] == ["m001_users_accounts_vehicles", "m002_charge_watches"]


def test_m011_sums_the_owners_day_counts_into_their_bmw_accounts(db_path: Path, key: str) -> None:
    db_path.parent.mkdir()
    encrypted = Secrets([key]).encrypt("secret")
    with Database(db_path) as old:
        MIGRATIONS.apply(old, stop_before="m011_cardata_calls_per_account")
        for tg_id, gcid in ((ALICE, "gcid-home"), (BOB, "gcid-home"), (3003, "gcid-other")):
            old.execute(
                "INSERT INTO cardata_accounts (tg_id, client_id_enc, gcid, access_token_enc, id_token_enc,"
                " refresh_token_enc, expires_at, refresh_expires_at) VALUES (?, ?, ?, ?, ?, ?, 0, 0)",
                (tg_id, encrypted, gcid, encrypted, encrypted, encrypted),
            )
        old["cardata_calls"].insert_all(
            [
                {"tg_id": ALICE, "day": "2026-05-04", "calls": 30},  # co-owners: distinct calls, one quota
                {"tg_id": BOB, "day": "2026-05-04", "calls": 12},
                {"tg_id": ALICE, "day": "2026-05-05", "calls": 50},  # BMW's CU-429 marked both spent
                {"tg_id": BOB, "day": "2026-05-05", "calls": 50},
                {"tg_id": 3003, "day": "2026-05-04", "calls": 5},
                {"tg_id": 4004, "day": "2026-05-04", "calls": 9},  # unlinked: of no known account
            ]
        )
    with Store(db_path, [key]) as store:
        assert store.cardata_calls("gcid-home", ALICE, "2026-05-04") == AccountCalls(42, 30, (12,))
        assert store.cardata_calls("gcid-home", BOB, "2026-05-05") == AccountCalls(
            50, 50, (50,), day_before=42
        )
        assert store.cardata_calls("gcid-other", 3003, "2026-05-04") == AccountCalls(5, 5, ())
        assert rows_per_table(db_path, 4004)["cardata_calls"] == 0


def test_a_database_from_a_newer_bot_is_refused(db_path: Path, key: str) -> None:
    Store(db_path, [key]).close()
    with raw(db_path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, 'm999_future', 'x')",
            (MIGRATIONS.name,),
        )
    with pytest.raises(StoreError, match="newer version"):
        Store(db_path, [key])


# --- concurrency --------------------------------------------------------------------------------------------


def test_threads_share_one_store(store: Store) -> None:
    users_per_thread, threads = 40, 8
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(offset: int) -> None:
        try:
            start.wait()
            for tg_id in range(offset, offset + users_per_thread):
                store.upsert_user(tg_id, f"user {tg_id}")
                store.save_account(tg_id, region="EU", username=f"{tg_id}@example.org", password=f"pw{tg_id}")
                store.save_vehicles(tg_id, [car(tg_id, f"VIN{tg_id}"), car(tg_id, "SHARED", 1)])
                assert store.select_vin(tg_id, "SHARED")
                store.watches_due(1e12, limit=10)
                assert store.account(tg_id).password == f"pw{tg_id}"  # type: ignore[union-attr]
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i * users_per_thread,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    total = users_per_thread * threads
    assert store.user_ids() == list(range(total))
    assert store.watched_count() == 2 * total
    assert all(store.selected_vin(tg_id) == "SHARED" for tg_id in range(total))


async def test_event_loop_and_worker_threads_interleave(store: Store) -> None:
    store.upsert_user(ALICE, "Alice")
    store.save_vehicles(ALICE, [car(ALICE, f"VIN{i}", i) for i in range(20)])

    def poll_in_thread(vin: str) -> None:
        for failures in range(25):
            store.save_watch(ChargeWatch(vin, ALICE, "CHARGING", None, None, None, None, 1.0, failures))

    async def chat_on_loop() -> None:
        for i in range(100):
            store.upsert_user(BOB, f"Bob {i}")
            assert len(store.vehicles(ALICE)) == 20
            await asyncio.sleep(0)

    await asyncio.gather(chat_on_loop(), *(asyncio.to_thread(poll_in_thread, f"VIN{i}") for i in range(20)))
    assert {w.failures for w in store.watches_due(1.0)} == {24}
    assert store.user_ids() == [ALICE, BOB]


# --- refused logins -----------------------------------------------------------------------------------------


def test_login_attempts_count_an_e_mail_whatever_its_case_and_store_no_e_mail(
    store: Store, db_path: Path, key: str
) -> None:
    [alice] = store.login_subjects(ALICE)
    _, email = store.login_subjects(ALICE, "Alice.Owner@Example.org")
    assert store.login_subjects(BOB, " alice.owner@example.org")[1] == email  # one e-mail, one subject
    assert store.login_attempts(email, 0.0) == LoginAttempts()
    store.save_login_attempts(email, LoginAttempts(3, 900.0, 2_000.0), 0.0)
    store.save_login_attempts(alice, LoginAttempts(1, None, 1_000.0), 0.0)
    assert store.login_attempts(email, 1_500.0) == LoginAttempts(3, 900.0, 2_000.0)
    assert store.login_attempts(email, 2_000.0) == LoginAttempts()  # forgotten from forget_at on
    store.save_login_attempts(alice, LoginAttempts(2, None, 9_000.0), 2_000.0)  # writing prunes the old
    with raw(db_path) as conn:
        assert conn.execute("SELECT subject FROM login_attempts").fetchall() == [(alice,)]
    store.save_login_attempts(email, LoginAttempts(1, None, 9_000.0), 2_000.0)
    store.forget_login_attempts([alice, email])
    assert store.login_attempts(alice, 0.0) == store.login_attempts(email, 0.0) == LoginAttempts()
    wal = db_path.with_name(db_path.name + "-wal")
    written = db_path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert b"example.org" not in written.lower()
    # The hash is keyed: another BOT_SECRET_KEY gives another subject for the same e-mail.
    with Store(db_path.with_name("other.sqlite3"), [generate_secret_key()]) as other:
        assert other.login_subjects(ALICE, "alice.owner@example.org")[1] != email


def test_refusals_of_the_stored_password_mark_the_account_once_and_stop_its_watches(store: Store) -> None:
    link_alice(store)
    store.save_vehicles(BOB, [car(BOB, "WBY1Z21000V000001")])
    assert store.password_refusals(ALICE) == (0, False)
    assert store.count_password_refusal(ALICE, 3) is False
    store.clear_password_refusals(ALICE)  # BMW took it again: the count starts over
    assert [store.count_password_refusal(ALICE, 3) for _ in range(5)] == [False, False, True, False, False]
    assert store.password_refusals(ALICE) == (5, True)
    store.clear_password_refusals(ALICE)  # a marked account waits for a re-link, whatever happens
    assert store.password_refusals(ALICE) == (5, True)
    assert {w.tg_id for w in store.watches_due(1e12)} == {BOB}

    store.save_account(ALICE, region="EU", username=SECRETS["username"], password="new password")
    store.save_vehicles(ALICE, [car(ALICE, "WBY1Z21000V000001")])
    assert store.password_refusals(ALICE) == (0, False)
    assert {w.tg_id for w in store.watches_due(1e12)} == {ALICE, BOB}
    assert store.count_password_refusal(BOB, 1) is False  # no account: nothing to mark


STORE_PACKAGE = Path(__file__).resolve().parent.parent / "bot" / "store"
STORE_MODULES = {
    "records",
    "schema",
    "connection",
    "accounts",
    "vehicles",
    "prefs",
    "charging",
    "commands",
    "shares",
    "cardata",
}


def test_the_store_is_rooms_a_reader_can_hold() -> None:
    """One module per area composed into Store (issue 18, point 5): none over ~600 lines (the house's limit,
    tests/test_names.py; schema.py, the migrations' log, grows with each), none that reaches Telegram or
    HTTP."""
    modules = {path.stem: path.read_text() for path in STORE_PACKAGE.glob("*.py")}
    assert modules.keys() >= STORE_MODULES
    assert {name: text.count("\n") for name, text in modules.items() if text.count("\n") > 600} == {}
    outside = re.compile(r"^(?:from|import) (?:telegram|httpx)\b", re.MULTILINE)
    assert [name for name, text in modules.items() if outside.search(text)] == []


def test_a_drive_is_recorded_once_with_its_mark_across_a_reopening(db_path: Path, key: str) -> None:
    with Store(db_path, [key]) as store:
        link_alice_cardata(store)
        store.save_drive_mark(ALICE, DRIVE.vin, PARKED, DRIVE)  # the same report decided again
        charged = Drive(BOB, DRIVE.vin, 2_000.0, 3_000.0, 5, None, 58, None, 48.2, 11.6, 48.3, 11.7, True)
        store.save_drive_mark(BOB, DRIVE.vin, PARKED, charged)  # Bob has no CarData link: nothing of his
    with Store(db_path, [key]) as store:
        assert store.drives(ALICE, DRIVE.vin) == [DRIVE]
        assert store.drive_mark(ALICE, DRIVE.vin) == PARKED
        assert store.drives(BOB, DRIVE.vin) == [] and store.drive_mark(BOB, DRIVE.vin) is None
        store.save_drive_mark(ALICE, DRIVE.vin, replace(PARKED, at=3_000.0), replace(charged, tg_id=ALICE))
        assert store.drives(ALICE, DRIVE.vin) == [replace(charged, tg_id=ALICE), DRIVE]
        assert store.drives(ALICE, DRIVE.vin, since=2_500.0) == [replace(charged, tg_id=ALICE)]


def test_a_car_gone_from_a_relinked_account_takes_its_shares_and_invitations_along(store: Store) -> None:
    """Were the car linked again one day, nobody would see it without a new invitation."""
    owner, member = 1, 2
    store.save_vehicles(owner, [car(owner, "WBY_KEPT"), car(owner, "WBY_GONE", 1)])
    for vin, token in (("WBY_KEPT", "kept"), ("WBY_GONE", "gone")):
        assert store.open_invite(f"{token}-1", owner, vin, store._clock() + 3600, limit=5)
        assert store.open_invite(f"{token}-2", owner, vin, store._clock() + 3600, limit=5)
        assert store.take_invite(f"{token}-1", member, "Max") is not None

    store.save_vehicles(owner, [car(owner, "WBY_KEPT")])  # linked again: the account has one car now
    assert [s.vin for s in store.members(owner, "WBY_KEPT")] == ["WBY_KEPT"]
    assert store.invite("kept-2") == (owner, "WBY_KEPT")
    store.save_vehicles(owner, [car(owner, "WBY_KEPT"), car(owner, "WBY_GONE", 1)])  # and back again
    assert store.members(owner, "WBY_GONE") == []
    assert store.invite("gone-2") is None


def test_a_new_alert_kinds_switch_value_and_memory_need_no_migration(db_path: Path, key: str) -> None:
    """The alert tables follow AlertPrefs and AlertState (docs/where-to-change.md, "A new alert kind"): a
    database made before a field existed gains its column, at the field's default, when the store opens."""
    with Store(db_path, [key]) as store:
        store.save_vehicles(1, [car(1, "VIN1")])
        store.save_alert_prefs(1, replace(AlertPrefs(), level_on=True))
        store.save_alert_state(1, "VIN1", replace(AlertState(), done_level="x"))
    db = Database(db_path)
    for table, column in (("alert_prefs", "monthly_on"), ("alert_states", "done_monthly")):
        db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")  # as made before the monthly summary
    db.close()
    with Store(db_path, [key]) as store:
        assert store.alert_prefs(1) == replace(AlertPrefs(), level_on=True)
        assert store.alert_state(1, "VIN1") == replace(AlertState(), done_level="x")
        store.save_alert_prefs(1, replace(AlertPrefs(), monthly_on=True))
        store.save_alert_state(1, "VIN1", replace(AlertState(), done_monthly="2026-11"))
        assert store.alert_prefs(1).monthly_on and store.alert_state(1, "VIN1").done_monthly == "2026-11"
