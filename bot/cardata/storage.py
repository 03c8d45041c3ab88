"""What the CarData package needs from storage, as a Protocol: bot/store/cardata.py implements it with SQLite.

The package itself never imports a database. `owner` is the caller's id of a linked account (the bot uses the
Telegram user id); `gcid` is BMW's id of the account, which co-owners (several owners who linked the same BMW
account) share. Tokens and client ids are secrets: an implementation encrypts them at rest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.capabilities import BackendName
from bot.cardata.models import Tokens
from bot.drives import Drive, Parked
from bot.history import ChargeSession, energy_kwh, usable_kwh

if TYPE_CHECKING:  # bot.history reads this module's EndedCharge
    from bot.history import ChargeSession


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
    debounced (or a report with no charge known, as a quiet car's burst, is waited out); `pending` holds an
    event written but not yet confirmed pushed (JSON), `last_event` the key of the last one pushed.
    `known_soc`, `known_reason` and `known_at` are the last report decided on: its level, the end reason it
    carried and when the car sent it (epoch seconds), what a charge that ended unseen is told from.
    `late_read_at`: when the bot read the car's snapshot because its charge should have ended unreported
    (bot/cardata/late.py), once per charge; cleared when a report that is no charge is decided on.
    """

    owner: int
    vin: str
    status: str | None = None
    session_start: float | None = None
    soc_at_start: float | None = None
    deadline: float | None = None
    pending: str | None = None
    last_event: str | None = None
    known_soc: float | None = None
    known_reason: str | None = None
    known_at: float | None = None
    late_read_at: float | None = None


@dataclass(frozen=True)
class EndedCharge:
    """A charge the detector saw end, for the owner's charging history. Times are epoch seconds."""

    owner: int
    vin: str
    started_at: float  # when the charge was first seen active (one that ended unseen: the report before it)
    ended_at: float  # when it was first seen no longer active (the debounce's start; unseen: its report)
    soc_start: float | None
    soc_end: float | None
    outcome: str  # "complete" or "stopped" (ChargeEventKind)
    reason: str | None  # reasonChargingEnd, when the car sent one
    position: tuple[float, float] | None  # (lat, lon), where the car last reported being

    def session(self, battery_kwh: float | None = None) -> ChargeSession:
        """The charge in the history's neutral shape; `battery_kwh` is basic data's hvsMaxEnergyAbsolute if
        known."""
        position = self.position or (None, None)
        return ChargeSession(
            tg_id=self.owner,
            vin=self.vin,
            started_at=self.started_at,
            ended_at=self.ended_at,
            soc_start=self.soc_start,
            soc_end=self.soc_end,
            energy_kwh=energy_kwh(self.soc_start, self.soc_end, usable_kwh(None, battery_kwh)),
            ended=self.outcome,
            reason=self.reason,
            lat=position[0],
            lon=position[1],
            source=BackendName.CARDATA,
        )


@dataclass(frozen=True)
class AccountCalls:
    """One BMW account's calls of one day, as seen by one owner: `total` every call counted against the
    account (by anyone who linked it, unlinked since or not, and at least BMW's count when it said the quota
    was spent), `own` the owner's, `others` each co-owner's (the other owners linked to it now),
    `first_call_at` when the account's first call of that day was counted (None: none, or not recorded).
    `day_before` and `day_before_first_call_at`: the same of the day before, which BMW may still count
    (bot/cardata/client.py)."""

    total: int = 0
    own: int = 0
    others: tuple[int, ...] = ()
    first_call_at: float | None = None
    day_before: int = 0
    day_before_first_call_at: float | None = None


class CarDataStore(Protocol):
    # links and tokens
    def cardata_link(self, owner: int) -> CarDataLink | None: ...
    def cardata_links(self) -> list[CarDataLink]: ...
    def save_cardata_link(self, link: CarDataLink) -> None: ...
    def save_cardata_tokens(self, owner: int, tokens: Tokens, renewed: Tokens) -> bool:
        """Store `tokens`, renewed from `renewed`, unless the owner's link holds other tokens by now (they
        linked again while the renewal was out); whether they were stored."""
        ...

    def replace_cardata_container(self, gcid: str, old: str, new: str) -> None:
        """Every link of account `gcid` that reads through container `old` reads through `new` from now on
        (BMW lost `old`; co-owners share the container)."""
        ...

    def cardata_container_shared(self, owner: int) -> bool:
        """Whether another owner linked to the same account (gcid) uses this owner's container."""
        ...

    # the daily call budget, per BMW account: `day` is the UTC date, e.g. "2026-05-01"
    def spend_cardata_call(
        self, gcid: str, owner: int, day: str, allowed: Callable[[AccountCalls], bool], now: float
    ) -> bool:
        """Count one call of `owner` against account `gcid` at `now` if `allowed` says so of that day's calls,
        atomically (the check and the count in one transaction); False when it did not."""
        ...

    def cardata_calls(self, gcid: str, owner: int, day: str) -> AccountCalls: ...
    def exhaust_cardata_calls(self, gcid: str, day: str, calls: int) -> None:
        """Raise the account's count of that day to at least `calls` (BMW said the quota is spent)."""
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

    def charge_sessions(self, tg_id: int, vin: str) -> list[ChargeSession]:
        """The car's recorded charges, newest first (its charge rate for the estimate of a quiet car)."""
        ...

    # drives (bot/drives.py): each car's last parked report, and the drive the next one closes
    def drive_mark(self, owner: int, vin: str) -> Parked | None: ...
    def save_drive_mark(self, owner: int, vin: str, mark: Parked, drive: Drive | None = None) -> None:
        """Keep `mark` and record `drive` (once per car and `ended_at`), atomically; ignored when the owner
        is no longer linked."""
        ...

    def cardata_model(self, owner: int, vin: str) -> str | None:
        """The car's model as stored at linking (its battery's usable capacity follows it)."""
        ...

    def cardata_tracks_due(self, now: float) -> list[ChargeTrack]:
        """Tracks whose debounce deadline has passed, or whose event is still pending."""
        ...

    def cardata_next_deadline(self, after: float) -> float | None:
        """The earliest debounce deadline later than `after`, if any: when the detector next has work."""
        ...
