"""Text that is not ours reaches the chat literally; long or impossible input gets a plain answer.

The sandbox parses HTML as Telegram does ("can't parse entities"), so a value that is not escaped either
loses the message (the user then sees "Something went wrong") or shows as markup instead of its text.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.bmw.models import Position, RangeMap
from bot.chat import link as link_chat
from bot.chat import prefs, texts
from bot.sandbox.driver import ChatMessage, SandboxUser
from bot.sandbox.server import html_visible_text
from tests.support.bot import BEV_VIN, link

HOSTILE = "<i>x</i> & <script>"
EMAIL = "tom<b>&co@example.com"  # a valid address by the bot's pattern, and hostile as HTML
PASSWORD = "pw-tom-123"
WENT_WRONG = "Something went wrong"


def visible(message: ChatMessage) -> str:
    """What Telegram would show of a bot message sent with parse_mode HTML."""
    return html_visible_text(message.text or message.caption or "")


def _no_failures(user: SandboxUser) -> None:
    assert not any(WENT_WRONG in (m.text or "") for m in user.bot_messages), user.transcript()


async def test_hostile_names_and_bmw_values_show_literally_everywhere(bot, sandbox, simulator):
    vins = simulator.add_account(EMAIL, PASSWORD)
    for vin in vins:
        car = simulator.vehicle(vin)
        car.info.update(model=HOSTILE, licensePlate=HOSTILE)
        simulator.set_status(vin, doorLockState=HOSTILE, connectionStatus="CONNECTED", chargingStatus=HOSTILE)
        car.destinations = [
            {"lat": 48.1, "lon": 11.5, "street": HOSTILE, "city": "<b>Bad & Co</b>", "country": "X&Y"}
        ]
    tom = sandbox.user(501, "Tom <3 & <b>")
    label = f"{HOSTILE} (…{vins[0][-4:]}, {HOSTILE})"

    tom.send("/start")
    hello = await tom.wait_for_bot_message("Hi Tom")
    assert visible(hello).startswith("Hi Tom <3 & <b>! I show your BMW i3")

    await link(tom, EMAIL, PASSWORD)
    assert label in visible(await tom.wait_for_bot_message("Linked!"))

    tom.send("/status")
    status = visible(await tom.wait_for_bot_message("updated"))
    assert status.startswith(label)
    assert f"🔐 {HOSTILE}" in status and f"🔌 plugged in, {HOSTILE}" in status

    tom.send("/cars")
    picker = await tom.wait_for_bot_message("Which car?")
    assert picker.buttons[0][0].text == label  # buttons are plain text: no entities

    tom.send("/destinations")
    shown = visible(await tom.wait_for_bot_message("Last destinations of"))
    assert f"1. {HOSTILE}, <b>Bad & Co</b>, X&Y" in shown

    tom.send_venue(48.1, 11.5, title=HOSTILE, address=HOSTILE)
    offer = await tom.wait_for_bot_message("Send it to your car")
    assert visible(offer).startswith(f"📍 {HOSTILE}\n{HOSTILE}\n")
    assert offer.buttons[0][0].text == f"🚗 Send to {label}"

    tom.send("/map")
    await tom.wait_for(lambda u: any(m.photo for m in u.bot_messages))
    photo = next(m for m in tom.bot_messages if m.photo)
    assert visible(photo).startswith(f"🗺 Range of {label}")

    tom.send("/link")
    replace = await tom.wait_for_bot_message("You have linked")
    assert visible(replace).startswith(f"You have linked {EMAIL}. Link another account instead?")
    _no_failures(tom)


def test_error_texts_escape_the_reason():
    reason = "BMW said <nope> & left"
    assert html_visible_text(texts.bmw_trouble(reason)) == f"⚠️ {reason}"
    assert f"link your account: {reason} Nothing" in html_visible_text(texts.link_failed(reason))


# -- input caps --------------------------------------------------------------------------------------------


class _Recording:
    """A compiled pattern that remembers the length of every text it was asked to match."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern, self.lengths = pattern, []

    def match(self, text: str) -> Any:
        self.lengths.append(len(text))
        return self.pattern.match(text)


