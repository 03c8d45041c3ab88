"""The CarData simulator, driven over real loopback HTTP (httpx) and real MQTT over TLS (aiomqtt).

The simulator runs on a frozen clock here, so every timeline moves only by `advance()` and is exact.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest

from bot.cardata.models import keys as cd
from bot.cardata.simulator import (
    DAILY_QUOTA,
    DEFAULT_BEV_VIN,
    DEFAULT_CLIENT_ID,
    DEFAULT_GCID,
    DEFAULT_REX_VIN,
    DEFAULT_SECONDARY_VIN,
    SCOPE,
    CardataBroker,
    CardataSimulator,
    fleet,
    s256,
)
from bot.cardata.simulator.broker import CONNECTS_PER_IP_PER_MINUTE
from bot.cardata.simulator.oauth import DEVICE_GRANT
from bot.cardata.stream import tls_context
from bot.config import load_settings
from tests.support import waits
from tests.support.cardata import device_login

T0 = 1_767_268_800.0  # 2026-01-01T12:00:00Z: the next UTC day starts 12 h later
HOUR = 3600.0
Payload = dict[str, Any]
# The default account's cars streaming every change (iDrive 7 and later), for the tests of the stream itself.
LIVE = pytest.mark.parametrize("cardata_simulator", [{"kind": "live"}], indirect=True)


@pytest.fixture
def cardata_simulator(request: pytest.FixtureRequest) -> CardataSimulator:
    """Overrides the plugin's fixture with a frozen clock; `cardata_url` and `cardata_broker` serve it.
    Indirect parameters are constructor options, and "kind" that of the default account's cars (quiet
    unless said); a closed stream does not linger unless said (`stream_linger`)."""
    options = dict(getattr(request, "param", {}))
    kind = options.pop("kind", "quiet")
    options.setdefault("stream_linger", 0.0)
    sim = CardataSimulator(clock=lambda: T0, **options)
    sim.add_default_account(kind)
    return sim


def start_flow(url: str, client_id: str = DEFAULT_CLIENT_ID, **overrides: str) -> tuple[httpx.Response, str]:
    verifier = secrets.token_urlsafe(48)
    form = {
        "client_id": client_id,
        "response_type": "device_code",
        "scope": SCOPE,
        "code_challenge": s256(verifier),
        "code_challenge_method": "S256",
        **overrides,
    }
    return httpx.post(f"{url}/gcdm/oauth/device/code", data=form), verifier


def poll(url: str, device_code: str, verifier: str, client_id: str = DEFAULT_CLIENT_ID) -> httpx.Response:
    form = {
        "grant_type": DEVICE_GRANT,
        "device_code": device_code,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    return httpx.post(f"{url}/gcdm/oauth/token", data=form)


def refresh(url: str, refresh_token: str, client_id: str = DEFAULT_CLIENT_ID) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return httpx.post(f"{url}/gcdm/oauth/token", data=form)


def oauth_error(response: httpx.Response) -> str:
    assert response.status_code in (400, 401, 403), response.text
    error: str = response.json()["error"]
    return error


def control(url: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/_sim/{path}", json=body or {})


@pytest.fixture
def tokens(cardata_url: str, cardata_simulator: CardataSimulator) -> dict[str, Any]:
    return device_login(cardata_url, cardata_simulator)


@pytest.fixture
def api(cardata_url: str, tokens: dict[str, Any]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "x-version": "v1"}
    with httpx.Client(base_url=f"{cardata_url}/customers", headers=headers) as client:
        yield client


# -- OAuth: the device code flow --------------------------------------------------------------------------


def test_device_flow_with_pkce_gives_tokens_once_the_owner_approves(cardata_url: str) -> None:
    started, verifier = start_flow(cardata_url)
    assert started.status_code == 200
    flow = started.json()
    assert flow["interval"] == 5 and flow["expires_in"] == 300
    assert flow["verification_uri"].startswith(cardata_url)
    assert flow["verification_uri_complete"].endswith(f"?user_code={flow['user_code']}")
    assert oauth_error(poll(cardata_url, flow["device_code"], verifier)) == "authorization_pending"

    assert control(cardata_url, "approve", {"user_code": flow["user_code"]}).status_code == 200
    control(cardata_url, "advance", {"seconds": 5})
    answer = poll(cardata_url, flow["device_code"], verifier)

    assert answer.status_code == 200
    body = answer.json()
    assert body["gcid"] == DEFAULT_GCID and body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == set(SCOPE.split())
    header, claims, signature = body["id_token"].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded["sub"] == DEFAULT_GCID and decoded["exp"] == int(T0 + 5 + 3600)
    assert header and signature and body["access_token"] and body["refresh_token"]
    # a device code is good for one set of tokens
    assert oauth_error(poll(cardata_url, flow["device_code"], verifier)) == "invalid_grant"


def test_polling_faster_than_the_interval_answers_slow_down_and_widens_it(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    flow, verifier = start_flow(cardata_url)
    code = flow.json()["device_code"]
    assert oauth_error(poll(cardata_url, code, verifier)) == "authorization_pending"
    assert oauth_error(poll(cardata_url, code, verifier)) == "slow_down"
    cardata_simulator.advance(5)  # the old interval is no longer enough: 5 s were added
    assert oauth_error(poll(cardata_url, code, verifier)) == "slow_down"
    cardata_simulator.advance(15)
    assert oauth_error(poll(cardata_url, code, verifier)) == "authorization_pending"


def test_device_flow_answers_carry_the_status_of_bmws_spec(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    # BMW's device-flow spec v1.6: pending and denied are 403, an expired code 401, slow_down 400.
    flow, verifier = start_flow(cardata_url)
    code, user_code = flow.json()["device_code"], flow.json()["user_code"]
    pending = poll(cardata_url, code, verifier)
    assert (pending.status_code, oauth_error(pending)) == (403, "authorization_pending")
    slow = poll(cardata_url, code, verifier)
    assert (slow.status_code, oauth_error(slow)) == (400, "slow_down")
    cardata_simulator.decide(user_code, "denied")
    cardata_simulator.advance(10)
    denied = poll(cardata_url, code, verifier)
    assert (denied.status_code, oauth_error(denied)) == (403, "access_denied")

    late, late_verifier = start_flow(cardata_url)
    cardata_simulator.advance(300)
    expired = poll(cardata_url, late.json()["device_code"], late_verifier)
    assert (expired.status_code, oauth_error(expired)) == (401, "expired_token")


def test_a_wrong_code_verifier_is_refused_after_approval(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    flow, _ = start_flow(cardata_url)
    cardata_simulator.decide(flow.json()["user_code"], "approved")
    assert oauth_error(poll(cardata_url, flow.json()["device_code"], "not-the-verifier")) == "invalid_grant"


def test_a_denied_request_answers_access_denied(cardata_url: str) -> None:
    flow, verifier = start_flow(cardata_url)
    assert control(cardata_url, "deny", {"user_code": flow.json()["user_code"]}).status_code == 200
    assert oauth_error(poll(cardata_url, flow.json()["device_code"], verifier)) == "access_denied"


def test_an_expired_device_code_answers_expired_token(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    flow, verifier = start_flow(cardata_url)
    cardata_simulator.advance(300)
    assert oauth_error(poll(cardata_url, flow.json()["device_code"], verifier)) == "expired_token"
    assert control(cardata_url, "approve", {"user_code": flow.json()["user_code"]}).status_code == 404


def test_unknown_device_codes_and_other_clients_codes_answer_invalid_grant(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.add_account("other-client")
    flow, verifier = start_flow(cardata_url)
    assert oauth_error(poll(cardata_url, "no-such-code", verifier)) == "invalid_grant"
    assert (
        oauth_error(poll(cardata_url, flow.json()["device_code"], verifier, "other-client"))
        == "invalid_grant"
    )


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"client_id": "unknown"}, "invalid_client"),
        ({"response_type": "code"}, "unsupported_response_type"),
        ({"scope": "openid cardata:api:read vehicle.cabin.door.status"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
    ],
)
def test_device_code_requests_are_checked(cardata_url: str, overrides: dict[str, str], error: str) -> None:
    response, _ = start_flow(cardata_url, **overrides)
    assert oauth_error(response) == error


@pytest.mark.parametrize("cardata_simulator", [{"auto_approve_seconds": 10}], indirect=True)
def test_automatic_approval_after_n_seconds_for_the_demo(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    flow, verifier = start_flow(cardata_url)
    code = flow.json()["device_code"]
    assert oauth_error(poll(cardata_url, code, verifier)) == "authorization_pending"
    cardata_simulator.advance(10)
    assert poll(cardata_url, code, verifier).json()["gcid"] == DEFAULT_GCID


def test_refresh_renews_every_token_and_spends_the_old_refresh_token(
    cardata_url: str, cardata_simulator: CardataSimulator, tokens: dict[str, Any]
) -> None:
    cardata_simulator.advance(HOUR + 60)  # past the 1 h boundary: the access token is dead
    assert httpx.get(f"{cardata_url}/customers/vehicles/mappings", headers=bearer(tokens)).status_code == 401

    renewed = refresh(cardata_url, tokens["refresh_token"])
    assert renewed.status_code == 200
    fresh = renewed.json()
    assert fresh["gcid"] == DEFAULT_GCID
    for name in ("access_token", "id_token", "refresh_token"):
        assert fresh[name] != tokens[name]
    assert httpx.get(f"{cardata_url}/customers/vehicles/mappings", headers=bearer(fresh)).status_code == 200
    assert oauth_error(refresh(cardata_url, tokens["refresh_token"])) == "invalid_grant"
    assert oauth_error(refresh(cardata_url, fresh["refresh_token"], "another-client")) == "invalid_grant"


def test_a_refresh_token_lives_two_weeks(
    cardata_url: str, cardata_simulator: CardataSimulator, tokens: dict[str, Any]
) -> None:
    cardata_simulator.advance(14 * 86400)
    assert oauth_error(refresh(cardata_url, tokens["refresh_token"])) == "invalid_grant"


def test_revoked_refresh_tokens_are_refused(cardata_url: str, tokens: dict[str, Any]) -> None:
    assert control(cardata_url, "tokens/revoke", {"gcid": DEFAULT_GCID}).status_code == 200
    assert oauth_error(refresh(cardata_url, tokens["refresh_token"])) == "invalid_grant"


# -- REST -----------------------------------------------------------------------------------------------


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}", "x-version": "v1"}


def make_container(api: httpx.Client, name: str = "bot", keys: list[str] | None = None) -> str:
    body = {
        "name": name,
        "purpose": "status",
        "technicalDescriptors": keys or [cd.SOC_HEADER, cd.CHARGING_STATUS],
    }
    response = api.post("/containers", json=body)
    assert response.status_code == 201, response.text
    container_id: str = response.json()["containerId"]
    return container_id


def test_mappings_are_a_json_array_with_primary_and_secondary_cars(api: httpx.Client) -> None:
    response = api.get("/vehicles/mappings")
    assert response.status_code == 200
    by_vin = {m["vin"]: m["mappingType"] for m in response.json()}
    assert by_vin == {
        DEFAULT_BEV_VIN: "PRIMARY",
        DEFAULT_REX_VIN: "PRIMARY",
        DEFAULT_SECONDARY_VIN: "SECONDARY",
    }
    assert all(m["mappedSince"].endswith("Z") for m in response.json())


def test_rest_wants_x_version_and_a_valid_bearer(cardata_url: str, tokens: dict[str, Any]) -> None:
    url = f"{cardata_url}/customers/vehicles/mappings"
    missing_version = httpx.get(url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert missing_version.status_code == 400
    bad_token = httpx.get(url, headers={"Authorization": "Bearer nope", "x-version": "v1"})
    assert bad_token.status_code == 401
    assert set(bad_token.json()) == {"exveErrorId", "exveErrorMsg", "exveNote"}


def test_telematic_data_serves_the_containers_keys_as_strings_with_unit_and_time(api: httpx.Client) -> None:
    container = make_container(api, keys=[cd.SOC_HEADER, cd.CHARGING_STATUS, cd.DOOR_LOCK, "vehicle.x.y"])
    response = api.get(f"/vehicles/{DEFAULT_BEV_VIN}/telematicData", params={"containerId": container})
    assert response.status_code == 200
    data = response.json()["telematicData"]
    assert set(data) == {cd.SOC_HEADER, cd.CHARGING_STATUS, cd.DOOR_LOCK}  # no value, no key
    assert data[cd.SOC_HEADER]["value"] == "64" and data[cd.SOC_HEADER]["unit"] == "%"
    assert data[cd.CHARGING_STATUS]["value"] == "NOCHARGING"
    assert data[cd.SOC_HEADER]["timestamp"].endswith("Z")


def test_containers_are_listed_found_by_name_deleted_and_at_most_ten(api: httpx.Client) -> None:
    first = make_container(api, "bmw-i3-bot")
    listed = api.get("/containers").json()["containers"]
    assert [(c["containerId"], c["name"], c["state"]) for c in listed] == [(first, "bmw-i3-bot", "ACTIVE")]
    assert len(first) == 13 and first.isalnum()  # BMW's ids are 13 characters (Guide §3.4)
    for n in range(9):
        make_container(api, f"other-{n}")
    refused = api.post(
        "/containers", json={"name": "11th", "purpose": "p", "technicalDescriptors": [cd.SOC_HEADER]}
    )
    assert refused.status_code == 403 and refused.json()["exveErrorId"] == "CU-124"

    assert api.delete(f"/containers/{first}").status_code == 204
    assert api.get(f"/containers/{first}").json()["state"] == "DELETED"
    gone = api.get(f"/vehicles/{DEFAULT_BEV_VIN}/telematicData", params={"containerId": first})
    assert gone.status_code == 404
    make_container(api, "room-again")


def test_a_secondary_user_may_not_read_the_car(api: httpx.Client) -> None:
    container = make_container(api)
    response = api.get(f"/vehicles/{DEFAULT_SECONDARY_VIN}/telematicData", params={"containerId": container})
    assert response.status_code == 403 and response.json()["exveErrorId"] == "CU-104"
    unmapped = api.get("/vehicles/WBY00000000000000/basicData")
    assert unmapped.status_code == 403 and unmapped.json()["exveErrorId"] == "CU-104"


def test_a_container_with_an_unknown_key_is_refused_with_cu_402(api: httpx.Client) -> None:
    body = {"name": "bot", "purpose": "p", "technicalDescriptors": [cd.SOC_HEADER, "no.such.key"]}
    refused = api.post("/containers", json=body)
    assert refused.status_code == 400 and refused.json()["exveErrorId"] == "CU-402"


def test_basic_data_of_both_i3s(api: httpx.Client) -> None:
    bev = api.get(f"/vehicles/{DEFAULT_BEV_VIN}/basicData").json()
    rex = api.get(f"/vehicles/{DEFAULT_REX_VIN}/basicData").json()
    assert (bev["brand"], bev["modelName"], bev["propulsionType"]) == ("BMWi", "i3 120Ah", "BEV")
    assert (rex["brand"], rex["modelName"]) == ("BMWi", "i3 94 (+REX)")
    assert isinstance(bev["hvsMaxEnergyAbsolute"], str) and float(bev["hvsMaxEnergyAbsolute"]) > 0


@LIVE
def test_charging_history_lists_past_and_new_charges_page_by_page(
    api: httpx.Client, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    cardata_simulator.advance(16 * 60)  # 64 % -> 80 %, the target
    sessions: list[Payload] = []
    params: dict[str, str] = {"from": "2025-12-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    while True:
        page = api.get(f"/vehicles/{DEFAULT_BEV_VIN}/chargingHistory", params=params).json()
        sessions += page["data"]
        if not page["next_token"]:
            break
        params["nextToken"] = page["next_token"]
    assert len(sessions) == 4
    last = sessions[-1]
    assert (last["startTime"], last["endTime"]) == (int(T0), int(T0 + 16 * 60))
    assert (last["displayedStartSoc"], last["displayedSoc"]) == (64, 80)
    assert last["totalChargingDurationSec"] == 960 and last["energyConsumedFromPowerGridKwh"] > 0
    # mileage is a required integer in BMW's spec, with its unit
    assert all(type(s["mileage"]) is int and s["mileageUnits"] == "KM" for s in sessions), sessions
    assert last["mileage"] == int(cardata_simulator.value(DEFAULT_BEV_VIN, cd.MILEAGE) or 0)


def test_a_running_charge_is_listed_without_an_end_time(
    api: httpx.Client, cardata_simulator: CardataSimulator
) -> None:
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    cardata_simulator.advance(5 * 60)
    page = api.get(f"/vehicles/{DEFAULT_BEV_VIN}/chargingHistory", params={"from": str(int(T0 - 60))}).json()
    assert len(page["data"]) == 1
    running = page["data"][0]
    assert "endTime" not in running and running["startTime"] == int(T0)
    assert (running["displayedStartSoc"], running["displayedSoc"]) == (64, 69)
    assert running["totalChargingDurationSec"] == 300 and type(running["mileage"]) is int


def test_the_51st_call_of_a_day_answers_cu_429_until_the_next_day(
    cardata_url: str, cardata_simulator: CardataSimulator, tokens: dict[str, Any]
) -> None:
    url = f"{cardata_url}/customers/vehicles/mappings"
    for _ in range(DAILY_QUOTA):
        assert httpx.get(url, headers=bearer(tokens)).status_code == 200
    refused = httpx.get(url, headers=bearer(tokens))
    assert refused.status_code == 403 and refused.json()["exveErrorId"] == "CU-429"

    cardata_simulator.advance(12 * HOUR - 60)  # 23:59 UTC, still the same day
    fresh = refresh(cardata_url, tokens["refresh_token"]).json()  # the OAuth host is not metered
    assert httpx.get(url, headers=bearer(fresh)).json()["exveErrorId"] == "CU-429"
    cardata_simulator.advance(60)  # 00:00 UTC
    assert httpx.get(url, headers=bearer(fresh)).status_code == 200


def test_the_control_surface_spends_the_quota(cardata_url: str, api: httpx.Client) -> None:
    answer = control(cardata_url, "quota/spend", {"gcid": DEFAULT_GCID})
    assert answer.json()["calls_left"] == 0
    assert api.get("/vehicles/mappings").json()["exveErrorId"] == "CU-429"


# -- the control surface ---------------------------------------------------------------------------------


def test_the_control_surface_takes_json_only(cardata_url: str) -> None:
    form = httpx.post(f"{cardata_url}/_sim/advance", data={"seconds": "5"})
    assert form.status_code == 415
    text = httpx.post(f"{cardata_url}/_sim/advance", content=b'{"seconds": 5}')
    assert text.status_code == 415
    assert control(cardata_url, "advance", {"seconds": "five"}).status_code == 400
    assert control(cardata_url, "advance", {"seconds": 5}).json() == {"now": T0 + 5}


async def test_the_control_surface_answers_loopback_only(cardata_simulator: CardataSimulator) -> None:
    transport = httpx.ASGITransport(cardata_simulator.app, client=("192.0.2.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        assert (await client.post("/_sim/advance", json={"seconds": 5})).status_code == 403
        assert (await client.get("/_sim/state")).status_code == 403


def test_control_of_an_unknown_car_is_404_and_of_a_car_not_charging_400(cardata_url: str) -> None:
    assert control(cardata_url, "vehicles/WBY00000000000000/plug").status_code == 404
    assert control(cardata_url, "vehicles/" + DEFAULT_BEV_VIN + "/finish").status_code == 400


def test_a_cars_kind_is_set_by_the_control_surface_and_decides_its_keys(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    quiet = cardata_simulator.vehicle_view(DEFAULT_BEV_VIN)
    assert quiet["kind"] == "quiet" and quiet["target"] == 100  # an i3 has no charge target
    assert cd.HVPM_FINISH_REASON in quiet["values"]
    assert not {cd.SOC_TARGET, cd.HV_STATUS, cd.REASON_CHARGING_END} & set(quiet["values"])
    with_target = {"soc": 50, "target": 90}
    assert control(cardata_url, f"vehicles/{DEFAULT_BEV_VIN}/soc", with_target).status_code == 400

    live = control(cardata_url, f"vehicles/{DEFAULT_BEV_VIN}/kind", {"kind": "live"})
    assert live.status_code == 200 and live.json()["kind"] == "live" and live.json()["target"] == 80
    assert live.json()["values"][cd.SOC_TARGET] == "80" and cd.HV_STATUS in live.json()["values"]
    assert live.json()["values"][cd.REASON_CHARGING_END] == "HV_BATTERY_FULLY_CHARGED"
    assert cd.HVPM_FINISH_REASON not in live.json()["values"]
    assert control(cardata_url, f"vehicles/{DEFAULT_BEV_VIN}/kind", {"kind": "loud"}).status_code == 400

    added = control(cardata_url, "accounts", {"client_id": "c-2", "kind": "live"})
    assert all(cardata_simulator.car(vin).kind == "live" for vin in added.json()["vins"])
    assert control(cardata_url, "accounts", {"client_id": "c-3", "kind": "loud"}).status_code == 400


def test_accounts_are_added_with_their_client_id(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    added = control(cardata_url, "accounts", {"client_id": "c-2", "gcid": "g-2"})
    assert added.status_code == 201 and len(added.json()["vins"]) == 2
    assert control(cardata_url, "accounts", {"client_id": "c-2", "gcid": "g-3"}).status_code == 409
    assert device_login(cardata_url, cardata_simulator, "c-2")["gcid"] == "g-2"


# -- the MQTT stream --------------------------------------------------------------------------------------


def mqtt_client(
    broker: CardataBroker, tls: ssl.SSLContext, password: str, gcid: str = DEFAULT_GCID
) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", broker.port, username=gcid, password=password, tls_context=tls, keepalive=30
    )


async def topics_until(
    client: aiomqtt.Client, done: Callable[[list[Payload]], bool]
) -> list[tuple[str, Payload]]:
    """(MQTT topic, payload) of each message until `done(payloads)`; a guard ends a test that would hang."""
    seen: list[tuple[str, Payload]] = []
    async with asyncio.timeout(20):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            seen.append((str(message.topic), json.loads(message.payload)))
            if done([payload for _, payload in seen]):
                return seen
    raise AssertionError("the stream ended")


async def until(client: aiomqtt.Client, done: Callable[[list[Payload]], bool]) -> list[Payload]:
    """Stream payloads until `done(seen)`."""
    return [payload for _, payload in await topics_until(client, done)]


def values(seen: list[Payload], key: str) -> list[str]:
    return [p["data"][key]["value"] for p in seen if key in p["data"]]


def has(key: str, value: str) -> Callable[[list[Payload]], bool]:
    return lambda seen: value in values(seen, key)


async def dropped(client: aiomqtt.Client) -> bool:
    """Whether the broker ends this connection (messages stop with an error)."""
    try:
        async with asyncio.timeout(20):
            async for _ in client.messages:
                pass
    except aiomqtt.MqttError:
        return True
    return False


@LIVE
async def test_the_stream_publishes_a_charge_as_it_happens(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        cardata_simulator.plug_in(DEFAULT_BEV_VIN)
        seen = await until(client, has(cd.CHARGING_STATUS, "CHARGINGACTIVE"))
        seen += await until(client, has(cd.TIME_REMAINING, "16"))
        assert values(seen, cd.PORT_STATUS) == ["CONNECTED"]
        message = seen[0]
        assert message["vin"] == DEFAULT_BEV_VIN and message["entityId"] == DEFAULT_GCID
        assert len(message["data"]) == 1  # one key per message
        (entry,) = message["data"].values()
        assert isinstance(entry["value"], str)

        cardata_simulator.advance(60)
        seen = await until(client, has(cd.SOC_HEADER, "65"))
        soc = {"timestamp": "2026-01-01T12:01:00Z", "value": "65", "unit": "%"}
        assert seen[-1]["data"][cd.SOC_HEADER] == soc

        cardata_simulator.advance(15 * 60)
        seen = await until(client, has(cd.HV_STATUS, "FINISHED_FULLY_CHARGED"))
        assert values(seen, cd.CHARGING_STATUS) == ["CHARGINGENDED"]
        assert values(seen, cd.SOC_HEADER)[-1] == "80"
        # the end reason in BMW's SP25 values, in reasonChargingEnd only
        assert values(seen, cd.REASON_CHARGING_END) == ["HV_BATTERY_FULLY_CHARGED"]
        assert not values(seen, cd.HVPM_FINISH_REASON)


async def burst(
    client: aiomqtt.Client, sim: CardataSimulator, vin: str
) -> tuple[list[Payload], dict[str, Payload]]:
    """The messages up to the end of a burst of `vin` (one message for each key it streams), and that
    burst's entries by key."""
    size = len([k for k in sim.car(vin).values if k not in fleet.REST_ONLY_KEYS])
    seen = await until(client, lambda s: sum(p["vin"] == vin for p in s) == size)
    mine = [p for p in seen if p["vin"] == vin]
    assert all(len(p["data"]) == 1 for p in mine)  # one key per message
    entries = {k: v for p in mine for k, v in p["data"].items()}
    assert len(entries) == size  # each key once
    return seen, entries


