"""What the CarData package needs from storage, as a Protocol: bot/store.py implements it with SQLite.

The package itself never imports a database. `owner` is the caller's id of a linked account (the bot uses the
Telegram user id). Tokens and client ids are secrets: an implementation encrypts them at rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.cardata.models import Tokens


@dataclass(frozen=True)
class CarDataLink:
    """One owner's link to CarData: their own client id, the tokens, and the bot's container once made."""

    owner: int
    client_id: str
    tokens: Tokens
    container_id: str | None = None


@dataclass(frozen=True)
class ChargeTrack:
    """The charge-event detector's memory of one car, persisted so a restart neither misses nor repeats.

    `session_start` is set while a charge is known (CHARGINGACTIVE seen); `deadline` while a stop is being
    debounced; `pending` holds an event written but not yet confirmed pushed (JSON), `last_event` the key of
    the last one pushed.
    """

    owner: int
    vin: str
    status: str | None = None
    session_start: float | None = None
    soc_at_start: float | None = None
    deadline: float | None = None
    pending: str | None = None
    last_event: str | None = None


@dataclass(frozen=True)
class EndedCharge:
    """A charge the detector saw end, for the owner's charging history. Times are epoch seconds."""

    owner: int
    vin: str
    started_at: float  # when the charge was first seen active
    ended_at: float  # when it was first seen no longer active (the debounce's start)
    soc_start: float | None
    soc_end: float | None
    outcome: str  # "complete" or "stopped" (ChargeEventKind)
    reason: str | None  # reasonChargingEnd, when the car sent one
    position: tuple[float, float] | None  # (lat, lon), where the car last reported being


class CarDataStore(Protocol):
    # links and tokens
    def cardata_link(self, owner: int) -> CarDataLink | None: ...
    def cardata_links(self) -> list[CarDataLink]: ...
    def save_cardata_link(self, link: CarDataLink) -> None: ...
    def save_cardata_tokens(self, owner: int, tokens: Tokens) -> None: ...
    def save_cardata_container(self, owner: int, container_id: str) -> None: ...

    # the daily call budget: `day` is the UTC date, e.g. "2026-05-01"
    def spend_cardata_call(self, owner: int, day: str, limit: int) -> bool:
        """Count one call if fewer than `limit` were counted that day, atomically; False when none is left."""
        ...

    def cardata_calls(self, owner: int, day: str) -> int: ...
    def exhaust_cardata_calls(self, owner: int, day: str, calls: int) -> None:
        """Raise that day's count to at least `calls` (BMW said the quota is spent)."""
        ...

    # the owner's linked cars: the stream writes no other car's state
    def cardata_vins(self, owner: int) -> list[str]: ...

    # last known values per car: `values` is CarState.to_json()
    def cardata_states(self, owner: int) -> dict[str, Any]: ...
    def save_cardata_state(self, owner: int, vin: str, values: dict[str, Any]) -> None: ...

    # the charge-event detector
    def cardata_track(self, owner: int, vin: str) -> ChargeTrack | None: ...
    def save_cardata_track(self, track: ChargeTrack) -> None: ...
    def end_cardata_charge(self, track: ChargeTrack, ended: EndedCharge) -> None:
        """Save the track that ends a charge and record the charge in the owner's history, atomically (so
        it is recorded once); ignored, as the track is, when the owner is no longer linked."""
        ...

    def cardata_tracks_due(self, now: float) -> list[ChargeTrack]:
        """Tracks whose debounce deadline has passed, or whose event is still pending."""
        ...
