"""/settings end to end: units, clock, language and time zone follow the user's Telegram language until they
choose, a choice shows at once and survives a restart, and quiet hours make pushes arrive without a sound."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from telegram.ext import Application

from bot.store import Store
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot
from tests.support.watcher import FINISHED, Cycles

# The status's "updated … (2:07 PM)"; with the date when that was another day ("(Dec 7, 2026, 11:13 PM)" as
# a run passes midnight).
CLOCK_12 = re.compile(r"\((?:[^()]+, )?\d{1,2}:\d{2}\s[AP]M\)")
CLOCK_24 = re.compile(r"\((?:[^()]+, )?\d{2}:\d{2}\)")


def _store(application: Application) -> Store:
    return application.bot_data.services.garage.store


def _km_to_mi(km: float) -> float:
    return km / 1.609344


async def _status(user) -> str:
    """The text of a new /status answer."""
    sent = user.send("/status")
    await user.wait_for(
        lambda u: any(m.message_id > sent.message_id and "updated" in (m.text or "") for m in u.bot_messages)
    )
    return next(m.text for m in user.bot_messages if m.message_id > sent.message_id and "updated" in m.text)


def _zone_at(local_hour: int) -> str:
    """A fixed-offset IANA zone whose clock shows `local_hour` now (Etc/GMT-N is UTC+N)."""
    offset = (local_hour - datetime.now(UTC).hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def test_en_us_user_sees_miles_and_12_hour_times_by_default(bot, sandbox, simulator):
    alice = sandbox.user(701, language_code="en-US")
    await link(alice)
    car = simulator.vehicle(BEV_VIN).status
    shown = await _status(alice)
    assert f"{car['remainingRangeElectricMls']} mi electric" in shown  # BMW's own miles, not converted
    assert f"🛣 {_km_to_mi(car['mileage']):,.0f} mi" in shown
    assert " km" not in shown
    assert CLOCK_12.search(shown), shown


async def test_german_user_gets_km_24_hours_and_german_numbers(bot, sandbox, simulator):
    hans = sandbox.user(702, "Hans", language_code="de")
    await link(hans, language="de")
    car = simulator.vehicle(REX_VIN).status
    hans.send("/cars")
    hans.press(await hans.wait_for_bot_message("Welches Auto?"), REX_VIN[-4:])
    await hans.wait_for(lambda u: "mit Kraftstoff" in (u.last_bot_message().text or ""))
    shown = hans.last_bot_message().text
    assert f"{car['remainingRangeElectric']} km elektrisch" in shown
    assert f"🛣 {car['mileage']:,} km".replace(",", ".") in shown  # German grouping: 41.268 km
    assert f"({car['remainingFuel']:.1f} l)".replace(".", ",") in shown  # and a decimal comma
    assert CLOCK_24.search(shown) and not CLOCK_12.search(shown), shown

    hans.send("/trips")
    trips = (await hans.wait_for_bot_message("Fahrten von")).text
    distance = simulator.vehicle(REX_VIN).last_trip["totalDistance"]
    assert f"🚗 {distance:.1f} km".replace(".", ",") in trips


async def test_settings_switch_units_and_the_next_status_shows_them_even_after_a_restart(
    bot_settings, sandbox, simulator, simulator_url
):
    alice = sandbox.user(703)  # plain "en": km and 24 h
    car = simulator.vehicle(BEV_VIN).status
    async with running_bot(bot_settings, fast_client(simulator_url)):
        await link(alice)
        assert f"{car['remainingRangeElectric']} km electric" in await _status(alice)
        alice.send("/settings")
        menu = await alice.wait_for_bot_message("Your settings")
        assert "Distances in kilometres, 24-hour clock" in menu.text
        alice.press(menu, "miles")
        await alice.wait_for(lambda u: "Distances in miles" in u.now(menu).text)
        alice.press(menu, "12 h")
        await alice.wait_for(lambda u: "12-hour clock" in u.now(menu).text)
        assert "✅ miles" in [b.text for row in alice.now(menu).buttons for b in row]
        shown = await _status(alice)
        assert f"{car['remainingRangeElectricMls']} mi electric" in shown and CLOCK_12.search(shown)
    async with running_bot(bot_settings, fast_client(simulator_url)) as second:
        shown = await _status(alice)
        assert f"{car['remainingRangeElectricMls']} mi electric" in shown and CLOCK_12.search(shown)
        assert _store(second).user_settings(703).units == "mi"


async def test_quiet_hours_send_a_charge_push_silently_and_never_drop_it(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(704)
    await link(alice)
    await cycle(bot)
    alice.send("/settings")
    menu = await alice.wait_for_bot_message("Your settings")
    alice.press(menu, "Quiet hours")  # 22:00–07:00 unless moved
    await alice.wait_for(lambda u: "Quiet hours 22:00–07:00" in u.now(menu).text)

    async def charge_push(local_hour: int):
        alice.press(menu, "🌍")
        await alice.wait_for(lambda u: "Which time zone?" in u.now(menu).text)
        alice.press(menu, "Type a name")
        await alice.wait_for_bot_message("Send the name of your time zone")
        zone = _zone_at(local_hour)
        alice.send(zone.lower())  # the database's spelling is not needed
        await alice.wait_for(lambda u: u.last_bot_message().text == f"OK, your time zone is {zone}.")
        assert f"Time zone: {zone}" in alice.now(menu).text  # the settings again, in place of the zones
        simulator.set_status(BEV_VIN, chargingLevelHv=90)
        simulator.plug_in(BEV_VIN, charging=True)
        await cycle(bot)
        simulator.advance(15 * 60)
        await cycle(bot)
        await alice.wait_for(lambda u: FINISHED in (u.last_bot_message().text or ""))
        simulator.unplug(BEV_VIN)
        await cycle(bot)
        return alice.last_bot_message()

    daytime = await charge_push(14)
    night = await charge_push(2)
    assert not daytime.disable_notification
    assert night.disable_notification and "90 % → 100 %" in night.text


async def test_quiet_hours_move_with_the_buttons(bot, sandbox):
    alice = sandbox.user(705, language_code="en-US")
    alice.send("/settings")
    menu = await alice.wait_for_bot_message("Your settings")
    alice.press(menu, "Quiet hours")
    await alice.wait_for(lambda u: "Quiet hours 10:00 PM–7:00 AM" in u.now(menu).text.replace("\u202f", " "))
    alice.press(menu, "🌙 Start ➕ 30")
    await alice.wait_for(lambda u: "10:30 PM–7:00 AM" in u.now(menu).text.replace("\u202f", " "))
    alice.press(menu, "☀️ End ➖ 30")
    await alice.wait_for(lambda u: "10:30 PM–6:30 AM" in u.now(menu).text.replace("\u202f", " "))
    alice.press(menu, "Quiet hours")
    await alice.wait_for(lambda u: "Quiet hours: off" in u.now(menu).text)


async def test_a_time_zone_not_in_the_database_gets_a_friendly_line(bot, sandbox):
    alice = sandbox.user(706)
    alice.send("/settings")
    menu = await alice.wait_for_bot_message("Your settings")
    alice.press(menu, "🌍")
    await alice.wait_for(lambda u: "Which time zone?" in u.now(menu).text)
    alice.press(menu, "Type a name")
    await alice.wait_for_bot_message("Send the name of your time zone")
    for typed in ("Mars/Olympus_Mons", "../../etc/passwd"):
        alice.send(typed)
        await alice.wait_for_bot_message(f"I don't know a time zone called “{typed}”")
    alice.send("Asia/Tokyo")  # still waiting for one
    await alice.wait_for_bot_message("your time zone is Asia/Tokyo")
    assert "Time zone: Asia/Tokyo" in alice.now(menu).text and alice.now(menu).buttons

    alice.press(menu, "🌍")
    await alice.wait_for(lambda u: "Which time zone?" in u.now(menu).text)
    alice.press(menu, "Europe/Berlin")
    await alice.wait_for(lambda u: "Time zone: Europe/Berlin" in u.now(menu).text)


async def test_another_users_press_changes_nothing_of_theirs(bot, sandbox):
    alice, mallory = sandbox.user(707), sandbox.user(708, "Mallory")
    alice.send("/settings")
    menu = await alice.wait_for_bot_message("Your settings")
    miles = menu.button("miles").callback_data
    mallory.send("/start")
    await mallory.wait_for_bot_message("Hi Mallory")
    mallory.press_data(menu.message_id, miles)  # Alice's button, pressed (forged) by Mallory
    await mallory.wait_for_bot_message("Distances in miles")  # Mallory changed her own settings only
    assert bot.bot_data.services.garage.store.user_settings(707) is None
    assert alice.now(menu).edits == 0 and "kilometres" in alice.now(menu).text
