"""Linking again, co-owners and /unlink, end to end: the bot with both backends in the sandbox, CarData's
simulator over HTTP and its stream over TLS MQTT. A /link that BMW fails on the way (an error, no PRIMARY
car, a cancellation) leaves the working link exactly as it was, an i Remote account too; one co-owner's
/unlink leaves the container the other reads through; /unlink forgets a user who only chose settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import sqlite3
from pathlib import Path

import pytest
from telegram.ext import Application

from bot.bmw.simulator import Fault
from bot.cardata.auth import Approved
from bot.cardata.simulator import DEFAULT_BEV_VIN, DEFAULT_CLIENT_ID, DEFAULT_GCID, CardataSimulator
from bot.chat import texts
from bot.config import Settings
from bot.sandbox.driver import Sandbox, SandboxUser
from tests.chat.test_cardata import (
    OWNER,
    cardata_of,
    charging,
    garage_of,
    link_cardata,
    rows_about,
    start_flow,
)
from tests.support.bot import link
from tests.support.waits import until
from tests.test_forget import _on_disk as on_disk

# The device flow polled every second (BMW: 5 s), so linking takes a second, not five.
# The cars stream every change (live, iDrive 7 and later): these tests push from a streamed charge.
pytestmark = pytest.mark.parametrize(
    "cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True
)

CO_OWNER = 4343
MAPPINGS = "/customers/vehicles/mappings"
OTHER_CLIENT_ID = "5f0c2d6e-0000-4000-8000-00000000c1d2"


def link_rows(db_path: Path) -> list[tuple[object, ...]]:
    """The owner's CarData link as stored: ciphertexts, gcid, container."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT * FROM cardata_accounts WHERE tg_id = ?", (OWNER,)).fetchall()
    finally:
        db.close()


async def approve_failing(
    user: SandboxUser, sim: CardataSimulator, client_id: str, says: str, *, replacing: bool = False
) -> None:
    """/link with CarData again, the code approved at BMW; until the flow's message says `says`."""
    flow = await start_flow(user, client_id, replacing=replacing)
    code = flow.button("Copy the code").copy_text
    assert code is not None
    sim.decide(code, "approved")
    await user.wait_for(lambda u: says in html.unescape(u.now(flow).text or ""))


async def works_as_before(application: Application, user: SandboxUser, sim: CardataSimulator) -> None:
    """The owner's link goes on: the stream still brings the car's news, /status shows it, /unlink asks."""
    sim.plug_in(DEFAULT_BEV_VIN)
    await until(charging(application, DEFAULT_BEV_VIN), "the stream still brings the car's news")
    user.send("/status")
    await user.wait_for_bot_message("🕒")
    user.send("/unlink")
    await user.wait_for_bot_message(texts.UNLINK_ASK[:20])


