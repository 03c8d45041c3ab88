"""The real bot process (`python -m bot run`) killed with SIGKILL mid-charge and mid-command, then restarted.

The simulator and the Bot API sandbox run in this test's threads and stay up across the restart, as BMW
and Telegram would. Afterwards: the charge-finished push arrives exactly once, the command that was under
way is not sent again but its progress message ends with its outcome, the database passes
`PRAGMA integrity_check`, and no secret is in plain text in any file the bot left (database, -wal, -shm,
heartbeat, its captured logs). A process killed while BMW had not yet answered the command's POST leaves
an outcome nobody can learn: the next one says so, and sends nothing again.
"""

from __future__ import annotations

import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.bmw.simulator.state import Fault
from bot.sandbox import SandboxUser
from tests.support.bot import BotProcess, commands_in_flight, link, process_database
from tests.support.watcher import FINISHED

LOGIN = ("kill@example.com", "Pw-Kill-4c2e9a71")
TG_ID = 701


@pytest.fixture
def start_bot(tmp_path: Path, bot_env: dict[str, str]) -> Iterator[Any]:
    env = {
        **bot_env,
        "CHARGE_POLL_SECONDS": "5",  # the smallest allowed: the watcher ticks every 5 s
        "LOG_LEVEL": "DEBUG",
    }
    started: list[BotProcess] = []

    def start() -> BotProcess:
        started.append(BotProcess(env, tmp_path, f"bot{len(started) + 1}"))
        return started[-1]

    yield start
    for process in started:
        process.kill()


def _watch(tmp_path: Path, vin: str) -> tuple[Any, ...] | None:
    db = sqlite3.connect(f"file:{process_database(tmp_path)}?mode=ro", uri=True)
    try:
        return db.execute(
            "SELECT charging_status, charging_since, last_event FROM charge_watches"
            " WHERE tg_id = ? AND vin = ?",
            (TG_ID, vin),
        ).fetchone()
    finally:
        db.close()


def _integrity(tmp_path: Path) -> tuple[str, str]:
    db = sqlite3.connect(process_database(tmp_path))
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0], db.execute(
            "PRAGMA journal_mode"
        ).fetchone()[0]
    finally:
        db.close()


def _pushes(user: SandboxUser) -> int:
    return sum(FINISHED in (m.text or "") for m in user.bot_messages)


async def test_sigkill_mid_charge_and_mid_command_then_restart(
    start_bot, tmp_path, sandbox, simulator, bot_token, monkeypatch
):
    vin = simulator.add_account(*LOGIN)[0]
    issued: list[dict[str, Any]] = []
    original = simulator.accounts.issue_token

    def recording(form: dict[str, str]) -> dict[str, Any]:
        issued.append(body := original(form))
        return body

    monkeypatch.setattr(simulator.accounts, "issue_token", recording)
    alice = sandbox.user(TG_ID, "Alice")

    simulator.set_status(vin, chargingLevelHv=95, doorLockState="UNLOCKED")
    simulator.plug_in(vin, charging=True)  # the watcher's first look finds the charge under way
    first = start_bot()
    await link(alice, *LOGIN)  # the sandbox keeps the updates until the process polls for them
    await alice.wait_for(lambda _: (_watch(tmp_path, vin) or (None,))[0] == "CHARGING", timeout=20)
    simulator.service_seconds = 3600  # the car takes its time: the command is still under way at the kill
    alice.send("/lock")
    progress = await alice.wait_for_bot_message("BMW has the request")
    first.kill()
    assert first.process.returncode == -signal.SIGKILL
    assert _integrity(tmp_path) == ("ok", "wal")
    assert _watch(tmp_path, vin)[1] is not None  # the charge session survived on disk
    [(service, event_id)] = commands_in_flight(tmp_path)  # so did the command, with BMW's id for it
    assert service == "DOOR_LOCK" and event_id is not None

    simulator.advance(3600)  # meanwhile the car locked itself and finished charging
    assert simulator.vehicle(vin).status["doorLockState"] == "LOCKED"
    second = start_bot()
    await alice.wait_for(
        lambda u: "is locked" in (u.now(progress).text or ""), timeout=30
    )  # the old message ends
    assert commands_in_flight(tmp_path) == []
    await alice.wait_for(lambda u: _pushes(u) >= 1, timeout=30)
    # One more watcher cycle after the push must not repeat it.
    polls = len(simulator.requests_to(f"{vin}/status"))
    await alice.wait_for(lambda _: len(simulator.requests_to(f"{vin}/status")) > polls, timeout=20)
    await alice.wait_for(lambda _: _watch(tmp_path, vin)[1] is None)  # the session is closed
    assert _pushes(alice) == 1
    assert len(simulator.requests_to("executeService", "POST")) == 1  # not sent again by the new process
    alice.send("/status")
    await alice.wait_for(lambda u: "updated" in (u.last_bot_message().text or ""), timeout=15)
    assert "locked" in alice.last_bot_message().text.lower()
    second.kill()
    assert _integrity(tmp_path) == ("ok", "wal")
    alice.send("bye")  # ends the dead process's long poll, so the sandbox server can stop at once

    secrets = [LOGIN[1], bot_token.split(":", 1)[1]]
    secrets += [body[key] for body in issued for key in ("access_token", "refresh_token")]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"bot.sqlite3", "bot.sqlite3.heartbeat", "bot1.log", "bot2.log"} <= names
    assert b"DEBUG bot.bmw.client" in (tmp_path / "bot2.log").read_bytes()  # DEBUG logs were captured
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"a secret in plain text in {path.name}"


