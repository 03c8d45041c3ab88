"""Alerts end to end: /alerts through the loopback Bot API server, decided by the real watcher from the
statuses it reads from the simulator, pushed to the chat.

Cycles run directly. Where minutes matter, a test runs them at clocks it picks relative to the simulator's
(the car's report times come from there); the bot's own ticks, on the wall clock, find nothing due after
the first of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telegram.ext import Application

from bot.alerts import AlertKind, AlertPrefs, AlertState, Reading, decide, settle
from bot.backends import from_car_state
from bot.bmw.simulator.fleet import car_time
from bot.cardata.models import (
    CHARGING_STATUS,
    DOOR_STATUS,
    PORT_STATUS,
    SOC_HEADER,
    SOC_TARGET,
    CarState,
    TelematicValue,
)
from bot.chat import texts
from bot.store import Store
from tests.support.bot import BEV_VIN, REX_VIN, fast_client, link, running_bot
from tests.support.watcher import Cycles, short_charge_unseen

REACHED = "has reached"
NOT_CHARGING = "has not been charging"
PLUG_IN = "Plug in"
NOT_CLOSED = "is not closed up"


def _store(application: Application) -> Store:
    return application.bot_data.services.garage.store


async def _cycle(application: Application, now: float):
    return await application.bot_data.services.watcher.cycle(now)


def _pushes(user, contains: str) -> list:
    return [m for m in user.bot_messages if m.text and contains in m.text]


def _labels(message) -> list[str]:
    return [button.text for row in message.buttons for button in row]


def _shown(user, message):
    """The message as the chat shows it now (edited in place)."""
    return next(m for m in user.messages if m.message_id == message.message_id)


async def _menu(user):
    user.send("/alerts")
    await user.wait_for(lambda u: u.bot_messages and "Alerts about your cars" in u.bot_messages[-1].text)
    return user.bot_messages[-1]


async def _press(user, menu, label: str, shows: str) -> None:
    """Press a button of the /alerts message and wait until the message, edited in place, shows `shows`."""
    user.press(menu, label)
    await user.wait_for(lambda u: any(shows in text for text in _labels(_shown(u, menu))))


async def test_charge_level_fires_once_not_when_started_above_and_not_when_off(bot, sandbox, simulator):
    cycle = Cycles()
    alice = sandbox.user(801)
    await link(alice)
    menu = await _menu(alice)
    assert "⬜ Charge level: 80 %" in _labels(menu)  # off by default
    assert texts.ALERTS_TIMING in menu.text  # an i Remote car: the watcher's polling delay applies
    assert texts.ALERTS_TIMING_CARDATA not in menu.text
    await _press(alice, menu, "Charge level", "✅ Charge level: 80 %")
    await _press(alice, menu, "➕ 5 %", "✅ Charge level: 85 %")
    assert any("Charge level: on, 85 %" in (a.text or "") for a in alice.callback_answers())
    await cycle(bot)

    simulator.set_status(BEV_VIN, chargingLevelHv=70)
    simulator.plug_in(BEV_VIN, charging=True)
    simulator.set_status(REX_VIN, chargingLevelHv=90)  # starts above 85 %: never an alert
    simulator.plug_in(REX_VIN, charging=True)
    await cycle(bot)
    simulator.advance(10 * 60)  # 1 %/min: BEV 80 %
    await cycle(bot)
    assert _pushes(alice, REACHED) == []
    simulator.advance(6 * 60)  # BEV 86 %
    await cycle(bot)
    simulator.advance(20 * 60)  # both full
    await cycle(bot)
    await cycle(bot)
    reached = _pushes(alice, REACHED)
    assert len(reached) == 1
    assert BEV_VIN[-4:] in reached[0].text and "86 %" in reached[0].text and "85 %" in reached[0].text
    assert _labels(reached[0]) == ["🔄 Status"]

    await _press(alice, menu, "Charge level", "⬜ Charge level: 85 %")  # off: the next charge says nothing
    simulator.unplug(BEV_VIN)
    await cycle(bot)
    simulator.set_status(BEV_VIN, chargingLevelHv=50)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance(40 * 60)
    await cycle(bot)
    await cycle(bot)
    assert len(_pushes(alice, REACHED)) == 1
    assert _pushes(alice, NOT_CHARGING) == []  # full, or charging: never "not charging"


async def test_plugged_in_not_charging_after_n_minutes_once_not_while_waiting(bot, sandbox, simulator):
    alice = sandbox.user(802)
    await link(alice)
    start = simulator.now()

    async def at(minutes: int) -> None:
        """A cycle `minutes` after the start, the car's clock moved along."""
        simulator.advance(start + minutes * 60 - simulator.now())
        await _cycle(bot, start + minutes * 60)

    simulator.plug_in(BEV_VIN, charging=False)  # waits for its charging window
    await at(1)
    await at(60)
    assert _pushes(alice, NOT_CHARGING) == []

    # The window is gone (say, the owner changed the schedule): plugged in, not charging, nothing to wait for.
    simulator.set_status(BEV_VIN, chargingStatus="NOT_CHARGING", updateTime=car_time(simulator.now()))
    await at(61)
    await at(74)
    assert _pushes(alice, NOT_CHARGING) == []
    await at(76)
    alerts = _pushes(alice, NOT_CHARGING)
    assert len(alerts) == 1 and "15 min" in alerts[0].text and BEV_VIN[-4:] in alerts[0].text
    assert _labels(alerts[0]) == ["🔄 Status"]
    await at(90)
    assert len(_pushes(alice, NOT_CHARGING)) == 1

    simulator.unplug(BEV_VIN)
    await at(100)
    simulator.plug_in(BEV_VIN, charging=False)
    simulator.set_status(BEV_VIN, chargingStatus="NOT_CHARGING")  # a new plug-in, a new occurrence
    await at(115)  # the next poll of a car that was idle
    assert len(_pushes(alice, NOT_CHARGING)) == 2


