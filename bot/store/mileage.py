"""A mileage mark per car and month (bot/months.py): the first and last mileage the watcher read of an i
Remote car in each month of its owner's zone, from which the monthly summary counts the km driven."""

from __future__ import annotations

from bot.months import MileageMark
from bot.store.connection import Connection

_MARK_COLUMNS = "month, first_at, first_km, last_at, last_km"  # MileageMark's fields


class MileageRows(Connection):
    def mark_mileage(self, owner: int, vin: str, month: str, at: float, km: float) -> None:
        """The car read `km` at `at` in `month`: the month's first mark stays, its last moves on. Ignored when
        the car is no longer the owner's (no orphan)."""
        with self._write() as db:
            db.execute(
                f"INSERT INTO mileage_marks (tg_id, vin, {_MARK_COLUMNS})"
                " SELECT :tg_id, :vin, :month, :at, :km, :at, :km"
                " WHERE EXISTS (SELECT 1 FROM vehicles WHERE tg_id = :tg_id AND vin = :vin)"
                " ON CONFLICT (tg_id, vin, month) DO UPDATE SET last_at = excluded.last_at,"
                " last_km = excluded.last_km WHERE excluded.last_at >= mileage_marks.last_at",
                {"tg_id": owner, "vin": vin, "month": month, "at": at, "km": km},
            )

    def mileage_marks(self, owner: int, vin: str) -> list[MileageMark]:
        """The car's marks, oldest month first."""
        query = f"SELECT {_MARK_COLUMNS} FROM mileage_marks WHERE tg_id = ? AND vin = ? ORDER BY month"
        return self._records(MileageMark, query, (owner, vin))
