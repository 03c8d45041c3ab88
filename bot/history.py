"""Charging history: the charge sessions the bot saw end, with the energy they added, as days and as CSV.

The bot never measures energy: a session's kWh are the share of the battery it charged times the battery's
usable capacity, which the i Remote API does not report per car (allTrips' `batterySizeMax` would cost a
BMW call per session; CarData's basic data has `hvsMaxEnergyAbsolute`, not fetched yet). The capacity
follows the model string: BMW named the i3s by cell size, "i3" (60 Ah) at launch, then "i3 94" and "i3 120".

Sessions are recorded where a charge's end is decided (bot/watcher.py, bot/cardata/events.py), in the store
write that makes the end durable, so each is recorded once. BMW's own CarData charging history (measured
kWh from the grid) can join through `merge`. No Telegram and no SQLite here.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from bot.capabilities import BackendName

if TYPE_CHECKING:  # bot/drives.py reads the CarData models, which read this module's neighbours
    from bot.costs import Cost
    from bot.drives import Drive

# Usable capacity of the i3's batteries by cell size (Ah): BMW's figures.
USABLE_KWH_BY_AH = {"120": 37.9, "94": 27.2, "60": 18.8}
# "i3" / "I3 +REX" without a cell size: the launch model, 60 Ah.
PLAIN_I3_KWH = USABLE_KWH_BY_AH["60"]
# No model known (a CarData car before its basic data is read): the middle one, 94 Ah, at most ~40 % off.
UNKNOWN_MODEL_KWH = USABLE_KWH_BY_AH["94"]
_CELL_SIZE = re.compile(r"\b(120|94|60)\b")

# How a session ended: i Remote outcomes (bot.watcher.Outcome, or "interrupted") and CarData's events.
BMW_HISTORY = "bmw"  # a source beside the backends' names (bot/capabilities.py BackendName)
# A row per charge or drive (`kind`); a drive's `started`: when a live car began it, else the parked report
# it began after (docs/cardata.md).
CHARGE, DRIVE = "charge", "drive"
CSV_COLUMNS = (
    "kind",
    "started",
    "ended",
    "minutes",
    "km",
    "soc_start",
    "soc_end",
    "energy_kwh_estimated",
    "ended_how",
    "reason",
    "latitude",
    "longitude",
    "source",
    "cost_estimated",
    "currency",
)
CHART_DAYS = 30


@dataclass(frozen=True)
class ChargeSession:
    """One charge of one car; the fields are the store's columns. Times are epoch seconds."""

    tg_id: int
    vin: str
    started_at: float
    ended_at: float
    soc_start: float | None
    soc_end: float | None
    energy_kwh: float | None  # estimated (see the module's docstring) unless `source` measured it
    ended: str  # full, early, error, interrupted (i Remote); complete, stopped (CarData); "" unknown (BMW's)
    reason: str | None  # the car's own end reason, when it sent one
    lat: float | None
    lon: float | None
    source: str  # the recording backend's name, or BMW_HISTORY for sessions from BMW's own charging history

    @property
    def seconds(self) -> float:
        return max(0.0, self.ended_at - self.started_at)


def usable_kwh(model: str | None, battery_kwh: float | None = None) -> float:
    """The battery's usable capacity: the car's own figure when known, else by model string."""
    if battery_kwh:
        return battery_kwh
    if model is None:
        return UNKNOWN_MODEL_KWH
    cells = _CELL_SIZE.search(model)
    return USABLE_KWH_BY_AH[cells.group(1)] if cells else PLAIN_I3_KWH


def energy_kwh(soc_start: float | None, soc_end: float | None, capacity_kwh: float) -> float | None:
    """kWh added between two states of charge (%), never negative; None when either is unknown."""
    if soc_start is None or soc_end is None:
        return None
    return round(max(0.0, soc_end - soc_start) / 100 * capacity_kwh, 2)


def merge(recorded: Iterable[ChargeSession], extra: Iterable[ChargeSession] = ()) -> list[ChargeSession]:
    """The sessions newest first. `extra` ones (BMW's own charging history, whose kWh are measured) replace
    the recorded sessions they overlap in time, keeping what only the bot knew (position, how it ended)."""
    result = list(recorded)
    for other in extra:
        same = [s for s in result if s.started_at < other.ended_at and other.started_at < s.ended_at]
        if same:
            first = same[0]
            other = replace(other, lat=first.lat, lon=first.lon, ended=first.ended, reason=first.reason)
            result = [s for s in result if s not in same]
        result.append(other)
    return sorted(result, key=lambda s: s.started_at, reverse=True)


