"""End to end: status, remote commands, unlock confirmation and the security answer, safety and faults."""

from __future__ import annotations

import asyncio

import pytest

from bot.bmw.simulator import Fault
from bot.chat import keyboards, remote, texts
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot


async def _status(user):
    user.send("/status")
    return await user.wait_for_bot_message("updated")


def _executes(simulator, vin: str | None = None):
    return [r for r in simulator.requests_to("executeService", "POST") if vin is None or vin in r.path]


async def test_status_shows_the_car_and_only_supported_buttons(bot, sandbox, simulator):
    simulator.set_status(BEV_VIN, chargingLevelHv=67, remainingRangeElectric=101, doorLockState="SECURED")
    alice = sandbox.user(201)
    await link(alice)
    status = await _status(alice)
    assert "67 %" in status.text and "101 km" in status.text
    assert "secured" in status.text and "updated" in status.text
    assert "fuel" not in status.text  # a BEV reports remainingFuel 0 for a tank it does not have
    labels = [button.text for row in status.buttons for button in row]
    assert "🔄 Refresh" in labels and "🔒 Lock" in labels and "🔓 Unlock" in labels
    assert "🚗 Other car" in labels  # two cars on the demo account
    assert status.button("📋 VIN").copy_text == BEV_VIN  # copied on the user's side, nothing sent to the bot
    car = simulator.vehicle(BEV_VIN)
    for _action, label, capability in keyboards.CAR_BUTTONS:
        if capability and not car.supports(capability):  # hidden when the car lacks it
            assert label not in labels

    simulator.set_status(BEV_VIN, chargingLevelHv=68)
    alice.press(status, "Refresh")
    refreshed = await alice.wait_for_bot_message("68 %")
    assert refreshed.message_id == status.message_id  # edited in place
    assert alice.callback_answers()


def _fixed(template: str) -> str:
    """The longest part of a message that does not depend on the car."""
    return max(template.split("{car}"), key=len).strip()


async def test_a_row_of_remote_actions_is_a_working_command_button_and_help_line(bot, sandbox, simulator):
    """A RemoteAction row is all a remote command needs: its /help line, its command and its button under
    /status each reach the car and end in the row's result (unlock asks first)."""
    simulator.plug_in(BEV_VIN, charging=False)  # CHARGE_NOW needs the cable
    typing, pressing = sandbox.user(231), sandbox.user(232)
    await asyncio.gather(link(typing), link(pressing))
    typing.send("/help")
    help_text = (await typing.wait_for_bot_message("Here is what I can do")).text
    status = await _status(pressing)
    commands = [action for action in texts.REMOTE_ACTIONS if action.command]
    buttons = [action for action in texts.REMOTE_ACTIONS if action.button]
    assert commands and buttons
    for user, actions in ((typing, commands), (pressing, buttons)):
        for action in actions:
            if user is typing:
                assert f"/{action.command} — {action.describe}" in help_text
                user.send(f"/{action.command}")
            else:
                assert action.button is not None
                user.press(status, action.button)
            if action.asks_first:
                await user.wait_for_bot_message(_fixed(texts.UNLOCK_ASK))
                continue
            await user.wait_for_bot_message(f"{action.name} —")
            simulator.advance(60)
            await user.wait_for_bot_message(_fixed(action.done))
    executed = [r for r in simulator.requests_to("executeService", "POST") if BEV_VIN in r.path]
    assert len(executed) == sum(not action.asks_first for action in commands + buttons)


async def test_second_car_is_chosen_with_the_picker(bot, sandbox):
    alice = sandbox.user(202)
    await link(alice)
    alice.send("/cars")
    picker = await alice.wait_for_bot_message("Which car?")
    alice.press(picker, REX_VIN[-4:])
    status = await alice.wait_for_bot_message("on fuel")
    assert REX_VIN[-4:] in status.text


