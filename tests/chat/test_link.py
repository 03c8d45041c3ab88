"""End to end through the loopback Bot API server and the BMW simulator: greeting, linking, unlinking."""

from __future__ import annotations

import logging

import pytest

from bot.bmw.simulator import DEFAULT_PASSWORD, DEFAULT_USERNAME
from bot.chat import texts
from bot.logs import setup_logging
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot, running_webhook_bot


def _file_bytes(settings) -> bytes:
    path = settings.database_path
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*") if p.is_file())


async def test_start_help_and_command_menu(bot, sandbox, bot_api):
    alice = sandbox.user(101, "Alice")
    alice.send("/start")
    greeting = await alice.wait_for_bot_message("Hi Alice")
    assert "/link" in greeting.text
    alice.send("/help")
    help_text = await alice.wait_for_bot_message("Here is what I can do")
    for command in ("/status", "/lock", "/unlock", "/climate", "/charge", "/flash", "/link", "/unlink"):
        assert command in help_text.text
    registered = bot_api.calls_to("setMyCommands")
    assert registered and "unlock" in str(registered[-1].params)


async def test_start_names_the_one_way_offered_then_what_an_i_remote_car_can_do(bot, sandbox):
    alice = sandbox.user(104, "Alice")
    alice.send("/start")
    greeting = await alice.wait_for_bot_message("Hi Alice")
    assert "i Remote API" in greeting.text and "CarData" not in greeting.text  # this bot offers only it
    await link(alice)
    alice.send("/start")
    await alice.wait_for(lambda u: len([m for m in u.bot_messages if "Hi Alice" in (m.text or "")]) == 2)
    linked = [m for m in alice.bot_messages if "Hi Alice" in (m.text or "")][1].text
    for can in ("lock and unlock", "climate", "charging", "lights", "navigation", "finished", "/status"):
        assert can in linked, linked
    assert "read-only" not in linked


async def test_link_deletes_the_password_and_stores_nothing_plain(bot, bot_settings, sandbox, caplog):
    setup_logging("DEBUG")  # the most an operator can ask for
    caplog.set_level(logging.DEBUG)
    alice = sandbox.user(102, "Alice")
    await link(alice)

    done = alice.last_bot_message()
    assert "I3" in done.text and BEV_VIN[-4:] in done.text and REX_VIN[-4:] in done.text
    password_messages = [m for m in alice.messages if not m.from_bot and m.text == DEFAULT_PASSWORD]
    assert password_messages and all(m.deleted for m in password_messages)
    assert all(DEFAULT_PASSWORD not in (m.text or "") for m in alice.bot_messages)
    assert DEFAULT_PASSWORD not in caplog.text
    stored = _file_bytes(bot_settings)
    assert stored, "the database was written"
    assert DEFAULT_PASSWORD.encode() not in stored and DEFAULT_USERNAME.encode() not in stored


async def test_wrong_password_stores_nothing_and_can_be_retried(bot, bot_settings, sandbox, simulator):
    alice = sandbox.user(103, "Alice")
    alice.send("/link")
    alice.press(await alice.wait_for_bot_message("registered"), "Europe")
    await alice.wait_for_bot_message("e-mail")
    alice.send(DEFAULT_USERNAME)
    await alice.wait_for_bot_message("password?")
    alice.send("not-the-password")
    await alice.wait_for_bot_message("did not accept")
    services = bot.bot_data.services
    assert services.garage.store.account(103) is None
    assert not any("not-the-password" in (m.text or "") for m in alice.messages if not m.deleted)

    alice.send(DEFAULT_PASSWORD)
    await alice.wait_for_bot_message("Linked!")
    assert services.garage.store.account(103) is not None


async def test_garbage_email_is_asked_again(bot, sandbox):
    alice = sandbox.user(104, "Alice")
    alice.send("/link")
    alice.press(await alice.wait_for_bot_message("registered"), "USA")
    await alice.wait_for_bot_message("e-mail")
    alice.send("definitely not an address")
    await alice.wait_for_bot_message("doesn't look like an e-mail")
    alice.send("/cancel")
    await alice.wait_for_bot_message("cancelled")


