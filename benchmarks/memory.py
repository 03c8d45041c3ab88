"""Resident memory of the bot with 10,000 linked users, as a ratio to a bare interpreter with its imports.

    .venv/bin/python -m benchmarks.memory [--users 10000]

Each side runs in a fresh child process and reports its resident set size (VmRSS) at the end:
  baseline — the interpreter with every module the bot imports, nothing more;
  bot      — the same, plus a store of `--users` linked users (account, encrypted password and tokens, an
             i3 BEV and REX each, their charge watches), the Application built on it, and every user's
             account, cars and watch read once, as a watcher cycle and the chat handlers would.
The database is on disk (SQLite): what memory holds is the interpreter, the libraries and SQLite's cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import result


def rss_mb() -> float:
    """This process's resident set size in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_files() -> int:
    """This process's open file descriptors (Linux /proc)."""
    return len(os.listdir("/proc/self/fd"))


def child(users: int, folder: Path | None) -> None:
    from cryptography.fernet import Fernet

    from bot.app import build_application  # everything the bot imports
    from bot.bmw.client import BMWClient
    from bot.config import load_settings
    from bot.store import Store, StoredToken, StoredVehicle

    if folder is not None:
        key = Fernet.generate_key().decode()
        settings = load_settings(
            telegram_bot_token="7000000001:memory-benchmark-token-0123456789ab",
            bmw_api_url="http://127.0.0.1:9",
            database_path=folder / "bot.sqlite3",
            map_tile_cache_dir=folder / "tiles",
            bot_secret_key=key,
        )
        store = Store(settings.database_path, settings.bot_secret_key)
        for tg_id in range(1, users + 1):
            store.upsert_user(tg_id, f"User{tg_id}")
            store.save_account(tg_id, region="rest_of_world", username=f"u{tg_id}@example.com", password="pw")
            store.save_token(tg_id, StoredToken("a" * 32, "r" * 48, time.time() + 28_799))
            store.save_vehicles(
                tg_id,
                [
                    StoredVehicle(tg_id, f"WBY1Z{kind}1000V{tg_id:06d}", "I3", None, train, frozenset(), i)
                    for i, (kind, train) in enumerate((("2", "BEV"), ("4", "REX")))
                ],
            )
        store.close()
        application = build_application(settings, car_api=BMWClient(api_key="k", api_secret="s"))
        store = application.bot_data.services.garage.store
        watches = store.watches_due(float("inf"))
        for tg_id in range(1, users + 1):
            store.account(tg_id)
            store.vehicles(tg_id)
        assert len(watches) == 2 * users
    print(f"{rss_mb():.1f}")


def measure(users: int, with_bot: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        args = [sys.executable, "-m", "benchmarks.memory", "--child", "--users", str(users)]
        if with_bot:
            args += ["--folder", folder]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return float(out.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000, help="linked users (default 10000)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.users, args.folder)
        return
    bare, bot = measure(args.users, False), measure(args.users, True)
    print(f"bare interpreter with the bot's imports : {bare:7.1f} MB resident")
    print(f"bot with {args.users:>6} linked users       : {bot:7.1f} MB resident (+{bot - bare:.1f} MB)")
    print(f"per user above the baseline              : {(bot - bare) * 1024 / args.users:7.2f} kB")
    result(f"memory, {args.users} users", f"{bot:.1f} MB", f"{bare:.1f} MB (imports only)", bot / bare, "-")


if __name__ == "__main__":
    main()
