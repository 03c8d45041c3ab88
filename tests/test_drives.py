"""bot/drives.py: which parked reports close a drive, and what a drive can tell."""

from __future__ import annotations

from bot.cardata.models import KM_PER_MILE
from bot.drives import Drive, Parked, drive_between

OWNER, VIN = 1001, "WBY1Z21000V000001"
HOME = Parked(at=1_000.0, mileage_km=23_400, soc=64, lat=48.1, lon=11.5)
WORK = Parked(at=5_000.0, mileage_km=23_421, soc=60, lat=48.2, lon=11.6)


def drive(before: Parked | None, now: Parked, charged: bool = False) -> Drive | None:
    return drive_between(OWNER, VIN, before, now, charged=charged, capacity_kwh=37.9)


def test_a_parked_report_with_more_mileage_closes_a_drive_from_the_previous_one() -> None:
    found = drive(HOME, WORK)
    assert found is not None
    assert (found.started_after, found.ended_at, found.km) == (1_000.0, 5_000.0, 21)
    assert (found.from_lat, found.from_lon, found.to_lat, found.to_lon) == (48.1, 11.5, 48.2, 11.6)
    assert (found.soc_start, found.soc_end, found.soc_used) == (64, 60, 4)
    assert found.energy_kwh == round(0.04 * 37.9, 2) and not found.charged
    assert found.kwh_per_100_km is not None and abs(found.kwh_per_100_km - 1.52 / 21 * 100) < 1e-9


def test_the_first_report_of_a_car_is_no_drive() -> None:
    assert drive(None, WORK) is None


def test_the_same_mileage_again_is_no_drive() -> None:
    assert drive(HOME, Parked(at=2_000.0, mileage_km=23_400, soc=63, lat=48.1, lon=11.5)) is None


def test_a_mileage_changed_by_the_km_mi_factor_is_a_unit_change_not_a_drive() -> None:
    in_miles_as_km = Parked(at=2_000.0, mileage_km=round(23_400 * KM_PER_MILE), soc=64, lat=48.1, lon=11.5)
    assert drive(HOME, in_miles_as_km) is None
    back = Parked(at=3_000.0, mileage_km=round(23_400 / KM_PER_MILE), soc=64, lat=48.1, lon=11.5)
    assert drive(HOME, back) is None


def test_a_charge_between_leaves_the_level_used_and_the_energy_unknown() -> None:
    found = drive(HOME, WORK, charged=True)
    assert found is not None and found.charged and found.km == 21
    assert (found.soc_start, found.soc_used, found.energy_kwh, found.kwh_per_100_km) == (
        None,
        None,
        None,
        None,
    )


def test_a_level_that_rose_with_no_charge_known_has_no_energy() -> None:
    found = drive(HOME, Parked(at=5_000.0, mileage_km=23_421, soc=70, lat=48.2, lon=11.6))
    assert found is not None and found.energy_kwh is None


def test_an_unknown_mileage_is_no_drive() -> None:
    assert drive(HOME, Parked(at=5_000.0, mileage_km=None, soc=60, lat=48.2, lon=11.6)) is None
