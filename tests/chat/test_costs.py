"""Costs end to end: the home tariff typed in /settings (in the user's locale), each charge's cost in
/history and its CSV, a night window, a tariff changed later, and a charge away from home priced by its
owner's button, nobody else's."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from telegram.ext import Application

from bot.chat import texts
from bot.history import CSV_COLUMNS, usable_kwh
from bot.months import Month
from bot.store import Store
from tests.chat.test_share import invite, join
from tests.support.bot import BEV_VIN, link, said
from tests.support.watcher import Cycles

KWH_80_TO_100 = 0.2 * usable_kwh("I3")  # 3.76 kWh of an i3 60 Ah
AWAY = {"lat": 48.22, "lon": 11.60, "heading": 0, "status": "OK"}  # some 5 km from the simulator's home


def _store(application: Application) -> Store:
    return application.bot_data.services.garage.store


async def _charge(bot: Application, simulator, cycle: Cycles, position: dict | None = None) -> None:
    """A charge from 80 % to full (1 %/min in the simulator), where `position` says."""
    if position is not None:
        simulator.set_status(BEV_VIN, position=position)
    simulator.set_status(BEV_VIN, chargingLevelHv=80)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance(25 * 60)
    await cycle(bot)
    simulator.advance(60 * 60)  # the next charge starts later


async def _newest(user, command: str, contains: str):
    """The bot's answer to `command` that contains `contains`."""
    sent = user.send(command)

    def answered(u) -> bool:
        return any(m.message_id > sent.message_id and contains in (m.text or "") for m in u.bot_messages)

    await user.wait_for(answered)
    return next(m for m in user.bot_messages if m.message_id > sent.message_id and contains in (m.text or ""))


async def _set_tariff(user, typed: str, settings: str, button: str, saved: str) -> None:
    menu = await _newest(user, "/settings", settings)
    user.press(menu, button)
    asked = len(user.bot_messages)
    await user.wait_for(lambda u: len(u.bot_messages) > asked)
    user.send(typed)
    await user.wait_for_bot_message(saved)


def _lines(listing, contains: str) -> list[str]:
    return [line for line in listing.text.splitlines() if contains in line]


def _months(listing) -> list[str]:
    return [line for line in listing.text.splitlines() if line.startswith("💶 ") and "≈" in line]


async def test_a_tariff_typed_in_german_prices_each_charge_and_a_change_leaves_older_ones(
    bot, sandbox, simulator
):
    cycle = Cycles()
    hans = sandbox.user(2101, "Hans", language_code="de")
    await link(hans, language="de")
    await cycle(bot)
    await _charge(bot, simulator, cycle)

    menu = await _newest(hans, "/settings", "Deine Einstellungen")
    assert "Stromtarif zu Hause: nicht gesetzt" in menu.text
    hans.press(menu, "💶 Stromtarif")
    ask = await hans.wait_for_bot_message("Was kostet dich eine kWh zu Hause")
    assert "in EUR" in ask.text and "0,32" in ask.text
    hans.send("zweiunddreißig Cent")
    unclear = await hans.wait_for_bot_message("konnte „zweiunddreißig Cent“ nicht als Preis lesen")
    hans.send("0,32")  # the flow still waits
    await hans.wait_for_bot_message("Gespeichert. /history zeigt")
    assert unclear.text and "0,32" in unclear.text
    await hans.wait_for(lambda u: "Stromtarif zu Hause: 0,32\xa0€ pro kWh" in u.now(menu).text)

    first = KWH_80_TO_100 * 0.32
    listing = await _newest(hans, "/history", "Ladeverlauf")
    [line] = _lines(listing, "80–100 %")
    assert f"≈ {first:.2f}\xa0€".replace(".", ",") in line
    year = datetime.fromtimestamp(simulator.now(), UTC).strftime("%Y")
    [total] = _months(listing)
    assert year in total and f"≈ {first:.2f}\xa0€ für 1 Ladevorgang".replace(".", ",") in total

    # A dearer tariff from now on: the charge before keeps its cost, the next one gets the new price.
    await _set_tariff(hans, "0,40", "Deine Einstellungen", "💶 Stromtarif", "Gespeichert.")
    assert simulator.now() > _store(bot).tariffs(2101)[-1].valid_from  # the simulator's clock runs ahead
    await _charge(bot, simulator, cycle)
    listing = await _newest(hans, "/history", "Ladeverlauf")
    costs = [line.rpartition("≈ ")[2] for line in _lines(listing, "80–100 %")]
    second = KWH_80_TO_100 * 0.40
    assert costs == [f"{second:.2f}\xa0€".replace(".", ","), f"{first:.2f}\xa0€".replace(".", ",")]

    hans.press(listing, "CSV")
    await hans.wait_for(lambda u: any(m.document for m in u.bot_messages))
    document = next(m for m in hans.bot_messages if m.document).document
    rows = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in csv.reader(io.StringIO(document.decode()))]
    assert [(row["cost_estimated"], row["currency"]) for row in rows[1:]] == [
        (f"{first:.2f}", "EUR"),
        (f"{second:.2f}", "EUR"),
    ]

    # Cleared: the charges before keep their costs, the settings say none is set.
    menu = await _newest(hans, "/settings", "Deine Einstellungen")
    hans.press(menu, "Tarif löschen")
    await hans.wait_for(lambda u: "Stromtarif zu Hause: nicht gesetzt" in u.now(menu).text)
    listing = await _newest(hans, "/history", "Ladeverlauf")
    assert _lines(listing, "80–100 %")[-1].endswith(costs[-1])


