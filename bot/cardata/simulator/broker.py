"""The CarData stream: an embedded amqtt broker on loopback, with BMW's rules, in a background thread.

User name = gcid, password = a valid id token issued to it, else CONNACK 4; one connection per gcid: a
second is refused with CONNACK 5 while one is live, for `stream_linger` seconds after it closed, and while
"another app" holds the stream (`sim.hold_stream`), the first is never dropped for it; a connection is
dropped when its id token expires; a client may subscribe to `{gcid}/+` or `{gcid}/{vin}` of its own gcid
only, and not at all while the gcid's stream is not configured (`sim.unconfigure_stream`): SUBACK 0x80, the
connection left open and silent, as BMW does; it may publish nothing. TLS 1.3 only, as BMW's broker since
2026. At most `connects_per_minute` connection attempts per client IP in any minute of the simulator's
clock (BMW publishes no number: docs/cardata.md); the ones over it get CONNACK 3 (server unavailable), and
count too. The broker's own event loop also pumps the
simulator: every `tick` seconds (or at once after a control action) it brings the cars up to "now" and
publishes what changed, so a charging car streams while the clock runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter  # type: ignore[import-untyped]
from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.contexts import Action, BaseContext, BrokerConfig, ListenerConfig, ListenerType  # type: ignore[import-untyped]
from amqtt.mqtt.connack import NOT_AUTHORIZED, SERVER_UNAVAILABLE, ConnackPacket  # type: ignore[import-untyped]
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler  # type: ignore[import-untyped]
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin  # type: ignore[import-untyped]
from amqtt.session import Session  # type: ignore[import-untyped]

from bot.cardata.simulator.state import CardataState
from bot.cardata.simulator.tls import make_certificates
from bot.cardata.simulator.wire import StreamMessage

# Connection attempts one IP may make in any minute (our assumption: BMW publishes no number). Above the
# bot's own CARDATA_CONNECTS_PER_MINUTE (30), so a bot that keeps to its limit is never refused for it.
CONNECTS_PER_IP_PER_MINUTE = 40
MAX_UNHEARD = 100_000


@dataclass
class _Connection:
    writer: asyncio.StreamWriter
    id_token: str
    client_id: str


class CardataBroker:
    """`with CardataBroker(sim) as broker: broker.url, broker.ca_file` — MQTT (over TLS unless tls=False)
    for the simulator `sim`, on `host:port` (port 0: a free one, known before start)."""

    def __init__(
        self,
        sim: CardataState,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = True,
        cert_dir: Path | None = None,
        tick: float = 0.25,
        connects_per_minute: int = CONNECTS_PER_IP_PER_MINUTE,
    ) -> None:
        if connects_per_minute < 1:
            raise ValueError("connects_per_minute must be at least 1")
        self.sim, self.tick, self.connects_per_minute = sim, tick, connects_per_minute
        # s an admitted CONNECT waits for its CONNACK (a broker under load); its stream counts as taken
        self.connack_delay = 0.0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_file: Path | None = None
        self._ssl: ssl.SSLContext | None = None
        if tls:
            if cert_dir is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="cardata-sim-")
                cert_dir = Path(self._tmp.name)
            certs = make_certificates(cert_dir, [host, "localhost", "127.0.0.1"])
            self.ca_file = certs.ca_file
            self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._ssl.minimum_version = ssl.TLSVersion.TLSv1_3
            self._ssl.load_cert_chain(certs.cert_file, certs.key_file)
        self._connections: dict[str, _Connection] = {}  # by gcid: the one live stream each may have
        self._writers: dict[tuple[str, int], asyncio.StreamWriter] = {}  # by peer address
        self._admitted: set[int] = set()  # id() of the sessions `admit` let in, for StreamAuth
        self._attempts: dict[str, deque[float]] = {}  # by client IP: its connection attempts' times
        # The cars' messages published while their account had no subscribed connection: lost, as BMW's QoS 0
        # loses them (the newest MAX_UNHEARD; a soak tells the ends a bot could not have seen by them).
        self.unheard: deque[StreamMessage] = deque(maxlen=MAX_UNHEARD)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._broker: Broker | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"mqtt:{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self._ssl else 'mqtt'}://{self.host}:{self.port}"

    def connected_gcids(self) -> set[str]:
        """The gcids with a live stream right now."""
        return set(self._connections)

    def client_ids(self) -> dict[str, str]:
        """The MQTT client id of each gcid's live stream."""
        return {gcid: connection.client_id for gcid, connection in self._connections.items()}

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> None:
        """Deliver `payload` on `topic` as it is, not as the simulator's cars would (garbage, hostile JSON, a
        body naming another car); returns once it is on its way to the subscribers, before anything later."""
        if self._loop is None or self._broker is None:
            raise RuntimeError("the broker is not running")
        broadcast = self._broker.internal_message_broadcast(topic, payload, 0)
        asyncio.run_coroutine_threadsafe(broadcast, self._loop).result(timeout)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> CardataBroker:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"MQTT broker on {self.url} did not start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        self._sock.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        if self._thread.is_alive():  # its loop hangs: say so, rather than leave it running unnoticed
            raise RuntimeError(f"MQTT broker on {self.url} did not stop within {timeout:g} s")

    def __enter__(self) -> CardataBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); a daemon thread has no one else to tell
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop, self._stop, self._wake = loop, asyncio.Event(), asyncio.Event()
        hub = {"hub": self}
        config = BrokerConfig(
            listeners={"default": ListenerConfig(type=ListenerType.EXTERNAL)},
            plugins={f"{__name__}.StreamAuth": hub, f"{__name__}.StreamTopics": hub},
        )
        broker = self._broker = _Broker(self, config, loop=loop)
        await broker.start()

        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peername")[:2]
            self._writers[peer] = writer
            try:
                await broker.external_connected(
                    StreamReaderAdapter(reader), StreamWriterAdapter(writer), "default"
                )
            finally:
                self._writers.pop(peer, None)
                for gcid, connection in list(self._connections.items()):
                    if connection.writer is writer:
                        self._drop(gcid)
                writer.close()

        server = await asyncio.start_server(connected, sock=self._sock, ssl=self._ssl)
        wake = self._wake

        def changed() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.sim.on_change = changed
        pump = asyncio.create_task(self._pump(broker))
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            self.sim.on_change = None
            pump.cancel()
            server.close()
            for writer in list(self._writers.values()):
                writer.transport.abort()
            await broker.shutdown()

    async def _pump(self, broker: _Broker) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick)
            self._wake.clear()
            for message in self.sim.drain_messages():
                if not broker.listening(message.gcid):
                    self.unheard.append(message)
                data = json.dumps(message.payload()).encode()
                await broker.internal_message_broadcast(message.topic, data, 0)
            for gcid, connection in list(self._connections.items()):
                if not self.sim.id_token_valid(connection.id_token):
                    self._drop(gcid)
            for wanted in self.sim.take_drops():
                for name in [wanted] if wanted is not None else list(self._connections):
                    self._drop(name)

    def _within_limit(self, ip: str) -> bool:
        """Count a connection attempt from `ip`: whether it is within the limit of the last minute."""
        now = self.sim.now()
        attempts = self._attempts.setdefault(ip, deque())
        while attempts and attempts[0] <= now - 60.0:
            attempts.popleft()
        attempts.append(now)
        return len(attempts) <= self.connects_per_minute

    def _drop(self, gcid: str) -> None:
        connection = self._connections.pop(gcid, None)
        if connection is not None:
            connection.writer.transport.abort()
            self.sim.stream_closed(gcid)

    # -- the plugins' rules ------------------------------------------------------------------------------

    def admit(self, session: Session) -> int:
        """CONNECT: its CONNACK code (3 over the per-IP limit, else `sim.stream_login`); the gcid's live
        stream is never dropped for it."""
        writer = self._writers.get((session.remote_address or "", session.remote_port or 0))
        if writer is None:  # the client hung up while being checked
            return NOT_AUTHORIZED
        gcid = session.username
        if not self._within_limit(session.remote_address or ""):
            # MQTT 3.1.1 has no "too many connections" (MQTT 5's 0x9F): "server unavailable" is the closest.
            self.sim.record("CONNECT", "mqtt", {}, {}, gcid, SERVER_UNAVAILABLE)
            return SERVER_UNAVAILABLE
        code = self.sim.stream_login(gcid, session.password, live=gcid in self._connections)
        if code == 0:
            self._connections[gcid] = _Connection(writer, session.password, session.client_id or "")
            self._admitted.add(id(session))
        return code

    def admitted(self, session: Session) -> bool:
        """Whether `admit` let this session in (asked once, by StreamAuth)."""
        if id(session) in self._admitted:
            self._admitted.discard(id(session))
            return True
        return False

    def permits(self, session: Session | None, topic: str | None, action: Action | None) -> bool:
        gcid = session.username if session is not None else None
        if gcid is None or topic is None:
            return False
        if action == Action.SUBSCRIBE:
            ours = topic == f"{gcid}/+" or topic in {f"{gcid}/{vin}" for vin in self.sim.vins_of(gcid)}
            return self.sim.stream_subscribe(gcid, ours)
        if action == Action.RECEIVE:
            return topic.startswith(f"{gcid}/")
        return False  # the stream is read-only: clients publish nothing


