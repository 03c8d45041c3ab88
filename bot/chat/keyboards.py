"""Inline keyboards and the callback-data format (always <= 64 bytes).

Callback data never carries a VIN. A car is named by a short HMAC of (Telegram user id, VIN) under a key
derived from BOT_SECRET_KEY, and resolved only against the pressing user's own cars: data forged or copied
by anyone else resolves to nothing. One-shot confirmations (unlock) carry a random nonce kept per user.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from telegram import CopyTextButton, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import KeyboardButtonStyle

from bot.bmw.models import ChargingProfile, ServiceType
from bot.bmw.models.charging_profile import WEEKDAYS
from bot.capabilities import BackendName, Capability
from bot.chat import texts
from bot.chat.prefs import Prefs
from bot.crypto import Secrets
from bot.store import StoredVehicle

SEP = ":"
REF_BYTES = 5

# Actions on a car, in callback data as "<action>:<car ref>"; a remote command's is its RemoteAction.code
# (texts.REMOTE_ACTIONS).
REFRESH = "r"
LOCATION = "loc"
SELECT = "sel"
PICK = "pick"
MAP = "map"
# One-shot answers, "<action>:<nonce or choice>"
UNLOCK_YES = "uy"
UNLOCK_NO = "un"
REGION = "reg"
BACKEND = "be"  # which backend /link uses: "be:cardata", "be:iremote"
RELINK = "relink"
UNLINK = "unlink"
STREAM_TRY = "stry"  # "Try now" under the blocked-stream push: the pressing user's own stream, nothing else
REMEMBER = "ans"
# /share: "<action>:<car ref>" invites to that car; "<action>:<share ref>" (`share_ref`) revokes or switches
# remote commands of one person; "<action>:<nonce>" accepts or declines an invitation.
SHARE_INVITE = "shi"
SHARE_REVOKE = "shr"
SHARE_REMOTE = "shm"
SHARE_ACCEPT = "sha"
SHARE_DECLINE = "shn"
SHARE_LEAVE = "shl"
YES, NO = "yes", "no"

# Status-message buttons: (action, label, capability that must be on); None = always shown.
CAR_BUTTONS: tuple[tuple[str, str, str | None], ...] = (
    (REFRESH, texts.REFRESH_BUTTON, None),
    *(
        (action.code, action.button, action.capability)
        for action in texts.REMOTE_ACTIONS
        if action.code and action.button
    ),
    (MAP, texts.MAP_BUTTON, Capability.RANGE_MAP),
    (MAP, texts.RANGE_ESTIMATE_BUTTON, Capability.RANGE_ESTIMATE),
    (LOCATION, texts.LOCATION_BUTTON, None),
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
            # As bytes: compare_digest refuses str with non-ASCII characters, which forged data may carry.
            if hmac.compare_digest(self.ref(tg_id, car.vin).encode(), ref.encode()):
                return car
        return None


def data(action: str, arg: str = "") -> str:
    value = f"{action}{SEP}{arg}"
    assert len(value.encode()) <= 64, value  # Telegram's limit; all our parts are short constants
    return value


def parse(value: str | None) -> tuple[str, str]:
    action, _, arg = (value or "").partition(SEP)
    return action, arg


def _button(
    text: str, action: str, arg: str = "", style: KeyboardButtonStyle | None = None
) -> InlineKeyboardButton:
    # Labels come from texts (HTML); Telegram shows a button's label as plain text. A style (Bot API 9.4)
    # colours the button; clients older than that show it plain.
    return InlineKeyboardButton(texts.plain(text), callback_data=data(action, arg), style=style)


def _copy(text: str, copied: str) -> InlineKeyboardButton:
    """A button that copies `copied` to the user's clipboard (no callback reaches the bot)."""
    return InlineKeyboardButton(texts.plain(text), copy_text=CopyTextButton(copied))


def _rows(buttons: list[InlineKeyboardButton], width: int = 3) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + width] for i in range(0, len(buttons), width)]


