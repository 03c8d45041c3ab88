"""Drives of a quiet i3 through BMW CarData, end to end: the bot in the sandbox, CarData's simulator over HTTP
and its stream over TLS MQTT. A switch-off after the car moved closes a drive from the last parked report;
/trips lists it with the week's totals, and its 📍 sends where it ended. The first report is no drive; a
charge between two reports leaves the level used unknown, and /trips says so. /history draws the km driven per
day beside the kWh charged, for a car with drives and no charge too.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from telegram.ext import Application

from bot.cardata.models import keys as cd
from bot.cardata.simulator import DEFAULT_BEV_VIN, CardataSimulator
from bot.charts import BAR_COLOUR, DRIVE_COLOUR
from bot.chat.common import job_queue
from bot.demo import DemoWeek, live_a_week
from bot.history import CSV_COLUMNS, usable_kwh
from bot.months import Month
from bot.sandbox.driver import ChatMessage, SandboxUser
from tests.cardata.test_quiet import linked, reported, reported_at
from tests.chat.test_cardata import OWNER, cardata_of, choose, csv_rows, garage_of, link_cardata
from tests.chat.test_costs import _newest, _set_tariff
from tests.chat.test_share import after
from tests.support.disk import refuse
from tests.support.waits import until
from tests.test_history import _pixels
from tests.test_monthly import named

pytestmark = pytest.mark.parametrize("cardata_simulator", [{"poll_interval": 1}], indirect=True)
__all__ = ["linked"]  # the fixture, linked and the snapshot at linking decided on

DRIVES = "Drives of i3 120Ah"


async def trips(user: SandboxUser) -> ChatMessage:
    before = len(user.bot_messages)
    user.send("/trips")
    await user.wait_for(lambda u: any(DRIVES in (m.text or "") for m in u.bot_messages[before:]))
    return next(m for m in user.bot_messages[before:] if DRIVES in (m.text or ""))


def mileage(sim: CardataSimulator) -> int:
    return int(sim.value(DEFAULT_BEV_VIN, cd.MILEAGE) or 0)


async def drive_to(app: Application, sim: CardataSimulator, lat: float, lon: float, soc: float | None) -> int:
    """Drive, switch off, and wait for the burst to be decided on; the km the odometer grew."""
    before, start = reported_at(app), mileage(sim)
    sim.move(DEFAULT_BEV_VIN, lat, lon)
    if soc is not None:
        sim.set_soc(DEFAULT_BEV_VIN, soc)
    sim.advance(60)
    sim.switch_off(DEFAULT_BEV_VIN)
    await until(reported(app, before), "the switch-off decided on")
    return mileage(sim) - start


async def test_a_switch_off_after_a_drive_is_listed_in_trips_with_its_end_as_a_pin(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    first = await trips(user)  # the snapshot at linking is the first report: no drive yet
    assert "No drive recorded yet" in (first.text or "") and not first.buttons, first.text

    km = await drive_to(linked, cardata_simulator, 48.2, 11.6, soc=60)  # from 64 %
    assert km >= 2
    shown = (await trips(user)).text or ""
    kwh = round(4 / 100 * usable_kwh("i3 120Ah"), 2)
    assert f"Last 7 days</b>: 1 drive, {km} km" in shown, shown
    assert f"🚗 {km} km" in shown and f"🔋 64 % → 60 % · ⚡ about {kwh:.1f} kWh" in shown, shown
    assert f"{kwh / km * 100:.1f} kWh/100 km" in shown, shown
    assert "began after the first time and ended by the second" in shown

    km2 = await drive_to(linked, cardata_simulator, 48.25, 11.65, soc=55)
    message = await trips(user)
    assert f"2 drives, {km + km2} km" in (message.text or ""), message.text
    # Numbered newest first; the button carries neither the VIN nor a coordinate.
    pin = message.button("📍 2")
    assert DEFAULT_BEV_VIN not in (pin.callback_data or "") and "48.2" not in (pin.callback_data or "")
    before = len(user.bot_messages)
    user.press(message, "📍 2")
    await user.wait_for(lambda u: any(m.location for m in u.bot_messages[before:]))
    [sent] = [m.location for m in user.bot_messages[before:] if m.location]
    assert sent == pytest.approx((48.2, 11.6)), sent
    # Each drive recorded once.
    assert len(garage_of(linked).drives(OWNER, DEFAULT_BEV_VIN)) == 2


async def test_a_drive_whose_switch_off_finds_a_full_disk_is_counted_in_the_next_one(
    linked: Application, cardata_simulator: CardataSimulator, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """A quiet car's switch-off is decided on (its charge, if any, recorded) but its drive finds no room: no
    kilometre is lost, the next switch-off closes both as one drive (docs/exactly-once-push.md)."""
    room = refuse(monkeypatch, cardata_of(linked).store, "save_drive_mark")
    km = await drive_to(linked, cardata_simulator, 48.2, 11.6, soc=60)  # from 64 %
    assert not garage_of(linked).drives(OWNER, DEFAULT_BEV_VIN)
    room()
    km2 = await drive_to(linked, cardata_simulator, 48.25, 11.65, soc=55)
    [drive] = garage_of(linked).drives(OWNER, DEFAULT_BEV_VIN)
    assert (drive.km, drive.soc_start, drive.soc_end) == (km + km2, 64, 55), drive
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_charge_between_two_reports_leaves_the_level_used_unknown_and_says_so(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    sim = cardata_simulator
    sim.plug_in(DEFAULT_BEV_VIN)
    sim.advance(6 * 60)  # 70 %, silently
    sim.finish_charging(DEFAULT_BEV_VIN)
    sim.unplug(DEFAULT_BEV_VIN)
    km = await drive_to(linked, sim, 48.2, 11.6, soc=None)  # the burst tells the charge and the drive
    shown = (await trips(user)).text or ""
    assert f"🚗 {km} km" in shown and "It charged between: the level used is not known." in shown, shown
    assert "The energy of 1 drive is not known" in shown and "about" not in shown, shown
    assert len(garage_of(linked).charge_sessions(OWNER, DEFAULT_BEV_VIN)) == 1


async def test_the_history_csv_has_the_drives_beside_the_charges(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    km = await drive_to(linked, cardata_simulator, 48.2, 11.6, soc=60)
    user.send("/history")
    listing = await user.wait_for_bot_message("Charging history of")
    rows = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in (await csv_rows(user, listing))[1:]]
    drives = [row for row in rows if row["kind"] == "drive"]
    assert len(drives) == 1 and {row["kind"] for row in rows} == {"charge", "drive"}, rows
    [drive] = drives
    assert (drive["km"], drive["soc_start"], drive["soc_end"]) == (str(km), "64", "60"), drive
    assert (drive["latitude"], drive["longitude"], drive["minutes"]) == ("48.2", "11.6", ""), drive
    assert [row["started"] for row in rows] == sorted(row["started"] for row in rows)  # oldest first


async def test_the_monthly_summary_of_a_cardata_car_counts_its_drives_and_charts_them(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """Issue 21, point 6 for a CarData car: km and consumption from the recorded drives, pushed by CarData's
    alert tick (no poll, no BMW call) on the 1st at 9:00 in the owner's zone."""
    berlin = ZoneInfo("Europe/Berlin")
    choose(linked, time_zone="Europe/Berlin")
    store = garage_of(linked).store
    store.save_alert_prefs(OWNER, replace(store.alert_prefs(OWNER), monthly_on=True))
    km = await drive_to(linked, cardata_simulator, 48.2, 11.6, soc=60)  # from 64 %
    km += await drive_to(linked, cardata_simulator, 48.25, 11.65, soc=55)
    month = Month.of(cardata_simulator.now(), berlin)
    first = datetime(month.next.year, month.next.month, 1, tzinfo=berlin)
    cardata = cardata_of(linked)
    await cardata.alert_tick((first + timedelta(hours=8, minutes=59)).timestamp())
    assert not [m for m in user.bot_messages if m.photo is not None]
    await cardata.alert_tick((first + timedelta(hours=9)).timestamp())
    summary = await user.wait_for_bot_message("🛣 Driven")
    await cardata.alert_tick((first + timedelta(hours=9, minutes=1)).timestamp())
    caption = summary.caption or ""
    kwh = round(9 / 100 * usable_kwh("i3 120Ah"), 2)
    assert f"{km} km" in caption and f"{kwh / km * 100:.1f} kWh/100 km" in caption, caption
    assert summary.photo is not None and len([m for m in user.bot_messages if m.photo is not None]) == 1


