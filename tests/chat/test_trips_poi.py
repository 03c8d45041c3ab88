"""End to end: /trips and /destinations show the simulator's numbers; a location or venue reaches the car."""

from __future__ import annotations

from datetime import datetime

from tzlocal import get_localzone

from bot.bmw.simulator import i3_bev
from bot.chat import keyboards
from tests.support.bot import BEV_VIN, REX_VIN, link

STALE = "This button is no longer valid."


def _destination_lists(user) -> list[str]:
    return [m.text for m in user.bot_messages if "Last destinations of" in (m.text or "")]


def _pois(simulator):
    return simulator.requests_to("sendpoi", "POST")


async def test_trips_show_last_trip_and_statistics_and_a_missing_trip_plainly(bot, sandbox, simulator):
    car = simulator.vehicle(BEV_VIN)
    trip, stats = car.last_trip, car.all_trips
    alice = sandbox.user(401)
    await link(alice)
    alice.send("/trips")
    shown = (await alice.wait_for_bot_message("Trips of")).text
    assert f"🚗 {trip['totalDistance']:.1f} km in {trip['duration']} min · 100 % electric" in shown
    assert f"⚡ {trip['avgElectricConsumption']:.1f} kWh/100 km" in shown
    assert f"♻️ {trip['avgRecuperation']:.1f} kWh/100 km recuperated" in shown
    assert f"efficiency {trip['efficiencyValue'] * 100:.0f} % ★★★★☆" in shown  # 0.72 -> 4 of 5 stars
    # In the user's time zone (by default the server's), as their language writes it (plain "en" here).
    when = datetime.fromisoformat(trip["date"]).astimezone(get_localzone())
    assert f"📅 {when:%b} {when.day}, {when:%Y, %H:%M}" in shown
    consumption = stats["avgElectricConsumption"]
    assert (
        f"consumption {consumption['userAverage']:.1f} kWh/100 km "
        f"(community {consumption['communityAverage']:.1f} kWh/100 km)" in shown
    )
    cycle = stats["chargecycleRange"]
    assert (
        f"per charge {cycle['userAverage']:.0f} km (community {cycle['communityAverage']:.0f} km), "
        f"best {cycle['userHigh']:.0f} km, this charge {cycle['userCurrentChargeCycle']:.0f} km" in shown
    )
    total = f"{stats['totalElectricDistance']['userTotal']:,.0f}"
    assert f"{total} km driven electrically" in shown
    assert f"{stats['savedCO2']:.1f} kg CO₂ saved" in shown

    car.last_trip = {}  # what a PHEV answers
    car.all_trips = {}
    alice.send("/trips")
    await alice.wait_for(lambda u: "No trip recorded yet." in u.last_bot_message().text)
    assert "No statistics over all trips yet." in alice.last_bot_message().text


async def test_destinations_newest_first(bot, sandbox, simulator):
    alice = sandbox.user(402)
    await link(alice)
    alice.send("/destinations")
    shown = (await alice.wait_for_bot_message("Last destinations of")).text
    newest, older = simulator.vehicle(BEV_VIN).destinations  # the fleet lists them newest first
    assert f"1. {newest['street'].title()}, {newest['city'].title()}, {newest['country'].title()}" in shown
    assert f"2. {older['street'].title()}" in shown

    simulator.vehicle(BEV_VIN).destinations = [older, newest]  # order is by date, not as listed
    alice.send("/destinations")
    await alice.wait_for(lambda u: len(_destination_lists(u)) == 2)
    again = _destination_lists(alice)[1]
    assert again.index(newest["street"].title()) < again.index(older["street"].title())


async def test_location_and_venue_reach_the_chosen_car(bot, sandbox, simulator):
    alice = sandbox.user(403)
    await link(alice)
    alice.send_location(48.1351, 11.5820)
    offer = await alice.wait_for_bot_message("Send it to your car's navigation?")
    labels = [b.text for row in offer.buttons for b in row]
    assert len(labels) == 2 and all(label.startswith("🚗 Send to") for label in labels)
    assert all(BEV_VIN not in (b.callback_data or "") for row in offer.buttons for b in row)
    alice.press(offer, REX_VIN[-4:])
    await alice.wait_for_bot_message(f"Sent to I3 +REX (…{REX_VIN[-4:]}, M-RX 302E)'s navigation")
    (pin,) = simulator.vehicle(REX_VIN).pois
    assert (pin["lat"], pin["lon"]) == (48.1351, 11.5820) and "name" not in pin
    assert simulator.vehicle(BEV_VIN).pois == []

    alice.send_venue(48.17355, 11.55128, "Olympiapark", "Spiridon-Louis-Ring 21, München")
    venue = await alice.wait_for_bot_message("Olympiapark")
    alice.press(venue, BEV_VIN[-4:])
    await alice.wait_for_bot_message(f"Sent to I3 (…{BEV_VIN[-4:]}, M-EV 301E)'s navigation")
    (place,) = simulator.vehicle(BEV_VIN).pois
    assert place["name"] == "Olympiapark" and place["street"] == "Spiridon-Louis-Ring 21, München"
    assert (place["lat"], place["lon"]) == (48.17355, 11.55128)

    alice.send("/destinations")
    shown = await alice.wait_for_bot_message("Last destinations of")
    assert "1. Spiridon-Louis-Ring 21, München" in shown.text


async def test_forged_place_presses_and_cars_without_send_poi(bot, sandbox, simulator):
    alice, mallory = sandbox.user(404, "Alice"), sandbox.user(405, "Mallory")
    await link(alice)
    mallory.send("/start")
    await mallory.wait_for_bot_message("Hi Mallory")
    alice.send_location(48.1, 11.5)
    offer = await alice.wait_for_bot_message("Send it to your car's navigation?")
    data = offer.button(BEV_VIN[-4:]).callback_data
    mallory.press_data(offer.message_id, data)  # Alice's ref means nothing for Mallory
    ref = keyboards.parse(data)[1].partition(keyboards.SEP)[2]
    alice.press_data(offer.message_id, keyboards.data(keyboards.SEND_POI, f"unknown1{keyboards.SEP}{ref}"))
    await mallory.wait_for(lambda u: len(u.callback_answers()) == 1)
    await alice.wait_for(lambda u: any(a.text == STALE for a in u.callback_answers()))
    assert mallory.callback_answers()[0].text == STALE
    assert _pois(simulator) == []

    no_poi = i3_bev("WBY1Z21000V309101", now=simulator.now())
    no_poi["vehicle"]["sendPoi"] = "NOT_SUPPORTED"
    simulator.add_account("dave@example.com", "dave-password", vehicles=[no_poi])
    dave = sandbox.user(406, "Dave")
    await link(dave, "dave@example.com", "dave-password")
    dave.send_venue(48.2, 11.6, "Somewhere", "Street 1")
    await dave.wait_for_bot_message("cannot receive places from me")
    assert not dave.last_bot_message().buttons and _pois(simulator) == []
