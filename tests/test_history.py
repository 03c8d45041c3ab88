"""Charging history end to end: charges the watcher sees end are recorded once, /history lists them with a
chart picture, and the CSV button sends them all as a document, to the car's owner only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from PIL import Image
from telegram.ext import Application

from bot.backends import from_bmw_history
from bot.cardata.models import ChargingSession
from bot.charts import BACKGROUND, BAR_COLOUR, DRIVE_COLOUR, LINE_COLOUR, WIDTH, HistoryWords, history_chart
from bot.chat import prefs, texts
from bot.chat.history import all_measured, chart_title
from bot.chat.rate_limit import SERVER_ERROR_RETRIES
from bot.history import (
    BMW_HISTORY,
    CSV_COLUMNS,
    ChargeSession,
    energy_per_day,
    merge,
    to_csv,
    usable_kwh,
)
from bot.store import Store, UserSettings
from tests.support.bot import BEV_VIN, fast_client, link, running_bot
from tests.support.charts import MESSAGE_TEXT_PX, PHONE_PHOTO_PX, ink_height_below_the_bars
from tests.support.watcher import FINISHED, Cycles


def _store(application: Application) -> Store:
    return application.bot_data.services.garage.store


def _pushes(user, contains: str) -> list:
    return [m for m in user.bot_messages if m.text and contains in m.text]


async def _full_charge(bot: Application, simulator, cycle: Cycles, soc: int = 80) -> None:
    """A charge from `soc` % to full, seen from its start to its end (1 %/min in the simulator)."""
    simulator.set_status(BEV_VIN, chargingLevelHv=soc)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance((100 - soc + 5) * 60)
    await cycle(bot)


def _pixels(png: bytes, colour: tuple[int, int, int]) -> int:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG" and image.width == WIDTH
        return sum(count for count, value in image.convert("RGB").getcolors(1 << 16) if value == colour)


async def test_a_finished_charge_is_listed_drawn_and_exported_once(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(401)
    await link(alice)
    alice.send("/help")
    await alice.wait_for_bot_message("/history — Charging history")
    alice.send("/history")
    await alice.wait_for_bot_message("No charge of")
    await cycle(bot)
    await _full_charge(bot, simulator, cycle, soc=80)
    await cycle(bot)
    await cycle(bot)
    assert len(_pushes(alice, FINISHED)) == 1

    alice.send("/history")
    listing = await alice.wait_for_bot_message("Charging history of")
    kwh = 0.2 * usable_kwh("I3")  # 80 → 100 % of an i3 60 Ah: 3.76 kWh
    line = next(line for line in listing.text.splitlines() if "–100 %" in line)
    assert "80–100 %" in line and f"≈{kwh:.1f} kWh" in line and "20 min" in line and "full" in line
    assert len([line for line in listing.text.splitlines() if " kWh · " in line]) == 1
    chart = await alice.wait_for_bot_message("last 30 days")
    assert chart.photo is not None and f"≈ {kwh:.1f} kWh in 1 charge" in chart.caption
    assert _pixels(chart.photo, BAR_COLOUR) > 100  # today's bar
    assert _pixels(chart.photo, LINE_COLOUR) > 100  # the state of charge over that charge

    alice.press(listing, "CSV")
    await alice.wait_for(lambda u: any(m.document for m in u.bot_messages))
    sent = next(m for m in alice.bot_messages if m.document)
    assert (
        sent.document_name == f"charging-history-{BEV_VIN[-4:]}.csv"
        and "all 1 charge recorded" in sent.caption
    )
    rows = list(csv.reader(io.StringIO(sent.document.decode())))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert (row["soc_start"], row["soc_end"], row["minutes"], row["ended_how"]) == ("80", "100", "20", "full")
    assert float(row["energy_kwh_estimated"]) == round(kwh, 2)
    car = simulator.vehicle(BEV_VIN).status["position"]
    assert (float(row["latitude"]), float(row["longitude"])) == (car["lat"], car["lon"])


async def test_another_user_pressing_the_csv_button_gets_nothing(bot, sandbox, simulator):
    cycle = Cycles()
    alice, mallory = sandbox.user(402), sandbox.user(403, "Mallory")
    await link(alice)
    await link(mallory)  # the very same BMW account and car
    await cycle(bot)
    await _full_charge(bot, simulator, cycle)
    alice.send("/history")
    listing = await alice.wait_for_bot_message("Charging history of")
    await alice.wait_for_bot_message("last 30 days")
    csv_data = listing.button("CSV").callback_data

    messages, answers = len(mallory.messages), len(mallory.callback_answers())
    mallory.press_data(listing.message_id, csv_data)  # copied from Alice's chat
    mallory.press_data(mallory.messages[-1].message_id, csv_data)  # on one of Mallory's own messages
    await mallory.wait_for(lambda u: len(u.callback_answers()) == answers + 2)
    assert all(answer.text == texts.STALE_BUTTON for answer in mallory.callback_answers()[answers:])
    assert len(mallory.messages) == messages
    assert not any(m.document for m in alice.bot_messages + mallory.bot_messages)


async def test_a_charge_whose_push_is_switched_off_is_recorded_too(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(404)
    await link(alice)
    alice.send("/notify")
    alice.press(await alice.wait_for_bot_message("Which messages"), "Charge finished")
    await alice.wait_for(lambda u: not _store(bot).notify_prefs(404).finished)
    await cycle(bot)
    await _full_charge(bot, simulator, cycle, soc=90)
    await cycle(bot)
    assert _pushes(alice, FINISHED) == []
    sessions = _store(bot).charge_sessions(404, BEV_VIN)
    assert [(s.soc_start, s.soc_end, s.ended) for s in sessions] == [(90, 100, "full")]


async def test_a_restart_between_the_decision_and_the_push_records_the_charge_once(
    bot_settings, sandbox, simulator, simulator_url, bot_api
):
    cycle = Cycles()
    alice = sandbox.user(405)
    async with running_bot(bot_settings, fast_client(simulator_url)) as first:
        await link(alice)
        await cycle(first)
        simulator.set_status(BEV_VIN, chargingLevelHv=70)
        simulator.plug_in(BEV_VIN, charging=True)
        await cycle(first)
        simulator.advance(35 * 60)
        # The end is decided and written; its push fails (more 500s than bot/chat/rate_limit.py tries again).
        bot_api.inject("sendMessage", "error", status=500, times=SERVER_ERROR_RETRIES + 1)
        assert (await cycle(first)).push_failures == 1
        assert len(_store(first).charge_sessions(405, BEV_VIN)) == 1
    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        assert (await cycle(second)).pushed == 1
        await cycle(second)
        simulator.set_status(BEV_VIN, chargingLevelHv=50)
        simulator.plug_in(BEV_VIN, charging=True)
        await cycle(second)
        simulator.advance(10 * 60)
        simulator.unplug(BEV_VIN)
        await cycle(second)
    async with running_bot(bot_settings, fast_client(simulator_url)) as third:
        await cycle(third)
        alice.send("/history")
        listing = await alice.wait_for_bot_message("Charging history of")
    assert len(_pushes(alice, FINISHED)) == 1
    lines = [line for line in listing.text.splitlines() if " kWh · " in line]
    assert len(lines) == 2  # newest first
    assert "50–60 %" in lines[0] and "10 min" in lines[0] and "stopped early" in lines[0]
    assert "70–100 %" in lines[1] and "30 min" in lines[1] and "full" in lines[1]


def test_bmw_history_replaces_the_estimate_it_overlaps_and_keeps_what_the_bot_knew():
    def session(start: float, end: float, kwh: float, **fields) -> ChargeSession:
        values = dict(
            soc_start=20, soc_end=80, ended="full", reason=None, lat=48.1, lon=11.5, source="iremote"
        )
        return ChargeSession(1, BEV_VIN, start, end, energy_kwh=kwh, **{**values, **fields})

    recorded = [session(1000, 5000, 11.3), session(9000, 9500, 1.0)]
    measured = session(1100, 5100, 12.9, source=BMW_HISTORY, ended="", lat=None, lon=None)
    older = session(100, 500, 2.0, source=BMW_HISTORY)
    merged = merge(recorded, [measured, older])
    assert [(s.started_at, s.energy_kwh, s.source) for s in merged] == [
        (9000, 1.0, "iremote"),
        (1100, 12.9, BMW_HISTORY),
        (100, 2.0, BMW_HISTORY),
    ]
    assert (merged[1].ended, merged[1].lat, merged[1].lon) == ("full", 48.1, 11.5)


def test_a_charge_of_bmws_history_needs_its_start_and_its_end():
    start = datetime(2025, 11, 3, 18, 0, tzinfo=UTC)
    done = ChargingSession(start, start + timedelta(hours=1), 20.0, 80.0, 15.4, 3600.0)
    found = from_bmw_history(1, BEV_VIN, done)
    assert found is not None and found.seconds == 3600 and found.started_at == start.timestamp()
    assert (found.energy_kwh, found.ended, found.source) == (15.4, "", BMW_HISTORY)
    assert from_bmw_history(1, BEV_VIN, ChargingSession(None, start, 20.0, 80.0, 15.4, 3600.0)) is None
    # BMW lists a charge still running without its end (Guide §3.4): not a charge that ended
    assert from_bmw_history(1, BEV_VIN, ChargingSession(start, None, 20.0, 80.0, 15.4, 3600.0)) is None


def test_usable_capacity_follows_the_model_string():
    assert usable_kwh("i3 94 (+ REX)") == 27.2 and usable_kwh("i3 120") == 37.9
    assert usable_kwh("I3 +REX") == usable_kwh("i3") == 18.8
    assert usable_kwh(None) == 27.2 and usable_kwh("I3", battery_kwh=42.2) == 42.2


WORDS = HistoryWords("kWh per day", "State of charge", "unknown", "{:g}".format, str, str)


def test_the_chart_sums_each_day_and_does_without_an_unknown_state_of_charge():
    def ended(day: int, kwh: float | None) -> ChargeSession:
        end = datetime(2026, 5, day, 18, 0, tzinfo=UTC).timestamp()
        return ChargeSession(
            1, BEV_VIN, end - 3600, end, None, None, kwh, "full", None, None, None, "iremote"
        )

    sessions = [ended(3, 2.5), ended(3, 1.5), ended(1, None), ended(4, 9.0), ended(2, 4.0)]
    days = energy_per_day(sessions, date(2026, 5, 3), days=3, tz=UTC)
    assert days == [(date(2026, 5, 1), 0.0), (date(2026, 5, 2), 4.0), (date(2026, 5, 3), 4.0)]
    png = history_chart(days, [], WORDS)
    assert _pixels(png, BAR_COLOUR) > 100 and _pixels(png, LINE_COLOUR) == 0
    empty = history_chart([(day, 0.0) for day, _ in days], [], WORDS)
    assert _pixels(empty, BAR_COLOUR) == 0


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_no_text_cell_of_the_csv_starts_a_formula(start: str):
    """Whatever the car calls an end reason (or a new outcome or source), a spreadsheet shows it as text."""
    text = f"{start}cmd|' /C calc'!A0"
    session = ChargeSession(1, BEV_VIN, 1000, 4600, 20, 80, 11.3, text, text, -33.9, -70.6, text)
    rows = list(csv.reader(io.StringIO(to_csv([session]).decode())))
    row = dict(zip(CSV_COLUMNS, rows[1], strict=True))
    assert row["reason"] == row["ended_how"] == row["source"] == "'" + text
    assert (row["latitude"], row["longitude"]) == ("-33.9", "-70.6")  # numbers stay numbers


def test_the_charts_words_read_on_a_phone():
    days = [(date(2026, 11, 12) - timedelta(days=n), float(n % 3)) for n in range(29, -1, -1)]
    png = history_chart(days, [], WORDS)
    with Image.open(io.BytesIO(png)) as image:
        width = image.width
    assert ink_height_below_the_bars(png) * PHONE_PHOTO_PX / width >= MESSAGE_TEXT_PX


@pytest.mark.parametrize(("language", "shown"), [("en-US", "11/12"), ("de-DE", "12.11."), ("en-GB", "12/11")])
def test_the_charts_days_are_written_as_the_users_locale_does(language: str, shown: str):
    with prefs.using(prefs.resolve(UserSettings(), language)):
        assert prefs.numeric_day(date(2026, 11, 12)) == shown


def test_the_charts_title_says_estimated_only_when_a_figure_is():
    def charge(source: str) -> ChargeSession:
        end = datetime(2026, 11, 12, 18, tzinfo=UTC).timestamp()
        return ChargeSession(1, BEV_VIN, end - 3600, end, 40, 80, 7.5, "", None, None, None, source)

    def title(*shown: ChargeSession) -> str:
        return chart_title(all_measured(list(shown)))

    assert "estimated" not in title(charge(BMW_HISTORY))
    assert "measured" in title(charge(BMW_HISTORY))
    assert "estimated" in title(charge(BMW_HISTORY), charge("cardata"))
    assert "estimated" in title(charge("iremote"))


def test_the_chart_draws_the_distance_per_day_below_the_energy_at_phone_width():
    days = [(date(2026, 11, 12) - timedelta(days=n), float(n % 3)) for n in range(29, -1, -1)]
    driven = [(day, 40.0 * (n % 2)) for n, (day, _) in enumerate(days)]
    png = history_chart(days, [], WORDS, driven)
    assert _pixels(png, BAR_COLOUR) > 100 and _pixels(png, DRIVE_COLOUR) > 100
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
    pixels = rgb.load()
    rows = [y for y in range(rgb.height) if any(pixels[x, y] == DRIVE_COLOUR for x in range(rgb.width))]
    energy = [y for y in range(rgb.height) if any(pixels[x, y] == BAR_COLOUR for x in range(rgb.width))]
    assert min(rows) > max(energy)  # one below the other, each as wide as the picture
    assert rgb.getpixel((0, rgb.height - 1)) == BACKGROUND  # nothing cut off below
    assert ink_height_below_the_bars(png) * PHONE_PHOTO_PX / rgb.width >= MESSAGE_TEXT_PX
