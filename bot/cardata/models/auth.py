"""The device flow's answer and an owner's tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

from bot.cardata.errors import BadResponse
from bot.cardata.models._read import _float, _object
from bot.values import str_of

REFRESH_LIFETIME = 14 * 24 * 3600.0  # BMW's refresh tokens last two weeks
TOKEN_LIFETIME = 3600.0  # access and id tokens: one hour


@dataclass(frozen=True)
class DeviceCode:
    """The answer to `/device/code`: what the owner must open and type, and how to poll."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float  # epoch seconds
    interval: float  # seconds between token polls

    @property
    def url(self) -> str:
        """The link to show: the complete form (user code filled in) where BMW gives one."""
        return self.verification_uri_complete or self.verification_uri

    @classmethod
    def from_api(cls, body: Any, *, now: float) -> Self:
        data = _object(body, "the device code")
        device_code, user_code = str_of(data, "device_code"), str_of(data, "user_code")
        uri = str_of(data, "verification_uri")
        if not (device_code and user_code and uri):
            raise BadResponse("the device code answer lacks device_code, user_code or verification_uri")
        expires_in = _float(data, "expires_in")
        interval = _float(data, "interval")
        return cls(
            device_code=device_code,
            user_code=user_code,
            verification_uri=uri,
            verification_uri_complete=str_of(data, "verification_uri_complete"),
            expires_at=now + (expires_in if expires_in is not None and expires_in > 0 else 300.0),
            interval=interval if interval is not None and 0 < interval <= 300 else 5.0,
        )


@dataclass(frozen=True)
class Tokens:
    """An owner's tokens: access (REST, 1 h), id (the MQTT password, 1 h), refresh (2 weeks), and gcid."""

    access_token: str = field(repr=False)
    id_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    gcid: str
    expires_at: float  # access and id token, epoch seconds
    refresh_expires_at: float

    @classmethod
    def from_api(cls, body: Any, *, now: float, previous: Tokens | None = None) -> Self:
        """A token answer; a refresh answer that omits the gcid or refresh token keeps `previous`'s."""
        data = _object(body, "the token answer")
        access, id_token = str_of(data, "access_token"), str_of(data, "id_token")
        refresh = str_of(data, "refresh_token") or (previous.refresh_token if previous else None)
        gcid = str_of(data, "gcid") or (previous.gcid if previous else None)
        if not (access and id_token and refresh and gcid):
            raise BadResponse("the token answer lacks access_token, id_token, refresh_token or gcid")
        expires_in = _float(data, "expires_in")
        refresh_in = _float(data, "refresh_expires_in")
        renewed_refresh = str_of(data, "refresh_token") is not None
        if refresh_in is not None and refresh_in > 0:
            refresh_expires_at = now + refresh_in
        elif renewed_refresh or previous is None:
            refresh_expires_at = now + REFRESH_LIFETIME
        else:
            refresh_expires_at = previous.refresh_expires_at
        return cls(
            access_token=access,
            id_token=id_token,
            refresh_token=refresh,
            gcid=gcid,
            expires_at=now + (expires_in if expires_in is not None and expires_in > 0 else TOKEN_LIFETIME),
            refresh_expires_at=refresh_expires_at,
        )