async def test_relink_asks_first_and_unlink_removes_everything(bot, sandbox):
    store = bot.bot_data.services.garage.store
    alice = sandbox.user(105, "Alice")
    await link(alice)
    alice.send("/link")
    ask = await alice.wait_for_bot_message("Link another account instead")
    alice.press(ask, "No, keep it")
    await alice.wait_for_bot_message("stays linked")
    assert store.account(105) is not None

    alice.send("/unlink")
    confirm = await alice.wait_for_bot_message("Remove your BMW account")
    alice.press(confirm, "Yes, remove everything")
    await alice.wait_for_bot_message("all its data are gone")
    assert store.account(105) is None and store.vehicles(105) == []
    alice.send("/status")
    await alice.wait_for_bot_message("/link")


async def test_unlink_takes_only_a_live_confirmation(bot, sandbox):
    """A forged "Yes" (no nonce) removes nothing, and a used confirmation replayed later neither; neither
    touches the message, which may show what the first press did (as after a kill, when Telegram delivers
    the press again)."""
    store = bot.bot_data.services.garage.store
    alice = sandbox.user(115, "Alice")
    await link(alice)
    alice.send("/unlink")
    forged = await alice.wait_for_bot_message("Remove your BMW account")
    alice.press_data(forged.message_id, "unlink:yes")
    await alice.wait_for(lambda u: any(a.text == texts.UNLINK_KEPT for a in u.callback_answers()))
    assert "Remove your BMW account" in (alice.now(forged).text or "")
    assert store.account(115) is not None

    alice.send("/unlink")
    await alice.wait_for(lambda u: "Remove your BMW account" in (u.last_bot_message().text or ""))
    asked = alice.last_bot_message()
    yes = asked.button("Yes, remove everything").callback_data
    assert yes is not None and yes != "unlink:yes"
    alice.press(asked, "Yes, remove everything")
    await alice.wait_for_bot_message("all its data are gone")
    await link(alice)
    alice.press_data(asked.message_id, yes)  # the same press again, after a new link
    await alice.wait_for(lambda u: sum(a.text == texts.UNLINK_KEPT for a in u.callback_answers()) == 2)
    assert store.account(115) is not None
    assert "all its data are gone" in (alice.now(asked).text or "")


@pytest.mark.parametrize("text", ["hello there", "x" * 4000, "/nonsense"])
async def test_bad_input_gets_a_short_helpful_answer(bot, sandbox, text):
    alice = sandbox.user(106, "Alice")
    alice.send(text)
    reply = await alice.wait_for_bot_message("/help")
    assert len(reply.text) < 200


async def test_sticker_and_edited_message(bot, sandbox):
    alice = sandbox.user(107, "Alice")
    alice.send_sticker()
    await alice.wait_for_bot_message("didn't understand")
    sent = alice.send("/status")
    await alice.wait_for_bot_message("/link")
    alice.edit(sent, "/lock")
    await alice.wait_for_bot_message("only act on new messages")


async def test_allow_list_refuses_strangers_politely(bot_settings, simulator_url, sandbox):
    from tests.support.bot import fast_client, running_bot

    settings = bot_settings.model_copy(update={"allowed_telegram_ids": frozenset({1})})
    async with running_bot(settings, fast_client(simulator_url)):
        mallory = sandbox.user(666, "Mallory")
        mallory.send("/start")
        refusal = await mallory.wait_for_bot_message("private bot")
        assert "666" in refusal.text
        mallory.send("/link")
        await mallory.wait_for(lambda u: len(u.bot_messages) == 2)
        assert all("registered" not in m.text for m in mallory.bot_messages)


@pytest.fixture(params=["polling", "webhook"])
async def either_bot(request, bot_settings, simulator_url):
    """The bot in each delivery mode: long polling, or webhook posts from the sandbox."""
    runner = running_bot if request.param == "polling" else running_webhook_bot
    async with runner(bot_settings, fast_client(simulator_url)) as application:
        yield application


async def test_typed_ahead_link_arrives_in_one_batch_and_still_links_and_deletes_the_password(
    either_bot, sandbox
):
    alice = sandbox.user(120, "Alice")
    alice.send("/link")
    region = await alice.wait_for_bot_message("registered")
    with sandbox.together():  # region, e-mail and password reach the bot before it has answered any
        alice.press(region, "Europe")
        alice.send(DEFAULT_USERNAME)
        password = alice.send(DEFAULT_PASSWORD)
    await alice.wait_for_bot_message("Linked!")
    assert next(m for m in alice.messages if m.message_id == password.message_id).deleted
    assert not any("doesn't look like an e-mail" in (m.text or "") for m in alice.bot_messages)
    assert either_bot.bot_data.services.garage.store.account(120) is not None
    await alice.wait_for(lambda _: either_bot.update_processor.busy_chats == 0)  # idle: no queue kept
