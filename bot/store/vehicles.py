"""The cars of each user, those shared with them, and the car they chose."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from bot.capabilities import BackendName
from bot.store.connection import Connection, _end_shares, _field_names, _params
from bot.store.records import StoredVehicle

# The cars a user sees, by the named parameter :me: their own, then (with `shared` 1) those shared with them
# whose VIN they do not own too; each row is the owner's (its tg_id is the owner's).
_SEEN = (
    "SELECT v.*, 0 AS shared FROM vehicles v WHERE v.tg_id = :me"
    " UNION ALL SELECT v.*, 1 AS shared FROM shares s JOIN vehicles v ON v.tg_id = s.owner AND v.vin = s.vin"
    " WHERE s.tg_id = :me AND s.vin NOT IN (SELECT vin FROM vehicles WHERE tg_id = :me)"
)
_VEHICLE_FIELDS = _field_names(StoredVehicle)


class VehicleRows(Connection):
    # --- vehicles and selection -----------------------------------------------------------------------------

    def save_vehicles(self, tg_id: int, vehicles: Sequence[StoredVehicle]) -> None:
        """Replace the user's list of cars. New cars get a watch due now; a car that stays keeps its watch.
        Only cars of an i Remote account are watched (polled): a CarData account's stream reports itself."""
        vins = [v.vin for v in vehicles]
        if any(v.tg_id != tg_id for v in vehicles):
            raise ValueError("every vehicle must belong to the user whose list is saved")
        if len(set(vins)) != len(vins):
            raise ValueError("a VIN appears twice in the list")
        rows = [{**vars(v), "capabilities": json.dumps(sorted(v.capabilities))} for v in vehicles]
        now = self._clock()
        with self._write() as db:
            db.execute("DELETE FROM vehicles WHERE tg_id = ?", (tg_id,))
            db.conn.executemany(
                f"INSERT INTO vehicles ({', '.join(_VEHICLE_FIELDS)}) VALUES ({_params(_VEHICLE_FIELDS)})",
                rows,
            )
            linked = "SELECT 1 FROM vehicles v WHERE v.tg_id = {0}.tg_id AND v.vin = {0}.{1}"
            db.execute(
                "DELETE FROM charge_watches WHERE tg_id = ?"
                f" AND NOT EXISTS ({linked.format('charge_watches', 'vin')})",
                (tg_id,),
            )
            db.execute(
                "DELETE FROM alert_states WHERE tg_id = ?"
                f" AND NOT EXISTS ({linked.format('alert_states', 'vin')})",
                (tg_id,),
            )
            # A car gone from the account takes its shares and open invitations along: were it linked again
            # one day, nobody would see it again without a new invitation.
            gone = "vin NOT IN (SELECT vin FROM vehicles WHERE tg_id = ?)"
            _end_shares(db, f"s.owner = ? AND s.{gone}", (tg_id, tg_id))
            db.execute(f"DELETE FROM share_invites WHERE tg_id = ? AND {gone}", (tg_id, tg_id))
            db.conn.executemany(
                "INSERT OR IGNORE INTO charge_watches (tg_id, vin, next_poll_at, failures) SELECT ?, ?, ?, 0"
                " WHERE NOT EXISTS (SELECT 1 FROM users WHERE tg_id = ? AND backend != ?)",
                [(tg_id, vin, now, tg_id, BackendName.IREMOTE) for vin in vins],
            )
            db.execute(
                f"UPDATE users SET selected_vin = NULL WHERE tg_id = ? AND selected_vin IS NOT NULL"
                f" AND NOT EXISTS ({linked.format('users', 'selected_vin')})",
                (tg_id,),
            )

    def vehicles(self, tg_id: int) -> list[StoredVehicle]:
        rows = self._rows("SELECT * FROM vehicles WHERE tg_id = ? ORDER BY position, vin", (tg_id,))
        return [_vehicle(row) for row in rows]

    def vehicle(self, tg_id: int, vin: str) -> StoredVehicle | None:
        """The car, or None when that VIN is not linked by this user."""
        rows = self._rows("SELECT * FROM vehicles WHERE tg_id = ? AND vin = ?", (tg_id, vin))
        return _vehicle(rows[0]) if rows else None

    def selected_vin(self, tg_id: int) -> str | None:
        """The chosen car, else the first car of the list (own cars before shared ones), else None."""
        rows = self._rows(
            f"SELECT seen.vin FROM ({_SEEN}) seen LEFT JOIN users u ON u.tg_id = :me"
            " ORDER BY seen.vin IS u.selected_vin DESC, seen.shared, seen.position, seen.vin LIMIT 1",
            {"me": tg_id},
        )
        return rows[0]["vin"] if rows else None

    def select_vin(self, tg_id: int, vin: str) -> bool:
        """Choose a car; False (and no change) when the VIN is not one this user sees."""
        with self._write() as db:
            seen = f"SELECT 1 FROM ({_SEEN}) WHERE vin = :vin"
            if db.execute(seen, {"me": tg_id, "vin": vin}).fetchone() is None:
                return False
            db.execute(
                "INSERT INTO users (tg_id, selected_vin) VALUES (?, ?)"
                " ON CONFLICT (tg_id) DO UPDATE SET selected_vin = excluded.selected_vin",
                (tg_id, vin),
            )
            return True

    def vehicles_seen(self, tg_id: int) -> list[StoredVehicle]:
        """The user's own cars, then those shared with them (each with its owner's tg_id)."""
        rows = self._rows(f"SELECT * FROM ({_SEEN}) ORDER BY shared, position, vin", {"me": tg_id})
        return [_vehicle(row) for row in rows]

    def vehicle_seen(self, tg_id: int, vin: str) -> StoredVehicle | None:
        """That car when the user owns it or it is shared with them, else None."""
        rows = self._rows(f"SELECT * FROM ({_SEEN}) WHERE vin = :vin", {"me": tg_id, "vin": vin})
        return _vehicle(rows[0]) if rows else None


def _vehicle(row: sqlite3.Row) -> StoredVehicle:
    values = {name: row[name] for name in _VEHICLE_FIELDS}
    values["capabilities"] = frozenset(json.loads(values["capabilities"]))  # a sorted JSON array
    return StoredVehicle(**values)
