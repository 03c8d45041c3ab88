"""Webhook delivery: after setWebhook, a task POSTs the bot's updates to its URL, as Telegram does."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bot.sandbox.state import Bot, SandboxState, Webhook

# Webhook retries back off quickly: tests wait on them, and a loopback receiver recovers fast.
WEBHOOK_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


async def deliver(state: SandboxState, bot: Bot, hook: Webhook) -> None:
    """POST pending updates to the webhook one at a time, in order, retrying each until it is accepted."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {}
    failures = 0
    async with httpx.AsyncClient(timeout=10) as client:
        while bot.webhook is hook:
            with state.lock:
                pending = bot.deliverable(1)
                waiter = None if pending else bot.updates_changed.waiter()
            if waiter is not None:
                try:
                    await waiter[1].wait()
                finally:
                    with state.lock:
                        bot.updates_changed.discard(waiter)
                continue
            update = pending[0]
            error = await _post_update(client, hook.url, update, headers)
            with state.lock:
                if error is None:
                    bot.updates = [u for u in bot.updates if u["update_id"] != update["update_id"]]
                    failures = 0
                    continue
                hook.last_error_date, hook.last_error_message = int(time.time()), error
            await asyncio.sleep(WEBHOOK_RETRY_DELAYS[min(failures, len(WEBHOOK_RETRY_DELAYS) - 1)])
            failures += 1


async def _post_update(
    client: httpx.AsyncClient, url: str, update: dict[str, Any], headers: dict[str, str]
) -> str | None:
    """POST one update; None when the webhook took it, else getWebhookInfo's last_error_message."""
    try:
        response = await client.post(url, json=update, headers=headers)
    except httpx.ConnectError:
        return "Connection refused"
    except httpx.TimeoutException:
        return "Read timeout expired"
    except httpx.HTTPError:
        return "Connection error"
    if response.is_success:
        return None
    return f"Wrong response from the webhook: {response.status_code} {response.reason_phrase}"
