"""BMWClient over real loopback HTTP against the simulator (tests/support/simulator.py serves it)."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from bot.bmw.client import BMWClient, budget
from bot.bmw.errors import (
    ApiCredentialsError,
    AuthenticationError,
    BadResponse,
    BMWUnavailable,
    NotSupported,
    OtherRequest,
    SecurityAnswerRequired,
    ServiceTimeout,
    VehicleNotFound,
    WrongSecurityAnswer,
)
from bot.bmw.models import SERVERS, TERMINAL_STATES, Account, ExecutionStatus, Poi, Region, ServiceType
from bot.bmw.simulator import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    Fault,
    RequestRecord,
    Simulator,
)

BEV, REX = "WBY1Z21000V300001", "WBY1Z41000V300002"
SERVICE_SECONDS = 60.0
# Each status poll moves the simulated car this far: the simulator holds each state for a quarter of
# service_seconds or more, so a smaller step samples every state, with no real waiting.
POLL_STEP = SERVICE_SECONDS / 6


@pytest.fixture
def simulator() -> Simulator:
    """Overrides the support fixture: services that take a minute of simulated time, advanced by polls."""
    sim = Simulator(service_seconds=SERVICE_SECONDS)
    sim.add_default_account()
    return sim


class AdvancingTransport(httpx.AsyncHTTPTransport):
    """Moves the simulator's clock before each serviceExecutionStatus poll, so services progress per poll."""

    def __init__(self, simulator: Simulator) -> None:
        super().__init__()
        self.simulator = simulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/serviceExecutionStatus"):
            self.simulator.advance(POLL_STEP)
        return await super().handle_async_request(request)


def make_client(url: str, simulator: Simulator | None = None, **overrides: Any) -> BMWClient:
    options: dict[str, Any] = {
        "api_key": DEFAULT_API_KEY,
        "api_secret": DEFAULT_API_SECRET,
        "base_url": url,
        "poll_initial": 0.001,
        "poll_max": 0.005,
        "service_deadline": 30.0,
        "retry_backoff": 0.001,
        "transport": AdvancingTransport(simulator) if simulator is not None else None,
    }
    options.update(overrides)
    return BMWClient(**options)


@pytest.fixture
async def client(simulator: Simulator, simulator_url: str) -> AsyncIterator[BMWClient]:
    async with make_client(simulator_url, simulator) as bmw:
        yield bmw


@pytest.fixture
def account() -> Account:
    return Account(DEFAULT_USERNAME, DEFAULT_PASSWORD)


Log = Callable[..., Awaitable[list[RequestRecord]]]


@pytest.fixture
def logged(simulator: Simulator, simulator_url: str) -> Log:
    """`simulator.requests_to`, read once the log is complete.

    The simulator logs a request just after answering it, on the server's thread; one more round trip
    to that server lets the logging of every request already answered finish first.
    """

    async def requests_to(path_fragment: str, method: str | None = None) -> list[RequestRecord]:
        async with httpx.AsyncClient() as http:
            await http.get(f"{simulator_url}/_sim/state")
        return simulator.requests_to(path_fragment, method)

    return requests_to


async def grants(logged: Log) -> list[str]:
    return [record.form.get("grant_type", "") for record in await logged("oauth/token")]


# --- authentication -------------------------------------------------------------------------------------