async def test_a_relink_that_bmw_fails_leaves_the_working_link_as_it_was(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    db_path = cardata_bot_settings.database_path
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    stored, rows = link_rows(db_path), rows_about(db_path, OWNER)

    cardata_simulator.add_fault(Fault(path=f"{MAPPINGS}$", kind="error", status=500))
    failed = texts.CARDATA_LINK_FAILED.partition(":")[0]
    await approve_failing(user, cardata_simulator, DEFAULT_CLIENT_ID, failed)

    assert link_rows(db_path) == stored  # the same tokens, client id and container, byte for byte
    assert rows_about(db_path, OWNER) == rows
    assert garage_of(cardata_bot).backend(OWNER) == "cardata"
    await works_as_before(cardata_bot, user, cardata_simulator)


async def test_a_relink_that_works_streams_on_the_new_tokens_and_leaves_no_old_ciphertext(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    db_path = cardata_bot_settings.database_path
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    (old,) = link_rows(db_path)
    secrets = [value.encode() for value in old if isinstance(value, str) and value.startswith("gAAAA")]
    assert len(secrets) == 4  # the client id and the three tokens, encrypted

    await link_cardata(user, cardata_simulator)
    (new,) = link_rows(db_path)
    assert new[0] == OWNER and not {value.encode() for value in new if isinstance(value, str)} & set(secrets)
    assert not [name for name, data in on_disk(db_path).items() if any(s in data for s in secrets)]
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    await works_as_before(cardata_bot, user, cardata_simulator)


async def test_a_relink_to_an_account_without_a_primary_car_keeps_the_working_link(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    db_path = cardata_bot_settings.database_path
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    stored, rows = link_rows(db_path), rows_about(db_path, OWNER)
    other_gcid, _ = cardata_simulator.add_account(OTHER_CLIENT_ID, cars=[])  # a SECONDARY car only

    await approve_failing(user, cardata_simulator, OTHER_CLIENT_ID, texts.CARDATA_NO_CARS[:40])

    assert link_rows(db_path) == stored
    assert rows_about(db_path, OWNER) == rows
    assert not cardata_simulator.containers(other_gcid)["containers"]  # nothing made for no car
    await works_as_before(cardata_bot, user, cardata_simulator)


async def test_a_relink_cancelled_half_way_keeps_the_working_link(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    db_path = cardata_bot_settings.database_path
    garage = garage_of(cardata_bot)
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    stored, rows = link_rows(db_path), rows_about(db_path, OWNER)

    flow = await garage.start_device_flow(OWNER, DEFAULT_CLIENT_ID)
    cardata_simulator.decide(flow.code.user_code, "approved")
    outcome = await asyncio.wait_for(garage.wait_device_flow(flow), 20.0)
    assert isinstance(outcome, Approved)
    cardata_simulator.add_fault(Fault(path="/basicData$", kind="slow", delay=3.0))
    mapped = len(cardata_simulator.requests_to(MAPPINGS))
    relink = asyncio.create_task(garage.finish_device_flow(OWNER, "Carla", flow, outcome.tokens))
    await until(lambda: len(cardata_simulator.requests_to(MAPPINGS)) > mapped, "the re-link under way")
    relink.cancel()  # e.g. the bot shuts down, or the owner starts yet another /link
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(relink, 20.0)

    assert link_rows(db_path) == stored
    assert rows_about(db_path, OWNER) == rows
    assert garage.backend(OWNER) == "cardata"
    await works_as_before(cardata_bot, user, cardata_simulator)


async def test_a_token_renewal_that_ends_after_a_relink_keeps_the_new_links_tokens(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """A renewal of the old link's tokens that BMW answers only after the owner linked again must not write
    the old link's tokens over the new ones."""
    await link_cardata(user, cardata_simulator)
    keeper = cardata_of(cardata_bot).client.tokens
    store = cardata_of(cardata_bot).store
    old = store.cardata_link(OWNER)
    assert old is not None
    cardata_simulator.add_fault(Fault(path="/gcdm/oauth/token$", kind="slow", delay=6.0))  # this renewal only
    renewal = asyncio.create_task(keeper.tokens(OWNER, stale=old.tokens))
    await until(lambda: bool(cardata_simulator.requests_to("/gcdm/oauth/token")), "the renewal under way")

    await link_cardata(user, cardata_simulator)
    assert not renewal.done()  # the race under test: the link changed while the renewal was out
    new = store.cardata_link(OWNER)
    assert new is not None and new.tokens != old.tokens
    renewed = await asyncio.wait_for(renewal, 20.0)

    assert renewed == new.tokens  # the caller gets the link's tokens as they are now
    stored = store.cardata_link(OWNER)
    assert stored is not None and stored.tokens == new.tokens
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    await works_as_before(cardata_bot, user, cardata_simulator)


async def test_a_failed_cardata_link_leaves_the_i_remote_account_and_no_row_of_its_own(
    cardata_bot: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    db_path = cardata_bot_settings.database_path
    await link(user, both_backends=True)
    rows = rows_about(db_path, OWNER)

    cardata_simulator.add_fault(Fault(path=f"{MAPPINGS}$", kind="error", status=500))
    failed = texts.CARDATA_LINK_FAILED.partition(":")[0]
    await approve_failing(user, cardata_simulator, DEFAULT_CLIENT_ID, failed, replacing=True)

    assert rows_about(db_path, OWNER) == rows  # not even a count of the day's CarData calls
    assert garage_of(cardata_bot).backend(OWNER) == "iremote"
    user.send("/status")
    await user.wait_for_bot_message("🕒")


async def test_one_co_owners_unlink_leaves_the_container_the_other_reads_through(
    cardata_bot: Application, sandbox: Sandbox, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    co_owner = sandbox.user(CO_OWNER, "Bert")  # the same BMW account, his own Telegram
    for person in (user, co_owner):
        await link_cardata(person, cardata_simulator)

    def active() -> list[str]:
        containers = cardata_simulator.containers(DEFAULT_GCID)["containers"]
        return [c["containerId"] for c in containers if c["state"] == "ACTIVE"]

    (shared,) = active()
    user.send("/unlink")
    user.press(await user.wait_for_bot_message(texts.UNLINK_ASK[:20]), "Yes, remove everything")
    await user.wait_for_bot_message(texts.UNLINK_DONE[:20])
    assert active() == [shared]

    co_owner.send("/status")
    status = await co_owner.wait_for_bot_message("🕒")
    cardata_simulator.set_soc(DEFAULT_BEV_VIN, 70)
    co_owner.press(status, "Refresh")
    await co_owner.wait_for(lambda u: "70 %" in (u.now(status).text or ""))
    assert "does not know this car" not in (co_owner.now(status).text or "")

    co_owner.send("/unlink")  # the last owner of the account: the container is retired
    co_owner.press(await co_owner.wait_for_bot_message(texts.UNLINK_ASK[:20]), "Yes, remove everything")
    await co_owner.wait_for_bot_message(texts.UNLINK_DONE[:20])
    assert active() == []


async def test_unlink_forgets_a_user_who_only_chose_settings(
    cardata_bot: Application, user: SandboxUser, cardata_bot_settings: Settings
) -> None:
    db_path = cardata_bot_settings.database_path
    user.send("/notify")
    user.press(await user.wait_for_bot_message("Which messages"), "Charging started")
    await until(lambda: garage_of(cardata_bot).notify_prefs(OWNER).started, "the /notify choice stored")
    user.send("/alerts")
    user.press(await user.wait_for_bot_message("Alerts about your cars"), "Charge level")
    await until(lambda: garage_of(cardata_bot).alert_prefs(OWNER).level_on, "the /alerts choice stored")
    assert rows_about(db_path, OWNER)["users"] == 1

    user.send("/unlink")
    ask = await user.wait_for_bot_message(texts.UNLINK_SETTINGS_ASK[:30])
    user.press(ask, "Yes, remove everything")
    await user.wait_for_bot_message(texts.UNLINK_SETTINGS_DONE[:20])
    assert not any(rows_about(db_path, OWNER).values())
    user.send("/unlink")  # nothing left to remove
    await user.wait_for_bot_message(texts.NOT_LINKED)
