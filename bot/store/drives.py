"""Drives of CarData cars (bot/drives.py) and each car's last parked report, the next drive's start."""

from __future__ import annotations

from bot.drives import Drive, Parked
from bot.store.connection import Connection, _booleans, _field_names, _params

_DRIVE_FIELDS = _field_names(Drive)
_DRIVE_COLUMNS = ", ".join(_DRIVE_FIELDS)
_MARK_COLUMNS = ", ".join(_field_names(Parked))


class DriveRows(Connection):
    def drive_mark(self, owner: int, vin: str) -> Parked | None:
        """The car's last parked report the bot decided on; None before the first."""
        query = f"SELECT {_MARK_COLUMNS} FROM drive_marks WHERE tg_id = ? AND vin = ?"
        marks = self._records(Parked, query, (owner, vin))
        return marks[0] if marks else None

    def save_drive_mark(self, owner: int, vin: str, mark: Parked, drive: Drive | None = None) -> None:
        """Keep `mark` as the car's last parked report and record the `drive` it closed, in one write; the
        drive once (a report decided again after a restart closes the same one). Ignored when the owner is
        no longer linked to CarData (no orphan)."""
        linked = "EXISTS (SELECT 1 FROM cardata_accounts WHERE tg_id = :tg_id)"
        with self._write() as db:
            db.execute(
                f"INSERT OR REPLACE INTO drive_marks (tg_id, vin, {_MARK_COLUMNS})"
                f" SELECT :tg_id, :vin, {_params(_MARK_COLUMNS.split(', '))} WHERE {linked}",
                {"tg_id": owner, "vin": vin, **vars(mark)},
            )
            if drive is not None:
                db.execute(
                    f"INSERT OR IGNORE INTO drives ({_DRIVE_COLUMNS})"
                    f" SELECT {_params(_DRIVE_FIELDS)} WHERE {linked}",
                    vars(drive),
                )

    def cardata_model(self, owner: int, vin: str) -> str | None:
        rows = self._rows("SELECT model FROM vehicles WHERE tg_id = ? AND vin = ?", (owner, vin))
        return rows[0]["model"] if rows else None

    def drives(self, tg_id: int, vin: str, since: float | None = None) -> list[Drive]:
        """The car's recorded drives, newest first; those that ended at `since` or later when given."""
        query = (
            f"SELECT {_DRIVE_COLUMNS} FROM drives WHERE tg_id = ? AND vin = ? AND ended_at >= ?"
            " ORDER BY ended_at DESC"
        )
        found = self._records(Drive, query, (tg_id, vin, float("-inf") if since is None else since))
        return [_booleans(drive) for drive in found]
