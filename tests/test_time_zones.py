"""The zone chosen in /settings rules every time: a CarData car's evening reminder fires at the owner's local
time, and the times the bot shows (the login code's end, the status's ages, the CSV) are in that zone, with
no "UTC" (issue 16, point 11). The simulated car reported its values hours ago, so the ages show a time of
day, not "N min ago"."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from telegram.ext import Application

from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.history import CSV_COLUMNS
from bot.sandbox.driver import SandboxUser
from tests.chat.test_cardata import (
    OWNER,
    cardata_of,
    choose,
    csv_rows,
    garage_of,
    link_cardata,
    start_flow,
)

HOURS_BEHIND = 5  # the simulated car's clock: its reports are this much (and an hour) old
ZONE = "Asia/Tokyo"  # far from a server on UTC or in Europe

pytestmark = pytest.mark.parametrize(
    "cardata_simulator",
    [{"poll_interval": 1, "clock": lambda: time.time() - HOURS_BEHIND * 3600}],
    indirect=True,
)


def clock_in_zone(moment: datetime) -> str:
    return f"{moment.astimezone(ZoneInfo(ZONE)):%H:%M}"


def next_local(hour: int, minute: int) -> float:
    """The next moment it is hour:minute in ZONE, as epoch seconds."""
    now = datetime.now(ZoneInfo(ZONE))
    moment = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return (moment if moment > now else moment + timedelta(days=1)).timestamp()


async def test_the_plug_in_reminder_fires_at_the_owners_local_time(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    await link_cardata(user, cardata_simulator)
    await cardata_of(cardata_bot).supervisor.wait_connected(OWNER)
    choose(cardata_bot, time_zone=ZONE)
    store = garage_of(cardata_bot).store
    store.save_alert_prefs(OWNER, replace(store.alert_prefs(OWNER), plug_on=True, plug_percent=80))

    cardata = cardata_of(cardata_bot)
    await cardata.alert_tick(next_local(20, 55))  # the BEV at 64 %, unplugged: not yet 21:00 in Tokyo
    assert not [m for m in user.bot_messages if "Plug in" in (m.text or "")]
    await cardata.alert_tick(next_local(21, 5))
    reminder = await user.wait_for_bot_message("Plug in")
    assert f"…{DEFAULT_BEV_VIN[-4:]}" in (reminder.text or "") and "64 %" in (reminder.text or "")


async def test_the_code_the_status_and_the_csv_show_the_owners_zone(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    choose(cardata_bot, time_zone=ZONE)
    before = datetime.now(UTC)
    flow = await start_flow(user)
    after = datetime.now(UTC)
    shown = re.search(r"valid until (\S+)\)", flow.text or "")
    assert shown is not None and "UTC" not in (flow.text or ""), flow.text
    expiry = {clock_in_zone(moment + timedelta(seconds=300)) for moment in (before, after)}
    assert shown.group(1) in expiry, flow.text

    code = flow.button("Copy the code").copy_text
    assert code is not None
    cardata_simulator.decide(code, "approved")
    await user.wait_for(lambda u: "Linked with BMW CarData" in (u.now(flow).text or ""))
    user.send("/status")
    status = await user.wait_for_bot_message("🕒")
    reported = cardata_of(cardata_bot).status(OWNER, DEFAULT_BEV_VIN).updated_at
    assert reported is not None
    local, today = reported.astimezone(ZoneInfo(ZONE)), datetime.now(ZoneInfo(ZONE)).date()
    day = "today" if local.date() == today else "yesterday"
    assert f"🕒 updated {day} {local:%H:%M}" in (status.text or ""), status.text
    assert "UTC" not in (status.text or "")

    user.send("/history")
    listing = await user.wait_for_bot_message("Charging history of")
    rows = await csv_rows(user, listing)
    started = [row[CSV_COLUMNS.index("started")] for row in rows[1:]]
    assert started and all(cell.endswith("+09:00") for cell in started), rows
