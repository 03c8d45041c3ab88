"""End to end: /schedule shows the charging profile, buttons edit a draft, Save sends CHARGING_CONTROL."""

from __future__ import annotations

import copy

from bot.bmw.simulator import i3_bev, i3_rex
from bot.chat import keyboards
from tests.support.bot import BEV_VIN, REX_VIN, link


def _executes(simulator):
    return simulator.requests_to("executeService", "POST")


def _message(user, message_id: int):
    """That message as it stands now (edits applied)."""
    return next(m for m in user.messages if m.message_id == message_id)


def _schedules(user):
    return [m for m in user.bot_messages if "Charging schedule of" in (m.text or "")]


async def _open_schedule(user):
    """Send /schedule and return the new schedule message once its buttons are there."""
    before = len(_schedules(user))
    user.send("/schedule")
    await user.wait_for(lambda u: len(_schedules(u)) > before and bool(_schedules(u)[before].buttons))
    return _schedules(user)[before]


async def _press_until(user, message, button: str, shows: str):
    """Press a button of the schedule and wait until the message (edited in place) shows `shows`."""
    user.press(message, button)
    await user.wait_for(lambda u: shows in _message(u, message.message_id).text)
    return _message(user, message.message_id)


async def _save(user, schedule, simulator) -> None:
    """Press Save, wait until the command has reached the simulator, then let the car carry it out."""
    sent = len(_executes(simulator))
    user.press(schedule, "💾 Save")
    await user.wait_for_bot_message("Save charging schedule —")
    await user.wait_for(lambda _: len(_executes(simulator)) > sent)
    simulator.advance(60)


async def _use_rex(user):
    user.send("/cars")
    user.press(await user.wait_for_bot_message("Which car?"), REX_VIN[-4:])
    await user.wait_for_bot_message("on fuel")


async def test_weekly_planner_edits_round_trip_through_charging_control(bot, sandbox, simulator):
    alice = sandbox.user(301)
    await link(alice)
    await _use_rex(alice)  # the REX has the weekly planner
    expected = copy.deepcopy(simulator.vehicle(REX_VIN).charging_profile)
    schedule = await _open_schedule(alice)
    assert "(weekly planner)" in schedule.text
    assert "Timer 1: 07:30 · Mon, Tue · ✅ on" in schedule.text
    assert "Timer 2: 13:00 · Sat · ⬜ off" in schedule.text
    assert "Preferred charging window 05:02–17:31 · ✅ on" in schedule.text
    assert "delayed" in schedule.text and "Climatization for departure: ✅ on" in schedule.text
    assert all(
        len(b.callback_data.encode()) <= 64 and REX_VIN not in b.callback_data
        for r in schedule.buttons
        for b in r
    )

    await _press_until(alice, schedule, "⬜ Timer 2", "Timer 2: 13:00 · Sat · ✅ on")
    await _press_until(alice, schedule, "✏️ Timer 1", "👉 Timer 1")
    await _press_until(alice, schedule, "➕ 30 min", "Timer 1: 08:00 · Mon, Tue · ✅ on")
    edited = await _press_until(alice, schedule, "⬜ Wed", "Timer 1: 08:00 · Mon, Tue, Wed · ✅ on")
    assert "Changed here only" in edited.text
    assert _executes(simulator) == []  # nothing reaches the car before Save

    await _save(alice, schedule, simulator)
    await alice.wait_for_bot_message("took the new charging schedule")
    await alice.wait_for(lambda u: "The car has this schedule" in _message(u, schedule.message_id).text)
    assert not _message(alice, schedule.message_id).buttons  # the sent schedule is no longer editable

    planner = expected["weeklyPlanner"]
    planner["timer2"]["timerEnabled"] = True
    planner["timer1"]["departureTime"] = "08:00"
    planner["timer1"]["weekdays"] = ["MONDAY", "TUESDAY", "WEDNESDAY"]
    assert simulator.vehicle(REX_VIN).charging_profile == expected
    assert len(_executes(simulator)) == 1

    again = await _open_schedule(alice)
    assert "Timer 1: 08:00 · Mon, Tue, Wed · ✅ on" in again.text
    assert "Timer 2: 13:00 · Sat · ✅ on" in again.text and "Changed here only" not in again.text