async def test_lock_edits_one_message_through_to_the_result(bot, sandbox, simulator):
    simulator.set_status(BEV_VIN, doorLockState="UNLOCKED")
    alice = sandbox.user(203)
    await link(alice)
    status = await _status(alice)
    alice.press(status, "Lock")
    progress = await alice.wait_for_bot_message("Lock —")
    simulator.advance(60)
    done = await alice.wait_for_bot_message("is locked")
    assert done.message_id == progress.message_id and done.edits >= 2
    assert simulator.vehicle(BEV_VIN).status["doorLockState"] == "LOCKED"
    assert len(_executes(simulator, BEV_VIN)) == 1


async def test_commands_work_typed_too_and_report_failure(bot, sandbox, simulator):
    alice = sandbox.user(204)
    await link(alice)
    simulator.vehicle(BEV_VIN).service_mode = "not_executed"
    alice.send("/flash")
    await alice.wait_for_bot_message("Flash lights —")
    simulator.advance(60)
    await alice.wait_for_bot_message("did not carry it out")
    simulator.vehicle(BEV_VIN).service_mode = "timed_out"
    alice.send("/climate")
    await alice.wait_for_bot_message("Climate —")
    simulator.advance(60)
    await alice.wait_for_bot_message("did not answer in time")


async def test_unlock_asks_first_and_a_used_or_stale_yes_does_nothing(bot, sandbox, simulator, monkeypatch):
    alice = sandbox.user(205)
    await link(alice)
    alice.send("/unlock")
    ask = await alice.wait_for_bot_message("Unlock")
    assert "Make sure you can see it" in ask.text
    alice.press(ask, "No")
    await alice.wait_for_bot_message("stays locked")
    assert _executes(simulator) == []

    alice.send("/unlock")
    ask = await alice.wait_for_bot_message("Make sure")
    yes = ask.button("Yes, unlock").callback_data
    assert ask.button("Yes, unlock").style == "danger" and ask.button("No").style is None
    alice.press(ask, "Yes, unlock")
    await alice.wait_for_bot_message("Unlock —")
    simulator.advance(60)
    await alice.wait_for_bot_message("is unlocked")
    assert len(_executes(simulator)) == 1

    alice.press_data(ask.message_id, yes)  # replayed
    await alice.wait_for(lambda u: any("expired" in (a.text or "") for a in u.callback_answers()))
    assert len(_executes(simulator)) == 1

    monkeypatch.setattr(remote, "UNLOCK_CONFIRM_SECONDS", -1.0)  # every confirmation is born expired
    alice.send("/unlock")
    await alice.wait_for(lambda u: u.last_bot_message().text.startswith("Unlock"))
    alice.press(alice.last_bot_message(), "Yes, unlock")
    await alice.wait_for_bot_message("has expired")
    assert len(_executes(simulator)) == 1


async def test_security_answer_is_asked_deleted_retried_and_remembered(bot, sandbox, simulator, bot_settings):
    simulator.add_account("bob@example.com", "bob-password", security_answer="Rex the dog")
    bob = sandbox.user(206, "Bob")
    await link(bob, "bob@example.com", "bob-password")
    store = bot.bot_data.services.garage.store

    bob.send("/unlock")
    bob.press(await bob.wait_for_bot_message("Make sure"), "Yes, unlock")
    await bob.wait_for_bot_message("security question")
    bob.send("wrong guess")
    await bob.wait_for_bot_message("did not accept that security answer")
    assert all(m.deleted for m in bob.messages if m.text == "wrong guess")
    assert store.account(206).security_answer is None

    bob.send("/unlock")
    bob.press(await bob.wait_for_bot_message("Make sure"), "Yes, unlock")
    await bob.wait_for(lambda u: "security question" in u.last_bot_message().text)
    bob.send("Rex the dog")
    await bob.wait_for_bot_message("Unlock —")
    simulator.advance(60)
    await bob.wait_for_bot_message("is unlocked")
    offer = await bob.wait_for_bot_message("Remember the security answer")
    assert all(m.deleted for m in bob.messages if m.text == "Rex the dog")
    bob.press(offer, "Yes, remember")
    await bob.wait_for_bot_message("Saved, encrypted")
    assert store.account(206).security_answer == "Rex the dog"
    db = bot_settings.database_path
    assert b"Rex the dog" not in b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))

    # Next time the stored answer is used without asking.
    before = len(bob.messages)
    bob.send("/unlock")
    bob.press(await bob.wait_for_bot_message("Make sure"), "Yes, unlock")
    await bob.wait_for(lambda u: "Unlock —" in u.last_bot_message().text)
    simulator.advance(60)
    await bob.wait_for(lambda u: "is unlocked" in u.last_bot_message().text)
    assert not any("security question" in (m.text or "") for m in bob.messages[before:])


