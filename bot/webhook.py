"""Webhook mode: our own Starlette app under uvicorn, in the bot's event loop, in place of PTB's server.

Only a POST that carries the secret token (compared in constant time) reaches the bot; anything else gets
403 and is never parsed. The secret is random per start unless WEBHOOK_SECRET_TOKEN sets one, and is
registered with setWebhook, so the port never serves forged updates, whoever can reach it. GET /healthz
beside it answers whether the bot's heartbeat is fresh. Operators put TLS in a reverse proxy in front
(deploy/README.md).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot.config import ConfigError

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def new_secret_token() -> str:
    """32 random bytes in Telegram's alphabet for secret tokens (A-Z a-z 0-9 _ -)."""
    return secrets.token_urlsafe(32)


def webhook_app(
    application: Application,
    *,
    path: str,
    secret_token: str,
    heartbeat_age: Callable[[], float | None],
    max_age: float,
) -> Starlette:
    """POST `path`: an update for the bot, if signed. GET /healthz: 200 while the heartbeat is younger
    than `max_age` seconds, else 503; a small JSON either way."""
    expected = secret_token.encode()

    async def receive(request: Request) -> Response:
        # Starlette decodes headers as latin-1: encoding back gives the bytes that were sent.
        given = request.headers.get(SECRET_HEADER, "").encode("latin-1")
        if not hmac.compare_digest(given, expected):
            return Response(status_code=403)
        try:
            update = Update.de_json(await request.json(), application.bot)
        except (json.JSONDecodeError, TypeError, KeyError, ValueError):
            return Response(status_code=400)
        await application.update_queue.put(update)
        return Response()

    async def healthz(request: Request) -> Response:
        age = heartbeat_age()
        fresh = age is not None and age <= max_age
        body = {"ok": fresh, "heartbeat_age": None if age is None else round(age)}
        return JSONResponse(body, status_code=200 if fresh else 503)

    return Starlette(
        routes=[
            Route(path, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: SIGTERM stays with the bot, which first gives running car
    commands their grace period (bot/app.py: _serve)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class WebhookServer:
    """Serves `app` on host:port in the running event loop (the one the Application's update queue is in)."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError as exc:
            self._socket.close()
            raise ConfigError(
                f"WEBHOOK_LISTEN/WEBHOOK_PORT: cannot listen on {host}:{port}: {exc.strerror}"
            ) from None
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # its exception, if any
                raise RuntimeError("the webhook server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None and not self._task.done():
            await self._task
        self._socket.close()