# The longest label (in characters) a button shows uncut at phone width (400 px) in a row of 3 and of 2:
# rows of three only for short labels, else two, else one.
_LABEL_CHARS_IN_ROW_OF = {3: 10, 2: 16}


def _rows_that_fit(buttons: list[InlineKeyboardButton]) -> list[list[InlineKeyboardButton]]:
    """`buttons` in order, as many to a row as the longest label in it allows (at most three)."""

    def most(row: list[InlineKeyboardButton]) -> int:
        longest = max(len(button.text) for button in row)
        return max((n for n, chars in _LABEL_CHARS_IN_ROW_OF.items() if longest <= chars), default=1)

    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons:
        if rows and len(rows[-1]) < most([*rows[-1], button]):
            rows[-1].append(button)
        else:
            rows.append([button])
    return rows


def car_actions(ref: str, car: StoredVehicle, *, several_cars: bool) -> InlineKeyboardMarkup:
    buttons = [
        _button(label, action, ref)
        for action, label, capability in CAR_BUTTONS
        if capability is None or capability in car.capabilities
    ]
    if several_cars:
        buttons.append(_button(texts.OTHER_CAR, PICK))
    buttons.append(_copy(texts.COPY_VIN_BUTTON, car.vin))
    return InlineKeyboardMarkup(_rows_that_fit(buttons))


def position_copy(lat: float, lon: float) -> InlineKeyboardMarkup:
    """Under the car's location pin: its coordinates to copy, as the status shows them."""
    return InlineKeyboardMarkup([[_copy(texts.COPY_POSITION_BUTTON, f"{lat:.5f}, {lon:.5f}")]])


def car_picker(refs: CarRefs, tg_id: int, cars: Sequence[StoredVehicle]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.car_label(car), SELECT, refs.ref(tg_id, car.vin))] for car in cars]
    )


def yes_no(
    action: str, yes: str = texts.YES, no: str = texts.NO, *, yes_arg: str = YES, no_arg: str = NO
) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button(yes, action, yes_arg), _button(no, action, no_arg)]])


def unlock_confirm(nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                _button(texts.YES_UNLOCK, UNLOCK_YES, nonce, KeyboardButtonStyle.DANGER),
                _button(texts.NO, UNLOCK_NO, nonce),
            ]
        ]
    )


def regions() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [_button(texts.REGION_NAMES[region], REGION, region) for region in row]
            for row in (("rest_of_world",), ("usa", "china"))
        ]
    )


def backends(choices: Sequence[BackendName]) -> InlineKeyboardMarkup:
    """One button per backend /link offers, each naming what it can do."""
    return InlineKeyboardMarkup([[_button(texts.BACKEND_BUTTONS[name], BACKEND, name)] for name in choices])


# The deep link under the bot's one answer in a group: it opens the private chat (the /start payload is
# only a hint; /start greets whatever it carries).
START_FROM_GROUP = "private"


def private_chat(bot_username: str) -> InlineKeyboardMarkup:
    url = f"https://t.me/{bot_username}?start={START_FROM_GROUP}"
    return InlineKeyboardMarkup([[InlineKeyboardButton(texts.plain(texts.PRIVATE_CHAT_BUTTON), url=url)]])


# Charge pushes and /notify: "<NOTIFY>:<NotifyPrefs field>" switches that push for the pressing user.
NOTIFY = "ntf"


def notify_toggles(switches: dict[str, bool]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.notify_button(name, on), NOTIFY, name)] for name, on in switches.items()]
    )


def stream_try_now() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_button(texts.CARDATA_TRY_NOW_BUTTON, STREAM_TRY)]])


def charge_push(ref: str, car: StoredVehicle) -> InlineKeyboardMarkup:
    """Under a charge push: the car's status (Refresh edits the push into it) and its range map."""
    buttons = [_button(texts.STATUS_BUTTON, REFRESH, ref)]
    if Capability.RANGE_MAP in car.capabilities:
        buttons.append(_button(texts.MAP_BUTTON, MAP, ref))
    return InlineKeyboardMarkup([buttons])