async def test_a_charge_the_watcher_never_saw_running_is_no_plugged_in_not_charging(bot, sandbox, simulator):
    """Plugged in at 75 % between two idle polls, the charge reaches the goal before the next one: the owner
    gets "finished charging", not "has not been charging" a quarter of an hour later (the car's end reason
    may be a day old; a level up since the last reading is a charge)."""
    cycle = Cycles()
    alice = sandbox.user(806)
    await link(alice)
    simulator.set_status(BEV_VIN, chargingLevelHv=75)
    await cycle(bot)  # parked, unplugged: the next poll 15 minutes on
    await short_charge_unseen(simulator, BEV_VIN, soc=75)
    for _ in range(3):  # two hours apart each
        await cycle(bot)
    assert len(_pushes(alice, "has finished charging")) == 1
    assert _pushes(alice, NOT_CHARGING) == []

    # Plugged in again the next evening and not charging (a fault at the wallbox): that one is said.
    simulator.unplug(BEV_VIN)
    await cycle(bot)
    simulator.plug_in(BEV_VIN, charging=False)
    simulator.set_status(BEV_VIN, chargingStatus="NOT_CHARGING")
    await cycle(bot)
    await cycle(bot)
    assert len(_pushes(alice, NOT_CHARGING)) == 1, alice.transcript()


