"""Secrets: after a full session, no password, token or security answer is anywhere it should not be.

The session: two users link (one after a wrong password), read status, unlock with a security answer that
is asked, deleted and remembered, lock after their tokens expired (a refresh grant), unlock with the
remembered answer, and one of them unlinks. Then every place the bot writes is searched: the log records
(at DEBUG, the most an operator can ask for) and the log stream itself, every bot message and Bot API call
parameter the sandbox keeps, and the SQLite files (database, -wal, -shm) while running and after stop.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from bot.logs import setup_logging
from bot.sandbox import SandboxUser
from tests.support.bot import fast_client, link, running_bot

ALICE = ("alice@example.com", "Pw-Alice-7f3a9c1e")
CAROL = ("carol@example.com", "Pw-Carol-2b8d4f6a")
CAROL_WRONG = "Pw-Carol-wrong-5e1c"
ANSWER = "Answer-Rex-the-dog-93"


@pytest.fixture
def bot_token() -> str:
    """A token of real length, so the log redaction is tested on what Telegram issues."""
    return "7212345678:AAHk9vQ2xLw4sTz8rYb3nUc6mPd0eFg1hJi"


def _disk(settings) -> dict[str, bytes]:
    path = settings.database_path
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}


async def _session(bot, sandbox, simulator) -> tuple[SandboxUser, SandboxUser]:
    alice, carol = sandbox.user(601, "Alice"), sandbox.user(602, "Carol")
    await link(alice, *ALICE)
    alice.send("/status")
    await alice.wait_for_bot_message("updated")

    alice.send("/unlock")
    alice.press(await alice.wait_for_bot_message("Make sure"), "Yes, unlock")
    await alice.wait_for_bot_message("security question")
    alice.send(ANSWER)
    await alice.wait_for_bot_message("BMW has the request")
    simulator.advance(60)
    alice.press(await alice.wait_for_bot_message("Remember the security answer"), "Yes, remember")
    await alice.wait_for_bot_message("Saved, encrypted")

    simulator.expire_tokens()  # the next call refreshes: a refresh token travels, new tokens arrive
    alice.send("/lock")
    await alice.wait_for_bot_message("BMW has the request")
    simulator.advance(60)
    await alice.wait_for_bot_message("is locked")
    alice.send("/unlock")
    await alice.wait_for(lambda u: "Make sure" in u.last_bot_message().text)
    alice.press(alice.last_bot_message(), "Yes, unlock")
    await alice.wait_for(lambda u: "BMW has the request" in u.last_bot_message().text)
    simulator.advance(60)
    await alice.wait_for(lambda u: "is unlocked" in u.last_bot_message().text)

    carol.send("/link")
    carol.press(await carol.wait_for_bot_message("registered"), "Europe")
    await carol.wait_for_bot_message("e-mail")
    carol.send(CAROL[0])
    await carol.wait_for_bot_message("password?")
    carol.send(CAROL_WRONG)
    await carol.wait_for_bot_message("did not accept")
    carol.send(CAROL[1])
    await carol.wait_for_bot_message("Linked!")
    carol.send("/status")
    await carol.wait_for_bot_message("updated")
    carol.send("/unlink")
    carol.press(await carol.wait_for_bot_message("Remove your BMW account"), "Yes, remove")
    await carol.wait_for_bot_message("all its data are gone")
    return alice, carol


async def test_no_secret_in_logs_transcripts_or_database(
    bot_settings, simulator, simulator_url, sandbox, bot_api, bot_token, caplog, capsys, monkeypatch
):
    simulator.add_account(*ALICE, security_answer=ANSWER)
    simulator.add_account(*CAROL)
    issued: list[dict[str, Any]] = []
    original = simulator.accounts.issue_token

    def recording(form: dict[str, str]) -> dict[str, Any]:
        body = original(form)
        issued.append(body)
        return body

    monkeypatch.setattr(simulator.accounts, "issue_token", recording)
    setup_logging("DEBUG")
    caplog.set_level(logging.DEBUG)

    async with running_bot(bot_settings, fast_client(simulator_url)) as bot:
        alice, carol = await _session(bot, sandbox, simulator)
        running = _disk(bot_settings)
    stopped = _disk(bot_settings)

    tokens = [body[key] for body in issued for key in ("access_token", "refresh_token")]
    grants = [r.form["grant_type"] for r in simulator.requests_to("oauth/token")]
    assert "refresh_token" in grants and len(tokens) >= 6  # the session really moved tokens around
    secrets = {"password": [ALICE[1], CAROL[1], CAROL_WRONG], "answer": [ANSWER], "token": tokens}
    secrets["bot token"] = [bot_token.split(":", 1)[1]]
    # Not vacuous: the secrets did pass through the bot (the users typed them, BMW checked them).
    typed = [m.text for user in (alice, carol) for m in user.messages if not m.from_bot]
    assert {ALICE[1], CAROL[1], CAROL_WRONG, ANSWER} <= set(typed)
    assert all(m.deleted for user in (alice, carol) for m in user.messages if m.text in (ALICE[1], ANSWER))
    assert any(name.endswith("-wal") for name in running) and "bot.sqlite3" in stopped

    record_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
    )
    places: dict[str, str | bytes] = {
        "log records": record_text,
        "log stream": capsys.readouterr().err,
        "bot messages": "\n".join(
            f"{m.text} {m.caption} {m.buttons}"
            for user in (alice, carol)
            for m in user.messages
            if m.from_bot
        ),
        "Bot API calls": "\n".join(f"{c.method} {c.params} {c.description}" for c in bot_api.calls),
        "BMW request log": "\n".join(str(r) for r in simulator.requests),
    }
    for stage, files in (("running", running), ("stopped", stopped)):
        for name, data in files.items():
            places[f"{name} ({stage})"] = data
    assert any(r.levelno == logging.DEBUG for r in caplog.records) and places["log stream"]  # it logged
    for place, content in places.items():
        for kind, values in secrets.items():
            for value in values:
                needle: str | bytes = value.encode() if isinstance(content, bytes) else value
                assert needle not in content, f"a {kind} in the {place}"
    # The e-mail addresses are personal data: never on disk in plain text either.
    for files in (running, stopped):
        for data in files.values():
            assert ALICE[0].encode() not in data and CAROL[0].encode() not in data
