"""Abuse: forged, replayed, stale and cross-user callback data, and one user flooding remote commands.

Mallory is a linked user of her own (so car refs are really resolved against her cars), pressing whatever
callback data she likes on whatever message id. Nothing she sends may reach Alice's cars, leave a press
unanswered, or break the bot for anyone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import string

import pytest

from bot.chat import keyboards, texts
from bot.sandbox import SandboxUser
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot

MALLORY_LOGIN = ("mallory@example.com", "mallory-password")
ACTIONS = sorted(
    {value for name, value in vars(keyboards).items() if name.isupper() and isinstance(value, str)} - {":"}
)
ALICE_VINS = (BEV_VIN, REX_VIN)


def _executes(simulator) -> list:
    return simulator.requests_to("executeService", "POST")


def _reads_of(simulator, vins: tuple[str, ...]) -> list:
    return [r for r in simulator.requests if any(vin in r.path for vin in vins)]


def _forged_data(refs: list[str], seed: int = 6, count: int = 100) -> list[str]:
    """Callback data a client can send (1-64 bytes): every action with stolen refs, VINs and garbage."""
    rng = random.Random(seed)
    args = [*refs, *ALICE_VINS, "", "yes", "no", "usa", "0" * 10, "A" * 60, "../../", "%00", "🚗" * 10]
    data = [f"{action}:{arg}" for action in ACTIONS for arg in (rng.choice(args), rng.choice(refs))]
    alphabet = string.printable + "äöü€🚗\x00:"
    while len(data) < count:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64)))
        while len(text.encode()) > 64:
            text = text[:-1]
        data.append(text or "x")
    data.append(bytes(rng.randrange(32, 127) for _ in range(64)).decode())  # exactly 64 bytes
    return [item for item in data if 1 <= len(item.encode()) <= 64]


async def _answered(user: SandboxUser, query_ids: list[str], timeout: float = 20.0) -> None:  # noqa: ASYNC109
    wanted = set(query_ids)
    await user.wait_for(lambda u: wanted <= {a.query_id for a in u.callback_answers()}, timeout)


async def _status(user: SandboxUser):
    before = sum("updated" in (m.text or "") for m in user.bot_messages)
    user.send("/status")
    await user.wait_for(lambda u: sum("updated" in (m.text or "") for m in u.bot_messages) > before)
    return user.last_bot_message()


@pytest.fixture
def mallory_account(simulator) -> list[str]:
    return simulator.add_account(*MALLORY_LOGIN, security_answer="mallory's answer")


async def test_fuzzed_callback_data_reaches_no_car_and_every_press_is_answered(
    bot, sandbox, simulator, mallory_account, caplog
):
    caplog.set_level(logging.ERROR)
    alice, mallory = sandbox.user(301, "Alice"), sandbox.user(302, "Mallory")
    await link(alice)
    await link(mallory, *MALLORY_LOGIN)
    status = await _status(alice)
    alice.send("/unlock")
    ask = await alice.wait_for_bot_message("Make sure")
    alice_data = [b.callback_data for m in (status, ask) for row in m.buttons for b in row if b.callback_data]
    refs = [keyboards.parse(item)[1] for item in alice_data]
    executes, alice_reads = len(_executes(simulator)), len(_reads_of(simulator, ALICE_VINS))

    forged = alice_data + _forged_data(refs)
    message_ids = [0, 1, status.message_id, ask.message_id, 10**9]
    pressed = [mallory.press_data(message_ids[i % len(message_ids)], data) for i, data in enumerate(forged)]
    await _answered(mallory, pressed)

    assert len(_executes(simulator)) == executes  # no command at all: Mallory only ever held others' refs
    assert len(_reads_of(simulator, ALICE_VINS)) == alice_reads
    mallory_text = " ".join((m.text or "") + (m.caption or "") for m in mallory.bot_messages)
    for secret in (*ALICE_VINS, "demo@example.com"):
        assert secret not in mallory_text
    assert "went wrong" not in mallory_text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # Alice's pending confirmation survived the storm and both users are still served.
    alice.press(ask, "Yes, unlock")
    await alice.wait_for_bot_message("BMW has the request")
    assert len(_executes(simulator)) == executes + 1
    assert all(BEV_VIN in r.path for r in _executes(simulator)[executes:])
    await _status(mallory)


async def test_replayed_presses_start_one_command(bot, sandbox, simulator):
    alice = sandbox.user(303)
    await link(alice)
    status = await _status(alice)
    lock = status.button("Lock").callback_data
    pressed = [alice.press_data(status.message_id, lock) for _ in range(5)]
    await _answered(alice, pressed)
    await alice.wait_for_bot_message("still busy")
    assert len(_executes(simulator)) == 1

    simulator.advance(60)
    await alice.wait_for_bot_message("is locked")
    alice.send("/unlock")
    ask = await alice.wait_for_bot_message("Make sure")
    yes = ask.button("Yes, unlock").callback_data
    pressed = [alice.press_data(ask.message_id, yes) for _ in range(5)]  # one confirmation, five presses
    await _answered(alice, pressed)
    await alice.wait_for_bot_message("Unlock —")
    simulator.advance(60)
    await alice.wait_for_bot_message("is unlocked")
    assert [r.form["serviceType"] for r in _executes(simulator)] == ["DOOR_LOCK", "DOOR_UNLOCK"]


async def test_stale_buttons_after_unlink_ask_nothing_of_bmw(bot, sandbox, simulator):
    alice = sandbox.user(304)
    await link(alice)
    status = await _status(alice)
    alice.send("/cars")
    picker = await alice.wait_for_bot_message("Which car?")
    alice.send("/unlink")
    alice.press(await alice.wait_for_bot_message("Remove your BMW account"), "Yes, remove")
    await alice.wait_for_bot_message("all its data are gone")
    requests = len(simulator.requests)

    buttons = [b for m in (status, picker) for row in m.buttons for b in row if b.callback_data]
    pressed = [alice.press_data(status.message_id, b.callback_data) for b in buttons]
    await _answered(alice, pressed)
    answers = {a.query_id: a.text for a in alice.callback_answers()}
    for query_id, button in zip(pressed, buttons, strict=True):
        if button.callback_data.startswith(keyboards.PICK):
            continue  # "Other car" opens the picker, which now says to /link
        assert answers[query_id] == texts.STALE_BUTTON, button.text
    await alice.wait_for(lambda u: texts.NOT_LINKED in (u.last_bot_message().text or ""))
    assert len(simulator.requests) == requests


async def test_flooding_user_is_limited_while_others_are_served(
    bot_settings, simulator, simulator_url, sandbox, mallory_account
):
    simulator.service_seconds = 0  # commands finish at once, so only the rate limit holds the flood back
    limit = 2
    settings = bot_settings.model_copy(update={"remote_commands_per_minute": limit})
    async with running_bot(settings, fast_client(simulator_url)):
        alice, bob = sandbox.user(305, "Alice"), sandbox.user(306, "Bob")
        await link(alice)
        await link(bob, *MALLORY_LOGIN)
        before = len(alice.bot_messages)
        limited = "That's a lot of commands"
        bob_answered = asyncio.Event()
        sent = 0

        async def flood() -> None:
            nonlocal sent
            # Until Bob is served and the limit has answered Alice: both happen while she floods.
            while not (bob_answered.is_set() and any(limited in (m.text or "") for m in alice.bot_messages)):
                assert sent < 2_000, "the flood never met the limit, or Bob was never answered"
                alice.send("/flash")
                sent += 1
                await asyncio.sleep(0.02)  # faster than the bot may answer one chat (AIORateLimiter)

        async def bob_status() -> None:
            await asyncio.sleep(0.05)  # the flood is well under way
            await _status(bob)
            bob_answered.set()

        await asyncio.gather(flood(), bob_status())

        # Every flood message gets exactly one answer; `limit` of them reached BMW, the rest were refused.
        done = ("flashed its lights", "still busy", limited)
        await alice.wait_for(
            lambda u: sum(any(d in (m.text or "") for d in done) for m in u.bot_messages[before:]) == sent,
            timeout=30,
        )
        replies = [m.text or "" for m in alice.bot_messages[before:]]
        assert len(replies) == sent
        assert sum(done[0] in text for text in replies) == limit
        alice_executes = [r for r in _executes(simulator) if r.username == "demo@example.com"]
        assert len(alice_executes) == limit
        # Bob's own commands are his own budget.
        bob.send("/flash")
        await bob.wait_for_bot_message("flashed its lights")
