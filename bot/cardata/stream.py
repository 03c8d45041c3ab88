"""The CarData MQTT stream: one connection per gcid, many owners' cars in one process.

BMW allows one connection per gcid at a time (a second is refused with CONNACK 5) and limits connection
attempts per IP per minute. So the supervisor keeps exactly one `_GcidStream` per gcid, paces every connection
attempt of the process through one `ConnectPacer` (staggered starts, at most so many a minute), pauses them
all while BMW refuses many accounts at once (`OutageBreaker`), and each stream reconnects with capped
exponential backoff and full jitter (`Backoff`; the three in bot/cardata/pacing.py). The client id and user
name are the gcid, the password is the id token, renewed shortly before it expires (and the stream
reconnected at once with it), or once when the broker refused it (CONNACK 4; refused again, the owner is
asked to link again). A CONNACK 5 is never the token: our own closed session may still count for
a few seconds, so the stream tries once more after `held_retry` seconds; refused again, another app holds the
stream (docs/cardata.md): its owners are told (`on_blocked`), and it tries again every few minutes, or at
once on `try_now`. A subscription BMW refuses (SUBACK 0x80: the stream is not set up in its portal) is no
stream either: the connection is closed, the owners are told the same way (`on_blocked`, with the reason)
and it is tried again minutes apart, never with renewed tokens. Owners who linked the same account (co-owners)
share its stream: it uses one owner's tokens at a
time, and when BMW refuses an owner's link only that owner leaves the stream (and is asked to link again); the
next owner's tokens carry it on. Every owner's tokens are renewed well before their refresh token ages out
(`renew`). Each message updates the car's last known values in memory and feeds the charge-event detector;
they are in the store (so a restart shows them at once) before the detector hears of a change it looks at,
else once the burst that brought them is in. A message that fails in any way is dropped alone, and a
stream task that dies unexpectedly is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from paho.mqtt.client import MQTTv311

from bot.cardata.auth import TokenKeeper
from bot.cardata.errors import CarDataError, NotLinked, RelinkNeeded
from bot.cardata.events import REPORT_KEYS, ChargeDetector
from bot.cardata.models import CarState, StreamBlock, StreamMessage, TelematicValue, Tokens
from bot.cardata.pacing import BLOCKED_BACKOFF, CONNECTS_PER_MINUTE, Backoff, ConnectPacer, OutageBreaker
from bot.cardata.sessions import MqttSessions
from bot.cardata.socket_race import quiet_closed_socket_race
from bot.cardata.storage import CarDataStore
from bot.store_errors import StoreFull

log = logging.getLogger(__name__)

DEFAULT_MQTT_URL = "mqtts://customer.streaming-cardata.bmwgroup.com:9000"
ID_TOKEN_MARGIN = 300.0  # a connection should outlive the next few minutes before the broker drops it
EXPIRY_CHECK = 30.0  # s between looks at a live connection's id token (the clock may jump, e.g. on resume)
# Every streamed owner's tokens are renewed once their refresh token (two weeks) has less than a week left,
# checked every few hours: the stream renews only the tokens it uses, and a link unused two weeks is gone.
RENEW_EVERY = 6 * 3600.0
REFRESH_MARGIN = 7 * 86400.0
_BAD_TOKEN = frozenset({4, 134})  # MQTT 3.1.1 CONNACK 4 (bad user name or password), its MQTT 5 reason code
_TAKEN = frozenset({5, 135})  # CONNACK 5 (not authorised): BMW's answer while another client holds the stream
HELD_RETRY = 10.0  # s: BMW may count a closed session ~10 s (BD and others retry after ~3 s)
_CANCEL_AGAIN_AFTER = 2.0  # s a cancelled stream may take to say goodbye to the broker before another cancel

Listener = Callable[[int, CarState, set[str]], Awaitable[None]]
# (owner, why BMW lets nothing through their account's stream now; None once it flows again)
OnBlocked = Callable[[int, StreamBlock | None], Awaitable[None]]


@dataclass(frozen=True)
class MqttEndpoint:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> MqttEndpoint:
        """`mqtts://host:port`, or `mqtt://` for a broker on loopback only (no bare token on a network)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtts://host:port (or mqtt:// on loopback)")
        tls = parts.scheme == "mqtts"
        if not tls and not is_loopback(parts.hostname):
            raise ValueError("mqtt:// (without TLS) is only allowed for a broker on loopback")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the port is not a number") from None
        return cls(parts.hostname, port or (8883 if tls else 1883), tls)


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine: the only place a plain (unencrypted) connection may go."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """The system's trust, plus `ca_file` (a private broker's CA, e.g. the simulator's) when given."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=str(ca_file))
    return context


