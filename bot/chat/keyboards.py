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

from bot.bmw.models import ChargingProfile
from bot.bmw.models.charging_profile import WEEKDAYS
from bot.chat import texts
from bot.crypto import Secrets
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
BACKEND = "be"  # which backend /link uses: "be:cardata", "be:iremote"
RELINK = "relink"
UNLINK = "unlink"
REMEMBER = "ans"
YES, NO = "yes", "no"

# Capabilities of a car whose status comes from a stream (BMW CarData): the status is what the car last sent,
# and its range can only be estimated (a ring round the car, no polylines).
STREAMED = "statusStream"
RANGE_ESTIMATE = "rangeEstimate"
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
    (MAP, "🗺 Range (estimate)", RANGE_ESTIMATE),
    (LOCATION, "📍 Location", None),
)


# What the car does when told to: a car with none of these is read-only.
REMOTE_CAPABILITIES = frozenset(
    {"doorLock", "doorUnlock", "climateNow", "chargeNow", "lightFlash", "hornBlow", "vehicleFinder"}
    | {"chargingControl", "sendPoi"}
)


def read_only(car: StoredVehicle) -> bool:
    return not car.capabilities & REMOTE_CAPABILITIES


class CarRefs:
    """Opaque, user-bound names for cars in callback data."""

    def __init__(self, secrets: Secrets) -> None:
        # Renaming the purpose changes every ref: buttons already sent would stop working.
        self._key = secrets.derive_key("callback-data")

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
    # Labels come from texts (HTML); Telegram shows a button's label as plain text.
    return InlineKeyboardButton(texts.plain(text), callback_data=data(action, arg))


def _rows(buttons: list[InlineKeyboardButton], width: int = 3) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


def car_actions(ref: str, car: StoredVehicle, *, several_cars: bool) -> InlineKeyboardMarkup:
    buttons = [
        _button(label, action, ref)
        for action, label, capability in CAR_BUTTONS
        if capability is None or capability in car.capabilities
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


def backends(choices: Sequence[str]) -> InlineKeyboardMarkup:
    """One button per backend /link offers, each naming what it can do."""
    return InlineKeyboardMarkup([[_button(texts.BACKEND_BUTTONS[name], BACKEND, name)] for name in choices])


# The deep link under the bot's one answer in a group: it opens the private chat (the /start payload is
# only a hint; /start greets whatever it carries).
START_FROM_GROUP = "private"


def private_chat(bot_username: str) -> InlineKeyboardMarkup:
    url = f"https://t.me/{bot_username}?start={START_FROM_GROUP}"
    return InlineKeyboardMarkup([[InlineKeyboardButton(texts.PRIVATE_CHAT_BUTTON, url=url)]])


# Charge pushes and /notify: "<NOTIFY>:<NotifyPrefs field>" switches that push for the pressing user.
NOTIFY = "ntf"


def notify_toggles(switches: dict[str, bool]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.notify_button(name, on), NOTIFY, name)] for name, on in switches.items()]
    )


def charge_push(ref: str, car: StoredVehicle) -> InlineKeyboardMarkup:
    """Under a charge push: the car's status (Refresh edits the push into it) and its range map."""
    buttons = [_button("🔄 Status", REFRESH, ref)]
    if "rangeMap" in car.capabilities:
        buttons.append(_button(next(label for action, label, _ in CAR_BUTTONS if action == MAP), MAP, ref))
    return InlineKeyboardMarkup([buttons])


# Charging schedule: "sch:<car ref>:<op>[:<param>[:<param>]]" edits that car's draft in the pressing user's
# user_data. Timers are named by their 1-based number (ChargingProfile.timer_keys), weekdays by 0-based index.
SCHEDULE = "sch"
S_MAIN, S_TIMER, S_WINDOW = "m", "t", "w"  # which part the buttons edit
S_TOGGLE, S_SHIFT, S_DAY, S_ASK = "on", "dt", "day", "ask"  # timer <i>: on/off, ±minutes, weekday <d>, type
S_WINDOW_TOGGLE, S_WINDOW_SHIFT = "won", "ws"  # window on/off; start or end ±minutes
S_MODE, S_CLIMATE, S_SAVE, S_DISCARD = "mode", "clim", "save", "drop"
WINDOW_START, WINDOW_END = "s", "e"  # S_WINDOW_SHIFT and S_ASK targets besides timer indices
STEP_MINUTES = 30
# A place the user sent: "poi:<nonce>:<car ref>"; the place itself stays in user_data under the nonce.
SEND_POI = "poi"


