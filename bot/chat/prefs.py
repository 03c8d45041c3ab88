"""A user's units, language, time zone and quiet hours as the texts use them, and Babel's formatting in them.

The prefs of the user an update comes from are set for that update (bot/chat/settings.py, before every other
handler) in a context variable, which the tasks an update starts inherit; a message sent without an update (a
push) sets them around its rendering with `using`. The texts read them through `current()`, so a rendering
function needs no extra argument, and a translation layer finds the language in the same place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date as Day
from datetime import datetime, timedelta, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_skeleton, format_timedelta, get_day_names
from babel.numbers import (
    NumberFormatError,
    NumberPattern,
    format_currency,
    get_territory_currencies,
    parse_decimal,
    parse_pattern,
)
from babel.units import format_unit
from tzlocal import get_localzone

from bot.cardata.models import KM_PER_MILE
from bot.store import UserSettings

LANGUAGES = ("en", "de")  # what the texts speak; the first is the fallback
MILES_REGIONS = frozenset({"US", "GB"})  # Telegram's region of the user's language: miles by default
CLOCK_12_REGIONS = frozenset({"US"})  # ... and a 12-hour clock
QUIET_START, QUIET_END = 22 * 60, 7 * 60  # the window quiet hours start with, minutes after midnight
MINUTES_A_DAY = 24 * 60


@cache
def server_zone() -> tzinfo:
    """The server's own time zone: every user's until they choose one."""
    return get_localzone()


@cache
def _zone_names() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def zone_named(text: str) -> ZoneInfo | None:
    """The IANA zone a user typed ("europe/berlin" too), else None. Only names of the zone database are
    looked up, so no typed path reaches the file system."""
    name = _zone_names().get(text.strip().casefold())
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


@dataclass(frozen=True)
class Prefs:
    language: str = LANGUAGES[0]  # what the texts say
    locale: str = LANGUAGES[0]  # Babel's locale for numbers and dates, e.g. "en_US", "de_AT"
    miles: bool = False
    clock12: bool = False
    zone: tzinfo = field(default_factory=server_zone)
    zone_chosen: bool = False  # False: the server's zone
    quiet: tuple[int, int] | None = None  # quiet hours (start, end), minutes after midnight; None: off

    def is_quiet(self, moment: datetime) -> bool:
        """Whether `moment` falls in the quiet hours, in the user's zone (a window may span midnight)."""
        if self.quiet is None:
            return False
        start, end = self.quiet
        local = moment.astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return start <= minute < end if start <= end else minute >= start or minute < end


def resolve(settings: UserSettings, language_code: str | None = None) -> Prefs:
    """The prefs of a user: what they chose, the rest from their Telegram language (`language_code`, else the
    stored one). The locale keeps the language's region when the texts speak that language (en-GB numbers and
    dates for an en-GB user), else it is the bare language."""
    told = _locale(language_code or settings.language_code)
    spoken = told.language if told is not None and told.language in LANGUAGES else LANGUAGES[0]
    language = settings.language if settings.language in LANGUAGES else spoken
    region = told.territory if told is not None else None
    locale = str(told) if told is not None and told.language == language else language
    zone = zone_named(settings.time_zone) if settings.time_zone else None
    quiet = None
    if settings.quiet:
        start = QUIET_START if settings.quiet_start is None else settings.quiet_start
        end = QUIET_END if settings.quiet_end is None else settings.quiet_end
        quiet = (start, end)
    return Prefs(
        language=language,
        locale=locale,
        miles=settings.units == "mi" if settings.units else region in MILES_REGIONS,
        clock12=settings.clock == 12 if settings.clock else region in CLOCK_12_REGIONS,
        zone=zone or server_zone(),
        zone_chosen=zone is not None,
        quiet=quiet,
    )


def stored(settings: UserSettings | None) -> Prefs:
    """A user's prefs from their stored settings, where no update brings their Telegram language (pushes,
    messages after a restart)."""
    return resolve(settings or UserSettings())


def _locale(language_code: str | None) -> Locale | None:
    if not language_code:
        return None
    try:
        return Locale.parse(language_code.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError):
        return None


_CURRENT: ContextVar[Prefs | None] = ContextVar("prefs", default=None)


def current() -> Prefs:
    """The prefs of the user being answered (defaults outside an update)."""
    return _CURRENT.get() or _defaults()


@cache
def _defaults() -> Prefs:
    return Prefs()


def use(prefs: Prefs | None) -> None:
    """The prefs for the rest of this update (its handlers and the tasks they start)."""
    _CURRENT.set(prefs)


@contextmanager
def using(prefs: Prefs) -> Iterator[Prefs]:
    """The prefs inside the block only: for a message rendered without an update (a push)."""
    token = _CURRENT.set(prefs)
    try:
        yield prefs
    finally:
        _CURRENT.reset(token)


# Formatting in the current prefs ----------------------------------------------------------------------------


def in_user_units(km: float) -> float:
    """A distance in km as the user counts it: the one km-to-miles conversion."""
    return km / KM_PER_MILE if current().miles else km


def number(value: float, digits: int = 0) -> str:
    """`value` with `digits` decimals, grouped, in the user's locale (12,345.6 or 12.345,6)."""
    return _number_pattern(digits).apply(value, _babel(current().locale))


TIME_PATTERN = re.compile(r"^\s*([01]?\d|2[0-3])\s*[:.h]?\s*([0-5]\d)\s*$")
TIME_MAX = 16  # "07:45" with room for spaces; longer text is no time, and slow for the pattern


def parse_time(text: str) -> str | None:
    """ "7:45", "07.45", "0745" -> "07:45"; None when it is not a time of day."""
    match = TIME_PATTERN.match(text) if len(text) <= TIME_MAX else None
    return f"{int(match[1]):02d}:{match[2]}" if match else None