async def test_a_charge_across_the_night_windows_start_is_split_by_time(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(2102)
    await link(alice)
    menu = await _newest(alice, "/settings", "Your settings")
    alice.press(menu, "🌍")
    await alice.wait_for(lambda u: "Which time zone?" in u.now(menu).text)
    alice.press(menu, "UTC")
    await alice.wait_for(lambda u: "Time zone: UTC" in u.now(menu).text)
    await cycle(bot)
    await _charge(bot, simulator, cycle)
    [charge] = _store(bot).charge_sessions(2102, BEV_VIN)

    # The night rate starts a whole minute into the charge and lasts beyond it.
    starts = datetime.fromtimestamp(charge.started_at, UTC).replace(second=0, microsecond=0)
    starts += timedelta(minutes=2 if charge.started_at % 60 else 1)
    ends = starts + timedelta(hours=2)
    typed = f"0.30 0.10 {starts:%H:%M}-{ends:%H:%M}"
    await _set_tariff(alice, typed, "Your settings", "💶 Home tariff", "Saved. /history shows")
    night = (charge.ended_at - starts.timestamp()) / charge.seconds
    assert 0 < night < 1
    expected = charge.energy_kwh * (night * 0.10 + (1 - night) * 0.30)
    listing = await _newest(alice, "/history", "Charging history")
    [line] = _lines(listing, "80–100 %")
    assert line.endswith(f"≈ ${expected:.2f}"), (line, expected)  # "en": the US's dollar
    menu = await _newest(alice, "/settings", "Your settings")
    assert f"Home tariff: $0.30 per kWh, $0.10 from {starts:%H:%M} to {ends:%H:%M}" in menu.text


async def test_an_away_charge_has_no_price_until_its_owner_gives_it_one(bot, sandbox, simulator):
    cycle = Cycles()
    alice, mallory = sandbox.user(2103), sandbox.user(2104, "Mallory")
    await link(alice)
    await link(mallory)  # the very same BMW account and car: her own car too, under her own ref
    await cycle(bot)
    home = dict(simulator.vehicle(BEV_VIN).status["position"])
    await _charge(bot, simulator, cycle, home)
    await _charge(bot, simulator, cycle, home)
    await _charge(bot, simulator, cycle, AWAY)
    await _set_tariff(alice, "0.30", "Your settings", "💶 Home tariff", "Saved.")

    listing = await _newest(alice, "/history", "Charging history")
    lines = _lines(listing, "80–100 %")
    assert lines[0].startswith("1. ") and lines[0].endswith("📍 away, no price") and "$" not in lines[0]
    assert all(line.endswith(f"≈ ${KWH_80_TO_100 * 0.30:.2f}") for line in lines[1:])
    assert "give it its price with the 💶 button" in listing.text
    price = listing.button("💶 1")

    # Someone else pressing it (copied, or on their own message) and a stale charge get nothing.
    answers = len(mallory.callback_answers())
    mallory.press_data(listing.message_id, price.callback_data)
    mallory.press_data(mallory.messages[-1].message_id, price.callback_data)
    ref = price.callback_data.split(":")[1]
    alice.press_data(listing.message_id, f"hprc:{ref}:123")
    await mallory.wait_for(lambda u: len(u.callback_answers()) == answers + 2)
    await alice.wait_for(lambda u: any(a.text == texts.STALE_BUTTON for a in u.callback_answers()))
    assert all(a.text == texts.STALE_BUTTON for a in mallory.callback_answers()[answers:])
    assert _store(bot).charge_prices(2103, BEV_VIN) == [] == _store(bot).charge_prices(2104, BEV_VIN)

    alice.press(listing, "💶 1")
    await alice.wait_for_bot_message("What did a kWh cost at the charge of")
    alice.send("cheap")
    await alice.wait_for_bot_message("I could not read “cheap” as a price")
    alice.send("0.59")
    own = KWH_80_TO_100 * 0.59
    await alice.wait_for_bot_message(f"Saved: that charge cost ≈ ${own:.2f}")
    listing = await _newest(alice, "/history", "Charging history")
    lines = _lines(listing, "80–100 %")
    assert lines[0].endswith(f"≈ ${own:.2f}")
    assert not any("💶" in button.text for row in listing.buttons for button in row)
    [month] = _months(listing)
    assert f"≈ ${own + 2 * KWH_80_TO_100 * 0.30:.2f} for 3 charges" in month
    # Mallory's own view of the car: no tariff and no price of hers (they are each owner's own).
    theirs = await _newest(mallory, "/history", "Charging history")
    assert "Set your home tariff in /settings" in theirs.text and "$" not in theirs.text


async def test_a_months_away_charges_without_a_price_are_told_as_such_not_as_no_tariff(
    bot, sandbox, simulator
):
    """Found trying the demo: the monthly summary said "no tariff set" to an owner with a tariff whose month's
    charges were all away from home, without a price; a month partly away gave its cost as if all were
    priced."""
    cycle = Cycles()
    alice = sandbox.user(2105)
    await link(alice)
    await cycle(bot)
    home = dict(simulator.vehicle(BEV_VIN).status["position"])
    for _ in range(3):
        await _charge(bot, simulator, cycle, home)  # home: where it charged most often
    await _charge(bot, simulator, cycle, AWAY)
    month = Month.of(simulator.now(), None)
    simulator.advance(datetime(month.next.year, month.next.month, 2, 12).timestamp() - simulator.now())
    await _charge(bot, simulator, cycle, AWAY)
    bot.bot_data.services.clock = simulator.now
    await _set_tariff(alice, "0.30", "Your settings", "💶 Home tariff", "Saved.")

    listing = await _newest(alice, "/history", "Charging history")
    alice.press(listing, "This month")
    alice.press(listing, "Last month")
    await alice.wait_for(lambda u: len([m for m in u.bot_messages if m.caption]) >= 3)
    [now] = [m.caption or "" for m in alice.bot_messages if "so far" in (m.caption or "")]
    assert "1 charge" in now and "no tariff" not in now, now
    assert said(texts.MONTH_NO_PRICE)[-30:] in now, now
    [before] = [m.caption or "" for m in alice.bot_messages if "4 charges" in (m.caption or "")]
    assert f"💶 Cost: ≈ ${3 * KWH_80_TO_100 * 0.30:.2f} for 3 of 4 charges" in before, before


async def test_a_tariff_prompt_left_for_another_command_does_not_take_the_next_text(bot, sandbox, simulator):
    """Found trying the demo: 💶 Home tariff, then /trips, then "0.25" (meant for nothing, or for a newer
    question) still set the tariff, and "hello" was "not a price". A command is a newer intent: it ends the
    wait, as a newer prompt does (bot/chat/common.py, newest_prompt)."""
    alice = sandbox.user(2106)
    await link(alice)
    menu = await _newest(alice, "/settings", "Your settings")
    alice.press(menu, "💶 Home tariff")
    await alice.wait_for_bot_message("Send what a kWh costs you at home")
    await _newest(alice, "/status", "🕒")
    await _newest(alice, "0.25", said(texts.DONT_UNDERSTAND)[:20])
    assert _store(bot).tariffs(2106) == []
    await _set_tariff(alice, "0.30", "Your settings", "💶 Home tariff", "Saved.")  # asked again: it takes it
    assert [t.price for t in _store(bot).tariffs(2106)] == [0.30]


async def test_the_costs_note_speaks_of_buttons_only_where_there_are_some_and_of_the_owners_tariff(
    bot, sandbox, simulator
):
    """Found trying the demo: a person the car is shared with read "your home tariff" and "give it its price
    with the 💶 button below", with no button and no tariff of theirs; so did an owner with no away charge."""
    cycle = Cycles()
    alice, bob = sandbox.user(2107, "Alice"), sandbox.user(2108, "Bob")
    await link(alice)
    await cycle(bot)
    await _charge(bot, simulator, cycle, dict(simulator.vehicle(BEV_VIN).status["position"]))
    await _set_tariff(alice, "0.30", "Your settings", "💶 Home tariff", "Saved.")
    await join(bob, await invite(alice, BEV_VIN))

    own = (await _newest(alice, "/history", "Charging history")).text
    theirs = (await _newest(bob, "/history", "Charging history")).text
    assert "≈ $" in own and "≈ $" in theirs, (own, theirs)
    assert "button below" not in own and "button below" not in theirs, (own, theirs)
    assert "your home tariff" not in theirs and said(texts.HISTORY_COSTS_SHARED)[:30] in theirs, theirs
