"""The CarData simulator's OAuth: the device-code flow with PKCE (RFC 8628, RFC 7636) and its tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from bot.cardata.simulator.core import Core
from bot.cardata.simulator.wire import OAuthError

SCOPE = "authenticate_user openid cardata:api:read cardata:streaming:read"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ACCESS_TTL = 3600
ID_TTL = 3600
REFRESH_TTL = 14 * 86400
DEVICE_CODE_TTL = 300
POLL_INTERVAL = 5
SLOW_DOWN_STEP = 5  # RFC 8628 §3.5: each slow_down adds 5 s to the interval
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels, no look-alikes

Decision = Literal["approved", "denied"]


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a code verifier (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    challenge: str
    expires_at: float
    approve_at: float | None  # automatic approval time (the demo), None = wait for the control surface
    interval: int
    last_poll: float | None = None
    decision: Decision | None = None
    used: bool = False


@dataclass
class _Token:
    gcid: str
    client_id: str
    expires_at: float


class OAuth(Core):
    """Device codes and the access, id and refresh tokens they turn into."""

    def __init__(self, *, auto_approve_seconds: float | None, poll_interval: int, **rest: Any) -> None:
        super().__init__(**rest)
        self.auto_approve_seconds = auto_approve_seconds
        self.poll_interval = poll_interval  # the device flow's: BMW's 5 s, shorter in tests and the demo
        self._device_codes: dict[str, _DeviceCode] = {}
        self._access: dict[str, _Token] = {}
        self._id_tokens: dict[str, _Token] = {}
        self._refresh: dict[str, _Token] = {}

    def device_code(self, form: dict[str, str], base_url: str) -> dict[str, Any]:
        """POST /gcdm/oauth/device/code."""
        with self._lock:
            client_id = form.get("client_id", "")
            if client_id not in self._clients:
                raise OAuthError("invalid_client", "Unknown client id", 401)
            if form.get("response_type") != "device_code":
                raise OAuthError("unsupported_response_type", "response_type must be device_code")
            scopes = set(form.get("scope", "").split())
            if not scopes or not scopes <= set(SCOPE.split()):
                raise OAuthError("invalid_request", f"scope must be within: {SCOPE}")
            challenge = form.get("code_challenge", "")
            if form.get("code_challenge_method") != "S256" or not 43 <= len(challenge) <= 128:
                raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
            now = self.now()
            user_code = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            code = _DeviceCode(
                device_code=secrets.token_urlsafe(48),
                user_code=user_code,
                client_id=client_id,
                challenge=challenge,
                expires_at=now + DEVICE_CODE_TTL,
                approve_at=None if self.auto_approve_seconds is None else now + self.auto_approve_seconds,
                interval=self.poll_interval,
            )
            self._device_codes[code.device_code] = code
            verification = f"{base_url}/oneid/link"
            return {
                "user_code": user_code,
                "device_code": code.device_code,
                "interval": self.poll_interval,
                "expires_in": DEVICE_CODE_TTL,
                "verification_uri": verification,
                "verification_uri_complete": f"{verification}?user_code={user_code}",
            }

    def decide(self, user_code: str, decision: Decision) -> None:
        """The owner approves or denies a device code in the portal (ValueError: no such pending code)."""
        with self._lock:
            for code in self._device_codes.values():
                if code.user_code == user_code.upper() and not code.used and code.expires_at > self.now():
                    code.decision = decision
                    return
            raise ValueError("no pending device code with that user code")

    def pending_user_codes(self) -> list[str]:
        with self._lock:
            now = self.now()
            return [
                c.user_code
                for c in self._device_codes.values()
                if not c.used and c.decision is None and c.expires_at > now
            ]

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """POST /gcdm/oauth/token: the device-code and refresh-token grants."""
        with self._lock:
            grant = form.get("grant_type")
            if grant == DEVICE_GRANT:
                return self._device_grant(form)
            if grant == "refresh_token":
                return self._refresh_grant(form)
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _device_grant(self, form: dict[str, str]) -> dict[str, Any]:
        code = self._device_codes.get(form.get("device_code", ""))
        if code is None or code.used or code.client_id != form.get("client_id"):
            raise OAuthError("invalid_grant", "Unknown or used device code")
        now = self.now()
        if code.expires_at <= now:
            raise OAuthError("expired_token", "The device code has expired", 401)
        if code.decision == "denied":
            code.used = True
            raise OAuthError("access_denied", "The user denied the request", 403)
        too_fast = code.last_poll is not None and now - code.last_poll < code.interval
        code.last_poll = now
        if too_fast:
            code.interval += SLOW_DOWN_STEP
            raise OAuthError("slow_down", f"Poll at most every {code.interval} s")
        if code.decision is None and code.approve_at is not None and now >= code.approve_at:
            code.decision = "approved"
        if code.decision is None:
            raise OAuthError("authorization_pending", "The user has not yet approved the request", 403)
        code.used = True
        if not hmac.compare_digest(s256(form.get("code_verifier", "")), code.challenge):
            raise OAuthError("invalid_grant", "PKCE verification failed")
        return self._issue(self._clients[code.client_id], code.client_id)

    def _refresh_grant(self, form: dict[str, str]) -> dict[str, Any]:
        token = self._refresh.pop(form.get("refresh_token", ""), None)
        if token is None or token.client_id != form.get("client_id") or token.expires_at <= self.now():
            raise OAuthError("invalid_grant", "Refresh token expired, revoked or unknown")
        return self._issue(token.gcid, token.client_id)

    def _issue(self, gcid: str, client_id: str) -> dict[str, Any]:
        now = self.now()
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "cardata-sim"}).encode())
        claims = {
            "sub": gcid,
            "aud": client_id,
            "iat": int(now),
            "exp": int(now + ID_TTL),
            "jti": uuid.uuid4().hex,
        }
        id_token = f"{header}.{_b64url(json.dumps(claims).encode())}.{_b64url(secrets.token_bytes(64))}"
        self._access[access] = _Token(gcid, client_id, now + ACCESS_TTL)
        self._id_tokens[id_token] = _Token(gcid, client_id, now + ID_TTL)
        self._refresh[refresh] = _Token(gcid, client_id, now + REFRESH_TTL)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "refresh_token": refresh,
            "id_token": id_token,
            "gcid": gcid,
            "scope": SCOPE,
        }

    def expire_tokens(self, gcid: str | None = None) -> None:
        """Access and id tokens end now (the broker drops the streams they opened)."""
        with self._lock:
            past = self.now() - 1
            for token in (*self._access.values(), *self._id_tokens.values()):
                if gcid is None or token.gcid == gcid:
                    token.expires_at = past
        self._changed()

    def revoke_refresh_tokens(self, gcid: str | None = None) -> None:
        with self._lock:
            self._refresh = {k: t for k, t in self._refresh.items() if gcid is not None and t.gcid != gcid}

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """One login's refresh token ends; the account's other logins (a co-owner's) keep theirs."""
        with self._lock:
            self._refresh.pop(refresh_token, None)

    def id_token_valid(self, password: str) -> bool:
        with self._lock:
            token = self._id_tokens.get(password)
            return token is not None and token.expires_at > self.now()

    def requester(self, authorization: str | None, form: dict[str, str]) -> str | None:
        """Who a request is from, for the log: the bearer's gcid, else the client id's account."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            token = self._access.get(value.strip()) if scheme.lower() == "bearer" else None
            if token is not None:
                return token.gcid
            return self._clients.get(form.get("client_id", ""))
