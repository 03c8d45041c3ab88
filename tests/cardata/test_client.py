"""The CarData client against the simulator over loopback HTTP: device flow, tokens, REST and the budget.

The client runs on the simulator's clock and "sleeps" by advancing it, so the 5 s poll interval, the one-hour
token lifetime and the next UTC midnight are exact and cost no waiting.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.cardata import client as client_module
from bot.cardata import models as m
from bot.cardata.auth import Approved, Refusal, Refused
from bot.cardata.client import BMW_DAILY_CALLS, CONTAINER_NAME, CarDataClient
from bot.cardata.errors import (
    BudgetSpent,
    ContainerLimit,
    KeysRefused,
    NotYourCar,
    RelinkNeeded,
    UnknownClient,
)
from bot.cardata.simulator import (
    DEFAULT_BEV_VIN,
    DEFAULT_CLIENT_ID,
    DEFAULT_GCID,
    DEFAULT_REX_VIN,
    CardataSimulator,
)
from bot.crypto import generate_secret_key
from bot.servers import BackgroundServer
from bot.store import Store

OWNER = 42
KEY = generate_secret_key()
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC).timestamp()


@dataclass
class Env:
    sim: CardataSimulator
    url: str
    path: Path
    store: Store
    client: CarDataClient
    sleeps: list[float] = field(default_factory=list)

    def open_client(self, daily_calls: int = 40) -> CarDataClient:
        """Another process on the same database (a restart)."""
        self.store = Store(self.path, [KEY], clock=self.sim.now)
        return _client(self, daily_calls)


def _client(env: Env, daily_calls: int = 40) -> CarDataClient:
    async def sleep(seconds: float) -> None:
        env.sleeps.append(seconds)
        env.sim.advance(seconds)

    return CarDataClient(
        env.store,
        api_url=env.url,
        auth_url=f"{env.url}/gcdm/oauth",
        daily_calls=daily_calls,
        clock=env.sim.now,
        sleep=sleep,
    )


@pytest.fixture
def server() -> Iterator[tuple[CardataSimulator, str]]:
    sim = CardataSimulator(clock=lambda: T0)  # time moves only when a test (or the client's sleep) says
    sim.add_default_account()
    with BackgroundServer(sim.app) as http:
        yield sim, http.url


@pytest.fixture
async def env(server: tuple[CardataSimulator, str], tmp_path: Path) -> AsyncIterator[Env]:
    sim, url = server
    path = tmp_path / "bot.sqlite3"
    env = Env(sim, url, path, Store(path, [KEY], clock=sim.now), None)  # type: ignore[arg-type]
    env.client = _client(env)
    yield env
    await env.client.aclose()


async def _linked(env: Env, owner: int = OWNER) -> list[str]:
    flow = await env.client.auth.start(DEFAULT_CLIENT_ID)
    env.sim.decide(flow.code.user_code, "approved")
    outcome = await env.client.auth.wait(flow)
    assert isinstance(outcome, Approved)
    return await env.client.link(owner, DEFAULT_CLIENT_ID, outcome.tokens)


# --- the device flow ----------------------------------------------------------------------------------------


async def test_device_flow_shows_the_complete_url_polls_at_the_interval_and_links_the_primary_cars(
    env: Env,
) -> None:
    flow = await env.client.auth.start(DEFAULT_CLIENT_ID)
    assert flow.code.url == f"{env.url}/oneid/link?user_code={flow.code.user_code}"
    assert flow.code.expires_at == env.sim.now() + 300
    assert await env.client.auth.poll(flow) is None  # authorization_pending
    env.sim.decide(flow.code.user_code, "approved")
    outcome = await env.client.auth.wait(flow)
    assert isinstance(outcome, Approved)
    assert outcome.tokens.gcid == DEFAULT_GCID
    assert env.sleeps == [5]  # BMW's interval, then the approval (the simulator checked PKCE)
    vins = await env.client.link(OWNER, DEFAULT_CLIENT_ID, outcome.tokens)
    assert vins == [DEFAULT_BEV_VIN, DEFAULT_REX_VIN]  # the SECONDARY car is left out
    link = env.store.cardata_link(OWNER)
    assert link is not None and link.tokens == outcome.tokens and link.container_id


async def test_slow_down_adds_five_seconds_to_the_interval(env: Env) -> None:
    flow = await env.client.auth.start(DEFAULT_CLIENT_ID)
    assert await env.client.auth.poll(flow) is None
    assert await env.client.auth.poll(flow) is None  # polled again at once: slow_down
    assert flow.interval == 10
    env.sim.decide(flow.code.user_code, "approved")
    assert isinstance(await env.client.auth.wait(flow), Approved)
    assert env.sleeps == [10]  # 5 s + 5 s, which the simulator accepts


@pytest.mark.parametrize("refusal", [Refusal.DENIED, Refusal.EXPIRED, Refusal.INVALID_GRANT])
async def test_each_refusal_ends_the_flow_in_a_typed_outcome(env: Env, refusal: Refusal) -> None:
    flow = await env.client.auth.start(DEFAULT_CLIENT_ID)
    if refusal is Refusal.DENIED:
        env.sim.decide(flow.code.user_code, "denied")
    elif refusal is Refusal.EXPIRED:
        env.sim.advance(301)
    else:  # a verifier that does not match the challenge: BMW refuses the grant
        env.sim.decide(flow.code.user_code, "approved")
        flow = replace(flow, verifier="x" * 64)
    assert await env.client.auth.poll(flow) == Refused(refusal)
    assert env.store.cardata_link(OWNER) is None


async def test_the_owner_who_never_approves_gets_expired_after_five_minutes(env: Env) -> None:
    flow = await env.client.auth.start(DEFAULT_CLIENT_ID)
    assert await env.client.auth.wait(flow) == Refused(Refusal.EXPIRED)
    assert sum(env.sleeps) <= 305


async def test_an_unknown_client_id_is_a_typed_error_with_a_hint(env: Env) -> None:
    with pytest.raises(UnknownClient):
        await env.client.auth.start("not-a-client")


# --- tokens -------------------------------------------------------------------------------------------------


async def test_tokens_are_renewed_ahead_of_the_hour_and_calls_go_on(env: Env) -> None:
    await _linked(env)
    first = env.store.cardata_link(OWNER)
    assert first is not None
    for _ in range(3):
        env.sim.advance(3100)  # 52 min: inside the 10 min renewal margin of the 1 h tokens
        data = await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)
        assert m.SOC_HEADER in data
    link = env.store.cardata_link(OWNER)
    assert link is not None and link.tokens.access_token != first.tokens.access_token
    assert len(env.sim.requests_to("/gcdm/oauth/token")) == 1 + 3  # the grant, then one refresh per hour
    assert not [r for r in env.sim.requests if r.status == 401]  # never sent an expired token


async def test_an_expired_token_refused_by_bmw_is_renewed_once_and_the_call_succeeds(env: Env) -> None:
    await _linked(env)
    env.sim.expire_tokens(DEFAULT_GCID)  # BMW ends the token early; our clock still thinks it is valid
    basic = await env.client.basic_data(OWNER, DEFAULT_BEV_VIN)
    assert basic.vin == DEFAULT_BEV_VIN


async def test_a_refused_refresh_means_relink(env: Env) -> None:
    await _linked(env)
    env.sim.revoke_refresh_tokens(DEFAULT_GCID)
    env.sim.advance(3600)
    with pytest.raises(RelinkNeeded):
        await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)


async def test_after_two_weeks_the_refresh_token_is_gone_without_asking_bmw(env: Env) -> None:
    await _linked(env)
    env.sim.advance(15 * 86400)
    before = len(env.sim.requests_to("/gcdm/oauth/token"))
    with pytest.raises(RelinkNeeded):
        await env.client.mappings(OWNER)
    assert len(env.sim.requests_to("/gcdm/oauth/token")) == before


# --- containers and reads -----------------------------------------------------------------------------------


async def test_the_container_is_made_once_and_found_again_by_name_on_a_later_link(env: Env) -> None:
    await _linked(env)
    first = env.store.cardata_link(OWNER)
    await _linked(env)  # the owner links again (e.g. after a refused refresh)
    second = env.store.cardata_link(OWNER)
    assert first and second and first.container_id == second.container_id
    assert len(env.sim.requests_to("/customers/containers", "POST")) == 1
    (ours,) = [c for c in env.sim.containers(DEFAULT_GCID)["containers"] if c["name"] == CONTAINER_NAME]
    assert ours["containerId"] == second.container_id


async def test_ten_foreign_containers_leave_no_room_and_say_so(env: Env) -> None:
    for n in range(10):
        env.sim.create_container(
            DEFAULT_GCID, {"name": f"other-{n}", "purpose": "x", "technicalDescriptors": [m.MILEAGE]}
        )
    with pytest.raises(ContainerLimit):
        await _linked(env)


async def test_bmws_cu_124_when_another_app_took_the_tenth_place_is_the_container_limit(env: Env) -> None:
    for n in range(9):
        env.sim.create_container(
            DEFAULT_GCID, {"name": f"other-{n}", "purpose": "x", "technicalDescriptors": [m.MILEAGE]}
        )

    async def another_app_makes_one(
        response: httpx.Response,
    ) -> None:  # between the bot's look and its create
        if response.request.method == "GET" and response.url.path == "/customers/containers":
            env.sim.create_container(
                DEFAULT_GCID, {"name": "evcc", "purpose": "x", "technicalDescriptors": [m.MILEAGE]}
            )

    env.client._http.event_hooks["response"].append(another_app_makes_one)
    with pytest.raises(ContainerLimit) as caught:
        await _linked(env)
    assert caught.value.error_id == "CU-124"


async def test_a_vin_bmw_says_is_not_the_owners_and_a_refused_key_are_their_own_refusals(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _linked(env)
    env.sim.make_secondary(DEFAULT_REX_VIN)
    with pytest.raises(NotYourCar) as not_ours:
        await env.client.telematic_data(OWNER, DEFAULT_REX_VIN)
    assert not_ours.value.error_id == "CU-104"

    monkeypatch.setattr(client_module, "BOT_KEYS", (*m.BOT_KEYS, "not.a.key"))  # BMW's catalogue dropped one
    link = env.store.cardata_link(OWNER)
    assert link is not None
    env.sim.delete_container(DEFAULT_GCID, link.container_id or "")
    with pytest.raises(KeysRefused) as refused:
        await env.client.ensure_container(OWNER, link.tokens)
    assert refused.value.error_id == "CU-402"


async def test_telematic_data_history_and_basic_data_are_typed(env: Env) -> None:
    await _linked(env)
    state = m.CarState(DEFAULT_BEV_VIN)
    state.merge(await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN))
    assert isinstance(state.soc, float) and 0 <= state.soc <= 100
    assert state.charging_status is not None and state.plugged_in is not None
    assert state.mileage_km is not None and state.position is not None
    now = datetime.fromtimestamp(env.sim.now(), UTC)
    history = await env.client.charging_history(OWNER, DEFAULT_BEV_VIN, now - timedelta(days=60), now)
    assert history.sessions and all(s.start and s.end and s.end > s.start for s in history.sessions)
    assert all(s.mileage_km and s.mileage_km > 20_000 for s in history.sessions)
    if history.next_token:
        more = await env.client.charging_history(
            OWNER, DEFAULT_BEV_VIN, now - timedelta(days=60), now, next_token=history.next_token
        )
        assert more.sessions[0] != history.sessions[0]
    basic = await env.client.basic_data(OWNER, DEFAULT_REX_VIN)
    assert basic.vin == DEFAULT_REX_VIN and basic.model_name


async def test_no_vin_is_logged_at_info_by_any_call(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    """VINs are personal data: the bot's own logs name them at DEBUG only (as the i Remote client does)."""
    caplog.set_level(logging.DEBUG)
    await _linked(env)
    await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)
    now = datetime.fromtimestamp(env.sim.now(), UTC)
    await env.client.charging_history(OWNER, DEFAULT_BEV_VIN, now - timedelta(days=7), now)
    await env.client.basic_data(OWNER, DEFAULT_REX_VIN)
    env.sim.spend_quota(DEFAULT_GCID)
    with pytest.raises(BudgetSpent):  # a refused call too
        await env.client.telematic_data(OWNER, DEFAULT_REX_VIN)

    def naming_a_vin(level: int) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name.startswith("bot.") and r.levelno >= level and r.levelno < level + 10
            for vin in (DEFAULT_BEV_VIN, DEFAULT_REX_VIN)
            if vin in r.getMessage()
        ]

    assert naming_a_vin(logging.DEBUG)  # each call is still there for debugging
    assert not [level for level in (logging.INFO, logging.WARNING, logging.ERROR) if naming_a_vin(level)]