# /alerts: "alr:<AlertKind>:<op>" changes that alert of the pressing user (nothing in the data names anyone).
ALERTS = "alr"
ALERT_SWITCH, ALERT_UP, ALERT_DOWN, ALERT_LATER, ALERT_EARLIER = "on", "up", "dn", "late", "early"


def alerts(rows: Sequence[Sequence[tuple[str, str, str]]]) -> InlineKeyboardMarkup:
    """The /alerts buttons: rows of (label, alert kind, op)."""
    return InlineKeyboardMarkup(
        [[_button(label, ALERTS, f"{kind}{SEP}{op}") for label, kind, op in row] for row in rows]
    )


def alert_push(ref: str, car: StoredVehicle, *, lock: bool) -> InlineKeyboardMarkup:
    """Under an alert: the car's status and, where it can lock and is unlocked, the remote Lock."""
    buttons = [_button(texts.STATUS_BUTTON, REFRESH, ref)]
    locking = texts.REMOTE_ACTION[ServiceType.DOOR_LOCK]
    if lock and locking.capability in car.capabilities:
        assert locking.code is not None and locking.button is not None  # the Lock row has its button
        buttons.append(_button(locking.button, locking.code, ref, KeyboardButtonStyle.SUCCESS))
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
            rows.append(
                [
                    _s(texts.SWITCH_BUTTON.format(check=check, name=name), ref, S_TOGGLE, index),
                    _s(texts.EDIT_BUTTON.format(name=name), ref, S_TIMER, index),
                ]
            )
        if profile.window is not None:
            check = texts.check(profile.window_on)
            rows.append(
                [
                    _s(texts.WINDOW_SWITCH.format(check=check), ref, S_WINDOW_TOGGLE),
                    _s(texts.WINDOW_EDIT, ref, S_WINDOW),
                ]
            )
        mode = texts.MODE_SHORT.get(profile.charging_mode or "", texts.MODE_SHORT["IMMEDIATE_CHARGING"])
        climate = texts.check(profile.climatization_enabled)
        rows.append(
            [
                _s(texts.MODE_BUTTON.format(mode=mode), ref, S_MODE),
                _s(texts.CLIMATIZATION_SWITCH.format(check=climate), ref, S_CLIMATE),
            ]
        )
    if focus is not None:
        rows.append([_s(texts.BACK, ref, S_MAIN)])
    rows.append([_s(texts.SAVE, ref, S_SAVE), _s(texts.DISCARD, ref, S_DISCARD)])
    return InlineKeyboardMarkup(rows)


def _timer_rows(ref: str, profile: ChargingProfile, index: int, key: str) -> list[list[InlineKeyboardButton]]:
    timer = profile.timers[key]
    name = texts.timer_name(key)
    rows = [
        [_s(texts.SWITCH_BUTTON.format(check=texts.check(timer.enabled), name=name), ref, S_TOGGLE, index)],
        [
            _s(texts.EARLIER.format(minutes=STEP_MINUTES), ref, S_SHIFT, index, -STEP_MINUTES),
            _s(texts.LATER.format(minutes=STEP_MINUTES), ref, S_SHIFT, index, STEP_MINUTES),
            _s(texts.SET_TIME, ref, S_ASK, index),
        ],
    ]
    if profile.has_weekdays:
        chosen = timer.weekdays or ()
        days = [
            _s(
                texts.SWITCH_BUTTON.format(check=texts.check(day in chosen), name=texts.day_short(day)),
                ref,
                S_DAY,
                index,
                number,
            )
            for number, day in enumerate(WEEKDAYS)
        ]
        rows += _rows(days, 4)
    return rows