def schedule_data(ref: str, op: str, *params: int | str) -> str:
    return data(SCHEDULE, SEP.join([ref, op, *map(str, params)]))


def parse_schedule(arg: str) -> tuple[str, str, list[str]]:
    """(car ref, op, params) of a schedule button's argument."""
    ref, _, rest = arg.partition(SEP)
    op, *params = rest.split(SEP)
    return ref, op, params


def _s(text: str, ref: str, op: str, *params: int | str) -> InlineKeyboardButton:
    return InlineKeyboardButton(texts.plain(text), callback_data=schedule_data(ref, op, *params))


def schedule(ref: str, profile: ChargingProfile, focus: str | None) -> InlineKeyboardMarkup:
    """The editing buttons under a schedule: overview, one timer (`focus` = its key), or "window"."""
    keys = profile.timer_keys
    if focus == "window":
        rows = _window_rows(ref, profile)
    elif focus in keys:
        rows = _timer_rows(ref, profile, keys.index(focus) + 1, focus)
    else:
        rows = []
        for index, key in enumerate(keys, 1):
            name = texts.timer_name(key)
            check = texts.check(profile.timers[key].enabled)
            rows.append([_s(f"{check} {name}", ref, S_TOGGLE, index), _s(f"✏️ {name}", ref, S_TIMER, index)])
        if profile.window is not None:
            check = texts.check(profile.window_on)
            rows.append([_s(f"{check} Window", ref, S_WINDOW_TOGGLE), _s("✏️ Window", ref, S_WINDOW)])
        mode = texts.MODE_SHORT.get(profile.charging_mode or "", "immediate")
        climate = texts.check(profile.climatization_enabled)
        rows.append([_s(f"🔁 Mode: {mode}", ref, S_MODE), _s(f"{climate} Climatization", ref, S_CLIMATE)])
    if focus is not None:
        rows.append([_s("⬅️ Back", ref, S_MAIN)])
    rows.append([_s("💾 Save", ref, S_SAVE), _s("✖️ Discard", ref, S_DISCARD)])
    return InlineKeyboardMarkup(rows)


def _timer_rows(ref: str, profile: ChargingProfile, index: int, key: str) -> list[list[InlineKeyboardButton]]:
    timer = profile.timers[key]
    rows = [
        [_s(f"{texts.check(timer.enabled)} {texts.timer_name(key)}", ref, S_TOGGLE, index)],
        [
            _s(f"➖ {STEP_MINUTES} min", ref, S_SHIFT, index, -STEP_MINUTES),
            _s(f"➕ {STEP_MINUTES} min", ref, S_SHIFT, index, STEP_MINUTES),
            _s("⌨️ Set time", ref, S_ASK, index),
        ],
    ]
    if profile.has_weekdays:
        chosen = timer.weekdays or ()
        days = [
            _s(f"{texts.check(day in chosen)} {texts.day_short(day)}", ref, S_DAY, index, number)
            for number, day in enumerate(WEEKDAYS)
        ]
        rows += _rows(days, 4)
    return rows


def _window_rows(ref: str, profile: ChargingProfile) -> list[list[InlineKeyboardButton]]:
    rows = [[_s(f"{texts.check(profile.window_on)} Window", ref, S_WINDOW_TOGGLE)]]
    for target, name in ((WINDOW_START, "Start"), (WINDOW_END, "End")):
        rows.append(
            [
                _s(f"{name} ➖ {STEP_MINUTES}", ref, S_WINDOW_SHIFT, target, -STEP_MINUTES),
                _s(f"{name} ➕ {STEP_MINUTES}", ref, S_WINDOW_SHIFT, target, STEP_MINUTES),
                _s(f"⌨️ {name}", ref, S_ASK, target),
            ]
        )
    return rows


def send_place(nonce: str, targets: Sequence[tuple[str, StoredVehicle]]) -> InlineKeyboardMarkup:
    """One "Send to <car>" button per (car ref, car)."""
    return InlineKeyboardMarkup(
        [[_button(texts.send_to(car), SEND_POI, f"{nonce}{SEP}{ref}")] for ref, car in targets]
    )
