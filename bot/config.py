"""Every setting of the bot, typed, read from the environment and an optional `.env` file.

Each field's env name is its upper-case name. Settings needed only by one sub-command are optional here and
checked by `require()`, so `python -m bot simulator` runs without a bot token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.capabilities import BackendName

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
DEFAULT_CARDATA_AUTH_URL = "https://customer.bmwgroup.com/gcdm/oauth"
DEFAULT_CARDATA_API_URL = "https://api-cardata.bmwgroup.com"
DEFAULT_CARDATA_MQTT_URL = "mqtts://customer.streaming-cardata.bmwgroup.com:9000"
NEW_KEY_HINT = "make one with: python -m bot genkey"
CAR_BACKENDS = (BackendName.CARDATA, BackendName.IREMOTE)


class ConfigError(Exception):
    """A missing or invalid setting; its message is one line naming the variable."""


class Settings(BaseSettings):
    # Empty values (`WEBHOOK_URL=` in .env.example) mean "use the default", not "the empty string".
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # Telegram
    telegram_bot_token: str | None = None
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    allowed_telegram_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    # What /link offers, in this order: "cardata" (BMW CarData, read-only) and/or "iremote" (the i Remote API)
    car_backends: Annotated[tuple[BackendName, ...], NoDecode] = CAR_BACKENDS

    # BMW i Remote API
    bmw_api_url: str | None = None
    bmw_api_key: str | None = None
    bmw_api_secret: str | None = None
    bmw_service_timeout: float = Field(300.0, gt=0)

    # BMW CarData (read-only; each owner brings their own client id)
    cardata_auth_url: str = DEFAULT_CARDATA_AUTH_URL
    cardata_api_url: str = DEFAULT_CARDATA_API_URL
    cardata_mqtt_url: str = DEFAULT_CARDATA_MQTT_URL
    cardata_ca_file: Path | None = None  # an extra CA for a private broker, added to the system's trust
    # BMW allows 50 calls a day per owner; the rest up to 50 stays in reserve for linking.
    cardata_daily_calls: int = Field(40, ge=1, le=50)
    cardata_charge_debounce_seconds: float = Field(120.0, ge=0)
    # After a CONNACK 5, the one retry before another app is taken to hold the stream (docs/cardata.md); the
    # stream's own default (bot.cardata.stream.HELD_RETRY).
    cardata_stream_retry_seconds: float = Field(10.0, ge=0)
    # The process's stream connection attempts per minute: BMW limits them per IP and publishes no number.
    cardata_connects_per_minute: int = Field(30, ge=1)

    # Storage and secrets
    database_path: Path = Path("data/bot.sqlite3")
    bot_secret_key: Annotated[tuple[str, ...], NoDecode] = ()

    # Range maps
    map_tile_url: str = DEFAULT_TILE_URL
    map_tile_cache_dir: Path = Path("data/tiles")
    map_tile_cache_mb: int = Field(200, ge=0)
    # Drawn on maps that show tiles; the tile provider's licence says what it must be.
    map_attribution: str = "© OpenStreetMap contributors"
    map_user_agent: str = "bmw-telegram-bot/0.1 (self-hosted; +https://github.com/)"

    # Charge watcher
    charge_poll_seconds: int = Field(60, ge=5)
    idle_poll_seconds: int = Field(900, ge=30)
    watcher_concurrency: int = Field(20, ge=1)

    # Abuse limits: remote commands one user may start per minute
    remote_commands_per_minute: int = Field(6, ge=1)

    # Webhook mode (long polling when WEBHOOK_URL is empty)
    webhook_url: str | None = None
    # Loopback: a reverse proxy in front terminates TLS (deploy/README.md); a container listens on 0.0.0.0.
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(8443, ge=1, le=65535)
    # Unset: a random one per start (bot/webhook.py). Telegram's alphabet and length for it.
    webhook_secret_token: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,256}$")

    # On SIGTERM, running car commands get this long to finish before they are cancelled (and reported).
    shutdown_grace_seconds: float = Field(20.0, ge=0)

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("allowed_telegram_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
        return value

    @field_validator("car_backends", mode="before")
    @classmethod
    def _split_backends(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
        if isinstance(value, tuple | list):
            unknown = [name for name in value if name not in set(BackendName)]
            if unknown or not value:
                raise ValueError(f"a comma list of {', '.join(CAR_BACKENDS)}")
        return value

    @field_validator("bot_secret_key", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        for key in value if isinstance(value, tuple | list) else ():
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ValueError(f"not a Fernet key; {NEW_KEY_HINT}") from None
        return value

    @field_validator("map_tile_url")
    @classmethod
    def _tile_template(cls, value: str) -> str:
        try:
            value.format(z=0, x=0, y=0, s="a")
        except (KeyError, IndexError, ValueError):
            raise ValueError("a tile URL may contain only {z}, {x}, {y} and {s} in braces") from None
        return value

    @field_validator("cardata_mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        from bot.cardata.stream import MqttEndpoint  # the MQTT client loads only when CarData is configured

        MqttEndpoint.parse(value)
        return value

    @field_validator("cardata_auth_url", "cardata_api_url", "bmw_api_url", "telegram_api_url")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        from bot.cardata.stream import is_loopback  # as for the MQTT URL: loaded only when set

        # Passwords, the bot token (in every Bot API path), client ids and tokens travel on these: never in
        # the clear beyond this machine.
        if value is None:
            return None
        parts = urlsplit(value)
        plain_on_loopback = parts.scheme == "http" and is_loopback(parts.hostname or "")
        if not parts.hostname or not (parts.scheme == "https" or plain_on_loopback):
            raise ValueError("expected https://host (or http:// on loopback)")
        return value

    @field_validator("cardata_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of `names` that is unset."""
        for name in names:
            if not getattr(self, name):
                hint = f"; {NEW_KEY_HINT}" if name == "bot_secret_key" else ""
                raise ConfigError(f"{name.upper()} is required but not set{hint}")


def load_settings(**overrides: object) -> Settings:
    """Settings from environment and .env; a bad value becomes one ConfigError line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "setting"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{name} is invalid: {message}") from None