def _window_rows(ref: str, profile: ChargingProfile) -> list[list[InlineKeyboardButton]]:
    rows = [[_s(texts.WINDOW_SWITCH.format(check=texts.check(profile.window_on)), ref, S_WINDOW_TOGGLE)]]
    for target, (earlier, later, typed) in (
        (WINDOW_START, texts.WINDOW_START_BUTTONS),
        (WINDOW_END, texts.WINDOW_END_BUTTONS),
    ):
        rows.append(
            [
                _s(earlier.format(minutes=STEP_MINUTES), ref, S_WINDOW_SHIFT, target, -STEP_MINUTES),
                _s(later.format(minutes=STEP_MINUTES), ref, S_WINDOW_SHIFT, target, STEP_MINUTES),
                _s(typed, ref, S_ASK, target),
            ]
        )
    return rows


def send_place(nonce: str, targets: Sequence[tuple[str, StoredVehicle]]) -> InlineKeyboardMarkup:
    """One "Send to <car>" button per (car ref, car)."""
    return InlineKeyboardMarkup(
        [[_button(texts.send_to(car), SEND_POI, f"{nonce}{SEP}{ref}")] for ref, car in targets]
    )


# The charging history's CSV: "<HISTORY_CSV>:<car ref>"; the price of one charge away from home:
# "<HISTORY_PRICE>:<car ref>:<the charge's start, epoch seconds>".
HISTORY_CSV = "hcsv"
HISTORY_PRICE = "hprc"


def history(ref: str, needs_price: Sequence[float] = (), *, drives: bool = False) -> InlineKeyboardMarkup:
    """The CSV button (naming the drives when the car has some), this month so far and last month, and a 💶
    button per charge listed that the owner may give a price, numbered as in the list."""
    prices = [
        _button(texts.PRICE_BUTTON.format(number=n), HISTORY_PRICE, f"{ref}{SEP}{start:.0f}")
        for n, start in enumerate(needs_price, 1)
    ]
    csv = texts.HISTORY_CSV_BUTTON_DRIVES if drives else texts.HISTORY_CSV_BUTTON
    return InlineKeyboardMarkup(
        [[_button(csv, HISTORY_CSV, ref)], *months(ref).inline_keyboard, *_rows(prices)]
    )


# The monthly summary on demand (bot/chat/monthly.py): "<MONTH_NOW or MONTH_LAST>:<car ref>".
MONTH_NOW, MONTH_LAST = "mnow", "mlast"


def months(ref: str) -> InlineKeyboardMarkup:
    """This month so far and last month, under /history even before any charge."""
    return InlineKeyboardMarkup(
        [[_button(texts.MONTH_NOW_BUTTON, MONTH_NOW, ref), _button(texts.MONTH_LAST_BUTTON, MONTH_LAST, ref)]]
    )


# /trips of a CarData car: "<DRIVE_PIN>:<car ref>:<drive's end, epoch seconds>" sends where that drive ended.
DRIVE_PIN = "dpin"


def drive_pins(ref: str, ends: Sequence[float]) -> InlineKeyboardMarkup:
    """One 📍 button per drive listed, numbered as in the list."""
    buttons = [
        InlineKeyboardButton(
            texts.DRIVE_PIN.format(number=n), callback_data=data(DRIVE_PIN, f"{ref}{SEP}{end:.0f}")
        )
        for n, end in enumerate(ends, 1)
    ]
    return InlineKeyboardMarkup(_rows(buttons, width=5))


# /settings: "set:<op>[:<arg>]" changes the pressing user's own settings (nothing in the data names anyone).
SETTINGS = "set"
SET_UNITS, SET_CLOCK, SET_LANGUAGE = "u", "c", "l"  # arg: km|mi, 24|12, en|de
SET_QUIET, SET_QUIET_SHIFT = "q", "qs"  # arg: 1|0; start|end and ±minutes
SET_ZONES, SET_ZONE, SET_ZONE_TYPE, SET_MAIN = "zm", "z", "zt", "m"  # SET_ZONE arg: index, or "" (server)
SET_TARIFF, SET_TARIFF_CLEAR = "tf", "tx"  # the home tariff: type one; clear it
QUIET_STEP_MINUTES = 30
# The zones offered as buttons; any other is typed.
COMMON_ZONES = (
    "Europe/London",
    "Europe/Berlin",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Australia/Sydney",
    "UTC",
)


