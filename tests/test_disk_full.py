"""A full disk under the real bot: SQLite's own page cap on the store's connection makes every write that
needs a new page fail with SQLITE_FULL, as a full disk does (docs/exactly-once-push.md: what it leaves out).
Meanwhile reads work, an owner whose change cannot be stored is told so in one kind line, other owners are
served, no charge push is lost or doubled, nothing crashes, and the log says once that the database is full;
once there is room again everything carries on."""

from __future__ import annotations

import logging

import pytest

from bot.chat import texts
from bot.costs import Tariff
from bot.store import Store
from tests.support.bot import BEV_VIN, DEFAULT_PASSWORD, link, said
from tests.support.disk import fill_up, refuse
from tests.support.watcher import FINISHED, Cycles
from tests.test_alerts import _menu as alerts_menu
from tests.test_alerts import _press as press

FULL_LOG = "the database is full"
UPDATED = {"en": "updated", "de": "aktualisiert"}  # in every /status


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def _store(bot) -> Store:
    return bot.bot_data.services.garage.store


def _errors(logs: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in logs.records if r.levelno >= logging.ERROR]


def _full_warnings(logs: pytest.LogCaptureFixture) -> int:
    return sum(FULL_LOG in r.getMessage() for r in logs.records)


async def _status_works(user, language: str = "en") -> None:
    sent = user.send("/status")
    await user.wait_for(
        lambda u: any(
            m.message_id > sent.message_id and UPDATED[language] in (m.text or "") for m in u.bot_messages
        )
    )


async def _type_tariff(user, typed: str, language: str = "en") -> int:
    """/settings, 💶 Home tariff, `typed`: how many bot messages there were before the answer."""
    sent = user.send("/settings")
    await user.wait_for(lambda u: any(m.message_id > sent.message_id for m in u.bot_messages))
    menu = user.bot_messages[-1]
    asked = len(user.bot_messages)
    user.press(menu, said(texts.TARIFF_BUTTON, language))
    ask = said(texts.TARIFF_ASK, language).partition("{")[0]
    await user.wait_for(lambda u: any(ask in (m.text or "") for m in u.bot_messages[asked:]))
    before = len(user.bot_messages)
    user.send(typed)
    await user.wait_for(lambda u: len(u.bot_messages) > before)
    return before


@pytest.mark.parametrize("language", ["en", "de"])
async def test_a_change_that_cannot_be_stored_is_one_kind_line_and_reads_and_others_go_on(
    bot, sandbox, logs, language
):
    alice, bob = sandbox.user(801, "Alice", language_code=language), sandbox.user(802, "Bob")
    await link(alice, language=language)
    await link(bob)
    store = _store(bot)
    store.simulate_full_disk()
    # Other owners' tariffs filled the tariffs' last page: Alice's, as large, needs a new one.
    fill_up(lambda n: store.save_tariff(n, Tariff(n + 0.5, 0.30, "EUR")))

    before = await _type_tariff(alice, "0.30" if language == "en" else "0,30", language)
    [answer] = alice.bot_messages[before:]
    assert answer.text == said(texts.NOT_SAVED, language)
    assert store.tariffs(801) == []
    await _status_works(alice, language)  # reads work
    await _status_works(bob)  # and everyone else is served
    await _type_tariff(bob, "0.25")
    assert bob.bot_messages[-1].text == said(texts.NOT_SAVED)
    assert _full_warnings(logs) == 1  # once for the stretch, not per update
    assert not _errors(logs)
    assert DEFAULT_PASSWORD not in logs.text

    store.simulate_full_disk(False)  # space returns
    await _type_tariff(alice, "0.30" if language == "en" else "0,30", language)
    assert alice.bot_messages[-1].text.startswith(said(texts.TARIFF_SET, language)[:8])
    assert [t.price for t in store.tariffs(801)] == [0.30]
    assert "the database takes writes again" in logs.text
    assert not _errors(logs)


def _finished(user) -> int:
    return sum(FINISHED in (m.text or "") for m in user.bot_messages)


async def test_an_i_remote_charge_end_pushed_while_its_record_finds_no_room_is_not_pushed_again(
    bot, sandbox, simulator, logs, monkeypatch
):
    """The watcher's protocol: the end is on disk, the push goes out, and the disk fills meanwhile: the record
    that it went out finds no room (its WAL frames: a row that shrinks fits the capped pages). It must not go
    out again, neither while the disk is full nor after."""
    cycle, store, watcher = Cycles(), _store(bot), bot.bot_data.services.watcher
    alice = sandbox.user(803)
    await link(alice)
    await cycle.charging_near_full(bot, simulator, BEV_VIN)
    simulator.advance(10 * 60)  # full now

    push = watcher._push
    room: list = []

    async def disk_fills_meanwhile(notice) -> None:
        await push(notice)
        if not room:  # once
            store.simulate_full_disk()
            room.append(refuse(monkeypatch, store, "save_watch"))

    monkeypatch.setattr(watcher, "_push", disk_fills_meanwhile)
    for _ in range(3):
        await cycle(bot)
    assert _finished(alice) == 1
    assert store.watch(803, BEV_VIN).charging_since is not None  # not recorded yet: no room

    store.simulate_full_disk(False)  # space returns
    room[0]()
    await cycle(bot)
    assert store.watch(803, BEV_VIN).charging_since is None  # recorded now, and not pushed again
    await cycle(bot)
    assert _finished(alice) == 1
    assert [s.ended for s in store.charge_sessions(803, BEV_VIN)] == ["full"]
    assert not _errors(logs)