@dataclass
class StreamStats:
    connects: int = 0
    refused: int = 0  # CONNACK 4: the id token
    taken: int = 0  # CONNACK 5: the stream is another client's
    unsubscribed: int = 0  # SUBACK 0x80: the stream is not set up in BMW's portal
    drops: int = 0
    messages: int = 0


@dataclass
class _GcidStream:
    gcid: str
    owners: list[int]
    task: asyncio.Task[None] | None = None
    stats: StreamStats = field(default_factory=StreamStats)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    blocked: StreamBlock | None = None  # why BMW lets nothing through now, if it does not
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # `try_now`: end the wait at once
    unsaved: set[tuple[int, str]] = field(default_factory=set)  # (owner, VIN): changed, written at burst end


class StreamSupervisor:
    """Runs the streams of every linked owner; `add`/`remove` follow links and unlinks while it runs."""

    def __init__(
        self,
        store: CarDataStore,
        tokens: TokenKeeper,
        detector: ChargeDetector | None,
        *,
        mqtt_url: str = DEFAULT_MQTT_URL,
        ca_file: str | Path | None = None,
        connect_interval: float = 0.2,
        connects_per_minute: int = CONNECTS_PER_MINUTE,
        backoff: Backoff | None = None,
        keepalive: int = 30,
        listener: Listener | None = None,
        on_relink: Callable[[int], Awaitable[None]] | None = None,
        on_blocked: OnBlocked | None = None,
        held_retry: float = HELD_RETRY,
        blocked_backoff: Backoff = BLOCKED_BACKOFF,
        renew_every: float = RENEW_EVERY,
        expiry_check: float = EXPIRY_CHECK,
        outage: OutageBreaker | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._detector = detector
        self._endpoint = MqttEndpoint.parse(mqtt_url)
        self._tls = tls_context(ca_file) if self._endpoint.tls else None
        self._pacer = ConnectPacer(connects_per_minute, connect_interval)
        self._backoff = backoff or Backoff()
        self._keepalive = keepalive
        self._listener = listener
        self._on_relink = on_relink
        self._on_blocked = on_blocked
        self._held_retry = held_retry
        self._blocked_backoff = blocked_backoff
        self._rng = rng or random.Random()
        self._outage = outage or OutageBreaker(rng=self._rng)
        self._clock = clock
        self._renew_every = renew_every
        self._expiry_check = expiry_check
        self._renewing: asyncio.Task[None] | None = None
        self._sessions = MqttSessions()
        self._streams: dict[str, _GcidStream] = {}
        self._states: dict[tuple[int, str], CarState] = {}

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """A stream for every stored link (connections are paced, so starts are staggered), and the renewal
        of every streamed owner's tokens."""
        for link in self._store.cardata_links():
            self.add(link.owner)
        self._renewing = asyncio.create_task(self._renew_forever(), name="cardata-token-renewal")

    def add(self, owner: int) -> None:
        """Stream an owner's cars (after linking); a second owner of the same gcid shares its connection."""
        link = self._store.cardata_link(owner)
        if link is None:
            raise NotLinked()
        for vin, values in self._store.cardata_states(owner).items():
            self._states.setdefault((owner, vin), CarState.from_json(vin, values))
        gcid = link.tokens.gcid
        stream = self._streams.get(gcid)
        if stream is not None:
            if owner not in stream.owners:
                stream.owners.append(owner)
            return
        stream = _GcidStream(gcid, [owner])
        self._streams[gcid] = stream
        stream.task = asyncio.create_task(self._supervise(stream), name=f"cardata-stream-{owner}")

    async def remove(self, owner: int) -> None:
        """Stop streaming an owner's cars (unlink); the connection closes when no owner is left on it."""
        for gcid, stream in list(self._streams.items()):
            if owner in stream.owners:
                stream.owners.remove(owner)
                if not stream.owners:
                    del self._streams[gcid]
                    await _cancel(stream.task)
        for car in [car for car in self._states if car[0] == owner]:
            del self._states[car]

    async def aclose(self) -> None:
        await _cancel(self._renewing)
        streams, self._streams = list(self._streams.values()), {}
        for stream in streams:
            await _cancel(stream.task)
        await self._sessions.aclose()

    # --- what callers read ----------------------------------------------------------------------------------

    def state(self, owner: int, vin: str) -> CarState | None:
        """The car's last known values (from the stream, or the store after a restart)."""
        return self._states.get((owner, vin))

    def cars(self) -> list[tuple[int, str]]:
        """(owner, VIN) of every car whose state is known."""
        return list(self._states)

    def stats(self, owner: int) -> StreamStats | None:
        stream = self._stream_of(owner)
        return None if stream is None else stream.stats

    def blocked(self, owner: int) -> StreamBlock | None:
        """Why BMW lets nothing through the stream of the owner's account now (None: it does, or no link)."""
        stream = self._stream_of(owner)
        return None if stream is None else stream.blocked

    def try_now(self, owner: int) -> bool:
        """Connect the owner's blocked stream at once instead of at the end of its wait; False when it is not
        blocked (streaming, or not linked): nothing to do."""
        stream = self._stream_of(owner)
        if stream is None or stream.blocked is None:
            return False
        stream.wake.set()
        return True

    async def wait_connected(self, owner: int) -> None:
        stream = self._stream_of(owner)
        if stream is None:
            raise NotLinked()
        await stream.connected.wait()

    def _stream_of(self, owner: int) -> _GcidStream | None:
        return next((s for s in self._streams.values() if owner in s.owners), None)

    # --- the owners of one account -------------------------------------------------------------------------

    async def renew(self) -> None:
        """Renew each streamed owner's tokens that come near the end of their refresh token (REFRESH_MARGIN),
        so any co-owner can carry the stream, and none has to link again for having been quiet. An owner BMW
        refuses is dropped from the stream (and asked to link again); the others stream on."""
        for stream in list(self._streams.values()):
            for owner in list(stream.owners):
                try:
                    await self._tokens.keep_alive(owner, REFRESH_MARGIN)
                except (RelinkNeeded, NotLinked):
                    await self._drop(stream, owner)
                    if not stream.owners:
                        await _cancel(stream.task)
                except CarDataError as exc:
                    log.info("cardata: token renewal failed for owner %s (%s)", owner, type(exc).__name__)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                await self.renew()
            except Exception:
                log.exception("cardata: renewing tokens failed")

    async def _drop(self, stream: _GcidStream, owner: int) -> None:
        """BMW refused the owner's link: stop streaming to them, ask them to link again; a co-owner's link
        carries the stream on. The last one's drop ends it, so that `add` after a new link starts afresh."""
        log.warning("cardata: owner %s leaves the stream: the link must be renewed", owner)
        if owner in stream.owners:
            stream.owners.remove(owner)
        if not stream.owners and self._streams.get(stream.gcid) is stream:
            del self._streams[stream.gcid]
        if self._on_relink is not None:
            await self._on_relink(owner)

    # --- one connection -------------------------------------------------------------------------------------

    async def _supervise(self, stream: _GcidStream) -> None:
        """`_run`, started again with back-off should it ever die of an unexpected error (a bug, the
        database): a stream task that ended silently would leave its owners stale until the next restart."""
        quiet_closed_socket_race(asyncio.get_running_loop())
        crashes = 0
        while True:
            started = self._clock()
            try:
                await self._run(stream)
                return
            except Exception:
                log.exception("cardata: a stream failed unexpectedly; starting it again")
            if self._clock() - started >= self._backoff.stable_after:
                crashes = 0
            await asyncio.sleep(self._backoff.delay(crashes, self._rng))
            crashes += 1

    async def _run(self, stream: _GcidStream) -> None:
        failures = taken = unsubscribed = 0
        refused: tuple[int, Tokens] | None = None  # an owner's id token the broker refused (CONNACK 4)
        renewed: int | None = None  # the owner whose token was renewed for a refusal: refused again, relink
        while stream.owners:
            owner = stream.owners[0]
            await self._outage.wait()
            await self._pacer.wait()
            stale = refused[1] if refused is not None and refused[0] == owner else None
            try:
                tokens = await self._tokens.tokens(owner, margin=ID_TOKEN_MARGIN, stale=stale)
            except (RelinkNeeded, NotLinked):
                await self._drop(stream, owner)  # the next owner's tokens, if any, at once
                continue
            except CarDataError as exc:
                log.info("cardata: token renewal failed for owner %s (%s)", owner, type(exc).__name__)
                await asyncio.sleep(self._backoff.delay(failures, self._rng))
                failures += 1
                continue
            if stale is not None:
                renewed = owner
            refused = None
            started = self._clock()
            try:
                if await self._connect(stream, owner, tokens):
                    stream.connected.clear()  # a reconnect with a fresh id token, not a drop: no back-off
                    failures, taken, unsubscribed, renewed = 0, 0, 0, None
                    continue
            except _SubscriptionRefused:
                log.info("cardata: the stream of owner %s is not set up at BMW (SUBACK 0x80)", owner)
                stream.stats.unsubscribed += 1
                await self._wait_blocked(stream, StreamBlock.NOT_CONFIGURED, unsubscribed)
                unsubscribed += 1
                continue
            except aiomqtt.MqttCodeError as exc:
                code = _code(exc)
                log.info("cardata: stream of owner %s failed (rc %s)", owner, code)
                if code in _TAKEN:
                    stream.stats.taken += 1
                    taken += 1
                    await self._taken(stream, taken)
                    continue
                if not stream.connected.is_set():
                    self._outage.failed(stream.gcid)
                if code in _BAD_TOKEN:
                    stream.stats.refused += 1
                    if renewed == owner:  # a fresh token refused too: the link is no good
                        renewed = None
                        await self._drop(stream, owner)
                        continue
                    refused = (owner, tokens)
            except aiomqtt.MqttError as exc:
                log.info("cardata: stream of owner %s dropped (%s)", owner, type(exc).__name__)
                if not stream.connected.is_set():
                    self._outage.failed(stream.gcid)
            finally:
                if stream.connected.is_set():
                    stream.stats.drops += 1
                    taken, unsubscribed, renewed = 0, 0, None
                stream.connected.clear()
            if self._clock() - started >= self._backoff.stable_after:
                failures = 0
            await asyncio.sleep(self._backoff.delay(failures, self._rng))
            failures += 1

    async def _taken(self, stream: _GcidStream, refusals: int) -> None:
        """The broker refused the stream with CONNACK 5 for the `refusals`-th time in a row: wait before the
        next try, without touching the tokens. The first may be our own closed session still counting: one
        retry soon; then another app holds it: its owners are told, and the tries are minutes apart."""
        if refusals == 1:
            await self._wait(stream, self._held_retry)
        else:
            await self._wait_blocked(stream, StreamBlock.HELD, refusals - 2)

    async def _wait_blocked(self, stream: _GcidStream, block: StreamBlock, retries: int) -> None:
        """BMW lets nothing through, for `block`, the `retries`+1-th time in a row: its owners are told when
        that is news, and the next try is minutes away (or `try_now`)."""
        if stream.blocked is not block:
            stream.blocked = block
            log.info("cardata: the stream of owner %s is blocked (%s)", stream.owners[0], block)
            await self._tell_blocked(stream, block)
        await self._wait(stream, self._blocked_backoff.base + self._blocked_backoff.delay(retries, self._rng))

    async def _wait(self, stream: _GcidStream, delay: float) -> None:
        """`delay` seconds, or until `try_now`."""
        stream.wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stream.wake.wait(), delay)

    async def _tell_blocked(self, stream: _GcidStream, block: StreamBlock | None) -> None:
        """Tell each owner of the stream why BMW lets nothing through (None: it flows again); a failure is
        the owner's alone."""
        if self._on_blocked is None:
            return
        for owner in list(stream.owners):
            try:
                await self._on_blocked(owner, block)
            except Exception:
                log.exception("cardata: telling owner %s about their blocked stream failed", owner)

    async def _connect(self, stream: _GcidStream, owner: int, tokens: Tokens) -> bool:
        """Stream until the broker drops the connection (an MqttError), or until the owner's id token was
        renewed near its expiry: True, reconnect at once with the fresh one. A refused subscription leaves
        the connection open and silent at BMW: it is closed (`_SubscriptionRefused`)."""
        async with self._sessions.open(
            aiomqtt.Client(
                self._endpoint.host,
                self._endpoint.port,
                identifier=tokens.gcid,  # BMW asks for the gcid as the client id
                username=tokens.gcid,
                password=tokens.id_token,
                protocol=aiomqtt.ProtocolVersion(MQTTv311),
                tls_context=self._tls,
                keepalive=self._keepalive,
                clean_session=True,
                timeout=30,
            )
        ) as client:
            # aiomqtt records a drop in a future it reads only while we wait for messages: a drop that comes
            # as the stream stops or reconnects for its token would be reported as never retrieved (aiomqtt
            # 2.5 has no public hook for it).
            client._disconnected.add_done_callback(_retrieved)
            granted = await client.subscribe(f"{tokens.gcid}/+", qos=0)
            self._outage.succeeded()  # BMW's broker answers: whatever the subscription, no outage
            if any(getattr(code, "value", code) >= 0x80 for code in granted):  # MQTT 3.1.1: 0x80 refused
                raise _SubscriptionRefused()
            stream.stats.connects += 1
            stream.connected.set()
            stream.blocked = None
            await self._tell_blocked(stream, None)  # an episode's notice is over (a restart's too)
            try:
                async with asyncio.timeout(None) as renewal:
                    renewing = asyncio.create_task(self._renew_before_expiry(stream, owner, tokens, renewal))
                    try:
                        async for message in client.messages:
                            stream.stats.messages += 1
                            await self._handle(stream, str(message.topic), message.payload)
                            if not len(client.messages):  # the burst is in
                                self._save_unsaved(stream)
                    finally:
                        renewing.cancel()
                        self._save_unsaved(stream)
            except TimeoutError:
                if not renewal.expired():
                    raise
                return True
        return False

    async def _renew_before_expiry(
        self, stream: _GcidStream, owner: int, tokens: Tokens, renewal: asyncio.Timeout
    ) -> None:
        """Renew the id token shortly before it expires, then end the connection (`renewal`) so that the
        stream reconnects with the fresh one at once. Waiting for the broker's drop would lose what the car
        sends until the drop is noticed and the stream is back: QoS 0 keeps nothing for us. An owner who
        unlinked meanwhile ends it at once: a co-owner's tokens carry the stream on, not theirs."""
        # Looked at every `expiry_check` s, not slept through at once: the token's clock is the wall clock.
        while (left := self._tokens.expires_in(tokens) - ID_TOKEN_MARGIN) >= 0:
            if owner not in stream.owners:
                renewal.reschedule(asyncio.get_running_loop().time())
                return
            await asyncio.sleep(min(self._expiry_check, left) + 0.001)  # past the margin, so it renews
        try:
            # Shielded: the broker's drop cancels this task, and a refresh cut off after BMW rotated the
            # refresh token would lose the new one (the old one is then refused: the owner must link again).
            # Cut off, its failure is the reconnect's to meet: looked at here, never reported as unretrieved.
            refresh = asyncio.ensure_future(self._tokens.tokens(owner, margin=ID_TOKEN_MARGIN))
            refresh.add_done_callback(_retrieved)
            await asyncio.shield(refresh)
        except CarDataError as exc:  # the broker's drop at expiry brings the stream round to try again
            log.info("cardata: token renewal failed for owner %s (%s)", owner, type(exc).__name__)
            return
        renewal.reschedule(asyncio.get_running_loop().time())

    async def _handle(self, stream: _GcidStream, topic: str, payload: object) -> None:
        """One message into its car's state for each owner. Whatever fails drops this message only, never the
        stream (a hostile payload nests deep enough to raise RecursionError); the log names the error's type,
        never the payload."""
        gcid, _, vin = topic.partition("/")
        if gcid != stream.gcid or not vin:  # we subscribe to `{gcid}/+`: nothing else is ours
            log.info("cardata: a stream message on a foreign topic was dropped")
            return
        try:
            body = json.loads(payload if isinstance(payload, bytes | str) else b"")
            message = StreamMessage.from_api(body, topic_vin=vin)
        except Exception as exc:
            log.info("cardata: a stream message was dropped (%s)", type(exc).__name__)
            return
        for owner in list(stream.owners):
            try:
                if message.vin not in self._store.cardata_vins(owner):
                    continue  # a car of the account the owner did not link (e.g. a SECONDARY one)
                await self._apply(owner, message.vin, message.values, stream.unsaved)
            except Exception as exc:
                log.warning("cardata: a stream message was lost for owner %s (%s)", owner, type(exc).__name__)

    async def apply(self, owner: int, vin: str, values: Mapping[str, TelematicValue]) -> CarState:
        """Merge values into the car's state, persist it and tell the detector and listener what changed.

        The stream calls it for each message; call it with a REST read (`telematic_data`) too, so both
        sources keep one state per car.
        """
        return await self._apply(owner, vin, values, None)

    async def _apply(
        self,
        owner: int,
        vin: str,
        values: Mapping[str, TelematicValue],
        unsaved: set[tuple[int, str]] | None,
    ) -> CarState:
        """`apply`; with `unsaved` (the stream's) a change the detector does not look at is only noted there,
        written with the car's next report or at the end of the burst (`_save_unsaved`): a quiet car sends
        its burst one key a message, and each write is the car's whole state."""
        state = self._states.setdefault((owner, vin), CarState(vin))
        changed = state.merge(values)
        if not changed:
            return state
        if unsaved is not None and not changed & REPORT_KEYS:
            unsaved.add((owner, vin))
        else:
            # What the detector decides on is on disk before it hears (a restart decides from the store).
            if unsaved is not None:
                unsaved.discard((owner, vin))
            self._save(owner, vin, state)
        try:
            if self._detector is not None:
                await self._detector.observe(owner, state, changed)
            if self._listener is not None:
                await self._listener(owner, state, changed)
        except Exception:
            log.exception("cardata: handling a car's new values failed")
        return state

    def _save(self, owner: int, vin: str, state: CarState) -> None:
        # On a full disk the state stays in memory, written with the car's next change; the detector still
        # hears of this one (docs/exactly-once-push.md).
        with contextlib.suppress(StoreFull):
            self._store.save_cardata_state(owner, vin, state.to_json())

    def _save_unsaved(self, stream: _GcidStream) -> None:
        cars, stream.unsaved = stream.unsaved, set()
        for owner, vin in cars:
            state = self._states.get((owner, vin))
            try:
                if state is not None:  # gone: the owner unlinked meanwhile
                    self._save(owner, vin, state)
            # The stream goes on: the state is in memory, written with the car's next change.
            except Exception as exc:
                log.warning(
                    "cardata: a car's state was not written for owner %s (%s)", owner, type(exc).__name__
                )


class _SubscriptionRefused(Exception):
    """SUBACK 0x80: BMW refused the subscription to `{gcid}/+` (the stream is not set up in its portal)."""


def _code(exc: aiomqtt.MqttCodeError) -> int | None:
    rc = exc.rc
    value = getattr(rc, "value", rc)
    return value if isinstance(value, int) else None


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A done callback: the future's failure counts as seen (whoever needs it reads it too)."""
    if not future.cancelled():
        future.exception()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is None or task.done():
        return
    # One cancel can be lost: on Python 3.11, asyncio.wait_for (aiomqtt waits for the broker's CONNACK and
    # SUBACK with it) returns the reply instead of raising when the cancel lands in the loop turn that brings
    # it, and the stream would listen on while we wait for it forever. So cancel until it has ended.
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=_CANCEL_AGAIN_AFTER)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()
