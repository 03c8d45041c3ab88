"""One status renderer for both backends: `texts.status` of the neutral `CarStatus`, whichever backend read it
(the end-to-end /status tests of each backend are in chat/test_car.py and chat/test_cardata.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.backends import from_car_state, from_vehicle_status
from bot.bmw.models import VehicleStatus
from bot.cardata import models as cd
from bot.cardata.models import CarState, TelematicValue
from bot.chat import texts
from bot.store import StoredVehicle

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
CAR = StoredVehicle(
    tg_id=1,
    vin="WBY1Z21000V000001",
    model="I3",
    license_plate=None,
    drive_train="BEV",
    capabilities=frozenset(),
    position=0,
)


def _streamed(**values: tuple[str, datetime]) -> CarState:
    keys = {"soc": cd.SOC_DISPLAYED, "target": cd.SOC_TARGET, "charging": cd.CHARGING_STATUS}
    keys |= {"plugged": cd.IS_PLUGGED, "lat": cd.LATITUDE, "lon": cd.LONGITUDE}
    return CarState(CAR.vin, {keys[k]: TelematicValue(v, None, at) for k, (v, at) in values.items()})


def test_a_streamed_status_shows_its_target_and_each_part_s_age() -> None:
    state = _streamed(
        soc=("61", NOW - timedelta(minutes=2)),
        target=("80", NOW - timedelta(minutes=2)),
        charging=("CHARGINGACTIVE", NOW - timedelta(minutes=2)),
        plugged=("true", NOW - timedelta(minutes=2)),
        lat=("48.1", NOW - timedelta(days=2)),
        lon=("11.5", NOW - timedelta(days=2)),
    )
    text = texts.status(CAR, from_car_state(CAR.vin, state), NOW)
    assert "61 %" in text and "⚡ charging to 80 %" in text
    assert "charge, charging, plug: 2 min ago" in text and "position: " in text
    assert "🔐" not in text  # a lock not streamed yet is not "unknown"


def test_a_streamed_car_that_sent_nothing_says_so() -> None:
    text = texts.status(CAR, from_car_state(CAR.vin, None), NOW)
    assert texts.STREAM_NO_DATA in text and "🔋" not in text


def test_a_polled_status_is_one_snapshot_with_one_time() -> None:
    body = {
        "updateTime": (NOW - timedelta(minutes=5)).isoformat(),
        "chargingLevelHv": 67,
        "remainingRangeElectric": 101,
        "connectionStatus": "DISCONNECTED",
    }
    polled = VehicleStatus.from_api({"vehicleStatus": body})
    text = texts.status(CAR, from_vehicle_status(CAR.vin, polled), NOW)
    assert "67 %" in text and "🔌 not plugged in" in text
    assert "🔐 unknown" in text  # the poll did not say: unknown, not "not streamed yet"
    assert "🕒 updated 5 min. ago (" in text  # one age for the snapshot, and its time


def test_the_one_renderer_has_no_second_name() -> None:
    assert not hasattr(texts, "car_status") and not hasattr(texts, "_car_where")
