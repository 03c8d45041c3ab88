"""The BMW i Remote API simulator, driven over real loopback HTTP with raw httpx.

The simulator runs on a frozen clock here, so every timeline moves only by `advance()` and is exact.
"""

from __future__ import annotations

import json
import math
import re
import ssl
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from bot.bmw.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_BEV_VIN,
    DEFAULT_PASSWORD,
    DEFAULT_REX_VIN,
    DEFAULT_USERNAME,
    Fault,
    ServiceMode,
    Simulator,
)

T0 = 1_700_000_000.0
BEV, REX = DEFAULT_BEV_VIN, DEFAULT_REX_VIN
CAR_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}$")
CAPABILITIES = ["doorLock", "doorUnlock", "climateNow", "chargeNow", "lightFlash", "hornBlow"]
CAPABILITIES += ["vehicleFinder", "sendPoi", "rangeMap", "lastDestinations", "chargingControl"]
# Built once: every httpx client would otherwise load the CA bundle again (~0.1 s each).
TLS = ssl.create_default_context()


@pytest.fixture
def simulator() -> Simulator:
    """Overrides the plugin's fixture with a frozen clock; `simulator_url` serves this one."""
    sim = Simulator(clock=lambda: T0)
    sim.add_default_account()
    return sim


def token_request(url: str, form: dict[str, str], auth: tuple[str, str] | None = None) -> httpx.Response:
    credentials = auth or (DEFAULT_API_KEY, DEFAULT_API_SECRET)
    return httpx.post(f"{url}/webapi/oauth/token/", data=form, auth=credentials, verify=TLS)


def password_grant(
    url: str, username: str = DEFAULT_USERNAME, password: str = DEFAULT_PASSWORD
) -> httpx.Response:
    form = {
        "grant_type": "password",
        "username": username,
        "password": password,
        "scope": "remote_services vehicle_data",
    }
    return token_request(url, form)


def client_for(url: str, access_token: str) -> httpx.Client:
    headers = {"Authorization": f"Bearer {access_token}"}
    return httpx.Client(base_url=f"{url}/webapi/v1/user/vehicles", headers=headers, verify=TLS)


@pytest.fixture
def api(simulator_url: str) -> Iterator[httpx.Client]:
    """A client logged in as the default account; paths are relative to /webapi/v1/user/vehicles."""
    with client_for(simulator_url, password_grant(simulator_url).json()["access_token"]) as client:
        yield client


def status_of(api: httpx.Client, vin: str) -> dict[str, Any]:
    response = api.get(f"/{vin}/status")
    assert response.status_code == 200
    status: dict[str, Any] = response.json()["vehicleStatus"]
    return status


def execute(api: httpx.Client, vin: str, service: str, **form: str) -> httpx.Response:
    return api.post(f"/{vin}/executeService", data={"serviceType": service, **form})


def service_state(api: httpx.Client, vin: str, service: str) -> str:
    response = api.get(f"/{vin}/serviceExecutionStatus", params={"serviceType": service})
    assert response.status_code == 200
    state: str = response.json()["executionStatus"]["status"]
    return state


# -- authorisation ------------------------------------------------------------------------------------------


def test_password_grant_answers_the_reference_token(simulator_url: str) -> None:
    response = password_grant(simulator_url)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 28799
    assert {"vehicle_data", "remote_services"} <= set(body["scope"].split())
    assert body["access_token"] and body["refresh_token"] and body["access_token"] != body["refresh_token"]


@pytest.mark.parametrize(("username", "password"), [(DEFAULT_USERNAME, "wrong"), ("nobody@example.com", "x")])
def test_bad_user_credentials_are_invalid_grant(simulator_url: str, username: str, password: str) -> None:
    response = password_grant(simulator_url, username, password)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_grant", "error_description": "Bad user credentials"}


@pytest.mark.parametrize("auth", [("demo-key", "wrong-secret"), ("other-key", DEFAULT_API_SECRET), None])
def test_wrong_api_key_is_invalid_client(simulator_url: str, auth: tuple[str, str] | None) -> None:
    form = {"grant_type": "password", "username": DEFAULT_USERNAME, "password": DEFAULT_PASSWORD}
    response = httpx.post(f"{simulator_url}/webapi/oauth/token", data=form, auth=auth, verify=TLS)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith("Client authentication failed")