async def test_history_with_drives_and_no_charge_shows_the_km_per_day_and_the_csv(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.car(DEFAULT_BEV_VIN).history.clear()  # BMW knows no charge of it either
    km = await drive_to(linked, cardata_simulator, 48.2, 11.6, soc=60)
    user.send("/history")
    listing = await user.wait_for_bot_message("No charge of")
    chart = await user.wait_for_bot_message("driven in")
    assert f"🚗 {km} km driven in 1 drive" in (chart.caption or ""), chart.caption
    assert chart.photo is not None and _pixels(chart.photo, DRIVE_COLOUR) > 100
    assert _pixels(chart.photo, BAR_COLOUR) == 0  # no kWh bar: nothing charged
    rows = await csv_rows(user, listing)
    assert [row[0] for row in rows[1:]] == ["drive"], rows


async def test_a_car_with_drives_and_no_charge_speaks_of_its_drives_not_of_zero_charges(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """Found trying the demo: the chart's caption began "≈ 0 kWh in 0 charges" and the CSV button offered
    "all charges" when there were only drives."""
    cardata_simulator.car(DEFAULT_BEV_VIN).history.clear()
    await drive_to(linked, cardata_simulator, 48.2, 11.6, soc=60)
    user.send("/history")
    listing = await user.wait_for_bot_message("No charge of")
    chart = await user.wait_for_bot_message("driven in")
    assert "0 charges" not in (chart.caption or "") and "kWh" not in (chart.caption or ""), chart.caption
    assert [b.text for b in listing.buttons[0]] == ["📄 CSV of all charges and drives"], listing.buttons


async def test_this_month_counts_and_prices_bmws_own_charges_as_history_shows_them(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """Found trying the demo: /history listed and priced BMW's own charges of the month, and 📅 This month
    under it said "No charge recorded". It counts them as fetched within the hour, spending no call."""
    berlin = ZoneInfo("Europe/Berlin")
    choose(linked, time_zone="Europe/Berlin")
    history = cardata_simulator.car(DEFAULT_BEV_VIN).history
    newest = max(float(entry["endTime"]) for entry in history)
    month = Month.of(newest, berlin)
    start, end = month.bounds(berlin)
    ours = [entry for entry in history if start <= float(entry["endTime"]) < end]
    linked.bot_data.services.clock = lambda: newest + 60
    await _set_tariff(user, "0.30", "Your settings", "💶 Home tariff", "Saved.")
    listing = await _newest(user, "/history", "Charging history of")
    calls = cardata_of(linked).client.calls_left(OWNER)
    user.press(listing, "This month")
    summary = await user.wait_for_bot_message("so far")
    text = summary.caption or summary.text or ""
    assert f"🔌 {len(ours)} charge" in text and "No charge recorded" not in text, text
    [month_line] = [
        line for line in (listing.text or "").splitlines() if line.startswith(f"💶 {named(month)}")
    ]
    cost = month_line.split("≈ ")[1].split(" for ")[0]  # /history's cost of the month
    assert f"💶 Cost: ≈ {cost}" in text, (text, month_line)
    assert cardata_of(linked).client.calls_left(OWNER) == calls


async def test_the_demos_week_is_there_again_when_its_owner_links_after_an_unlink(
    cardata_bot: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """Found trying the demo: /unlink, /link again, and /trips had no drive: the week was seeded once per
    person, not once per link."""
    job_queue(cardata_bot).run_repeating(live_a_week, 0.2, data=DemoWeek(cardata_simulator))
    for _ in range(2):
        await link_cardata(user, cardata_simulator)
        await until(lambda: garage_of(cardata_bot).store.drives(OWNER, DEFAULT_BEV_VIN), "the week seeded")
        assert "Last 7 days" in ((await trips(user)).text or "")
        ask = await after(user, lambda: user.send("/unlink"), "Remove your BMW account")
        user.press(ask, "Yes, remove everything")
        await user.wait_for_bot_message("all its data are gone")


async def test_bmws_own_charges_stay_priced_once_the_bot_has_recorded_a_charge_at_home(
    linked: Application, user: SandboxUser, cardata_simulator: CardataSimulator
) -> None:
    """Found trying the demo: BMW's own charging history gives no position; once the bot recorded its first
    charge (at home) every one of BMW's turned "away, no price". Without a position of its own, one of BMW's
    charges is priced at the tariff like the others."""
    older = len(cardata_simulator.car(DEFAULT_BEV_VIN).history)
    await _set_tariff(user, "0.30", "Your settings", "💶 Home tariff", "Saved.")
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    cardata_simulator.advance(40 * 60)  # 64 % -> 100 %: the car reports, and the bot records it where it is
    await user.wait_for_bot_message("has finished charging")
    await until(
        lambda: garage_of(linked).store.charge_sessions(OWNER, DEFAULT_BEV_VIN), "the charge recorded"
    )
    listing = await _newest(user, "/history", "Charging history of")
    lines = [line for line in (listing.text or "").splitlines() if " · " in line]
    assert len(lines) == older + 1 and all("$" in line for line in lines), listing.text
    assert "away, no price" not in (listing.text or "") and not [
        b for row in listing.buttons for b in row if "💶" in b.text
    ]
