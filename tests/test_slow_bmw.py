"""Reads for a waiting user, end to end: one message when BMW is quick, a placeholder when it is slow, and
"still waiting" then a verdict within the budget when it hangs (the budget shrunk to fractions of a second).
"""

from __future__ import annotations

import pytest

from bot.bmw.simulator import Fault
from bot.chat import common, texts
from bot.sandbox import SandboxUser
from tests.support.bot import link

HANG = 8.0  # seconds BMW takes to answer a hanging read: far beyond the shrunk budget below
# (command, path of its BMW calls, the placeholder shown while it waits)
READS = [
    ("/status", r"/status$", texts.UPDATING),
    ("/map", "rangemap", texts.MAP_LOADING),
    ("/trips", "statistics", texts.TRIPS_LOADING),
    ("/destinations", "destinations", texts.DESTINATIONS_LOADING),
    ("/schedule", "chargingprofile", texts.SCHEDULE_LOADING),
]


def shrink(monkeypatch: pytest.MonkeyPatch, *, one: float, still: float, give_up: float) -> None:
    monkeypatch.setattr(common, "TYPING_AFTER_SECONDS", 0.05)
    monkeypatch.setattr(common, "ONE_MESSAGE_SECONDS", one)
    monkeypatch.setattr(common, "STILL_WAITING_SECONDS", still)
    monkeypatch.setattr(common, "GIVE_UP_SECONDS", give_up)


def sent_texts(bot_api, method: str, message_id: int | None = None) -> list[str]:
    """The texts the bot sent (or, for an edit, gave message `message_id`), in order."""
    return [
        call.params.get("text", "")
        for call in bot_api.calls_to(method)
        if call.ok and (message_id is None or call.params.get("message_id") == str(message_id))
    ]


async def linked(sandbox, user_id: int) -> SandboxUser:
    user = sandbox.user(user_id)
    await link(user)
    return user


def waiting(bot, user: SandboxUser, placeholder: str) -> str:
    """The placeholder as the user's chosen car fills it in."""
    return placeholder.format(car=texts.car_label(bot.bot_data.services.garage.car(user.id)))


@pytest.mark.parametrize(("command", "path", "placeholder"), READS, ids=[r[0] for r in READS])
async def test_a_quick_answer_is_one_message_and_no_edit(
    bot, sandbox, bot_api, monkeypatch, command, path, placeholder
):
    # Quick means within ONE_MESSAGE_SECONDS; widened so a loaded machine cannot make the simulator slow.
    monkeypatch.setattr(common, "ONE_MESSAGE_SECONDS", 10.0)
    alice = await linked(sandbox, 1101)
    placeholder = waiting(bot, alice, placeholder)
    before, edits = len(alice.bot_messages), len(bot_api.calls_to("editMessageText"))
    alice.send(command)
    await alice.wait_for(lambda u: len(u.bot_messages) > before)
    answer = alice.bot_messages[before]
    assert answer.text != placeholder and answer.edits == 0, alice.transcript()
    assert placeholder not in sent_texts(bot_api, "sendMessage")
    assert len(bot_api.calls_to("editMessageText")) == edits


async def test_a_slow_status_shows_the_placeholder_then_the_status_in_it(
    bot, sandbox, bot_api, simulator, monkeypatch
):
    shrink(monkeypatch, one=0.2, still=30.0, give_up=60.0)
    alice = await linked(sandbox, 1102)
    before = len(alice.bot_messages)
    simulator.add_fault(Fault(path=r"/status$", kind="slow", delay=1.0))
    alice.send("/status")
    status = await alice.wait_for_bot_message("updated")
    assert len(alice.bot_messages) == before + 1 and status.edits == 1, alice.transcript()
    assert waiting(bot, alice, texts.UPDATING) in sent_texts(bot_api, "sendMessage")
    assert "Refresh" in status.button("Refresh").text
    assert [call.params["action"] for call in bot_api.calls_to("sendChatAction")] == ["typing"]


async def test_a_slow_map_shows_the_placeholder_then_the_photo_alone(
    bot, sandbox, bot_api, simulator, monkeypatch
):
    shrink(monkeypatch, one=0.2, still=30.0, give_up=60.0)
    alice = await linked(sandbox, 1103)
    simulator.add_fault(Fault(path="rangemap", kind="slow", delay=1.0))
    alice.send("/map")
    await alice.wait_for(lambda u: any(m.photo for m in u.bot_messages))
    placeholder = waiting(bot, alice, texts.MAP_LOADING)
    assert placeholder in sent_texts(bot_api, "sendMessage")
    await alice.wait_for(lambda u: not any(m.text == placeholder for m in u.bot_messages))


@pytest.mark.parametrize(("command", "path", "placeholder"), READS, ids=[r[0] for r in READS])
async def test_a_hanging_bmw_says_still_waiting_then_not_answering(
    bot, sandbox, bot_api, simulator, monkeypatch, command, path, placeholder
):
    shrink(monkeypatch, one=0.2, still=0.5, give_up=1.5)
    alice = await linked(sandbox, 1104)
    placeholder = waiting(bot, alice, placeholder)
    before = len(alice.bot_messages)
    simulator.add_fault(Fault(path=path, kind="slow", delay=HANG, times=None))
    alice.send(command)
    # Well before BMW's answer (and the client's own read time-out of 5 s with its retries).
    verdict = await alice.wait_for_bot_message(texts.NOT_ANSWERING, timeout=HANG - 2)
    assert len(alice.bot_messages) == before + 1, alice.transcript()  # the placeholder became the verdict
    assert placeholder in sent_texts(bot_api, "sendMessage")
    assert sent_texts(bot_api, "editMessageText", verdict.message_id) == [
        texts.STILL_WAITING.format(waiting=placeholder),
        texts.NOT_ANSWERING,
    ]
    if command == "/status":
        verdict.button("Refresh")  # the status buttons stay, to try again
    simulator.clear_faults()
    alice.send("/status")
    await alice.wait_for_bot_message("updated")


async def test_refresh_and_location_on_a_hanging_bmw_end_in_the_verdict(
    bot, sandbox, bot_api, simulator, monkeypatch
):
    alice = await linked(sandbox, 1105)
    alice.send("/status")
    status = await alice.wait_for_bot_message("updated")
    shrink(monkeypatch, one=0.2, still=0.5, give_up=1.5)
    simulator.add_fault(Fault(path=r"/status$", kind="slow", delay=HANG, times=None))

    alice.press(status, "Refresh")
    await alice.wait_for(lambda u: bool(u.callback_answers()))  # the press is answered at once
    await alice.wait_for(lambda u: u.bot_messages[-1].text == texts.NOT_ANSWERING, timeout=HANG - 2)
    refreshed = alice.bot_messages[-1]
    assert refreshed.message_id == status.message_id  # edited in place, nothing new sent
    still = texts.STILL_WAITING.format(waiting=waiting(bot, alice, texts.UPDATING))
    assert sent_texts(bot_api, "editMessageText", status.message_id)[-2:] == [still, texts.NOT_ANSWERING]

    before = len(alice.bot_messages)
    alice.press(refreshed, "Location")
    await alice.wait_for(lambda u: len(u.bot_messages) > before and u.bot_messages[-1].edits >= 2, HANG - 2)
    located = alice.bot_messages[-1]
    assert located.text == texts.NOT_ANSWERING and len(alice.bot_messages) == before + 1
    assert sent_texts(bot_api, "editMessageText", located.message_id) == [
        texts.STILL_WAITING.format(waiting=waiting(bot, alice, texts.LOCATING)),
        texts.NOT_ANSWERING,
    ]
