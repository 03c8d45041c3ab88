"""/settings: units, language, time zone, quiet hours."""

from __future__ import annotations

from datetime import datetime
from html import escape

from babel import Locale

from bot.chat import prefs
from bot.chat.i18n import Msg
from bot.chat.texts.formatting import joined

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
ZONE_TIMEOUT = Msg("I stopped waiting for the time zone; /settings shows your settings.")
QUIET_BUTTON = Msg("Quiet hours")
QUIET_EDGES = {"start": Msg("🌙 Start"), "end": Msg("☀️ End")}


def zone_name(zone: object) -> str:
    return escape(str(zone))


def settings(p: prefs.Prefs, now: datetime) -> str:
    """The /settings message, in the prefs it shows (they are also the current ones)."""
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
    return joined([*lines, "", SETTINGS_NOTE])


def zone_unknown(name: str) -> str:
    return ZONE_UNKNOWN.format(name=escape(name[:64]))
