"""The CarData simulator's stream side: what the MQTT broker (broker.py) asks of it — who may connect and
subscribe, the messages the cars queued, the streams to drop."""

from __future__ import annotations

import math
from typing import Any

from bot.cardata.simulator.engine import Engine
from bot.cardata.simulator.oauth import OAuth
from bot.cardata.simulator.wire import StreamMessage

# s a gcid's stream still counts as taken after it closed: a CONNACK 5 within ~10 s of one's own disconnect is
# the old session still counting (docs/cardata.md); our assumed value.
STREAM_LINGER = 5.0


class Stream(OAuth, Engine):
    """The stream's side of the state; the broker holds the connections."""

    def __init__(self, *, stream_linger: float, **rest: Any) -> None:
        super().__init__(**rest)
        self.stream_linger = stream_linger
        self._drops: list[str | None] = []  # gcids whose stream the broker must drop (None = all)
        self._held: set[str] = set()  # gcids whose stream "another app" holds (`hold_stream`)
        self._unconfigured: set[str] = set()  # gcids whose subscriptions are refused (`unconfigure_stream`)
        self._closed_at: dict[str, float] = {}  # when each gcid's last stream closed (`stream_linger`)

    def drain_messages(self) -> list[StreamMessage]:
        """Bring every car to now and hand over the stream messages queued since the last call."""
        with self._lock:
            self._sync_all()
            messages = list(self._outbox)
            self._outbox.clear()
            self.published.extend(messages)
            return messages

    def stream_login(self, gcid: str | None, password: str | None, *, live: bool = False) -> int:
        """The CONNACK code for (user name, password): 4 unless a gcid and a valid id token issued to it; then
        5 while the gcid's stream is taken (`live`: the broker has one open; or another app holds it) or
        closed less than `stream_linger` seconds ago; else 0 (docs/cardata.md: the values are assumptions)."""
        with self._lock:
            token = self._id_tokens.get(password or "")
            lingers = self.now() < self._closed_at.get(gcid or "", -math.inf) + self.stream_linger
            if token is None or token.gcid != gcid or token.expires_at <= self.now():
                code = 4
            elif live or gcid in self._held or lingers:
                code = 5
            else:
                code = 0
            self.record("CONNECT", "mqtt", {}, {}, gcid, code)
            return code

    def stream_closed(self, gcid: str) -> None:
        """The broker closed the gcid's stream: BMW still counts it as taken for `stream_linger` seconds."""
        with self._lock:
            self._closed_at[gcid] = self.now()

    def hold_stream(self, gcid: str) -> None:
        """Another app (Home Assistant, evcc...) takes the gcid's stream: ours is dropped, and every
        connection for the gcid is refused with CONNACK 5 until `release_stream`."""
        with self._lock:
            self._held.add(gcid)
        self.drop_connections(gcid)

    def release_stream(self, gcid: str) -> None:
        """The other app lets go of the gcid's stream; it counts as taken for `stream_linger` seconds more."""
        with self._lock:
            if gcid in self._held:
                self._held.discard(gcid)
                self._closed_at[gcid] = self.now()

    def unconfigure_stream(self, gcid: str) -> None:
        """The account's stream is not set up in BMW's portal (no keys ticked under "Configure data stream",
        or the client not subscribed to "CarData Stream"): a live stream is dropped, and every subscription
        is refused with SUBACK 0x80 until `configure_stream`."""
        with self._lock:
            self._unconfigured.add(gcid)
        self.drop_connections(gcid)

    def configure_stream(self, gcid: str) -> None:
        """The owner set the stream up in the portal: subscriptions are granted again."""
        with self._lock:
            self._unconfigured.discard(gcid)

    def stream_subscribe(self, gcid: str, ours: bool) -> bool:
        """SUBSCRIBE by the gcid's connection to a topic that is `ours` (its gcid, its cars) or not: whether
        it is granted (logged with its SUBACK code, 0 or 0x80)."""
        with self._lock:
            granted = ours and gcid not in self._unconfigured
            self.record("SUBSCRIBE", "mqtt", {}, {}, gcid, 0 if granted else 0x80)
            return granted

    def vins_of(self, gcid: str) -> list[str]:
        with self._lock:
            account = self._accounts.get(gcid)
            return list(account.vins) if account else []

    def drop_connections(self, gcid: str | None = None) -> None:
        """Ask the broker to drop the stream of `gcid` (None: every stream)."""
        with self._lock:
            self._drops.append(gcid)
        self._changed()

    def take_drops(self) -> list[str | None]:
        with self._lock:
            drops, self._drops = self._drops, []
            return drops
