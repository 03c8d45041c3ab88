"""Store speed with 10,000 linked users, each operation as a ratio to bare sqlite3 on the same rows.

    .venv/bin/python benchmarks/store_ops.py [--users N] [--due-queries N]

Both sides write a file in WAL mode with synchronous=NORMAL and one transaction per operation, so a ratio is
the price of the store's own work: Fernet, sqlite-utils, the lock, dataclasses, the cleanup statements of
save_account and the watch rows of save_vehicles. The baseline is measured in the same run, same machine.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet

from benchmarks.report import result
from bot.crypto import generate_secret_key
from bot.store import Store, StoredVehicle

DUE_LIMIT = 100
T = TypeVar("T")


def per_op(items: Sequence[T], op: Callable[[T], object]) -> float:
    """Mean seconds per call of `op` over `items`."""
    started = time.perf_counter()
    for item in items:
        op(item)
    return (time.perf_counter() - started) / len(items)


def vin(tg_id: int) -> str:
    return f"WBY1Z2100{tg_id:08d}"


def bare_database(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT, one transaction per op
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(
        """
        CREATE TABLE accounts (tg_id INTEGER PRIMARY KEY, region TEXT, username TEXT, password TEXT);
        CREATE TABLE vehicles (tg_id INTEGER, vin TEXT, model TEXT, license_plate TEXT, drive_train TEXT,
            capabilities TEXT, position INTEGER, PRIMARY KEY (tg_id, vin));
        CREATE TABLE watches (tg_id INTEGER, vin TEXT, charging_status TEXT, connection_status TEXT,
            charging_since FLOAT, soc_at_start INTEGER, last_event TEXT, next_poll_at FLOAT, failures INTEGER,
            PRIMARY KEY (tg_id, vin));
        CREATE INDEX watches_due ON watches (next_poll_at, tg_id, vin);
        """
    )
    return conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--due-queries", type=int, default=1_000)
    args = parser.parse_args()
    users = list(range(1, args.users + 1))
    rng = random.Random(3)
    due_at = [rng.uniform(0, args.users) for _ in range(args.due_queries)]
    lookups = rng.sample(users, len(users))
    results: list[tuple[str, float, float]] = []

    with tempfile.TemporaryDirectory() as folder:
        # Linking user i at clock i spreads the watches' next_poll_at, as a running watcher does.
        clock = 0.0
        store = Store(Path(folder) / "store.sqlite3", [generate_secret_key()], clock=lambda: clock)
        bare = bare_database(Path(folder) / "bare.sqlite3")

        def store_account(tg_id: int) -> None:
            store.save_account(tg_id, region="EU", username=f"{tg_id}@example.org", password=f"pw-{tg_id}")

        def bare_account(tg_id: int) -> None:
            bare.execute("BEGIN")
            bare.execute(
                "INSERT INTO accounts VALUES (?, 'EU', ?, ?)", (tg_id, f"{tg_id}@example.org", f"pw-{tg_id}")
            )
            bare.execute("COMMIT")

        results.append(("save_account", per_op(users, store_account), per_op(users, bare_account)))

        def store_vehicles(tg_id: int) -> None:
            nonlocal clock
            clock = float(tg_id)
            store.save_vehicles(
                tg_id, [StoredVehicle(tg_id, vin(tg_id), "i3", "M-I 3", "BEV", frozenset({"chargeNow"}), 0)]
            )

        def bare_vehicles(tg_id: int) -> None:
            bare.execute("BEGIN")
            bare.execute(
                "INSERT INTO vehicles VALUES (?, ?, 'i3', 'M-I 3', 'BEV', '[\"chargeNow\"]', 0)",
                (tg_id, vin(tg_id)),
            )
            bare.execute(
                "INSERT INTO watches VALUES (?, ?, NULL, NULL, NULL, NULL, NULL, ?, 0)",
                (tg_id, vin(tg_id), float(tg_id)),
            )
            bare.execute("COMMIT")

        results.append(("save_vehicles (1 car)", per_op(users, store_vehicles), per_op(users, bare_vehicles)))

        def bare_vehicle(tg_id: int) -> None:
            bare.execute("SELECT * FROM vehicles WHERE tg_id = ? AND vin = ?", (tg_id, vin(tg_id))).fetchone()

        results.append(
            (
                "vehicle lookup",
                per_op(lookups, lambda tg_id: store.vehicle(tg_id, vin(tg_id))),
                per_op(lookups, bare_vehicle),
            )
        )

        def bare_due(now: float) -> None:
            bare.execute(
                "SELECT * FROM watches WHERE next_poll_at <= ? ORDER BY next_poll_at, tg_id, vin LIMIT ?",
                (now, DUE_LIMIT),
            ).fetchall()

        results.append(
            (
                f"watches_due (limit {DUE_LIMIT})",
                per_op(due_at, lambda now: store.watches_due(now, DUE_LIMIT)),
                per_op(due_at, bare_due),
            )
        )
        assert store.watched_count() == args.users
        store.close()
        bare.close()

    fernet = Fernet(generate_secret_key())
    encrypt = per_op(
        users, lambda tg_id: (fernet.encrypt(f"{tg_id}@example.org".encode()), fernet.encrypt(b"pw"))
    )

    print(f"{args.users} users, one car each; microseconds per operation")
    print(f"{'operation':<24}{'store':>10}{'sqlite3':>10}{'ratio':>8}")
    for name, ours, baseline in results:
        print(f"{name:<24}{ours * 1e6:>10.1f}{baseline * 1e6:>10.1f}{ours / baseline:>8.1f}")
    for name, ours, baseline in results:
        result(
            f"store: {name}", f"{ours * 1e6:.1f} µs", f"{baseline * 1e6:.1f} µs (sqlite3)", ours / baseline
        )
    print(f"of save_account, encrypting its two secrets alone takes {encrypt * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
