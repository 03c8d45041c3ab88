"""BOT_SECRET_KEY: the encryption of stored secrets, and the keys other parts derive from it.

BOT_SECRET_KEY is a list of Fernet keys, newest first: the first encrypts, any of them decrypts, so a key is
replaced by putting the new one in front, re-encrypting (`python -m bot rotate-key`) and dropping the old one.
Keys derived for other purposes (keyed hashes) come from the first key only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyMismatch(Exception):
    """BOT_SECRET_KEY cannot decrypt what is stored: the key changed since the secrets were written."""

    def __init__(self) -> None:
        super().__init__(
            "BOT_SECRET_KEY cannot decrypt the stored secrets: the key changed. Put the old key back, or set "
            "BOT_SECRET_KEY to 'new,old' and run rotate-key."
        )


def generate_secret_key() -> str:
    """A new BOT_SECRET_KEY value."""
    return Fernet.generate_key().decode()


class Secrets:
    """Fernet encryption under BOT_SECRET_KEY's keys. Tokens and values are text (a token is ASCII)."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        if isinstance(secret_keys, str):
            raise TypeError("secret_keys is a sequence of keys, not one key")
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        try:
            fernets = [Fernet(key) for key in secret_keys]
        except (ValueError, TypeError):
            raise ValueError("a secret key is not a Fernet key (see generate_secret_key)") from None
        self._first_key = secret_keys[0].encode()
        self._primary = fernets[0]
        self._fernet = MultiFernet(fernets)

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def encrypt_opt(self, value: str | None) -> str | None:
        return None if value is None else self.encrypt(value)

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyMismatch() from None

    def decrypt_opt(self, token: str | None) -> str | None:
        return None if token is None else self.decrypt(token)

    def is_primary(self, token: str) -> bool:
        """Whether the first key encrypted this token (so rotating it would change nothing)."""
        try:
            self._primary.decrypt(token.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """The token's value encrypted again with the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretKeyMismatch() from None

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (an HMAC key), from the first key. Renaming a purpose, or rotating
        the first key, changes its key: what was hashed with the old one no longer matches."""
        return hashlib.sha256(purpose.encode() + b":" + self._first_key).digest()