class _Broker(Broker):
    """amqtt's broker answers every refused CONNECT with CONNACK 5, and hands a refused client's id over
    (dropping a live session of that id) before it answers: the hub checks each CONNECT first, and a refused
    one gets its own code (3: over the per-IP limit, 4: bad credentials, 5: the stream is taken) and nothing
    else."""

    def __init__(self, hub: CardataBroker, config: BrokerConfig, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, loop=loop)
        self._hub = hub

    def listening(self, gcid: str) -> bool:
        """Whether a connected session of the gcid subscribed to its cars' topics."""
        return any(
            session.transitions.state == "connected"
            for topic, subscribers in self._subscriptions.items()
            if topic.startswith(f"{gcid}/")
            for session, _ in subscribers
        )

    async def _handle_client_session(
        self,
        reader: Any,
        writer: Any,
        client_session: Session,
        handler: BrokerProtocolHandler,
        server: Any,
        listener_name: str,
    ) -> None:
        code = self._hub.admit(client_session)
        if code:
            with contextlib.suppress(ConnectionError):  # the client may hang up first: it has its answer
                await ConnackPacket.build(0, code).to_stream(writer)
                await writer.close()
            return
        if self._hub.connack_delay:
            await asyncio.sleep(self._hub.connack_delay)
        await super()._handle_client_session(reader, writer, client_session, handler, server, listener_name)


class StreamAuth(BaseAuthPlugin):
    """amqtt plugin: CONNECT checked by the CardataBroker given in the config as `hub` (`_Broker`)."""

    @dataclass
    class Config:
        hub: Any = None

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.hub: CardataBroker = self.config.hub

    async def authenticate(self, *, session: Session) -> bool:
        return self.hub.admitted(session)


class StreamTopics(BaseTopicPlugin):
    """amqtt plugin: SUBSCRIBE, PUBLISH and delivery checked by the CardataBroker given as `hub`."""

    @dataclass
    class Config:
        hub: Any = None

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self.hub: CardataBroker = self.config.hub

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool:
        return self.hub.permits(session, topic, action)
