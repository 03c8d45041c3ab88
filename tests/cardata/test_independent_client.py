"""The CarData simulator checked by a client no one here wrote: `bmw-cardata` (PyPI, models generated from
BMW's OpenAPI spec and telematic catalogue) runs the device flow, mappings, containers, basic and telematic
data, the charging history and the TLS stream against it, pointed at 127.0.0.1 only, with no adapter.
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from bmw_cardata import CarDataClient, DeviceCodeFlowClient, StreamingClient
from bmw_cardata.models.common import Brand, ContainerState, MappingType, MileageUnit
from bmw_cardata.models.container import CreateContainerRequest
from bmw_cardata.models.streaming import StreamingMessage

from bot.cardata.models import keys as cd
from bot.cardata.simulator import (
    DEFAULT_BEV_VIN,
    DEFAULT_CLIENT_ID,
    DEFAULT_GCID,
    DEFAULT_REX_VIN,
    DEFAULT_SECONDARY_VIN,
    CardataBroker,
    CardataSimulator,
)

# Approved a second after the code is asked for, polled every second: the client sees authorization_pending
# (BMW's 403) first, then the tokens.
pytestmark = pytest.mark.parametrize(
    "cardata_simulator", [{"poll_interval": 1, "auto_approve_seconds": 1, "kind": "live"}], indirect=True
)
BOUND = 20.0  # seconds: a hang fails the test instead of stalling the suite


async def test_bmw_cardata_runs_the_device_flow_and_every_rest_call_against_the_simulator(
    cardata_url: str, cardata_simulator: CardataSimulator
) -> None:
    async with asyncio.timeout(BOUND), DeviceCodeFlowClient(DEFAULT_CLIENT_ID, base_url=cardata_url) as auth:
        code = await auth.request_device_code()
        assert code.verification_uri.startswith(cardata_url) and code.interval == 1
        token = await auth.poll_for_token(code.device_code, interval=code.interval)
        assert token.gcid == DEFAULT_GCID and token.id_token
        assert cardata_simulator.requests_to("/gcdm/oauth/token")[0].status == 403  # pending, as BMW says it
        renewed = await auth.refresh()
        assert renewed.access_token != token.access_token

    async with asyncio.timeout(BOUND), CarDataClient(renewed.access_token, base_url=cardata_url) as api:
        mappings = {m.vin: m.mapping_type for m in await api.get_mappings()}
        assert mappings == {
            DEFAULT_BEV_VIN: MappingType.PRIMARY,
            DEFAULT_REX_VIN: MappingType.PRIMARY,
            DEFAULT_SECONDARY_VIN: MappingType.SECONDARY,
        }

        keys = [cd.SOC_HEADER, cd.CHARGING_STATUS, cd.MILEAGE]
        made = await api.create_container(CreateContainerRequest("independent", "a check", keys))
        assert made.container_id and len(made.container_id) == 13 and made.state is ContainerState.ACTIVE
        assert made.technical_descriptors == keys
        listed = await api.list_containers()
        assert [(c.container_id, c.state) for c in listed.containers] == [(made.container_id, "ACTIVE")]

        basic = await api.get_basic_data(DEFAULT_BEV_VIN)
        assert (basic.brand, basic.model_name, basic.hvs_max_energy_absolute) == (
            Brand.BMW_I,
            "i3 120Ah",
            "42.2",
        )

        data = await api.get_telematic_data(DEFAULT_BEV_VIN, made.container_id)
        assert data.telematic_data[cd.SOC_HEADER].value == "64"
        assert set(data.telematic_data) == set(keys)

        cardata_simulator.plug_in(DEFAULT_BEV_VIN)  # a charge still running: listed without its end
        cardata_simulator.advance(120)
        now = datetime.fromtimestamp(cardata_simulator.now(), UTC)
        history = await api.get_charging_history(DEFAULT_BEV_VIN, from_=now - timedelta(days=30), to=now)
        assert len(history.data) == 4
        *past, running = history.data
        assert all(s.end_time > s.start_time and s.mileage > 20_000 for s in past)
        assert {s.mileage_units for s in history.data} == {MileageUnit.KM}
        assert running.end_time == 0 and running.displayed_start_soc == 64  # the model's default: no endTime
        assert running.mileage == 23417

        await api.delete_container(made.container_id)
        gone = await api.get_container(made.container_id)
        assert gone.state is ContainerState.DELETED


async def test_bmw_cardata_streams_from_the_simulators_tls_broker(
    cardata_url: str,
    cardata_simulator: CardataSimulator,
    cardata_broker: CardataBroker,
    cardata_tls: ssl.SSLContext,
) -> None:
    async with asyncio.timeout(BOUND), DeviceCodeFlowClient(DEFAULT_CLIENT_ID, base_url=cardata_url) as auth:
        code = await auth.request_device_code()
        token = await auth.poll_for_token(code.device_code, interval=code.interval)
    assert token.id_token is not None

    stream = StreamingClient(
        token.gcid, token.id_token, host="127.0.0.1", port=cardata_broker.port, tls_context=cardata_tls
    )
    received: asyncio.Queue[StreamingMessage] = asyncio.Queue()

    async def listen() -> None:
        async for message in stream.stream(DEFAULT_BEV_VIN):
            received.put_nowait(message)

    async with asyncio.timeout(BOUND), stream:
        listener = asyncio.create_task(listen())
        try:
            # The subscription is made inside the library's generator: report until the first message comes.
            message = None
            for battery in range(65, 100):
                cardata_simulator.report(DEFAULT_BEV_VIN, cd.SOC_HEADER, str(battery), "%")
                try:
                    message = await asyncio.wait_for(received.get(), 0.5)
                    break
                except TimeoutError:
                    continue
            assert message is not None, "no stream message reached bmw-cardata"
        finally:
            listener.cancel()
    assert message.vin == DEFAULT_BEV_VIN and message.entity_id == DEFAULT_GCID
    assert message.topic == f"{DEFAULT_GCID}/{DEFAULT_BEV_VIN}"
    (key,) = message.data
    assert key == cd.SOC_HEADER and message.data[key].value == str(battery)