async def sentinel(client: aiomqtt.Client, sim: CardataSimulator) -> list[Payload]:
    """What the stream holds up to a burst of the REX switched off now: the messages published before it
    come first, so a car that stays silent sent nothing before the REX's burst."""
    sim.switch_off(DEFAULT_REX_VIN)
    seen, _ = await burst(client, sim, DEFAULT_REX_VIN)
    return seen


async def test_a_quiet_car_is_silent_while_charging_and_bursts_when_full(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        cardata_simulator.plug_in(DEFAULT_BEV_VIN)  # an i3 (iDrive 6): quiet by default
        cardata_simulator.advance(20 * 60)  # 64 % -> 84 %, past the 80 % a live car would stop at
        assert cardata_simulator.value(DEFAULT_BEV_VIN, cd.SOC_HEADER) == "84"
        before = await sentinel(client, cardata_simulator)
        assert [p for p in before if p["vin"] == DEFAULT_BEV_VIN] == []  # nothing while charging

        cardata_simulator.advance(16 * 60)  # 100 %: the end of the charge comes as one burst
        seen, entries = await burst(client, cardata_simulator, DEFAULT_BEV_VIN)
        reported = {k: v["value"] for k, v in entries.items()}
        assert reported[cd.CHARGING_STATUS] == "CHARGINGENDED" and reported[cd.SOC_HEADER] == "100"
        assert reported[cd.HVPM_FINISH_REASON] == "CHARGING_GOAL_REACHED"
        assert reported[cd.PORT_STATUS] == "CONNECTED" and reported[cd.DOOR_STATUS] == "SECURED"
        assert {v["timestamp"] for v in entries.values()} == {"2026-01-01T12:36:00Z"}  # all as of the burst
        # no charge target, no hvStatus, no reasonChargingEnd, never CHARGINGACTIVE
        assert not {cd.SOC_TARGET, cd.HV_STATUS, cd.REASON_CHARGING_END} & set(entries)
        assert "CHARGINGACTIVE" not in values(before + seen, cd.CHARGING_STATUS)


async def test_a_quiet_car_stopped_short_reports_at_the_next_switch_off(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        cardata_simulator.plug_in(DEFAULT_BEV_VIN)
        cardata_simulator.advance(10 * 60)
        cardata_simulator.finish_charging(DEFAULT_BEV_VIN)  # the owner stops it at 74 %
        cardata_simulator.unplug(DEFAULT_BEV_VIN)
        cardata_simulator.move(DEFAULT_BEV_VIN, 48.2, 11.6)
        before = await sentinel(client, cardata_simulator)
        assert [p for p in before if p["vin"] == DEFAULT_BEV_VIN] == []

        cardata_simulator.switch_off(DEFAULT_BEV_VIN)
        _, entries = await burst(client, cardata_simulator, DEFAULT_BEV_VIN)
        reported = {k: v["value"] for k, v in entries.items()}
        assert reported[cd.CHARGING_STATUS] == "NOCHARGING" and reported[cd.SOC_HEADER] == "74"
        assert reported[cd.HVPM_FINISH_REASON] == "END_REQUESTED_BY_DRIVER"
        assert reported[cd.PORT_STATUS] == "DISCONNECTED" and reported[cd.LATITUDE] == "48.200000"


@LIVE
async def test_messages_have_bmws_shape_door_values_and_window_keys(
    cardata_url: str,
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        cardata_simulator.advance(0.25)  # a time with a fraction: values in whole seconds, the envelope not
        cardata_simulator.move(DEFAULT_REX_VIN, 48.1, 11.5)
        vin = DEFAULT_BEV_VIN
        selective = control(cardata_url, f"vehicles/{vin}/lock", {"state": "SELECTIVELOCKED"})
        assert selective.json()["values"][cd.DOOR_LOCK] == "SELECTIVE-LOCKED"  # REST's own word
        assert control(cardata_url, f"vehicles/{vin}/lock", {"state": "OPEN"}).status_code == 400
        window = {"window": "row1.driver", "state": "OPEN"}
        assert control(cardata_url, f"vehicles/{vin}/window", window).status_code == 200
        assert control(cardata_url, f"vehicles/{vin}/lock", {"state": "LOCKED"}).status_code == 200
        seen = await topics_until(client, has(cd.DOOR_STATUS, "LOCKED"))
    payloads = [payload for _, payload in seen]
    for topic, payload in seen:
        assert topic == f"{DEFAULT_GCID}/{payload['vin']}"  # the MQTT topic is gcid/VIN
        assert payload["topic"] == payload["vin"] and payload["entityId"] == DEFAULT_GCID
        assert payload["timestamp"].endswith(".250Z")
        (entry,) = payload["data"].values()
        assert entry["timestamp"] == "2026-01-01T12:00:00Z" or entry["timestamp"] == "2026-01-01T12:00:01Z"
    mileage = next(p["data"][cd.MILEAGE] for p in payloads if cd.MILEAGE in p["data"])
    assert "unit" not in mileage and int(mileage["value"]) > 41268  # no unit: BMW sends none for it
    latitude = next(p["data"][cd.LATITUDE] for p in payloads if cd.LATITUDE in p["data"])
    assert latitude["unit"] == "degrees"
    assert values(payloads, cd.DOOR_STATUS) == ["SELECTIVELOCKED", "LOCKED"]
    assert values(payloads, "vehicle.cabin.window.row1.driver.status") == ["OPEN"]


@LIVE
async def test_a_flapping_charge_pauses_and_resumes(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    cardata_simulator.plug_in(DEFAULT_BEV_VIN)
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/{DEFAULT_BEV_VIN}")
        assert control_flap(cardata_simulator)
        seen = await until(client, has(cd.CHARGING_STATUS, "CHARGINGPAUSED"))
        cardata_simulator.advance(5)
        seen += await until(client, has(cd.CHARGING_STATUS, "CHARGINGACTIVE"))
        assert values(seen, cd.CHARGING_STATUS) == ["CHARGINGPAUSED", "CHARGINGACTIVE"]


def control_flap(sim: CardataSimulator) -> bool:
    sim.flap(DEFAULT_BEV_VIN, 5)
    return sim.value(DEFAULT_BEV_VIN, cd.CHARGING_STATUS) == "CHARGINGPAUSED"


@LIVE
async def test_position_comes_as_two_messages_and_locks_stream(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        cardata_simulator.move(DEFAULT_REX_VIN, 48.1, 11.5, heading=90)
        cardata_simulator.set_locked(DEFAULT_REX_VIN, False)
        seen = await until(client, has(cd.DOOR_STATUS, "UNLOCKED"))
        lat = next(p for p in seen if cd.LATITUDE in p["data"])
        lon = next(p for p in seen if cd.LONGITUDE in p["data"])
        assert lat is not lon and lat["data"][cd.LATITUDE]["value"] == "48.100000"
        assert (
            lon["timestamp"] == "2026-01-01T12:00:01.000Z" and lat["timestamp"] == "2026-01-01T12:00:00.000Z"
        )
        assert int(values(seen, cd.MILEAGE)[0]) > 41268
        assert cd.DOOR_LOCK not in {k for p in seen for k in p["data"]}  # REST only


async def test_the_broker_wants_the_gcid_and_a_valid_id_token(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    with pytest.raises(aiomqtt.MqttCodeError) as wrong_password:
        async with mqtt_client(cardata_broker, cardata_tls, "not-a-token"):
            pass
    assert str(wrong_password.value.rc) == "Bad user name or password"  # CONNACK 4, as BMW's
    cardata_simulator.add_account("c-2", "g-2")
    with pytest.raises(aiomqtt.MqttCodeError) as other_gcid:
        async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"], gcid="g-2"):
            pass
    assert str(other_gcid.value.rc) == "Bad user name or password"
    cardata_simulator.expire_tokens(DEFAULT_GCID)
    with pytest.raises(aiomqtt.MqttCodeError) as expired:
        async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]):
            pass
    assert str(expired.value.rc) == "Bad user name or password"
    refused = [r.status for r in cardata_simulator.requests_to("mqtt", "CONNECT")]
    assert refused == [4, 4, 4]


async def test_plain_tcp_is_not_the_tls_port(cardata_broker: CardataBroker, tokens: Payload) -> None:
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "127.0.0.1", cardata_broker.port, username=DEFAULT_GCID, password=tokens["id_token"], timeout=5
        ):
            pass


def test_a_broker_that_does_not_stop_says_so(cardata_simulator: CardataSimulator) -> None:
    """Its thread is joined for a bounded time only; one that is still running fails loudly, not silently."""
    broker = CardataBroker(cardata_simulator, tls=False).start()
    pumping, release = threading.Event(), threading.Event()

    def stuck() -> list[Any]:  # the broker's event loop hangs in its pump
        pumping.set()
        release.wait(30)
        return []

    cardata_simulator.drain_messages = stuck  # type: ignore[method-assign]
    try:
        assert pumping.wait(10)
        with pytest.raises(RuntimeError, match=rf"MQTT broker on {broker.url} did not stop within 0\.5 s"):
            broker.stop(timeout=0.5)
    finally:
        release.set()


@LIVE
async def test_clients_may_subscribe_to_their_own_gcid_only_and_publish_nothing(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        granted = [getattr(code, "value", code) for code in await client.subscribe(f"{DEFAULT_GCID}/+")]
        assert granted == [0]
        for topic in ("#", "other-gcid/+", f"{DEFAULT_GCID}/#", f"{DEFAULT_GCID}/{DEFAULT_SECONDARY_VIN}"):
            codes = [getattr(code, "value", code) for code in await client.subscribe(topic)]
            assert codes == [128], topic
        await client.publish(f"{DEFAULT_GCID}/{DEFAULT_BEV_VIN}", b'{"forged": true}')
        cardata_simulator.set_locked(DEFAULT_BEV_VIN, False)
        seen = await until(client, has(cd.DOOR_STATUS, "UNLOCKED"))
        assert all("forged" not in p for p in seen)


NOT_AUTHORIZED = "Not authorized"  # CONNACK 5 (paho's name)


async def refused_with(broker: CardataBroker, tls: ssl.SSLContext, password: str) -> str | None:
    """Why a connection attempt is refused (the CONNACK code's name); None if it was accepted."""
    try:
        async with mqtt_client(broker, tls, password):
            return None
    except aiomqtt.MqttCodeError as exc:
        return str(exc.rc)


@pytest.mark.parametrize("cardata_simulator", [{"kind": "live", "stream_linger": 60.0}], indirect=True)
async def test_a_second_connection_of_a_gcid_is_refused_while_the_first_streams_on(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    """BMW's broker allows one stream per gcid: a second is refused with CONNACK 5 (the first is not dropped),
    and so is one within the few seconds the closed stream still counts."""
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as first:
        await first.subscribe(f"{DEFAULT_GCID}/+")
        assert await refused_with(cardata_broker, cardata_tls, tokens["id_token"]) == NOT_AUTHORIZED
        cardata_simulator.set_locked(DEFAULT_BEV_VIN, False)
        await until(first, has(cd.DOOR_STATUS, "UNLOCKED"))  # the first streams on
        assert cardata_broker.connected_gcids() == {DEFAULT_GCID}
    # closed, it still counts:
    assert await refused_with(cardata_broker, cardata_tls, tokens["id_token"]) == NOT_AUTHORIZED
    cardata_simulator.advance(60)
    assert await refused_with(cardata_broker, cardata_tls, tokens["id_token"]) is None
    codes = [r.status for r in cardata_simulator.requests_to("mqtt", "CONNECT")]
    assert codes == [0, 5, 5, 0]


@pytest.mark.parametrize("cardata_simulator", [{"stream_linger": 60.0}], indirect=True)
async def test_another_app_holds_the_stream_until_it_lets_go(
    cardata_url: str,
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        assert control(cardata_url, "stream/hold", {"gcid": DEFAULT_GCID}).status_code == 200
        assert await dropped(client)  # the other app took the stream as ours ended
    cardata_simulator.advance(60)
    # held, not lingering:
    assert await refused_with(cardata_broker, cardata_tls, tokens["id_token"]) == NOT_AUTHORIZED
    assert control(cardata_url, "stream/release", {"gcid": DEFAULT_GCID}).status_code == 200
    # its session lingers:
    assert await refused_with(cardata_broker, cardata_tls, tokens["id_token"]) == NOT_AUTHORIZED
    cardata_simulator.advance(60)
    assert await refused_with(cardata_broker, cardata_tls, tokens["id_token"]) is None
    assert control(cardata_url, "stream/hold", {}).status_code == 400  # which gcid


@LIVE
async def test_a_stream_not_configured_in_the_portal_refuses_the_subscription_and_leaves_the_socket_open(
    cardata_url: str,
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    """BMW answers SUBACK 0x80 when the stream is not set up in the portal (no keys ticked under "Configure
    data stream", or the client not subscribed to "CarData Stream"); the connection stays, silent."""
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        assert control(cardata_url, "stream/unconfigure", {"gcid": DEFAULT_GCID}).status_code == 200
        assert await dropped(client)  # the owner unticked the stream: ours ends
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        refused = [getattr(code, "value", code) for code in await client.subscribe(f"{DEFAULT_GCID}/+")]
        assert refused == [0x80]
        assert cardata_broker.connected_gcids() == {DEFAULT_GCID}  # connected, yet nothing will come
        assert control(cardata_url, "stream/configure", {"gcid": DEFAULT_GCID}).status_code == 200
        granted = [getattr(code, "value", code) for code in await client.subscribe(f"{DEFAULT_GCID}/+")]
        assert granted == [0]
        cardata_simulator.set_locked(DEFAULT_BEV_VIN, False)
        await until(client, has(cd.DOOR_STATUS, "UNLOCKED"))
    codes = [r.status for r in cardata_simulator.requests_to("mqtt", "SUBSCRIBE")]
    assert codes == [0, 0x80, 0]
    assert control(cardata_url, "stream/unconfigure", {}).status_code == 400  # which gcid


async def test_connection_attempts_over_the_per_ip_limit_are_refused_with_connack_3(
    cardata_simulator: CardataSimulator, tokens: Payload
) -> None:
    with CardataBroker(cardata_simulator, connects_per_minute=2) as broker:
        tls = ssl.create_default_context(cafile=str(broker.ca_file))
        assert await refused_with(broker, tls, "not-a-token") == "Bad user name or password"  # counts too
        assert await refused_with(broker, tls, tokens["id_token"]) is None
        # the third within the minute:
        assert await refused_with(broker, tls, tokens["id_token"]) == "Server unavailable"
        cardata_simulator.advance(60)  # a new minute
        assert await refused_with(broker, tls, tokens["id_token"]) is None
    codes = [r.status for r in cardata_simulator.requests_to("mqtt", "CONNECT")]
    assert codes == [4, 0, 3, 0]
    assert load_settings().cardata_connects_per_minute < CONNECTS_PER_IP_PER_MINUTE  # the bot keeps under it


async def test_the_broker_speaks_tls_1_3_only(cardata_broker: CardataBroker, tokens: Payload) -> None:
    """BMW requires TLS 1.3 (since 2026): a client capped at 1.2 gets no connection; the bot's does."""
    old = ssl.create_default_context(cafile=str(cardata_broker.ca_file))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(cardata_broker, old, tokens["id_token"]):
            pass
    assert await refused_with(cardata_broker, tls_context(cardata_broker.ca_file), tokens["id_token"]) is None


@LIVE
async def test_the_connection_drops_when_its_id_token_expires(
    cardata_url: str,
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        cardata_simulator.advance(HOUR - 1)
        cardata_simulator.set_locked(DEFAULT_BEV_VIN, False)
        await until(client, has(cd.DOOR_STATUS, "UNLOCKED"))  # still connected a second before
        cardata_simulator.advance(1)
        assert await dropped(client)
    with pytest.raises(aiomqtt.MqttCodeError):
        async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]):
            pass
    fresh = refresh(cardata_url, tokens["refresh_token"]).json()
    async with mqtt_client(cardata_broker, cardata_tls, fresh["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")


async def test_the_control_surface_drops_connections_and_expires_tokens(
    cardata_url: str, cardata_broker: CardataBroker, cardata_tls: ssl.SSLContext, tokens: Payload
) -> None:
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        assert control(cardata_url, "connections/drop", {"gcid": DEFAULT_GCID}).status_code == 200
        assert await dropped(client)
    async with mqtt_client(
        cardata_broker, cardata_tls, tokens["id_token"]
    ) as client:  # the token still works
        await client.subscribe(f"{DEFAULT_GCID}/+")
        assert control(cardata_url, "tokens/expire", {"gcid": DEFAULT_GCID}).status_code == 200
        assert await dropped(client)


# -- the command line ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def cardata_process(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """`python -m bot simulator --backend cardata` on free ports, plus the options given as indirect
    parameter; yields the settings it printed."""
    args = ["simulator", "--backend", "cardata", "--port", str(free_port()), "--mqtt-port", str(free_port())]
    args += getattr(request, "param", [])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CARDATA_", "LOG_"))},
        "PYTHONPATH": str(Path(__file__).parents[2]),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        printed: dict[str, str] = {}
        for line in process.stdout:
            name, sep, value = line.strip().partition("=")
            if sep and name.startswith("CARDATA_"):
                printed[name] = value
            if name == "CARDATA_CA_FILE":
                break
        yield printed
    finally:
        process.terminate()
        process.wait(10)


def approved_login(api_url: str) -> Payload:
    """The device flow approved through the control surface, then one REST call with its tokens."""
    flow, verifier = start_flow(api_url)
    approved = control(api_url, "approve", {"user_code": flow.json()["user_code"]})
    assert approved.status_code == 200
    tokens: Payload = poll(api_url, flow.json()["device_code"], verifier).json()
    mappings = httpx.get(f"{api_url}/customers/vehicles/mappings", headers=bearer(tokens))
    assert DEFAULT_BEV_VIN in {m["vin"] for m in mappings.json()}
    return tokens


async def test_the_command_line_serves_oauth_rest_and_a_tls_broker(cardata_process: dict[str, str]) -> None:
    auth, api_url = cardata_process["CARDATA_AUTH_URL"], cardata_process["CARDATA_API_URL"]
    assert auth == f"{api_url}/gcdm/oauth" and api_url.startswith("http://127.0.0.1:")
    mqtt_url = cardata_process["CARDATA_MQTT_URL"]
    assert mqtt_url.startswith("mqtts://127.0.0.1:")

    tokens = approved_login(api_url)

    tls = ssl.create_default_context(cafile=cardata_process["CARDATA_CA_FILE"])
    port = int(mqtt_url.rsplit(":", 1)[1])
    async with aiomqtt.Client(
        "127.0.0.1", port, username=tokens["gcid"], password=tokens["id_token"], tls_context=tls
    ) as client:
        await client.subscribe(f"{tokens['gcid']}/+")
        assert control(api_url, f"vehicles/{DEFAULT_BEV_VIN}/plug").json()["kind"] == "quiet"
        assert control(api_url, f"vehicles/{DEFAULT_BEV_VIN}/switch-off").status_code == 200
        await until(client, has(cd.CHARGING_STATUS, "CHARGINGACTIVE"))  # in the burst at switch-off


@pytest.mark.parametrize("cardata_process", [["--mqtt-connects-per-minute", "1"]], indirect=True)
async def test_the_command_line_sets_the_per_ip_connection_limit(cardata_process: dict[str, str]) -> None:
    tokens = approved_login(cardata_process["CARDATA_API_URL"])
    tls = ssl.create_default_context(cafile=cardata_process["CARDATA_CA_FILE"])
    port = int(cardata_process["CARDATA_MQTT_URL"].rsplit(":", 1)[1])

    def client() -> aiomqtt.Client:
        return aiomqtt.Client(
            "127.0.0.1", port, username=tokens["gcid"], password=tokens["id_token"], tls_context=tls
        )

    async with client():
        pass
    with pytest.raises(aiomqtt.MqttError):  # the second attempt within the minute
        async with client():
            pass


def test_faults_fail_matching_requests_then_wear_off(cardata_url: str, api: httpx.Client) -> None:
    fault = {"path": "/mappings$", "kind": "error", "status": 503, "times": 1}
    assert control(cardata_url, "faults", fault).status_code == 201
    failed = api.get("/vehicles/mappings")
    assert failed.status_code == 503 and failed.json()["exveErrorId"] == "CU-503"
    assert api.get("/vehicles/mappings").status_code == 200

    assert (
        control(cardata_url, "faults", {"path": "/token$", "kind": "error", "times": None}).status_code == 201
    )
    refused = httpx.post(f"{cardata_url}/gcdm/oauth/token", data={"grant_type": "refresh_token"})
    assert refused.status_code == 500
    assert httpx.delete(f"{cardata_url}/_sim/faults").status_code == 200
    assert oauth_error(httpx.post(f"{cardata_url}/gcdm/oauth/token", data={"grant_type": "refresh_token"}))
    assert control(cardata_url, "faults", {"path": "x", "kind": "reset"}).status_code == 400


async def test_the_broker_notes_what_it_published_while_the_account_had_no_stream(
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
    cardata_simulator: CardataSimulator,
    tokens: Payload,
) -> None:
    """BMW streams at QoS 0: a car's message published while its account has no subscribed connection is
    lost. The simulator's broker notes which (a soak tells by them the charge ends no bot could have seen)."""
    cardata_simulator.switch_off(DEFAULT_BEV_VIN)  # nobody listens yet
    size = len([k for k in cardata_simulator.car(DEFAULT_BEV_VIN).values if k not in fleet.REST_ONLY_KEYS])
    await waits.until(lambda: len(cardata_broker.unheard) == size, "the unheard burst noted")
    assert {m.vin for m in cardata_broker.unheard} == {DEFAULT_BEV_VIN}
    async with mqtt_client(cardata_broker, cardata_tls, tokens["id_token"]) as client:
        await client.subscribe(f"{DEFAULT_GCID}/+")
        await sentinel(client, cardata_simulator)  # the REX's burst, heard
    assert {m.vin for m in cardata_broker.unheard} == {DEFAULT_BEV_VIN}
