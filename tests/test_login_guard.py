"""No password guessing through the bot, end to end through the Bot API sandbox and the simulator: failed
/link logins cool down per Telegram user and per e-mail, and the watcher stops logging in with a stored
password that BMW no longer takes."""

from __future__ import annotations

import time
from collections.abc import Callable
from html import escape

import httpx
import pytest

from bot.bmw.simulator import DEFAULT_PASSWORD, DEFAULT_USERNAME, Simulator
from bot.garage import Garage
from bot.sandbox import SandboxUser
from bot.sandbox.driver import ChatMessage
from tests.support.bot import BEV_VIN, fast_client, link, running_bot
from tests.support.watcher import Cycles

WRONG = "BMW did not accept that e-mail or password"
COOL_DOWN = "Too many failed logins"
REFUSED = "BMW no longer accepts your password for"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(bot, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The login guard's clock for stored cool-downs, moved by the test."""
    clock = Clock()
    garage: Garage = bot.bot_data.services.garage
    monkeypatch.setattr(garage.logins, "_wall_clock", clock)
    return clock


async def token_requests(simulator: Simulator, simulator_url: str) -> int:
    """Requests that reached BMW's token endpoint, once the simulator has logged every answered one (it logs
    just after answering; one more round trip to it lets that finish)."""
    async with httpx.AsyncClient() as http:
        await http.get(f"{simulator_url}/_sim/state")
    return len(simulator.requests_to("oauth/token"))


def said(user: SandboxUser, text: str) -> int:
    return sum(text in (m.text or "") for m in user.bot_messages)


async def answer(user: SandboxUser, message: str, expect: str) -> str:
    """Send `message`, wait for one more bot message containing `expect`, return the newest such text."""
    return (await reply(user, lambda: user.send(message), expect)).text


async def reply(user: SandboxUser, act: Callable[[], object], expect: str) -> ChatMessage:
    """Do `act`, then wait for one more bot message containing `expect` (sent or edited so); the newest."""
    before = said(user, expect)
    act()
    await user.wait_for(lambda u: said(u, expect) > before)
    return [m for m in user.bot_messages if expect in (m.text or "")][-1]


async def up_to_password(user: SandboxUser, email: str) -> None:
    region = await reply(user, lambda: user.send("/link"), "registered")
    await reply(user, lambda: user.press(region, "Europe"), "e-mail address?")
    await answer(user, email, "password?")


async def test_three_wrong_passwords_then_link_waits_for_user_and_e_mail_without_asking_bmw(
    bot, sandbox, simulator, simulator_url, clock
):
    alice = sandbox.user(601, "Alice")
    await up_to_password(alice, DEFAULT_USERNAME)
    await answer(alice, "wrong-1", WRONG)
    await answer(alice, "wrong-2", WRONG)
    refusal = await answer(alice, "wrong-3", COOL_DOWN)
    assert "try /link again in 15 min" in refusal
    assert all(m.deleted for m in alice.messages if not m.from_bot and m.text.startswith("wrong-"))
    tried = await token_requests(simulator, simulator_url)
    assert tried == 3

    # A 4th try: refused at /link, before any question, and BMW hears nothing.
    before = len(alice.bot_messages)
    refusal = await answer(alice, "/link", COOL_DOWN)
    assert "15 min" in refusal and len(alice.bot_messages) == before + 1
    # The same e-mail, in other letters' case, from another Telegram user: refused before the password.
    mallory = sandbox.user(602, "Mallory")
    region = await reply(mallory, lambda: mallory.send("/link"), "registered")
    await reply(mallory, lambda: mallory.press(region, "Europe"), "e-mail address?")
    refusal = await answer(mallory, DEFAULT_USERNAME.upper(), COOL_DOWN)
    assert "15 min" in refusal and said(mallory, "password?") == 0
    assert await token_requests(simulator, simulator_url) == tried

    # After the cool-down a try reaches BMW again; one more failure in a row waits longer.
    clock.now += 15 * 60
    await up_to_password(alice, DEFAULT_USERNAME)
    refusal = await answer(alice, "wrong-4", COOL_DOWN)
    assert "try /link again in 1 h 00 min" in refusal
    assert await token_requests(simulator, simulator_url) == tried + 1

    clock.now += 60 * 60
    await up_to_password(alice, DEFAULT_USERNAME)
    await answer(alice, DEFAULT_PASSWORD, "Linked!")
    assert bot.bot_data.services.garage.store.account(601) is not None
    # The success reset the e-mail's count too: two more mistakes with it are just mistakes.
    await up_to_password(mallory, DEFAULT_USERNAME)
    await answer(mallory, "wrong-5", WRONG)
    await answer(mallory, "wrong-6", WRONG)
    assert said(mallory, COOL_DOWN) == 1


async def test_cool_downs_survive_a_restart(bot_settings, sandbox, simulator, simulator_url):
    alice = sandbox.user(603, "Alice")
    async with running_bot(bot_settings, fast_client(simulator_url)):
        await up_to_password(alice, DEFAULT_USERNAME)
        await answer(alice, "wrong-1", WRONG)
        await answer(alice, "wrong-2", WRONG)
        await answer(alice, "wrong-3", COOL_DOWN)
    async with running_bot(bot_settings, fast_client(simulator_url)):
        tried = await token_requests(simulator, simulator_url)
        await answer(alice, "/link", COOL_DOWN)
        assert await token_requests(simulator, simulator_url) == tried


async def test_watcher_stops_logging_in_with_a_refused_password_tells_once_and_resumes_after_link(
    bot_settings, sandbox, simulator, simulator_url
):
    email = "o<b>wner@example.com"  # a valid address with HTML in it: the push must escape it
    vins = simulator.add_account(email, "old-password")
    cycle = Cycles()
    alice = sandbox.user(611, "Alice")
    async with running_bot(bot_settings, fast_client(simulator_url)) as first:
        await link(alice, email, "old-password")
        assert (await cycle(first)).polled == 2
        simulator.change_password(email, "new-password")  # the owner changed it at BMW
        reports = [await cycle(first) for _ in range(2)]  # 2 cars: 4 refusals, the 3rd marks the account
        assert sum(r.failed for r in reports) == 4 and sum(r.pushed for r in reports) == 1
        tried = await token_requests(simulator, simulator_url)
        for _ in range(3):
            report = await cycle(first)
            assert report.polled == report.failed == 0
        assert await token_requests(simulator, simulator_url) == tried
        pushes = [m for m in alice.bot_messages if REFUSED in (m.text or "")]
        # Sent as HTML, which the sandbox checks as Telegram does: the e-mail arrives as text, escaped.
        assert len(pushes) == 1 and f"{REFUSED} {escape(email)}," in pushes[0].text
        assert "/link again" in pushes[0].text

        # A chat read says the same, plainly, and asks BMW nothing either.
        await answer(alice, "/status", REFUSED)
        assert await token_requests(simulator, simulator_url) == tried

    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        for _ in range(2):
            assert (await cycle(second)).polled == 0
        assert await token_requests(simulator, simulator_url) == tried
        assert said(alice, REFUSED) == 2  # the push and the /status answer: nothing more after a restart

        # Straight to the region, no "link another account?": the old one is of no use.
        await up_to_password(alice, email)
        await answer(alice, "new-password", "Linked!")
        report = await cycle(second)
        assert report.polled == 2 and report.failed == 0
        assert second.bot_data.services.garage.store.watch(611, vins[0]).failures == 0
    assert said(alice, REFUSED) == 2


async def test_one_refused_password_is_not_yet_the_end(bot, sandbox, simulator):
    """A refusal or two in a row (BMW hiccups happen) keeps the account; a success starts the count over."""
    cycle = Cycles()
    alice = sandbox.user(612, "Alice")
    await link(alice)
    simulator.change_password(DEFAULT_USERNAME, "changed")
    report = await cycle(bot)
    assert report.failed == 2 and report.pushed == 0
    simulator.change_password(DEFAULT_USERNAME, DEFAULT_PASSWORD)
    assert (await cycle(bot)).polled == 2
    simulator.change_password(DEFAULT_USERNAME, "changed")
    assert (await cycle(bot)).failed == 2
    assert said(alice, REFUSED) == 0 and bot.bot_data.services.garage.store.watch(612, BEV_VIN)


async def test_guesses_sent_at_once_from_many_users_still_stop_at_three(
    bot, sandbox, simulator, simulator_url
):
    """Parallel tries of one e-mail cannot all pass the check before the first failure counts."""
    users = [sandbox.user(620 + i, "Mallory") for i in range(5)]
    for user in users:
        await up_to_password(user, DEFAULT_USERNAME)
    tried = await token_requests(simulator, simulator_url)
    for i, user in enumerate(users):
        user.send(f"guess-{i}")
    for user in users:
        await user.wait_for(lambda u: said(u, WRONG) + said(u, COOL_DOWN) == 1)
    assert await token_requests(simulator, simulator_url) == tried + 3
    assert sum(said(user, WRONG) for user in users) == 2
