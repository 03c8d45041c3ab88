"""The real process on SIGTERM: a running car command is reported to its user, and the bot exits cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.bmw.simulator import DEFAULT_API_KEY, DEFAULT_API_SECRET
from tests.support.bot import DEAD_TILES, link


async def test_sigterm_reports_the_unfinished_command_and_exits(
    tmp_path, bot_api_url, bot_token, simulator_url, simulator, sandbox, secret_key
):
    env = {
        **{
            k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BMW_", "BOT_", "WEBHOOK_"))
        },
        "PYTHONPATH": str(Path(__file__).parents[1]),
        "TELEGRAM_BOT_TOKEN": bot_token,
        "TELEGRAM_API_URL": bot_api_url,
        "BMW_API_URL": simulator_url,
        "BMW_API_KEY": DEFAULT_API_KEY,
        "BMW_API_SECRET": DEFAULT_API_SECRET,
        "BOT_SECRET_KEY": secret_key,
        "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        "MAP_TILE_URL": DEAD_TILES,
        "SHUTDOWN_GRACE_SECONDS": "1",
    }
    log_file = tmp_path / "bot.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        stderr=log_file.open("w"),  # a file, not a pipe: a full pipe would block the bot
    )
    try:
        alice = sandbox.user(501)
        await link(alice)
        alice.send("/lock")
        await alice.wait_for_bot_message("Lock —")  # the simulator's clock is frozen: the car never answers
        process.send_signal(signal.SIGTERM)
        await alice.wait_for_bot_message("the bot is restarting")
        assert process.wait(timeout=30) == 0, log_file.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    log = log_file.read_text()
    assert "unfinished" in log and "Traceback" not in log
    assert len(simulator.requests_to("executeService", "POST")) == 1
