"""bot.crypto: keys derived from BOT_SECRET_KEY stay what earlier versions derived.

A stored login-attempt subject (the keyed hash of an e-mail) and a car ref in a button already sent must still
match after an upgrade; the expected values below were computed by the version before bot/crypto.py existed.
"""

from __future__ import annotations

import base64
from pathlib import Path

from bot.chat.keyboards import CarRefs
from bot.crypto import Secrets, generate_secret_key
from bot.store import Store

KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
VIN = "WBY1Z21000V000001"
EMAIL_SUBJECT = "email:f90e01d76605d06b5b4e924361e5ce890810e3fa0fc29983038aec3fe49102fc"
CAR_REF = "ff25d3e0e3"


def test_login_subjects_and_car_refs_match_earlier_versions(tmp_path: Path) -> None:
    with Store(tmp_path / "bot.sqlite3", [KEY]) as store:
        assert store.login_subjects(1001, " Alice.Owner@Example.org ") == ["user:1001", EMAIL_SUBJECT]
        assert CarRefs(store.secrets).ref(1001, VIN) == CAR_REF


def test_derived_keys_come_from_the_first_key_only() -> None:
    # While rotating (BOT_SECRET_KEY=new,old) the derived keys are those of the new key alone.
    rotating, alone = Secrets([KEY, generate_secret_key()]), Secrets([KEY])
    assert CarRefs(rotating).ref(1001, VIN) == CAR_REF
    assert rotating.derive_key("login-attempts") == alone.derive_key("login-attempts")
    assert alone.derive_key("login-attempts") != alone.derive_key("callback-data")
