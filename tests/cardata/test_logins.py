"""CarData logins that wait, and CarData reads a user waits for: a waiting /link ends at once on shutdown, on
/unlink and on /cancel (and a later approval stores nothing); new login codes are limited per user; Refresh
gets the bounded wait of every BMW read, the chat free meanwhile."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.bmw.simulator import Fault
from bot.cardata.simulator import DEFAULT_CLIENT_ID, CardataSimulator
from bot.chat import common, keyboards, link_cardata, texts
from bot.config import Settings
from bot.login_guard import DEVICE_CODES_PER_WINDOW
from bot.sandbox.driver import ChatMessage, SandboxUser
from tests.chat import test_cardata as chat_cardata
from tests.chat.test_cardata import OWNER, garage_of, rows_about, start_flow, texts_of
from tests.support.bot import fast_client, running_bot

pytestmark = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)
# The fixture of those tests: the bot with the owner linked through CarData.
linked = chat_cardata.linked
HANG = 8.0  # seconds a hanging BMW takes to answer: far beyond the shrunk budget of the Refresh test


def login_tasks() -> list[asyncio.Task[object]]:
    """The tasks that wait for an owner's approval at BMW and would link when it comes."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("cardata-link-") and not t.done()]


def code_of(flow: ChatMessage) -> str:
    code = flow.button("Copy the code").copy_text
    assert code is not None
    return code


async def approval_stores_nothing(
    application: Application, user: SandboxUser, sim: CardataSimulator, flow: ChatMessage, settings: Settings
) -> None:
    """The owner approves the flow's code after its wait ended: no task is left to take the tokens, and none
    are taken."""
    assert login_tasks() == []
    sim.decide(code_of(flow), "approved")
    before = len(texts_of(user, "Here is what I can do"))
    user.send("/help")  # a round trip through the bot after the approval
    await user.wait_for(lambda u: len(texts_of(u, "Here is what I can do")) > before)
    assert not garage_of(application).is_linked(OWNER)
    assert garage_of(application).store.cardata_link(OWNER) is None
    assert not any(rows_about(settings.database_path, OWNER).values())
    assert user.now(flow).text == texts.CARDATA_LOGIN_STOPPED