async def test_forged_press_from_another_user_touches_no_car(bot, sandbox, simulator):
    alice, mallory = sandbox.user(207, "Alice"), sandbox.user(208, "Mallory")
    await link(alice)
    mallory.send("/start")
    await mallory.wait_for_bot_message("Hi Mallory")
    status = await _status(alice)
    alice.send("/unlock")
    ask = await alice.wait_for_bot_message("Make sure")
    presses = [b.callback_data for row in status.buttons + ask.buttons for b in row if b.callback_data]
    for data in presses:
        mallory.press_data(ask.message_id, data)
    mallory.press_data(status.message_id, f"lock:{BEV_VIN}")
    mallory.press_data(status.message_id, "uy:" + "A" * 60)
    await mallory.wait_for(lambda u: len(u.callback_answers()) >= len(presses) + 2)
    assert _executes(simulator) == []
    assert not any("Lock —" in (m.text or "") or "Unlock —" in (m.text or "") for m in mallory.bot_messages)
    # Alice's own confirmation still works: Mallory's presses did not consume it.
    alice.press(ask, "Yes, unlock")
    await alice.wait_for_bot_message("Unlock —")


async def test_bmw_errors_become_one_line_and_the_bot_keeps_serving(
    bot_settings, simulator, simulator_url, sandbox
):
    async with running_bot(bot_settings, fast_client(simulator_url, read_timeout=0.5)):
        alice = sandbox.user(209)
        await link(alice)
        simulator.add_fault(Fault(path=r"/status$", kind="error", status=500, times=None))
        alice.send("/status")
        await alice.wait_for_bot_message("not reachable")
        simulator.clear_faults()
        simulator.add_fault(Fault(path=r"/status$", kind="timeout", delay=3.0, times=None))
        alice.send("/status")
        await alice.wait_for(
            lambda u: "not reachable" in u.last_bot_message().text and u.last_bot_message().edits
        )
        simulator.clear_faults()
        await _status(alice)


async def test_expired_token_logs_in_again_transparently(bot, sandbox, simulator):
    alice = sandbox.user(210)
    await link(alice)
    await _status(alice)
    logins = len(simulator.requests_to("oauth/token"))
    simulator.expire_tokens()
    alice.send("/status")
    await alice.wait_for(lambda u: sum("updated" in (m.text or "") for m in u.bot_messages) == 2)
    assert len(simulator.requests_to("oauth/token")) == logins + 1


async def test_two_users_at_once_and_a_slow_car_blocks_nobody(bot, sandbox, simulator):
    alice, bob = sandbox.user(211, "Alice"), sandbox.user(212, "Bob")
    simulator.add_account("bob@example.com", "bob-password")
    await asyncio.gather(link(alice), link(bob, "bob@example.com", "bob-password"))
    alice.send("/lock")
    await alice.wait_for_bot_message("Lock —")  # Alice's car is now waiting on the (frozen) clock
    await _status(bob)  # Bob is served meanwhile
    bob_cars = {r.path for r in simulator.requests_to("/status") if r.username == "bob@example.com"}
    assert bob_cars and not any(BEV_VIN in path for path in bob_cars)
    simulator.advance(60)
    await alice.wait_for_bot_message("is locked")


