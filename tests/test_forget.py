"""Deleted means deleted: after /unlink no ciphertext of that user is left in the database, its -wal or -shm
while the bot runs; and `rotate-key` refuses to run under a running bot (and works once it is stopped)."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from bot.store import _SECRET_COLUMNS
from tests.support.bot import BotProcess, link

LOGIN = ("forget@example.com", "Pw-Forget-8d1f3b")
ANSWER = "Answer-first-car-Beetle-44"


def _ciphertexts(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(f"SELECT {', '.join(_SECRET_COLUMNS)} FROM accounts").fetchall()
    finally:
        conn.close()
    return [value for row in rows for value in row if value is not None]


def _on_disk(db: Path) -> dict[str, bytes]:
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return {f.name: f.read_bytes() for f in files if f.exists()}


async def test_unlink_leaves_no_ciphertext_in_the_database_files(bot, bot_settings, sandbox, simulator):
    vin = simulator.add_account(*LOGIN, security_answer=ANSWER)[0]
    alice = sandbox.user(801, "Alice")
    await link(alice, *LOGIN)
    alice.send("/unlock")
    alice.press(await alice.wait_for_bot_message("Make sure"), "Yes, unlock")
    await alice.wait_for_bot_message("security question")
    alice.send(ANSWER)
    await alice.wait_for_bot_message("BMW has the request")
    simulator.advance(60)
    alice.press(await alice.wait_for_bot_message("Remember the security answer"), "Yes, remember")
    await alice.wait_for_bot_message("Saved, encrypted")
    db = bot_settings.database_path
    stored = _ciphertexts(db)
    assert len(stored) == 5  # e-mail, password, both tokens and the answer
    files = _on_disk(db)
    assert any(value.encode() in data for value in stored for data in files.values())

    alice.send("/unlink")
    alice.press(await alice.wait_for_bot_message("Remove your BMW account"), "Yes, remove")
    await alice.wait_for_bot_message("all its data are gone")
    files = _on_disk(db)
    assert f"{db.name}-wal" in files  # still running, still in WAL mode: the files being searched are live
    for name, data in files.items():
        assert not any(value.encode() in data for value in stored), f"a ciphertext of hers in {name}"
        assert vin.encode() not in data, f"her car in {name}"


def _cli(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def _readable_with(key: str, values: list[str]) -> bool:
    try:
        for value in values:
            Fernet(key).decrypt(value.encode())
    except InvalidToken:
        return False
    return True


async def test_rotate_key_refuses_while_the_bot_runs_and_works_after(tmp_path, bot_env, sandbox, simulator):
    old, new = bot_env["BOT_SECRET_KEY"], Fernet.generate_key().decode()
    db = Path(bot_env["DATABASE_PATH"])
    running = BotProcess(bot_env, tmp_path, "bot")
    try:
        alice = sandbox.user(802, "Alice")
        await link(alice)
        before = _ciphertexts(db)

        refused = _cli(["rotate-key"], tmp_path, {**bot_env, "BOT_SECRET_KEY": f"{new},{old}"})
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            f"the bot is running on {db}: stop it first, then run rotate-key again (nothing was changed)"
        ]
        assert _ciphertexts(db) == before and _readable_with(old, before)
        alice.send("/status")
        await alice.wait_for_bot_message("updated")  # the bot did not notice

        running.process.send_signal(signal.SIGTERM)
        assert running.process.wait(30) == 0
    finally:
        running.kill()
    rotated = _cli(["rotate-key"], tmp_path, {**bot_env, "BOT_SECRET_KEY": f"{new},{old}"})
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("re-encrypted 4 secrets")  # e-mail, password, both tokens
    after = _ciphertexts(db)
    assert _readable_with(new, after) and not _readable_with(old, after)
