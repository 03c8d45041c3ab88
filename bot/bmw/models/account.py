"""A ConnectedDrive login, its region's server and its OAuth token."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from bot.bmw.errors import BadResponse
from bot.bmw.models._read import _float
from bot.values import str_of


class Region(StrEnum):
    REST_OF_WORLD = "rest_of_world"
    USA = "usa"
    CHINA = "china"


# The three servers (docs/i-remote-api.md) (Canadian accounts use the USA one).
SERVERS: dict[Region, str] = {
    Region.REST_OF_WORLD: "https://b2vapi.bmwgroup.com",
    Region.USA: "https://b2vapi.bmwgroup.us",
    Region.CHINA: "https://b2vapi.bmwgroup.cn:8592",
}


@dataclass
class Token:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float  # epoch seconds

    @classmethod
    def from_api(cls, body: Any, *, now: float) -> Self:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise BadResponse("the token answer has no access_token")
        # A missing lifetime is read as one hour: short enough to be safe, long enough not to hammer.
        expires_in = _float(body, "expires_in")
        return cls(
            access_token=body["access_token"],
            refresh_token=str_of(body, "refresh_token"),
            expires_at=now + (expires_in if expires_in is not None else 3600.0),
        )


@dataclass
class Account:
    """One ConnectedDrive login. Mutable: the client stores a fresh token in `.token`."""

    username: str
    password: str = field(repr=False)
    region: Region = Region.REST_OF_WORLD
    token: Token | None = field(default=None, repr=False)
