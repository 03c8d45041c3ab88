"""Accounts and OAuth: the client key and secret, each account's login and cars, and the tokens issued.

The token endpoint takes the password and refresh_token grants; an access token lives `token_ttl` seconds
of simulator time, a refresh token until it is used once (or revoked).
"""

from __future__ import annotations

import hmac
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_API_KEY = "demo-key"
DEFAULT_API_SECRET = "demo-secret"
DEFAULT_USERNAME = "demo@example.com"
DEFAULT_PASSWORD = "demo-password"
DEFAULT_SECURITY_ANSWER: str | None = None

_TOKEN_ALPHABET = string.ascii_letters + string.digits


class OAuthError(Exception):
    """An OAuth answer: HTTP `code` with `{"error": error, "error_description": description}`."""

    def __init__(self, code: int, error: str, description: str) -> None:
        super().__init__(description)
        self.code, self.error, self.description = code, error, description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass
class Account:
    username: str
    password: str
    security_answer: str | None
    vins: list[str]


@dataclass
class _Token:
    username: str
    expires_at: float


def _new_token(length: int) -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))


class Accounts:
    """The accounts (by casefolded username: e-mail logins ignore case) and their tokens."""

    def __init__(
        self,
        lock: threading.RLock,
        now: Callable[[], float],
        *,
        api_key: str,
        api_secret: str,
        token_ttl: int,
    ) -> None:
        self._lock = lock
        self.now = now
        self.api_key, self.api_secret = api_key, api_secret
        self.token_ttl = token_ttl
        self._accounts: dict[str, Account] = {}
        self._access: dict[str, _Token] = {}
        self._refresh: dict[str, str] = {}  # refresh token -> username

    # -- accounts ----------------------------------------------------------------------------------------

    def __contains__(self, username: str) -> bool:
        return username.casefold() in self._accounts

    def add(self, username: str, password: str, security_answer: str | None, vins: list[str]) -> None:
        with self._lock:
            self._accounts[username.casefold()] = Account(username, password, security_answer, vins)

    def account(self, username: str) -> Account:
        """The account of a username in any case (KeyError when there is none)."""
        return self._accounts[username.casefold()]

    def change_password(self, username: str, password: str) -> None:
        """The owner changed the password at BMW: every session of the account ends, as BMW ends them."""
        with self._lock:
            self.account(username).password = password
            self._access = {
                t: v for t, v in self._access.items() if v.username.casefold() != username.casefold()
            }
            self.revoke_refresh_tokens(username)

    def snapshot(self) -> list[dict[str, Any]]:
        """The accounts without passwords or answers, as JSON."""
        with self._lock:
            return [
                {
                    "username": a.username,
                    "has_security_answer": a.security_answer is not None,
                    "vins": list(a.vins),
                }
                for a in self._accounts.values()
            ]

    # -- tokens ------------------------------------------------------------------------------------------

    def expire_tokens(self, username: str | None = None) -> None:
        with self._lock:
            past = self.now() - 1
            for token in self._access.values():
                if username is None or token.username.casefold() == username.casefold():
                    token.expires_at = past

    def revoke_refresh_tokens(self, username: str | None = None) -> None:
        with self._lock:
            self._refresh = {
                token: owner
                for token, owner in self._refresh.items()
                if username is not None and owner.casefold() != username.casefold()
            }

    def check_client(self, key: str, secret: str) -> None:
        if not (hmac.compare_digest(key, self.api_key) and hmac.compare_digest(secret, self.api_secret)):
            raise OAuthError(
                401,
                "invalid_client",
                "Client authentication failed (e.g., login failure, unknown client, "
                "no client authentication included or unsupported authentication method)",
            )

    def issue_token(self, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint after the client check: password and refresh_token grants."""
        with self._lock:
            grant = form.get("grant_type")
            if grant == "password":
                account = self._accounts.get(form.get("username", "").casefold())
                if account is None or not hmac.compare_digest(form.get("password", ""), account.password):
                    raise OAuthError(401, "invalid_grant", "Bad user credentials")
                username = account.username
            elif grant == "refresh_token":
                owner = self._refresh.pop(form.get("refresh_token", ""), None)
                if owner is None:
                    raise OAuthError(401, "invalid_grant", "Invalid refresh token")
                username = owner
            else:
                raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")
            now = self.now()
            # Drop tokens long expired so a simulator running for days keeps a small table.
            self._access = {t: v for t, v in self._access.items() if v.expires_at > now - self.token_ttl}
            access, refresh = _new_token(32), _new_token(48)
            self._access[access] = _Token(username, now + self.token_ttl)
            self._refresh[refresh] = username
            return {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "refresh_token": refresh,
                "scope": "authenticate_user vehicle_data remote_services",
            }

    def authenticate(self, authorization: str | None) -> str:
        """The username behind an `Authorization: Bearer` header, or OAuthError invalid_token."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not value:
                raise OAuthError(
                    401, "invalid_token", "Full authentication is required to access this resource"
                )
            token = self._access.get(value.strip())
            if token is None:
                raise OAuthError(401, "invalid_token", "Invalid access token")
            if token.expires_at <= self.now():
                raise OAuthError(401, "invalid_token", "Access token expired")
            return token.username

    def requester(self, form: dict[str, str], authorization: str | None) -> str | None:
        """Who a request is from, for the log: the bearer's owner, else the token request's user."""
        with self._lock:
            scheme, _, value = (authorization or "").partition(" ")
            if scheme.lower() == "bearer" and value.strip() in self._access:
                return self._access[value.strip()].username
            if form.get("grant_type") == "refresh_token":
                return self._refresh.get(form.get("refresh_token", ""))
            return form.get("username")
