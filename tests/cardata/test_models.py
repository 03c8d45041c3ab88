"""CarData's documented shapes become typed, tolerant models; any JSON becomes a model or BadResponse.

Bodies follow the shapes BMW documents (strings with a unit and an ISO timestamp; the mappings endpoint that
answers an array although its spec says object). Hypothesis then feeds every parser arbitrary JSON, and the
documented envelopes with arbitrary content, as tests/test_properties.py does for the i Remote models.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cardata import models as m
from bot.cardata.errors import BadResponse

NOW = 1_760_000_000.0
VIN = "WBY1Z21000V300001"
STAMP = "2025-10-05T12:34:56.000Z"

DEVICE_CODE = {
    "user_code": "BCDF-GHJK",
    "device_code": "dc-secret",
    "interval": 5,
    "expires_in": 300,
    "verification_uri": "https://customer.bmwgroup.com/oneid/link",
    "verification_uri_complete": "https://customer.bmwgroup.com/oneid/link?user_code=BCDF-GHJK",
}
TOKENS = {
    "access_token": "at",
    "id_token": "header.claims.sig",
    "refresh_token": "rt",
    "gcid": "b2f7e4a1-5c3d-4f6e-8a9b-0c1d2e3f4a5b",
    "scope": "authenticate_user openid cardata:api:read cardata:streaming:read",
    "expires_in": 3600,
    "token_type": "Bearer",
}
MAPPINGS = [
    {"vin": VIN, "mappedSince": "2024-03-01T10:00:00Z", "mappingType": "PRIMARY"},
    {"vin": "WBY8P210X07J12345", "mappedSince": "2024-03-02T10:00:00Z", "mappingType": "SECONDARY"},
    {"vin": "WBY00000000000000", "mappingType": "CO_DRIVER"},
]
CONTAINERS = {
    "containers": [
        {"containerId": "c-1", "name": "evcc.io", "purpose": "v1", "state": "ACTIVE"},
        {"containerId": "c-2", "name": "bmw-telegram-bot", "purpose": "bot", "state": "INACTIVE"},
    ]
}
TELEMATIC = {
    "telematicData": {
        m.CHARGING_STATUS: {"value": "CHARGINGACTIVE", "unit": None, "timestamp": STAMP},
        m.SOC_HEADER: {"value": "57", "unit": "%", "timestamp": STAMP},
        m.SOC_TARGET: {"value": "80", "unit": "%", "timestamp": STAMP},
        m.PORT_STATUS: {"value": "CONNECTED", "timestamp": STAMP},
        m.ELECTRIC_RANGE: {"value": "143", "unit": "km", "timestamp": STAMP},
        m.MILEAGE: {"value": "23456", "unit": "km", "timestamp": STAMP},
        m.LATITUDE: {"value": "48.177", "unit": "degrees", "timestamp": STAMP},
        m.LONGITUDE: {"value": "11.556", "unit": "degrees", "timestamp": STAMP},
        m.DOOR_LOCK: {"value": "SECURED", "timestamp": STAMP},
        "vehicle.some.futureKey": {"value": "FUTURE_VALUE", "unit": "x", "timestamp": STAMP},
    }
}
STREAM = {
    "vin": VIN,
    "entityId": "e-1",
    "topic": "gcid/" + VIN,
    "timestamp": STAMP,
    "data": {m.CHARGING_STATUS: {"timestamp": STAMP, "value": "CHARGINGPAUSED"}},
}
HISTORY = {
    "data": [
        {
            "startTime": 1759600000,
            "endTime": 1759610000,
            "displayedStartSoc": 20,
            "displayedSoc": 80,
            "energyConsumedFromPowerGridKwh": 26.4,
            "totalChargingDurationSec": 10000,
            "mileage": 23400,
            "mileageUnits": "KM",
        },
        {  # a charge still running: no endTime (Guide §3.4)
            "startTime": 1759700000,
            "displayedStartSoc": 30,
            "displayedSoc": 41,
            "totalChargingDurationSec": 600,
            "mileage": 14560,
            "mileageUnits": "MI",
        },
    ],
    "next_token": "page-2",
}
BASIC = {
    "vin": VIN,
    "brand": "BMWi",
    "modelName": "i3 120Ah",
    "driveTrain": "BEV",
    "propulsionType": "BEV",
    "hvsMaxEnergyAbsolute": "42.2",
}


def test_device_code_prefers_the_complete_url_and_keeps_the_code_out_of_repr() -> None:
    code = m.DeviceCode.from_api(DEVICE_CODE, now=NOW)
    assert code.url == DEVICE_CODE["verification_uri_complete"]
    assert (code.user_code, code.expires_at, code.interval) == ("BCDF-GHJK", NOW + 300, 5)
    assert "dc-secret" not in repr(code)
    plain = m.DeviceCode.from_api(
        {k: v for k, v in DEVICE_CODE.items() if k != "verification_uri_complete"}, now=NOW
    )
    assert plain.url == DEVICE_CODE["verification_uri"]


def test_tokens_expire_in_an_hour_refresh_in_two_weeks_and_a_refresh_keeps_the_gcid() -> None:
    tokens = m.Tokens.from_api(TOKENS, now=NOW)
    assert tokens.expires_at == NOW + 3600
    assert tokens.refresh_expires_at == NOW + 14 * 86400
    assert "rt" not in repr(tokens) and "header.claims" not in repr(tokens)
    renewed = m.Tokens.from_api(
        {**TOKENS, "gcid": None, "access_token": "at2"}, now=NOW + 3000, previous=tokens
    )
    assert (renewed.gcid, renewed.access_token) == (tokens.gcid, "at2")
    with pytest.raises(BadResponse):
        m.Tokens.from_api({**TOKENS, "id_token": None}, now=NOW)


def test_mappings_read_the_live_array_and_the_specs_object_and_only_primary_cars_are_usable() -> None:
    mappings = m.VehicleMapping.list_from_api(MAPPINGS)
    assert [x.mapping_type for x in mappings] == [m.MappingType.PRIMARY, m.MappingType.SECONDARY, "CO_DRIVER"]
    assert m.primary_vins(mappings) == [VIN]
    assert m.primary_vins(m.VehicleMapping.list_from_api(MAPPINGS[0])) == [VIN]


def test_containers_and_their_state() -> None:
    containers = m.Container.list_from_api(CONTAINERS)
    assert [(c.container_id, c.active) for c in containers] == [("c-1", True), ("c-2", False)]
    assert m.Container.list_from_api(CONTAINERS["containers"]) == containers


def test_telematic_strings_become_typed_values_and_unknown_keys_and_values_are_kept() -> None:
    state = m.CarState(VIN)
    state.merge(m.telematic_data_from_api(TELEMATIC))
    assert state.charging_status is m.ChargingStatus.CHARGINGACTIVE
    assert state.is_charging
    assert (state.soc, state.target_soc, state.electric_range_km, state.mileage_km) == (57, 80, 143, 23456)
    assert state.plugged_in is True
    assert state.position == (48.177, 11.556)
    assert state.door_lock == "SECURED"
    assert state.values["vehicle.some.futureKey"].value == "FUTURE_VALUE"
    assert state.updated_at == datetime(2025, 10, 5, 12, 34, 56, tzinfo=UTC)
    # Keys the car did not send are None, not errors.
    assert (state.fuel_litres, state.total_range_km, state.end_reason, state.heading) == (None,) * 4
    state.merge({m.CHARGING_STATUS: m.TelematicValue("SUPERCHARGING", None, None)})
    assert state.charging_status == "SUPERCHARGING" and not state.is_charging


def value(text: str, unit: str | None = None, second: int = 56) -> m.TelematicValue:
    return m.TelematicValue(text, unit, datetime(2025, 10, 5, 12, 34, second, tzinfo=UTC))


def test_an_i3s_burst_as_bmw_sends_it_reads_its_lock_end_reason_and_mileage() -> None:
    # a 2018 i3's keys (docs/cardata.md): topic the VIN alone, entityId the gcid, no unit where none
    burst = {
        m.CHARGING_STATUS: "NOCHARGING",
        m.SOC_HEADER: "47",
        m.DOOR_STATUS: "LOCKED",
        m.HVPM_FINISH_REASON: "END_REQUESTED_BY_DRIVER",
        m.MILEAGE: "23456",
    }
    state = m.CarState(VIN)
    for key, text in burst.items():
        body = {
            "vin": VIN,
            "entityId": TOKENS["gcid"],
            "topic": VIN,
            "timestamp": "2025-10-05T12:34:56.809Z",
            "data": {key: {"timestamp": "2025-10-05T12:34:56Z", "value": text}},
        }
        message = m.StreamMessage.from_api(body, topic_vin=VIN)
        assert message.vin == VIN
        state.merge(message.values)
    assert (state.soc, state.mileage_km, state.locked) == (47, 23456, True)  # no unit: km
    assert state.end_reason == "END_REQUESTED_BY_DRIVER" and state.target_soc is None
    state.merge({m.MILEAGE: value("14575", "mi")})
    assert state.mileage_km == pytest.approx(23456, abs=1)
    # the newer of the two end reasons counts
    state.merge({m.REASON_CHARGING_END: value("HV_BATTERY_FULLY_CHARGED", second=57)})
    assert state.end_reason == "HV_BATTERY_FULLY_CHARGED"


@pytest.mark.parametrize(
    ("door", "locked"),
    [
        ("LOCKED", True),
        ("SECURED", True),
        ("UNLOCKED", False),
        ("SELECTIVELOCKED", False),  # the driver's door opens to the key: not locked
        ("SELECTIVE-LOCKED", False),  # the same from REST's lock status
        ("ASN_UNKNOWN", None),
    ],
)
def test_only_locked_and_secured_are_locked(door: str, locked: bool | None) -> None:
    state = m.CarState(VIN)
    state.merge({m.DOOR_STATUS: value(door)})
    assert state.locked is locked


def test_an_open_or_part_open_window_counts_as_open() -> None:
    state = m.CarState(VIN)
    assert state.open_windows is None  # nothing reported: not known
    keys = list(m.WINDOW_KEYS)
    state.merge({key: value("CLOSED") for key in keys})
    assert state.open_windows == ()
    state.merge({keys[0]: value("OPEN", second=57), keys[3]: value("INTERMEDIATE", second=57)})
    assert state.open_windows == ("windowDriverFront", "windowPassengerRear")
    assert set(keys) <= set(m.BOT_KEYS) and m.HVPM_FINISH_REASON in m.BOT_KEYS  # the container asks for them


def test_a_stream_message_merges_into_the_state_and_an_older_value_does_not_win() -> None:
    state = m.CarState(VIN)
    state.merge(m.telematic_data_from_api(TELEMATIC))
    message = m.StreamMessage.from_api(STREAM)
    assert message.vin == VIN
    assert state.merge(message.values) == {m.CHARGING_STATUS}
    assert state.charging_status is m.ChargingStatus.CHARGINGPAUSED
    older = copy.deepcopy(STREAM)
    older["data"][m.CHARGING_STATUS] = {"timestamp": "2025-10-05T12:00:00Z", "value": "CHARGINGACTIVE"}
    assert state.merge(m.StreamMessage.from_api(older).values) == set()
    assert state.charging_status is m.ChargingStatus.CHARGINGPAUSED
    # What the store keeps reads back the same.
    assert m.CarState.from_json(VIN, json.loads(json.dumps(state.to_json()))) == state


def test_charging_history_and_basic_data() -> None:
    history = m.ChargingHistory.from_api(HISTORY)
    session, running = history.sessions
    assert (session.start_soc, session.end_soc, session.energy_kwh) == (20, 80, 26.4)
    assert session.start == datetime.fromtimestamp(1759600000, UTC)
    assert not session.running and session.mileage_km == 23400
    assert running.running and running.end is None and running.mileage_km == round(14560 * 1.609344)
    assert history.next_token == "page-2"
    basic = m.BasicData.from_api(BASIC)
    assert (basic.brand, basic.model_name, basic.battery_kwh) == ("BMWi", "i3 120Ah", 42.2)


# --- properties ------------------------------------------------------------------------------------------

PARSERS: dict[str, Callable[[Any], object]] = {
    "device_code": lambda body: m.DeviceCode.from_api(body, now=NOW),
    "tokens": lambda body: m.Tokens.from_api(body, now=NOW),
    "mappings": m.VehicleMapping.list_from_api,
    "containers": m.Container.list_from_api,
    "container": m.Container.from_api,
    "telematic": m.telematic_data_from_api,
    "stream": m.StreamMessage.from_api,
    "history": m.ChargingHistory.from_api,
    "basic": m.BasicData.from_api,
}
EXAMPLES = [DEVICE_CODE, TOKENS, MAPPINGS, CONTAINERS, TELEMATIC, STREAM, HISTORY, BASIC]


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for inner in value.values() for k in _keys(inner)}
    if isinstance(value, list):
        return {k for inner in value for k in _keys(inner)}
    return set()


API_KEYS = sorted({k for body in EXAMPLES for k in _keys(body)} | set(m.BOT_KEYS))
scalars = (
    st.sampled_from(
        [math.nan, math.inf, -math.inf, 10**400, "", "1e999", "NaN", STAMP, "2025-13-45T99", "-0"]
    )
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from([s.value for s in m.ChargingStatus] + ["PRIMARY", "CONNECTED", "true", "80"])
)
keys = st.sampled_from(API_KEYS) | st.text(max_size=10)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=30,
)


def _check(parser: str, body: Any) -> None:
    """A model whose typed reads all work, or BadResponse with a sentence; nothing else."""
    try:
        model = PARSERS[parser](body)
    except BadResponse as error:
        assert str(error)
        return
    values: dict[str, m.TelematicValue] = {}
    if isinstance(model, m.StreamMessage):
        values = model.values
    elif isinstance(model, dict):
        values = model
    if values:
        state = m.CarState(VIN)
        state.merge(values)
        for name in dir(m.CarState):
            if isinstance(getattr(m.CarState, name), property):
                getattr(state, name)
        json.dumps(state.to_json(), allow_nan=False)
        assert m.CarState.from_json(VIN, json.loads(json.dumps(state.to_json()))) == state


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSERS)), body=json_values)
def test_any_json_is_a_model_or_bad_response(parser: str, body: Any) -> None:
    _check(parser, body)


ENVELOPES: dict[str, Callable[[Any], Any]] = {
    "device_code": lambda inner: inner,
    "tokens": lambda inner: inner,
    "mappings": lambda inner: [inner],
    "containers": lambda inner: {"containers": [inner]},
    "container": lambda inner: inner,
    "telematic": lambda inner: {"telematicData": {m.SOC_HEADER: inner, m.CHARGING_STATUS: inner}},
    "stream": lambda inner: {"vin": VIN, "data": {m.LATITUDE: inner, m.SOC_TARGET: inner}},
    "history": lambda inner: {"data": [inner], "next_token": inner.get("next_token")},
    "basic": lambda inner: inner,
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    parser=st.sampled_from(sorted(PARSERS)),
    inner=st.dictionaries(st.sampled_from(API_KEYS), json_values, max_size=10),
)
def test_documented_envelopes_with_any_content(parser: str, inner: dict[str, Any]) -> None:
    _check(parser, ENVELOPES[parser](inner))