async def test_plug_in_reminder_at_the_chosen_time_once_an_evening(bot, sandbox, simulator):
    alice = sandbox.user(803)
    await link(alice)
    evening = datetime.now().replace(hour=21, minute=5, second=0, microsecond=0) + timedelta(days=3)
    await _cycle(bot, (evening - timedelta(hours=12)).timestamp())  # a morning: nothing due, ticks idle
    menu = await _menu(alice)
    await _press(alice, menu, "Plug-in reminder", "✅ Plug-in reminder: 50 % at 21:00")
    simulator.set_status(BEV_VIN, chargingLevelHv=30)
    simulator.plug_in(REX_VIN, charging=False)  # REX is low too, but plugged in

    await _cycle(bot, (evening - timedelta(minutes=30)).timestamp())  # 20:35
    assert _pushes(alice, PLUG_IN) == []
    await _cycle(bot, evening.timestamp())
    await _cycle(bot, (evening + timedelta(minutes=20)).timestamp())
    await _cycle(bot, (evening + timedelta(minutes=40)).timestamp())
    reminders = _pushes(alice, PLUG_IN)
    assert len(reminders) == 1
    assert BEV_VIN[-4:] in reminders[0].text and "30 %" in reminders[0].text and "50 %" in reminders[0].text

    await _press(alice, menu, "🕘 ➕ 30 min", "✅ Plug-in reminder: 50 % at 21:30")  # the same evening
    await _cycle(bot, (evening + timedelta(minutes=60)).timestamp())
    assert len(_pushes(alice, PLUG_IN)) == 1
    await _cycle(bot, (evening + timedelta(days=1)).timestamp())  # next day 21:05: not yet 21:30
    assert len(_pushes(alice, PLUG_IN)) == 1
    await _cycle(bot, (evening + timedelta(days=1, minutes=30)).timestamp())
    assert len(_pushes(alice, PLUG_IN)) == 2
    assert all(REX_VIN[-4:] not in m.text for m in _pushes(alice, PLUG_IN))


async def test_left_unlocked_fires_once_after_n_minutes_with_a_working_lock(bot, sandbox, simulator):
    simulator.service_seconds = 5
    alice = sandbox.user(804)
    await link(alice)
    parked = simulator.now()
    simulator.set_status(
        BEV_VIN,
        doorLockState="UNLOCKED",
        windowPassengerFront="OPEN",
        updateReason="VEHICLE_SHUTDOWN",
        updateTime=car_time(parked),
    )
    await _cycle(bot, parked + 9 * 60)
    assert _pushes(alice, NOT_CLOSED) == []
    await _cycle(bot, parked + 25 * 60)
    await _cycle(bot, parked + 45 * 60)
    alerts = _pushes(alice, NOT_CLOSED)
    assert len(alerts) == 1
    alert = alerts[0]
    assert BEV_VIN[-4:] in alert.text and "10 min" in alert.text
    assert "unlocked" in alert.text and "passenger window" in alert.text
    assert _labels(alert) == ["🔄 Status", "🔒 Lock"]
    assert alert.buttons[0][1].style == "success"  # the way out of the alert

    alice.press(alert, "Lock")
    await alice.wait_for_bot_message("Lock —")
    simulator.advance(60)
    await alice.wait_for_bot_message("is locked")
    assert simulator.vehicle(BEV_VIN).status["doorLockState"] == "LOCKED"
    await _cycle(bot, simulator.now() + 60 * 60)  # locked, the window still open: the same occurrence
    assert len(_pushes(alice, NOT_CLOSED)) == 1

    menu = await _menu(alice)
    await _press(alice, menu, "Left open", "⬜ Left open: 10 min")
    simulator.set_status(BEV_VIN, windowPassengerFront="CLOSED")
    await _cycle(bot, simulator.now() + 90 * 60)  # closed up: the occurrence is over
    simulator.set_status(BEV_VIN, doorLockState="UNLOCKED", updateReason="DOOR_STATE_CHANGED")
    await _cycle(bot, simulator.now() + 120 * 60)
    await _cycle(bot, simulator.now() + 150 * 60)
    assert len(_pushes(alice, NOT_CLOSED)) == 1  # switched off

    await _press(alice, menu, "Left open", "✅ Left open: 10 min")  # on again: this occurrence is due
    await _cycle(bot, simulator.now() + 180 * 60)
    again = _pushes(alice, NOT_CLOSED)
    assert len(again) == 2 and "unlocked" in again[1].text and "window" not in again[1].text