async def test_two_times_timer_typed_time_window_mode_and_climatization(bot, sandbox, simulator):
    alice = sandbox.user(302)
    await link(alice)  # the BEV, selected first, has the two-times timer
    expected = copy.deepcopy(simulator.vehicle(BEV_VIN).charging_profile)
    schedule = await _open_schedule(alice)
    assert "(two departure timers)" in schedule.text
    assert "Timer 1: 07:30 · ✅ on" in schedule.text and "Timer 2: 17:15 · ⬜ off" in schedule.text
    assert "22:00–06:00 · ✅ on" in schedule.text

    timer = await _press_until(alice, schedule, "✏️ Timer 1", "👉 Timer 1")
    labels = [b.text for row in timer.buttons for b in row]
    assert "⌨️ Set time" in labels and not any("Mon" in label for label in labels)  # no weekdays here
    alice.press(schedule, "⌨️ Set time")
    await alice.wait_for_bot_message("departure time of Timer 1 as HH:MM")
    alice.send("25:99")
    await alice.wait_for_bot_message("That is not a time")
    alice.send("6:45")
    await alice.wait_for_bot_message("OK, departure time of Timer 1: 06:45")
    await alice.wait_for(lambda u: "Timer 1: 06:45 · ✅ on" in _message(u, schedule.message_id).text)
    alice.press(schedule, "⌨️ Set time")
    await alice.wait_for(lambda u: u.last_bot_message().text.startswith("Send the departure time"))
    await _press_until(alice, schedule, "➕ 30 min", "Timer 1: 07:15 · ✅ on")  # another button: no typing
    alice.send("09:00")
    await alice.wait_for_bot_message("I didn't understand that")
    assert "Timer 1: 07:15 · ✅ on" in _message(alice, schedule.message_id).text

    await _press_until(alice, schedule, "⬅️ Back", "⏰ Timer 1")
    await _press_until(alice, schedule, "✅ Window", "22:00–06:00 · ⬜ off")
    await _press_until(alice, schedule, "✏️ Window", "👉 Preferred")
    await _press_until(alice, schedule, "End ➕ 30", "22:00–06:30")
    await _press_until(alice, schedule, "⬅️ Back", "🌙 Preferred")
    await _press_until(alice, schedule, "🔁 Mode: delayed", "as soon as it is plugged in")
    await _press_until(alice, schedule, "✅ Climatization", "Climatization for departure: ⬜ off")

    await _save(alice, schedule, simulator)
    await alice.wait_for_bot_message("took the new charging schedule")
    timers = expected["twoTimesTimer"]
    timers["timer1"]["departureTime"] = "07:15"
    timers["preferredChargingWindow"].update(enabled=False, endTime="06:30")
    timers.update(
        chargingPreferences="NO_PRESELECTION", chargingMode="IMMEDIATE_CHARGING", climatizationEnabled=False
    )
    assert simulator.vehicle(BEV_VIN).charging_profile == expected
    assert "weekdays" not in simulator.vehicle(BEV_VIN).charging_profile["twoTimesTimer"]["timer1"]


async def test_forged_stale_and_unchanged_presses_do_nothing(bot, sandbox, simulator):
    alice, mallory = sandbox.user(303, "Alice"), sandbox.user(304, "Mallory")
    await link(alice)
    mallory.send("/start")
    await mallory.wait_for_bot_message("Hi Mallory")
    old = await _open_schedule(alice)
    schedule = await _open_schedule(alice)  # a newer schedule replaces the older draft
    before = schedule.text

    alice.press(schedule, "💾 Save")  # nothing changed: nothing is sent
    await alice.wait_for(lambda u: any(a.text == "Nothing has changed yet." for a in u.callback_answers()))
    presses = [b.callback_data for row in schedule.buttons for b in row]
    for data in presses:
        mallory.press_data(schedule.message_id, data)
    ref = keyboards.parse_schedule(keyboards.parse(presses[0])[1])[0]
    mallory.press_data(schedule.message_id, keyboards.schedule_data(ref, keyboards.S_SAVE))
    answered = len(alice.callback_answers())
    alice.press(old, "⬜ Timer 2")  # the older message is stale
    alice.press_data(schedule.message_id, keyboards.schedule_data(ref, keyboards.S_TOGGLE, 9))  # no timer 9
    alice.press_data(schedule.message_id, keyboards.schedule_data(ref, keyboards.S_DAY, 1, 2))  # no weekdays
    await mallory.wait_for(lambda u: len(u.callback_answers()) == len(presses) + 1)
    await alice.wait_for(lambda u: len(u.callback_answers()) == answered + 3)
    assert all(a.text == "This button is no longer valid." for a in mallory.callback_answers())
    assert [a.text for a in alice.callback_answers()[answered:]] == ["This button is no longer valid."] * 3
    assert _message(alice, schedule.message_id).text == before
    assert not any("Charging schedule" in (m.text or "") for m in mallory.bot_messages)

    # A save the car does not carry out keeps the edits for another try; Discard then drops them.
    simulator.vehicle(BEV_VIN).service_mode = "not_executed"
    await _press_until(alice, schedule, "⬜ Timer 2", "Timer 2: 17:15 · ✅ on")
    await _save(alice, schedule, simulator)
    await alice.wait_for_bot_message("did not carry it out")
    await alice.wait_for(lambda u: "Changed here only" in _message(u, schedule.message_id).text)
    await _press_until(alice, schedule, "✖️ Discard", "Changes discarded")
    assert "Timer 2: 17:15 · ⬜ off" in _message(alice, schedule.message_id).text
    answers = len(alice.callback_answers())
    alice.press_data(schedule.message_id, keyboards.schedule_data(ref, keyboards.S_SAVE))
    await alice.wait_for(lambda u: len(u.callback_answers()) == answers + 1)
    assert alice.callback_answers()[-1].text == "This button is no longer valid."
    assert len(_executes(simulator)) == 1
    assert simulator.vehicle(BEV_VIN).charging_profile["twoTimesTimer"]["timer2"]["timerEnabled"] is False


async def test_cars_without_schedule_get_a_clear_message(bot, sandbox, simulator):
    now = simulator.now()
    unsupported = i3_rex("WBY1Z41000V309001", now=now)
    unsupported["vehicle"]["chargingControl"] = "NOT_SUPPORTED"
    empty = i3_bev("WBY1Z21000V309002", now=now)
    empty["chargingProfile"] = {}
    simulator.add_account("carol@example.com", "carol-password", vehicles=[unsupported, empty])
    carol = sandbox.user(305, "Carol")
    await link(carol, "carol@example.com", "carol-password")
    carol.send("/schedule")
    await carol.wait_for_bot_message("has no charging schedule that can be set remotely")
    carol.send("/cars")
    carol.press(await carol.wait_for_bot_message("Which car?"), "9002")
    await carol.wait_for_bot_message("updated")
    carol.send("/schedule")
    await carol.wait_for_bot_message("reports no charging schedule")
    assert _executes(simulator) == []
