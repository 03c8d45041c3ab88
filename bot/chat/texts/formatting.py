"""The shared formatting of every text: HTML to plain, lines in the user's language, a car's label, ages,
durations, distances, BMW's state words, switches."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape, unescape

from bot.chat import prefs
from bot.chat.i18n import Msg, tr
from bot.store import StoredVehicle


def plain(text: str) -> str:
    """What one of these HTML texts shows, for the places Telegram shows as plain text: buttons, toasts."""
    return unescape(tr(text))


def joined(parts: Iterable[str], separator: str = "\n") -> str:
    """Lines (or list items) in the user's language: a sentence among them as it is is translated too."""
    return separator.join(map(tr, parts))


def car_label(car: StoredVehicle) -> str:
    """`i3 (…3456, M-AB 123)`: the VIN tail tells two identical models apart."""
    parts = [f"…{car.vin[-4:]}"] + ([car.license_plate] if car.license_plate else [])
    return escape(f"{car.model or 'BMW'} ({', '.join(parts)})")


def cars_list(cars: list[StoredVehicle]) -> str:
    return joined(f"• {car_label(car)}" for car in cars)


AGO_UNKNOWN = Msg("unknown")
JUST_NOW = Msg("just now")
HOURS_MINUTES = Msg("{hours} h {minutes:02d} min")
MINUTES = Msg("{minutes} min")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return AGO_UNKNOWN
    now = now or datetime.now(UTC)
    if (now - moment).total_seconds() < 90:
        return JUST_NOW
    return prefs.ago(moment, now)


def _at(moment: datetime | None, now: datetime | None = None) -> str:
    """ " (14:07)", in the user's zone and clock; with the date when that is not today."""
    return "" if moment is None else f" ({prefs.clock_or_date_time(moment, now or datetime.now(UTC))})"


# An unknown state word of BMW's is shown as it comes, up to this length: a 5,000-character one must not push
# a status past Telegram's 4,096 characters.
WORDS_MAX = 60


def _words(value: str | None) -> str:
    if not value:
        return tr(AGO_UNKNOWN)
    words = value.replace("_", " ").lower()
    return words if len(words) <= WORDS_MAX else words[: WORDS_MAX - 1] + "…"


def _km(value: float | None, miles: float | None = None) -> str:
    """A distance in km in the user's unit; `miles` is the car's own figure in miles, where it gives one."""
    return prefs.distance(value, miles=miles)


def _duration(minutes: int | float) -> str:
    hours, mins = divmod(int(minutes), 60)
    return HOURS_MINUTES.format(hours=hours, minutes=mins) if hours else MINUTES.format(minutes=mins)


ON, OFF = Msg("on"), Msg("off")


def on_off(on: bool) -> str:
    return ON if on else OFF


SWITCH_ON = Msg("✅ on")
SWITCH_OFF = Msg("⬜ off")


def check(on: bool | None) -> str:
    return "✅" if on else "⬜"


def switch(on: bool | None) -> str:
    return SWITCH_ON if on else SWITCH_OFF


KWH = "kWh"


def _num(value: float | None, unit: str, digits: int = 1) -> str:
    return "–" if value is None else f"{prefs.number(value, digits)} {unit}"


def _per_100(value: float | None, unit: str = KWH, digits: int = 1) -> str:
    return prefs.per_100(value, unit, digits)
