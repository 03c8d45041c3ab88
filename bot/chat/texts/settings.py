"""/settings: units, language, time zone, quiet hours."""

from __future__ import annotations

from datetime import datetime
from html import escape

from babel import Locale

from bot.chat import prefs
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import joined
from bot.costs import Tariff

# Settings
SETTINGS_TITLE = Msg("⚙️ <b>Your settings</b>")
SETTINGS_UNITS = Msg("📏 Distances in {unit}, {clock} clock")
UNIT_BUTTONS = {"km": "km", "mi": Msg("miles")}
UNIT_NAMES = {"km": Msg("kilometres"), "mi": Msg("miles")}
CLOCK_NAMES = {24: Msg("24-hour"), 12: Msg("12-hour")}
SETTINGS_LANGUAGE = Msg("🗣 Language: {language}")
# Each language in its own words (Babel's), as a language menu shows them: "Deutsch" for everyone.
LANGUAGE_NAMES = {code: Locale(code).get_display_name() or code for code in prefs.LANGUAGES}
SETTINGS_ZONE = Msg("🌍 Time zone: {zone} (now {time})")
SETTINGS_SERVER_ZONE = Msg("the server's, {zone}")
SETTINGS_QUIET_ON = Msg(
    "🌙 Quiet hours {start}–{end}: what I send on my own (charging news) arrives silently"
)
SETTINGS_QUIET_OFF = Msg("🔔 Quiet hours: off")
SETTINGS_NOTE = Msg(
    "Tap to change; it applies at once. Until you choose, units and language follow Telegram's."
)
SETTINGS_SAVED = Msg("Saved")
ZONE_PICK = Msg("🌍 Which time zone? Tap one, or type its name.")
ZONE_SERVER = Msg("🖥 The server's")
ZONE_TYPE = Msg("⌨️ Type a name")
ZONE_ASK = Msg("Send the name of your time zone, for example Europe/Berlin or America/New_York, or /cancel.")
ZONE_UNKNOWN = Msg(
    "I don't know a time zone called “{name}”. Send a name like Europe/Berlin or America/New_York, "
    "or /cancel."
)
ZONE_SET = Msg("OK, your time zone is {zone}.")
SETTINGS_TIMEOUT = Msg("I stopped waiting for your answer; /settings shows your settings.")
QUIET_BUTTON = Msg("Quiet hours")
SETTINGS_TARIFF = Msg("💶 Home tariff: {price} per kWh")
SETTINGS_TARIFF_NIGHT = Msg("💶 Home tariff: {price} per kWh, {night} from {start} to {end}")
SETTINGS_TARIFF_NONE = Msg("💶 Home tariff: not set, so /history shows no costs")
TARIFF_BUTTON = Msg("💶 Home tariff")
TARIFF_CLEAR_BUTTON = Msg("🗑 Clear tariff")
TARIFF_ASK = Msg(
    "💶 Send what a kWh costs you at home in {currency}, for example <code>{price}</code>. With a cheaper "
    "night rate, add it and its hours: <code>{price} {night} 22:00-06:00</code>. The currency is that of "
    "your language's country. Your first tariff prices earlier charges too; a change counts from then on. "
    "Or /cancel."
)
TARIFF_UNCLEAR = Msg(
    "I could not read “{typed}” as a price. Send a number like <code>{price}</code>, or with a night rate "
    "<code>{price} {night} 22:00-06:00</code>, or /cancel."
)
TARIFF_SET = Msg("💶 Saved. /history shows what your charges cost, as an estimate.")
TARIFF_CLEARED = Msg("Tariff cleared: charges from now on get no cost")
QUIET_EDGES = {"start": Msg("🌙 Start"), "end": Msg("☀️ End")}


def zone_name(zone: object) -> str:
    return escape(str(zone))


def settings(p: prefs.Prefs, now: datetime, tariff: Tariff | None = None) -> str:
    """The /settings message, in the prefs it shows (they are also the current ones), and the user's home
    tariff now."""
    unit = UNIT_NAMES["mi" if p.miles else "km"]
    lines = [
        SETTINGS_TITLE,
        SETTINGS_UNITS.format(unit=unit, clock=CLOCK_NAMES[12 if p.clock12 else 24]),
        SETTINGS_LANGUAGE.format(language=LANGUAGE_NAMES[p.language]),
    ]
    zone = zone_name(p.zone)
    zone = zone if p.zone_chosen else SETTINGS_SERVER_ZONE.format(zone=zone)
    lines.append(SETTINGS_ZONE.format(zone=zone, time=prefs.clock(now)))
    if p.quiet is None:
        lines.append(SETTINGS_QUIET_OFF)
    else:
        start, end = (prefs.minutes_of_day(edge) for edge in p.quiet)
        lines.append(SETTINGS_QUIET_ON.format(start=start, end=end))
    lines.append(_tariff(tariff))
    return joined([*lines, "", SETTINGS_NOTE])


def _tariff(tariff: Tariff | None) -> str:
    if tariff is None or tariff.price is None:
        return SETTINGS_TARIFF_NONE
    price = prefs.money(tariff.price, tariff.currency)
    if tariff.night is None:
        return SETTINGS_TARIFF.format(price=price)
    start, end, night = tariff.night
    return SETTINGS_TARIFF_NIGHT.format(
        price=price,
        night=prefs.money(night, tariff.currency),
        start=prefs.minutes_of_day(start),
        end=prefs.minutes_of_day(end),
    )


# What the examples of a typed tariff show, in the user's locale.
EXAMPLE_PRICE, EXAMPLE_NIGHT = 0.32, 0.22


def _examples() -> dict[str, str]:
    return {"price": prefs.number(EXAMPLE_PRICE, 2), "night": prefs.number(EXAMPLE_NIGHT, 2)}


def tariff_ask() -> str:
    return TARIFF_ASK.format(currency=prefs.currency(), **_examples())


def tariff_unclear(typed: str) -> str:
    return TARIFF_UNCLEAR.format(typed=escape(typed[:64]), **_examples())


def zone_unknown(name: str) -> str:
    return ZONE_UNKNOWN.format(name=escape(name[:64]))
