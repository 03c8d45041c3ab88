"""The alerts' pure decisions, one kind at a time, from the neutral `CarStatus` whichever backend read it
(the end-to-end alerts are in test_alerts.py and cardata/test_alerts.py)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.alerts import AlertKind, AlertPrefs, AlertState, Reading, decide
from bot.car_status import CarStatus, Part

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
VIN = "WBY1Z21000V000001"
ROOT = Path(__file__).resolve().parents[1]


def _polled(at: datetime = T0, **values: object) -> CarStatus:
    """A snapshot as the i Remote poll gives it: every part as old as the snapshot."""
    return CarStatus(VIN, reported_at=dict.fromkeys(Part, at), snapshot=True, **values)  # type: ignore[arg-type]


def _kinds(status: CarStatus, prefs: AlertPrefs, now: datetime, state: AlertState | None = None) -> list:
    return [a.kind for a in decide(state or AlertState(), Reading.of(status), prefs, now.timestamp())[1]]


def test_level_fires_when_a_charge_crosses_it_not_when_it_started_above() -> None:
    prefs = AlertPrefs(level_on=True, level_percent=80)
    state, _ = decide(AlertState(), Reading.of(_polled(soc=70, charging=True)), prefs, T0.timestamp())
    later = T0 + timedelta(minutes=30)
    assert _kinds(_polled(later, soc=81, charging=True), prefs, later, state) == [AlertKind.LEVEL]
    assert _kinds(_polled(soc=85, charging=True), prefs, T0) == []  # started above: nothing crossed


def test_stall_fires_after_its_minutes_not_while_waiting_or_on_a_quiet_car_s_old_report() -> None:
    prefs = AlertPrefs(stall_minutes=15)
    plugged = _polled(soc=40, plugged_in=True, charging_state="NOT_CHARGING")
    state, _ = decide(AlertState(), Reading.of(plugged), prefs, T0.timestamp())
    assert _kinds(plugged, prefs, T0 + timedelta(minutes=16), state) == [AlertKind.STALL]
    waiting = _polled(soc=40, plugged_in=True, waiting=True)
    assert _kinds(waiting, prefs, T0 + timedelta(minutes=16), state) == []
    # A quiet car's plug is known as of its one report: its silence since proves nothing.
    quiet = CarStatus(
        VIN, soc=40, plugged_in=True, reported_at={Part.PLUG: T0}, reports_rarely=True, plug_as_of=T0
    )
    state, _ = decide(AlertState(), Reading.of(quiet), prefs, T0.timestamp())
    assert _kinds(quiet, prefs, T0 + timedelta(hours=3), state) == []


def test_plug_reminder_fires_at_its_time_not_before_and_not_in_the_small_hours() -> None:
    prefs = AlertPrefs(plug_on=True, plug_percent=50, plug_minute=21 * 60)
    low = _polled(soc=30, plugged_in=False)
    evening = datetime(2026, 1, 5, 21, 5, tzinfo=UTC)
    assert _kinds(low, prefs, evening) == [AlertKind.PLUG]
    assert _kinds(low, prefs, evening - timedelta(hours=1)) == []  # before its time
    assert _kinds(low, prefs, evening + timedelta(hours=5)) == []  # 2 a.m. helps nobody
    assert _kinds(_polled(soc=30), prefs, evening) == []  # the plug not known: no guess


def test_open_fires_after_parking_not_while_moving_nor_on_a_quiet_car_s_switch_off_report() -> None:
    prefs = AlertPrefs(open_minutes=10)
    parked = _polled(soc=60, locked=False, lock_state="UNLOCKED", parked_at=T0)
    state, _ = decide(AlertState(), Reading.of(parked), prefs, T0.timestamp())
    assert _kinds(parked, prefs, T0 + timedelta(minutes=11), state) == [AlertKind.OPEN]
    moving = _polled(soc=60, locked=False, moving=True)
    assert _kinds(moving, prefs, T0 + timedelta(minutes=11), state) == []
    quiet = CarStatus(VIN, locked=False, reported_at={Part.DOORS: T0}, parked_at=T0, doors_as_of=T0)
    state, _ = decide(AlertState(), Reading.of(quiet), prefs, T0.timestamp())
    assert _kinds(quiet, prefs, T0 + timedelta(hours=1), state) == []


def test_the_pure_rooms_import_neither_backend() -> None:
    for room in ("alerts.py", "history.py", "car_status.py", "charts.py"):
        tree = ast.parse((ROOT / "bot" / room).read_text(encoding="utf-8"))
        modules = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in modules if m.startswith(("bot.bmw", "bot.cardata"))], room


def test_every_alert_kind_is_one_row_of_the_table_with_its_texts() -> None:
    """A new AlertKind without its AlertSpec row, or its row without its sentences, fails here; and every
    switch, value and memory field belongs to a row (none is read by per-kind code any more)."""
    from dataclasses import fields

    from bot.alerts import ALERT_SPECS
    from bot.chat import texts

    assert [spec.kind for spec in ALERT_SPECS] == list(AlertKind)
    assert set(texts.ALERT_TEXTS) == set(AlertKind)
    prefs, memory = AlertPrefs(), AlertState()
    named: set[str] = set()
    for spec in ALERT_SPECS:
        assert isinstance(getattr(prefs, spec.switch), bool)
        if spec.value is not None:  # else a switch alone (the monthly summary)
            assert spec.low <= getattr(prefs, spec.value) <= spec.high and spec.step > 0
        assert getattr(memory, spec.done) is None
        named |= {spec.switch} | {name for name in (spec.value, spec.clock) if name}
    assert named == {field.name for field in fields(AlertPrefs)}
    assert {spec.done for spec in ALERT_SPECS} == {
        f.name for f in fields(AlertState) if f.name.startswith("done_")
    }