def test_refresh_grant_issues_new_tokens_and_retires_the_old_refresh_token(simulator_url: str) -> None:
    first = password_grant(simulator_url).json()
    refreshed = token_request(
        simulator_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    with client_for(simulator_url, second["access_token"]) as client:
        assert client.get("/").status_code == 200
    replay = token_request(
        simulator_url, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_grant"


def test_access_token_expires_with_the_simulator_clock(simulator: Simulator, api: httpx.Client) -> None:
    simulator.advance(28798)
    assert api.get("/").status_code == 200
    simulator.advance(1)
    response = api.get("/")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_and_revoked_tokens(simulator: Simulator, simulator_url: str) -> None:
    tokens = password_grant(simulator_url).json()
    simulator.expire_tokens(DEFAULT_USERNAME)
    with client_for(simulator_url, tokens["access_token"]) as client:
        assert client.get("/").status_code == 401
    simulator.revoke_refresh_tokens()
    refresh = token_request(
        simulator_url, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert refresh.status_code == 401 and refresh.json()["error"] == "invalid_grant"
    assert password_grant(simulator_url).status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic ZGVtby1rZXk6ZGVtby1zZWNyZXQ="])
def test_api_needs_a_valid_bearer_token(simulator_url: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    url = f"{simulator_url}/webapi/v1/user/vehicles/{BEV}/status"
    response = httpx.get(url, headers=headers, verify=TLS)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


# -- read endpoints -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("slash", ["", "/"])
def test_vehicles_list_is_wrapped_and_carries_every_capability(api: httpx.Client, slash: str) -> None:
    response = api.get(str(api.base_url).rstrip("/") + slash)  # an absolute URL: httpx keeps it as given
    assert response.status_code == 200
    cars = {car["vin"]: car for car in response.json()["vehicles"]}
    assert set(cars) == {BEV, REX}
    bev, rex = cars[BEV], cars[REX]
    assert (bev["model"], bev["driveTrain"], bev["chargingControl"]) == ("I3", "BEV", "TWO_TIMES_TIMER")
    assert (rex["model"], rex["driveTrain"], rex["chargingControl"]) == (
        "I3 +REX",
        "BEV_REX",
        "WEEKLY_PLANNER",
    )
    assert bev["chargeNow"] == "ACTIVATED" and bev["hornBlow"] == "ACTIVATED"
    assert rex["hornBlow"] == "NOT_SUPPORTED" and rex["rangeMap"] == "RANGE_POLYGON"
    for car in (bev, rex):
        assert set(CAPABILITIES) <= set(car)
        assert car["licensePlate"] and car["bodytype"] == "I01" and car["brand"] == "BMW_I"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_status_body(api: httpx.Client, suffix: str) -> None:
    response = api.get(f"/{REX}/status{suffix}")
    assert response.status_code == 200
    status = response.json()["vehicleStatus"]
    assert status["vin"] == REX
    assert CAR_TIME.match(status["updateTime"])
    assert "chargingTimeRemaining" not in status
    assert set(status["position"]) == {"lat", "lon", "heading", "status"}
    assert 47 < status["position"]["lat"] < 49 and 11 < status["position"]["lon"] < 12  # around Munich
    for key in (
        "remainingFuel",
        "remainingRangeFuel",
        "maxFuel",
        "chargingLevelHv",
        "mileage",
        "doorLockState",
    ):
        assert key in status
    assert status["remainingRangeElectric"] == round(
        status["maxRangeElectric"] * status["chargingLevelHv"] / 100
    )


def test_statistics_profile_and_destination_bodies(api: httpx.Client) -> None:
    last_trip = api.get(f"/{BEV}/statistics/lastTrip").json()["lastTrip"]
    assert {"efficiencyValue", "totalDistance", "avgElectricConsumption", "date", "duration"} <= set(
        last_trip
    )
    assert CAR_TIME.match(last_trip["date"])
    all_trips = api.get(f"/{BEV}/statistics/allTrips").json()["allTrips"]
    assert set(all_trips["avgElectricConsumption"]) == {
        "communityLow",
        "communityAverage",
        "communityHigh",
        "userAverage",
    }
    assert {"chargecycleRange", "totalElectricDistance", "batterySizeMax", "savedCO2", "resetDate"} <= set(
        all_trips
    )
    bev_profile = api.get(f"/{BEV}/chargingprofile").json()
    assert list(bev_profile) == ["twoTimesTimer"]
    assert "weekdays" not in bev_profile["twoTimesTimer"]["timer1"]
    rex_profile = api.get(f"/{REX}/chargingprofile").json()
    assert list(rex_profile) == ["weeklyPlanner"]
    assert {"timer1", "timer2", "timer3", "overrideTimer", "preferredChargingWindow"} <= set(
        rex_profile["weeklyPlanner"]
    )
    destinations = api.get(f"/{BEV}/destinations").json()["destinations"]
    assert destinations and all(
        d["type"] == "DESTINATION" and CAR_TIME.match(d["createdAt"]) for d in destinations
    )


def mean_reach(rangemap: dict[str, Any], kind: str) -> float:
    center = rangemap["center"]
    polyline = next(m["polyline"] for m in rangemap["rangemaps"] if m["type"] == kind)
    return sum(math.dist((p["lat"], p["lon"]), (center["lat"], center["lon"])) for p in polyline) / len(
        polyline
    )


def test_range_map_is_two_closed_polygons_around_the_car(api: httpx.Client) -> None:
    rangemap = api.get(f"/{BEV}/rangemap").json()["rangemap"]
    position = status_of(api, BEV)["position"]
    assert rangemap["center"] == {"lat": position["lat"], "lon": position["lon"]}
    assert rangemap["quality"] == "AVERAGE"
    assert [m["type"] for m in rangemap["rangemaps"]] == ["ECO_PRO_PLUS", "COMFORT"]
    for polygon in rangemap["rangemaps"]:
        assert 45 <= len(polygon["polyline"]) <= 55
        assert polygon["polyline"][0] == polygon["polyline"][-1]
    assert mean_reach(rangemap, "ECO_PRO_PLUS") > mean_reach(rangemap, "COMFORT")


def test_range_map_grows_with_state_of_charge(simulator: Simulator, api: httpx.Client) -> None:
    simulator.set_status(BEV, chargingLevelHv=20)
    low = api.get(f"/{BEV}/rangemap").json()["rangemap"]
    simulator.set_status(BEV, chargingLevelHv=80)
    high = api.get(f"/{BEV}/rangemap").json()["rangemap"]
    for kind in ("ECO_PRO_PLUS", "COMFORT"):
        assert mean_reach(high, kind) == pytest.approx(4 * mean_reach(low, kind), rel=0.02)


def test_one_account_never_reaches_another_accounts_car(simulator: Simulator, simulator_url: str) -> None:
    theirs = simulator.add_account("other@example.com", "other-password")
    assert len(set(theirs) | {BEV, REX}) == 4
    with client_for(simulator_url, password_grant(simulator_url).json()["access_token"]) as mine:
        for request in (mine.get(f"/{theirs[0]}/status"), execute(mine, theirs[0], "DOOR_UNLOCK")):
            assert request.status_code == 404
            assert request.json() == {"error": {"code": 404, "description": "Vehicle not found"}}
        assert mine.get("/WBY00000000000000/destinations").status_code == 404
    other_token = password_grant(simulator_url, "other@example.com", "other-password").json()["access_token"]
    with client_for(simulator_url, other_token) as other:
        assert {car["vin"] for car in other.get("/").json()["vehicles"]} == set(theirs)


# -- remote services ----------------------------------------------------------------------------------------


def plugged_waiting(sim: Simulator) -> None:
    sim.plug_in(BEV, charging=False)


RemoteCase = tuple[
    str, str, dict[str, str], Callable[[Simulator], None], Callable[[Simulator, dict[str, Any]], None]
]
TWO_TIMES = {"twoTimesTimer": {"timer1": {"departureTime": "06:45", "timerEnabled": False}}}
WEEKLY = {"weeklyPlanner": {"chargingMode": "IMMEDIATE_CHARGING", "timer3": {"weekdays": ["SUNDAY"]}}}


def check_locked(sim: Simulator, before: dict[str, Any]) -> None:
    status = sim.vehicle(BEV).status
    assert status["doorLockState"] == "LOCKED" and status["updateReason"] == "DOOR_STATE_CHANGED"
    assert status["updateTime"] != before["updateTime"]


def check_unlocked(sim: Simulator, before: dict[str, Any]) -> None:
    assert sim.vehicle(REX).status["doorLockState"] == "UNLOCKED"


def check_climate(sim: Simulator, before: dict[str, Any]) -> None:
    climate_until = sim.vehicle(BEV).climate_until
    assert climate_until is not None and climate_until > sim.now()


def check_charging(sim: Simulator, before: dict[str, Any]) -> None:
    status = sim.vehicle(BEV).status
    assert status["chargingStatus"] == "CHARGING" and status["updateReason"] == "CHARGING_STARTED"
    assert status["chargingTimeRemaining"] > 0


def check_unchanged(sim: Simulator, before: dict[str, Any]) -> None:
    assert sim.vehicle(before["vin"]).status == before


def check_found(sim: Simulator, before: dict[str, Any]) -> None:
    status = sim.vehicle(REX).status
    assert status["updateTime"] != before["updateTime"] and status["position"]["status"] == "OK"


def check_two_times_profile(sim: Simulator, before: dict[str, Any]) -> None:
    profile = sim.vehicle(BEV).charging_profile["twoTimesTimer"]
    assert profile["timer1"] == {"departureTime": "06:45", "timerEnabled": False}
    assert profile["timer2"]["departureTime"] == "17:15"  # untouched timers are kept


def check_weekly_profile(sim: Simulator, before: dict[str, Any]) -> None:
    profile = sim.vehicle(REX).charging_profile["weeklyPlanner"]
    assert profile["chargingMode"] == "IMMEDIATE_CHARGING"
    assert profile["timer3"] == {"departureTime": "08:00", "timerEnabled": False, "weekdays": ["SUNDAY"]}


REMOTE_CASES: list[RemoteCase] = [
    (BEV, "DOOR_LOCK", {}, lambda sim: None, check_locked),
    (REX, "DOOR_UNLOCK", {}, lambda sim: None, check_unlocked),
    (BEV, "CLIMATE_NOW", {}, lambda sim: None, check_climate),
    (BEV, "CHARGE_NOW", {}, plugged_waiting, check_charging),
    (REX, "LIGHT_FLASH", {"count": "2"}, lambda sim: None, check_unchanged),
    (BEV, "HORN_BLOW", {}, lambda sim: None, check_unchanged),
    (REX, "VEHICLE_FINDER", {}, lambda sim: None, check_found),
    (BEV, "CHARGING_CONTROL", {"data": json.dumps(TWO_TIMES)}, lambda sim: None, check_two_times_profile),
    (REX, "CHARGING_CONTROL", {"data": json.dumps(WEEKLY)}, lambda sim: None, check_weekly_profile),
]


@pytest.mark.parametrize(
    ("vin", "service", "form", "setup", "check"),
    REMOTE_CASES,
    ids=[f"{c[1]}-{c[0][-3:]}" for c in REMOTE_CASES],
)
def test_remote_service_walks_to_executed_and_changes_the_car(
    simulator: Simulator,
    api: httpx.Client,
    vin: str,
    service: str,
    form: dict[str, str],
    setup: Callable[[Simulator], None],
    check: Callable[[Simulator, dict[str, Any]], None],
) -> None:
    setup(simulator)
    before = status_of(api, vin)
    response = execute(api, vin, service, **form)
    assert response.status_code == 200
    started = response.json()["executionStatus"]
    assert started["serviceType"] == service and started["status"] == "INITIATED"
    assert started["eventId"].endswith("@bmw.de")
    seen = [service_state(api, vin, service)]
    for _ in range(3):
        simulator.advance(simulator.service_seconds / 3)
        seen.append(service_state(api, vin, service))
    assert seen == ["INITIATED", "PENDING", "DELIVERED", "EXECUTED"]
    final = api.get(f"/{vin}/serviceExecutionStatus", params={"serviceType": service}).json()[
        "executionStatus"
    ]
    assert final["eventId"] == started["eventId"]
    check(simulator, before)


def test_charge_now_on_an_unplugged_car_is_not_executed(simulator: Simulator, api: httpx.Client) -> None:
    assert execute(api, BEV, "CHARGE_NOW").status_code == 200
    simulator.advance(simulator.service_seconds)
    assert service_state(api, BEV, "CHARGE_NOW") == "NOT_EXECUTED"
    assert status_of(api, BEV)["chargingStatus"] == "INVALID"


@pytest.mark.parametrize(
    ("vin", "service"), [(REX, "HORN_BLOW"), (REX, "CHARGE_NOW"), (BEV, "SELF_DESTRUCT")]
)
def test_unsupported_service_is_400(api: httpx.Client, vin: str, service: str) -> None:
    response = execute(api, vin, service)
    assert response.status_code == 400
    assert response.json() == {
        "error": {"code": 400, "description": f"Service {service} not supported by vehicle"}
    }


@pytest.mark.parametrize(
    ("vin", "data"),
    [
        (REX, "{not json"),
        (REX, json.dumps(TWO_TIMES)),  # the REX plans weekly
        (BEV, json.dumps({"twoTimesTimer": {"timer1": {"departureTime": "25:00"}}})),
        (BEV, json.dumps({"twoTimesTimer": {"timer1": {"weekdays": ["MONDAY"]}}})),
        (BEV, json.dumps({"twoTimesTimer": {"timer3": {"departureTime": "07:00"}}})),
        (REX, json.dumps({"weeklyPlanner": {"timer1": {"weekdays": ["FUNDAY"]}}})),
        (REX, json.dumps({"weeklyPlanner": {"chargingMode": "WARP"}})),
    ],
)
def test_invalid_charging_control_data_is_400(
    simulator: Simulator, api: httpx.Client, vin: str, data: str
) -> None:
    before = simulator.vehicle(vin).charging_profile
    response = execute(api, vin, "CHARGING_CONTROL", data=data)
    assert response.status_code == 400
    assert response.json()["error"]["description"].startswith("Invalid charging profile")
    assert simulator.vehicle(vin).charging_profile == before


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("timed_out", ["INITIATED", "PENDING", "PENDING", "TIMED_OUT", "TIMED_OUT"]),
        ("not_executed", ["INITIATED", "PENDING", "DELIVERED", "NOT_EXECUTED", "NOT_EXECUTED"]),
        ("stuck", ["INITIATED", "PENDING", "PENDING", "PENDING", "PENDING"]),
    ],
)
def test_car_that_does_not_answer(
    simulator: Simulator, api: httpx.Client, mode: ServiceMode, expected: list[str]
) -> None:
    simulator.vehicle(BEV).service_mode = mode
    execute(api, BEV, "DOOR_LOCK")
    seen = [service_state(api, BEV, "DOOR_LOCK")]
    for step in (2.0, 3.0, 6.0, 3600.0):
        simulator.advance(step)
        seen.append(service_state(api, BEV, "DOOR_LOCK"))
    assert seen == expected
    assert simulator.vehicle(BEV).status["doorLockState"] == "SECURED"


def test_service_status_without_a_request(api: httpx.Client) -> None:
    assert api.get(f"/{BEV}/serviceExecutionStatus", params={"serviceType": "DOOR_LOCK"}).status_code == 404
    assert api.get(f"/{BEV}/serviceExecutionStatus").status_code == 400


def test_unlock_with_a_security_question(simulator: Simulator, simulator_url: str) -> None:
    vins = simulator.add_account("secure@example.com", "pw-secure-1", security_answer="Bavaria")
    token = password_grant(simulator_url, "secure@example.com", "pw-secure-1").json()["access_token"]
    with client_for(simulator_url, token) as client:
        missing = execute(client, vins[0], "DOOR_UNLOCK")
        assert missing.status_code == 500
        assert missing.json() == {
            "error": {
                "code": 500,
                "description": "(SmartPhoneUtil-A-2013) Action is forbidden. "
                "secretKnowledge is missing but required!",
            }
        }
        wrong = execute(client, vins[0], "DOOR_UNLOCK", bmwSkAnswer="Saxony")
        assert wrong.status_code == 500
        assert wrong.json() == {
            "error": {
                "code": 500,
                "description": "(SmartPhoneUtil-A-2014) Action is forbidden. secretKnowledge is wrong!",
            }
        }
        right = execute(client, vins[0], "DOOR_UNLOCK", bmwSkAnswer="Bavaria")
        assert right.status_code == 200 and right.json()["executionStatus"]["status"] == "INITIATED"
    logged = [record.form.get("bmwSkAnswer") for record in simulator.requests_to("executeService", "POST")]
    assert logged == [None, "***", "***"]


# -- charging over the clock --------------------------------------------------------------------------------


def test_charging_to_full(simulator: Simulator, api: httpx.Client) -> None:
    simulator.set_status(BEV, chargingLevelHv=40)
    simulator.plug_in(BEV)
    status = status_of(api, BEV)
    assert (status["chargingStatus"], status["connectionStatus"]) == ("CHARGING", "CONNECTED")
    assert status["chargingTimeRemaining"] == 60 and status["updateReason"] == "CHARGING_STARTED"
    simulator.advance(30 * 60)
    status = status_of(api, BEV)
    assert status["chargingLevelHv"] == 70 and status["chargingTimeRemaining"] == 30
    assert status["remainingRangeElectric"] == round(status["maxRangeElectric"] * 0.70)
    simulator.advance(45 * 60)
    status = status_of(api, BEV)
    assert status["chargingStatus"] == "FINISHED_FULLY_CHARGED" and status["chargingLevelHv"] == 100
    assert "chargingTimeRemaining" not in status
    assert (status["lastChargingEndReason"], status["lastChargingEndResult"]) == (
        "CHARGING_GOAL_REACHED",
        "SUCCESS",
    )
    assert status["connectionStatus"] == "CONNECTED"
    assert status["remainingRangeElectric"] == status["maxRangeElectric"]
    assert (
        datetime.strptime(status["updateTime"], "%Y-%m-%dT%H:%M:%S%z").timestamp() == T0 + 60 * 60
    )  # when full


def test_unplugging_stops_the_charge_not_full(simulator: Simulator, api: httpx.Client) -> None:
    simulator.set_status(BEV, chargingStatus="CHARGING", chargingLevelHv=50)
    assert status_of(api, BEV)["connectionStatus"] == "CONNECTED"
    simulator.advance(10 * 60)
    simulator.unplug(BEV)
    simulator.advance(60 * 60)
    status = status_of(api, BEV)
    assert status["chargingStatus"] == "FINISHED_NOT_FULL" and status["connectionStatus"] == "DISCONNECTED"
    assert status["lastChargingEndReason"] == "CONNECTOR_REMOVAL"
    assert status["chargingLevelHv"] == 60 and "chargingTimeRemaining" not in status


# -- POI ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["data", "body"])
def test_send_poi_lands_in_destinations(simulator: Simulator, api: httpx.Client, field: str) -> None:
    poi = {"lat": 48.1372, "lon": 11.5755, "name": "Marienplatz", "street": "Marienplatz 1"}
    poi |= {"city": "München", "postalCode": "80331", "country": "DE", "rating": -1}
    response = api.post(f"/{REX}/sendpoi", data={field: json.dumps({"poi": poi})})
    assert response.status_code == 204 and response.content == b""
    newest = api.get(f"/{REX}/destinations").json()["destinations"][0]
    assert (newest["lat"], newest["lon"], newest["city"]) == (48.1372, 11.5755, "München")
    assert newest["type"] == "DESTINATION" and CAR_TIME.match(newest["createdAt"])
    assert simulator.vehicle(REX).pois[-1]["name"] == "Marienplatz"


@pytest.mark.parametrize(
    "data", [json.dumps({"poi": {"name": "nowhere"}}), "not json", json.dumps({"lat": 1})]
)
def test_send_poi_without_coordinates_is_400(simulator: Simulator, api: httpx.Client, data: str) -> None:
    assert api.post(f"/{REX}/sendpoi", data={"data": data}).status_code == 400
    assert simulator.vehicle(REX).pois == []


# -- faults -------------------------------------------------------------------------------------------------


def test_error_fault_hits_matching_requests_the_given_number_of_times(
    simulator: Simulator, api: httpx.Client
) -> None:
    simulator.add_fault(Fault(path=r"/status$", kind="error", status=503, times=2))
    assert [api.get(f"/{BEV}/status").status_code for _ in range(3)] == [503, 503, 200]
    assert api.get(f"/{BEV}/destinations").status_code == 200


def test_fault_until_cleared_and_by_method(simulator: Simulator, api: httpx.Client) -> None:
    simulator.add_fault(Fault(path="executeService", kind="error", times=None, method="POST"))
    assert [execute(api, BEV, "LIGHT_FLASH").status_code for _ in range(3)] == [500, 500, 500]
    assert api.get(f"/{BEV}/executeService").status_code == 405  # a GET is not faulted
    simulator.clear_faults()
    assert execute(api, BEV, "LIGHT_FLASH").status_code == 200


def test_timeout_fault(simulator: Simulator, simulator_url: str, api: httpx.Client) -> None:
    simulator.add_fault(Fault(path="/status", kind="timeout", delay=0.5))
    with pytest.raises(httpx.ReadTimeout):
        api.get(f"/{BEV}/status", timeout=httpx.Timeout(5.0, read=0.05))
    simulator.add_fault(Fault(path="/status", kind="timeout", delay=0.01))
    assert api.get(f"/{BEV}/status").status_code == 504


def test_slow_fault_still_answers(simulator: Simulator, api: httpx.Client) -> None:
    simulator.add_fault(Fault(path="/status", kind="slow", delay=0.05))
    response = api.get(f"/{BEV}/status")
    assert response.status_code == 200 and response.json()["vehicleStatus"]["vin"] == BEV


def test_reset_fault_drops_the_connection(simulator: Simulator, api: httpx.Client) -> None:
    simulator.add_fault(Fault(path="/status", kind="reset"))
    with pytest.raises(httpx.TransportError):
        api.get(f"/{BEV}/status")
    assert simulator.requests_to("/status")[-1].status == 0
    assert api.get(f"/{BEV}/status").status_code == 200


@pytest.mark.parametrize("path", ["/status", "/sendpoi"])
def test_malformed_fault_truncates_the_json(simulator: Simulator, api: httpx.Client, path: str) -> None:
    simulator.add_fault(Fault(path=path, kind="malformed"))
    if path == "/sendpoi":
        response = api.post(f"/{BEV}{path}", data={"data": json.dumps({"poi": {"lat": 1.0, "lon": 2.0}})})
    else:
        response = api.get(f"/{BEV}{path}")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)


# -- request log --------------------------------------------------------------------------------------------


def test_request_log_is_redacted(simulator: Simulator, simulator_url: str) -> None:
    tokens = password_grant(simulator_url).json()
    token_request(simulator_url, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    with client_for(simulator_url, tokens["access_token"]) as client:
        client.get(f"/{BEV}/status")
    everything = repr(simulator.requests) + httpx.get(f"{simulator_url}/_sim/requests", verify=TLS).text
    for secret in (DEFAULT_PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in everything
    token_calls = simulator.requests_to("/oauth/token", "post")
    assert [(r.username, r.status, r.form.get("password")) for r in token_calls] == [
        (DEFAULT_USERNAME, 200, "***"),
        (DEFAULT_USERNAME, 200, None),
    ]
    status_call = simulator.requests_to("/status")[-1]
    assert (status_call.method, status_call.username, status_call.status, status_call.time) == (
        "GET",
        DEFAULT_USERNAME,
        200,
        T0,
    )
    assert not simulator.requests_to("/_sim/")  # the control surface is not API traffic


# -- /_sim/ control surface ---------------------------------------------------------------------------------


def test_control_surface(simulator: Simulator, simulator_url: str) -> None:
    with httpx.Client(base_url=f"{simulator_url}/_sim", verify=TLS) as control:
        state = control.get("/state").json()
        assert state["accounts"] == [
            {"username": DEFAULT_USERNAME, "has_security_answer": False, "vins": [BEV, REX]}
        ]
        assert DEFAULT_PASSWORD not in json.dumps(state)
        assert {car["vin"] for car in state["vehicles"]} == {BEV, REX}

        created = control.post("/accounts", json={"username": "new@example.com", "password": "pw-new-123"})
        assert created.status_code == 201 and len(created.json()["vins"]) == 2
        assert password_grant(simulator_url, "new@example.com", "pw-new-123").status_code == 200
        assert (
            control.post("/accounts", json={"username": "new@example.com", "password": "x"}).status_code
            == 409
        )
        assert control.post("/accounts", json={"username": "no-password@example.com"}).status_code == 400

        patched = control.patch(
            f"/vehicles/{REX}", json={"doorLockState": "UNLOCKED", "service_mode": "stuck"}
        )
        assert patched.status_code == 200 and patched.json()["status"]["doorLockState"] == "UNLOCKED"
        assert simulator.vehicle(REX).service_mode == "stuck"
        assert control.patch(f"/vehicles/{REX}", json={"service_mode": "sulking"}).status_code == 400
        assert control.patch("/vehicles/WBY00000000000000", json={}).status_code == 404
        not_an_object = control.patch(
            f"/vehicles/{REX}", content=b"[1, 2]", headers={"Content-Type": "application/json"}
        )
        assert not_an_object.status_code == 400

        plugged = control.post(f"/vehicles/{BEV}/plug", json={"charging": True}).json()["status"]
        assert plugged["chargingStatus"] == "CHARGING"
        assert control.post("/advance", json={"seconds": 600}).json()["now"] == T0 + 600
        assert control.post("/advance", json={"seconds": -1}).status_code == 400
        unplugged = control.post(f"/vehicles/{BEV}/unplug", json={}).json()["status"]
        assert (
            unplugged["chargingStatus"] == "FINISHED_NOT_FULL"
            and unplugged["connectionStatus"] == "DISCONNECTED"
        )

        tokens = password_grant(simulator_url).json()
        assert control.post("/tokens/expire", json={}).status_code == 200
        with client_for(simulator_url, tokens["access_token"]) as client:
            assert client.get("/").status_code == 401
        assert control.post("/tokens/revoke", json={}).status_code == 200
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        assert token_request(simulator_url, refresh).status_code == 401

        fault = control.post(
            "/faults", json={"path": "vehicles/$", "kind": "error", "status": 502, "times": None}
        )
        assert fault.status_code == 201 and fault.json()["times"] is None
        assert control.post("/faults", json={"path": "x", "kind": "gremlins"}).status_code == 400
        assert control.post("/faults", json={"path": "(", "kind": "error"}).status_code == 400
        token = password_grant(simulator_url).json()["access_token"]
        with client_for(simulator_url, token) as client:
            assert client.get("/").status_code == 502
            assert control.request("DELETE", "/faults", json={}).status_code == 200
            assert client.get("/").status_code == 200

        logged = control.get("/requests").json()["requests"]
        assert logged[-1]["path"] == "/webapi/v1/user/vehicles/" and logged[-1]["status"] == 200


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"seconds=600"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="seconds"\r\n\r\n600\r\n--x--\r\n',
        ),
        ("text/plain", b'{"seconds": 600}'),
        (None, b""),
    ],
)
def test_control_surface_takes_only_json(
    simulator: Simulator, simulator_url: str, content_type: str | None, body: bytes
) -> None:
    """What a cross-site page can send without a CORS preflight (a form post, a no-cors fetch) changes
    nothing: 415, the clock, the tokens and the car stay as they were."""
    headers = {"Content-Type": content_type} if content_type else {}
    simulator.plug_in(BEV, charging=False)
    tokens = password_grant(simulator_url).json()
    with httpx.Client(base_url=f"{simulator_url}/_sim", verify=TLS, headers=headers) as control:
        for path in ("/advance", "/tokens/revoke", f"/vehicles/{BEV}/unplug", "/accounts", "/faults"):
            refused = control.post(path, content=body)
            assert refused.status_code == 415, path
            assert "JSON" in refused.json()["error"]["description"]
        assert control.request("PATCH", f"/vehicles/{BEV}", content=body).status_code == 415
        assert control.request("DELETE", "/faults", content=body).status_code == 415
    assert simulator.now() == T0 and len(simulator.snapshot()["accounts"]) == 1
    assert simulator.vehicle(BEV).status["connectionStatus"] == "CONNECTED"
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert token_request(simulator_url, refresh).status_code == 200


async def test_in_process_with_the_real_clock() -> None:
    sim = Simulator(service_seconds=0)
    vins = sim.add_account("inproc@example.com", "pw-inproc-1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://sim") as client:
        form = {"grant_type": "password", "username": "inproc@example.com", "password": "pw-inproc-1"}
        token = await client.post(
            "/webapi/oauth/token/", data=form, auth=(DEFAULT_API_KEY, DEFAULT_API_SECRET)
        )
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        base = f"/webapi/v1/user/vehicles/{vins[0]}"
        assert (await client.post(f"{base}/executeService", data={"serviceType": "DOOR_LOCK"})).is_success
        status = (await client.get(f"{base}/serviceExecutionStatus?serviceType=DOOR_LOCK")).json()
        assert status["executionStatus"]["status"] == "EXECUTED"
        assert (await client.get(f"{base}/status")).json()["vehicleStatus"]["doorLockState"] == "LOCKED"
