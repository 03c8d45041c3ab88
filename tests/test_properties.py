"""Property-based tests of the BMW models: any JSON shape becomes a model or the documented BadResponse.

Three sources of bodies: arbitrary JSON (recursive dicts, lists and scalars, NaN and huge numbers
included, as Python's json module reads them), objects built from the API's own key names (so the
parsers' inner branches are reached), and mutations of the documented and real cars' example bodies.
Every top-level parser gets every body; a parsed status must also render as the chat shows it.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.backends import from_vehicle_status
from bot.bmw.client import BMWClient
from bot.bmw.errors import BadResponse, BMWError
from bot.bmw.models import (
    Account,
    AllTrips,
    ChargingProfile,
    Destination,
    ExecutionStatus,
    LastTrip,
    RangeMap,
    Token,
    Vehicle,
    VehicleStatus,
)
from bot.chat import texts
from bot.store import StoredVehicle
from tests.support.bodies import DOCUMENTED, REAL_RESPONSES, TOKEN

PARSERS: dict[str, Callable[[Any], object]] = {
    "token": lambda body: Token.from_api(body, now=time.time()),
    "vehicle": Vehicle.from_api,
    "vehicles": Vehicle.list_from_api,
    "status": VehicleStatus.from_api,
    "last_trip": LastTrip.from_api,
    "all_trips": AllTrips.from_api,
    "charging_profile": ChargingProfile.from_api,
    "destinations": Destination.list_from_api,
    "range_map": RangeMap.from_api,
    "execution_status": ExecutionStatus.from_api,
}
CAR = StoredVehicle(
    tg_id=1,
    vin="WBY1Z21000V300001",
    model="i3",
    license_plate=None,
    drive_train="BEV",
    capabilities=(),
    position=0,
)


def _real_bodies() -> list[Any]:
    if not REAL_RESPONSES.is_dir():
        return []
    return [json.loads(path.read_text()) for path in sorted(REAL_RESPONSES.rglob("*.json"))]


REAL_BODIES = _real_bodies()


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


API_KEYS = sorted({key for body in DOCUMENTED + REAL_BODIES for key in _keys(body)})

# json.loads reads NaN, Infinity, 1e999 (inf) and integers of any size: all are possible answers.
edge_values = st.sampled_from(
    [
        math.nan,
        math.inf,
        -math.inf,
        10**400,
        -(10**400),
        0,
        -1,
        "",
        "2015-10-30T18:45:04+0100",
        "2018-13-45T99",
    ]
)
scalars = (
    edge_values
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["CHARGING", "CONNECTED", "OK", "EXECUTED", "WEEKLY_PLANNER", "DRIVER_DISABLED"])
)
keys = st.sampled_from(API_KEYS) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=8),
    max_leaves=40,
)


def _check(parser: str, body: Any) -> None:
    """The property: a model (usable as the chat uses it) or BadResponse, never anything else."""
    try:
        model = PARSERS[parser](body)
    except BadResponse as error:
        assert str(error)  # a sentence the user may see
        return
    if isinstance(model, VehicleStatus):
        assert texts.status(CAR, from_vehicle_status(CAR.vin, model))  # as the garage gives it to the chat
        assert isinstance(model.open_items, list)
        assert model.position is None or isinstance(model.position.usable, bool)
    if isinstance(model, ExecutionStatus):
        assert isinstance(model.terminal, bool)
    if isinstance(model, ChargingProfile):
        json.dumps(model.to_api())  # what CHARGING_CONTROL would send back


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSERS)), body=json_values)
def test_any_json_is_a_model_or_bad_response(parser: str, body: Any) -> None:
    _check(parser, body)


# Each parser's documented envelope around an object: only the tolerant inner readers stand between it and
# a crash.
ENVELOPES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "token": lambda inner: inner,
    "vehicle": lambda inner: inner,
    "vehicles": lambda inner: {"vehicles": [inner]},
    "status": lambda inner: {"vehicleStatus": inner},
    "last_trip": lambda inner: {"lastTrip": inner},
    "all_trips": lambda inner: {"allTrips": inner},
    "charging_profile": lambda inner: {"weeklyPlanner": inner},
    "destinations": lambda inner: {"destinations": [inner]},
    "range_map": lambda inner: {"rangemap": inner},
    "execution_status": lambda inner: {"executionStatus": inner},
}
small_json = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(keys, c, max_size=4), max_leaves=6
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    parser=st.sampled_from(sorted(PARSERS)),
    inner=st.dictionaries(st.sampled_from(API_KEYS), small_json, max_size=12),
)
def test_documented_envelopes_with_any_content(parser: str, inner: dict[str, Any]) -> None:
    _check(parser, ENVELOPES[parser](inner))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """An example body with a few nodes replaced by any JSON, deleted, or wrapped in a list."""
    body = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(list(_paths(body))))
        how = draw(st.sampled_from(["replace", "delete", "wrap"]))
        if not path:
            body = draw(json_values) if how == "replace" else [body]
            continue
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if how == "delete":
            del parent[path[-1]]
        elif how == "wrap":
            parent[path[-1]] = [parent[path[-1]]]
        else:
            parent[path[-1]] = draw(json_values)
    return body


@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSERS)), body=mutated(DOCUMENTED))
def test_mutated_reference_bodies(parser: str, body: Any) -> None:
    _check(parser, body)


@pytest.mark.skipif(not REAL_BODIES, reason="../shared/reference/real-responses is not here")
@settings(max_examples=250, suppress_health_check=[HealthCheck.too_slow])
@given(parser=st.sampled_from(sorted(PARSERS)), body=mutated(REAL_BODIES or [{}]))
def test_mutated_real_bodies(parser: str, body: Any) -> None:
    _check(parser, body)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
async def test_any_status_bytes_reach_the_caller_as_a_model_or_a_bmw_error(raw: bytes) -> None:
    """Through the real client: whatever bytes a 200 carries, the caller gets a status or a BMWError."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/webapi/oauth/token"):
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(200, content=raw, headers={"content-type": "application/json"})

    async with BMWClient(
        api_key="k", api_secret="s", base_url="http://bmw.test", transport=httpx.MockTransport(answer)
    ) as client:
        try:
            status = await client.status(Account("a@b.c", "pw"), CAR.vin)
        except BMWError as error:
            assert isinstance(error, BadResponse)
            return
    assert texts.status(CAR, from_vehicle_status(CAR.vin, status))


def test_non_finite_and_huge_numbers_read_as_missing() -> None:
    """json.loads turns 1e999 into inf, accepts NaN and reads integers of any size: none is a reading."""
    body = json.loads(
        '{"vehicleStatus": {"mileage": 1e999, "chargingTimeRemaining": NaN, "chargingLevelHv": -Infinity, '
        '"remainingRangeElectric": 1'
        + "0" * 400
        + ', "position": {"heading": 1e999, "lat": NaN, "lon": 11.5}}}'
    )
    status = VehicleStatus.from_api(body)
    assert status.reading("mileage") is None and status.charging_time_remaining is None
    assert status.charging_level_hv is None and status.remaining_range_electric is None
    assert status.position is not None and not status.position.usable
    assert Token.from_api({"access_token": "a", "expires_in": math.inf}, now=0.0).expires_at == 3600.0
