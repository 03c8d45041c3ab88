"""Webhook mode through our own server: only updates signed with the registered secret reach the bot."""

from __future__ import annotations

import os
import re

import httpx

from bot.app import heartbeat_path
from tests.support.bot import fast_client, running_webhook_bot

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _start_from(user_id: int, update_id: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "/start",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            "chat": {"id": user_id, "type": "private", "first_name": "Mallory"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Mallory"},
        },
    }


def _to_chat(bot_api, chat_id: int) -> list:
    return [call for call in bot_api.calls if str(call.params.get("chat_id")) == str(chat_id)]


async def test_forged_updates_are_refused_with_403_and_reach_no_handler(
    bot_settings, simulator_url, sandbox, bot_api
):
    async with running_webhook_bot(bot_settings, fast_client(simulator_url)) as application:
        url = application.bot_data.settings.webhook_url
        async with httpx.AsyncClient() as http:
            unsigned = await http.post(url, json=_start_from(402, 1))
            wrong = await http.post(url, json=_start_from(402, 2), headers={SECRET_HEADER: "guess"})
            empty = await http.post(url, json=_start_from(402, 3), headers={SECRET_HEADER: ""})
        assert [unsigned.status_code, wrong.status_code, empty.status_code] == [403, 403, 403]
        # The bot goes on serving real users; by the time it has answered one, it has seen everything posted.
        alice = sandbox.user(401, "Alice")
        alice.send("/start")
        await alice.wait_for_bot_message("Hi Alice")
    assert _to_chat(bot_api, 402) == []


async def test_without_a_configured_secret_a_random_one_is_registered_and_served(
    bot_settings, simulator_url, sandbox, bot_api
):
    secrets = []
    for run in range(2):
        async with running_webhook_bot(bot_settings, fast_client(simulator_url)) as application:
            secret = bot_api.webhook_secret(bot_api.token)
            assert secret is not None and re.fullmatch(r"[A-Za-z0-9_-]{32,256}", secret)
            assert (
                bot_api.calls_to("setWebhook")[-1].params["secret_token"] == "***"
            )  # sent, masked in the log
            secrets.append(secret)
            alice = sandbox.user(403, "Alice")
            alice.send("/help")  # the sandbox signs its posts with the registered secret
            await alice.wait_for(
                lambda u, n=run + 1: sum("what I can do" in (m.text or "") for m in u.bot_messages) == n
            )

            # Anyone holding the secret (Telegram) is served, as our own post shows.
            url = application.bot_data.settings.webhook_url
            async with httpx.AsyncClient() as http:
                signed = await http.post(
                    url, json=_start_from(403, 900 + run), headers={SECRET_HEADER: secret}
                )
                garbage = await http.post(url, content=b"{not json", headers={SECRET_HEADER: secret})
            assert signed.status_code == 200 and garbage.status_code == 400
            await alice.wait_for(
                lambda u, n=run + 1: sum("Hi Mallory" in (m.text or "") for m in u.bot_messages) == n
            )
    assert secrets[0] != secrets[1]  # a new one each start


async def test_healthz_tells_whether_the_heartbeat_is_fresh(bot_settings, simulator_url):
    async with running_webhook_bot(bot_settings, fast_client(simulator_url)) as application:
        settings = application.bot_data.settings
        health = f"http://127.0.0.1:{settings.webhook_port}/healthz"
        async with httpx.AsyncClient() as http:
            fresh = await http.get(health)
            beat = heartbeat_path(settings)
            os.utime(beat, (beat.stat().st_atime, beat.stat().st_mtime - 600))  # ten minutes without a beat
            stale = await http.get(health)
    assert fresh.status_code == 200 and fresh.json()["ok"] is True
    assert stale.status_code == 503 and stale.json() == {"ok": False, "heartbeat_age": 600}