def _set(text: str, op: str, *args: int | str) -> InlineKeyboardButton:
    return _button(text, SETTINGS, SEP.join([op, *map(str, args)]))


def settings(p: Prefs, tariff_set: bool = False) -> InlineKeyboardMarkup:
    check = texts.check
    rows = [
        [
            _set(f"{check(not p.miles)} {texts.UNIT_BUTTONS['km']}", SET_UNITS, "km"),
            _set(f"{check(p.miles)} {texts.UNIT_BUTTONS['mi']}", SET_UNITS, "mi"),
        ],
        [
            _set(f"{check(not p.clock12)} 24 h", SET_CLOCK, 24),
            _set(f"{check(p.clock12)} 12 h", SET_CLOCK, 12),
        ],
        [
            _set(f"{check(p.language == code)} {name}", SET_LANGUAGE, code)
            for code, name in texts.LANGUAGE_NAMES.items()
        ],
        [_set(f"🌍 {texts.zone_name(p.zone)}", SET_ZONES)],
        [_set(f"{check(p.quiet is not None)} {texts.QUIET_BUTTON}", SET_QUIET, int(p.quiet is None))],
    ]
    if p.quiet is not None:
        step = QUIET_STEP_MINUTES
        rows += [
            [
                _set(f"{label} ➖ {step}", SET_QUIET_SHIFT, edge, -step),
                _set(f"{label} ➕ {step}", SET_QUIET_SHIFT, edge, step),
            ]
            for edge, label in texts.QUIET_EDGES.items()
        ]
    tariff = [_set(texts.TARIFF_BUTTON, SET_TARIFF)]
    if tariff_set:
        tariff.append(_set(texts.TARIFF_CLEAR_BUTTON, SET_TARIFF_CLEAR))
    return InlineKeyboardMarkup([*rows, tariff])


def zones() -> InlineKeyboardMarkup:
    buttons = [_set(name, SET_ZONE, index) for index, name in enumerate(COMMON_ZONES)]
    return InlineKeyboardMarkup(
        [
            *_rows(buttons, 2),
            [_set(texts.ZONE_SERVER, SET_ZONE), _set(texts.ZONE_TYPE, SET_ZONE_TYPE)],
            [_set(texts.BACK, SET_MAIN)],
        ]
    )


def share_ref(refs: CarRefs, owner: int, vin: str, member: int) -> str:
    """Names one share in callback data, bound to its owner: only the owner's own presses resolve it."""
    return refs.ref(owner, f"{vin}/{member}")


def share_menu(
    refs: CarRefs, owner: int, cars: Sequence[tuple[StoredVehicle, Sequence[tuple[int, str, bool]]]]
) -> InlineKeyboardMarkup:
    """/share: per car of the owner, an invitation button, then per person (member id, name, remote on) one
    button that ends the share and, for a car that takes commands, one that switches them."""
    rows = []
    for car, people in cars:
        rows.append(
            [
                _button(
                    texts.SHARE_INVITE_BUTTON.format(car=texts.car_label(car)),
                    SHARE_INVITE,
                    refs.ref(owner, car.vin),
                )
            ]
        )
        for member, name, remote in people:
            ref = share_ref(refs, owner, car.vin, member)
            rows.append([_button(texts.SHARE_REVOKE_BUTTON.format(name=name), SHARE_REVOKE, ref)])
            if not read_only(car):
                label = texts.SHARE_REMOTE_BUTTON.format(name=name, state=texts.on_off(remote))
                rows.append([_button(label, SHARE_REMOTE, ref)])
    return InlineKeyboardMarkup(rows)


def share_link(link: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[_copy(texts.SHARE_COPY_BUTTON, link)]])


def share_accept(nonce: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[_button(texts.SHARE_ACCEPT_BUTTON, SHARE_ACCEPT, nonce), _button(texts.NO, SHARE_DECLINE, nonce)]]
    )
