"""A password or security answer is never left readable: deleted first, whatever it says and whatever flow the
user left half-way; a delete Telegram refuses is reported, so the user can delete it."""

from __future__ import annotations

import pytest

from bot.bmw.simulator import DEFAULT_PASSWORD, DEFAULT_USERNAME
from bot.chat import texts
from tests.support.bot import link

BOB_LOGIN = ("bob@example.com", "bob-password")
ANSWER = "Rex the dog"


def _sent(user, text: str) -> list:
    return [m for m in user.messages if not m.from_bot and m.text == text]


def _executes(simulator) -> list:
    return simulator.requests_to("executeService", "POST")


async def _bob(sandbox, simulator, tg_id: int):
    simulator.add_account(*BOB_LOGIN, security_answer=ANSWER)
    bob = sandbox.user(tg_id, "Bob")
    await link(bob, *BOB_LOGIN)
    return bob


async def _ask_for_the_answer(bob) -> None:
    bob.send("/unlock")
    bob.press(await bob.wait_for_bot_message("Make sure"), "Yes, unlock")
    await bob.wait_for(lambda u: "security question" in u.last_bot_message().text)


async def _unlocked(bob, simulator) -> None:
    await bob.wait_for_bot_message("Unlock —")
    simulator.advance(60)
    await bob.wait_for_bot_message("is unlocked")


@pytest.mark.parametrize("left_at", ["e-mail", "password"])
async def test_an_abandoned_link_does_not_take_the_security_answer(bot, sandbox, simulator, left_at):
    bob = await _bob(sandbox, simulator, 301)
    bob.send("/link")  # a second account, left half-way
    bob.press(await bob.wait_for_bot_message("Link another account"), "Yes, link another")
    bob.press(await bob.wait_for_bot_message("registered"), "Europe")
    await bob.wait_for_bot_message("e-mail address")
    if left_at == "password":
        bob.send(DEFAULT_USERNAME)
        await bob.wait_for_bot_message("password?")

    await _ask_for_the_answer(bob)
    bob.send(ANSWER)
    await _unlocked(bob, simulator)
    await bob.wait_for_bot_message("Remember the security answer")
    assert [m.deleted for m in _sent(bob, ANSWER)] == [True]
    assert texts.LINK_CHECKING not in bob.transcript()  # the link flow never saw it
    assert bot.bot_data.services.garage.store.account(301).username == BOB_LOGIN[0]

    bob.send("not a password")  # the abandoned link has ended: nothing waits for a password any more
    await bob.wait_for_bot_message("didn't understand")
    assert [m.deleted for m in _sent(bob, "not a password")] == [False]


async def test_an_abandoned_unlock_does_not_take_what_is_typed_for_a_new_link(bot, sandbox, simulator):
    bob = await _bob(sandbox, simulator, 302)
    await _ask_for_the_answer(bob)
    executes = len(_executes(simulator))
    bob.send("/link")
    await bob.wait_for_bot_message("Link another account")
    bob.send(DEFAULT_USERNAME)  # typed ahead of the buttons: not the security answer of the abandoned unlock
    await bob.wait_for_bot_message("didn't understand")
    assert len(_executes(simulator)) == executes
    assert "did not accept that security answer" not in bob.transcript()


async def test_a_refused_delete_is_reported_and_the_secret_still_used(bot, sandbox, simulator, bot_api):
    bob = await _bob(sandbox, simulator, 303)
    await _ask_for_the_answer(bob)
    bot_api.inject("deleteMessage", "error", status=400)
    bob.send(ANSWER)
    await bob.wait_for_bot_message(texts.DELETE_SECRET_YOURSELF)
    await _unlocked(bob, simulator)
    assert [m.deleted for m in _sent(bob, ANSWER)] == [False]  # Telegram refused; the user was told

    alice = sandbox.user(304, "Alice")
    alice.send("/link")
    alice.press(await alice.wait_for_bot_message("registered"), "Europe")
    await alice.wait_for_bot_message("e-mail address")
    alice.send(DEFAULT_USERNAME)
    await alice.wait_for_bot_message("password?")
    bot_api.inject("deleteMessage", "drop")  # deleted, but the answer never arrives: the bot cannot know
    alice.send(DEFAULT_PASSWORD)
    await alice.wait_for_bot_message(texts.DELETE_SECRET_YOURSELF)
    await alice.wait_for_bot_message("Linked!")


async def test_secrets_are_deleted_whatever_they_say(bot, sandbox, simulator):
    alice = sandbox.user(305, "Alice")
    alice.send("/link")
    alice.press(await alice.wait_for_bot_message("registered"), "Europe")
    await alice.wait_for_bot_message("e-mail address")
    alice.send(DEFAULT_USERNAME)
    await alice.wait_for_bot_message("password?")
    # BMW refuses two of them; the one longer than any password is refused unread (and not counted as a
    # failed login: three would start a cool-down).
    for count, wrong in enumerate(("/hunter2", "x" * 4096, "two\nlines"), 1):
        alice.send(wrong)
        await alice.wait_for(
            lambda u, n=count: (
                u.transcript().count("did not accept") + u.transcript().count("longer than any") == n
            )
        )
        assert [m.deleted for m in _sent(alice, wrong)] == [True], alice.transcript()
    alice.send(DEFAULT_PASSWORD)
    await alice.wait_for_bot_message("Linked!")

    bob = await _bob(sandbox, simulator, 306)
    await _ask_for_the_answer(bob)
    bob.send("/Rex")
    await bob.wait_for_bot_message("did not accept that security answer")
    assert [m.deleted for m in _sent(bob, "/Rex")] == [True]