def number_typed(text: str) -> float | None:
    """A number the user typed as their locale writes it ("0,32" in German, "0.32" in English); None for
    anything else."""
    try:
        return float(parse_decimal(text.strip(), locale=_babel(current().locale), strict=True))
    except (NumberFormatError, ValueError):
        return None


def currency() -> str:
    """The currency of the user's locale: its country's (Telegram's region, else the country Babel deems
    likeliest for the language: Germany for "de", the US for "en"), EUR when Babel knows none."""
    locale = _babel(current().locale)
    likeliest = get_global("likely_subtags").get(locale.language)
    territory = locale.territory or (Locale.parse(likeliest).territory if likeliest else None)
    found = get_territory_currencies(territory) if territory else []
    return found[0] if found else "EUR"


def money(amount: float, code: str) -> str:
    """An amount in a currency as the user's locale writes it (1,20 €; $1.20)."""
    return format_currency(amount, code, locale=_babel(current().locale))


def month(moment: datetime) -> str:
    """The month and year in the user's zone (December 2026; Dezember 2026)."""
    return format_skeleton("yMMMM", in_zone(moment), locale=_babel(current().locale))


def distance(km: float | None, *, miles: float | None = None, digits: int = 0) -> str:
    """A distance in the user's unit ("101 km", "63 mi"), or "–"; `miles` is the car's own figure in
    miles where it gives one (the i Remote API's …Mls fields), used instead of converting."""
    if km is None:
        return "–"
    if current().miles:
        value, unit = (in_user_units(km) if miles is None else miles), "length-mile"
    else:
        value, unit = km, "length-kilometer"
    return measure(value, unit, digits=digits)


def measure(value: float, unit: str, *, digits: int = 0) -> str:
    """`value` in a CLDR unit ("12.4 V", "6.5 L"), short, in the user's locale."""
    # The number formatted once (a str is taken as is); short units have one form for any number.
    return format_unit(number(value, digits), unit, length="short", locale=_babel(current().locale))


def distance_unit() -> str:
    """The user's distance unit's short name, for compound units ("kWh/100 km")."""
    return "mi" if current().miles else "km"


def per_100(value_per_100_km: float | None, unit: str, digits: int = 1) -> str:
    """A consumption per 100 km as per 100 of the user's unit ("15.2 kWh/100 km"), or "–"."""
    if value_per_100_km is None:
        return "–"
    value = value_per_100_km * KM_PER_MILE if current().miles else value_per_100_km
    return f"{number(value, digits)} {unit}/100 {distance_unit()}"


def clock(moment: datetime) -> str:
    """The time of day in the user's zone and clock (14:07 or 2:07 PM)."""
    prefs = current()
    return format_skeleton("hm" if prefs.clock12 else "Hm", in_zone(moment), locale=_babel(prefs.locale))


def date(moment: datetime) -> str:
    """The day in the user's zone, as their locale writes it (Mar 5, 2024; 5. März 2024)."""
    return format_skeleton("yMMMd", in_zone(moment), locale=_babel(current().locale))


def day_month(moment: datetime) -> str:
    """The day without the year, in the user's zone (Mar 5; 5. März)."""
    return format_skeleton("MMMd", in_zone(moment), locale=_babel(current().locale))


def numeric_day(day: Day) -> str:
    """A day in digits, as short as the user's locale writes it (11/12; 12.11.): a chart's axis."""
    return format_skeleton("Md", day, locale=_babel(current().locale))


def numeric_date_time(moment: datetime) -> str:
    """`numeric_day` and the time, in the user's zone (11/12, 9:30 PM; 12.11., 21:30)."""
    pattern = _babel(current().locale).datetime_formats["short"]
    return str(pattern).format(clock(moment), numeric_day(in_zone(moment)))


def month_year(day: Day) -> str:
    """A month with its year, as the user's locale writes it (November 2026)."""
    return format_skeleton("yMMMM", day, locale=_babel(current().locale))


def month_name(day: Day) -> str:
    """A month's name alone, as a word of its own (November; in German "November" too, "März")."""
    return format_date(day, "LLLL", locale=_babel(current().locale))


def weekday(index: int) -> str:
    """A weekday's short name in the user's language (0 = Monday: Mon; Mo)."""
    return str(get_day_names("abbreviated", "stand-alone", _babel(current().locale))[index])


def date_time(moment: datetime) -> str:
    pattern = _babel(current().locale).datetime_formats["medium"]
    return str(pattern).format(clock(moment), date(moment))


def clock_or_date_time(moment: datetime, now: datetime) -> str:
    """The time of day when `moment` is on the user's today, else with its date."""
    today = in_zone(moment).date() == in_zone(now).date()
    return clock(moment) if today else date_time(moment)


def ago(moment: datetime, now: datetime) -> str:
    """How long ago, in the user's language ("5 min ago", "vor 5 Min."); units switch at 1.5 of the next."""
    return format_timedelta(
        min(moment - now, timedelta(0)),
        add_direction=True,
        format="short",
        threshold=1.5,
        locale=_babel(current().locale),
    )


def in_zone(moment: datetime) -> datetime:
    """`moment` in the user's zone: every time shown and every day told apart is theirs."""
    return moment.astimezone(current().zone)


@cache
def _babel(locale: str) -> Locale:
    return Locale.parse(locale)


@cache
def _number_pattern(digits: int) -> NumberPattern:
    return parse_pattern("#,##0" + ("." + "0" * digits if digits else ""))


def minutes_of_day(minutes: int) -> str:
    """A quiet-hours edge (minutes after midnight) in the user's clock."""
    return clock(datetime(2000, 1, 1, minutes // 60 % 24, minutes % 60, tzinfo=current().zone))
