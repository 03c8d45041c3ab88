"""/share of a car linked through BMW CarData (issue 19, points 2 and 4): the shared person's /status comes
from the owner's stream, their Refresh spends none of the owner's daily BMW calls, the charge push reaches
them, and the owner's /unlink ends the share. The i Remote side and the abuse cases:
tests/chat/test_share.py."""

from __future__ import annotations

import pytest
from telegram.ext import Application

from bot.cardata.simulator import DEFAULT_BEV_VIN, DEFAULT_REX_VIN, CardataSimulator
from bot.chat import texts
from bot.sandbox.driver import Sandbox, SandboxUser
from tests.chat.test_cardata import cardata_of, link_cardata, texts_of
from tests.chat.test_share import after, invite, join
from tests.support.bot import said
from tests.support.cardata import OWNER
from tests.support.waits import until

pytestmark = pytest.mark.parametrize(
    "cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True
)
MEMBER = 4343


async def test_a_shared_cardata_car_streams_to_its_person_within_the_owners_budget(
    cardata_bot: Application, user: SandboxUser, sandbox: Sandbox, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    await link_cardata(user, sim)
    cardata = cardata_of(cardata_bot)
    await cardata.supervisor.wait_connected(OWNER)
    member = sandbox.user(MEMBER, "Max")
    await join(member, await invite(user, DEFAULT_BEV_VIN))

    status = await after(member, lambda: member.send("/status"), "🕒")
    assert DEFAULT_BEV_VIN[-4:] in (status.text or "") and "64 %" in (status.text or "")
    labels = [b.text for row in status.buttons for b in row]
    assert "🔄 Refresh" in labels and not any("Other car" in label for label in labels)
    calls = cardata.client.calls_left(OWNER)
    sim.set_soc(DEFAULT_BEV_VIN, 70)  # not streamed yet: only a snapshot from BMW would show it
    member.press(status, "Refresh")
    await member.wait_for(lambda u: u.now(status).edits > 0)
    assert cardata.client.calls_left(OWNER) == calls  # the owner's budget is the owner's
    assert "calls left" not in (member.now(status).text or "")

    sim.plug_in(DEFAULT_BEV_VIN)
    await until(
        lambda: (
            (t := cardata.store.cardata_track(OWNER, DEFAULT_BEV_VIN)) is not None
            and t.session_start is not None
        ),
        "the charge seen",
    )
    sim.set_soc(DEFAULT_BEV_VIN, 80)  # the target: complete
    await user.wait_for_bot_message("has finished charging")
    push = await member.wait_for_bot_message("has finished charging")
    assert DEFAULT_BEV_VIN[-4:] in (push.text or "") and DEFAULT_REX_VIN[-4:] not in (push.text or "")
    assert len(texts_of(member, "has finished charging")) == 1

    ask = await after(user, lambda: user.send("/unlink"), said(texts.UNLINK_ASK)[:20])
    user.press(ask, said(texts.REMOVE_EVERYTHING))
    told = await member.wait_for_bot_message("no longer shares")
    assert "Carla" in (told.text or "")
    await after(member, lambda: member.send("/status"), said(texts.NOT_LINKED))


async def test_a_shared_persons_history_spends_none_of_the_owners_calls(
    cardata_bot: Application, user: SandboxUser, sandbox: Sandbox, cardata_simulator: CardataSimulator
) -> None:
    """/history of a person the car is shared with: BMW's own charging history (one of the owner's daily
    calls) only as the owner fetched it within the hour, else the recorded charges and a line saying why."""
    await link_cardata(user, cardata_simulator)
    cardata = cardata_of(cardata_bot)
    member = sandbox.user(MEMBER, "Max")
    await join(member, await invite(user, DEFAULT_BEV_VIN))
    assert cardata_simulator.car(DEFAULT_BEV_VIN).history, "BMW knows charges of the car (a week's)"
    calls = cardata.client.calls_left(OWNER)

    before = await after(member, lambda: member.send("/history"), "No charge of")
    assert cardata.client.calls_left(OWNER) == calls
    assert said(texts.HISTORY_OWNERS_CALLS)[-50:] in (before.text or ""), before.text
    assert said(texts.HISTORY_MEASURED)[:30] not in (before.text or "")

    await after(user, lambda: user.send("/history"), "Charging history")  # the owner's call
    calls = cardata.client.calls_left(OWNER)
    now = await after(member, lambda: member.send("/history"), "Charging history")
    assert cardata.client.calls_left(OWNER) == calls
    assert said(texts.HISTORY_MEASURED)[:30] in (now.text or ""), now.text
    assert said(texts.HISTORY_OWNERS_CALLS)[-50:] not in (now.text or "")
