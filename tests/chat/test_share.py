"""/share (issue 19, points 1-5): an owner shares one car with their household through a one-time invitation.

Driven through the sandbox Bot API and the i Remote simulator (tests/chat/test_share_cardata.py: a CarData
car): the deep link with its copy button, stored only as a hash; accepting in a private chat; what a shared
person sees and may not do; remote commands per person; revoking, /unlink on either side; restarts and key
rotation; and every abuse of an invitation.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from telegram.ext import Application

from bot.bmw.simulator import DEFAULT_PASSWORD, DEFAULT_USERNAME, Fault
from bot.chat import texts
from bot.config import Settings
from bot.garage import Garage
from bot.sandbox.driver import ChatMessage, Sandbox, SandboxUser
from bot.store import Store
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot, said
from tests.support.waits import until
from tests.support.watcher import FINISHED, Cycles

OWNER, MEMBER, STRANGER = 601, 602, 603
OPEN_INVITES = 5  # per car, the design's "a handful"


def garage_of(application: Application) -> Garage:
    garage: Garage = application.bot_data.services.garage
    return garage


async def after(user: SandboxUser, act: Callable[[], object], contains: str) -> ChatMessage:
    """Do `act`, then the first bot message not seen before it whose text contains `contains`."""
    seen = {m.message_id for m in user.bot_messages}
    act()
    found: list[ChatMessage] = []

    def match(u: SandboxUser) -> bool:
        found[:] = [m for m in u.bot_messages if m.message_id not in seen and contains in (m.text or "")]
        return bool(found)

    await user.wait_for(match)
    return found[0]


async def invite(owner: SandboxUser, vin: str = BEV_VIN) -> str:
    """/share, then "Invite to" that car: the link its copy button copies."""
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    sent = await after(owner, lambda: owner.press(menu, f"…{vin[-4:]}"), "Send this link")
    link_to = sent.button(said(texts.SHARE_COPY_BUTTON)).copy_text
    assert link_to is not None and link_to in (sent.text or "")
    return link_to


def payload(link_to: str) -> str:
    return link_to.partition("?start=")[2]


def fixed(text: str, language: str = "en") -> str:
    """The longest part of a sentence that does not depend on its placeholders, as `language` reads it."""
    return max(re.split(r"\{\w+\}", said(text, language)), key=len).strip()


async def join(member: SandboxUser, link_to: str, language: str = "en") -> ChatMessage:
    """The invited person opens the link (`/start <payload>` in the private chat) and accepts."""
    ask = await after(
        member, lambda: member.send(f"/start {payload(link_to)}"), fixed(texts.SHARE_ASK, language)
    )
    accept = said(texts.SHARE_ACCEPT_BUTTON, language)
    member.press(ask, accept)
    await member.wait_for(lambda u: fixed(texts.SHARE_DONE, language) in (u.now(ask).text or ""))
    return member.now(ask)


async def shared(sandbox: Sandbox) -> tuple[SandboxUser, SandboxUser]:
    owner, member = sandbox.user(OWNER, "Olga"), sandbox.user(MEMBER, "Max")
    await link(owner)
    await join(member, await invite(owner))
    return owner, member


async def test_an_invitation_shares_that_car_and_nothing_of_the_owners_account(
    bot: Application, sandbox: Sandbox, simulator, bot_settings: Settings
) -> None:
    owner, member = sandbox.user(OWNER, "Olga"), sandbox.user(MEMBER, "Max")
    await link(owner)
    link_to = await invite(owner)
    assert link_to.startswith(f"https://t.me/{bot.bot.username}?start=share-")
    token = payload(link_to).removeprefix("share-")
    assert len(token) >= 32
    # Stored only as its SHA-256: the database files never hold the link.
    db = bot_settings.database_path
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert token.encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored

    ask = await after(member, lambda: member.send(f"/start {payload(link_to)}"), "invites you")
    assert "Olga" in (ask.text or "") and BEV_VIN[-4:] in (ask.text or "")
    member.press(ask, said(texts.SHARE_ACCEPT_BUTTON))
    await member.wait_for_bot_message("You now see")
    joined = await owner.wait_for_bot_message("Max now sees")
    assert BEV_VIN[-4:] in (joined.text or "")

    status = await after(member, lambda: member.send("/status"), "updated")
    assert BEV_VIN[-4:] in (status.text or "")
    picker = await after(member, lambda: member.send("/cars"), said(texts.PICK_CAR))
    labels = [b.text for row in picker.buttons for b in row]
    assert len(labels) == 1 and BEV_VIN[-4:] in labels[0], labels
    assert not any(REX_VIN[-4:] in m.describe() for m in member.bot_messages)  # the owner's other car
    await after(member, lambda: member.send("/history"), BEV_VIN[-4:])
    member.send("/map")
    await member.wait_for(lambda u: any(m.photo for m in u.bot_messages))

    # Not theirs: the schedule, remote commands (off until the owner switches them on), sharing it on.
    await after(member, lambda: member.send("/schedule"), said(texts.SHARE_OWNER_ONLY))
    await after(member, lambda: member.send("/lock"), said(texts.SHARE_REMOTE_NOT_ALLOWED))
    assert simulator.requests_to("executeService", "POST") == []
    await after(member, lambda: member.send("/share"), said(texts.SHARE_NOTHING_TO_SHARE))
    assert not any(DEFAULT_USERNAME in m.describe() for m in member.messages)


async def test_guessed_replayed_expired_second_and_own_uses_link_nothing_and_say_so(
    bot: Application, sandbox: Sandbox, bot_settings: Settings
) -> None:
    owner, member, stranger = sandbox.user(OWNER, "Olga"), sandbox.user(MEMBER, "Max"), sandbox.user(STRANGER)
    await link(owner)
    invalid = said(texts.SHARE_INVALID).partition(":")[0]
    guessed = "share-" + "A" * 32
    await after(stranger, lambda: stranger.send(f"/start {guessed}"), invalid)

    link_to = await invite(owner)
    await after(owner, lambda: owner.send(f"/start {payload(link_to)}"), said(texts.SHARE_OWN_CAR))
    ask = await after(member, lambda: member.send(f"/start {payload(link_to)}"), "invites you")
    accept = ask.button(said(texts.SHARE_ACCEPT_BUTTON)).callback_data
    assert accept is not None
    member.press(ask, said(texts.SHARE_ACCEPT_BUTTON))
    await member.wait_for_bot_message("You now see")
    # Used: a second person, the same person again, a replayed Accept.
    await after(stranger, lambda: stranger.send(f"/start {payload(link_to)}"), invalid)
    await after(member, lambda: member.send(f"/start {payload(link_to)}"), invalid)
    # A second tap on Accept (or a replay) changes nothing: the message still says the car is theirs.
    answers = len(member.callback_answers())
    member.press_data(ask.message_id, accept)
    await member.wait_for(lambda u: len(u.callback_answers()) > answers)
    assert said(texts.STALE_BUTTON) in (member.callback_answers()[-1].text or "")
    assert "You now see" in (member.now(ask).text or "")
    assert [s.member for s in garage_of(bot).sharing.shares(OWNER)] == [MEMBER]

    # Expired: opened within the day, accepted after it.
    late = await invite(owner)
    ask = await after(stranger, lambda: stranger.send(f"/start {payload(late)}"), "invites you")
    with sqlite3.connect(bot_settings.database_path) as db:
        db.execute("UPDATE share_invites SET expires_at = expires_at - 86400")
    stranger.press(ask, said(texts.SHARE_ACCEPT_BUTTON))
    await stranger.wait_for(lambda u: invalid in (u.now(ask).text or ""))
    await after(stranger, lambda: stranger.send(f"/start {payload(late)}"), invalid)
    await after(stranger, lambda: stranger.send("/status"), said(texts.NOT_LINKED))
    assert [s.member for s in garage_of(bot).sharing.shares(OWNER)] == [MEMBER]


async def test_a_car_has_a_handful_of_open_invitations_at_most(bot: Application, sandbox: Sandbox) -> None:
    owner = sandbox.user(OWNER, "Olga")
    await link(owner)
    links = {await invite(owner) for _ in range(OPEN_INVITES)}
    assert len(links) == OPEN_INVITES
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    refused = await after(owner, lambda: owner.press(menu, f"…{BEV_VIN[-4:]}"), "open invitations already")
    assert str(OPEN_INVITES) in (refused.text or "") and not refused.buttons
    await invite(owner, REX_VIN)  # per car: the other car still invites


async def test_a_double_tap_on_invite_makes_one_invitation(bot: Application, sandbox: Sandbox) -> None:
    owner = sandbox.user(OWNER, "Olga")
    await link(owner)
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    answered = len(owner.callback_answers())
    owner.press(menu, f"…{BEV_VIN[-4:]}")
    owner.press(menu, f"…{BEV_VIN[-4:]}")
    await owner.wait_for(lambda u: len(u.callback_answers()) == answered + 2)
    await after(owner, lambda: owner.send("/help"), "/status")  # both presses handled before it
    assert len([m for m in owner.bot_messages if "Send this link" in (m.text or "")]) == 1
    assert said(texts.SHARE_LINK_SENT) in [a.text for a in owner.callback_answers()[answered:]]
    assert len(await invite(owner)) > 0  # from a new /share menu, a second person's invitation


async def test_revoking_ends_the_share_at_once_and_tells_the_person(
    bot: Application, sandbox: Sandbox
) -> None:
    owner, member = await shared(sandbox)
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    assert "Max" in (menu.text or "")
    owner.press(menu, said(texts.SHARE_REVOKE_BUTTON).format(name="Max"))
    told = await member.wait_for_bot_message("no longer shares")
    assert "Olga" in (told.text or "") and BEV_VIN[-4:] in (told.text or "")
    await owner.wait_for(lambda u: said(texts.SHARE_NOBODY) in (u.now(menu).text or ""))
    await after(member, lambda: member.send("/status"), said(texts.NOT_LINKED))


async def test_forged_presses_for_another_owners_share_do_nothing(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    owner, member = await shared(sandbox)
    simulator.add_account("eve@example.com", "eve-password")
    eve = sandbox.user(STRANGER, "Eve")
    await link(eve, "eve@example.com", "eve-password")
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    datas = [b.callback_data for row in menu.buttons for b in row if b.callback_data]
    eves = await after(eve, lambda: eve.send("/share"), "with your household")
    answered = len(eve.callback_answers())
    for data in datas:
        eve.press_data(eves.message_id, data)
    await eve.wait_for(lambda u: len(u.callback_answers()) == answered + len(datas))
    assert all(a.text == said(texts.STALE_BUTTON) for a in eve.callback_answers()[answered:])
    assert not any("Send this link" in (m.text or "") for m in eve.bot_messages)
    share = garage_of(bot).sharing.shares(OWNER)
    assert [(s.member, s.remote) for s in share] == [(MEMBER, False)]
    await after(member, lambda: member.send("/status"), "updated")


async def test_remote_commands_per_person_unlock_asks_the_answer_and_the_owner_is_told(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    simulator.add_account("olga@example.com", "olga-password", security_answer="Rex the dog")
    owner, member = sandbox.user(OWNER, "Olga"), sandbox.user(MEMBER, "Max")
    await link(owner, "olga@example.com", "olga-password")
    vin = garage_of(bot).car(OWNER).vin
    garage_of(bot).remember_security_answer(OWNER, "Rex the dog")  # the owner's own, stored
    await join(member, await invite(owner, vin))

    status = await after(member, lambda: member.send("/status"), "updated")
    labels = [b.text for row in status.buttons for b in row]
    assert "🔄 Refresh" in labels and not [label for label in labels if "Lock" in label or "Climate" in label]
    place = await after(
        member, lambda: member.send_location(48.1, 11.5), said(texts.SHARE_REMOTE_NOT_ALLOWED)
    )
    assert not place.buttons  # no place sent to the owner's car either
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    owner.press(menu, "Remote commands for Max")
    await owner.wait_for(lambda u: "remote commands on" in (u.now(menu).text or ""))
    status = await after(member, lambda: member.send("/status"), "updated")
    assert "🔒 Lock" in [b.text for row in status.buttons for b in row]

    await after(member, lambda: member.send("/lock"), "Lock —")
    simulator.advance(60)
    await member.wait_for_bot_message("is locked")
    told = await owner.wait_for_bot_message("Max locked")
    assert vin[-4:] in (told.text or "")

    ask = await after(member, lambda: member.send("/unlock"), "Make sure")
    member.press(ask, "Yes, unlock")
    await member.wait_for_bot_message("security question")  # the owner's stored answer is not theirs
    member.send("Rex the dog")
    await member.wait_for_bot_message("Unlock —")
    simulator.advance(60)
    await member.wait_for_bot_message("is unlocked")
    await owner.wait_for_bot_message("Max unlocked")
    assert all(m.deleted for m in member.messages if m.text == "Rex the dog")
    assert not any("Remember the security answer" in (m.text or "") for m in member.bot_messages)

    owner.press(owner.now(menu), "Remote commands for Max")
    await owner.wait_for(lambda u: "remote commands on" not in (u.now(menu).text or ""))
    await after(member, lambda: member.send("/lock"), said(texts.SHARE_REMOTE_NOT_ALLOWED))


async def test_one_command_at_a_time_per_car_whoever_sends_it(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    """An owner and a person with remote commands share a car: while one's command runs, the other's waits."""
    owner, member = sandbox.user(OWNER, "Olga"), sandbox.user(MEMBER, "Max")
    await link(owner)
    await join(member, await invite(owner))
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    owner.press(menu, "Remote commands for Max")
    await owner.wait_for(lambda u: "remote commands on" in (u.now(menu).text or ""))

    simulator.add_fault(Fault(path="executeService", kind="slow", delay=3.0, method="POST"))  # Max's only
    member.send("/lock")
    await until(lambda: simulator.requests_to("executeService"), "Max's lock on its way")
    busy = texts.COMMAND_IN_PROGRESS.split("{car}")[1]
    await after(owner, lambda: owner.send("/lock"), busy)
    await member.wait_for_bot_message("is locked")
    assert not [m for m in owner.bot_messages if "Lock —" in (m.text or "")]  # the second was never sent


async def test_a_shared_person_gets_the_charge_push_in_their_own_language(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    owner = sandbox.user(OWNER, "Olga")
    member = sandbox.user(MEMBER, "Max", language_code="de")
    await link(owner)
    await join(member, await invite(owner), "de")
    cycle = Cycles()
    await cycle(bot)
    simulator.set_status(BEV_VIN, chargingLevelHv=80)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance(25 * 60)
    assert (await cycle(bot)).pushed == 1
    await owner.wait_for_bot_message(FINISHED)
    push = await member.wait_for_bot_message(fixed(texts.CHARGE_HEADLINES["full"], "de"))
    assert BEV_VIN[-4:] in (push.text or "") and REX_VIN[-4:] not in (push.text or "")
    member.press(push, push.buttons[0][0].text)  # its Status button: the push becomes the car's status
    await member.wait_for(lambda u: u.now(push).edits > 0 and "%" in (u.now(push).text or ""))


async def test_unlink_by_the_owner_ends_every_share_and_by_the_person_only_theirs(
    bot: Application, sandbox: Sandbox
) -> None:
    owner, member = await shared(sandbox)
    other = sandbox.user(STRANGER, "Ida")
    await join(other, await invite(owner))

    ask = await after(member, lambda: member.send("/unlink"), said(texts.SHARE_LEAVE_ASK).partition("?")[0])
    member.press(ask, said(texts.SHARE_LEAVE_BUTTON))
    await member.wait_for_bot_message(said(texts.SHARE_LEAVE_DONE))
    await owner.wait_for_bot_message("Max no longer sees")
    assert garage_of(bot).is_linked(OWNER)
    await after(member, lambda: member.send("/status"), said(texts.NOT_LINKED))
    await after(other, lambda: other.send("/status"), "updated")

    ask = await after(owner, lambda: owner.send("/unlink"), said(texts.UNLINK_ASK)[:20])
    owner.press(ask, said(texts.REMOVE_EVERYTHING))
    told = await other.wait_for_bot_message("no longer shares")
    assert "Olga" in (told.text or "") and BEV_VIN[-4:] in (told.text or "")
    await after(other, lambda: other.send("/status"), said(texts.NOT_LINKED))


async def test_a_relink_to_an_account_without_the_car_ends_its_share_and_tells_the_person(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    owner, member = await shared(sandbox)
    simulator.add_account("olga.new@example.com", "new-password")
    ask = await after(owner, lambda: owner.send("/link"), "Link another account instead")
    owner.press(ask, said(texts.LINK_ANOTHER))
    region = await owner.wait_for_bot_message(said(texts.LINK_REGION))
    owner.press(region, said(texts.REGION_NAMES["rest_of_world"]))
    await owner.wait_for(lambda u: said(texts.LINK_EMAIL) in (u.now(region).text or ""))
    await after(owner, lambda: owner.send("olga.new@example.com"), said(texts.LINK_PASSWORD))
    await after(owner, lambda: owner.send("new-password"), said(texts.LINK_DONE).partition("\n")[0])
    told = await member.wait_for_bot_message("no longer shares")
    assert "Olga" in (told.text or "") and BEV_VIN[-4:] in (told.text or "")
    assert garage_of(bot).sharing.shares(OWNER) == []
    await after(member, lambda: member.send("/status"), said(texts.NOT_LINKED))


async def test_a_person_with_an_account_of_their_own_who_unlinks_is_gone_and_the_owner_told(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    """Max sees Olga's car and links a BMW account of his own; his /unlink removes everything of his, his
    share too, and Olga learns it as when he only leaves."""
    owner, member = await shared(sandbox)
    simulator.add_account("max@example.com", "max-password")
    await link(member, "max@example.com", "max-password")

    ask = await after(member, lambda: member.send("/unlink"), said(texts.UNLINK_ASK)[:20])
    member.press(ask, said(texts.REMOVE_EVERYTHING))
    await owner.wait_for_bot_message("Max no longer sees")
    assert not garage_of(bot).sharing.members(OWNER, BEV_VIN)


async def test_shares_survive_a_restart_and_a_key_rotation(
    bot_settings: Settings, simulator_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    async with running_bot(bot_settings, fast_client(simulator_url)):
        owner, member = await shared(sandbox)
    new_key = Fernet.generate_key().decode()
    keys = (new_key, *bot_settings.bot_secret_key)
    with Store(bot_settings.database_path, keys) as store:
        assert store.rotate() > 0
    rotated = bot_settings.model_copy(update={"bot_secret_key": (new_key,)})
    async with running_bot(rotated, fast_client(simulator_url)):
        await after(member, lambda: member.send("/status"), "updated")
        menu = await after(owner, lambda: owner.send("/share"), "with your household")
        assert "Max" in (menu.text or "")


async def test_nothing_of_a_share_in_a_group(bot: Application, sandbox: Sandbox) -> None:
    owner, _ = await shared(sandbox)
    link_to = await invite(owner)
    stranger = sandbox.user(STRANGER, "Ida").in_group(-700)
    in_group = owner.in_group(-700)
    stranger.send(f"/start {payload(link_to)}")
    in_group.send("/share")
    await stranger.wait_for(lambda u: len(u.bot_messages) == 2)
    assert all(m.text == said(texts.PRIVATE_ONLY) for m in stranger.bot_messages)
    assert garage_of(bot).sharing.invitation(payload(link_to).removeprefix("share-")) is not None
    assert DEFAULT_PASSWORD not in "".join(m.describe() for m in stranger.messages)

    # The owner's own, valid revoke and remote buttons, pressed in the group: a neutral answer, no change.
    menu = await after(owner, lambda: owner.send("/share"), "with your household")
    datas = [
        b.callback_data for row in menu.buttons for b in row if b.callback_data and "Invite" not in b.text
    ]
    assert len(datas) == 2
    queries = [in_group.press_data(1, data) for data in datas]
    await in_group.wait_for(lambda u: {a.query_id for a in u.callback_answers()} >= set(queries))
    assert {a.text for a in in_group.callback_answers() if a.query_id in queries} == {
        said(texts.STALE_BUTTON)
    }
    assert [(s.member, s.remote) for s in garage_of(bot).sharing.shares(OWNER)] == [(MEMBER, False)]
    assert len(stranger.bot_messages) == 2


async def test_a_shared_person_gets_their_own_alerts_once(
    bot: Application, sandbox: Sandbox, simulator
) -> None:
    owner, member = await shared(sandbox)  # the owner's alerts: the defaults, charge level off
    menu = await after(member, lambda: member.send("/alerts"), "Alerts about your cars")
    member.press(menu, "Charge level")
    await member.wait_for(lambda u: "✅ Charge level: 80 %" in (u.now(menu).describe()))
    cycle = Cycles()
    await cycle(bot)
    simulator.set_status(BEV_VIN, chargingLevelHv=70)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance(12 * 60)  # 1 %/min: 82 %
    await cycle(bot)
    await cycle(bot)
    await member.wait_for_bot_message("has reached")
    simulator.advance(30 * 60)  # full
    await cycle(bot)
    await cycle(bot)
    reached = [m for m in member.bot_messages if "has reached" in (m.text or "")]
    assert len(reached) == 1 and BEV_VIN[-4:] in (reached[0].text or "")
    assert not any("has reached" in (m.text or "") for m in owner.bot_messages)  # not the owner's choice
