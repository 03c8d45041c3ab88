"""The rows the Store reads and writes, as dataclasses: where a table's columns are a dataclass's fields,
the dataclass is the column list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredToken:
    access_token: str
    refresh_token: str | None
    expires_at: float  # Unix time


@dataclass(frozen=True)
class StoredAccount:
    tg_id: int
    region: str
    username: str
    password: str
    token: StoredToken | None
    security_answer: str | None


@dataclass(frozen=True)
class StoredVehicle:
    tg_id: int
    vin: str
    model: str | None
    license_plate: str | None
    drive_train: str | None
    capabilities: frozenset[str]
    position: int  # order in the account's list


@dataclass(frozen=True)
class NotifyPrefs:
    finished: bool = True
    started: bool = False
    interrupted: bool = False


@dataclass(frozen=True)
class UserSettings:
    """What a user chose in /settings; None is "not chosen": the default that follows their Telegram
    language_code (or, for the time zone, the server's). `language_code` is the last one Telegram sent, kept
    for messages sent without an update (pushes)."""

    language_code: str | None = None
    units: str | None = None  # "km" or "mi"
    clock: int | None = None  # 24 or 12
    language: str | None = None  # "en" or "de"
    time_zone: str | None = None  # an IANA name
    quiet: bool = False  # quiet hours on: pushes inside the window arrive without a sound
    quiet_start: int | None = None  # minutes after midnight, in `time_zone`
    quiet_end: int | None = None


@dataclass(frozen=True)
class ChargeWatch:
    """The watcher's memory of one car of one user, persisted so that a restart neither misses nor repeats."""

    vin: str
    tg_id: int
    charging_status: str | None
    connection_status: str | None
    charging_since: float | None  # when the current charge began (one never seen running: the poll before)
    soc_at_start: int | None  # state of charge when it began
    last_event: str | None  # the last push sent, e.g. "finished:<charging_since>", for exactly-once
    next_poll_at: float
    failures: int
    # The level (%) of the last poll that read one, and the car's report time of it: a level up since, with
    # no session open, is a charge the watcher never saw running. None until a poll reads a level.
    soc_seen: int | None = None
    seen_at: float | None = None
    start_unseen: bool = False  # the open session is such a charge: how long it ran is not known


@dataclass(frozen=True)
class LoginAttempts:
    """Failed logins through /link of one subject (a Telegram user, or an e-mail by its keyed hash)."""

    failures: int = 0  # in a row, since the last success or since the record was forgotten
    blocked_until: float | None = None  # Unix time: no login before this
    forget_at: float = 0.0  # Unix time: from then on the record counts as clean and is removed


@dataclass(frozen=True)
class CommandInFlight:
    """A remote command between "about to be sent" and its outcome shown to the user, kept so that a restart
    finishes its progress message instead of forgetting it (and never sends it again)."""

    tg_id: int
    vin: str
    service: str  # a ServiceType value
    chat_id: int  # where its progress message is
    message_id: int
    started_at: float  # Unix time, just before it was sent
    event_id: str | None  # BMW's id of the request, once the POST was answered


@dataclass(frozen=True)
class Share:
    """One car of its owner that another Telegram user (the member) sees through /share."""

    owner: int
    vin: str
    member: int
    remote: bool  # the owner lets the member send remote commands (i Remote cars)
    since: float  # Unix time
