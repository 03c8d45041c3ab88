"""The models against the API's documented example bodies (copied here: they are the contract, see
docs/i-remote-api.md) and real bodies."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from bot.bmw.errors import BadResponse
from bot.bmw.models import (
    SERVERS,
    Account,
    AllTrips,
    ChargingProfile,
    ChargingWindow,
    Destination,
    ExecutionState,
    ExecutionStatus,
    LastTrip,
    Poi,
    Position,
    RangeMap,
    Region,
    ServiceType,
    Timer,
    Token,
    Vehicle,
    VehicleStatus,
)
from tests.support.bodies import (
    ALL_TRIPS,
    CHARGING_CONTROL_TWO_TIMES,
    CHARGING_CONTROL_WEEKLY,
    CHARGING_PROFILE,
    DESTINATIONS,
    EXECUTE_SERVICE_ANSWER,
    EXECUTION_STATUS,
    LAST_TRIP,
    RANGE_MAP,
    REAL_RESPONSES,
    STATUS,
    TOKEN,
    VEHICLES,
)

PLUS_ONE = timezone(timedelta(hours=1))


# --- reference bodies -----------------------------------------------------------------------------------


def test_token_from_reference() -> None:
    token = Token.from_api(TOKEN, now=1000.0)
    assert token.access_token == TOKEN["access_token"]
    assert token.refresh_token == TOKEN["refresh_token"]
    assert token.expires_at == 1000.0 + 28800
    assert TOKEN["access_token"] not in repr(token) and TOKEN["refresh_token"] not in repr(token)


def test_token_without_access_token_is_bad() -> None:
    with pytest.raises(BadResponse):
        Token.from_api({"error": "invalid_grant"}, now=0.0)


def test_account_repr_hides_password_and_token() -> None:
    account = Account("me@example.com", "hunter2", token=Token("secret-access", "secret-refresh", 1.0))
    text = repr(account)
    assert "me@example.com" in text
    assert "hunter2" not in text and "secret-access" not in text and "secret-refresh" not in text


def test_servers_cover_every_region() -> None:
    assert SERVERS == {
        Region.REST_OF_WORLD: "https://b2vapi.bmwgroup.com",
        Region.USA: "https://b2vapi.bmwgroup.us",
        Region.CHINA: "https://b2vapi.bmwgroup.cn:8592",
    }


@pytest.mark.parametrize("body", [VEHICLES, {"vehicles": VEHICLES}], ids=["bare-array", "wrapped"])
def test_vehicles_from_reference(body: Any) -> None:
    [vehicle] = Vehicle.list_from_api(body)
    assert vehicle.vin == "WAB1C23456V123456"
    assert (vehicle.model, vehicle.brand, vehicle.drive_train) == ("I3 +REX", "BMW_I", "BEV_REX")
    assert (vehicle.body_type, vehicle.license_plate, vehicle.year) == ("I01", "AB64 1BC", 2014)
    assert vehicle.color == "SOLARORANGE MET. M. AKZE"
    assert vehicle.charging_control == "WEEKLY_PLANNER"
    assert vehicle.is_electric
    for flag in (
        "doorLock",
        "doorUnlock",
        "climateNow",
        "lightFlash",
        "vehicleFinder",
        "sendPoi",
        "rangeMap",
    ):
        assert vehicle.supports(flag), flag
    assert vehicle.supports("lastDestinations") and vehicle.supports("chargingControl")
    assert vehicle.supports("statisticsAvailable")  # a boolean flag
    for flag in ("hornBlow", "chargeNow", "remote360", "climateControl", "noSuchFlag"):
        assert not vehicle.supports(flag), flag
    assert vehicle.raw is body[0] if isinstance(body, list) else vehicle.raw is body["vehicles"][0]


def test_vehicle_flags_off_values_and_conventional_drive_train() -> None:
    entry = {
        "vin": "X",
        "driveTrain": "CONV",
        "doorLock": "NOT_AVAILABLE",
        "doorUnlock": False,
        "lightFlash": "SUPPORTED",
        "chargingControl": "NOT_SUPPORTED",
    }
    vehicle = Vehicle.from_api(entry)
    assert vehicle.capabilities == frozenset({"lightFlash"})
    assert not vehicle.is_electric
    assert vehicle.charging_control == "NOT_SUPPORTED" and not vehicle.supports("chargingControl")
    assert vehicle.model is None and vehicle.year is None


def test_status_from_reference() -> None:
    status = VehicleStatus.from_api(STATUS)
    assert status.vin == "WAB1C23456V123456"
    assert status.reading("mileage") == 1234
    assert status.update_time == datetime(2015, 10, 30, 18, 45, 4, tzinfo=PLUS_ONE)
    assert status.update_time is not None and status.update_time.utcoffset() == timedelta(hours=1)
    assert status.update_reason == "VEHICLE_SHUTDOWN_SECURED"
    assert status.door_lock_state == "SECURED"
    assert set(status.doors) == {
        "doorDriverFront",
        "doorDriverRear",
        "doorPassengerFront",
        "doorPassengerRear",
    }
    assert set(status.windows) == {
        "windowDriverFront",
        "windowDriverRear",
        "windowPassengerFront",
        "windowPassengerRear",
    }
    assert (status.trunk, status.hood, status.rear_window, status.convertible_roof) == (
        "CLOSED",
        "CLOSED",
        "INVALID",
        "INVALID",
    )
    assert status.charging_level_hv == 58
    assert (status.remaining_range_electric, status.max_range_electric) == (73, 134)
    assert (status.remaining_range_fuel, status.remaining_fuel, status.max_fuel) == (126, 8.9, 9)
    assert status.reading("fuelPercent") == 99
    assert (status.connection_status, status.charging_status) == ("DISCONNECTED", "INVALID")
    assert status.charging_time_remaining == 45
    assert (status.last_charging_end_reason, status.last_charging_end_result) == ("UNKNOWN", "FAILED")
    assert status.position == Position(lat=51.123456, lon=-1.2345678, heading=211, status="OK")
    assert status.position.usable
    assert status.open_items == []
    assert not status.is_charging and not status.is_plugged_in


def test_status_open_items_and_charging() -> None:
    body = copy.deepcopy(STATUS)
    body["vehicleStatus"].update(
        doorDriverFront="OPEN",
        windowPassengerRear="INTERMEDIATE",
        trunk="OPEN",
        hood="CLOSED",
        sunroof="OPEN",
        chargingStatus="CHARGING",
        connectionStatus="CONNECTED",
    )
    status = VehicleStatus.from_api(body)
    assert sorted(status.open_items) == ["doorDriverFront", "sunroof", "trunk", "windowPassengerRear"]
    assert status.is_charging and status.is_plugged_in


def test_status_plugged_in_without_charging() -> None:
    body = {"vehicleStatus": {"connectionStatus": "CONNECTED", "chargingStatus": "FINISHED_FULLY_CHARGED"}}
    status = VehicleStatus.from_api(body)
    assert status.is_plugged_in and not status.is_charging


def test_status_is_tolerant_inside() -> None:
    body = {
        "vehicleStatus": {
            "mileage": "lots",
            "updateTime": "yesterday",
            "chargingStatus": "SOME_FUTURE_STATE",
            "doorDriverFront": 3,
            "position": {"status": "DRIVER_DISABLED"},
        }
    }
    status = VehicleStatus.from_api(body)
    assert status.reading("mileage") is None and status.update_time is None and status.vin is None
    assert status.charging_status == "SOME_FUTURE_STATE"
    assert status.doors == {}
    assert status.position == Position(None, None, None, "DRIVER_DISABLED")
    assert not status.position.usable


def test_status_naive_time_taken_as_utc() -> None:
    status = VehicleStatus.from_api({"vehicleStatus": {"updateTime": "2020-08-25T12:57:59"}})
    assert status.update_time == datetime(2020, 8, 25, 12, 57, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("position", "usable"),
    [
        ({"lat": 1.0, "lon": 2.0, "status": "OK"}, True),
        ({"lat": 1.0, "lon": 2.0}, True),
        ({"lat": 1.0, "lon": 2.0, "status": "VEHICLE_ACTIVE"}, False),
        ({"lat": 1.0, "status": "OK"}, False),
        ({"status": "DRIVER_DISABLED"}, False),
    ],
)
def test_position_usable(position: dict[str, Any], usable: bool) -> None:
    assert Position.from_api(position).usable is usable


def test_last_trip_from_reference() -> None:
    trip = LastTrip.from_api(LAST_TRIP)
    assert trip == LastTrip(
        efficiency_value=0.53,
        total_distance=141,
        electric_distance=100.1,
        avg_electric_consumption=16.6,
        avg_recuperation=2,
        driving_mode_value=0,
        acceleration_value=0.39,
        anticipation_value=0.81,
        total_consumption_value=0.79,
        auxiliary_consumption_value=0.66,
        avg_combined_consumption=1.9,
        electric_distance_ratio=71,
        saved_fuel=0,
        date=datetime(2015, 12, 1, 20, 44, tzinfo=PLUS_ONE),
        duration=124,
    )


def test_empty_statistics_are_none() -> None:
    assert LastTrip.from_api({"lastTrip": {}}) is None
    assert AllTrips.from_api({"allTrips": {}}) is None


def test_all_trips_from_reference() -> None:
    trips = AllTrips.from_api(ALL_TRIPS)
    assert trips is not None
    assert trips.avg_electric_consumption is not None
    assert trips.avg_electric_consumption.community_average == 16.33
    assert trips.avg_electric_consumption.user_average == 14.76
    assert trips.avg_electric_consumption.user_total is None
    assert trips.chargecycle_range is not None
    assert trips.chargecycle_range.community_low is None
    assert (trips.chargecycle_range.user_high, trips.chargecycle_range.user_current_charge_cycle) == (135, 60)
    assert trips.total_electric_distance is not None and trips.total_electric_distance.user_total == 3158.66
    assert trips.avg_recuperation is not None and trips.avg_recuperation.community_high == 14.03
    assert trips.avg_combined_consumption is not None and trips.avg_combined_consumption.user_average == 0.36
    assert trips.battery_size_max == 35820
    assert (trips.saved_co2, trips.saved_co2_green_energy, trips.total_saved_fuel) == (87.58, 515.177, 0)
    assert trips.reset_date == datetime(1970, 1, 1, 1, 0, tzinfo=PLUS_ONE)


def test_destinations_from_reference() -> None:
    [destination] = Destination.list_from_api(DESTINATIONS)
    assert destination == Destination(
        lat=51.53053283691406,
        lon=-0.08362331241369247,
        country="UNITED KINGDOM",
        city="LONDON",
        street="PITFIELD STREET",
        type="DESTINATION",
        created_at=datetime(2015, 9, 25, 8, 6, 11, tzinfo=timezone(timedelta(hours=2))),
    )
    assert Destination.list_from_api({"destinations": []}) == []


def test_range_map_from_reference() -> None:
    range_map = RangeMap.from_api(RANGE_MAP)
    assert range_map.center == (51.123456, -1.2345678)
    assert range_map.quality == "AVERAGE"
    assert [line.type for line in range_map.polylines] == ["ECO_PRO_PLUS", "COMFORT"]
    assert range_map.polylines[0].points == (
        (51.6991281509399, -2.00423240661621),
        (51.6909098625183, -1.91526889801025),
    )
    assert not range_map.empty


def test_phev_range_map_is_empty() -> None:
    range_map = RangeMap.from_api({"rangemap": {}})
    assert range_map.empty and range_map.center is None and range_map.polylines == ()


def test_execution_status_from_reference() -> None:
    executed = ExecutionStatus.from_api(EXECUTION_STATUS)
    assert executed.service_type == ServiceType.DOOR_LOCK
    assert executed.status == ExecutionState.EXECUTED
    assert executed.event_id == "123456789012345AB1CD1234@bmw.de"
    assert executed.terminal
    initiated = ExecutionStatus.from_api(EXECUTE_SERVICE_ANSWER)
    assert initiated.service_type == "LIGHT_FLASH" and initiated.status == "INITIATED"
    assert not initiated.terminal


@pytest.mark.parametrize("state", list(ExecutionState))
def test_terminal_states(state: ExecutionState) -> None:
    status = ExecutionStatus.from_api(
        {"executionStatus": {"serviceType": "DOOR_LOCK", "status": state.value}}
    )
    assert status.terminal is (state in {"EXECUTED", "NOT_EXECUTED", "TIMED_OUT"})


def test_unknown_enum_values_are_kept() -> None:
    status = ExecutionStatus.from_api({"executionStatus": {"serviceType": "REMOTE_360", "status": "QUEUED"}})
    assert status.service_type == "REMOTE_360" and status.status == "QUEUED"
    assert not isinstance(status.status, ExecutionState)
    assert not status.terminal


def test_execution_status_without_status_is_not_terminal() -> None:
    status = ExecutionStatus.from_api({"executionStatus": {"serviceType": "LIGHT_FLASH", "eventId": "e"}})
    assert status.status is None and not status.terminal


def test_poi_to_api() -> None:
    poi = Poi(lat=48.1, lon=11.5, name="Home", postal_code="80331", city="München")
    assert poi.to_api() == {
        "poi": {
            "lat": 48.1,
            "lon": 11.5,
            "rating": -1,
            "name": "Home",
            "postalCode": "80331",
            "city": "München",
        }
    }


# --- charging profiles ----------------------------------------------------------------------------------


def test_weekly_planner_from_reference() -> None:
    profile = ChargingProfile.from_api(CHARGING_PROFILE)
    assert profile is not None
    assert profile.kind == "weeklyPlanner"
    assert profile.climatization_enabled is True
    assert (profile.charging_mode, profile.charging_preferences) == ("DELAYED_CHARGING", "CHARGING_WINDOW")
    assert profile.timers == {
        "timer1": Timer("07:30", True, ("MONDAY",)),
        "timer2": Timer("13:00", False, ("SATURDAY",)),
        "timer3": Timer("08:00", False, ()),
        "overrideTimer": Timer("07:30", False, ("MONDAY",)),
    }
    assert profile.window == ChargingWindow(enabled=True, start_time="05:02", end_time="17:31")


@pytest.mark.parametrize(
    "body",
    [CHARGING_PROFILE, CHARGING_CONTROL_WEEKLY, CHARGING_CONTROL_TWO_TIMES],
    ids=["profile", "control-weekly", "control-two-times"],
)
def test_profile_round_trips(body: dict[str, Any]) -> None:
    profile = ChargingProfile.from_api(copy.deepcopy(body))
    assert profile is not None
    assert profile.to_api() == body
    # to_api must not alias the parsed body: the chat layer may edit the result.
    profile.to_api()[profile.kind]["chargingMode"] = "changed"
    assert profile.to_api() == body


def test_two_times_timer_parses_without_weekdays() -> None:
    profile = ChargingProfile.from_api(CHARGING_CONTROL_TWO_TIMES)
    assert profile is not None and profile.kind == "twoTimesTimer"
    assert profile.timers == {"timer1": Timer("12:30", True, None), "timer2": Timer("13:30", False, None)}
    assert profile.window == ChargingWindow(enabled=None, start_time="00:00", end_time="00:00")
    # Weekdays set by mistake on a twoTimesTimer are not sent: that shape has none.
    edited = replace(profile, timers={**profile.timers, "timer1": Timer("06:00", True, ("MONDAY",))})
    assert edited.to_api()["twoTimesTimer"]["timer1"] == {"departureTime": "06:00", "timerEnabled": True}


def test_edited_profile_to_api_reflects_replaced_fields_and_keeps_unknown_keys() -> None:
    body = copy.deepcopy(CHARGING_PROFILE)
    body["weeklyPlanner"]["futureSetting"] = {"x": 1}
    body["weeklyPlanner"]["timer1"]["futureTimerKey"] = "kept"
    profile = ChargingProfile.from_api(body)
    assert profile is not None
    timers = dict(profile.timers)
    timers["timer1"] = replace(timers["timer1"], departure_time="06:45", weekdays=("MONDAY", "FRIDAY"))
    timers["timer3"] = replace(timers["timer3"], enabled=True)
    del timers["overrideTimer"]
    edited = replace(
        profile,
        timers=timers,
        charging_mode="IMMEDIATE_CHARGING",
        climatization_enabled=False,
        window=replace(profile.window, start_time="22:00", end_time="06:00") if profile.window else None,
    )
    data = edited.to_api()["weeklyPlanner"]
    assert data["chargingMode"] == "IMMEDIATE_CHARGING" and data["climatizationEnabled"] is False
    assert data["timer1"] == {
        "departureTime": "06:45",
        "timerEnabled": True,
        "weekdays": ["MONDAY", "FRIDAY"],
        "futureTimerKey": "kept",
    }
    assert data["timer3"]["timerEnabled"] is True
    assert "overrideTimer" not in data
    assert data["preferredChargingWindow"] == {"enabled": True, "startTime": "22:00", "endTime": "06:00"}
    assert data["futureSetting"] == {"x": 1}
    assert json.loads(json.dumps(edited.to_api())) == edited.to_api()  # it is sent as JSON
    # The original is untouched.
    assert profile.to_api() == body


def test_profile_editing_rules() -> None:
    weekly = ChargingProfile.from_api(copy.deepcopy(CHARGING_PROFILE))
    two = ChargingProfile.from_api(copy.deepcopy(CHARGING_CONTROL_TWO_TIMES))
    assert weekly is not None and two is not None
    assert weekly.timer_keys == ["timer1", "timer2", "timer3", "overrideTimer"]
    assert weekly.timer_at(4) == "overrideTimer"
    with pytest.raises(IndexError):
        weekly.timer_at(0)
    # Times wrap around midnight; an unset time counts as midnight.
    assert weekly.shift_departure("timer1", -8 * 60).timers["timer1"].departure_time == "23:30"
    assert weekly.shift_window("end", 30).window_time("end") == "18:01"
    # Weekdays keep the week's order; a two-times timer has none to toggle.
    assert weekly.toggle_weekday("timer1", "SUNDAY").timers["timer1"].weekdays == ("MONDAY", "SUNDAY")
    assert weekly.toggle_weekday("timer1", "MONDAY").timers["timer1"].weekdays == ()
    with pytest.raises(ValueError):
        two.toggle_weekday("timer1", "MONDAY")
    # A window with its own flag switches the flag; one without follows chargingPreferences.
    off = weekly.toggle_window()
    assert off.window is not None and off.window.enabled is False and not off.window_on
    assert off.charging_preferences == "NO_PRESELECTION"
    assert two.window_on and not two.toggle_window().window_on
    assert two.toggle_window().window == two.window
    no_window = replace(weekly, window=None)
    with pytest.raises(LookupError):
        no_window.toggle_window()
    assert weekly.toggle_mode().charging_mode == "IMMEDIATE_CHARGING"
    assert weekly.toggle_mode().toggle_mode().charging_mode == "DELAYED_CHARGING"


def test_empty_profile_body_is_none() -> None:
    assert ChargingProfile.from_api({}) is None


# --- strict at the top ----------------------------------------------------------------------------------

PARSERS: dict[str, Callable[[Any], Any]] = {
    "vehicles": Vehicle.list_from_api,
    "status": VehicleStatus.from_api,
    "lastTrip": LastTrip.from_api,
    "allTrips": AllTrips.from_api,
    "chargingprofile": ChargingProfile.from_api,
    "destinations": Destination.list_from_api,
    "rangemap": RangeMap.from_api,
    "executionStatus": ExecutionStatus.from_api,
}
MALFORMED = {
    "not-json-decoded": '{"vehicleStatus": {',
    "none": None,
    "number": 42,
    "list-where-dict": [{"vin": "X"}],
    "missing-top-level-key": {"somethingElse": {}},
    "top-level-key-wrong-type": {
        "vehicles": "x",
        "vehicleStatus": [],
        "lastTrip": [],
        "allTrips": "x",
        "weeklyPlanner": [],
        "destinations": {},
        "rangemap": [],
        "executionStatus": "EXECUTED",
    },
}


@pytest.mark.parametrize("parser", list(PARSERS))
@pytest.mark.parametrize("malformed", list(MALFORMED))
def test_malformed_bodies_raise_bad_response(parser: str, malformed: str) -> None:
    body = MALFORMED[malformed]
    if parser == "vehicles" and malformed == "list-where-dict":
        body = ["not a vehicle"]  # a bare list is valid here; its entries must still be vehicles
    with pytest.raises(BadResponse):
        PARSERS[parser](body)


def test_vehicle_without_vin_is_bad() -> None:
    with pytest.raises(BadResponse):
        Vehicle.list_from_api({"vehicles": [{"model": "i3"}]})


# --- real recorded bodies (../shared; skipped where absent) ---------------------------------------------


def _real(name: str) -> Any:
    return json.loads((REAL_RESPONSES / name).read_text())


def _check_status(body: Any) -> None:
    status = VehicleStatus.from_api(body)
    assert status.vin == body["vehicleStatus"]["vin"]
    assert status.update_time is not None and status.update_time.tzinfo is not None
    if status.position is not None and status.position.status != "OK":
        assert not status.position.usable
    assert status.is_charging == (body["vehicleStatus"].get("chargingStatus") == "CHARGING")
    if status.is_charging:
        assert status.charging_time_remaining is not None and status.is_plugged_in


def _check_vehicles(body: Any) -> None:
    vehicles = Vehicle.list_from_api(body)
    assert [v.vin for v in vehicles] == [entry["vin"] for entry in body["vehicles"]]
    for vehicle, entry in zip(vehicles, body["vehicles"], strict=True):
        assert vehicle.is_electric == (entry.get("driveTrain") in {"BEV", "BEV_REX", "PHEV"})
        assert vehicle.supports("doorLock") == (entry.get("doorLock") == "ACTIVATED")


def _check_profile(body: Any) -> None:
    profile = ChargingProfile.from_api(body)
    assert profile is not None and profile.kind in body
    assert profile.to_api() == body


def _check_last_trip(body: Any) -> None:
    trip = LastTrip.from_api(body)
    if body["lastTrip"]:
        assert trip is not None and trip.total_distance == body["lastTrip"]["totalDistance"]
        assert trip.date is not None and trip.date.tzinfo is not None
    else:
        assert trip is None


def _check_all_trips(body: Any) -> None:
    trips = AllTrips.from_api(body)
    assert trips is not None and trips.avg_electric_consumption is not None
    assert (
        trips.avg_electric_consumption.community_average
        == body["allTrips"]["avgElectricConsumption"]["communityAverage"]
    )
    assert trips.battery_size_max == body["allTrips"]["batterySizeMax"]


def _check_destinations(body: Any) -> None:
    destinations = Destination.list_from_api(body)
    assert len(destinations) == len(body["destinations"])
    assert all(d.created_at is not None and d.lat is not None for d in destinations)


def _check_range_map(body: Any) -> None:
    range_map = RangeMap.from_api(body)
    assert range_map.empty == (not body["rangemap"])


def _check_execution(body: Any) -> None:
    status = ExecutionStatus.from_api(body)
    assert status.status == body["executionStatus"].get("status")
    assert status.terminal == (status.status == "EXECUTED")


def _check_token(body: Any) -> None:
    token = Token.from_api(body, now=0.0)
    assert token.expires_at == body["expires_in"] and token.refresh_token == body["refresh_token"]


def _check_auth_error(body: Any) -> None:
    with pytest.raises(BadResponse):
        Token.from_api(body, now=0.0)


# File name (without folder) -> its check; every recorded file must have one.
REAL_CHECKS: dict[str, Callable[[Any], None]] = {
    "status.json": _check_status,
    "status_position_disabled.json": _check_status,
    "status_position_vehicle_active.json": _check_status,
    "webapi-status.json": _check_status,
    "vehicle-status.json": _check_status,
    "vehicle-status-charging.json": _check_status,
    "vehicles.json": _check_vehicles,
    "connected-drive-account-info.json": _check_vehicles,
    "discovery.json": _check_vehicles,
    "charging_profile.json": _check_profile,
    "charging-profile.json": _check_profile,
    "charge-profile.json": _check_profile,
    "last_trip.json": _check_last_trip,
    "last-trip.json": _check_last_trip,
    "all_trips.json": _check_all_trips,
    "all-trips.json": _check_all_trips,
    "last_destinations.json": _check_destinations,
    "destinations.json": _check_destinations,
    "range_maps.json": _check_range_map,
    "auth_token.json": _check_token,
    "auth_error_wrong_password.json": _check_auth_error,
}

REAL_FILES = sorted(str(p.relative_to(REAL_RESPONSES)) for p in REAL_RESPONSES.rglob("*.json"))


@pytest.mark.skipif(not REAL_FILES, reason="../shared/reference/real-responses is not here")
@pytest.mark.parametrize("name", REAL_FILES or ["absent"])
def test_real_response_parses(name: str) -> None:
    body = _real(name)
    if "remote-services" in name or "remote_services" in name:
        _check_execution(body)
    else:
        REAL_CHECKS[Path(name).name](body)