async def test_an_i_remote_charge_that_ends_while_the_disk_is_full_is_pushed_once_when_space_returns(
    bot, sandbox, simulator, logs, monkeypatch
):
    cycle, store = Cycles(), _store(bot)
    alice = sandbox.user(804)
    await link(alice)
    await cycle.charging_near_full(bot, simulator, BEV_VIN)
    store.simulate_full_disk()
    room = refuse(monkeypatch, store, "save_watch")
    simulator.advance(10 * 60)  # full now, and the disk too
    for _ in range(3):
        report = await cycle(bot)
        assert report.polled == 2  # the watcher goes on
    assert _finished(alice) == 0  # not on disk, so not pushed yet: nothing is lost either

    store.simulate_full_disk(False)
    room()
    await cycle(bot)
    await cycle(bot)
    assert _finished(alice) == 1
    assert not _errors(logs)


async def test_an_i_remote_charge_begun_and_ended_while_the_disk_is_full_is_pushed_once_when_space_returns(
    bot, sandbox, simulator, logs, monkeypatch
):
    """The soak's lost ends: a car plugged in and charged to full while nothing could be written. The watcher
    saw the charge begin, so it pushes its end, with how long it ran, once there is room."""
    cycle, store = Cycles(), _store(bot)
    alice = sandbox.user(805)
    await link(alice)
    await cycle(bot)  # seen parked, unplugged
    store.simulate_full_disk()
    room = refuse(monkeypatch, store, "save_watch")
    simulator.set_status(BEV_VIN, chargingLevelHv=60)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)  # charging: seen, and nowhere to write it
    simulator.advance(40 * 60)  # full, and unplugged
    simulator.unplug(BEV_VIN)
    await cycle(bot)
    assert _finished(alice) == 0

    room()
    store.simulate_full_disk(False)
    for _ in range(3):
        await cycle(bot)
    [push] = [m.text for m in alice.bot_messages if FINISHED in (m.text or "")]
    assert "60 % → 100 %" in push and "charged for" in push, push
    assert [s.ended for s in store.charge_sessions(805, BEV_VIN)] == ["full"]
    assert not _errors(logs)


@pytest.mark.parametrize("full", [("save_alert_state",), ("save_alert_state", "save_watch")])
async def test_a_charge_level_crossed_while_alert_memory_finds_no_room_is_alerted_when_space_returns(
    bot, sandbox, simulator, logs, monkeypatch, full
):
    """The soak's lost level alert (issue 20): an i Remote car charged through its owner's level while the
    car's alert memory could not be written (the watcher's rows fitting the capped pages, its new alert row
    not). Each poll decided the charge anew from the stored memory, which knew of no charge, and the reading
    after its end found none to alert: the charge's start must be kept until it can be written. With the
    watcher's rows refused too (the second soak), the alerts must still hear of each reading."""
    cycle, store = Cycles(), _store(bot)
    alice = sandbox.user(806)
    await link(alice)
    menu = await alerts_menu(alice)
    await press(alice, menu, "Charge level", "✅ Charge level: 80 %")
    await cycle(bot)  # seen parked, unplugged
    rooms = [refuse(monkeypatch, store, method) for method in full]
    simulator.set_status(BEV_VIN, chargingLevelHv=60)
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)  # charging from 60 %: its start is nowhere to be written
    simulator.advance(40 * 60)  # full
    await cycle(bot)
    assert not [m for m in alice.bot_messages if "has reached" in (m.text or "")]  # not on disk: not yet

    for room in rooms:
        room()
    await cycle(bot)
    await cycle(bot)
    [reached] = [m.text for m in alice.bot_messages if "has reached" in (m.text or "")]
    assert "100 %" in reached and "(your alert: 80 %)" in reached, reached
    assert not _errors(logs)


async def test_a_charge_after_a_drive_whose_mileage_finds_no_room_is_still_watched(
    bot, sandbox, simulator, logs, monkeypatch
):
    """A poll's mileage mark (for the monthly summary) that cannot be written is written at a later poll; it
    must not cost the poll its charge: the car drove, then charged to full, while the mark found no room."""
    cycle, store = Cycles(), _store(bot)
    alice = sandbox.user(807)
    await link(alice)
    await cycle(bot)  # seen parked, unplugged
    room = refuse(monkeypatch, store, "mark_mileage")
    simulator.set_status(BEV_VIN, mileage=41300, chargingLevelHv=60)  # driven 32 km
    simulator.plug_in(BEV_VIN, charging=True)
    await cycle(bot)
    simulator.advance(40 * 60)  # full
    await cycle(bot)
    await cycle(bot)
    [push] = [m.text for m in alice.bot_messages if FINISHED in (m.text or "")]
    assert "60 % → 100 %" in push and "charged for" in push, push
    room()
    await cycle(bot)
    assert not _errors(logs)
