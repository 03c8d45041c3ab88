"""Pytest fixtures for the BMW CarData simulator: its HTTP face on loopback, its MQTT broker over TLS.

`cardata_simulator` is the state (steer it in-process: `plug_in`, `advance`, `decide`...), `cardata_url`
serves it over HTTP, `cardata_broker` adds the stream, `cardata_env` holds the CARDATA_* settings that
point a client (or the bot) at all of it, `cardata_tls` trusts the broker's throw-away CA. `cardata_bot`
is the whole bot with both backends (CAR_BACKENDS' default), CarData pointed at all of that.
"""

from __future__ import annotations

import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from telegram.ext import Application

from bot.cardata.simulator import (
    DEFAULT_CLIENT_ID,
    SCOPE,
    CardataBroker,
    CardataSimulator,
    s256,
)
from bot.cardata.simulator.oauth import DEVICE_GRANT
from bot.config import CAR_BACKENDS, Settings
from bot.sandbox.driver import Sandbox, SandboxUser
from bot.servers import BackgroundServer
from tests.support.bot import fast_client, running_bot
from tests.support.simulator import _CurrentSimulator

OWNER = 4242  # the Telegram user who links CarData in the chat tests
CHARGE_DEBOUNCE_SECONDS = 0.5  # the bot's CarData debounce in tests: a stop must last that long to count
STREAM_RETRY_SECONDS = 0.2  # the bot's retry after a CONNACK 5 in tests (BMW's closed streams do not linger)


@pytest.fixture(scope="session")
def _cardata_server() -> Iterator[tuple[str, _CurrentSimulator]]:
    current = _CurrentSimulator()  # one uvicorn for the session, bound to each test's simulator in turn
    with BackgroundServer(current) as server:
        yield server.url, current


@pytest.fixture
def cardata_simulator(request: pytest.FixtureRequest) -> CardataSimulator:
    """A fresh CarData simulator on the wall clock with the default account: DEFAULT_CLIENT_ID of
    DEFAULT_GCID, an i3 BEV (DEFAULT_BEV_VIN) and an i3 REX (DEFAULT_REX_VIN), quiet as real i3s are.
    Indirect parameters are constructor options (e.g. `{"poll_interval": 1}`: the device flow polled every
    second, not BMW's 5 s) and "kind", that of the default account's cars (`{"kind": "live"}`: both stream
    every change, as iDrive 7 cars do). A closed stream does not linger (`stream_linger` 0, BMW's a few
    seconds): tests that reconnect at once (drops, restarts) need not wait it out; those about it set it."""
    options = dict(getattr(request, "param", {}))
    kind = options.pop("kind", "quiet")
    options.setdefault("stream_linger", 0.0)
    sim = CardataSimulator(**options)
    sim.add_default_account(kind)
    return sim


@pytest.fixture
def cardata_url(
    cardata_simulator: CardataSimulator, _cardata_server: tuple[str, _CurrentSimulator]
) -> Iterator[str]:
    """That simulator over HTTP on 127.0.0.1: OAuth at `<url>/gcdm/oauth`, REST and `/_sim/` at `<url>`."""
    url, current = _cardata_server
    current.app = cardata_simulator.app
    yield url
    current.app = None


@pytest.fixture
def cardata_broker(cardata_simulator: CardataSimulator) -> Iterator[CardataBroker]:
    """The simulator's MQTT broker over TLS on a free loopback port (`.url`, `.port`, `.ca_file`)."""
    with CardataBroker(cardata_simulator) as broker:
        yield broker


@pytest.fixture
def cardata_tls(cardata_broker: CardataBroker) -> ssl.SSLContext:
    """A client TLS context trusting the broker's CA (for aiomqtt's `tls_context`)."""
    return ssl.create_default_context(cafile=str(cardata_broker.ca_file))


@pytest.fixture
def cardata_env(cardata_url: str, cardata_broker: CardataBroker) -> dict[str, str]:
    """The CARDATA_* settings pointing at the simulator and its broker."""
    return {
        "CARDATA_AUTH_URL": f"{cardata_url}/gcdm/oauth",
        "CARDATA_API_URL": cardata_url,
        "CARDATA_MQTT_URL": cardata_broker.url,
        "CARDATA_CA_FILE": str(cardata_broker.ca_file),
    }


@pytest.fixture
def cardata_bot_settings(bot_settings: Settings, cardata_env: dict[str, str]) -> Settings:
    """`bot_settings` (the i Remote simulator) with CarData pointed at its simulator and broker, a short
    charge debounce and retry after a CONNACK 5; CAR_BACKENDS the default, both."""
    return bot_settings.model_copy(
        update={
            "car_backends": CAR_BACKENDS,
            "cardata_auth_url": cardata_env["CARDATA_AUTH_URL"],
            "cardata_api_url": cardata_env["CARDATA_API_URL"],
            "cardata_mqtt_url": cardata_env["CARDATA_MQTT_URL"],
            "cardata_ca_file": Path(cardata_env["CARDATA_CA_FILE"]),
            "cardata_charge_debounce_seconds": CHARGE_DEBOUNCE_SECONDS,
            "cardata_stream_retry_seconds": STREAM_RETRY_SECONDS,
        }
    )


@pytest.fixture
async def cardata_bot(cardata_bot_settings: Settings, simulator_url: str) -> AsyncIterator[Application]:
    """The running bot with both backends: /link offers BMW CarData (its simulator, stream over TLS) and the
    i Remote API (its simulator)."""
    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        yield application


def device_login(url: str, sim: CardataSimulator, client_id: str = DEFAULT_CLIENT_ID) -> dict[str, Any]:
    """The whole device flow over HTTP, approved in the simulator: the token answer (access, id and
    refresh token, gcid). For tests that need tokens, not the flow."""
    verifier = secrets.token_urlsafe(48)
    code = httpx.post(
        f"{url}/gcdm/oauth/device/code",
        data={
            "client_id": client_id,
            "response_type": "device_code",
            "scope": SCOPE,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    code.raise_for_status()
    sim.decide(code.json()["user_code"], "approved")
    form = {
        "grant_type": DEVICE_GRANT,
        "device_code": code.json()["device_code"],
        "client_id": client_id,
        "code_verifier": verifier,
    }
    tokens = httpx.post(f"{url}/gcdm/oauth/token", data=form)
    tokens.raise_for_status()
    answer: dict[str, Any] = tokens.json()
    return answer


@pytest.fixture
def user(sandbox: Sandbox) -> SandboxUser:
    """The owner in the chat tests, Carla."""
    return sandbox.user(OWNER, "Carla")