async def test_long_email_and_password_are_refused_unparsed(bot, sandbox, simulator, monkeypatch):
    pattern = _Recording(link_chat.EMAIL_PATTERN)
    monkeypatch.setattr(link_chat, "EMAIL_PATTERN", pattern)
    tom = sandbox.user(502, "Tom")
    tom.send("/link")
    tom.press(await tom.wait_for_bot_message("Where is your ConnectedDrive account registered"), "Europe")
    await tom.wait_for_bot_message("e-mail address?")
    # The slowest kind of text for the pattern: it backtracks over every dot.
    tom.send("a@a" + "." * 4092 + "@")
    await tom.wait_for_bot_message("doesn't look like an e-mail address")
    assert all(length <= link_chat.EMAIL_MAX for length in pattern.lengths)

    tom.send("demo@example.com")
    await tom.wait_for_bot_message("password?")
    logins = len(simulator.requests_to("/oauth/token", "post"))
    tom.send("p" * 4096)
    too_long = await tom.wait_for_bot_message("longer than any password")
    assert "at most 256 characters" in too_long.text
    assert all(m.deleted for m in tom.messages if m.text == "p" * 4096)  # a secret all the same
    assert len(simulator.requests_to("/oauth/token", "post")) == logins  # BMW was not asked
    tom.send("demo-password")  # the conversation still waits for the password
    await tom.wait_for_bot_message("Linked!")
    _no_failures(tom)


async def test_long_security_answer_is_refused_and_deleted(bot, sandbox, simulator):
    simulator.add_account("bob@example.com", "bob-password", security_answer="Rex the dog")
    bob = sandbox.user(503, "Bob")
    await link(bob, "bob@example.com", "bob-password")
    bob.send("/unlock")
    bob.press(await bob.wait_for_bot_message("Make sure"), "Yes, unlock")
    await bob.wait_for_bot_message("security question")
    tries = len(simulator.requests_to("executeService", "POST"))  # the one that made BMW ask
    bob.send("R" * 4096)
    await bob.wait_for_bot_message("longer than any security answer")
    assert all(m.deleted for m in bob.messages if m.text == "R" * 4096)
    assert len(simulator.requests_to("executeService", "POST")) == tries


def test_long_time_is_no_time_and_never_reaches_the_pattern(monkeypatch):
    pattern = _Recording(prefs.TIME_PATTERN)
    monkeypatch.setattr(prefs, "TIME_PATTERN", pattern)
    assert prefs.parse_time("1" + " " * 4095) is None  # the slowest kind of text for the pattern
    assert prefs.parse_time(" 7 : 45 ") == "07:45"
    assert pattern.lengths == [len(" 7 : 45 ")]


# -- impossible coordinates --------------------------------------------------------------------------------

IMPOSSIBLE = {"lat": 91.5, "lon": 200.0, "heading": 0, "status": "OK"}


async def test_impossible_position_is_said_plainly_in_status_location_and_map(bot, sandbox, simulator):
    simulator.set_status(BEV_VIN, position=dict(IMPOSSIBLE))
    alice = sandbox.user(504)
    await link(alice)
    alice.send("/status")
    status = await alice.wait_for_bot_message("updated")
    assert f"📍 {texts.IMPOSSIBLE_POSITION}" in visible(status)

    alice.press(status, "Location")
    where = await alice.wait_for_bot_message("no place on Earth")
    assert where.location is None and not any(m.location for m in alice.bot_messages)

    alice.send("/map")  # the simulator draws the range round the impossible position: all of it impossible
    unavailable = await alice.wait_for_bot_message("has no range map")
    assert texts.IMPOSSIBLE_POSITION in unavailable.text
    _no_failures(alice)


@pytest.mark.parametrize(
    "position",
    [IMPOSSIBLE, {"lat": 45.0, "lon": -180.5}, {"lat": -90.01, "lon": 0.0}, {"lat": 45.0}],
)
def test_impossible_position_is_no_position(position: dict[str, Any]) -> None:
    parsed = Position.from_api(position)
    assert parsed.impossible and not parsed.usable and parsed.lat is None and parsed.lon is None


def test_position_without_coordinates_is_not_impossible() -> None:
    assert not Position.from_api({"status": "DRIVER_DISABLED"}).impossible
    assert Position.from_api({"lat": 90.0, "lon": -180.0}).usable


def test_range_map_keeps_only_points_on_earth() -> None:
    body = {
        "rangemap": {
            "center": {"lat": 95.0, "lon": 11.0},
            "rangemaps": [
                {"type": "COMFORT", "polyline": [{"lat": 48.0, "lon": 11.0}, {"lat": 48.0, "lon": 181.0}]},
                {"type": "ECO_PRO_PLUS", "polyline": [{"lat": -91.0, "lon": 11.0}]},
            ],
        }
    }
    parsed = RangeMap.from_api(body)
    assert parsed.center is None
    assert [(line.type, line.points) for line in parsed.polylines] == [("COMFORT", ((48.0, 11.0),))]