async def test_killed_before_bmw_answered_the_command_then_restart(
    start_bot, tmp_path, sandbox, simulator, monkeypatch
):
    vin = simulator.add_account(*LOGIN)[0]
    simulator.set_status(vin, doorLockState="UNLOCKED")
    delayed: list[str] = []
    original = simulator.faults.take_fault

    def noting(method: str, path: str) -> Fault | None:
        fault = original(method, path)
        if fault is not None:
            delayed.append(path)
        return fault

    monkeypatch.setattr(simulator.faults, "take_fault", noting)
    alice = sandbox.user(TG_ID, "Alice")
    first = start_bot()
    await link(alice, *LOGIN)
    simulator.add_fault(Fault("executeService", "slow", delay=3.0))  # BMW takes its time to answer
    alice.send("/lock")
    progress = await alice.wait_for_bot_message("sending to BMW")
    await alice.wait_for(lambda _: bool(delayed))  # the POST is at BMW, its answer not yet back
    first.kill()
    assert commands_in_flight(tmp_path) == [("DOOR_LOCK", None)]

    second = start_bot()
    await alice.wait_for(lambda u: "Check /status" in (u.now(progress).text or ""), timeout=30)
    assert "no longer tells how it ended" in (alice.now(progress).text or "")
    assert commands_in_flight(tmp_path) == []
    # BMW did get that one POST (it answers into a closed connection); nobody sent another.
    await alice.wait_for(lambda _: len(simulator.requests_to("executeService", "POST")) == 1)
    alice.send("/status")
    await alice.wait_for(lambda u: "updated" in (u.last_bot_message().text or ""), timeout=15)
    assert len(simulator.requests_to("executeService", "POST")) == 1
    second.kill()


async def test_a_confirmed_unlock_delivered_again_after_a_kill_is_not_sent_again(
    start_bot, tmp_path, sandbox, simulator
):
    """Telegram keeps an update until the next getUpdates acknowledges it: a process killed after it took
    the press on "Yes, unlock" but before that poll leaves the press to the next process. There it must not
    unlock again, and the progress message still ends with the unlock's outcome."""
    vin = simulator.add_account(*LOGIN)[0]
    simulator.set_status(vin, doorLockState="LOCKED")
    alice = sandbox.user(TG_ID, "Alice")
    first = start_bot()
    await link(alice, *LOGIN)
    simulator.service_seconds = 3600  # the car takes its time: the unlock is under way at the kill
    alice.send("/unlock")
    asked = await alice.wait_for_bot_message("Make sure")
    yes = asked.button("Yes, unlock").callback_data
    assert yes is not None
    alice.press(asked, "Yes, unlock")
    await alice.wait_for(lambda u: "BMW has the request" in (u.now(asked).text or ""), timeout=20)
    first.kill()
    [(service, _)] = commands_in_flight(tmp_path)
    assert service == "DOOR_UNLOCK"

    simulator.advance(3600)  # meanwhile the car unlocked
    second = start_bot()
    # The same press again, on the same message: what the unacknowledged update brings the new process.
    alice.press_data(asked.message_id, yes)
    await alice.wait_for(lambda u: len(u.callback_answers()) == 2, timeout=30)  # it was taken
    await alice.wait_for(lambda _: commands_in_flight(tmp_path) == [], timeout=30)
    alice.send("/status")  # one more exchange: whatever the press was to start has had its turn
    await alice.wait_for(lambda u: "updated" in (u.last_bot_message().text or ""), timeout=15)
    assert len(simulator.requests_to("executeService", "POST")) == 1
    assert "is unlocked" in (alice.now(asked).text or ""), alice.transcript()
    second.kill()
    alice.send("bye")  # ends the dead process's long poll, so the sandbox server can stop at once