# --- the daily budget ---------------------------------------------------------------------------------------


async def test_the_budget_stops_normal_reads_keeps_the_reserve_for_linking_and_survives_a_restart(
    env: Env,
) -> None:
    await _linked(env)  # 3 calls from the reserve... counted like every call
    day = datetime.fromtimestamp(env.sim.now(), UTC).date().isoformat()
    spent = env.store.cardata_calls(DEFAULT_GCID, OWNER, day).total
    for _ in range(40 - spent):
        await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)
    assert env.client.calls_left(OWNER) == 0
    with pytest.raises(BudgetSpent) as caught:
        await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)
    # BMW's reset is midnight UTC or 24 h after the day's first call: the later, 10:00:05 the next day
    first = min(r.time for r in env.sim.requests if r.path.startswith("/customers"))
    assert first == T0 + 5  # linked after one 5 s poll
    assert caught.value.retry_at == datetime.fromtimestamp(first + 86400, UTC)
    assert "2026-05-05 10:00 UTC" in str(caught.value)
    calls_at_bmw = env.sim.calls_today(DEFAULT_GCID)

    await env.client.aclose()
    env.store.close()
    env.client = env.open_client()  # a restart: the count is on disk
    with pytest.raises(BudgetSpent):
        await env.client.mappings(OWNER)
    assert env.sim.calls_today(DEFAULT_GCID) == calls_at_bmw  # refused without calling BMW
    assert await env.client.mappings(OWNER, linking=True)  # the reserve still links
    assert env.client.calls_left(OWNER, linking=True) == BMW_DAILY_CALLS - 41

    env.sim.advance((caught.value.retry_at.timestamp() - env.sim.now()) + 1)
    assert await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)  # a new day


