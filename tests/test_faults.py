"""Faults end to end: BMW misbehaving (5xx, time-outs, resets, bad JSON, tokens, a car that never answers)
and Telegram misbehaving (429, 5xx, dropped connections) under the real bot, over loopback.

What must hold each time: every user sees one clear line, nothing crashes (no error-handler message, no
ERROR log), the next command works, and no remote command reaches the car twice.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.bmw.models import Region
from bot.bmw.simulator import Fault
from bot.car_errors import ErrorKind
from bot.chat import texts
from bot.sandbox import SandboxUser
from tests.support.bot import BEV_VIN, fast_client, link, running_bot
from tests.support.watcher import FINISHED, Cycles

UNAVAILABLE = texts.ERROR_SENTENCES[ErrorKind.UNAVAILABLE]
BAD_RESPONSE = texts.ERROR_SENTENCES[ErrorKind.BAD_RESPONSE]

BOB_LOGIN = ("bob@example.com", "bob-password")
WENT_WRONG = "Something went wrong"


@pytest.fixture
def no_errors(caplog: pytest.LogCaptureFixture):
    """Fails the test if anything logged an ERROR (an exception reached PTB's error handler, or worse)."""
    caplog.set_level(logging.WARNING)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _accepted_executes(simulator) -> list:
    return [r for r in simulator.requests_to("executeService", "POST") if r.status == 200]


async def _statuses(user: SandboxUser) -> int:
    return sum("updated" in (m.text or "") for m in user.bot_messages)


async def _status_works(user: SandboxUser) -> None:
    before = await _statuses(user)
    user.send("/status")
    await user.wait_for(lambda u: sum("updated" in (m.text or "") for m in u.bot_messages) > before)


def _one_new_line(user: SandboxUser, before: int, expected: str) -> None:
    new = user.bot_messages[before:]
    assert len(new) == 1, user.transcript()
    assert new[0].text == texts.BMW_TROUBLE.format(reason=expected)
    assert WENT_WRONG not in user.transcript()


STATUS_FAULTS = [
    (dict(path=r"/status$", kind="error", status=503, times=None), UNAVAILABLE),
    (dict(path=r"/status$", kind="timeout", delay=1.0, times=None), UNAVAILABLE),
    (dict(path=r"/status$", kind="reset", times=None), UNAVAILABLE),
    (dict(path=r"/status$", kind="malformed", times=None), BAD_RESPONSE),
]
COMMAND_FAULTS = [
    (dict(path="executeService", kind="error", status=502), UNAVAILABLE),
    (dict(path="executeService", kind="reset"), UNAVAILABLE),
    (dict(path="executeService", kind="timeout", delay=1.0), UNAVAILABLE),
    (dict(path="executeService", kind="malformed"), BAD_RESPONSE),
]
POLL_FAULTS = [
    dict(path="serviceExecutionStatus", kind="error", status=500, times=4),
    dict(path="serviceExecutionStatus", kind="malformed", times=4),
    dict(path="serviceExecutionStatus", kind="reset", times=4),
]


async def test_status_faults_are_one_clear_line_for_each_user_then_status_works(
    bot_settings, simulator, simulator_url, sandbox, no_errors
):
    simulator.add_account(*BOB_LOGIN)
    async with running_bot(bot_settings, fast_client(simulator_url, read_timeout=0.2)):
        alice, bob = sandbox.user(401, "Alice"), sandbox.user(402, "Bob")
        await asyncio.gather(link(alice), link(bob, *BOB_LOGIN))
        for fault, expected in STATUS_FAULTS:  # a burst: every try of the client's GET retries fails
            before = {user.id: len(user.bot_messages) for user in (alice, bob)}
            simulator.add_fault(Fault(**fault))
            for user in (alice, bob):
                user.send("/status")
            for user in (alice, bob):
                await user.wait_for(
                    lambda u, expected=expected: expected in (u.last_bot_message().text or "")
                )
                _one_new_line(user, before[user.id], expected)
            simulator.clear_faults()
            await asyncio.gather(_status_works(alice), _status_works(bob))


async def test_failed_commands_are_one_line_and_never_sent_twice(
    bot_settings, simulator, simulator_url, sandbox, no_errors
):
    settings = bot_settings.model_copy(update={"remote_commands_per_minute": 20})
    async with running_bot(settings, fast_client(simulator_url, read_timeout=0.2)):
        alice = sandbox.user(403)
        await link(alice)
        for fault, expected in COMMAND_FAULTS:
            before, posts = len(alice.bot_messages), len(simulator.requests_to("executeService", "POST"))
            simulator.add_fault(Fault(**fault))
            alice.send("/lock")
            await alice.wait_for(lambda u, expected=expected: expected in (u.last_bot_message().text or ""))
            _one_new_line(alice, before, expected)
            # The simulator logs a request once it has answered it (after the delay of a time-out fault).
            await alice.wait_for(
                lambda _, posts=posts: len(simulator.requests_to("executeService", "POST")) > posts
            )
            await asyncio.sleep(0.3)  # a retry, if there were one, would have been sent by now
            assert len(simulator.requests_to("executeService", "POST")) == posts + 1
            # The next command works, and is the only other one sent.
            alice.send("/flash")
            await alice.wait_for(lambda u: "Flash lights — " in u.last_bot_message().text)
            await alice.wait_for(lambda u: "BMW has" in u.last_bot_message().text)
            simulator.advance(60)
            await alice.wait_for(lambda u: "flashed its lights" in u.last_bot_message().text)
            assert len(simulator.requests_to("executeService", "POST")) == posts + 2


async def test_flaky_polling_does_not_hide_or_repeat_the_command(bot, sandbox, simulator, no_errors):
    alice = sandbox.user(404)
    await link(alice)
    for number, fault in enumerate(POLL_FAULTS, 1):
        polls = len(simulator.requests_to("serviceExecutionStatus"))
        simulator.set_status(BEV_VIN, doorLockState="UNLOCKED")
        simulator.add_fault(Fault(**fault))
        alice.send("/lock")
        await alice.wait_for(lambda u: "Lock — " in u.last_bot_message().text)
        await alice.wait_for(lambda u: "BMW has" in u.last_bot_message().text)
        simulator.advance(60)
        await alice.wait_for(lambda u: "is locked" in u.last_bot_message().text, timeout=15)
        assert len(simulator.requests_to("executeService", "POST")) == number
        assert simulator.vehicle(BEV_VIN).status["doorLockState"] == "LOCKED"
        # Four faulted polls, then the answer.
        assert len(simulator.requests_to("serviceExecutionStatus")) >= polls + 5


async def test_a_car_that_never_answers_times_out_once_and_the_next_command_works(
    bot_settings, simulator, simulator_url, sandbox, no_errors
):
    async with running_bot(bot_settings, fast_client(simulator_url, service_deadline=2.0)):
        alice = sandbox.user(405)
        await link(alice)
        simulator.vehicle(BEV_VIN).service_mode = "stuck"
        alice.send("/climate")
        simulator.advance(600)  # however long: a stuck request never reaches a terminal status
        timed_out = await alice.wait_for_bot_message("did not answer in time", timeout=10)
        assert "check /status" in timed_out.text and WENT_WRONG not in alice.transcript()
        assert len(simulator.requests_to("executeService", "POST")) == 1

        simulator.vehicle(BEV_VIN).service_mode = "normal"
        alice.send("/flash")  # the car is free again: the timed-out command no longer holds it
        await alice.wait_for(
            lambda u: (
                "Flash lights — " in u.last_bot_message().text and "BMW has" in u.last_bot_message().text
            )
        )
        simulator.advance(60)
        await alice.wait_for_bot_message("flashed its lights")
        assert len(simulator.requests_to("executeService", "POST")) == 2


async def test_expired_token_and_revoked_refresh_token_log_in_again_unseen(
    bot, sandbox, simulator, no_errors
):
    alice = sandbox.user(406)
    await link(alice)
    await _status_works(alice)
    tokens = len(simulator.requests_to("oauth/token"))
    simulator.expire_tokens()
    simulator.revoke_refresh_tokens()
    await _status_works(alice)
    grants = [r.form["grant_type"] for r in simulator.requests_to("oauth/token")[tokens:]]
    assert grants == ["refresh_token", "password"]  # the refusal is recovered from, once

    # The same during a remote command: refused before the car saw it, so it is sent once more, and
    # reaches the car exactly once.
    simulator.expire_tokens()
    simulator.revoke_refresh_tokens()
    alice.send("/lock")
    await alice.wait_for_bot_message("BMW has the request")
    simulator.advance(60)
    await alice.wait_for_bot_message("is locked")
    assert [r.status for r in simulator.requests_to("executeService", "POST")] == [401, 200]
    assert len(_accepted_executes(simulator)) == 1
    assert WENT_WRONG not in alice.transcript()


async def test_password_changed_at_bmw_is_one_clear_line(bot, sandbox, simulator, no_errors):
    alice = sandbox.user(407)
    await link(alice)
    # The owner changed the password at BMW: the bot's tokens end with it, only the stored password is left,
    # and it is refused.
    simulator.change_password("demo@example.com", "changed-at-bmw")
    before = len(alice.bot_messages)
    alice.send("/status")
    await alice.wait_for(lambda u: "no longer accepts your password" in (u.last_bot_message().text or ""))
    assert len(alice.bot_messages) == before + 1 and WENT_WRONG not in alice.transcript()


async def test_watcher_recovers_by_itself_after_a_burst_of_5xx(bot, sandbox, simulator, no_errors):
    cycle = Cycles()
    alice = sandbox.user(408)
    await link(alice)
    await cycle.charging_near_full(bot, simulator, BEV_VIN)
    simulator.advance(10 * 60)  # full now
    simulator.add_fault(Fault(path=r"/status$", kind="error", status=503, times=20))
    failed = 0
    for _ in range(6):  # the client retries each poll: a few cycles use the burst up
        report = await cycle(bot)
        failed += report.failed
        if report.pushed:
            break
    assert failed >= 2 and report.pushed == 1
    store = bot.bot_data.services.garage.store
    assert store.watch(408, BEV_VIN).failures == 0
    await cycle(bot)
    assert len([m for m in alice.bot_messages if FINISHED in (m.text or "")]) == 1


# --- Telegram ----------------------------------------------------------------------------------------


def helps(user: SandboxUser) -> int:
    return sum((m.text or "").startswith(texts.HELP) for m in user.bot_messages)


@pytest.mark.parametrize(("kind", "status"), [("flood", 429), ("error", 502), ("drop", 500)], ids=str)
async def test_get_updates_faults_lose_and_repeat_no_update(bot, sandbox, bot_api, kind, status):
    """The first fault meets an idle poll and sends the bot into its back-off; the messages sent meanwhile
    are pending when the second fault meets the next poll (a "drop" even hands them out, then cuts the
    answer off). Every one is still handled exactly once."""
    alice = sandbox.user(409)
    bot_api.inject("getUpdates", kind, times=2, status=status, retry_after=1)
    alice.send("/help")  # taken by the poll already waiting
    await alice.wait_for(lambda _: any(not c.ok for c in bot_api.calls_to("getUpdates")))
    alice.send("/help")
    alice.send("/help")
    await alice.wait_for(lambda u: helps(u) >= 3, timeout=10)
    await asyncio.sleep(0.3)  # a repeated delivery would come with the very next poll
    assert helps(alice) == 3
    assert len([c for c in bot_api.calls_to("getUpdates") if not c.ok]) == 2  # both faults were met


async def test_a_reply_that_meets_telegrams_server_errors_is_sent_once_they_pass(
    bot, sandbox, bot_api, no_errors
):
    """A reply has no second chance of its own (a push does, at the next reading): a 5xx is tried again."""
    alice = sandbox.user(410)
    bot_api.inject("sendMessage", "error", times=2, status=502)
    alice.send("/help")
    await alice.wait_for(lambda u: helps(u) >= 1, timeout=10)
    await asyncio.sleep(0.3)  # a second copy would follow at once
    assert helps(alice) == 1
    assert [c.error_code for c in bot_api.calls_to("sendMessage") if not c.ok] == [502, 502]


@pytest.mark.parametrize(
    ("kind", "status", "at_most"),
    [("flood", 429, 1), ("error", 502, 1), ("drop", 500, 2)],
    ids=["429", "5xx", "drop"],
)
async def test_push_fan_out_under_telegram_faults_loses_no_push(
    bot, sandbox, simulator, bot_api, kind, status, at_most
):
    """12 users' charges end in one cycle while sendMessage fails. A 429 is waited out and a 5xx retried
    on the next cycle: exactly one push each. A dropped connection after Telegram accepted the message is
    indistinguishable from a lost one, and Telegram has no idempotent send: that push may come twice
    (at-least-once, by design of the watcher), never zero times."""
    cycle = Cycles()
    garage = bot.bot_data.services.garage
    users: dict[int, SandboxUser] = {}
    vins: dict[int, str] = {}
    for i in range(12):
        tg_id = 500 + i
        login = (f"fan{i}@example.com", "fan-password")
        bev = simulator.add_account(*login)[0]
        users[tg_id] = sandbox.user(tg_id, f"User{i}")
        users[tg_id].send("/start")
        await garage.link(tg_id, f"User{i}", Region.REST_OF_WORLD, *login)
        vins[tg_id] = bev
    await cycle(bot)
    for vin in vins.values():
        simulator.set_status(vin, chargingLevelHv=95)
        simulator.plug_in(vin, charging=True)
    await cycle(bot)
    simulator.advance(10 * 60)
    bot_api.inject("sendMessage", kind, times=4, status=status, retry_after=1)
    for _ in range(4):
        await cycle(bot)

    counts = {
        tg_id: len([m for m in u.bot_messages if FINISHED in (m.text or "")]) for tg_id, u in users.items()
    }
    dropped = [c for c in bot_api.calls_to("sendMessage") if c.description == "connection dropped"]
    assert all(1 <= count <= at_most for count in counts.values()), counts
    assert sum(counts.values()) == len(users) + len(dropped)  # a repeat only where the answer was cut off