async def test_cancel_ends_a_waiting_login_and_a_later_approval_stores_nothing(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    flow = await start_flow(user)
    user.send("/cancel")
    await user.wait_for_bot_message(texts.CARDATA_LOGIN_STOPPED[:30])
    assert not texts_of(user, texts.NOTHING_TO_CANCEL)
    stopped = user.now(flow)
    assert stopped.text == texts.CARDATA_LOGIN_STOPPED and not stopped.buttons  # the code is gone too
    await approval_stores_nothing(cardata_bot, user, cardata_simulator, flow, cardata_bot_settings)


async def test_unlink_ends_a_waiting_relink_and_a_later_approval_stores_nothing(
    linked: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    flow = await start_flow(user)  # linked, and linking again: the new code waits for approval
    user.send("/unlink")
    user.press(await user.wait_for_bot_message(texts.UNLINK_ASK[:20]), "Yes, remove everything")
    await user.wait_for_bot_message(texts.UNLINK_DONE[:20])
    await user.wait_for(lambda u: u.now(flow).text == texts.CARDATA_LOGIN_STOPPED)
    await approval_stores_nothing(linked, user, cardata_simulator, flow, cardata_bot_settings)


async def test_unlink_with_only_a_waiting_login_ends_it(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    flow = await start_flow(user)
    user.send("/unlink")
    await user.wait_for(lambda u: len(texts_of(u, texts.CARDATA_LOGIN_STOPPED[:30])) == 2)  # reply, flow
    assert not texts_of(user, texts.NOT_LINKED)
    await approval_stores_nothing(cardata_bot, user, cardata_simulator, flow, cardata_bot_settings)


async def test_stopping_the_bot_ends_a_waiting_login_at_once(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser
) -> None:
    async with asyncio.timeout(30):  # the code is valid for 300 s: only a stop that ends the wait is quick
        async with running_bot(cardata_bot_settings, fast_client(simulator_url)):
            flow = await start_flow(user)
    assert user.now(flow).text == texts.CARDATA_LOGIN_INTERRUPTED and login_tasks() == []


async def test_sigterm_ends_a_waiting_login_well_within_the_grace(
    tmp_path: Path, bot_env: dict[str, str], cardata_env: dict[str, str], user: SandboxUser
) -> None:
    env = {**bot_env, **cardata_env, "CAR_BACKENDS": "cardata", "SHUTDOWN_GRACE_SECONDS": "45"}
    log_file = tmp_path / "bot.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, stderr=log_file.open("a")
    )
    try:
        user.send("/link")
        await user.wait_for_bot_message("Send me the client's", timeout=30)
        user.send(DEFAULT_CLIENT_ID)
        flow = await user.wait_for_bot_message("confirm the code")
        process.send_signal(signal.SIGTERM)
        # The code would keep it waiting 300 s, past the stop grace of 45 s.
        assert await asyncio.to_thread(process.wait, 15) == 0, log_file.read_text()
        assert user.now(flow).text == texts.CARDATA_LOGIN_INTERRUPTED
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
    assert "Traceback" not in log_file.read_text()


async def test_new_login_codes_are_limited_per_user(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    flow = await start_flow(user)
    retry = keyboards.data(link_cardata.RETRY)
    for _ in range(30):  # forged "Try again" presses, each worth a new code
        user.press_data(flow.message_id, retry)
    cool_down = texts.CARDATA_CODE_COOL_DOWN.partition("{")[0]
    await user.wait_for(lambda u: len(u.callback_answers()) == 30, timeout=30)
    await user.wait_for_bot_message(cool_down)
    assert len(cardata_simulator.requests_to("/device/code", "POST")) == DEVICE_CODES_PER_WINDOW

    for _ in range(3):  # a new client id (BMW would refuse these): no new code either
        user.send("/link")
        question = await user.wait_for_bot_message("How should I reach your BMW?")
        user.press(question, "BMW CarData")
        await user.wait_for(lambda u, q=question: "Send me the client's" in (u.now(q).text or ""))  # type: ignore[misc]
        before = len(texts_of(user, cool_down))
        user.send("0000aaaa-bogus-client")
        await user.wait_for(lambda u, n=before: len(texts_of(u, cool_down)) > n)  # type: ignore[misc]
    assert len(cardata_simulator.requests_to("/device/code", "POST")) == DEVICE_CODES_PER_WINDOW
    assert texts_of(user, cool_down)[-1].endswith(" min.")  # says when to try again


async def test_refresh_waits_visibly_with_a_verdict_and_leaves_the_chat_free(
    linked: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    bot_api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    monkeypatch.setattr(common, "TYPING_AFTER_SECONDS", 0.05)
    monkeypatch.setattr(common, "ONE_MESSAGE_SECONDS", 0.2)
    monkeypatch.setattr(common, "STILL_WAITING_SECONDS", 1.0)
    monkeypatch.setattr(common, "GIVE_UP_SECONDS", 3.0)
    cardata_simulator.add_fault(Fault(path="telematicData", kind="slow", delay=HANG, times=None))

    user.press(status, "Refresh")
    user.send("/help")  # answered while BMW keeps the Refresh waiting
    await user.wait_for_bot_message("Here is what I can do", timeout=HANG - 4)
    assert user.now(status).text != texts.NOT_ANSWERING  # the Refresh is still waiting
    await user.wait_for(lambda u: u.now(status).text == texts.NOT_ANSWERING, timeout=HANG - 2)
    edits = [
        call.params.get("text")
        for call in bot_api.calls_to("editMessageText")
        if call.ok and call.params.get("message_id") == str(status.message_id)
    ]
    car = texts.car_label(garage_of(linked).car(OWNER))
    assert edits[-2:] == [
        texts.STILL_WAITING.format(waiting=texts.UPDATING.format(car=car)),
        texts.NOT_ANSWERING,
    ]
    user.now(status).button("Refresh")  # the status buttons stay, to try again
    assert cardata_simulator.requests_to("telematicData")  # BMW was asked