async def test_three_co_owners_each_keep_an_equal_share_of_the_accounts_reads(env: Env) -> None:
    owners = (OWNER, OWNER + 1, OWNER + 2)  # three owners linked to one BMW account: 40 // 3 = 13 each
    for owner in owners:
        await _linked(env, owner)
    used = dict.fromkeys(owners, 2)  # each link: the container list and the mappings
    used[OWNER] += 1  # the first also made the container

    async def read_until_spent(owner: int) -> BudgetSpent:
        while True:
            try:
                await env.client.telematic_data(owner, DEFAULT_BEV_VIN)
            except BudgetSpent as spent:
                return spent
            used[owner] += 1

    assert (await read_until_spent(OWNER)).co_owner_calls == 0  # his own calls are why
    assert used[OWNER] == 13 + 1  # 40 % 3: the one call no share holds went to the first to ask
    assert env.client.calls_left(OWNER + 1) == 11  # the others still have all of their share
    await read_until_spent(OWNER + 1)
    assert used[OWNER + 1] == 13 and env.client.calls_left(OWNER + 2) == 11
    await read_until_spent(OWNER + 2)
    assert used[OWNER + 2] == 13 and sum(used.values()) == 40 == env.sim.calls_today(DEFAULT_GCID)
    assert env.client.calls_left(OWNER, linking=True) == BMW_DAILY_CALLS - 40  # the reserve is whole


async def test_bmws_cu_429_is_budget_spent_until_midnight_even_for_linking(env: Env) -> None:
    await _linked(env)
    env.sim.spend_quota(DEFAULT_GCID)  # another client of this owner used BMW's 50
    with pytest.raises(BudgetSpent) as caught:
        await env.client.telematic_data(OWNER, DEFAULT_BEV_VIN)
    assert caught.value.error_id == "CU-429" and caught.value.status_code == 403
    assert env.client.calls_left(OWNER, linking=True) == 0
    with pytest.raises(BudgetSpent):
        await env.client.mappings(OWNER, linking=True)
    assert env.sim.requests_to("/mappings")[-1].status == 200  # that one never reached BMW