async def test_login_stores_token(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    before = time.time()
    token = await client.login(account)
    assert account.token is token and token.access_token and token.refresh_token
    assert before + 28799 - 5 <= token.expires_at <= time.time() + 28799
    [record] = await logged("oauth/token")
    assert record.method == "POST" and record.status == 200
    assert record.form["grant_type"] == "password" and record.form["scope"] == "remote_services vehicle_data"
    assert record.form["username"] == DEFAULT_USERNAME


async def test_wrong_password(client: BMWClient, simulator: Simulator, logged: Log) -> None:
    account = Account(DEFAULT_USERNAME, "not-the-password")
    with pytest.raises(AuthenticationError) as caught:
        await client.vehicles(account)
    assert account.token is None
    assert "not-the-password" not in str(caught.value)
    assert await logged("/webapi/v1") == []


async def test_logins_of_many_e_mails_leave_no_per_e_mail_state(client: BMWClient, account: Account) -> None:
    """Someone trying e-mail after e-mail must not grow the client's memory."""
    for i in range(50):
        with pytest.raises(AuthenticationError):
            await client.login(Account(f"guess-{i}@example.com", "not-the-password"))
    await asyncio.gather(*(client.status(account, vin) for vin in (BEV, REX)))
    assert len(client._auth_locks) == 0  # a lock lives only while a login holds or awaits it


async def test_wrong_api_key(simulator_url: str, account: Account) -> None:
    async with make_client(simulator_url, api_key="wrong-key") as bmw:
        with pytest.raises(ApiCredentialsError):
            await bmw.login(account)


async def test_token_is_reused(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    await client.vehicles(account)
    for _ in range(3):
        await client.status(account, BEV)
    await client.status(account, REX)
    assert await grants(logged) == ["password"]
    assert len(await logged("/status")) == 4


async def test_concurrent_calls_log_in_once(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    await asyncio.gather(*(client.status(account, vin) for vin in (BEV, REX, BEV, REX, BEV)))
    assert await grants(logged) == ["password"]


async def test_refresh_before_expiry(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    token = await client.login(account)
    # Within the last minute of its life the token is renewed with the refresh token, before any 401.
    account.token = replace(token, expires_at=time.time() + 30)
    status = await client.status(account, BEV)
    assert status.vin == BEV
    assert await grants(logged) == ["password", "refresh_token"]
    assert account.token is not None and account.token.access_token != token.access_token
    assert [r.status for r in await logged("/status")] == [200]


async def test_401_recovery_after_server_expiry(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    await client.login(account)
    simulator.expire_tokens()
    status = await client.status(account, BEV)
    assert status.vin == BEV
    assert [r.status for r in await logged("/status")] == [401, 200]
    assert await grants(logged) == ["password", "refresh_token"]


async def test_revoked_refresh_falls_back_to_password(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    await client.login(account)
    simulator.revoke_refresh_tokens()
    simulator.expire_tokens()
    assert (await client.status(account, BEV)).vin == BEV
    assert await grants(logged) == ["password", "refresh_token", "password"]
    assert [r.status for r in await logged("oauth/token")] == [200, 401, 200]


async def test_post_refused_by_401_is_sent_again_once(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    await client.login(account)
    simulator.expire_tokens()
    result = await client.execute(account, BEV, ServiceType.LIGHT_FLASH, flash_count=2)
    assert result.status == "EXECUTED"
    assert [r.status for r in await logged("executeService", "POST")] == [401, 200]


@pytest.mark.parametrize("region", list(Region))
async def test_region_picks_its_server(region: Region) -> None:
    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(f"{request.url.scheme}://{request.url.netloc.decode()}")
        return httpx.Response(200, json={"access_token": "a", "expires_in": 28799, "refresh_token": "r"})

    async with BMWClient(api_key="k", api_secret="s", transport=httpx.MockTransport(handler)) as bmw:
        await bmw.login(Account("u", "p", region))
    assert hosts == [SERVERS[region]]


# --- vehicle data ---------------------------------------------------------------------------------------


async def test_every_endpoint_parses(client: BMWClient, account: Account) -> None:
    vehicles = await client.vehicles(account)
    assert sorted(v.vin for v in vehicles) == [BEV, REX]
    by_vin = {v.vin: v for v in vehicles}
    assert by_vin[BEV].drive_train == "BEV" and by_vin[REX].drive_train == "BEV_REX"
    assert all(v.is_electric for v in vehicles)
    kinds = set()
    for vin in (BEV, REX):
        status = await client.status(account, vin)
        assert status.vin == vin and status.update_time is not None and status.update_time.tzinfo is not None
        assert status.position is not None and status.position.usable
        assert status.charging_level_hv is not None
        trip = await client.last_trip(account, vin)
        assert trip is not None and trip.total_distance is not None
        trips = await client.all_trips(account, vin)
        assert trips is not None and trips.avg_electric_consumption is not None
        profile = await client.charging_profile(account, vin)
        assert profile is not None and profile.timers
        kinds.add(profile.kind)
        destinations = await client.destinations(account, vin)
        assert all(d.lat is not None for d in destinations)
        range_map = await client.range_map(account, vin)
        assert not range_map.empty and range_map.center is not None
        for line in range_map.polylines:
            assert line.points[0] == line.points[-1]  # closed polygons
    assert kinds == {"weeklyPlanner", "twoTimesTimer"}


async def test_other_accounts_vin_is_not_found(
    client: BMWClient, account: Account, simulator: Simulator
) -> None:
    [other_vin, *_] = simulator.add_account("other@example.com", "other-password")
    with pytest.raises(VehicleNotFound):
        await client.status(account, other_vin)


async def test_5xx_on_get_is_retried(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    simulator.add_fault(Fault(path=r"/status$", kind="error", status=503, times=2))
    assert (await client.status(account, BEV)).vin == BEV
    assert [r.status for r in await logged("/status")] == [503, 503, 200]


async def test_5xx_on_get_gives_up_after_retries(
    simulator: Simulator, simulator_url: str, account: Account, logged: Log
) -> None:
    simulator.add_fault(Fault(path=r"/status$", kind="error", status=500, times=None))
    async with make_client(simulator_url, get_retries=2) as bmw:
        with pytest.raises(BMWUnavailable):
            await bmw.status(account, BEV)
    assert len(await logged("/status")) == 3


async def test_retries_stay_within_the_callers_budget(
    simulator: Simulator, simulator_url: str, account: Account, logged: Log
) -> None:
    async with make_client(simulator_url, get_retries=10, retry_backoff=0.2) as bmw:
        await bmw.login(account)
        simulator.add_fault(Fault(path=r"/status$", kind="error", status=503, times=2))
        with budget(5.0):  # room for the backoffs: retried as usual
            assert (await bmw.status(account, BEV)).vin == BEV
        simulator.add_fault(Fault(path=r"/status$", kind="error", status=503, times=None))
        with budget(0.3), pytest.raises(BMWUnavailable):
            await bmw.status(account, BEV)
    # The third backoff alone (0.4 s or more) outlasts the budget: at most three tries, not eleven.
    assert [r.status for r in await logged("/status")][:3] == [503, 503, 200]
    assert 1 <= len(await logged("/status")) - 3 <= 3


async def test_read_timeout_is_retried(simulator: Simulator, simulator_url: str, account: Account) -> None:
    simulator.add_fault(Fault(path=r"/status$", kind="slow", delay=0.6, times=1))
    async with make_client(simulator_url, read_timeout=0.2) as bmw:
        assert (await bmw.status(account, BEV)).vin == BEV


async def test_connection_reset_on_get_is_retried(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    simulator.add_fault(Fault(path=r"/rangemap$", kind="reset", times=1))
    assert not (await client.range_map(account, BEV)).empty
    assert len(await logged("/rangemap")) == 2


async def test_unreachable_server(account: Account) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with make_client(f"http://127.0.0.1:{port}") as bmw:
        with pytest.raises(BMWUnavailable):
            await bmw.login(account)


async def test_malformed_json_is_bad_response(
    client: BMWClient, account: Account, simulator: Simulator
) -> None:
    simulator.add_fault(Fault(path=r"/status$", kind="malformed", times=1))
    with pytest.raises(BadResponse):
        await client.status(account, BEV)


# --- remote services ------------------------------------------------------------------------------------

SERVICES_BY_FLAG = {
    ServiceType.CHARGE_NOW: "chargeNow",
    ServiceType.CLIMATE_NOW: "climateNow",
    ServiceType.DOOR_LOCK: "doorLock",
    ServiceType.DOOR_UNLOCK: "doorUnlock",
    ServiceType.LIGHT_FLASH: "lightFlash",
    ServiceType.HORN_BLOW: "hornBlow",
    ServiceType.VEHICLE_FINDER: "vehicleFinder",
    ServiceType.CHARGING_CONTROL: "chargingControl",
}


@pytest.mark.parametrize("service", list(ServiceType))
async def test_every_service_reaches_executed(
    service: ServiceType, client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    vehicles = await client.vehicles(account)
    vin = next(v.vin for v in vehicles if v.supports(SERVICES_BY_FLAG[service]))
    options: dict[str, Any] = {}
    if service is ServiceType.CHARGING_CONTROL:
        profile = await client.charging_profile(account, vin)
        assert profile is not None
        options["profile"] = replace(profile, charging_mode="DELAYED_CHARGING")
    if service is ServiceType.CHARGE_NOW:
        simulator.plug_in(vin, charging=False)
    seen: list[ExecutionStatus] = []

    async def on_status(status: ExecutionStatus) -> None:
        seen.append(status)

    result = await client.execute(account, vin, service, on_status=on_status, **options)
    assert result.status == "EXECUTED" and result.terminal and result.service_type == service
    assert [s.status for s in seen] == ["INITIATED", "PENDING", "DELIVERED", "EXECUTED"]
    [post] = await logged("executeService", "POST")
    assert post.form["serviceType"] == service.value
    if service is ServiceType.CHARGING_CONTROL:
        stored = await client.charging_profile(account, vin)
        assert stored is not None and stored.charging_mode == "DELAYED_CHARGING"
        assert json.loads(post.form["data"]) == options["profile"].to_api()


async def test_lock_changes_the_car(client: BMWClient, account: Account) -> None:
    await client.execute(account, BEV, ServiceType.DOOR_LOCK)
    assert (await client.status(account, BEV)).door_lock_state == "LOCKED"
    await client.execute(account, BEV, ServiceType.DOOR_UNLOCK)
    assert (await client.status(account, BEV)).door_lock_state == "UNLOCKED"


async def test_flash_count_is_sent(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    await client.execute(account, BEV, ServiceType.LIGHT_FLASH, flash_count=3)
    [post] = await logged("executeService", "POST")
    assert post.form["count"] == "3"


@pytest.mark.parametrize(("mode", "final"), [("not_executed", "NOT_EXECUTED"), ("timed_out", "TIMED_OUT")])
async def test_failed_services_end_terminal(
    mode: str, final: str, client: BMWClient, account: Account, simulator: Simulator
) -> None:
    simulator.vehicle(BEV).service_mode = mode
    result = await client.execute(account, BEV, ServiceType.CLIMATE_NOW)
    assert result.status == final and result.terminal


async def test_stuck_service_times_out(simulator: Simulator, simulator_url: str, account: Account) -> None:
    simulator.vehicle(BEV).service_mode = "stuck"
    seen: list[str | None] = []

    async def on_status(status: ExecutionStatus) -> None:
        seen.append(status.status)

    async with make_client(simulator_url, simulator, service_deadline=0.3) as bmw:
        with pytest.raises(ServiceTimeout) as caught:
            await bmw.execute(account, BEV, ServiceType.DOOR_LOCK, on_status=on_status)
    assert caught.value.last_status == seen[-1]
    assert caught.value.last_status not in TERMINAL_STATES
    assert seen[0] == "INITIATED"


class ProcessDied(Exception):
    """Stands for the end of a process right after it stored the event id of the POST's answer."""


async def _sent_and_abandoned(client: BMWClient, account: Account, service: ServiceType) -> ExecutionStatus:
    answers: list[ExecutionStatus] = []

    async def on_sent(status: ExecutionStatus) -> None:
        answers.append(status)
        raise ProcessDied

    with pytest.raises(ProcessDied):
        await client.execute(account, BEV, service, on_sent=on_sent)
    return answers[0]


async def test_follow_finishes_a_service_sent_earlier_without_sending_it_again(
    client: BMWClient, account: Account, logged: Log
) -> None:
    sent = await _sent_and_abandoned(client, account, ServiceType.DOOR_LOCK)
    assert sent.status == "INITIATED" and sent.event_id
    seen: list[str | None] = []

    async def on_status(status: ExecutionStatus) -> None:
        seen.append(status.status)

    result = await client.follow(
        account,
        BEV,
        ServiceType.DOOR_LOCK,
        event_id=sent.event_id,
        started_at=time.time(),
        on_status=on_status,
    )
    assert result.status == "EXECUTED" and result.event_id == sent.event_id
    assert seen[-1] == "EXECUTED"
    assert len(await logged("executeService", "POST")) == 1
    assert (await client.status(account, BEV)).door_lock_state == "LOCKED"


async def test_follow_refuses_the_status_of_a_later_request_of_that_type(
    client: BMWClient, account: Account
) -> None:
    sent = await _sent_and_abandoned(client, account, ServiceType.CLIMATE_NOW)
    assert sent.event_id
    await client.execute(account, BEV, ServiceType.CLIMATE_NOW)  # e.g. from BMW's own app meanwhile
    with pytest.raises(OtherRequest):
        await client.follow(
            account, BEV, ServiceType.CLIMATE_NOW, event_id=sent.event_id, started_at=time.time()
        )


async def test_follow_past_its_deadline_looks_once(
    simulator: Simulator, simulator_url: str, account: Account, logged: Log
) -> None:
    simulator.vehicle(BEV).service_mode = "stuck"
    async with make_client(simulator_url, simulator) as bmw:
        sent = await _sent_and_abandoned(bmw, account, ServiceType.DOOR_LOCK)
        assert sent.event_id
        with pytest.raises(ServiceTimeout) as caught:
            await bmw.follow(
                account, BEV, ServiceType.DOOR_LOCK, event_id=sent.event_id, started_at=time.time() - 3600
            )
    # It looked once, found that very request still under way (another one would raise OtherRequest).
    assert caught.value.last_status is not None and caught.value.last_status not in TERMINAL_STATES
    assert len(await logged("serviceExecutionStatus")) == 1


async def test_5xx_on_execute_is_not_retried(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    simulator.add_fault(Fault(path="executeService", kind="error", status=500, times=1))
    with pytest.raises(BMWUnavailable):
        await client.execute(account, BEV, ServiceType.DOOR_LOCK)
    assert len(await logged("executeService", "POST")) == 1
    assert await logged("serviceExecutionStatus") == []


async def test_reset_on_execute_is_not_retried(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    simulator.add_fault(Fault(path="executeService", kind="reset", times=1))
    with pytest.raises(BMWUnavailable):
        await client.execute(account, BEV, ServiceType.DOOR_LOCK)
    assert len(await logged("executeService", "POST")) == 1


async def test_5xx_while_polling_is_not_fatal(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    simulator.add_fault(Fault(path="serviceExecutionStatus", kind="error", status=502, times=3))
    result = await client.execute(account, BEV, ServiceType.DOOR_LOCK)
    assert result.status == "EXECUTED"
    assert [r.status for r in await logged("serviceExecutionStatus")][:3] == [502, 502, 502]


async def test_unsupported_service(
    client: BMWClient, account: Account, simulator: Simulator, logged: Log
) -> None:
    vehicles = await client.vehicles(account)
    vin = next(v.vin for v in vehicles if not v.supports("hornBlow"))
    with pytest.raises(NotSupported):
        await client.execute(account, vin, ServiceType.HORN_BLOW)
    assert len(await logged("executeService", "POST")) == 1


@pytest.fixture
def secured(simulator: Simulator) -> tuple[Account, str]:
    [vin, *_] = simulator.add_account("secured@example.com", "secured-password", security_answer="Bavaria")
    return Account("secured@example.com", "secured-password"), vin


async def test_security_answer_required(client: BMWClient, secured: tuple[Account, str]) -> None:
    account, vin = secured
    with pytest.raises(SecurityAnswerRequired):
        await client.execute(account, vin, ServiceType.DOOR_UNLOCK)


async def test_wrong_security_answer(client: BMWClient, secured: tuple[Account, str]) -> None:
    account, vin = secured
    with pytest.raises(WrongSecurityAnswer) as caught:
        await client.execute(account, vin, ServiceType.DOOR_UNLOCK, security_answer="Saxony")
    assert "Saxony" not in str(caught.value)


async def test_right_security_answer(
    client: BMWClient, secured: tuple[Account, str], simulator: Simulator
) -> None:
    account, vin = secured
    result = await client.execute(account, vin, ServiceType.DOOR_UNLOCK, security_answer="Bavaria")
    assert result.status == "EXECUTED"
    assert simulator.vehicle(vin).status["doorLockState"] == "UNLOCKED"


async def test_secrets_never_logged(
    client: BMWClient, secured: tuple[Account, str], caplog: pytest.LogCaptureFixture
) -> None:
    account, vin = secured
    with caplog.at_level(logging.DEBUG):
        await client.execute(account, vin, ServiceType.DOOR_UNLOCK, security_answer="Bavaria")
    assert account.token is not None and caplog.records
    for secret in ("secured-password", "Bavaria", account.token.access_token, account.token.refresh_token):
        assert secret and secret not in caplog.text


# --- POI ------------------------------------------------------------------------------------------------


async def test_send_poi(client: BMWClient, account: Account, simulator: Simulator, logged: Log) -> None:
    poi = Poi(
        lat=48.1374,
        lon=11.5755,
        name="Marienplatz",
        street="Marienplatz 1",
        city="München",
        postal_code="80331",
    )
    await client.send_poi(account, BEV, poi)
    [record] = await logged("sendpoi", "POST")
    assert record.status == 204
    sent = json.loads(record.form["data"])["poi"]
    assert sent["rating"] == -1 and sent["name"] == "Marienplatz" and sent["postalCode"] == "80331"
    destinations = await client.destinations(account, BEV)
    assert any(d.lat == 48.1374 and d.lon == 11.5755 for d in destinations)
