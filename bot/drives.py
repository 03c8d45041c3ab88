"""Drives from a CarData car's own reports: each report that shows the car parked is compared with the
previous one; when the mileage grew, the car drove between them (docs/cardata.md "Drives").

A quiet car's parked report is its switch-off burst; a live car streams each change while it drives too, so
it is parked once its mileage and position have settled for SETTLED_SECONDS, and its drive began at the first
mileage rise after the previous parked report (`Parked.moved_at`). A quiet car's reports tell only where and
when it was parked: its drive starts after the previous parked report and ends by this one. The level used
and energy (the level drop times the usable capacity, bot/history.py) hold only when no charge happened
between. No I/O here: the caller says whether one did.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.cardata.models import KM_PER_MILE

# Odometers count whole km: a km↔mi change within this (in km) of the factor is a unit change.
UNIT_CHANGE_ROUNDING_KM = 1.0
MIN_DRIVE_KM = 1.0  # less than the odometer's step: the car was parked again where it was
# A live car whose mileage and position stayed this long has parked: longer than a red light or a queue at a
# barrier, where a car streams no km either; short enough that /trips has the drive soon after.
SETTLED_SECONDS = 10 * 60.0


@dataclass(frozen=True)
class Parked:
    """A report that shows the car parked: when it was sent (epoch seconds) and what it said; `moved_at`, kept
    with a live car's last one, when its mileage first rose since (the next drive's start)."""

    at: float
    mileage_km: float | None
    soc: float | None
    lat: float | None
    lon: float | None
    moved_at: float | None = None


@dataclass(frozen=True)
class Drive:
    """One drive of one car; the fields are the store's columns. `started_after` is the previous parked
    report's time (the drive began later), `started_at` when it began where the car streamed it (a live car's
    first mileage rise; None: not reported), `ended_at` the parked report's time. `soc_start`,
    `energy_kwh` are None when a charge happened between (`charged`) or the car did not say."""

    tg_id: int
    vin: str
    started_after: float
    ended_at: float
    km: float
    soc_start: float | None
    soc_end: float | None
    energy_kwh: float | None  # estimated from the level drop and the usable capacity
    from_lat: float | None
    from_lon: float | None
    to_lat: float | None
    to_lon: float | None
    charged: bool = False  # a charge happened between the two reports
    started_at: float | None = None

    @property
    def began(self) -> float:
        """When it began as far as the reports tell: its streamed start, else the parked report before."""
        return self.started_after if self.started_at is None else self.started_at

    @property
    def kwh_per_100_km(self) -> float | None:
        return None if self.energy_kwh is None else self.energy_kwh / self.km * 100

    @property
    def soc_used(self) -> float | None:
        if self.soc_start is None or self.soc_end is None:
            return None
        return self.soc_start - self.soc_end


def unit_changed(before_km: float, after_km: float) -> bool:
    """Whether an odometer that went from `before_km` to `after_km` changed its unit (km↔mi), not drove."""
    return any(
        abs(after_km - before_km * factor) <= UNIT_CHANGE_ROUNDING_KM * max(1.0, factor)
        for factor in (KM_PER_MILE, 1 / KM_PER_MILE)
    )


def drive_between(
    tg_id: int, vin: str, before: Parked | None, now: Parked, *, charged: bool, capacity_kwh: float
) -> Drive | None:
    """The drive that `now` closes after `before` (the previous parked report; None: the car's first, which
    tells nothing); None when the car did not move, or the mileage is unknown or changed its unit."""
    if before is None or before.mileage_km is None or now.mileage_km is None or now.at <= before.at:
        return None
    km = now.mileage_km - before.mileage_km
    if km < MIN_DRIVE_KM or unit_changed(before.mileage_km, now.mileage_km):
        return None
    soc_start = None if charged else before.soc
    energy = None
    if soc_start is not None and now.soc is not None and now.soc <= soc_start:
        energy = round((soc_start - now.soc) / 100 * capacity_kwh, 2)
    return Drive(
        tg_id=tg_id,
        vin=vin,
        started_after=before.at,
        ended_at=now.at,
        km=km,
        soc_start=soc_start,
        soc_end=now.soc,
        energy_kwh=energy,
        from_lat=before.lat,
        from_lon=before.lon,
        to_lat=now.lat,
        to_lon=now.lon,
        charged=charged,
        started_at=before.moved_at,
    )
