"""Exactly once across a SIGKILL: the CarData stream and charge detector in a real process, killed mid-charge.

The child process runs what the bot will run (store, client, detector, stream supervisor) against the
simulator over loopback (HTTP, MQTT over TLS); its pushes are lines appended to a file. The child keeps
the simulator's time by an offset it is given at start, so the parent can move both past the debounce.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cardata.auth import Approved
from bot.cardata.client import CarDataClient
from bot.cardata.simulator import DEFAULT_BEV_VIN, DEFAULT_CLIENT_ID, CardataBroker, CardataSimulator
from bot.crypto import generate_secret_key
from bot.store import Store, StoredVehicle

# The cars stream every change (live, iDrive 7 and later): these tests follow a streamed charge.
LIVE = pytest.mark.parametrize("cardata_simulator", [{"kind": "live"}], indirect=True)
OWNER = 5
ROOT = Path(__file__).resolve().parents[2]


def child(config_path: str) -> None:
    """The bot's CarData side in a process of its own (run by the test through `python -c`)."""
    from bot.cardata.events import ChargeDetector, ChargeEvent
    from bot.cardata.pacing import Backoff
    from bot.cardata.stream import StreamSupervisor

    config = json.loads(Path(config_path).read_text())
    offset = config["offset"]

    def clock() -> float:
        return time.time() + offset

    async def main() -> None:
        store = Store(config["db"], [config["key"]], clock=clock)
        client = CarDataClient(
            store, api_url=config["url"], auth_url=f"{config['url']}/gcdm/oauth", clock=clock
        )

        async def push(event: ChargeEvent) -> None:
            _append(config["pushes"], f"{event.kind} {event.key} {event.reason}")

        detector = ChargeDetector(store, push, clock=clock)
        supervisor = StreamSupervisor(
            store,
            client.tokens,
            detector,
            mqtt_url=config["mqtt"],
            ca_file=config["ca"],
            connect_interval=0.0,
            backoff=Backoff(base=0.05, cap=0.5),
        )
        supervisor.start()
        await supervisor.wait_connected(OWNER)
        await detector.tick()  # whatever the store holds as due is dealt with before "ready"
        _append(config["ready"], "streaming")
        await detector.run(interval=0.05)

    asyncio.run(main())


def _append(path: str, line: str) -> None:
    with open(path, "a") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


async def _wait(condition, what: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


class Child:
    def __init__(self, tmp: Path, sim: CardataSimulator, url: str, broker: CardataBroker, key: str) -> None:
        self.ready = tmp / "ready"
        self.ready.unlink(missing_ok=True)
        config = {
            "db": str(tmp / "bot.sqlite3"),
            "key": key,
            "url": url,
            "mqtt": broker.url,
            "ca": str(broker.ca_file),
            "pushes": str(tmp / "pushes.txt"),
            "ready": str(self.ready),
            "offset": sim.now() - time.time(),
        }
        path = tmp / "child.json"
        path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [sys.executable, "-c", f"import tests.cardata.test_restart as t; t.child({str(path)!r})"],
            cwd=ROOT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@LIVE
async def test_a_sigkill_during_the_debounce_loses_no_event_and_repeats_none(
    cardata_simulator: CardataSimulator, cardata_url: str, cardata_broker: CardataBroker, tmp_path: Path
) -> None:
    sim, key = cardata_simulator, generate_secret_key()
    pushes = tmp_path / "pushes.txt"
    store = Store(tmp_path / "bot.sqlite3", [key], clock=sim.now)
    async with CarDataClient(
        store, api_url=cardata_url, auth_url=f"{cardata_url}/gcdm/oauth", clock=sim.now
    ) as client:
        flow = await client.auth.start(DEFAULT_CLIENT_ID)
        sim.decide(flow.code.user_code, "approved")
        outcome = await client.auth.poll(flow)
        assert isinstance(outcome, Approved)
        vins = await client.link(OWNER, DEFAULT_CLIENT_ID, outcome.tokens)
    # the owner's cars, as the garage stores them at linking (the stream writes no other car's state)
    store.save_vehicles(
        OWNER, [StoredVehicle(OWNER, vin, None, None, None, frozenset(), i) for i, vin in enumerate(vins)]
    )

    def lines() -> list[str]:
        return pushes.read_text().splitlines() if pushes.exists() else []

    children = [Child(tmp_path, sim, cardata_url, cardata_broker, key)]
    try:
        await _wait(children[-1].ready.exists, "the first process streams")
        sim.plug_in(DEFAULT_BEV_VIN)
        await _wait(lambda: len(lines()) == 1, "charging started")
        sim.unplug(DEFAULT_BEV_VIN)

        def debouncing() -> bool:
            track = store.cardata_track(OWNER, DEFAULT_BEV_VIN)
            return track is not None and track.deadline is not None

        await _wait(debouncing, "the end is being debounced")
        children[-1].kill()

        sim.advance(121)
        children.append(Child(tmp_path, sim, cardata_url, cardata_broker, key))
        await _wait(lambda: len(lines()) == 2, "the end, pushed by the second process")
        await _wait(children[-1].ready.exists, "the second process streams")
        children[-1].kill()

        children.append(Child(tmp_path, sim, cardata_url, cardata_broker, key))
        await _wait(children[-1].ready.exists, "the third process streams, its first tick done")
    finally:
        for process in children:
            if process.process.poll() is None:
                process.kill()
        store.close()
    started, stopped = lines()
    assert started.startswith("started ") and stopped.startswith("stopped ")
    assert stopped.endswith(" CUSTOMER_INTERACTION_PLUG_REMOVED")
    assert len(lines()) == 2