async def test_alerts_persist_across_a_restart_and_are_each_users_own(
    bot_settings, sandbox, simulator, simulator_url
):
    alice, bob = sandbox.user(805), sandbox.user(806)
    async with running_bot(bot_settings, fast_client(simulator_url)):
        menu = await _menu(alice)
        assert _labels(menu) == [
            "⬜ Charge level: 80 %",
            "➖ 5 %",
            "➕ 5 %",
            "✅ Not charging: 15 min",
            "➖ 5 min",
            "➕ 5 min",
            "⬜ Plug-in reminder: 50 % at 21:00",
            "➖ 5 %",
            "➕ 5 %",
            "🕘 ➖ 30 min",
            "🕘 ➕ 30 min",
            "✅ Left open: 10 min",
            "➖ 5 min",
            "➕ 5 min",
            "⬜ Monthly summary",
        ]
        await _press(alice, menu, "Not charging", "⬜ Not charging: 15 min")
        await _press(alice, menu, "🕘 ➖ 30 min", "Plug-in reminder: 50 % at 20:30")
        await _press(alice, menu, "alr:open:dn", "Left open: 5 min")
        alice.press(menu, "alr:open:dn")  # 5 min is the least it takes
        await alice.wait_for(lambda u: len(u.callback_answers()) == 3)
        bob.press_data(menu.message_id, "alr:level:on")  # Alice's button, pressed by Bob: his own alert
        await bob.wait_for(lambda u: len(u.callback_answers()) == 1)
        bob.press_data(menu.message_id, "alr:level:zz")  # not ours
        await bob.wait_for(lambda u: len(u.callback_answers()) == 2)
        assert bob.callback_answers()[1].text == "This button is no longer valid."

    async with running_bot(bot_settings, fast_client(simulator_url)):
        menu = await _menu(alice)
        assert "⬜ Charge level: 80 %" in _labels(menu)
        assert "⬜ Not charging: 15 min" in _labels(menu)
        assert "⬜ Plug-in reminder: 50 % at 20:30" in _labels(menu)
        assert "✅ Left open: 5 min" in _labels(menu)
        assert "at 20:30, if the charge is below 50 %" in menu.text
        bobs = await _menu(bob)
        assert "✅ Charge level: 80 %" in _labels(bobs) and "✅ Not charging: 15 min" in _labels(bobs)


def _reading(car: CarState) -> Reading:
    return Reading.of(from_car_state(car.vin, car))


def test_a_cardata_state_decides_the_same_alerts():
    """The seam for CarData: its stream state read as a Reading, decided by the same function. A car with a
    charge target streams each change (a live car), so its door status holds until it says otherwise."""
    t0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def value(text: str, minutes: int = 0) -> TelematicValue:
        return TelematicValue(text, None, t0 + timedelta(minutes=minutes))

    car = CarState(
        "WBY1Z21000V000001",
        {
            CHARGING_STATUS: value("CHARGINGACTIVE"),
            PORT_STATUS: value("CONNECTED"),
            SOC_HEADER: value("70"),
            SOC_TARGET: value("90"),
            DOOR_STATUS: value("UNLOCKED"),
        },
    )
    prefs = AlertPrefs(level_on=True)
    state, alerts = decide(AlertState(), _reading(car), prefs, t0.timestamp() + 5 * 60)
    assert alerts == []
    car.merge({SOC_HEADER: value("81", 11)})
    state, alerts = decide(state, _reading(car), prefs, t0.timestamp() + 11 * 60)
    assert [(a.kind, a.soc, a.locked) for a in alerts] == [
        (AlertKind.LEVEL, 81.0, None),
        (AlertKind.OPEN, 81.0, False),
    ]
    for alert in alerts:
        state = settle(state, alert)
    assert decide(state, _reading(car), prefs, t0.timestamp() + 30 * 60)[1] == []


def test_a_quiet_cardata_state_is_never_left_open_on_its_switch_off_report():
    """A car without a target or SP25 end reason reports only at switch-off (an i3): its door status is as
    of that moment, before the driver locks, so it says nothing of N minutes later. The same report from a
    car that streams each change (it has a target) holds: a selective lock is not locked."""
    t0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    car = CarState("WBY1Z21000V000001", {DOOR_STATUS: TelematicValue("SELECTIVELOCKED", None, t0)})
    prefs, later = AlertPrefs(), t0.timestamp() + 60 * 60
    assert decide(AlertState(), _reading(car), prefs, later)[1] == []
    car.merge({SOC_TARGET: TelematicValue("80", "%", t0)})
    alerts = decide(AlertState(), _reading(car), prefs, later)[1]
    assert [(a.kind, a.locked) for a in alerts] == [(AlertKind.OPEN, False)]
