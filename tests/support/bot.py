"""Fixtures that run the real bot Application against the loopback Bot API server and the BMW simulator.

The bot runs in the test's own event loop (long polling over real HTTP); the two servers run in their
own threads. `running_bot` starts it the way `run_polling` does (post_init included) and stops it cleanly.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from telegram.ext import Application

from bot.app import build_application, polling, webhook
from bot.bmw.client import BMWClient
from bot.bmw.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_BEV_VIN,
    DEFAULT_PASSWORD,
    DEFAULT_REX_VIN,
    DEFAULT_USERNAME,
)
from bot.chat import prefs, texts
from bot.config import Settings, load_settings
from bot.sandbox.driver import SandboxUser

BEV_VIN, REX_VIN = DEFAULT_BEV_VIN, DEFAULT_REX_VIN
OWN_SETTINGS = ("TELEGRAM_", "BMW_", "BOT_", "WEBHOOK_", "MAP_", "DATABASE_", "ALLOWED_", "CAR_", "CARDATA_")
# The bot of most tests links with the i Remote API only, so /link goes straight to it; tests of both
# backends use tests/support/cardata.py's `cardata_bot`.
IREMOTE_ONLY = ("iremote",)
DEAD_TILES = "http://127.0.0.1:9/{z}/{x}/{y}.png"  # tests never reach the real tile server


def fast_client(simulator_url: str, **overrides: float) -> BMWClient:
    """The real client, polling services quickly so tests need not wait seconds per command."""
    options = {"poll_initial": 0.05, "poll_max": 0.2, "service_deadline": 20.0, "read_timeout": 5.0}
    options.update(overrides)
    return BMWClient(
        api_key=DEFAULT_API_KEY,
        api_secret=DEFAULT_API_SECRET,
        base_url=simulator_url,
        retry_backoff=0.01,
        **options,
    )


@pytest.fixture
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def bot_settings(
    tmp_path: Path, bot_api_url: str, bot_token: str, simulator_url: str, secret_key: str
) -> Settings:
    return load_settings(
        telegram_bot_token=bot_token,
        telegram_api_url=bot_api_url,
        bmw_api_url=simulator_url,
        bmw_api_key=DEFAULT_API_KEY,
        bmw_api_secret=DEFAULT_API_SECRET,
        database_path=tmp_path / "bot.sqlite3",
        map_tile_url=DEAD_TILES,
        map_tile_cache_dir=tmp_path / "tiles",
        bot_secret_key=secret_key,
        car_backends=IREMOTE_ONLY,
    )


@pytest.fixture
def bot_env(
    tmp_path: Path, bot_api_url: str, bot_token: str, simulator_url: str, secret_key: str
) -> dict[str, str]:
    """Environment for the bot as a real process (`python -m bot run`) against the loopback servers; its
    data lives in tmp_path/data. Nothing of the caller's own bot settings leaks in."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    return {
        **inherited,
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "TELEGRAM_BOT_TOKEN": bot_token,
        "TELEGRAM_API_URL": bot_api_url,
        "BMW_API_URL": simulator_url,
        "BMW_API_KEY": DEFAULT_API_KEY,
        "BMW_API_SECRET": DEFAULT_API_SECRET,
        "BOT_SECRET_KEY": secret_key,
        "DATABASE_PATH": str(tmp_path / "data" / "bot.sqlite3"),
        "MAP_TILE_URL": DEAD_TILES,
        "MAP_TILE_CACHE_DIR": str(tmp_path / "data" / "tiles"),
        "CAR_BACKENDS": ",".join(IREMOTE_ONLY),
    }


@asynccontextmanager
async def running_bot(settings: Settings, client: BMWClient) -> AsyncIterator[Application]:
    async with polling(build_application(settings, car_api=client)) as application:
        yield application


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@asynccontextmanager
async def running_webhook_bot(
    settings: Settings, client: BMWClient, *, secret_token: str | None = None
) -> AsyncIterator[Application]:
    """The bot in webhook mode on a free loopback port; the sandbox posts updates to it. Its URL is in
    `application.bot_data.settings.webhook_url`."""
    port = free_port()
    settings = settings.model_copy(
        update={
            "webhook_url": f"http://127.0.0.1:{port}/hook-path",
            "webhook_listen": "127.0.0.1",
            "webhook_port": port,
            "webhook_secret_token": secret_token,
        }
    )
    application = build_application(settings, car_api=client)
    async with webhook(application, settings):
        yield application


@pytest.fixture
async def bot(bot_settings: Settings, simulator_url: str) -> AsyncIterator[Application]:
    async with running_bot(bot_settings, fast_client(simulator_url)) as application:
        yield application


async def link(
    user: SandboxUser,
    username: str = DEFAULT_USERNAME,
    password: str = DEFAULT_PASSWORD,
    *,
    both_backends: bool = False,
    language: str = "en",
) -> None:
    """Walk the /link conversation to the end, as a person who reads `language` would; `both_backends`: the
    bot first asks which (CAR_BACKENDS offers both), and the i Remote API is chosen."""
    user.send("/link")
    if both_backends:
        question = await user.wait_for_bot_message(said(texts.LINK_BACKEND, language).partition("\n")[0])
        user.press(question, said(texts.BACKEND_BUTTONS["iremote"], language))
    region = await user.wait_for_bot_message(said(texts.LINK_REGION, language))
    user.press(region, said(texts.REGION_NAMES["rest_of_world"], language))
    await user.wait_for_bot_message(said(texts.LINK_EMAIL, language))
    user.send(username)
    await user.wait_for_bot_message(said(texts.LINK_PASSWORD, language))
    user.send(password)
    await user.wait_for_bot_message(said(texts.LINK_DONE, language).partition("\n")[0])


def said(text: str, language: str = "en") -> str:
    """A sentence of bot/chat/texts/ as a user of `language` reads it (HTML as text), unformatted."""
    with prefs.using(prefs.Prefs(language=language, locale=language)):
        return texts.plain(text)


def process_database(tmp_path: Path) -> Path:
    """The database of a bot run as a process with `bot_env`."""
    return tmp_path / "data" / "bot.sqlite3"


def commands_in_flight(tmp_path: Path) -> list[tuple[Any, ...]]:
    """(service, event id) of each remote command that bot process has recorded as under way."""
    db = sqlite3.connect(f"file:{process_database(tmp_path)}?mode=ro", uri=True)
    try:
        return db.execute("SELECT service, event_id FROM commands_in_flight").fetchall()
    finally:
        db.close()


class BotProcess:
    """`python -m bot run` in its own directory (so no stray .env is read), logs captured to a file."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run"], cwd=workdir, env=env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
