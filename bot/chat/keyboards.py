"""Inline keyboards and the callback-data format (always <= 64 bytes).

Callback data never carries a VIN. A car is named by a short HMAC of (Telegram user id, VIN) under a key
derived from BOT_SECRET_KEY, and resolved only against the pressing user's own cars: data forged or copied
by anyone else resolves to nothing. One-shot confirmations (unlock) carry a random nonce kept per user.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.chat import texts
from bot.store import StoredVehicle

SEP = ":"
REF_BYTES = 5

# Actions on a car, in callback data as "<action>:<car ref>"
REFRESH = "r"
LOCATION = "loc"
SELECT = "sel"
PICK = "pick"
LOCK = "lock"
UNLOCK = "unl"
CLIMATE = "clim"
CHARGE = "chg"
FLASH = "flash"
HORN = "horn"
FINDER = "find"
MAP = "map"
# One-shot answers, "<action>:<nonce or choice>"
UNLOCK_YES = "uy"
UNLOCK_NO = "un"
REGION = "reg"
RELINK = "relink"
UNLINK = "unlink"
REMEMBER = "ans"
YES, NO = "yes", "no"

# Status-message buttons: (action, label, capability that must be on); None = always shown.
CAR_BUTTONS: tuple[tuple[str, str, str | None], ...] = (
    (REFRESH, "🔄 Refresh", None),
    (LOCK, "🔒 Lock", "doorLock"),
    (UNLOCK, "🔓 Unlock", "doorUnlock"),
    (CLIMATE, "❄️ Climate", "climateNow"),
    (CHARGE, "⚡ Charge", "chargeNow"),
    (FLASH, "💡 Flash", "lightFlash"),
    (HORN, "📯 Horn", "hornBlow"),
    (FINDER, "🔎 Find", "vehicleFinder"),
    (MAP, "🗺 Range map", "rangeMap"),
    (LOCATION, "📍 Location", None),
)


class CarRefs:
    """Opaque, user-bound names for cars in callback data."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"callback-data:" + secret.encode()).digest()

    def ref(self, tg_id: int, vin: str) -> str:
        return hmac.new(self._key, f"{tg_id}:{vin}".encode(), hashlib.sha256).hexdigest()[: REF_BYTES * 2]

    def resolve(self, tg_id: int, ref: str, cars: Sequence[StoredVehicle]) -> StoredVehicle | None:
        for car in cars:
            if hmac.compare_digest(self.ref(tg_id, car.vin), ref):
                return car
        return None


def data(action: str, arg: str = "") -> str:
    value = f"{action}{SEP}{arg}"
    assert len(value.encode()) <= 64, value  # Telegram's limit; all our parts are short constants
    return value


def parse(value: str | None) -> tuple[str, str]:
    action, _, arg = (value or "").partition(SEP)
    return action, arg


def _button(text: str, action: str, arg: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=data(action, arg))


def _rows(buttons: list[InlineKeyboardButton], width: int = 3) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def car_actions(
    ref: str, car: StoredVehicle, *, several_cars: bool, map_enabled: bool
) -> InlineKeyboardMarkup:
    buttons = [
        _button(label, action, ref)
        for action, label, capability in CAR_BUTTONS
        if (capability is None or capability in car.capabilities) and (action != MAP or map_enabled)
    ]
    if several_cars:
        buttons.append(_button("🚗 Other car", PICK))
    return InlineKeyboardMarkup(_rows(buttons))


def car_picker(refs: CarRefs, tg_id: int, cars: Sequence[StoredVehicle]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.car_label(car), SELECT, refs.ref(tg_id, car.vin))] for car in cars]
    )


def yes_no(
    action: str, yes: str = "Yes", no: str = "No", *, yes_arg: str = YES, no_arg: str = NO
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button(yes, action, yes_arg), _button(no, action, no_arg)]])


def unlock_confirm(nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button("🔓 Yes, unlock", UNLOCK_YES, nonce), _button("No", UNLOCK_NO, nonce)]]
    )


def regions() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [_button("Europe / Rest of World", REGION, "rest_of_world")],
            [_button("USA (and Canada)", REGION, "usa"), _button("China", REGION, "china")],
        ]
    )


# Charge pushes and /notify: "<NOTIFY>:<NotifyPrefs field>" switches that push for the pressing user.
NOTIFY = "ntf"


def notify_toggles(switches: dict[str, bool]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.notify_button(name, on), NOTIFY, name)] for name, on in switches.items()]
    )


def charge_push(ref: str, car: StoredVehicle, *, map_enabled: bool) -> InlineKeyboardMarkup:
    """Under a charge push: the car's status (Refresh edits the push into it) and its range map."""
    buttons = [_button("🔄 Status", REFRESH, ref)]
    if map_enabled and "rangeMap" in car.capabilities:
        buttons.append(_button(next(label for action, label, _ in CAR_BUTTONS if action == MAP), MAP, ref))
    return InlineKeyboardMarkup([buttons])

