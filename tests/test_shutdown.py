"""The real process on SIGTERM: a running car command is reported to its user, and the bot exits cleanly;
the next start finishes that command's message with its outcome, without sending it again."""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import weakref

import pytest

from bot.app import STOP_STEP_FLOOR, StopTimedOut
from tests.support.bot import (
    commands_in_flight,
    fast_client,
    free_port,
    link,
    running_bot,
    running_webhook_bot,
)
from tests.support.waits import until


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_sigterm_reports_the_unfinished_command_and_exits(tmp_path, bot_env, simulator, sandbox, mode):
    env = {**bot_env, "SHUTDOWN_GRACE_SECONDS": "1"}
    if mode == "webhook":
        port = free_port()
        env.update(WEBHOOK_URL=f"http://127.0.0.1:{port}/hook", WEBHOOK_PORT=str(port))
    log_file = tmp_path / "bot.log"

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp_path,
            env=env,
            stderr=log_file.open("a"),  # a file, not a pipe: a full pipe would block the bot
        )

    process = start()
    try:
        alice = sandbox.user(501)
        await link(alice)
        alice.send("/lock")
        progress = await alice.wait_for_bot_message("Lock —")  # the simulator's clock is frozen
        process.send_signal(signal.SIGTERM)
        await alice.wait_for_bot_message("the bot is restarting")
        assert process.wait(timeout=30) == 0, log_file.read_text()
        log = log_file.read_text()
        assert "unfinished" in log and "Traceback" not in log
        [(service, event_id)] = commands_in_flight(tmp_path)  # kept for the next start
        assert service == "DOOR_LOCK" and event_id is not None

        process = start()
        simulator.advance(60)  # the car carries it out meanwhile
        await alice.wait_for(lambda u: "is locked" in (u.now(progress).text or ""), timeout=30)
        assert commands_in_flight(tmp_path) == []
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    assert len(simulator.requests_to("executeService", "POST")) == 1
    assert "Traceback" not in log_file.read_text()


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_stop_that_hangs_fails_naming_the_step_instead_of_waiting_forever(
    bot_settings, simulator_url, sandbox, mode
):
    settings = bot_settings.model_copy(update={"shutdown_grace_seconds": 0})  # each step gets the floor
    client = fast_client(simulator_url)
    running = running_bot(settings, client) if mode == "polling" else running_webhook_bot(settings, client)
    named = rf"Application\.stop\(\) did not end within {STOP_STEP_FLOOR:g} s"
    with pytest.raises(StopTimedOut, match=named):
        async with asyncio.timeout(STOP_STEP_FLOOR + 15):  # it used to wait forever: a failure, not a hang
            async with running as application:
                user = sandbox.user(601)
                user.send("/start")
                await user.wait_for_bot_message("")
                # A task Application.stop() waits for, and it never ends.
                application.create_task(asyncio.Event().wait())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_a_stop_asked_for_while_the_bot_starts_stops_it_once_started(tmp_path, bot_env, bot_api, sig):
    """Ctrl-C (or docker stop) as the bot starts: here Telegram holds its start of polling for 3 s. The bot
    finishes starting and stops cleanly; it used to miss the stop there and run on (Ctrl-C right after the
    demo's banner hung it)."""
    bot_api.inject("deleteWebhook", "flood", retry_after=3)
    log_file = tmp_path / "bot.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=bot_env, stderr=log_file.open("a")
    )
    try:
        await until(lambda: bot_api.calls_to("deleteWebhook") != [], "the start of polling held")
        process.send_signal(sig)
        assert await asyncio.to_thread(process.wait, 30) == 0, log_file.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    log = log_file.read_text()
    assert "Traceback" not in log
    assert len(bot_api.calls_to("deleteWebhook")) == 2  # the start went on once Telegram let it


class _Node:
    other: _Node | None = None


async def test_a_start_freezes_no_garbage_of_what_ran_before_it(bot_settings, simulator_url):
    """The start keeps what it loaded out of the collector's walks (gc.freeze); a cycle nobody holds any more,
    say of an Application stopped before in the same process (the soak's restart), must not be kept with it:
    frozen, a cycle is never freed."""
    gc.disable()  # no collection of its own between here and the start: only the start's
    try:
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        gone = weakref.ref(first)
        del first, second
        async with running_bot(bot_settings, fast_client(simulator_url)):
            pass
    finally:
        gc.enable()
    gc.collect()
    assert gone() is None
