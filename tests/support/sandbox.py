"""Pytest fixtures for the loopback Bot API server: `bot_api`, `bot_token`, `bot_api_url`, `sandbox`.

The bot under test points python-telegram-bot at it with
`ApplicationBuilder().token(bot_token).base_url(f"{bot_api_url}/bot").base_file_url(f"{bot_api_url}/file/bot")`.
"""

from collections.abc import Iterator

import pytest

from bot.sandbox import BotApiServer, Sandbox
from bot.servers import BackgroundServer


@pytest.fixture
def bot_token() -> str:
    return "123456789:sandbox-test-token"


@pytest.fixture
def _bot_api_served(bot_token: str) -> Iterator[tuple[BotApiServer, BackgroundServer]]:
    server = BotApiServer()
    server.add_bot(bot_token)
    with BackgroundServer(server.app) as http:
        yield server, http


@pytest.fixture
def bot_api(_bot_api_served: tuple[BotApiServer, BackgroundServer]) -> BotApiServer:
    """A Bot API server with one bot (`bot_api.token`), served on loopback. Limits are off."""
    return _bot_api_served[0]


@pytest.fixture
def bot_api_url(_bot_api_served: tuple[BotApiServer, BackgroundServer]) -> str:
    """The server's root URL, e.g. http://127.0.0.1:41234."""
    return _bot_api_served[1].url


@pytest.fixture
def sandbox(bot_api: BotApiServer, bot_token: str) -> Sandbox:
    return Sandbox(bot_api, bot_token)