async def test_command_flood_is_limited_per_user(bot, sandbox, simulator):
    alice, bob = sandbox.user(213, "Alice"), sandbox.user(214, "Bob")
    simulator.add_account("bob@example.com", "bob-password")
    await link(alice)
    await link(bob, "bob@example.com", "bob-password")
    limit = bot.bot_data.settings.remote_commands_per_minute
    for _ in range(limit + 2):
        alice.send("/flash")
        simulator.advance(60)
        await asyncio.sleep(0.05)
    await alice.wait_for_bot_message("wait")
    assert len(_executes(simulator)) <= limit
    bob.send("/flash")
    await bob.wait_for_bot_message("Flash lights —")


async def test_horn_and_finder_where_supported_and_the_finder_answers_with_a_pin(bot, sandbox, simulator):
    alice = sandbox.user(215)
    await link(alice)
    status = await _status(alice)
    alice.press(status, "Horn")
    await alice.wait_for_bot_message("Horn —")
    simulator.advance(60)
    await alice.wait_for_bot_message("sounded its horn")

    alice.press(status, "Find")
    await alice.wait_for_bot_message("Find car —")
    simulator.advance(60)
    await alice.wait_for_bot_message("reported where it is")
    await alice.wait_for(lambda u: any(m.location for m in u.bot_messages))
    position = simulator.vehicle(BEV_VIN).status["position"]
    pin = next(m.location for m in alice.bot_messages if m.location)
    assert pin == pytest.approx((position["lat"], position["lon"]))

    alice.press(status, "Location")  # the pin, with its coordinates to copy
    await alice.wait_for(lambda u: len([m for m in u.bot_messages if m.location]) == 2)
    located = [m for m in alice.bot_messages if m.location][-1]
    assert located.location == pytest.approx((position["lat"], position["lon"]))
    assert located.button("📋 Position").copy_text == f"{position['lat']:.5f}, {position['lon']:.5f}"

    alice.send("/cars")
    alice.press(await alice.wait_for_bot_message("Which car?"), REX_VIN[-4:])
    rex_status = await alice.wait_for_bot_message("on fuel")
    labels = [button.text for row in rex_status.buttons for button in row]
    assert "📯 Horn" not in labels, rex_status.text  # the REX, like the UK example, has no horn service
    alice.press_data(
        rex_status.message_id, "horn:" + rex_status.button("Refresh").callback_data.split(":")[1]
    )
    await alice.wait_for(lambda u: any("does not support" in (a.text or "") for a in u.callback_answers()))
    assert not [r for r in simulator.requests_to("executeService", "POST") if REX_VIN in r.path]


async def test_a_car_command_waiting_for_the_car_holds_up_neither_its_user_nor_others(
    bot, sandbox, simulator
):
    alice, bob = sandbox.user(221, "Alice"), sandbox.user(222, "Bob")
    simulator.add_account("bob@example.com", "bob-password")
    await asyncio.gather(link(alice), link(bob, "bob@example.com", "bob-password"))
    simulator.service_seconds = 3600  # the car takes an hour, unless the test moves the clock
    alice.send("/lock")
    await alice.wait_for_bot_message("Lock —")
    await _status(alice)  # her own next update is served meanwhile, in the same chat
    await _status(bob)
    simulator.advance(3600)
    await alice.wait_for_bot_message("is locked")

    alice.send("/unlock")  # the unlock conversation too: its step waiting for the car runs on its own
    alice.press(await alice.wait_for_bot_message("Make sure"), "Yes, unlock")
    await alice.wait_for_bot_message("Unlock —")
    alice.send("/status")
    await alice.wait_for(lambda u: sum("updated" in (m.text or "") for m in u.bot_messages) == 2)
    simulator.advance(3600)
    await alice.wait_for_bot_message("is unlocked")