def local(moment: float, tz: tzinfo | None = None) -> datetime:
    """Epoch seconds as an aware time in `tz` (default: the server's time zone)."""
    return (
        datetime.fromtimestamp(moment, tz) if tz is not None else datetime.fromtimestamp(moment).astimezone()
    )


def energy_per_day(
    sessions: Iterable[ChargeSession], today: date, *, days: int = CHART_DAYS, tz: tzinfo | None = None
) -> list[tuple[date, float]]:
    """kWh charged on each of the `days` days up to `today`, a session counted on the day it ended."""
    return _per_day(((s.ended_at, s.energy_kwh) for s in sessions), today, days, tz)


def km_per_day(
    drives: Iterable[Drive], today: date, *, days: int = CHART_DAYS, tz: tzinfo | None = None
) -> list[tuple[date, float]]:
    """km driven on each of the `days` days up to `today`, a drive counted on the day it ended."""
    return _per_day(((d.ended_at, d.km) for d in drives), today, days, tz)


def _per_day(
    amounts: Iterable[tuple[float, float | None]], today: date, days: int, tz: tzinfo | None
) -> list[tuple[date, float]]:
    """The sum of the amounts (each with when it counts) on each of the `days` days up to `today`."""
    first = today - timedelta(days=days - 1)
    return per_day(amounts, [first + timedelta(days=n) for n in range(days)], tz)


def per_day(
    amounts: Iterable[tuple[float, float | None]], days: Iterable[date], tz: tzinfo | None
) -> list[tuple[date, float]]:
    """The sum of the amounts (each with when it counts, epoch seconds) on each of `days`, in zone `tz`."""
    totals = dict.fromkeys(days, 0.0)
    for at, amount in amounts:
        day = local(at, tz).date()
        if day in totals and amount:
            totals[day] += amount
    return list(totals.items())


def to_csv(
    sessions: Sequence[ChargeSession],
    tz: tzinfo | None = None,
    drives: Sequence[Drive] = (),
    cost: Callable[[ChargeSession], Cost | None] = lambda _: None,
) -> bytes:
    """All charges and drives, oldest first, one row each, times as ISO 8601 with their offset (UTF-8). A
    drive has no minutes (when it began is not reported), a charge no km; a charge its `cost` where known
    (bot/costs.py)."""

    def when(moment: float) -> str:
        return local(moment, tz).isoformat(timespec="seconds")

    def money(session: ChargeSession) -> list[str]:
        known = cost(session)
        return ["", ""] if known is None else [f"{known.amount:.2f}", known.currency]

    rows: list[tuple[float, list[str]]] = [
        (
            s.started_at,
            [
                CHARGE,
                when(s.started_at),
                when(s.ended_at),
                str(round(s.seconds / 60)),
                "",
                _cell(s.soc_start),
                _cell(s.soc_end),
                _cell(s.energy_kwh),
                _text(s.ended),
                _text(s.reason or ""),
                _cell(s.lat),
                _cell(s.lon),
                _text(s.source),
                *money(s),
            ],
        )
        for s in sessions
    ]
    rows += [
        (
            d.began,
            [
                DRIVE,
                when(d.began),
                when(d.ended_at),
                "",
                _cell(d.km),
                _cell(d.soc_start),
                _cell(d.soc_end),
                _cell(d.energy_kwh),
                "",
                "",
                _cell(d.to_lat),
                _cell(d.to_lon),
                BackendName.CARDATA,
                "",
                "",
            ],
        )
        for d in drives
    ]
    out = io.StringIO()
    # RFC 4180's CRLF: a cell holding a CR or LF of the car's is then quoted, never a row break.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(cells for _, cells in sorted(rows, key=lambda row: row[0]))
    return out.getvalue().encode()


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.10g}"


# What makes a spreadsheet read a cell as a formula (a car's end reason is the car's text, not ours).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    """A text cell that a spreadsheet shows as text: a leading quote where it would start a formula (OWASP's
    advice against CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value
