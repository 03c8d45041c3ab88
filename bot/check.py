"""`python -m bot check`: validate the configuration and reach the configured servers, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx

from bot.bmw.models import SERVERS
from bot.config import ConfigError, Settings
from bot.crypto import SecretKeyMismatch
from bot.logs import redact
from bot.rangemap import tile_url
from bot.store import Store, StoreError

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def _required(settings: Settings) -> list[Finding]:
    findings = []
    for name in ("telegram_bot_token", "bot_secret_key", "bmw_api_key", "bmw_api_secret"):
        try:
            settings.require(name)
            findings.append(Finding(True, f"{name.upper()} is set"))
        except ConfigError as exc:
            findings.append(Finding(False, str(exc)))
    if settings.webhook_url:
        url = urlparse(settings.webhook_url)
        findings.append(
            Finding(
                url.scheme == "https", f"WEBHOOK_URL {'is' if url.scheme == 'https' else 'must be'} HTTPS"
            )
        )
        secret = (
            "is set" if settings.webhook_secret_token else "is not set: a random one is made at each start"
        )
        findings.append(Finding(True, f"WEBHOOK_SECRET_TOKEN {secret}"))
    return findings


def _database(settings: Settings) -> Finding:
    if not settings.bot_secret_key:
        return Finding(False, "the database cannot be opened without BOT_SECRET_KEY")
    if not settings.database_path.exists():
        return Finding(True, f"database {settings.database_path} will be created at the first start")
    try:
        store = Store(settings.database_path, settings.bot_secret_key)
    except SecretKeyMismatch:
        return Finding(False, f"BOT_SECRET_KEY cannot decrypt {settings.database_path}: the key has changed")
    except (StoreError, OSError) as exc:
        return Finding(False, f"the database {settings.database_path} cannot be opened: {exc}")
    try:
        return Finding(True, f"database {settings.database_path} opens ({len(store.user_ids())} users)")
    finally:
        store.close()


def _reach(http: httpx.Client, what: str, url: str, judge: Callable[[httpx.Response], str | None]) -> Finding:
    try:
        problem = judge(http.get(url))
    except httpx.HTTPError as exc:
        return Finding(False, f"{what} is not reachable ({type(exc).__name__})")
    return Finding(problem is None, f"{what} answers" if problem is None else f"{what}: {problem}")


def _telegram(response: httpx.Response) -> str | None:
    if response.status_code == 401:
        return "the bot token is refused (401)"
    return None if response.is_success else f"HTTP {response.status_code}"


def _any_answer(response: httpx.Response) -> str | None:
    return None if response.status_code < 500 else f"HTTP {response.status_code}"


def _tile(response: httpx.Response) -> str | None:
    return None if response.is_success else f"HTTP {response.status_code} for a tile"


def run_checks(settings: Settings) -> list[Finding]:
    findings = [*_required(settings), _database(settings)]
    with httpx.Client(timeout=TIMEOUT, headers={"User-Agent": settings.map_user_agent}) as http:
        if settings.telegram_bot_token:
            root = settings.telegram_api_url.rstrip("/")
            findings.append(
                _reach(http, "Telegram", f"{root}/bot{settings.telegram_bot_token}/getMe", _telegram)
            )
        bmw = [settings.bmw_api_url] if settings.bmw_api_url else list(SERVERS.values())
        findings += [_reach(http, f"BMW server {url}", url.rstrip("/") + "/", _any_answer) for url in bmw]
        tile = tile_url(settings.map_tile_url, 0, 0, 0)
        findings.append(_reach(http, "the map tile server", tile, _tile))
    return findings


def main(settings: Settings) -> int:
    findings = run_checks(settings)
    for finding in findings:
        print(("✔ " if finding.ok else "✘ ") + redact(finding.text))
    failed = sum(not f.ok for f in findings)
    print("all good" if not failed else f"{failed} problem(s) found")
    return 0 if not failed else 1
